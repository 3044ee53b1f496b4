"""Where the sidecar's CPU goes under load: per-thread CPU per request, then py-spy hot spots.

Two views, because py-spy alone misleads here: its idle detection does not recognise threads
blocked in ``queue.get`` (the spool writer, the to_thread pool), so a plain profile is mostly idle
waiting. ``py-spy --gil`` keeps only samples of the thread holding the GIL, i.e. the Python-level
work that is serialised on the one core; the per-thread utime/stime split (from /proc, without
py-spy attached) covers what runs with the GIL released (syscalls: writes, fsync).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loadgen import run_wrk
from procs import Pinning

from bench.common import CLK_TCK, WRK

PY_SPY = str(Path(sys.executable).with_name("py-spy"))
PERF = shutil.which("perf")
_THREAD = re.compile(r"^thread \((\w+)\): ([^;]*);?")
_DUMP_THREAD = re.compile(r'^Thread (\d+) \([^)]*\): "(.*)"', re.M)
_FILE = re.compile(r"\(([^():]+)(?::\d+)?\)$")
# Frames every stack starts with: they say nothing about where the time goes.
_ROOT_FRAMES = ("<frozen runpy>", "sidecar/__main__.py", "asyncio/runners.py", "Thread.")

ThreadTimes = dict[int, tuple[int, int]]  # tid -> (utime, stime) in clock ticks


# -- per-thread CPU ----------------------------------------------------------------------------
def thread_times(pid: int) -> ThreadTimes:
    times = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        times[int(task.name)] = (int(fields[11]), int(fields[12]))
    return times


def thread_names(pid: int) -> dict[int, str]:
    """Python thread names by native id, from ``py-spy dump`` (the OS only knows 'python')."""
    done = subprocess.run(
        [PY_SPY, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60, check=False
    )
    return {int(tid): name for tid, name in _DUMP_THREAD.findall(done.stdout)}


def _role(name: str) -> str:
    if name == "MainThread":
        return "event loop (MainThread)"
    if name == "modeltap-spool":
        return "spool writer thread"
    return "to_thread pool (uploader file I/O, /metrics), all threads"


def thread_split(
    pid: int,
    url: str,
    script: Path,
    connections: int,
    seconds: int,
    pin: Pinning,
    settle: Callable[[], object],
) -> str:
    """CPU per request of each sidecar thread over one wrk run (queue drained before and after)."""
    run_wrk(url, script, connections, 1, pin)
    settle()
    before = thread_times(pid)
    result = run_wrk(url, script, connections, seconds, pin)
    settle()
    after = thread_times(pid)
    names = thread_names(pid)
    n = max(result.requests, 1)
    rows: Counter[str] = Counter()
    for tid, (user, system) in after.items():
        u0, s0 = before.get(tid, (0, 0))
        role = _role(names.get(tid, f"tid {tid}"))
        rows[f"{role}|user"] += user - u0
        rows[f"{role}|sys"] += system - s0
    lines = [
        f"{result.rps:,.0f} req/s, {n} requests; CPU per request by thread (us user + sys):",
        "",
    ]
    for role in sorted({key.split("|")[0] for key in rows}):
        user_us = rows[f"{role}|user"] / CLK_TCK / n * 1e6
        sys_us = rows[f"{role}|sys"] / CLK_TCK / n * 1e6
        if user_us + sys_us:
            lines.append(f"- {role}: {user_us:.0f} + {sys_us:.0f} = {user_us + sys_us:.0f} us")
    total = sum(rows.values()) / CLK_TCK / n * 1e6
    lines.append(f"- whole process: {total:.0f} us")
    return "\n".join(lines)


# -- py-spy ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    samples: int
    threads: Counter[str]
    self_time: Counter[str]
    inclusive: Counter[str]
    by_file: Counter[str]
    by_package: Counter[str]


def record(
    pid: int,
    url: str,
    script: Path,
    connections: int,
    seconds: int,
    out: Path,
    pin: Pinning,
    native: bool = False,
) -> Profile:
    """Run wrk against ``url`` while ``py-spy --gil`` samples ``pid`` (py-spy on the load CPU)."""
    wrk = subprocess.Popen(
        [
            *pin.prefix(pin.load_cpu),
            *(WRK, "-t1", f"-c{connections}", f"-d{seconds + 3}s", "-s", str(script), url),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        spy = [PY_SPY, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250"]
        spy += ["--format", "raw", "--threads", "--gil", "-o", str(out)]
        spy += ["--native"] if native else []
        subprocess.run(
            [*pin.prefix(pin.load_cpu), *spy], check=True, capture_output=True, timeout=seconds + 60
        )
    finally:
        wrk.wait(seconds + 60)
    return summarize(out)


def _frame_name(frame: str) -> str:
    """``handle (sidecar/proxy.py:88)`` -> ``handle (sidecar/proxy.py)``: aggregate by function."""
    return re.sub(r":\d+\)$", ")", frame.strip())


def _file_of(frame: str) -> str:
    match = _FILE.search(frame)
    return match.group(1) if match else frame


def summarize(raw: Path) -> Profile:
    """Self and inclusive sample counts per function from py-spy's raw (collapsed) output."""
    prof = Profile(0, Counter(), Counter(), Counter(), Counter(), Counter())
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        match = _THREAD.match(stack)
        if match:
            prof.threads[match.group(2)] += count
            stack = stack[match.end() :]
        frames = [_frame_name(f) for f in stack.split(";") if f.strip()]
        if frames:
            prof.self_time[frames[-1]] += count
            prof.by_file[_file_of(frames[-1])] += count
            prof.by_package[_file_of(frames[-1]).split("/")[0]] += count
        for name in set(frames):
            if not any(root in name for root in _ROOT_FRAMES):
                prof.inclusive[name] += count
    return Profile(
        total, prof.threads, prof.self_time, prof.inclusive, prof.by_file, prof.by_package
    )


