"""The kustomizations render with `kubectl kustomize`, validate offline against the Kubernetes 1.32
schemas (kubernetes-validate --strict), pass yamllint, and configure the processes the way their
real parsers accept: the sidecar's env and args through sidecar.__main__.load_config, monitor.toml
(and its commented model-quality example) through analyzer.config.load_config, with probe,
Service and scrape ports and the ground-truth token's variable matching."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from analyzer.config import load_config as load_monitor_config
from analyzer.engine import PARENT_MEMORY_BYTES, WORKER_MEMORY_BYTES
from modeltap.cli import COMMANDS
from sidecar.__main__ import load_config as load_sidecar_config
from tests.deploy.tools import (
    DEPLOY,
    KUSTOMIZATIONS,
    assert_ok,
    documents,
    render,
    run,
    venv_tool,
)

K8S_VERSION = "1.32.0"
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param, render(request.param)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def config_map_data(docs: list[dict[str, Any]], name: str) -> dict[str, str]:
    data: dict[str, str] = one(docs, "ConfigMap", name).get("data", {})
    return data


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod template metadata, pod spec) of every workload."""
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            tpl = d["spec"]["template"]
        elif d["kind"] == "CronJob":
            tpl = d["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        out.append((tpl["metadata"], tpl["spec"]))
    return out


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in spec["containers"] if c["name"] == name]
    assert len(found) == 1, name
    return found[0]


def port_number(c: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in c.get("ports", []) if p.get("name") == port]
    assert numbers, f"container {c['name']} has no port named {port}"
    return int(numbers[0])


def test_kubernetes_validate_strict(rendered: tuple[str, str], tmp_path: Path) -> None:
    text = rendered[1]
    path = tmp_path / "rendered.yaml"
    path.write_text(text)
    proc = run([venv_tool("kubernetes-validate"), "-k", K8S_VERSION, "--strict", str(path)])
    assert_ok(proc)
    kinds = {d["kind"] for d in documents(text)}
    # Only the Prometheus Operator CRDs may go unchecked (kubernetes-validate has no schema).
    unchecked = {
        k for k in kinds if f"Couldn't find schema for kind {k} " in proc.stdout + proc.stderr
    }
    assert unchecked <= CRD_KINDS, unchecked


def test_kubernetes_validate_catches_a_bad_manifest(tmp_path: Path) -> None:
    """The check bites: a wrong type and an unknown field both fail."""
    text = render("base")
    for bad in (text.replace("replicas: 2", 'replicas: "two"'),
                text.replace("replicas: 2", "replicaz: 2")):  # fmt: skip
        assert bad != text
        path = tmp_path / "bad.yaml"
        path.write_text(bad)
        proc = run([venv_tool("kubernetes-validate"), "-k", K8S_VERSION, "--strict", str(path)])
        assert proc.returncode != 0, proc.stdout


def test_yamllint() -> None:
    assert_ok(
        run([venv_tool("yamllint"), "-c", str(DEPLOY / ".yamllint.yaml"), "--strict", str(DEPLOY)])
    )


