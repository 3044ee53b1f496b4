"""Run every atheris harness for a while and say what it found (``make fuzz`` calls this).

Each harness runs as its own process on a scratch copy of its seed corpus (fuzz/corpus/<name>),
so the corpus libFuzzer grows does not land in the repository; crashes are written to
fuzz/artifacts/ (git-ignored) as ``<name>-crash-<sha1>``, the input that reproduces them:
``python fuzz/<name>.py fuzz/artifacts/<file>``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = ("captures", "payloads", "groundtruth", "readers", "config")


def run(name: str, seconds: int, work: Path) -> tuple[int, str]:
    corpus = work / name
    shutil.copytree(HERE / "corpus" / name, corpus)
    artifacts = HERE / "artifacts"
    artifacts.mkdir(exist_ok=True)
    cmd = [
        sys.executable, str(HERE / f"{name}.py"), str(corpus),
        f"-max_total_time={seconds}", f"-artifact_prefix={artifacts}/{name}-",
        "-rss_limit_mb=2048", "-timeout=20", "-print_final_stats=1",
    ]  # fmt: skip
    started = time.monotonic()
    # TMPDIR inside the scratch dir: what a harness leaves there goes when the run ends
    # (libFuzzer's exit skips atexit handlers).
    env = {**os.environ, "TMPDIR": str(work)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, env=env)
    log = done.stdout + done.stderr
    (work / f"{name}.log").write_text(log)
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    cov = re.findall(r"#\d+\s+\w+\s+cov: (\d+) ft: (\d+)", log)
    crash = re.search(r"Test unit written to (\S+)", log)
    summary = (
        f"{name}: {'CRASH ' + crash.group(1) if crash else 'no crash'}, "
        f"{runs[-1] if runs else '?'} inputs in {time.monotonic() - started:.0f} s, "
        f"coverage {cov[-1][0] if cov else '?'} edges / {cov[-1][1] if cov else '?'} features, "
        f"corpus {sum(1 for _ in corpus.iterdir())} inputs"
    )
    if done.returncode != 0:
        tail = [ln for ln in log.splitlines() if "Error" in ln or "Traceback" in ln][-5:]
        summary += "\n  " + "\n  ".join(tail)
    return done.returncode, summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=60, help="per harness (60)")
    p.add_argument("harness", nargs="*", help=f"among {', '.join(HARNESSES)} (default: all)")
    a = p.parse_args()
    for name in a.harness:
        if name not in HARNESSES:
            p.error(f"unknown harness {name!r}")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="mt-fuzz-") as tmp:
        for name in a.harness or HARNESSES:
            rc, summary = run(name, a.seconds, Path(tmp))
            failed += rc != 0
            print(summary, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
