"""`up` requests certificates only once the instance zone is delegated: `DelegationCheck`.

Created (and updated whenever the zone's name servers change) after the instance zone,
and before every tenant certificate: its provider, on the operator's machine, asks the
parent zone's name servers until they delegate the zone to its Route53 name servers
(`opstrace.delegation`), for at most `timeout_seconds`, and then ends `up` with one line
naming the NS records still missing. Meanwhile the cluster is made, so that records added
when the preview or `up` names them are in time.

State compatibility: the module path and the class names (`DelegationCheckProvider`,
`DelegationCheck`) are recorded in every stack's state.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
from pulumi.dynamic import (
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from opstrace import delegation

_OUTPUTS: Final = ("delegated_to",)


@dataclass(frozen=True)
class DelegationCheckArgs:
    """Which zone must be delegated to which name servers."""

    zone: str
    name_servers: pulumi.Input[Sequence[str]]
    timeout_seconds: int = delegation.WAIT_SECONDS
    interval_seconds: int = delegation.INTERVAL_SECONDS


def _wait(props: dict[str, Any]) -> list[str]:
    try:
        result = delegation.wait_for_delegation(
            str(props["zone"]),
            list(props["name_servers"]),
            delegation.Servers.from_environment(),
            timeout=float(props["timeout_seconds"]),
            interval=float(props["interval_seconds"]),
        )
    except delegation.DelegationMissing:
        # The provider host reports an exception with traceback.format_exc(): without
        # frames that is its one line. The update ends here, before any certificate.
        sys.tracebacklimit = 0
        raise
    return sorted(result.seen)


class DelegationCheckProvider(ResourceProvider):
    """Waits for the delegation; holds no state or configuration (it is pickled)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(str(props["zone"]), {**props, "delegated_to": _wait(props)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        watched = ("zone", "name_servers")
        changed = [k for k in watched if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**news, "delegated_to": _wait(news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, dict(props))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


_PROVIDER: Final = DelegationCheckProvider()


class DelegationCheck(Resource, module="opstrace", name="DelegationCheck"):
    """Done when the parent zone delegates `zone` to `name_servers`."""

    delegated_to: pulumi.Output[list[str]]
    """The name servers the delegation was seen with (what the last `up` checked)."""

    def __init__(
        self, name: str, args: DelegationCheckArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "zone": args.zone,
            "name_servers": args.name_servers,
            "timeout_seconds": args.timeout_seconds,
            "interval_seconds": args.interval_seconds,
            "delegated_to": None,
        }
        super().__init__(_PROVIDER, name, props, opts)
