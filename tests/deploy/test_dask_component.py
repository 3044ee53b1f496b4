"""deploy/components/dask (rendered through deploy/overlays/dask): the analyzer's monitor.toml
points at the scheduler's Service, and the workers run the analyzer's image and read the store
with the analyzer's credentials."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from analyzer.config import load_config
from tests.deploy.tools import documents, render


def test_analyzer_points_at_the_scheduler_service(tmp_path: Path) -> None:
    docs = documents(render("overlays/dask"))
    find = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    monitor = next(d for d in docs if d["kind"] == "ConfigMap"
                   and d["metadata"]["name"].startswith("modeltap-monitor"))  # fmt: skip
    toml = tmp_path / "monitor.toml"
    toml.write_text(monitor["data"]["monitor.toml"])
    cfg = load_config(toml)
    assert cfg.monitor.engine == "dask"
    address = urlsplit(cfg.monitor.scheduler)
    service = find[("Service", address.hostname)]
    assert address.port in {p["port"] for p in service["spec"]["ports"]}
    scheduler = find[("Deployment", "dask-scheduler")]["spec"]["template"]
    assert service["spec"]["selector"].items() <= scheduler["metadata"]["labels"].items()

    analyzer = find[("Deployment", "modeltap-analyzer")]["spec"]["template"]["spec"]
    workers = find[("Deployment", "dask-worker")]["spec"]["template"]["spec"]
    [worker] = workers["containers"]
    assert cfg.monitor.scheduler in worker["args"]
    assert worker["image"] == analyzer["containers"][0]["image"], "same code on both sides"
    assert worker["envFrom"] == analyzer["containers"][0]["envFrom"], "same S3 credentials"
    assert workers["serviceAccountName"] == analyzer["serviceAccountName"]  # IRSA
