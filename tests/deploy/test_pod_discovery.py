"""deploy/prometheus/prometheus.yml scrapes each annotated pod once, on its annotated port.

Prometheus's relabelling runs for real (``promtool check service-discovery``, Debian's package),
on the targets pod discovery makes of the rendered pod templates: the iris model pods, the
analyzer, and a pod without the annotation. Debian's Prometheus is built without Kubernetes
discovery, so the test hands the same targets to file discovery, made as Prometheus's pod role
makes them: one target per declared container port, one per container without ports, with the
``__meta_kubernetes_*`` labels of the pod and the container.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import DEPLOY, documents, render, run, system_tool

pytestmark = pytest.mark.integration


def _pods() -> list[dict[str, Any]]:
    docs = documents(render("overlays/s3"))
    pods = []
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        template = d["spec"]["template"]
        for i in range(d["spec"].get("replicas", 1)):
            pods.append(
                {
                    "name": f"{d['metadata']['name']}-{i}",
                    "namespace": d["metadata"]["namespace"],
                    "labels": template["metadata"].get("labels", {}),
                    "annotations": template["metadata"].get("annotations", {}),
                    "containers": copy.deepcopy(template["spec"]["containers"]),
                    "ip": f"10.0.{len(pods)}.1",
                }
            )
    plain = copy.deepcopy(pods[0])  # the same pod without prometheus.io annotations
    plain |= {"name": "unannotated", "annotations": {}, "ip": "10.0.99.1"}
    return [*pods, plain]


def _name(key: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def _targets(pod: dict[str, Any]) -> list[dict[str, str]]:
    """The targets (and labels) Prometheus's pod role makes of one running pod."""
    base = {
        "__meta_kubernetes_namespace": pod["namespace"],
        "__meta_kubernetes_pod_name": pod["name"],
        "__meta_kubernetes_pod_ip": pod["ip"],
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_ready": "true",
    }
    for k, v in pod["labels"].items():
        base[f"__meta_kubernetes_pod_label_{_name(k)}"] = v
        base[f"__meta_kubernetes_pod_labelpresent_{_name(k)}"] = "true"
    for k, v in pod["annotations"].items():
        base[f"__meta_kubernetes_pod_annotation_{_name(k)}"] = v
        base[f"__meta_kubernetes_pod_annotationpresent_{_name(k)}"] = "true"
    out = []
    for c in pod["containers"]:
        labels = base | {
            "__meta_kubernetes_pod_container_name": c["name"],
            "__meta_kubernetes_pod_container_image": c["image"],
            "__meta_kubernetes_pod_container_init": "false",
        }
        if not c.get("ports"):
            out.append(labels | {"__address__": pod["ip"]})
        for p in c.get("ports", []):
            out.append(
                labels
                | {
                    "__address__": f"{pod['ip']}:{p['containerPort']}",
                    "__meta_kubernetes_pod_container_port_name": p.get("name", ""),
                    "__meta_kubernetes_pod_container_port_number": str(p["containerPort"]),
                    "__meta_kubernetes_pod_container_port_protocol": p.get("protocol", "TCP"),
                }
            )
    return out


def test_each_annotated_pod_is_scraped_once_on_its_port(tmp_path: Path) -> None:
    pods = _pods()
    sd_file = tmp_path / "pods.json"
    sd_file.write_text(
        json.dumps(
            [{"targets": [t.pop("__address__")], "labels": t} for p in pods for t in _targets(p)]
        )
    )
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config.pop("rule_files")
    (job,) = config["scrape_configs"]
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
    job["file_sd_configs"] = [{"files": [str(sd_file)]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    argv = [system_tool("promtool"), "check", "service-discovery", "--timeout=10s"]
    proc = run([*argv, str(path), job["job_name"]])
    assert proc.returncode == 0, proc.stderr
    kept = sorted(
        (
            t["labels"]["pod"],
            t["labels"]["__address__"],
            t["labels"]["container"],
            t["labels"]["job"],
        )
        for t in json.loads(proc.stdout)
        if t["labels"]
    )
    # The two iris replicas on their sidecar's admin port, the analyzer on its metrics port.
    assert kept == [
        ("iris-0", "10.0.0.1:9090", "sidecar", "iris"),
        ("iris-1", "10.0.1.1:9090", "sidecar", "iris"),
        ("modeltap-analyzer-0", "10.0.2.1:9091", "analyzer", "modeltap-analyzer"),
    ]
