"""Damaged or misspelt baseline files, through `modeltap monitor --once`: one line naming the file.

A truncated statistics.json was a 32-line orjson traceback; a constraints.json of the wrong shape
failed the run with a TypeError traceback in the log; an unknown key (SageMaker's documentation
spells ``comparison_method`` as ``comparion_method``) was ignored without a word, leaving the
default in force.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from analyzer.baseline_files import check_constraints_file, unknown_constraint_keys
from analyzer.errors import BaselineFormatError
from tests.analyzer.cli_runs import built_baseline, monitor_config, monitor_once, one_line

pytestmark = pytest.mark.command  # runs a modeltap command in a child process

TRAIN = "a,b\n" + "".join(f"{i % 7},{'xyz'[i % 3]}\n" for i in range(60))


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    base = built_baseline(tmp_path, TRAIN)
    config = monitor_config(tmp_path, f'name = "ep"\nbaseline = "file://{base}"\n')
    return base, config


def test_truncated_statistics_is_one_line_naming_the_file(tmp_path: Path) -> None:
    base, config = _setup(tmp_path)
    stats = base / "statistics.json"
    stats.write_bytes(stats.read_bytes()[:200])
    done = monitor_once(config)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert f"file://{base}/statistics.json is not valid JSON" in line, line


def test_statistics_of_the_wrong_shape_is_one_line(tmp_path: Path) -> None:
    base, config = _setup(tmp_path)
    (base / "statistics.json").write_text(
        '{"version": 0, "dataset": {"item_count": 3}, "features": 7}'
    )
    done = monitor_once(config)
    assert done.returncode == 2
    assert f"file://{base}/statistics.json" in one_line(done.stderr)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c.update(features={"a": 1}), "$.features: expected array, got dict"),
        (lambda c: c["features"].append("b"), "$.features[2]: expected object, got str"),
        (lambda c: c.update(monitoring_config=[]), "$.monitoring_config: expected object"),
        (
            lambda c: c["monitoring_config"]["distribution_constraints"].update(
                comparison_threshold="high"
            ),
            "comparison_threshold: expected number, got str",
        ),
        (
            lambda c: c["features"][0].update(monitoringConfigOverrides={"comparison_method": "X"}),
            "comparison_method: 'X' is not one of ['Simple', 'Robust']",
        ),
    ],
)
def test_constraints_of_the_wrong_shape_are_one_line(
    tmp_path: Path, mutate: object, expected: str
) -> None:
    base, config = _setup(tmp_path)
    path = base / "constraints.json"
    cons = json.loads(path.read_text())
    mutate(cons)  # type: ignore[operator]
    path.write_text(json.dumps(cons))
    done = monitor_once(config)
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)
    assert f"file://{base}/constraints.json does not follow the format" in line, line
    assert expected in line, line


def _misspelt(base: Path) -> None:
    path = base / "constraints.json"
    cons = json.loads(path.read_text())
    dist = cons["monitoring_config"]["distribution_constraints"]
    dist["comparion_method"] = dist.pop("comparison_method")
    cons["features"][0]["monitoringConfigOverrides"] = {"comparision_threshold": 0.5}
    path.write_text(json.dumps(cons))


def test_unknown_constraint_keys_are_named_with_the_nearest_known_one(tmp_path: Path) -> None:
    base, config = _setup(tmp_path)
    _misspelt(base)
    done = monitor_once(config)
    assert done.returncode == 0, done.stderr  # a warning: the run goes on
    warnings = [line for line in done.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 2, done.stderr
    assert (
        "monitoring_config.distribution_constraints.comparion_method "
        "(did you mean 'comparison_method'?) is ignored"
    ) in warnings[0]
    assert (
        "features[0] ('a').monitoringConfigOverrides.comparision_threshold "
        "(did you mean 'comparison_threshold'?)"
    ) in warnings[1]
    assert all(f"file://{base}/constraints.json" in w for w in warnings)
    (run_json,) = [p for p in (tmp_path / "reports").rglob("run.json") if "latest" not in p.parts]
    assert orjson.loads(run_json.read_bytes())["status"] == "NoData"


def test_strict_constraints_refuses_unknown_keys(tmp_path: Path) -> None:
    base, config = _setup(tmp_path)
    _misspelt(base)
    done = monitor_once(config, "--strict-constraints")
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "comparion_method (did you mean 'comparison_method'?)" in line
    config.write_text(
        config.read_text().replace("[monitor]\n", "[monitor]\nstrict_constraints = true\n")
    )
    done = monitor_once(config)
    assert done.returncode == 2 and "strict_constraints is on" in one_line(done.stderr)


def test_what_the_checks_read_is_known() -> None:
    """Every key the project writes (and SageMaker writes) passes without a warning."""
    cons = {
        "version": 0.0,
        "features": [
            {"name": "a", "inferred_type": "Integral", "completeness": 1.0,
             "num_constraints": {"is_non_negative": True},
             "monitoringConfigOverrides": {"comparison_threshold": 0.2,
                                           "distribution_constraints": {"perform_comparison": "Disabled"}}},
            {"name": "b", "inferred_type": "String", "string_constraints": {"domains": ["x"]},
             "modeltap": {"anything": 1}},
        ],
        "monitoring_config": {
            "evaluate_constraints": "Enabled", "emit_metrics": "Enabled",
            "datatype_check_threshold": 0.1, "domain_content_threshold": 0.1,
            "distribution_constraints": {
                "perform_comparison": "Enabled", "comparison_threshold": 0.1,
                "comparison_method": "Robust", "categorical_comparison_threshold": 0.1,
                "categorical_drift_method": "LInfinity",
            },
        },
    }  # fmt: skip
    assert unknown_constraint_keys(cons) == []
    assert check_constraints_file(cons, "c.json", strict=True) == []
    with pytest.raises(BaselineFormatError, match=r"c.json: unknown key\(s\) verison"):
        check_constraints_file({**cons, "verison": 1}, "c.json", strict=True)


@pytest.mark.parametrize(
    ("background", "expected"),
    [
        (b'{"rows": [[1.0]]}', "background.json does not follow the format"),
        (b'{"features": ["a"], "rows": [[1.0]], "weig', "background.json is not valid JSON"),
    ],
)
def test_attribution_baseline_files_that_are_wrong_are_one_line(
    tmp_path: Path, background: bytes, expected: str
) -> None:
    base = built_baseline(tmp_path, TRAIN)
    abase = tmp_path / "abase"
    abase.mkdir()
    (abase / "analysis.json").write_text("{}")
    (abase / "background.json").write_bytes(background)
    config = monitor_config(
        tmp_path,
        f'name = "ep"\nbaseline = "file://{base}"\n[endpoints.attribution]\n'
        f'baseline = "file://{abase}"\nmodel_url = "http://127.0.0.1:9/invocations"\n',
    )
    done = monitor_once(config)
    assert done.returncode == 2
    assert f"file://{abase}/{expected}" in one_line(done.stderr)
