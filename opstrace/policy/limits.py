"""Per-tenant limits and retention: the stack's names, the backends' names, their overrides.

Pure, no Pulumi. Operators write a few limits in the stack file, camelCase, named as
Mimir's and Loki's documentation names them (`ingestion_rate` is `ingestionRate`), in a
`metrics` (Mimir) and a `logs` (Loki) group: at the instance level (`limits`, every
tenant's) and per tenant (`tenants[i].limits`, which wins key by key). Both become the
backends' runtime configuration (`overrides:` per tenant), which Mimir and Loki reload
every few seconds without a restart; so does a tenant's own `metricsRetention` and
`logsRetention`. The instance's retention stays in the main configuration, as before.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from opstrace.config.read import ConfigError

METRICS: Final = "metrics"
LOGS: Final = "logs"
GROUPS: Final = (METRICS, LOGS)
"""The limit groups: Mimir's (metrics) and Loki's (logs)."""

NUMBER: Final = "number"
INTEGER: Final = "integer"
DURATION: Final = "duration"
SIZE: Final = "size"

_DURATION_RE: Final = re.compile(r"^[1-9][0-9]*[hd]$")
_SIZE_RE: Final = re.compile(r"^[1-9][0-9]*(B|KB|MB|KiB|MiB)$")


@dataclass(frozen=True)
class Limit:
    """One limit an operator may set: its stack-file key and the backend's."""

    key: str
    """camelCase, as the stack file writes it."""
    backend_key: str
    """As the backend's runtime configuration (and its documentation) names it."""
    kind: str
    """`number` (above zero), `integer` (a whole number above zero), `duration` (hours or
    days), `size` (bytes, with a unit)."""
    unit: str
    example: str


LIMITS: Final[Mapping[str, tuple[Limit, ...]]] = {
    METRICS: (
        Limit("ingestionRate", "ingestion_rate", NUMBER, "samples per second", "25000"),
        Limit("ingestionBurstSize", "ingestion_burst_size", INTEGER, "samples", "250000"),
        Limit("maxGlobalSeriesPerUser", "max_global_series_per_user", INTEGER, "series", "500000"),
        Limit("maxLabelNamesPerSeries", "max_label_names_per_series", INTEGER, "label names", "40"),
        Limit("maxQueryLookback", "max_query_lookback", DURATION, "hours or days", "90d"),
        Limit(
            "maxFetchedSeriesPerQuery",
            "max_fetched_series_per_query",
            INTEGER,
            "series",
            "100000",
        ),
        Limit(
            "maxFetchedChunksPerQuery",
            "max_fetched_chunks_per_query",
            INTEGER,
            "chunks",
            "2000000",
        ),
    ),
    LOGS: (
        Limit("ingestionRateMb", "ingestion_rate_mb", NUMBER, "MB per second", "8"),
        Limit("ingestionBurstSizeMb", "ingestion_burst_size_mb", NUMBER, "MB", "16"),
        Limit("maxLineSize", "max_line_size", SIZE, "bytes (B, KB, MB, KiB or MiB)", "256KB"),
        Limit(
            "maxGlobalStreamsPerUser",
            "max_global_streams_per_user",
            INTEGER,
            "streams",
            "10000",
        ),
        Limit("maxLabelNamesPerSeries", "max_label_names_per_series", INTEGER, "label names", "20"),
        Limit("maxQueryLookback", "max_query_lookback", DURATION, "hours or days", "30d"),
        Limit("maxQuerySeries", "max_query_series", INTEGER, "series", "1000"),
        Limit(
            "maxEntriesLimitPerQuery",
            "max_entries_limit_per_query",
            INTEGER,
            "log lines",
            "5000",
        ),
    ),
}
"""Every limit the stack file may set, by group, in documentation order."""

RETENTION_KEYS: Final = {
    METRICS: "compactor_blocks_retention_period",
    LOGS: "retention_period",
}
"""Where a tenant's own retention goes in each backend's overrides."""

Limits = Mapping[str, Mapping[str, Any]]
"""Group (`metrics`, `logs`) -> stack-file key -> checked value."""
NO_LIMITS: Final[Limits] = {}


def retention_value(group: str, days: int) -> str:
    """A retention as each backend's configuration writes it (Loki's in hours, as the
    instance's own is written)."""
    return f"{days}d" if group == METRICS else f"{days * 24}h"