def _share(counter: Counter[str], total: int, top: int) -> list[str]:
    return [f"- {n / total:5.1%}  {name}" for name, n in counter.most_common(top)]


def render(profile: Profile, top: int = 15) -> str:
    """Markdown: GIL samples per thread, top self-time files and functions, top inclusive."""
    total = max(profile.samples, 1)
    threads = ", ".join(f"{name} {n / total:.0%}" for name, n in profile.threads.most_common())
    return "\n".join(
        [
            f"{profile.samples} samples holding the GIL; by thread: {threads}.",
            "",
            "Self time by package (uvloop's C code shows as asyncio/runners.py):",
            *_share(profile.by_package, total, 8),
            "",
            f"Self time by file (top {top}):",
            *_share(profile.by_file, total, top),
            "",
            f"Self time by function (top {top}):",
            *_share(profile.self_time, total, top),
            "",
            f"Inclusive time by function (top {top}, entry frames left out):",
            *_share(profile.inclusive, total, top),
        ]
    )


# -- perf: native self time per thread (the compiled sidecar) --------------------------------
_PERF_ROW = re.compile(r"^\s+([\d.]+)%\s+(\d+):\S*\s+(\S+)\s+\[(.)\]\s+(.*)$")
# (category, test on (dso, symbol)), first match wins; kernel symbols by what they serve.
_CATEGORIES: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
    ("orjson (JSON escaping)", lambda d, _s: "orjson" in d),
    ("payload escaping (modeltap _jsonesc, C)", lambda d, _s: "_jsonesc" in d),
    ("UTF-8 decode", lambda _d, s: s.startswith(("ascii_decode", "unicode_decode_utf8"))),
    ("compiled modeltap code (mypyc)", lambda d, _s: "mypyc" in d),
    ("uvloop", lambda d, _s: d.startswith("loop.") or "uvloop" in d),
    ("httptools", lambda d, _s: d.startswith("parser.") or "httptools" in d),
    ("CPython runtime", lambda d, _s: "libpython" in d),
    ("memcpy", lambda d, s: d.startswith("libc") and "mem" in s),
    ("libc other (malloc)", lambda d, _s: d.startswith("libc")),
    (
        "kernel: page faults, page pinning",
        lambda d, s: (
            "kernel" in d
            and re.search(r"fault|page|folio|memcg|pte|rmap|lru|zap|madvise|gup|vma|mas_", s)
            is not None
        ),
    ),
    (
        "kernel: block I/O (direct writes)",
        lambda d, s: (
            "kernel" in d and re.search(r"blk|bio|virt|iowrite|ext4|iomap|vp_|dio", s) is not None
        ),
    ),
    (
        "kernel: scheduling (GIL hand-offs, sleeps, I/O waits)",
        lambda d, s: (
            "kernel" in d and re.search(r"futex|sched|switch|nanosleep|hrtimer|wake", s) is not None
        ),
    ),
    ("kernel: TCP, sockets, other", lambda d, _s: "kernel" in d),
)


