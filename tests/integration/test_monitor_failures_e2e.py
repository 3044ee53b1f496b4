"""A run that fails for a reason outside the analyzer says so in one log line, not a traceback.

The attribution model is scored during monitoring; when it is down the run is Failed (as it
should be) and the log held an 18-line traceback. The attribution baseline here is built against
the real demo model, which is then not reachable at the monitor's model_url.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sklearn.datasets import load_iris

from harness.procs import free_port
from tests.analyzer.cli_runs import baseline, monitor_config, monitor_once, write_captures

pytestmark = pytest.mark.integration


def test_attribution_model_down_is_one_log_line(
    start_demo_model: Callable[..., str], tmp_path: Path
) -> None:
    model = start_demo_model()
    rows = [",".join(f"{v:.1f}" for v in row) for row in load_iris().data]
    train = tmp_path / "train.csv"
    train.write_text("a,b,c,d\n" + "\n".join(rows) + "\n")
    for flags in ([], ["--attribution", "--model-url", f"{model}/invocations",
                       "--score-index", "1", "--explain-rows", "10"]):  # fmt: skip
        out = tmp_path / ("abase" if flags else "dbase")
        done = baseline(str(train), "-o", str(out), "-q", *flags)
        assert done.returncode == 0, done.stderr
    write_captures(tmp_path / "captures", "iris", [(r, "setosa,0.9") for r in rows[:40]])
    down = f"http://127.0.0.1:{free_port()}/invocations"
    config = monitor_config(
        tmp_path,
        f'name = "iris"\nbaseline = "file://{tmp_path / "dbase"}"\n'
        f'[endpoints.attribution]\nbaseline = "file://{tmp_path / "abase"}"\n'
        f'model_url = "{down}"\nscore_index = 1\nrows = 5\n',
    )
    done = monitor_once(config)
    assert done.returncode == 1, done.stderr  # the run failed
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert "attribution for iris/AllTraffic failed" in errors[0] and down in errors[0]
    (run_json,) = (tmp_path / "reports").rglob("iris/AllTraffic/*/*/*/*/*/run.json")
    summary = orjson.loads(run_json.read_bytes())
    assert summary["status"] == "Failed" and summary["rows"] == 40
