"""Evidently's data-drift HTML report of a reference/current Parquet pair (run in
bench/.venv-peers); prints one JSON line: read, run and save times.

    bench/.venv-peers/bin/python bench/report/peer_evidently_html.py REF CUR OUT.html
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("DO_NOT_TRACK", "1")

import pandas as pd


def main() -> None:
    ref_path, cur_path, out_path = sys.argv[1:4]
    t0 = time.perf_counter()
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    t1 = time.perf_counter()
    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    t2 = time.perf_counter()
    # Name the column kinds, as bench/monitor/peer_drift.py does (cat_10000 is not guessed as text)
    numeric = [c for c in ref.columns if pd.api.types.is_numeric_dtype(ref[c])]
    categorical = [c for c in ref.columns if c not in numeric]
    dd = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
    )
    t3 = time.perf_counter()
    snapshot.save_html(str(out_path))  # save_html writes only when given a str
    t4 = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": t1 - t0,
                "read_s": t2 - t1,
                "compute_s": t3 - t2,
                "render_s": t4 - t3,
                "build_s": t4 - t2,
            }
        )
    )


if __name__ == "__main__":
    main()
