"""The instance's public-key trust store, as the authenticator reads it.

A ConfigMap holds the key set in Opstrace's exact format (a JSON object key ID -> PEM,
under the key `API_AUTHTOKEN_VERIFICATION_PUBKEY_SET`) and a standard JWKS document
with the same key IDs. Only public keys ever enter: every key is validated, and any
private key material is refused before anything is registered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.rules import keys

JWKS_FILE: Final = "jwks.json"


@dataclass(frozen=True)
class TrustStoreArgs:
    """Which keys the instance trusts and where the store lives."""

    namespace: pulumi.Input[str]
    """The instance's system namespace."""
    public_keys: Sequence[pulumi.Input[str]]
    """SPKI PEM public keys: one per token credential, plus any extra trusted keys."""


def trust_store_data(public_keys: Sequence[str]) -> dict[str, str]:
    """The ConfigMap's data for a set of public keys (validated, deduplicated, sorted)."""
    key_set = keys.key_set(public_keys)
    return {
        keys.KEYSET_ENV_NAME: keys.key_set_json(key_set),
        JWKS_FILE: json.dumps(keys.jwks(key_set), indent=2, sort_keys=True) + "\n",
    }


class TrustStore(pulumi.ComponentResource):
    """The set of public keys whose tokens the instance accepts.

    Removing a key here revokes every token signed by its private key.
    """

    key_set: pulumi.Output[dict[str, str]]
    """Key ID -> PEM, the document the gateway renders its key files from."""
    key_ids: pulumi.Output[list[str]]
    config_map_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: TrustStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:TrustStore", name, None, opts)
        self.key_set = pulumi.Output.all(*args.public_keys).apply(
            lambda pems: keys.key_set(list(pems))
        )
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-keys",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="opstrace-trust-store",
                namespace=args.namespace,
                labels={"app.kubernetes.io/part-of": "opstrace", "opstrace.io/role": "trust-store"},
            ),
            data=self.key_set.apply(lambda key_set: trust_store_data(list(key_set.values()))),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_ids = self.key_set.apply(lambda key_set: sorted(key_set))
        self.config_map_name = config_map.metadata.apply(lambda m: m.name or "")
        self.register_outputs(
            {
                "key_set": self.key_set,
                "key_ids": self.key_ids,
                "config_map_name": self.config_map_name,
            }
        )
