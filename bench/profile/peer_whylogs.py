"""whylogs profiling of one Parquet file (run in bench/.venv-peers); prints one JSON line."""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")

import pandas as pd
import whylogs as why


def main() -> None:
    t0 = time.perf_counter()
    df = pd.read_parquet(sys.argv[1])
    t1 = time.perf_counter()
    view = why.log(df).view()
    summary = view.to_pandas()  # materialise every metric, as a user reading the profile would
    t2 = time.perf_counter()
    print(json.dumps({"read_s": t1 - t0, "compute_s": t2 - t1, "columns": len(summary)}))


if __name__ == "__main__":
    main()
