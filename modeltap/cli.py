"""The ``modeltap`` command: one entry point, a subcommand per process.

Subcommands import their package lazily, so ``modeltap sidecar`` never loads the analysis stack.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "monitor": ("analyzer.cli.monitor", "analyse windows of captured traffic against baselines"),
    "sidecar": ("sidecar.__main__", "run the capturing reverse proxy in front of a model server"),
    "demo-model": ("modeltap.demo_model", "run the demo scikit-learn model server"),
    "demo-llm": ("modeltap.demo_llm", "run the demo OpenAI-compatible (streaming) LLM server"),
    "demo": ("modeltap.demo", "run the whole loop locally (what `make run` starts)"),
    "baseline": (
        "analyzer.cli.baseline",
        "build statistics.json + constraints.json from a dataset",
    ),
}

# The extra (and image) each command needs beyond the core dependencies, which hold the sidecar.
EXTRAS = {"monitor": "analyzer", "baseline": "analyzer", "demo-model": "demo", "demo": "demo"}


def usage() -> str:
    lines = ["usage: modeltap COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<12} {doc}" for name, (_, doc) in COMMANDS.items()]
    lines += ["", "`modeltap COMMAND --help` describes a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"modeltap: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as exc:
        # The sidecar image has no analysis stack (numpy, pyarrow, ...): say which image has.
        missing = (exc.name or "").split(".")[0]
        if not missing or missing in ("sidecar", "analyzer", "modeltap"):
            raise
        extra = EXTRAS.get(name, "analyzer")
        print(
            f"modeltap {name}: needs {missing}, which is not installed here: run it on the "
            f"modeltap-{extra} image, or pip install 'modeltap[{extra}]'",
            file=sys.stderr,
        )
        return 2
    return int(module.main(rest))
