"""Generate the benchmark dataset (the drift scenario's kinds of column, docs/drift.md §5, without
drift) as Parquet: 20 numeric + 5 categorical columns.

Numeric: normal, lognormal, uniform and integer counts (5 of each kind, different parameters);
categorical: cardinalities 3, 10, 50, 1,000 and 10,000 with Zipf-like frequencies; about 1% of
the values missing in six columns. Written in row groups of 250k rows, so generating 10M rows
needs no more memory than 250k.

    python bench/profile/gen_data.py --rows 1000000 --out bench/out/profile/data_1000000.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CARDINALITIES = (3, 10, 50, 1_000, 10_000)
MISSING = {"num_00", "num_05", "num_10", "num_15", "cat_1", "cat_3"}  # ~1% missing each
GROUP_ROWS = 250_000


def _categories(card: int) -> tuple[pa.Array, np.ndarray]:
    names = pa.array([f"c{card}_{i}" for i in range(card)], pa.string())
    p = 1.0 / np.arange(1, card + 1) ** 1.1
    return names, p / p.sum()


def make_group(
    rng: np.random.Generator, n: int, cats: list[tuple[pa.Array, np.ndarray]]
) -> pa.Table:
    cols: dict[str, pa.Array] = {}
    for j in range(20):
        kind = j % 4
        if kind == 0:
            x = rng.normal(10.0 * j, 1.0 + j, n)
        elif kind == 1:
            x = rng.lognormal(0.1 * j, 0.5 + 0.05 * j, n)
        elif kind == 2:
            x = rng.uniform(-j, 3.0 * j + 1, n)
        else:
            x = rng.poisson(1.0 + j, n).astype(np.int64)
        name = f"num_{j:02d}"
        mask = rng.random(n) < 0.01 if name in MISSING else None
        cols[name] = pa.array(x, mask=mask)
    for k, (names, p) in enumerate(cats):
        idx = rng.choice(len(p), n, p=p)
        name = f"cat_{k}"
        arr = names.take(pa.array(idx))
        if name in MISSING:
            arr = pa.array(
                arr.to_numpy(zero_copy_only=False), pa.string(), mask=rng.random(n) < 0.01
            )
        cols[name] = arr
    return pa.table(cols)


def generate(rows: int, out: Path, seed: int = 0) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cats = [_categories(c) for c in CARDINALITIES]
    tmp = out.with_suffix(".tmp")
    writer = None
    try:
        done = 0
        while done < rows:
            n = min(GROUP_ROWS, rows - done)
            table = make_group(rng, n, cats)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            done += n
    finally:
        if writer is not None:
            writer.close()
    tmp.rename(out)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    generate(args.rows, args.out, args.seed)


if __name__ == "__main__":
    main()
