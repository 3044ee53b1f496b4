"""The Dockerfile passes hadolint and keeps the images' contract (what the text shows; the built
images are checked by tests/deploy/test_images.py)."""

from __future__ import annotations

import re

from harness.procs import REPO
from tests.deploy.tools import assert_ok, run, venv_tool

DOCKERFILE = REPO / "Dockerfile"
TARGETS = ("sidecar", "analyzer", "demo")


def stages() -> dict[str, str]:
    """Stage name -> its text (from its FROM line up to the next)."""
    text = DOCKERFILE.read_text()
    found = {}
    for block in re.split(r"^(?=FROM )", text, flags=re.M)[1:]:
        m = re.match(r"FROM (\S+)(?: AS (\S+))?", block)
        assert m and m.group(2), f"every stage is named: {block.splitlines()[0]}"
        found[m.group(2)] = block
    return found


def test_hadolint_passes() -> None:
    # hadolint exits 1 on warnings too, so this is warning-clean.
    assert_ok(run([venv_tool("hadolint"), str(DOCKERFILE)]))


def test_base_is_the_official_image_pinned_by_digest() -> None:
    text = DOCKERFILE.read_text()
    m = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert m, "the base is an ARG (CI passes a base bootstrapped from Debian packages)"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", m.group(1))
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert {f for f in froms if f.startswith("$")} == {"${PYTHON_IMAGE}"}


def test_image_contract() -> None:
    found = stages()
    # The targets, and the sidecar last so a build without --target gives it.
    assert list(found)[-1] == "sidecar"
    assert set(TARGETS) <= set(found)
    runtime = found["runtime"]
    assert runtime.startswith("FROM ${PYTHON_IMAGE} AS runtime")
    user = re.findall(r"^USER (\S+)", runtime, re.M)
    assert user and re.fullmatch(r"\d+:\d+", user[-1]), "the final USER must be numeric"
    assert int(user[-1].split(":")[0]) == 10001
    assert re.search(r"^EXPOSE 8080 9090 9091$", runtime, re.M)
    assert 'ENTRYPOINT ["modeltap"]' in runtime
    assert "org.opencontainers.image.source" in runtime
    assert "HEALTHCHECK" not in DOCKERFILE.read_text()
    for target in TARGETS:
        final = found[target]
        # A final stage is the shared runtime plus one virtualenv, nothing built or installed.
        assert final.startswith(f"FROM runtime AS {target}"), target
        for tool in ("RUN", "apt-get", "gcc", "build-essential", "pip install"):
            assert tool not in final, f"{tool} in the final stage {target}"
        assert f"COPY --from={target}-venv /opt/modeltap /opt/modeltap" in final
        # Its virtualenv: its requirements from the lock, then the compiled wheel without deps.
        venv = found[f"{target}-venv"]
        installs = re.findall(r"pip install (.+?)(?: \\)?$", venv, re.M)
        assert installs == [
            f"-c constraints.txt -r requirements-{target}.txt",
            "--no-deps /wheels/modeltap-*.whl",
        ], (target, installs)
        assert "pip check" in venv
        assert "pip uninstall -y pip" in venv
    # requirements-<target>.txt: the core dependencies plus the target's extra (none for the
    # sidecar), written from pyproject.toml in the stage every virtualenv starts from.
    base = found["build-base"]
    assert "p['dependencies'] + p['optional-dependencies'].get(n, [])" in base
    assert "for n in ('sidecar', 'analyzer', 'demo')" in base
    assert "pip install" not in found["builder"].replace("pip wheel", "")
    # The request path runs compiled wherever the sidecar's modules run.
    for target in ("sidecar", "analyzer"):
        assert "compiled_modules() == list(MODULES)" in found[f"{target}-venv"]
    # The analyzer's image ships the capture reader's C passes (the build fails without them).
    assert "assert numparse.compiled" in found["analyzer-venv"]
    for tool in ("apt-get", "gcc"):
        assert tool not in runtime


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    ignore = (REPO / ".dockerignore").read_text().split()
    assert "*" in ignore, "the build context is deny-by-default"
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.M):
        for path in src.split():
            assert (REPO / path).exists(), path
            assert f"!{path}" in ignore, f".dockerignore keeps {path} out of the context"
