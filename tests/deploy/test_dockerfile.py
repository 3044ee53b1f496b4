"""The Dockerfile passes hadolint and keeps the image's contract (no Docker daemon here: nothing is
built; what the checks can see is what is tested)."""

from __future__ import annotations

import re

from tests.deploy.tools import assert_ok, run, venv_tool
from tests.support.procs import REPO

DOCKERFILE = REPO / "Dockerfile"


def test_hadolint_passes() -> None:
    # hadolint exits 1 on warnings too, so this is warning-clean.
    assert_ok(run([venv_tool("hadolint"), str(DOCKERFILE)]))


def test_image_contract() -> None:
    text = DOCKERFILE.read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert stages == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], stages
    assert "pip install -c constraints.txt" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and re.fullmatch(r"\d+(:\d+)?", user[-1]), "the final USER must be numeric"
    assert int(user[-1].split(":")[0]) != 0
    assert "HEALTHCHECK" not in text
    assert re.search(r"^EXPOSE 8080 9090 9091$", text, re.M)
    assert 'ENTRYPOINT ["modeltap"]' in text
    final = text.split("\nFROM ")[-1]
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in final, f"{tool} in the final stage"
    assert "org.opencontainers.image.source" in final


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    ignore = (REPO / ".dockerignore").read_text().split()
    assert "*" in ignore, "the build context is deny-by-default"
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.M):
        for path in src.split():
            assert (REPO / path).exists(), path
            assert f"!{path}" in ignore, f".dockerignore keeps {path} out of the context"
