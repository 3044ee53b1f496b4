"""The spool writer alone: CPU per record with no event loop beside it.

Queues N capture items of a CSV body of the given size (request and response), starts a
``SpoolWriter`` with the sidecar's defaults (direct I/O, fsync at seal, glibc tuned as
``python -m sidecar`` tunes it, niceness 0), lets it write them all and stops it. The process's
CPU time over that span is the writer's (the main thread only waits in ``join``). Under load
the writer costs more (bench/proxy's *writer CPU us/record*): it runs in short slices beside
the event loop, with cold caches. Run it from a tree to measure that tree's build, e.g.::

    .venv/bin/python bench/proxy/writer_alone.py --tree build/compiled --size 102400 --records 3000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[2])
    p.add_argument("--size", type=int, default=100 * 1024, help="body bytes (each side)")
    p.add_argument("--records", type=int, default=3000)
    p.add_argument("--dir", type=Path, default=None, help="spool parent dir (default: a temp dir)")
    a = p.parse_args()
    tree = a.tree.resolve()
    sys.path.insert(0, str(tree))
    from prometheus_client import CollectorRegistry

    import sidecar.spool as spool
    from modeltap.core.record import CaptureItem
    from sidecar.config import CaptureConfig, SpoolConfig
    from sidecar.memory import tune_malloc
    from sidecar.metrics import SidecarMetrics

    tune_malloc()
    row = b"5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3\n"
    body = (row * (a.size // len(row) + 1))[: a.size - 1] + b"\n"
    work = Path(tempfile.mkdtemp(prefix="writer-alone-", dir=a.dir))
    try:
        metrics = SidecarMetrics(CollectorRegistry())
        writer = spool.SpoolWriter(
            SpoolConfig(dir=work / "spool", writer_nice=0, max_bytes=0),
            CaptureConfig(
                queue_size=a.records + 1, queue_max_bytes=1 << 50, queue_max_age_seconds=1e9
            ),
            metrics,
            spool.SpoolUsage(metrics.spool_bytes.set),
            disk_usage=lambda _p: 0.1,
        )
        now = time.time()
        for _ in range(a.records):
            item = CaptureItem(
                inference_time=now,
                method="POST",
                path="/invocations",
                status=200,
                model_latency_s=0.0012,
                inference_id=None,
                target_model=None,
                input_body=body,
                input_content_type="text/csv",
                output_body=body,
                output_content_type="text/csv",
            )
            writer.offer(item)
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        writer.start()
        writer.stop()
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        written = sum(f.stat().st_size for f in (work / "spool").rglob("*.jsonl"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = a.records
    user = (after.ru_utime - before.ru_utime) / n * 1e6
    system = (after.ru_stime - before.ru_stime) / n * 1e6
    built = "compiled" if spool.__file__ and not spool.__file__.endswith(".py") else "pure Python"
    print(
        f"{built} ({tree}): {n} records of {written / n:,.0f} bytes; CPU per record "
        f"{user:.1f} us user + {system:.1f} us sys = {user + system:.1f} us; "
        f"{(after.ru_minflt - before.ru_minflt) / n:.1f} page faults per record; "
        f"{wall:.2f} s wall, {written / wall / 1e6:,.0f} MB/s written"
    )
    return 0


if __name__ == "__main__":
    os.environ.pop("MODELTAP_COMPILE", None)
    sys.exit(main())
