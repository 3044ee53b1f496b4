"""Run the rendered manifests as podman pods, on the images `make images` builds.

What is played is the real overlay rendered through a test overlay (a temporary kustomization
over it, as a platform engineer would write one) that changes only what a host-network test
must: the fixed ports (8080, 9090, 8081, 9091) to free ones, the store's endpoint to the test's
SeaweedFS, the images to the locally built ones, and the S3 keys in the Secret modeltap-s3.

podman 4.3's `kube play` runs Pods and Deployments (one pod per replica, `<name>-pod-<i>`) with
ConfigMaps, emptyDir volumes, security contexts and exec hooks, and skips kinds it does not
know; two things are adapted here, each the closest podman has to what the kubelet does:

- a CronJob is played as the Pod of its job template (what the Job controller creates);
- a container's ``ports`` are dropped after the probes' named ports are resolved to numbers:
  podman 4.3 publishes every containerPort, which host networking refuses, and in a pod sharing
  the host's network the process's own port is what clients reach anyway;
- a Secret becomes a podman secret holding the Secret's ``data`` (JSON, base64 values), the
  form `kube play` reads for ``envFrom.secretRef``; a Secret document in the played YAML is
  stored in a form its own envFrom cannot read.

Every pod, secret and volume is removed on exit, also when the test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.procs import REPO
from tests.deploy.tools import IMAGES, documents, render, render_overlay

PODMAN = REPO / "ci" / "podman.sh"
IMAGE_TAG = os.environ.get("MODELTAP_IMAGE_TAG", "ci")
FIXED_PORTS = (8080, 9090, 8081, 9091)
PLAYABLE = {"Pod", "Deployment", "ConfigMap"}
WORKLOADS = {"Pod", "Deployment", "CronJob"}


def built_image(purpose: str) -> str:
    """The image `make images` (ci/build-images.sh) tags for ``purpose``."""
    return f"localhost/modeltap-{purpose}:{IMAGE_TAG}"


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(PODMAN), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} -> rc {proc.returncode}\n{proc.stderr}")
    return proc


def require_images() -> None:
    """Skip unless podman and the built images are here; fail instead under `make pod-test`
    (MODELTAP_REQUIRE_IMAGES=1), where a missing image is a broken build, not an absent tool."""
    required = os.environ.get("MODELTAP_REQUIRE_IMAGES") == "1"
    problem = ""
    if shutil.which("podman") is None:
        problem = "podman is not installed (make system-deps)"
    else:
        missing = [
            built_image(p)
            for p in IMAGES
            if podman("image", "exists", built_image(p), check=False).returncode != 0
        ]
        if missing:
            problem = f"images not built: {', '.join(missing)} (make images)"
    if problem:
        if required:
            pytest.fail(problem)
        pytest.skip(problem)


def substitute(value: Any, ports: dict[int, int]) -> Any:
    """``value`` with every fixed port replaced (as a number, or a number inside a string)."""
    if isinstance(value, dict):
        return {k: substitute(v, ports) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, ports) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return ports.get(value, value)
    if isinstance(value, str):
        pattern = r"(?<!\d)(" + "|".join(str(p) for p in ports) + r")(?!\d)"
        return re.sub(pattern, lambda m: str(ports[int(m.group(1))]), value)
    return value


def _changes(old: Any, new: Any, path: str) -> Iterator[tuple[str, Any]]:
    """JSON-pointer paths (and new values) of the scalars that differ between two documents."""
    if isinstance(old, dict):
        for key in old:
            yield from _changes(
                old[key], new[key], f"{path}/{key.replace('~', '~0').replace('/', '~1')}"
            )
    elif isinstance(old, list):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _changes(a, b, f"{path}/{i}")
    elif old != new:
        yield path, new


def _generator_name(rendered: str) -> str:
    """The configMapGenerator/secretGenerator name of a rendered, hash-suffixed name."""
    return re.sub(r"-[a-z0-9]{10}$", "", rendered)


def _with_endpoint(toml: str, endpoint: str) -> str:
    """monitor.toml with its [store] pointed at ``endpoint`` (path-style, as SeaweedFS needs)."""
    lines = [
        ln for ln in toml.splitlines() if not re.match(r"\s*(endpoint_url|path_style)\s*=", ln)
    ]
    if "[store]" not in lines:
        lines = [*lines, "", "[store]"]
    at = lines.index("[store]") + 1
    lines[at:at] = [f'endpoint_url = "{endpoint}"', "path_style = true"]
    return "\n".join(lines) + "\n"


def render_test_overlay(
    kustomization: str,
    tmp: Path,
    ports: dict[int, int],
    endpoint: str,
    s3_keys: tuple[str, str],
) -> list[dict[str, Any]]:
    """The rendered documents of ``kustomization`` under a test overlay that changes only the
    ports, the store endpoint, the images and the S3 keys (module docstring)."""
    tmp.mkdir(parents=True, exist_ok=True)
    docs = documents(render(kustomization))
    patches = []
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        ops = [
            {"op": "replace", "path": path, "value": value}
            for path, value in _changes(d, substitute(d, ports), "")
        ]
        if ops:
            target = f"kind: {d['kind']}\n      name: {d['metadata']['name']}"
            patches.append(
                f"  - target:\n      {target}\n    patch: |-\n{_indent(yaml.safe_dump(ops), 6)}"
            )
    generators = []
    for d in docs:
        if d["kind"] != "ConfigMap":
            continue
        name = _generator_name(d["metadata"]["name"])
        data: dict[str, str] = d.get("data", {})
        if "monitor.toml" in data:
            (tmp / "monitor.toml").write_text(
                _with_endpoint(substitute(data["monitor.toml"], ports), endpoint)
            )
            generators.append(
                f"  - name: {name}\n    behavior: replace\n    files:\n      - monitor.toml\n"
            )
            continue
        changed = {k: v for k, v in substitute(data, ports).items() if data.get(k) != v}
        if "MODELTAP_SIDECAR_STORE_DESTINATION" in data:
            changed["MODELTAP_SIDECAR_STORE_ENDPOINT_URL"] = endpoint
            changed["MODELTAP_SIDECAR_STORE_PATH_STYLE"] = "true"
        if changed:
            literals = "".join(f"      - {k}={v}\n" for k, v in changed.items())
            generators.append(f"  - name: {name}\n    behavior: merge\n    literals:\n{literals}")
    images = "".join(
        f"  - name: {IMAGES[p]}\n    newName: {built_image(p).split(':')[0]}\n    newTag: {IMAGE_TAG}\n"
        for p in IMAGES
    )
    extra = f"images:\n{images}"
    if patches:
        extra += "patches:\n" + "".join(patches) + "\n"
    if generators:
        extra += "configMapGenerator:\n" + "".join(generators)
    extra += (
        # The Secret the overlays' comments tell users to create, under that exact name.
        "secretGenerator:\n  - name: modeltap-s3\n    options:\n      disableNameSuffixHash: true\n"
        "    literals:\n"
        f"      - AWS_ACCESS_KEY_ID={s3_keys[0]}\n      - AWS_SECRET_ACCESS_KEY={s3_keys[1]}\n"
    )
    return documents(render_overlay(kustomization, tmp, extra))


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.splitlines())


def _unpublished(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with each container's ports dropped and its probes' named ports resolved."""
    containers = []
    for c in spec["containers"]:
        named = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
        c = {k: v for k, v in c.items() if k != "ports"}
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            for action in ("httpGet", "tcpSocket"):
                target = c.get(probe, {}).get(action)
                if target is not None and target.get("port") in named:
                    c[probe] = {**c[probe], action: {**target, "port": named[target["port"]]}}
        containers.append(c)
    return {**spec, "containers": containers}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "Deployment":
        spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    elif doc["kind"] == "CronJob":
        spec = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = doc["spec"]
    return spec


