"""Every image the instance runs, and where it is pulled from: `imageMirrors`.

Pure, no Pulumi. Docker Hub lets an anonymous client pull 10 images an hour per IPv4
address ("Unauthenticated users | 10 per IPv4 address or IPv6 /64 subnet": docker/docs
`content/manuals/docker-hub/usage/_index.md`), and every node of an instance pulls through
one NAT address: a first `up` pulls more than that, and pods wait, and Helm releases roll
back after their timeout. So images come from a registry without that limit where the
same image is there, and a mirror setting maps the rest.

`imageMirrors` maps a source (a registry, or a registry and a path) to where its images
are pulled instead, keeping the rest of the path: `docker.io/library/haproxy:3.4.7` with
`{docker.io/library: public.ecr.aws/docker/library}` is
`public.ecr.aws/docker/library/haproxy:3.4.7`. The longest matching source wins. The
default, `DEFAULT_MIRRORS`, maps Docker's official images to ECR Public's copy of them
(`public.ecr.aws/docker/library/<name>`: "Docker Official Images available on Amazon
Elastic Container Registry Public", Docker's press release; Argo CD's operator pulls its
HAProxy from there by default: argoproj-labs/argocd-operator `common/defaults.go`), which
anonymous clients pull without Docker Hub's limit (ECR Public: 500 GB a month). A stack
that sets `imageMirrors` replaces the default; e.g. an ECR pull-through cache of Docker
Hub (which needs Docker Hub credentials in Secrets Manager) and of quay.io:

    opstrace:imageMirrors:
      docker.io: 123456789012.dkr.ecr.eu-central-1.amazonaws.com/docker-hub
      quay.io: 123456789012.dkr.ecr.eu-central-1.amazonaws.com/quay
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

DOCKER_HUB: Final = "docker.io"
DEFAULT_MIRRORS: Final[Mapping[str, str]] = {
    f"{DOCKER_HUB}/library": "public.ecr.aws/docker/library",
}
_REGISTRY_RE: Final = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?$")
_PATH_RE: Final = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


@dataclass(frozen=True)
class Image:
    """An image reference split as registries and charts split it."""

    registry: str
    repository: str
    tag: str
    digest: str = ""
    """`sha256:<hex>`, or ""."""

    @property
    def name(self) -> str:
        """Registry and repository: what charts call a full repository."""
        return f"{self.registry}/{self.repository}"

    @property
    def version(self) -> str:
        """The tag, with the digest where there is one (`3.4.7@sha256:...`)."""
        return f"{self.tag}@{self.digest}" if self.digest else self.tag

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


def parse(reference: str) -> Image:
    """`haproxy:3.4.7`, `grafana/mimir:3.0.1` or `quay.io/a/b:v1@sha256:...` as an Image:
    Docker Hub where no registry is named, `library/` for an official image."""
    rest, _, digest = reference.partition("@")
    path, _, tag = rest.rpartition(":")
    if "/" in tag or not path:
        raise ValueError(f"{reference!r} names no tag")
    first, _, remainder = path.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        return Image(first, remainder, tag, digest)
    return Image(DOCKER_HUB, path if remainder else f"library/{path}", tag, digest)


def mirrored(image: Image, mirrors: Mapping[str, str]) -> Image:
    """Where `image` is pulled from under `mirrors` (see the module docstring)."""
    source = image.name
    matching = [s for s in mirrors if source == s or source.startswith(f"{s}/")]
    if not matching:
        return image
    chosen = max(matching, key=len)
    target = mirrors[chosen].rstrip("/")
    host, _, prefix = target.partition("/")
    rest = source[len(chosen) :].lstrip("/")
    return Image(host, "/".join(part for part in (prefix, rest) if part), image.tag, image.digest)


def mirror_problem(source: str, target: str) -> str | None:
    """Why `source: target` is not a usable mirror entry, or None."""
    for role, value in (("source", source), ("mirror", target)):
        host, _, path = value.rstrip("/").partition("/")
        if not _REGISTRY_RE.fullmatch(host) or (path and not _PATH_RE.fullmatch(path)):
            return (
                f"{role} {value!r} is not a registry with an optional path: write e.g. "
                "docker.io: 123456789012.dkr.ecr.eu-central-1.amazonaws.com/docker-hub"
            )
    return None
