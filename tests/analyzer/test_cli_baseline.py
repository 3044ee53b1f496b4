"""``modeltap baseline`` end to end through ``analyzer.cli.baseline.main``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analyzer import InferredType
from analyzer.baseline_config import load_baseline_config
from analyzer.cli.baseline import build_parser, main
from analyzer.schema import check_constraints, check_statistics
from analyzer.statistics import profile_from_statistics
from modeltap.core.store_config import StoreConnection


@pytest.fixture
def parquet_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    n = 5000
    amount = rng.lognormal(3, 1, n)
    amount[::50] = np.nan
    table = pa.table(
        {
            "amount": amount,
            "items": rng.integers(1, 9, n),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "code": rng.integers(100, 104, n),
            "churned": rng.integers(0, 2, n),
        }
    )
    path = tmp_path / "train.parquet"
    pq.write_table(table, path)
    return path


def test_writes_statistics_and_constraints(
    parquet_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "baseline"
    status = main(
        [
            str(parquet_file),
            "-o",
            str(out),
            "--type",
            "code=String",
            "--label",
            "churned",
            "--completeness-tolerance",
            "0.01",
            "--categorical-drift-method",
            "ChiSquared",
        ]
    )
    assert status == 0
    stats = json.loads((out / "statistics.json").read_text())
    cons = json.loads((out / "constraints.json").read_text())
    check_statistics(stats)
    check_constraints(cons)
    prof = profile_from_statistics(stats)
    assert prof.item_count == 5000
    assert prof.inferred_type("code") is InferredType.STRING
    assert prof.config.label == "churned"
    by_name = {f["name"]: f for f in cons["features"]}
    assert by_name["amount"]["completeness"] == pytest.approx(0.98 - 0.01)
    assert by_name["code"]["string_constraints"]["domains"] == ["100", "101", "102", "103"]
    assert (
        cons["monitoring_config"]["distribution_constraints"]["categorical_drift_method"]
        == "ChiSquared"
    )
    err = capsys.readouterr().err
    assert "profiled 5,000 rows x 5 columns" in err and "statistics.json" in err


def test_dataset_format_csv_without_header(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("1,a\n2,b\n3,a\n")
    out = tmp_path / "o"
    assert (
        main([str(f), "-o", str(out), "--dataset-format", '{"csv": {"header": false}}', "-q"]) == 0
    )
    stats = json.loads((out / "statistics.json").read_text())
    assert [x["name"] for x in stats["features"]] == ["_c0", "_c1"]


def test_store_output(parquet_file: Path, tmp_path: Path) -> None:
    dest = tmp_path / "store"
    dest.mkdir()
    assert main([str(parquet_file), "-o", f"file://{dest}/baselines/v1", "-q"]) == 0
    assert (dest / "baselines" / "v1" / "statistics.json").is_file()
    assert (dest / "baselines" / "v1" / "constraints.json").is_file()


def test_data_error_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "r.csv"
    f.write_text("a,b\n1,2\n3\n")
    assert main([str(f), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert f"{f}, line 3: ragged row" in err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["x.csv", "-o", "o", "--type", "a=Bool"]) == 2
    assert "use one of Integral, Fractional, String, Unknown" in capsys.readouterr().err
    assert main(["x.csv"]) == 2
    assert main(["--help"]) == 0


def test_unknown_label_column(
    parquet_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(parquet_file), "-o", str(tmp_path / "o"), "--label", "nope"]) == 1
    assert "column 'nope': no such column" in capsys.readouterr().err


def store_config(args: argparse.Namespace, env: dict[str, str]) -> StoreConnection:
    return load_baseline_config(args, env).store


def test_store_settings_from_flags_or_environment(tmp_path: Path) -> None:
    env = {
        "MODELTAP_ANALYZER_STORE_ENDPOINT_URL": "http://env:8333",
        "MODELTAP_ANALYZER_STORE_REGION": "eu-west-1",
        "MODELTAP_ANALYZER_STORE_PATH_STYLE": "yes",
    }
    plain = build_parser().parse_args(["d.csv", "-o", "out"])
    cfg = store_config(plain, {})
    assert (cfg.endpoint_url, cfg.region, cfg.path_style) == ("", "", False)
    cfg = store_config(plain, env)
    assert (cfg.endpoint_url, cfg.region, cfg.path_style) == ("http://env:8333", "eu-west-1", True)
    # The baseline's own variables beat the earlier names.
    cfg = store_config(plain, {**env, "MODELTAP_BASELINE_STORE_REGION": "ap-south-1"})
    assert cfg.region == "ap-south-1"
    flags = build_parser().parse_args(
        [
            *("d.csv", "-o", "out", "--store-endpoint-url", "http://flag:9000"),
            *("--store-region", "r1", "--no-store-path-style"),
        ]
    )
    cfg = store_config(flags, env)  # a flag wins over the environment
    assert (cfg.endpoint_url, cfg.region, cfg.path_style) == ("http://flag:9000", "r1", False)


def test_every_option_has_a_variable(tmp_path: Path) -> None:
    args = build_parser().parse_args(["d.csv", "-o", "out", "--kll-k", "512"])
    env = {"MODELTAP_BASELINE_PROFILE_KLL_K": "1024", "MODELTAP_BASELINE_PROFILE_BINS": "50"}
    cfg = load_baseline_config(args, env)
    profile = cfg.tables["profile"]
    assert (profile.kll_k, profile.bins) == (512, 50)  # the flag beats the variable


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--kll-k", "many"], {}, "--kll-k='many': expected an integer"),
        (["--block-mib", "0"], {}, "--block-mib=0: must be >= 1"),
        (["--engine", "spark"], {}, "--engine='spark': must be one of 'local', 'dask'"),
        (["--format", "xlsx"], {}, "--format='xlsx': must be one of"),
        ([], {"MODELTAP_BASELINE_PROFILE_KLLK": "1"},
         "unknown environment variable MODELTAP_BASELINE_PROFILE_KLLK (did you mean MODELTAP_BASELINE_PROFILE_KLL_K?)"),
        ([], {"MODELTAP_BASELINE_SCALEOUT_WORKERS": "-1"}, "MODELTAP_BASELINE_SCALEOUT_WORKERS=-1: must be >= 0"),
        (["--kll-kk", "1"], {}, "unrecognized arguments: --kll-kk"),
        (["--workers"], {}, "argument --workers: expected one argument"),
        # These exited 1 ("error: kll_k must be within 8..65535") as if the data were bad.
        (["--kll-k", "4"], {}, "--kll-k=4: must be >= 8"),
        (["--cpc-lg-k", "40"], {}, "--cpc-lg-k=40: must be <= 26"),
        (["--completeness-tolerance", "2"], {}, "--completeness-tolerance=2.0: must be <= 1"),
        (["--mixed-type-threshold", "1"], {}, "--mixed-type-threshold=1.0: must be < 1"),
        (["--label", "y", "--prediction", "p", "--bias-facet", "a", "--bias-facet-values", "x",
          "--bias-facet-threshold", "1"], {}, "--bias-facet: facet 'a': give values or a threshold, not both"),
        (["--attribution", "--model-url", "ftp://m"], {}, "--model-url: model url must be http(s)://"),
    ],
)  # fmt: skip
def test_bad_options_exit_2_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    f = tmp_path / "d.csv"
    f.write_text("v\n1\n")
    assert main([str(f), "-o", str(tmp_path / "o"), *argv], env) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1, err


def test_bad_path_style_variable_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "d.csv"
    f.write_text("v\n1\n")
    monkeypatch.setenv("MODELTAP_ANALYZER_STORE_PATH_STYLE", "maybe")
    assert main([str(f), "-o", str(tmp_path / "o")]) == 2  # bad configuration
    assert "MODELTAP_ANALYZER_STORE_PATH_STYLE='maybe': expected true or false" in (
        capsys.readouterr().err
    )