def test_sidecar_config_is_accepted_and_matches_ports(rendered: tuple[str, str]) -> None:
    docs = documents(rendered[1])
    model = one(docs, "Deployment", "iris")
    pod = model["spec"]["template"]
    spec = pod["spec"]
    sidecar = container(spec, "sidecar")
    assert sidecar["args"][0] == "sidecar"
    env: dict[str, str] = {}
    for source in sidecar.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_map_data(docs, source["configMapRef"]["name"]))
        else:
            assert source["secretRef"].get("optional") is True, "S3 keys are optional (IRSA)"
    for item in sidecar.get("env", []):
        env[item["name"]] = item["value"]
    assert env and all(k.startswith("MODELTAP_SIDECAR_") for k in env), sorted(env)
    cfg = load_sidecar_config(sidecar["args"][1:], environ=env)

    assert port_number(sidecar, "http") == cfg.server.port
    assert port_number(sidecar, "admin") == cfg.server.admin_port
    ready, live = sidecar["readinessProbe"]["httpGet"], sidecar["livenessProbe"]["httpGet"]
    assert (ready["path"], port_number(sidecar, ready["port"])) == (
        "/readyz",
        cfg.server.admin_port,
    )
    assert (live["path"], port_number(sidecar, live["port"])) == ("/healthz", cfg.server.admin_port)

    # The Service sends clients to the sidecar's proxy port, never to the model.
    service = one(docs, "Service", "iris")
    selector = service["spec"]["selector"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    targets = {p["name"]: port_number(sidecar, p["targetPort"]) for p in service["spec"]["ports"]}
    assert targets == {"http": cfg.server.port, "admin": cfg.server.admin_port}

    # The model listens on loopback only, on the port the sidecar forwards to.
    model_c = container(spec, "model")
    assert model_c["args"][0] in COMMANDS
    argv = model_c["args"]
    upstream = urlsplit(cfg.upstream.url)
    assert argv[argv.index("--host") + 1] == "127.0.0.1" == upstream.hostname
    assert int(argv[argv.index("--port") + 1]) == upstream.port
    assert not model_c.get("ports"), "the model must not be reachable except through the sidecar"
    probe = " ".join(model_c["readinessProbe"]["exec"]["command"])
    assert f"http://127.0.0.1:{upstream.port}/ping" in probe

    # Spool on an emptyDir with a size limit, mounted where the config puts it.
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    spool_volume = mounts[str(cfg.spool.dir)]
    volume = next(v for v in spec["volumes"] if v["name"] == spool_volume)
    size_limit = quantity_bytes(volume["emptyDir"]["sizeLimit"])
    # The spool's byte budget pauses capture before the kubelet evicts the pod at sizeLimit,
    # with room for the open segment and what the writer holds when the budget is reached.
    budget = int(env["MODELTAP_SIDECAR_SPOOL_MAX_BYTES"])
    assert 0 < budget <= size_limit - 4 * cfg.spool.max_segment_bytes

    # Probes: liveness and readiness wait for the startup probe, which allows the store check.
    startup = sidecar["startupProbe"]
    assert (startup["httpGet"]["path"], port_number(sidecar, startup["httpGet"]["port"])) == (
        "/healthz",
        cfg.server.admin_port,
    )
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
    assert "initialDelaySeconds" not in sidecar["livenessProbe"]

    # The drain (tests/deploy/test_rollout_drain.py runs it): the model outlives the sidecar's
    # preStop + shutdown delay + in-flight drain, and SIGKILL comes after the final upload.
    def pre_stop_seconds(c: dict[str, Any]) -> float:
        command = c["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep" and len(command) == 2, command
        return float(command[1])

    sidecar_done = (
        pre_stop_seconds(sidecar)
        + cfg.server.shutdown_delay_seconds
        + cfg.server.shutdown_timeout_seconds
    )
    assert pre_stop_seconds(sidecar) >= 5 and cfg.server.shutdown_delay_seconds > 0
    assert pre_stop_seconds(model_c) >= sidecar_done
    grace = spec["terminationGracePeriodSeconds"]
    assert grace >= sidecar_done + cfg.store.shutdown_grace_seconds + 5
    assert grace >= pre_stop_seconds(model_c) + 5

    ann = pod["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert int(ann["prometheus.io/port"]) == cfg.server.admin_port
    for sm in by_kind(docs, "ServiceMonitor"):
        assert (
            sm["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        )
        assert {e["port"] for e in sm["spec"]["endpoints"]} <= set(targets)
        assert sm["spec"]["jobLabel"] in service["metadata"]["labels"]


def test_analyzer_config_is_accepted_and_matches_ports(
    rendered: tuple[str, str], tmp_path: Path
) -> None:
    docs = documents(rendered[1])
    workloads = [d for d in docs if d["metadata"]["name"] == "modeltap-analyzer"
                 and d["kind"] in ("Deployment", "CronJob")]  # fmt: skip
    assert len(workloads) == 1, "the analyzer runs as a Deployment or as a CronJob, not both"
    workload = workloads[0]
    tpl = (workload["spec"]["template"] if workload["kind"] == "Deployment"
           else workload["spec"]["jobTemplate"]["spec"]["template"])  # fmt: skip
    spec = tpl["spec"]
    analyzer = container(spec, "analyzer")
    args = analyzer["args"]
    assert args[0] == "monitor" and args[0] in COMMANDS
    assert set(a for a in args[1:] if a.startswith("--")) <= {"--config", "--once"}, args
    assert ("--once" in args) == (workload["kind"] == "CronJob")

    # monitor.toml comes from the ConfigMap mounted at the --config path.
    config_path = Path(args[args.index("--config") + 1])
    mount = next(m for m in analyzer["volumeMounts"] if Path(m["mountPath"]) == config_path.parent)
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    data = config_map_data(docs, volume["configMap"]["name"])
    toml = tmp_path / config_path.name
    toml.write_text(data[config_path.name])
    cfg = load_monitor_config(toml)
    assert cfg.endpoints

    # The local engine's workers fit the container's memory limit (0: derived from it at start).
    if cfg.monitor.engine == "local":
        limit = quantity_bytes(analyzer["resources"]["limits"]["memory"])
        assert cfg.monitor.workers > 0, "set workers in the shipped monitor.toml"
        assert PARENT_MEMORY_BYTES + cfg.monitor.workers * WORKER_MEMORY_BYTES <= limit

    # The commented model-quality example is valid once uncommented.
    example = re.sub(r"(?m)^# (\[[\w.]+\].*|\w+ = .*)$", r"\1", data[config_path.name])
    assert example != data[config_path.name], "monitor.toml shows a model-quality example"
    toml.write_text(example)
    quality_cfg = load_monitor_config(toml)
    assert quality_cfg.ground_truth.destination
    assert all("quality" in e.sections for e in quality_cfg.endpoints)

    token_env = [e for e in analyzer.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
    services = [d for d in by_kind(docs, "Service") if d["metadata"]["name"] == "modeltap-analyzer"]
    if workload["kind"] == "Deployment":
        # POST /ground-truth's token from an optional Secret, under the name monitor.toml reads.
        assert [e["name"] for e in token_env] == [quality_cfg.ground_truth.token_env]
        ref = token_env[0]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "modeltap-ground-truth", "key": "token", "optional": True}
        # The Service reaches the port that serves /reports/ and /ground-truth.
        assert len(services) == 1
        svc = services[0]["spec"]
        assert svc["selector"].items() <= tpl["metadata"]["labels"].items()
        assert [port_number(analyzer, p["targetPort"]) for p in svc["ports"]] == [cfg.monitor.port]
    else:
        # `monitor --once` serves no port and never reads the token.
        assert not token_env and not services

    if workload["kind"] == "Deployment":
        assert port_number(analyzer, "metrics") == cfg.monitor.port
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = analyzer[probe]["httpGet"]
            assert (get["path"], port_number(analyzer, get["port"])) == (
                "/healthz",
                cfg.monitor.port,
            )
        assert "initialDelaySeconds" not in analyzer["livenessProbe"]
        assert int(tpl["metadata"]["annotations"]["prometheus.io/port"]) == cfg.monitor.port
        monitors = by_kind(docs, "PodMonitor")
        assert monitors, "the continuous analyzer is scraped"
        for pm in monitors:
            assert (
                pm["spec"]["selector"]["matchLabels"].items() <= tpl["metadata"]["labels"].items()
            )
            assert {e["port"] for e in pm["spec"]["podMetricsEndpoints"]} == {"metrics"}
            # The operator's `endpoint` target label must not shadow the analyzer's own.
            assert all(e.get("honorLabels") for e in pm["spec"]["podMetricsEndpoints"])
            assert pm["spec"]["jobLabel"] in tpl["metadata"]["labels"]
    else:
        assert spec["restartPolicy"] in ("Never", "OnFailure")


def test_pods_are_locked_down(rendered: tuple[str, str]) -> None:
    for _meta, spec in pod_specs(documents(rendered[1])):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["serviceAccountName"] == "modeltap"
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
            for source in c.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"] == {"name": "modeltap-s3", "optional": True}
        for v in spec.get("volumes", []):
            if "emptyDir" in v:
                assert v["emptyDir"].get("sizeLimit"), v["name"]


def test_serviceaccount_has_irsa_example_in_aws_overlays(rendered: tuple[str, str]) -> None:
    name, text = rendered
    sa = one(documents(text), "ServiceAccount", "modeltap")
    annotations = sa["metadata"].get("annotations", {})
    if name == "overlays/local":
        assert "eks.amazonaws.com/role-arn" not in annotations
    else:
        assert annotations["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_dead_analyzer_alerts_match_the_analyzer_form() -> None:
    """The continuous analyzer gets the absent() rule; the CronJob form drops it (no target)."""

    def alerts(kustomization: str) -> set[str]:
        (rule,) = by_kind(documents(render(kustomization)), "PrometheusRule")
        return {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}

    base = alerts("base")
    assert {"ModeltapAnalyzerDown", "ModeltapAnalyzerAbsent", "ModeltapAnalyzerJobFailed"} <= base
    assert alerts("overlays/local") == base - {"ModeltapAnalyzerAbsent"}


def test_monitoring_objects_carry_the_release_label() -> None:
    for kustomization in ("overlays/s3", "overlays/dask"):
        docs = documents(render(kustomization))
        monitoring = [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]
        assert {d["kind"] for d in monitoring} == CRD_KINDS
        for d in monitoring:
            assert d["metadata"]["labels"]["release"] == "kube-prometheus-stack", d["kind"]
    base = documents(render("base"))
    assert all("release" not in d["metadata"].get("labels", {}) for d in base)


def test_disruption_budget_and_network_policies(rendered: tuple[str, str]) -> None:
    docs = documents(rendered[1])
    model = one(docs, "Deployment", "iris")
    pod_labels = model["spec"]["template"]["metadata"]["labels"]
    pdb = one(docs, "PodDisruptionBudget", "iris")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["maxUnavailable"] == 1  # a drain proceeds even with one replica (overlays/local)

    prometheus_peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    sidecar = container(model["spec"]["template"]["spec"], "sidecar")
    iris = one(docs, "NetworkPolicy", "iris")["spec"]
    assert iris["podSelector"]["matchLabels"].items() <= pod_labels.items()
    rules = {port_number(sidecar, r["ports"][0]["port"]): r.get("from") for r in iris["ingress"]}
    assert rules == {8080: None, 9090: [prometheus_peer]}  # clients anywhere, metrics Prometheus

    analyzer = one(docs, "NetworkPolicy", "modeltap-analyzer")["spec"]
    (rule,) = analyzer["ingress"]
    assert rule["from"] == [
        prometheus_peer,
        {"podSelector": {"matchLabels": {"modeltap.io/analyzer-client": "true"}}},
    ]
    for meta, spec in pod_specs(docs):
        if meta["labels"].get("app.kubernetes.io/component") == "analyzer":
            assert analyzer["podSelector"]["matchLabels"].items() <= meta["labels"].items()
            analyzer_c = container(spec, "analyzer")
            if analyzer_c.get("ports"):
                assert [port_number(analyzer_c, p["port"]) for p in rule["ports"]] == [9091]


def quantity_bytes(text: str) -> int:
    """A Kubernetes memory quantity (``512Mi``, ``1Gi``, ``1536Mi``) in bytes."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(text[: -len(suffix)]) * factor
    return int(text)