def parse_limits(field: str, raw: Any, owner: str = "") -> dict[str, dict[str, Any]]:
    """The limits of `raw` (the stack's mapping), checked; `owner` names the tenant in
    every message (` (tenant 'prod')`), "" for the instance's limits."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{field}{owner}: expected a mapping of {' and '.join(GROUPS)} limits, got {raw!r}"
        )
    parsed: dict[str, dict[str, Any]] = {}
    for group, entries in sorted(raw.items()):
        where = f"{field}.{group}"
        if group not in LIMITS:
            raise ConfigError(f"{where}{owner}: unknown limit group: use {' or '.join(GROUPS)}")
        if not isinstance(entries, dict):
            raise ConfigError(f"{where}{owner}: expected a mapping of limits, got {entries!r}")
        known = {limit.key: limit for limit in LIMITS[group]}
        for key, value in sorted(entries.items()):
            if key not in known:
                raise ConfigError(f"{where}.{key}{owner}: {_unknown_limit(group, str(key))}")
            if problem := value_problem(known[key], value):
                raise ConfigError(f"{where}.{key}{owner}: {problem}")
        parsed[group] = {key: entries[key] for key in known if key in entries}
    return parsed


def _unknown_limit(group: str, key: str) -> str:
    names = [limit.key for limit in LIMITS[group]]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    listed = ", ".join(names)
    if close:
        return f"unknown limit; did you mean {close[0]}? The {group} limits are {listed}"
    return f"unknown limit: the {group} limits are {listed}"


def value_problem(limit: Limit, value: Any) -> str | None:
    """Why `value` cannot be `limit`'s value (a number, a whole number, a duration or a
    size above zero, in the limit's unit), or None."""
    if limit.kind in (NUMBER, INTEGER):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return (
                f"{value!r} is not a number of {limit.unit}: write the number alone "
                f"(e.g. {limit.example})"
            )
        if limit.kind == INTEGER and not float(value).is_integer():
            return f"{value!r} is not a whole number of {limit.unit} (e.g. {limit.example})"
        if value < 0:
            return (
                f"{value!r} is negative: use a number of {limit.unit} above zero "
                f"(e.g. {limit.example})"
            )
        if value == 0:
            return (
                f"0 is no limit: use a number of {limit.unit} above zero (e.g. "
                f"{limit.example}), or leave the limit out for the backend's default"
            )
        return None
    pattern = _DURATION_RE if limit.kind == DURATION else _SIZE_RE
    if isinstance(value, str) and pattern.fullmatch(value):
        return None
    return (
        f"{value!r} is not in {limit.unit}: write a whole number and its unit "
        f"(e.g. {limit.example})"
    )


def backend_value(limit: Limit, value: Any) -> Any:
    """`value` as the backend reads it (an integral number as an integer)."""
    if limit.kind == INTEGER or (isinstance(value, float) and value.is_integer()):
        return int(value)
    return value


class TenantPolicy(Protocol):
    """What a tenant sets for itself (`schema.TenantSpec` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def limits(self) -> Limits:
        """Its own limits, over the instance's."""
        ...

    @property
    def retention_days(self) -> Mapping[str, int]:
        """Group -> days, for the groups whose retention the tenant sets itself."""
        ...


def overrides(
    group: str, instance_limits: Limits, tenants: Iterable[TenantPolicy]
) -> dict[str, dict[str, Any]]:
    """Tenant -> the backend's limit -> value: the runtime configuration's `overrides`
    of one backend. The instance's limits hold for every tenant, a tenant's own win key
    by key; a tenant with nothing of its own and no instance limits is left out (the
    backend's defaults hold for it)."""
    result: dict[str, dict[str, Any]] = {}
    for spec in sorted(tenants, key=lambda t: t.name):
        chosen = {**instance_limits.get(group, {}), **spec.limits.get(group, {})}
        entry = {
            limit.backend_key: backend_value(limit, chosen[limit.key])
            for limit in LIMITS[group]
            if limit.key in chosen
        }
        if group in spec.retention_days:
            entry[RETENTION_KEYS[group]] = retention_value(group, spec.retention_days[group])
        if entry:
            result[spec.name] = entry
    return result


def runtime_config(tenant_overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A backend's runtime configuration file (Mimir's and Loki's share the shape)."""
    return {"overrides": {tenant: dict(entry) for tenant, entry in tenant_overrides.items()}}
