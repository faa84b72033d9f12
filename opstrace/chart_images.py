"""The images each pinned chart runs, set in its values so that `imageMirrors` reaches them.

Pure, no Pulumi. Every image a chart renders for the instance is listed here with the
reference its pinned version uses (its values.yaml or appVersion; `make charts` checks
that a render names exactly these, mirrored) and where its values set it:

- `repository` charts compose `<repository>:<tag>` (a registry goes into the repository):
  mimir-distributed's `image` and memcached's, the rollout operator's (its subchart with
  an empty `registry`), the load balancer controller's, cert-manager's per component
  (`image.repository`, "Full repository override").
- `registry` charts compose `<registry>/<repository>:<tag>`: Loki's (`loki.image` helper),
  Alloy's and Grafana's (its pod template; its init, sidecar, dashboard download and
  test images are not rendered: `chart_values.grafana_values` turns them off).

Where no registry without Docker Hub's anonymous limit has the image (Grafana's images:
mimir, loki, alloy, rollout-operator, grafana; prom/memcached-exporter), it stays on Docker Hub
unless `imageMirrors` maps `docker.io` (README, "Images"). memcached is a Docker official
image and comes from ECR Public by default; cert-manager's and Alloy's config reloader
come from quay.io, the load balancer controller from ECR Public.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from opstrace import charts
from opstrace.images import Image, mirrored, parse

REPOSITORY: Final = "repository"
REGISTRY: Final = "registry"


@dataclass(frozen=True)
class ChartImage:
    """One image of a chart: where its values set it, how, and its pinned reference."""

    at: tuple[str, ...]
    style: str
    reference: str

    def values(self, mirrors: Mapping[str, str]) -> dict[str, Any]:
        image = self.resolved(mirrors)
        if self.style == REPOSITORY:
            leaf: dict[str, Any] = {"repository": image.name, "tag": image.version}
        else:
            leaf = {"registry": image.registry, "repository": image.repository}
            leaf["tag"] = image.version
        for key in reversed(self.at):
            leaf = {key: leaf}
        return leaf

    def resolved(self, mirrors: Mapping[str, str]) -> Image:
        return mirrored(parse(self.reference), mirrors)


CHART_IMAGES: Final[Mapping[str, tuple[ChartImage, ...]]] = {
    charts.MIMIR.name: (
        ChartImage(("image",), REPOSITORY, "docker.io/grafana/mimir:3.0.1"),
        ChartImage(("memcached", "image"), REPOSITORY, "docker.io/library/memcached:1.6.39-alpine"),
        ChartImage(
            ("memcachedExporter", "image"), REPOSITORY, "docker.io/prom/memcached-exporter:v0.15.3"
        ),
        ChartImage(
            ("rollout_operator", "image"), REPOSITORY, "docker.io/grafana/rollout-operator:v0.32.0"
        ),
    ),
    charts.LOKI.name: (
        ChartImage(("loki", "image"), REGISTRY, "docker.io/grafana/loki:3.7.2"),
        ChartImage(("memcached", "image"), REGISTRY, "docker.io/library/memcached:1.6.42-alpine"),
        ChartImage(
            ("memcachedExporter", "image"), REGISTRY, "docker.io/prom/memcached-exporter:v0.16.0"
        ),
    ),
    charts.ALLOY.name: (
        ChartImage(("image",), REGISTRY, "docker.io/grafana/alloy:v1.18.1"),
        ChartImage(
            ("configReloader", "image"),
            REGISTRY,
            "quay.io/prometheus-operator/prometheus-config-reloader:v0.91.0@sha256:"
            "7d9e4eea5f1139e602508871f422b0116c60e87c662f3dcd234d5ab60cd0d8c1",
        ),
    ),
    charts.LOAD_BALANCER_CONTROLLER.name: (
        ChartImage(
            ("image",), REPOSITORY, "public.ecr.aws/eks/aws-load-balancer-controller:v3.5.0"
        ),
    ),
    charts.GRAFANA.name: (
        # grafana 12.11.1's appVersion (the image's tag when `image.tag` is empty).
        ChartImage(("image",), REGISTRY, "docker.io/grafana/grafana:13.2.0"),
    ),
    charts.CERT_MANAGER.name: tuple(
        ChartImage((*at, "image"), REPOSITORY, f"quay.io/jetstack/cert-manager-{name}:v1.21.1")
        for at, name in (
            ((), "controller"),
            (("webhook",), "webhook"),
            (("cainjector",), "cainjector"),
            (("startupapicheck",), "startupapicheck"),
            (("acmesolver",), "acmesolver"),
        )
    ),
}
"""Each chart's images at its pinned version. Mimir's is pinned, not left to the chart:
mimir-distributed 6.0.4 sets 3.0.1 too (6.0.0 had set the release candidate 3.0.0-rc.2);
Mimir 3.0.2 (Go 1.25.5, CVE-2025-61729) is in grafana/mimir's CHANGELOG.md: move to it
once its image is seen in the registry."""


def image_values(chart: str, mirrors: Mapping[str, str]) -> list[dict[str, Any]]:
    """The values that set each of `chart`'s images, mirrored."""
    return [image.values(mirrors) for image in CHART_IMAGES[chart]]


def expected_images(chart: str, mirrors: Mapping[str, str]) -> set[str]:
    return {str(image.resolved(mirrors)) for image in CHART_IMAGES[chart]}
