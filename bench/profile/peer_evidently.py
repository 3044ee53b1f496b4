"""Evidently's data summary report on one Parquet file (run in bench/.venv-peers); one JSON line.

DataSummaryPreset is Evidently's per-column statistics report, the counterpart of a baseline
profile (a drift report needs a second dataset).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("DO_NOT_TRACK", "1")

import pandas as pd
from evidently import Report
from evidently.presets import DataSummaryPreset


def main() -> None:
    t0 = time.perf_counter()
    df = pd.read_parquet(sys.argv[1])
    t1 = time.perf_counter()
    snapshot = Report([DataSummaryPreset()]).run(current_data=df, reference_data=None)
    out = snapshot.dict()
    t2 = time.perf_counter()
    print(
        json.dumps(
            {"read_s": t1 - t0, "compute_s": t2 - t1, "metrics": len(out.get("metrics", []))}
        )
    )


if __name__ == "__main__":
    main()
