"""The images are overridable (issue: the base renamed `modeltap` itself, so a user's
`kustomize edit set image modeltap=...:0.2.0` left 0.1.0 in the render, the local overlay's
CronJob rendered the unpullable `image: modeltap`, and the Dask component kept its own tag).
Every container references one of the per-purpose images by its published name, and an
`images:` entry in a user's overlay over any shipped kustomization reaches every container."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.tools import (
    DEPLOY,
    IMAGES,
    KUSTOMIZATIONS,
    containers,
    documents,
    render,
    render_overlay,
)

# Which image each container runs: the sidecar image only in front of a model, the analyzer
# image wherever analyzer code runs (the Dask scheduler and workers unpickle its tasks).
PURPOSE = {"sidecar": "sidecar", "model": "demo", "analyzer": "analyzer",
           "scheduler": "analyzer", "worker": "analyzer"}  # fmt: skip


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_container_runs_its_purpose_image(kustomization: str) -> None:
    found = containers(documents(render(kustomization)))
    assert found
    for (kind, name, cname), c in found.items():
        assert cname in PURPOSE, f"{kind}/{name}: unknown container {cname}"
        image = IMAGES[PURPOSE[cname]]
        assert re.fullmatch(re.escape(image) + r":\d+\.\d+\.\d+", c["image"]), (
            f"{kind}/{name}/{cname} runs {c['image']}, expected {image}:<version>"
        )


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_an_overlay_images_override_reaches_every_container(
    kustomization: str, tmp_path: Path
) -> None:
    # What `kustomize edit set image ghcr.io/modeltap/modeltap-sidecar=registry.example/...` writes.
    new = {purpose: f"registry.example.com/ml/{purpose}" for purpose in IMAGES}
    entries = "".join(
        f"  - name: {IMAGES[p]}\n    newName: {new[p]}\n    newTag: 0.2.0\n" for p in IMAGES
    )
    before = containers(documents(render(kustomization)))
    after = containers(documents(render_overlay(kustomization, tmp_path, f"images:\n{entries}")))
    assert after.keys() == before.keys()
    for key, c in after.items():
        assert c["image"] == f"{new[PURPOSE[key[2]]]}:0.2.0", f"{'/'.join(key)}: {c['image']}"


def test_a_tag_only_override_keeps_the_name(tmp_path: Path) -> None:
    # `kustomize edit set image ghcr.io/modeltap/modeltap-analyzer:0.2.0`: the tag alone moves,
    # the CronJob's included (overlays/local runs the analyzer as one).
    out = render_overlay(
        "overlays/local", tmp_path, f"images:\n  - name: {IMAGES['analyzer']}\n    newTag: 0.2.0\n"
    )
    found = containers(documents(out))
    assert found[("CronJob", "modeltap-analyzer", "analyzer")]["image"] == (
        f"{IMAGES['analyzer']}:0.2.0"
    )
    assert found[("Deployment", "iris", "sidecar")]["image"] != f"{IMAGES['sidecar']}:0.2.0"


def test_the_injected_sidecar_follows_an_images_override(tmp_path: Path) -> None:
    # deploy/components/sidecar-injection on a platform team's own kustomization (the fixture
    # already overrides the sidecar's image; a further overlay moves it again).
    fixture = "../tests/deploy/fixtures/mlserver-app"
    entry = "images:\n  - name: registry.example.com/modeltap/modeltap-sidecar\n    newTag: 0.2.0\n"
    before = containers(documents(render(fixture)))
    injected = [key for key in before if key[2] == "modeltap-sidecar"]
    assert injected
    for key in injected:
        assert before[key]["image"] == "registry.example.com/modeltap/modeltap-sidecar:0.1.0"
    after = containers(documents(render_overlay(fixture, tmp_path, entry)))
    for key in injected:
        assert after[key]["image"] == "registry.example.com/modeltap/modeltap-sidecar:0.2.0"
    # Unrenamed, the component's container is the published sidecar image.
    patch = (DEPLOY / "components/sidecar-injection/sidecar-container.yaml").read_text()
    assert re.search(rf"^\s+image: {re.escape(IMAGES['sidecar'])}:\d+\.\d+\.\d+$", patch, re.M)
