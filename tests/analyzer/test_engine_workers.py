"""workers = 0: the analyzer's worker count from the container's CPU quota and memory limit,
read from cgroup files (v2 and v1 layouts written here), logged with its reasons."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from analyzer.engine import (
    PARENT_MEMORY_BYTES,
    WORKER_MEMORY_BYTES,
    ProcessEngine,
    available_cpus,
    cgroup_cpu_quota,
    cgroup_memory_limit,
    default_workers,
)

GIB = 1 << 30


def v2(root: Path, cpu: str = "max 100000", memory: str = "max") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(cpu + "\n")
    (root / "memory.max").write_text(memory + "\n")
    return root


def v1(
    root: Path, quota: int = -1, period: int = 100000, memory: int = 9223372036854771712
) -> Path:
    (root / "cpu,cpuacct").mkdir(parents=True)
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (root / "cpu,cpuacct" / "cpu.cfs_period_us").write_text(f"{period}\n")
    (root / "memory").mkdir()
    (root / "memory" / "memory.limit_in_bytes").write_text(f"{memory}\n")
    return root


def test_no_limits_one_worker_per_core(tmp_path: Path) -> None:
    root = v2(tmp_path)
    assert cgroup_cpu_quota(root) is None and cgroup_memory_limit(root) is None
    workers, why = default_workers(root, affinity=32)
    assert workers == 32
    assert "no CPU quota" in why and "no memory limit" in why


def test_the_shipped_analyzer_on_a_32_core_node(tmp_path: Path) -> None:
    """No CPU limit, a 1 GiB memory limit (issue 18): 32 workers would need ~10 GiB."""
    root = v2(tmp_path, memory=str(GIB))
    workers, why = default_workers(root, affinity=32)
    assert workers == (GIB - PARENT_MEMORY_BYTES) // WORKER_MEMORY_BYTES == 1
    assert f"memory limit 1024 MiB ({root / 'memory.max'})" in why


def test_cpu_quota_caps_the_cores_v2(tmp_path: Path) -> None:
    root = v2(tmp_path, cpu="250000 100000", memory=str(8 * GIB))
    assert cgroup_cpu_quota(root) == (2.5, str(root / "cpu.max"))
    assert available_cpus(root) <= 3
    workers, why = default_workers(root, affinity=32)
    assert workers == 3  # 2.5 cores round up; 8 GiB fits 20
    assert "CPU quota 2.5 core(s)" in why


def test_cgroup_v1_quota_and_limit(tmp_path: Path) -> None:
    root = v1(tmp_path, quota=400000, memory=2 * GIB)
    assert cgroup_cpu_quota(root) == (4.0, str(root / "cpu,cpuacct" / "cpu.cfs_quota_us"))
    assert cgroup_memory_limit(root) == (2 * GIB, str(root / "memory" / "memory.limit_in_bytes"))
    assert (
        default_workers(root, affinity=16)[0]
        == (2 * GIB - PARENT_MEMORY_BYTES) // WORKER_MEMORY_BYTES
    )


def test_cgroup_v1_unlimited(tmp_path: Path) -> None:
    root = v1(tmp_path)
    assert cgroup_cpu_quota(root) is None and cgroup_memory_limit(root) is None
    assert default_workers(root, affinity=6)[0] == 6


def test_a_tiny_limit_still_gives_one_worker(tmp_path: Path) -> None:
    assert (
        default_workers(v2(tmp_path, cpu="10000 100000", memory=str(256 << 20)), affinity=8)[0] == 1
    )


def test_no_cgroup_files(tmp_path: Path) -> None:
    assert default_workers(tmp_path, affinity=4) == (
        4,
        "4 core(s) in the CPU affinity; no CPU quota; no memory limit",
    )


def test_the_engine_logs_what_it_chose(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="analyzer.engine"):
        auto = ProcessEngine(0)
        fixed = ProcessEngine(2)
    assert fixed.workers == 2
    lines = [r.getMessage() for r in caplog.records if "analyzer workers" in r.getMessage()]
    assert lines[0].startswith(f"analyzer workers: {auto.workers} (workers = 0: ")
    assert lines[1] == "analyzer workers: 2 (set by workers)"