class Played:
    """The pods of one `kube play`: names, logs, exec."""

    def __init__(self, pods: dict[str, dict[str, Any]]) -> None:
        self.pods = pods  # pod name -> its pod spec

    def container(self, pod: str, name: str) -> str:
        return f"{pod}-{name}"

    def logs(self) -> str:
        out = []
        for pod, spec in self.pods.items():
            for c in spec["containers"]:
                name = self.container(pod, c["name"])
                log = podman("logs", "--tail", "40", name, check=False)
                out.append(f"--- {name}\n{log.stdout}{log.stderr}")
        return "\n".join(out)

    def exec(
        self, pod: str, container: str, *argv: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.container(pod, container), *argv, timeout=timeout, check=False)

    def probe(self, pod: str, container: dict[str, Any], kind: str = "readinessProbe") -> bool:
        """One run of a container's probe as the kubelet runs it (exec inside, httpGet from
        outside: with host networking the pod's ports are the host's)."""
        probe = container.get(kind)
        if probe is None:
            return True
        if "exec" in probe:
            argv = probe["exec"]["command"]
            timeout = float(probe.get("timeoutSeconds", 1)) + 5
            return self.exec(pod, container["name"], *argv, timeout=timeout).returncode == 0
        get = probe["httpGet"]
        url = f"http://127.0.0.1:{get['port']}{get.get('path', '/')}"
        try:
            with urllib.request.urlopen(url, timeout=float(probe.get("timeoutSeconds", 1))) as r:
                return 200 <= r.status < 400
        except (OSError, urllib.error.URLError):
            return False

    def wait_ready(self, pod: str, timeout: float = 90.0) -> None:
        """Until every container's readinessProbe passes (the pod is Ready), bounded."""
        deadline = time.monotonic() + timeout
        pending = list(self.pods[pod]["containers"])
        while pending and time.monotonic() < deadline:
            pending = [c for c in pending if not self.probe(pod, c)]
            if pending:
                time.sleep(0.5)
        if pending:
            names = [c["name"] for c in pending]
            raise AssertionError(f"{pod}: {names} not ready in {timeout}s\n{self.logs()}")

    def state(self, pod: str, container: str) -> dict[str, Any]:
        out = podman("container", "inspect", self.container(pod, container))
        state: dict[str, Any] = json.loads(out.stdout)[0]["State"]
        return state

    def wait_exited(self, pod: str, container: str, timeout: float) -> int:
        """The container's exit code, once it has exited (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(pod, container)
            if state["Status"] in ("exited", "stopped"):
                return int(state["ExitCode"])
            time.sleep(0.5)
        raise AssertionError(f"{pod}/{container} still running after {timeout}s\n{self.logs()}")


@contextlib.contextmanager
def kube_play(
    docs: list[dict[str, Any]], tmp: Path, select: Callable[[dict[str, Any]], bool]
) -> Iterator[Played]:
    """`podman kube play --network host` of the selected workloads of ``docs`` with the
    ConfigMaps and Secrets they use; everything is removed on exit."""
    workloads = [d for d in docs if d["kind"] in WORKLOADS and select(d)]
    assert workloads, "nothing selected to play"
    play: list[dict[str, Any]] = [d for d in docs if d["kind"] == "ConfigMap"]
    pods: dict[str, dict[str, Any]] = {}
    for d in workloads:
        if d["kind"] == "CronJob":
            template = d["spec"]["jobTemplate"]["spec"]["template"]
            name = f"{d['metadata']['name']}-job"
            d = {"apiVersion": "v1", "kind": "Pod",
                 "metadata": {**template.get("metadata", {}), "name": name}, "spec": template["spec"]}  # fmt: skip
        if d["kind"] == "Deployment":
            assert d["spec"].get("replicas", 1) == 1, "one replica: host networking, fixed ports"
            template = d["spec"]["template"]
            d = {
                **d,
                "spec": {
                    **d["spec"],
                    "template": {**template, "spec": _unpublished(template["spec"])},
                },
            }
            pods[f"{d['metadata']['name']}-pod-0"] = pod_spec(d)
        else:
            d = {**d, "spec": _unpublished(d["spec"])}
            pods[d["metadata"]["name"]] = pod_spec(d)
        play.append(d)
    assert {d["kind"] for d in play} <= PLAYABLE
    secrets = [d for d in docs if d["kind"] == "Secret"]
    path = tmp / "play.yaml"
    path.write_text(yaml.safe_dump_all(play))
    try:
        for secret in secrets:
            data = tmp / f"{secret['metadata']['name']}.json"
            data.write_text(json.dumps(secret.get("data", {})))
            podman("secret", "rm", secret["metadata"]["name"], check=False)
            podman("secret", "create", secret["metadata"]["name"], str(data))
        podman("kube", "play", "--network", "host", str(path), timeout=180)
        yield Played(pods)
    finally:
        podman("kube", "down", str(path), check=False, timeout=180)
        for pod in pods:
            podman("pod", "rm", "--force", "--time", "0", pod, check=False)
        for secret in secrets:
            podman("secret", "rm", secret["metadata"]["name"], check=False)
        # `kube play` turns each ConfigMap a pod mounts into a named volume; `kube down` keeps it.
        for config_map in (d for d in play if d["kind"] == "ConfigMap"):
            podman("volume", "rm", "--force", config_map["metadata"]["name"], check=False)


def wait_http_ok(url: str, played: Played, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200 (bounded), with the pods' logs if it never does."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready in {timeout}s ({last})\n{played.logs()}")
