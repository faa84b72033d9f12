"""The instance's public-key trust store, as the authenticator reads it.

The keys are spread over sixteen shards by holder (`opstrace.key_shards`); the
ConfigMap `opstrace-trust-store-<shard>` holds a shard's keys in Opstrace's exact format
(a JSON object key ID -> PEM, under the key `API_AUTHTOKEN_VERIFICATION_PUBKEY_SET`), and
`opstrace-trust-store-jwks-<shard>` a standard JWKS document with the same key IDs; the
instance's key set is their union. Only public keys ever enter: every key is validated,
and any private key material is refused before anything is registered. Which tenant
each key may sign for is kept beside it (`bindings`) for the gateway; Opstrace's format
has no place for it.

The names are fixed (a contract for whatever reads the key set) and the objects are
updated in place, never replaced: the instance's Kubernetes provider has ConfigMap
mutability on, so a key set change is one atomic update of its shard and there is no
moment without a trust store (replacing a named ConfigMap would delete it before
creating it anew).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter

import pulumi
import pulumi_kubernetes as k8s

from components.bail import reported
from opstrace import config_maps, key_shards, keys
from opstrace.gateway.files import KeyEntry


@dataclass(frozen=True)
class BoundKey:
    """A trusted public key (known once minted) and what the gateway knows of it."""

    pem: pulumi.Input[str]
    entry: KeyEntry
    """Its tenant, name and rate limit; its `pem` is left empty (`pem` above is the key)."""

    @property
    def tenant(self) -> str | None:
        """The one tenant it signs for (None: every tenant)."""
        return self.entry.tenant

    @property
    def shard(self) -> str:
        """The shard that holds it (`opstrace.key_shards`): known before the key is, from
        its entry's holder; else from the key, where it is known now."""
        pem = self.pem if isinstance(self.pem, str) else self.entry.pem
        return dataclasses.replace(self.entry, pem=pem).shard()


@dataclass(frozen=True)
class TrustStoreArgs:
    """Which keys the instance trusts and where the store lives."""

    namespace: pulumi.Input[str]
    """The instance's system namespace."""
    keys: Sequence[BoundKey]
    """One per token credential (bound to its tenant), plus the extra trusted keys."""


def _shard_documents(shard: str, pems: Sequence[str]) -> dict[str, dict[str, str]]:
    """A shard's two ConfigMaps' data, from its keys, each checked against the size rule."""
    key_set = config_maps.shard_key_set(pems)
    return {
        name: config_maps.checked_data(name, data)
        for name, data in config_maps.trust_store_shard(shard, key_set).items()
    }


class TrustStore(pulumi.ComponentResource):
    """The set of public keys whose tokens the instance accepts.

    Removing a key here revokes every token signed by its private key.
    """

    key_set: pulumi.Output[dict[str, str]]
    """Key ID -> PEM, the document the gateway renders its key files from."""
    bindings: pulumi.Output[dict[str, str]]
    """Key ID -> the one tenant it signs for; absent keys sign for every tenant."""
    key_ids: pulumi.Output[list[str]]
    config_map_names: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: TrustStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:TrustStore", name, None, opts)
        pems = pulumi.Output.all(*(key.pem for key in args.keys))
        tenants = [key.tenant for key in args.keys]
        # Keys read from signing key files are known only once minted: their rules are
        # checked here, and a broken one ends the update in one line (components.bail).
        self.key_set = pems.apply(reported(lambda values: keys.key_set(list(values))))
        self.bindings = pems.apply(
            reported(lambda values: keys.key_bindings(zip(values, tenants, strict=True)))
        )
        labels = {"app.kubernetes.io/part-of": "opstrace", "opstrace.io/role": "trust-store"}
        created = []
        for shard in key_shards.SHARDS:
            # Each shard's documents from its own keys: a plan shows the shards a change
            # touches, and only those.
            held = [key.pem for key in args.keys if key.shard == shard]
            documents = pulumi.Output.all(*held).apply(reported(partial(_shard_documents, shard)))
            created += [
                k8s.core.v1.ConfigMap(
                    f"{name}-{role}-{shard}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=object_name, namespace=args.namespace, labels=labels
                    ),
                    data=documents.apply(itemgetter(object_name)),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                for role, object_name in (
                    ("keys", config_maps.trust_store_name(shard)),
                    ("jwks", config_maps.jwks_name(shard)),
                )
            ]
        self.key_ids = self.key_set.apply(lambda key_set: sorted(key_set))
        self.config_map_names = pulumi.Output.all(
            *(config_map.metadata.apply(lambda m: m.name or "") for config_map in created)
        )
        self.register_outputs(
            {
                "key_set": self.key_set,
                "bindings": self.bindings,
                "key_ids": self.key_ids,
                "config_map_names": self.config_map_names,
            }
        )
