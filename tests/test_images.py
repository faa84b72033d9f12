"""Images without Docker Hub's anonymous limit (issue 23, item 5): every image the
instance runs is set by the program, from ECR Public where Docker's official images are
mirrored, and `imageMirrors` moves any of them to the operator's registry. `make charts`
checks the renders name exactly these (devtools.chart_wiring.image_problems)."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.runtime import rpc

from devtools import chart_wiring
from opstrace import chart_images, charts, images
from tests.conftest import dev_config
from tools.offline import ProgramRun, Registration, run_program

ECR = "123456789012.dkr.ecr.eu-central-1.amazonaws.com"
CACHES = {"docker.io": f"{ECR}/docker-hub", "quay.io": f"{ECR}/quay"}
RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.mark.parametrize(
    ("reference", "parsed"),
    [
        ("haproxy:3.4.7", images.Image("docker.io", "library/haproxy", "3.4.7")),
        ("grafana/mimir:3.0.1", images.Image("docker.io", "grafana/mimir", "3.0.1")),
        (
            "registry.example.org:5000/mirror/python:3.13@sha256:" + "a" * 64,
            images.Image(
                "registry.example.org:5000", "mirror/python", "3.13", "sha256:" + "a" * 64
            ),
        ),
    ],
)
def test_a_reference_is_read_as_registries_read_it(reference: str, parsed: images.Image) -> None:
    assert images.parse(reference) == parsed


def test_docker_official_images_come_from_ecr_public_by_default() -> None:
    haproxy = images.mirrored(images.parse("haproxy:3.4.7"), images.DEFAULT_MIRRORS)
    mimir = images.mirrored(images.parse("grafana/mimir:3.0.1"), images.DEFAULT_MIRRORS)
    assert str(haproxy) == "public.ecr.aws/docker/library/haproxy:3.4.7"
    assert str(mimir) == "docker.io/grafana/mimir:3.0.1"  # not on ECR Public


def test_the_longest_matching_source_wins_and_keeps_the_rest_of_the_path() -> None:
    mirrors = {**CACHES, "docker.io/grafana": "registry.example.org/grafana-images"}
    loki = images.mirrored(images.parse("grafana/loki:3.7.2"), mirrors)
    memcached = images.mirrored(images.parse("memcached:1.6.42-alpine"), mirrors)
    assert str(loki) == "registry.example.org/grafana-images/loki:3.7.2"
    assert str(memcached) == f"{ECR}/docker-hub/library/memcached:1.6.42-alpine"


def containers(run: ProgramRun) -> list[str]:
    (deployment,) = [r for r in run.resources if r.type == "kubernetes:apps/v1:Deployment"]
    pod = rpc.unwrap_rpc_secret(deployment.inputs["spec"])["template"]["spec"]
    return sorted(c["image"] for c in [*pod["containers"], *pod.get("initContainers", [])])


def test_the_gateway_and_its_sidecar_come_from_ecr_public(dev_run: ProgramRun) -> None:
    assert containers(dev_run) == [
        "public.ecr.aws/docker/library/haproxy:3.4.7",
        "public.ecr.aws/docker/library/python:3.13.9-slim-trixie",
    ]


def releases(run: ProgramRun) -> dict[str, Registration]:
    return {r.inputs["chart"]: r for r in run.resources if r.type == RELEASE}


def chart_image(values: dict[str, Any], image: chart_images.ChartImage) -> dict[str, Any]:
    for key in image.at:
        values = values[key]
    return values


def test_every_chart_image_is_set_by_the_program(dev_run: ProgramRun) -> None:
    found = releases(dev_run)
    assert set(found) == set(chart_images.CHART_IMAGES) == {c.name for c in charts.ALL_CHARTS}
    for chart, listed in chart_images.CHART_IMAGES.items():
        values = rpc.unwrap_rpc_secret(found[chart].inputs["values"])
        for image in listed:
            resolved = image.resolved(images.DEFAULT_MIRRORS)
            set_to = chart_image(values, image)
            written = (
                f"{set_to['repository']}:{set_to['tag']}"
                if image.style == chart_images.REPOSITORY
                else f"{set_to['registry']}/{set_to['repository']}:{set_to['tag']}"
            )
            assert written == str(resolved), (chart, image.at)


def test_memcached_comes_from_ecr_public_and_grafanas_images_from_docker_hub() -> None:
    mimir = {
        str(i.resolved(images.DEFAULT_MIRRORS))
        for i in chart_images.CHART_IMAGES["mimir-distributed"]
    }
    assert "public.ecr.aws/docker/library/memcached:1.6.39-alpine" in mimir
    assert "docker.io/grafana/mimir:3.0.1" in mimir


def test_with_pull_through_caches_nothing_is_pulled_from_docker_hub_or_quay() -> None:
    run = run_program(dev_config(imageMirrors=CACHES), stack="dev")
    assert containers(run) == [
        f"{ECR}/docker-hub/library/haproxy:3.4.7",
        f"{ECR}/docker-hub/library/python:3.13.9-slim-trixie",
    ]
    for chart, release in releases(run).items():
        text = str(rpc.unwrap_rpc_secret(release.inputs["values"]))
        for image in chart_images.CHART_IMAGES[chart]:
            resolved = image.resolved(CACHES)
            assert resolved.registry in {ECR, "public.ecr.aws"}, (chart, str(resolved))
            assert resolved.repository in text, (chart, resolved.repository)


def test_a_render_running_an_image_the_program_did_not_set_is_named() -> None:
    rendered = [
        {
            "kind": "Deployment",
            "metadata": {"name": "loki-gateway"},
            "spec": {"template": {"spec": {"containers": [{"image": "nginx:1.31-alpine"}]}}},
        }
    ]
    assert chart_wiring.image_problems("loki", rendered, {"docker.io/grafana/loki:3.7.2"}) == [
        "loki: Deployment/loki-gateway runs nginx:1.31-alpine, not an image the program set"
    ]
