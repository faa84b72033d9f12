"""Render the data API gateway's HAProxy files for a local run or a review.

    python -m tools.gateway render --instance acme --domain example.com \\
        --tenants prod,dev --keyset keyset.json [--bindings bindings.json] \\
        --cortex-url http://127.0.0.1:9009 --loki-url http://127.0.0.1:3100 \\
        --listen 127.0.0.1:8443 --http-listen 127.0.0.1:8080 --out ./gateway \
        [--allowed-networks 203.0.113.0/24] [--tenant-networks prod=203.0.113.0/26] \
        [--usage-log 127.0.0.1:8083] [--internal-listen 127.0.0.1:9443] \
        [--grafana prod=http://127.0.0.1:3000]

writes haproxy.cfg, the maps, the crt-list, the reload script and the key files exactly
as the Gateway component puts them into its ConfigMaps (same renderer), with paths
pointing into `--out` unless `--config-dir` names where they will be read from. Put each
tenant's certificate chain and private key at `<certs dir>/<tenant>.pem` and
`<tenant>.pem.key` (default certs dir: `<config dir>/certs`), then:
`haproxy -W -db -f ./gateway/haproxy.cfg`. Errors exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from opstrace import keys
from opstrace.gateway import routes, sources
from opstrace.gateway.files import render_gateway_files
from opstrace.gateway.settings import GatewayConfigError, GatewaySettings

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        written = _render(args)
    except (GatewayConfigError, keys.KeySetError, keys.KeyMaterialError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"error: {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {written} files to {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="write haproxy.cfg, maps and key files")
    render.add_argument("--instance", required=True)
    render.add_argument("--domain", required=True)
    render.add_argument(
        "--tenants", required=True, help="comma-separated; the system tenant is always served"
    )
    render.add_argument(
        "--keyset", required=True, type=Path, help="key set JSON (key ID -> public key PEM)"
    )
    render.add_argument(
        "--bindings", type=Path, help="JSON object key ID -> tenant (default: every key unbound)"
    )
    for service, what in (("cortex", "metrics"), ("loki", "logs")):
        render.add_argument(f"--{service}-url", help=f"the {what} backend for every request")
        for role in _roles(service):
            render.add_argument(
                f"--{service}-{role}-url",
                help=f"the {what} {role} backend (default: --{service}-url)",
            )
    render.add_argument(
        "--metrics-query-prefix", default="", help="'/prometheus' for Mimir (default: '')"
    )
    render.add_argument(
        "--ruler-config-prefix",
        default=routes.CORTEX_RULER_CONFIG_PATH,
        help=f"'{routes.RULER_CONFIG_PATH}' for Mimir (default: Cortex's "
        f"'{routes.CORTEX_RULER_CONFIG_PATH}')",
    )
    render.add_argument(
        "--metrics-otlp-path",
        default=routes.CORTEX_OTLP_METRICS_PATH,
        help=f"'{routes.OTLP_METRICS_PATH}' for Mimir (default: Cortex's "
        f"'{routes.CORTEX_OTLP_METRICS_PATH}')",
    )
    render.add_argument("--listen", required=True, help="IPV4:PORT of the data API (HTTPS)")
    render.add_argument("--http-listen", help="IPV4:PORT refusing plain HTTP (default: none)")
    render.add_argument("--health-listen", help="IPV4:PORT of /healthz (default: none)")
    render.add_argument(
        "--allowed-networks",
        default="",
        help="comma-separated networks every tenant takes requests from (default: any)",
    )
    render.add_argument(
        "--tenant-networks",
        action="append",
        default=[],
        metavar="TENANT=NETWORK[,NETWORK...]",
        help="a tenant's own networks, within --allowed-networks (repeatable)",
    )
    render.add_argument(
        "--usage-log",
        help="IPV4:PORT to forward the access log to for usage counters (default: none)",
    )
    render.add_argument(
        "--internal-listen",
        help="IPV4:PORT of the in-cluster listener: the data API without the allowlists "
        "(default: none)",
    )
    render.add_argument(
        "--grafana",
        action="append",
        default=[],
        metavar="TENANT=URL",
        help="a tenant's Grafana (http://HOST[:PORT]), served at grafana.<tenant>... (repeatable)",
    )
    render.add_argument("--out", required=True, type=Path)
    render.add_argument(
        "--config-dir", help="absolute directory HAProxy reads the files from (default: --out)"
    )
    return parser


def _roles(service: str) -> list[str]:
    """The upstreams of `service` in the route allowlist (`push`, `query`, ...)."""
    return sorted({rule.upstream for rule in routes.ROUTES if rule.service == service})


def _upstream(args: argparse.Namespace, service: str, role: str) -> str:
    url: str | None = getattr(args, f"{service}_{role}_url") or getattr(args, f"{service}_url")
    if url is None:
        raise GatewayConfigError(f"--{service}-{role}-url: required (or --{service}-url)")
    return url


def _bindings(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise GatewayConfigError(f"--bindings: {path} is not JSON: {error}") from None
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in document.items()
    ):
        raise GatewayConfigError(
            f"--bindings: {path} must hold one JSON object of key ID -> tenant name"
        )
    return document


def _networks(flag: str, text: str) -> tuple[str, ...]:
    """Comma-separated networks of a flag, each checked (host bits zero)."""
    networks = tuple(part.strip() for part in text.split(",") if part.strip())
    for network in networks:
        if problem := sources.network_problem(network):
            raise GatewayConfigError(f"{flag}: {problem}")
    return networks


def _tenant_networks(entries: list[str]) -> dict[str, tuple[str, ...]]:
    own: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        tenant, _, networks = entry.partition("=")
        if not tenant or not networks or tenant in own:
            raise GatewayConfigError(
                f"--tenant-networks: {entry!r}: use TENANT=NETWORK[,NETWORK...], once per tenant"
            )
        own[tenant] = _networks(f"--tenant-networks {tenant}", networks)
    return own


def _grafana(entries: list[str]) -> dict[str, str]:
    urls: dict[str, str] = {}
    for entry in entries:
        tenant, _, url = entry.partition("=")
        if not tenant or not url or tenant in urls:
            raise GatewayConfigError(f"--grafana: {entry!r}: use TENANT=URL, once per tenant")
        urls[tenant] = url
    return urls


_FIELD_FLAGS: Final = (
    (re.compile(r"^internal_listen:"), "--internal-listen:"),
    (re.compile(r"^grafana_urls\['([^']*)'\]:"), r"--grafana \1:"),
    (re.compile(r"^grafana_urls:"), "--grafana:"),
)
"""A refusal of a settings field that one flag alone sets, named by that flag."""


def _named_by_flag(error: GatewayConfigError) -> GatewayConfigError:
    message = str(error)
    for field, flag in _FIELD_FLAGS:
        message = field.sub(flag, message, count=1)
    return GatewayConfigError(message)


def _render(args: argparse.Namespace) -> int:
    out: Path = args.out
    trusted = keys.parse_key_set_json(args.keyset.read_text(encoding="utf-8"), source="--keyset")
    try:
        settings = _settings(args, out)
    except GatewayConfigError as error:
        raise _named_by_flag(error) from None
    files = render_gateway_files(settings, trusted, _bindings(args.bindings))
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("key-*.pem"):
        if stale.name not in files:
            stale.unlink()
    for name, content in files.items():
        (out / name).write_text(content, encoding="utf-8")
    return len(files)


def _settings(args: argparse.Namespace, out: Path) -> GatewaySettings:
    urls: dict[str, Any] = {
        f"{service}_{role}_url": _upstream(args, service, role)
        for service in ("cortex", "loki")
        for role in _roles(service)
    }
    return GatewaySettings(
        instance=args.instance,
        domain=args.domain,
        tenants=[tenant for tenant in args.tenants.split(",") if tenant],
        **urls,
        metrics_query_prefix=args.metrics_query_prefix,
        ruler_config_prefix=args.ruler_config_prefix,
        metrics_otlp_path=args.metrics_otlp_path,
        listen=args.listen,
        internal_listen=args.internal_listen,
        http_listen=args.http_listen,
        health_listen=args.health_listen,
        usage_log=args.usage_log,
        config_dir=args.config_dir or str(out.resolve()),
        instance_networks=_networks("--allowed-networks", args.allowed_networks),
        tenant_networks=_tenant_networks(args.tenant_networks),
        grafana_urls=_grafana(args.grafana),
    )


if __name__ == "__main__":
    sys.exit(main())