def _category(dso: str, symbol: str) -> str:
    return next((name for name, test in _CATEGORIES if test(dso, symbol)), f"other ({dso})")


def perf_threads(
    pid: int,
    url: str,
    script: Path,
    connections: int,
    seconds: int,
    out: Path,
    pin: Pinning,
) -> str:
    """``perf record`` of the process (native frames: the compiled sidecar, orjson, the
    kernel) under wrk, summarised per thread: its share of the samples, self time by category
    and the top symbols. perf runs on the load CPU."""
    assert PERF is not None
    names = thread_names(pid)
    wrk = subprocess.Popen(
        [
            *pin.prefix(pin.load_cpu),
            *(WRK, "-t1", f"-c{connections}", f"-d{seconds + 3}s", "-s", str(script), url),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        rec = [PERF, "record", "-F", "999", "-p", str(pid), "-o", str(out), "--", "sleep"]
        done = subprocess.run(
            [*pin.prefix(pin.load_cpu), *rec, str(seconds)],
            check=False,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        wrk.wait(seconds + 60)
    if done.returncode != 0 or not out.exists():  # e.g. kernel.perf_event_paranoid forbids it
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"(perf record failed, exit {done.returncode}: {why})"
    argv = [PERF, "report", "-i", str(out), "--no-children", "--sort", "pid,dso,sym"]
    report = subprocess.run(
        [*argv, "--stdio", "-g", "none"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return render_perf(report, names)


def render_perf(report: str, names: dict[int, str], top: int = 8) -> str:
    """Markdown from ``perf report --sort pid,dso,sym``: one entry per thread."""
    rows: dict[int, list[tuple[float, str, str]]] = {}
    for line in report.splitlines():
        m = _PERF_ROW.match(line)
        if m:
            rows.setdefault(int(m[2]), []).append((float(m[1]), m[3], m[5].strip()))
    grand = sum(p for found in rows.values() for p, _d, _s in found) or 1.0
    lines = []
    for tid, found in sorted(rows.items(), key=lambda kv: -sum(p for p, _d, _s in kv[1])):
        total = sum(p for p, _d, _s in found)
        if total / grand < 0.01:
            continue
        cats: Counter[str] = Counter()
        for pct, dso, sym in found:
            cats[_category(dso, sym)] += pct
        tops = sorted(found, reverse=True)[:top]
        lines += [
            f"- **{_role(names.get(tid, f'tid {tid}'))}**: {total / grand:.0%} of the samples. "
            "By category: "
            + "; ".join(
                f"{name} {n / total:.0%}" for name, n in cats.most_common(8) if n / total >= 0.01
            )
            + ". Top symbols: "
            + "; ".join(f"`{sym.split('@')[0][:50]}` {pct / total:.1%}" for pct, _d, sym in tops)
            + "."
        ]
    return "\n".join(lines)
