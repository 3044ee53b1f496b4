"""whylogs or Evidently drift decisions on a reference/current Parquet pair (run in
bench/.venv-peers); prints one JSON line: the features each flags, and read/compute times.

    bench/.venv-peers/bin/python bench/monitor/peer_drift.py whylogs REF.parquet CUR.parquet
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
os.environ.setdefault("DO_NOT_TRACK", "1")

import pandas as pd


def _stub_ipython() -> None:
    """whylogs.viz imports IPython (for notebook HTML) at package import; the drift scores do
    not use it, and the pinned peers venv has no IPython, so stand in an empty module."""
    import types

    try:
        import IPython  # noqa: F401
    except ImportError:
        display = types.ModuleType("IPython.core.display")
        display.HTML = type("HTML", (), {})  # type: ignore[attr-defined]
        core = types.ModuleType("IPython.core")
        core.display = display  # type: ignore[attr-defined]
        root = types.ModuleType("IPython")
        root.core = core  # type: ignore[attr-defined]
        sys.modules.update({"IPython": root, "IPython.core": core, "IPython.core.display": display})


def whylogs_drift(ref: pd.DataFrame, cur: pd.DataFrame) -> dict:
    _stub_ipython()
    import whylogs as why
    from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

    ref_view = why.log(ref).view()
    cur_view = why.log(cur).view()
    scores = calculate_drift_scores(
        target_view=cur_view, reference_view=ref_view, with_thresholds=True
    )
    flagged = sorted(c for c, s in scores.items() if s and s.get("drift_category") == "DRIFT")
    possible = sorted(
        c for c, s in scores.items() if s and s.get("drift_category") == "POSSIBLE_DRIFT"
    )
    algos = sorted({str(s.get("algorithm")) for s in scores.values() if s})
    return {"drifted": flagged, "possible": possible, "methods": algos}


def evidently_drift(ref: pd.DataFrame, cur: pd.DataFrame) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [c for c in ref.columns if pd.api.types.is_numeric_dtype(ref[c])]
    categorical = [c for c in ref.columns if c not in numeric]
    dd = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
    )
    flagged, methods = [], set()
    for m in snapshot.dict()["metrics"]:
        cfg = m.get("config", {})
        if not str(cfg.get("type", "")).endswith("ValueDrift"):
            continue
        method, threshold, value = str(cfg["method"]), float(cfg["threshold"]), m["value"]
        methods.add(f"{method} {threshold:g}")
        # Evidently: a p-value test drifts below its threshold, a distance at or above it
        drifted = value < threshold if "p_value" in method else value >= threshold
        if drifted:
            flagged.append(cfg["column"])
    return {"drifted": sorted(flagged), "possible": [], "methods": sorted(methods)}


def main() -> None:
    tool, ref_path, cur_path = sys.argv[1:4]
    t0 = time.perf_counter()
    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    t1 = time.perf_counter()
    out = whylogs_drift(ref, cur) if tool == "whylogs" else evidently_drift(ref, cur)
    t2 = time.perf_counter()
    out.update(read_s=t1 - t0, compute_s=t2 - t1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
