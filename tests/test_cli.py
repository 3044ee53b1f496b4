"""`modeltap COMMAND` where COMMAND's extra is not installed (the sidecar image has only the core
dependencies): one line naming the image or extra that has it, exit 2, no traceback."""

from __future__ import annotations

import builtins
import sys
from typing import Any

import pytest

from modeltap import cli


def test_a_command_without_its_extra_says_which_image_has_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_import = builtins.__import__

    def no_numpy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "numpy":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numpy)
    for module in [m for m in sys.modules if m.startswith(("analyzer", "numpy"))]:
        monkeypatch.delitem(sys.modules, module)
    assert cli.main(["monitor", "--help"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "modeltap monitor: needs numpy, which is not installed here: run it on the "
        "modeltap-analyzer image, or pip install 'modeltap[analyzer]'"
    )
