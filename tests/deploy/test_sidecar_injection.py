"""deploy/components/sidecar-injection on a kustomization that is not the demo's.

tests/deploy/fixtures/mlserver-app is a platform team's own: an MLServer Deployment labelled
modeltap.io/capture=enabled with its Service, and an unrelated Deployment. Rendered with
`kubectl kustomize`, the MLServer pod gets the sidecar (probes, preStop, spool, settings that the
sidecar accepts, pointing at MLServer's port), the Service sends clients through the sidecar, a
PodMonitor scrapes it once; the other Deployment is left exactly as written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.__main__ import load_config as load_sidecar_config
from tests.deploy.test_manifests import (
    K8S_VERSION,
    config_map_data,
    container,
    one,
    port_number,
    quantity_bytes,
)
from tests.deploy.tools import assert_ok, documents, run, venv_tool

FIXTURE = Path(__file__).parent / "fixtures" / "mlserver-app"


@pytest.fixture(scope="module")
def rendered() -> str:
    import shutil

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomizations")
    proc = run([kubectl, "kustomize", str(FIXTURE)])
    assert_ok(proc)
    return proc.stdout


def _field(pod: dict[str, Any], path: str) -> str:
    """A downward-API fieldRef (metadata.labels['x'] / metadata.annotations['x']) of the pod."""
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    assert m, path
    value: str = pod["metadata"][m.group(1)][m.group(2)]
    return value


def test_the_labelled_deployment_gets_the_sidecar(rendered: str) -> None:
    docs = documents(rendered)
    deployment = one(docs, "Deployment", "credit-model")
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    assert [c["name"] for c in spec["containers"]] == ["mlserver", "modeltap-sidecar"]
    sidecar = container(spec, "modeltap-sidecar")
    model = container(spec, "mlserver")
    assert sidecar["image"] == "registry.example.com/modeltap/modeltap-sidecar:0.1.0"
    assert sidecar["args"] == ["sidecar"]

    # Its settings: the component's ConfigMap as the fixture patched it, plus the pod's fields.
    env: dict[str, str] = {}
    for source in sidecar["envFrom"]:
        if "configMapRef" in source:
            env.update(config_map_data(docs, source["configMapRef"]["name"]))
        else:
            assert source["secretRef"] == {"name": "modeltap-s3", "optional": True}
    for item in sidecar["env"]:
        env[item["name"]] = _field(pod, item["valueFrom"]["fieldRef"]["fieldPath"])
    cfg = load_sidecar_config([], environ=env)
    assert cfg.upstream.url == "http://127.0.0.1:8080"
    assert port_number(model, "http") == 8080
    assert cfg.capture.endpoint_name == "credit-model"
    assert cfg.capture.sample_percent == 5
    assert cfg.store.destination == "s3://credit-captures/captures"
    assert port_number(sidecar, "modeltap-proxy") == cfg.server.port
    assert port_number(sidecar, "modeltap-admin") == cfg.server.admin_port
    model_ports = {p["containerPort"] for p in model["ports"]}
    assert not {cfg.server.port, cfg.server.admin_port} & model_ports

    # Probes on the admin port; startup allows the store check; liveness waits for it.
    for probe, path in (("startupProbe", "/healthz"), ("readinessProbe", "/readyz"),
                        ("livenessProbe", "/healthz")):  # fmt: skip
        get = sidecar[probe]["httpGet"]
        assert (get["path"], port_number(sidecar, get["port"])) == (path, cfg.server.admin_port)
    assert "initialDelaySeconds" not in sidecar["livenessProbe"]

    # The drain: sidecar preStop, the model outliving the sidecar's drain, the grace period.
    def sleep_of(c: dict[str, Any]) -> float:
        command = c["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep", command
        return float(command[1])

    sidecar_done = (
        sleep_of(sidecar) + cfg.server.shutdown_delay_seconds + cfg.server.shutdown_timeout_seconds
    )
    assert sleep_of(model) >= sidecar_done
    assert spec["terminationGracePeriodSeconds"] >= sidecar_done + cfg.store.shutdown_grace_seconds

    # The spool on its own emptyDir, the byte budget below its size limit.
    mount = next(m for m in sidecar["volumeMounts"] if Path(m["mountPath"]) == cfg.spool.dir)
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    budget = int(env["MODELTAP_SIDECAR_SPOOL_MAX_BYTES"])
    assert (
        budget <= quantity_bytes(volume["emptyDir"]["sizeLimit"]) - 4 * cfg.spool.max_segment_bytes
    )
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["securityContext"]["runAsNonRoot"] is True

    # The model's own parts are untouched: its probe, env, ports.
    assert model["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert model["env"] == [{"name": "MLSERVER_HTTP_PORT", "value": "8080"}]

    # Scraped once: annotations on the admin port, and a PodMonitor selecting the pod.
    ann = pod["metadata"]["annotations"]
    assert (ann["prometheus.io/scrape"], int(ann["prometheus.io/port"])) == (
        "true",
        cfg.server.admin_port,
    )
    monitor = one(docs, "PodMonitor", "modeltap-sidecars")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["podMetricsEndpoints"]] == ["modeltap-admin"]
    assert monitor["jobLabel"] in pod["metadata"]["labels"]

    # Clients reach the model through the sidecar.
    service = one(docs, "Service", "credit-model")["spec"]
    assert service["selector"].items() <= pod["metadata"]["labels"].items()
    assert [p["targetPort"] for p in service["ports"]] == ["modeltap-proxy"]


def test_other_deployments_are_left_alone(rendered: str) -> None:
    written = next(
        d
        for d in yaml.safe_load_all((FIXTURE / "mlserver.yaml").read_text())
        if d["metadata"]["name"] == "feature-refresher"
    )
    got = one(documents(rendered), "Deployment", "feature-refresher")
    got["metadata"].pop("namespace")
    assert got == written


def test_the_render_is_valid_kubernetes(rendered: str, tmp_path: Path) -> None:
    docs = [d for d in documents(rendered) if d["kind"] != "PodMonitor"]  # a CRD
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    argv = [venv_tool("kubernetes-validate"), "-k", K8S_VERSION, "--strict", str(path)]
    assert_ok(run(argv))
