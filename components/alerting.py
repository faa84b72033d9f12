"""Dynamic providers that put a tenant's rules and Alertmanager configuration in place.

They talk to the tenant's own endpoint (`https://cortex.<tenant>.<instance>.<domain>`)
through the gateway, with the tenant's own token, exactly as the tenant's tools would:
nothing reaches the ruler or the Alertmanager by another way, and no other tenant's
configuration can be touched (the gateway takes the tenant from the host, and the
token must be that tenant's). `preview` compares the stack file's documents with what
the state holds (`diff`, no network); `up` uploads them, `destroy` and removing them from
the stack delete them, `refresh` reads what the backend holds (`read`).

A tenant's rule groups live in one ruler namespace (`rule_files.RULES_NAMESPACE`): groups
removed from the file are deleted, groups in the tenant's other namespaces are never
touched. Without its own configuration, a tenant's Alertmanager runs the instance's
default (a receiver that notifies nobody); deleting the resource brings that back.

Calls wait for what `up` is still bringing about (the endpoint's DNS record and
certificate, the gateway's reload of a new tenant or key, a backend starting) for up to
`SETTLE_SECONDS`; any other refusal ends the call with the backend's own message.
The provider host reads the proxy (`HTTPS_PROXY`) and the trusted CAs (`SSL_CERT_FILE`)
from the environment, as the operator's other tools do.

State compatibility: the module path `components.alerting` and the class names below are
recorded in every stack's state (the providers are pickled by reference).
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import yaml
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)
from pulumi.output import Unknown

from opstrace import data_token
from opstrace.gateway import routes
from opstrace.gateway.haproxy import NOT_FOUND_BODY
from opstrace.policy import rule_files

SETTLE_SECONDS: Final = 600.0
"""How long a call waits for the endpoint to come about (DNS, certificate, gateway reload,
backend start) before it fails: a bound, not a speed goal."""
REQUEST_TIMEOUT_SECONDS: Final = 60.0
_FIRST_DELAY_SECONDS: Final = 0.5
_LONGEST_DELAY_SECONDS: Final = 10.0
ALERTMANAGER_CONFIG_PATH: Final = "/api/v1/alerts"
RULER_APIS: Final = (routes.RULER_CONFIG_PATH, routes.LOKI_RULER_CONFIG_PATH)
"""The rulers' configuration APIs, as the gateway serves them at a tenant's endpoints:
the metrics ruler's (Mimir's spelling) and Loki's."""
"""The Alertmanager configuration API (Cortex's, Mimir's and Opstrace's spelling)."""


class ConfigApiError(Exception):
    """Raised when the tenant's endpoint refuses a call for good; the message says which
    tenant, what was asked and what it answered."""


class EndpointGone(ConfigApiError):
    """Raised when a delete finds the tenant's endpoint gone: the tenant left the
    instance in the same update, before its configuration could be deleted."""

    def __init__(self, tenant: str, what: str, answer: str) -> None:
        super().__init__(
            f"tenant {tenant!r}: {what}: {answer}: the tenant's endpoint is gone (the tenant "
            "was removed in this update), so its rules and Alertmanager configuration stay "
            "in the backend: put the tenant back, remove its rules and alertmanagerConfig, "
            "`up`, then remove the tenant"
        )


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


def _from_the_gateway(answer: Answer) -> bool:
    """Whether the gateway itself refused: the host is no endpoint yet (it reloads a new
    tenant), or the token's key is not loaded yet (it reloads a new key)."""
    return (answer.status, answer.body) in (
        (404, NOT_FOUND_BODY),
        (401, data_token.BAD_TOKEN),
    )


def call(
    endpoint: str,
    token: str,
    method: str,
    path: str,
    body: str | None = None,
    *,
    tenant: str,
    settle_seconds: float = SETTLE_SECONDS,
    patient: bool = True,
    trusted_roots: str = "",
) -> Answer:
    """One request to the tenant's endpoint, repeated while the answer is one `up` is
    still bringing about: no connection yet, a 5xx and, `patient`, no TLS yet or the
    gateway's own refusal of a host or key it has not loaded yet. Impatient (a delete,
    of what was uploaded through this endpoint before), a TLS refusal or the gateway's
    not knowing the host means the endpoint is gone: `EndpointGone` at once."""
    url = endpoint.rstrip("/") + path
    deadline = time.monotonic() + settle_seconds
    delay = _FIRST_DELAY_SECONDS
    while True:
        problem: str
        try:
            answer = _once(url, token, method, body, trusted_roots)
        except OSError as error:
            reason = getattr(error, "reason", None) or error
            if not patient and isinstance(reason, ssl.SSLError):
                raise EndpointGone(tenant, f"{method} {url}", f"TLS refused: {reason}") from None
            problem = f"no answer: {reason}"
        else:
            if not patient and (answer.status, answer.body) == (404, NOT_FOUND_BODY):
                raise EndpointGone(tenant, f"{method} {url}", f"404 {NOT_FOUND_BODY}")
            waiting = answer.status >= 500 or (patient and _from_the_gateway(answer))
            if not waiting:
                return answer
            problem = f"{answer.status} {_first_line(answer.body)}"
        if time.monotonic() + delay > deadline:
            raise ConfigApiError(
                f"tenant {tenant!r}: {method} {url}: {problem} (still, after "
                f"{settle_seconds:.0f} s)"
            )
        time.sleep(delay)
        delay = min(delay * 2, _LONGEST_DELAY_SECONDS)


def _once(url: str, token: str, method: str, body: str | None, trusted_roots: str = "") -> Answer:
    if not url.startswith("https://"):
        raise ConfigApiError(f"{url!r} is not an https:// endpoint")
    request = urllib.request.Request(  # noqa: S310 (https only, checked above)
        url,
        data=None if body is None else body.encode("utf-8"),
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/yaml",
            "User-Agent": "opstrace-pulumi",
        },
    )
    # The endpoint's CA: the system's, or only `trusted_roots` (Let's Encrypt's staging).
    context = ssl.create_default_context(cadata=trusted_roots or None)
    try:
        with urllib.request.urlopen(  # noqa: S310 (https only, checked above)
            request, timeout=REQUEST_TIMEOUT_SECONDS, context=context
        ) as response:
            return Answer(response.status, response.read().decode("utf-8", errors="replace"))
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode("utf-8", errors="replace"))


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def _expect(answer: Answer, accepted: Sequence[int], what: str, tenant: str) -> Answer:
    if answer.status not in accepted:
        raise ConfigApiError(
            f"tenant {tenant!r}: {what}: {answer.status} {_first_line(answer.body)}"
        )
    return answer


def _is_known(value: Any) -> bool:
    return not isinstance(value, Unknown)


def _check(news: dict[str, Any], texts: Sequence[str], lists: Sequence[str]) -> CheckResult:
    inputs = {k: v for k, v in news.items() if k != "__provider"}
    failures = []
    for field in texts:
        value = inputs.get(field)
        if _is_known(value) and not isinstance(value, str):
            failures.append(CheckFailure(field, f"{field} must be text, got {value!r}"))
    for field in lists:
        value = inputs.get(field)
        if _is_known(value) and not (
            isinstance(value, list) and all(isinstance(v, str) or not _is_known(v) for v in value)
        ):
            failures.append(CheckFailure(field, f"{field} must be a list of texts, got {value!r}"))
    endpoint = inputs.get("endpoint")
    if isinstance(endpoint, str) and not endpoint.startswith("https://"):
        failures.append(CheckFailure("endpoint", f"{endpoint!r} is not an https:// endpoint"))
    return CheckResult(inputs, failures)


def _changes(olds: Mapping[str, Any], news: Mapping[str, Any], inputs: Sequence[str]) -> bool:
    return any(olds.get(k) != news.get(k) for k in (*inputs, TRUSTED_ROOTS))


TRUSTED_ROOTS: Final = "trusted_roots"
"""An optional input, set only with Let's Encrypt's staging CA: the PEM roots the calls
trust instead of the system's (absent from the state of every other resource)."""


# Rules -----------------------------------------------------------------------------------

_RULES_INPUTS: Final = ("endpoint", "api", "tenant", "token", "namespace", "groups")


def _group_name(group: str) -> str:
    return str(yaml.safe_load(group)["name"])


def _namespace_path(props: Mapping[str, Any]) -> str:
    return f"{props['api']}/{props['namespace']}"


class RulesProvider(ResourceProvider):
    """A tenant's rule groups in one ruler namespace. Stateless and config-free: it is
    pickled into state."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        checked = _check(news, ("endpoint", "tenant", "token", "namespace"), ("groups",))
        api = news.get("api")
        if _is_known(api) and api not in RULER_APIS:
            checked.failures.append(
                CheckFailure(
                    "api",
                    f"{api!r} is not a ruler's configuration API: use one of "
                    f"{', '.join(RULER_APIS)}",
                )
            )
        return checked

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # The endpoint is only the way in: the groups live in the tenant's ruler (which
        # `api` names: another ruler holds other groups).
        replaces = [k for k in ("api", "tenant", "namespace") if olds.get(k) != news.get(k)]
        return DiffResult(
            changes=_changes(olds, news, _RULES_INPUTS),
            replaces=replaces,
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._upload(props, [])
        return CreateResult(f"{props['tenant']}/{props['namespace']}", outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._upload(news, list(olds.get("groups") or [])))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        answer = _rules_call(props, "GET", _namespace_path(props))
        if _backend_has_none(answer):
            groups: list[str] = []  # the ruler knows no group of the namespace
        else:
            _expect(answer, (200,), f"GET {_namespace_path(props)}", props["tenant"])
            groups = list(rule_files.groups_in_answer(answer.body, props["namespace"]))
        return ReadResult(id_, {**_plain(props, _RULES_INPUTS), "groups": groups})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        path = _namespace_path(props)
        answer = _rules_call(props, "DELETE", path, patient=False)
        _gone_or(answer, f"DELETE {path}", props["tenant"])

    def _upload(self, props: Mapping[str, Any], old_groups: Sequence[str]) -> dict[str, Any]:
        path = _namespace_path(props)
        for group in props["groups"]:
            answer = _rules_call(props, "POST", path, group)
            _expect(answer, (200, 201, 202), f"POST {path} ({_group_name(group)})", props["tenant"])
        kept = {_group_name(group) for group in props["groups"]}
        for name in sorted({_group_name(g) for g in old_groups} - kept):
            answer = _rules_call(props, "DELETE", f"{path}/{name}")
            _expect(answer, (200, 202, 404), f"DELETE {path}/{name}", props["tenant"])
        return _plain(props, _RULES_INPUTS)


def _rules_call(
    props: Mapping[str, Any],
    method: str,
    path: str,
    body: str | None = None,
    *,
    patient: bool = True,
) -> Answer:
    return call(
        props["endpoint"],
        props["token"],
        method,
        path,
        body,
        tenant=props["tenant"],
        patient=patient,
        trusted_roots=props.get(TRUSTED_ROOTS, ""),
    )


def _gone_or(answer: Answer, what: str, tenant: str) -> None:
    """A delete's answer: done, or the backend had none (404 of the backend, not the
    gateway's)."""
    if not _backend_has_none(answer):
        _expect(answer, (200, 202, 204), what, tenant)


def _backend_has_none(answer: Answer) -> bool:
    """A 404 of the backend (it holds nothing there), not one of the gateway's own."""
    return answer.status == 404 and answer.body not in (NOT_FOUND_BODY, routes.ROUTE_NOT_FOUND)


def _plain(props: Mapping[str, Any], inputs: Sequence[str]) -> dict[str, Any]:
    roots = {TRUSTED_ROOTS: props[TRUSTED_ROOTS]} if props.get(TRUSTED_ROOTS) else {}
    return {**{k: props[k] for k in inputs}, **roots}


@dataclass(frozen=True)
class TenantRulesArgs:
    """A tenant's rule groups, and the way to its ruler."""

    endpoint: str
    """The tenant's endpoint of the ruler's service: metrics,
    `https://cortex.<tenant>.<instance>.<domain>`, or logs (`loki.`)."""
    tenant: str
    token: pulumi.Input[str]
    """The tenant's own data API token (a secret)."""
    groups: Sequence[str]
    """Each group's canonical YAML (`rule_files.RuleGroups.groups`)."""
    api: str = routes.RULER_CONFIG_PATH
    """The ruler's configuration API at that endpoint (`RULER_APIS`)."""
    namespace: str = rule_files.RULES_NAMESPACE
    trusted_roots: str = ""
    """PEM CAs the endpoint's certificate chains to, if not the system's (staging)."""


_RULES: Final = RulesProvider()


class TenantRules(Resource, module="opstrace", name="TenantRules"):
    """A tenant's rule groups from the stack file, in its ruler; `token` stays secret."""

    groups: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: TenantRulesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "endpoint": args.endpoint,
            "api": args.api,
            "tenant": args.tenant,
            "token": args.token,
            "namespace": args.namespace,
            "groups": list(args.groups),
            **({TRUSTED_ROOTS: args.trusted_roots} if args.trusted_roots else {}),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["token"])
        super().__init__(_RULES, name, props, pulumi.ResourceOptions.merge(opts, secret))


# The Alertmanager configuration ------------------------------------------------------------

_ALERTMANAGER_INPUTS: Final = ("endpoint", "tenant", "token", "config")


def _alertmanager_call(
    props: Mapping[str, Any], method: str, body: str | None = None, **options: Any
) -> Answer:
    return call(
        props["endpoint"],
        props["token"],
        method,
        ALERTMANAGER_CONFIG_PATH,
        body,
        tenant=props["tenant"],
        trusted_roots=props.get(TRUSTED_ROOTS, ""),
        **options,
    )


class AlertmanagerConfigProvider(ResourceProvider):
    """A tenant's Alertmanager configuration. Stateless and config-free: it is pickled
    into state."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return _check(news, _ALERTMANAGER_INPUTS, ())

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = ["tenant"] if olds.get("tenant") != news.get("tenant") else []
        return DiffResult(
            changes=_changes(olds, news, _ALERTMANAGER_INPUTS),
            replaces=replaces,
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(str(props["tenant"]), self._upload(props))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._upload(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        answer = _alertmanager_call(props, "GET")
        if _backend_has_none(answer):
            config = ""  # the tenant runs the default configuration
        else:
            _expect(answer, (200,), f"GET {ALERTMANAGER_CONFIG_PATH}", props["tenant"])
            config = rule_files.alertmanager_in_answer(answer.body)
        return ReadResult(id_, {**_plain(props, _ALERTMANAGER_INPUTS), "config": config})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        answer = _alertmanager_call(props, "DELETE", patient=False)
        _gone_or(answer, f"DELETE {ALERTMANAGER_CONFIG_PATH}", props["tenant"])

    def _upload(self, props: Mapping[str, Any]) -> dict[str, Any]:
        answer = _alertmanager_call(props, "POST", rule_files.alertmanager_upload(props["config"]))
        _expect(answer, (200, 201, 202), f"POST {ALERTMANAGER_CONFIG_PATH}", props["tenant"])
        return _plain(props, _ALERTMANAGER_INPUTS)


@dataclass(frozen=True)
class TenantAlertmanagerConfigArgs:
    """A tenant's Alertmanager configuration, and the way to its Alertmanager."""

    endpoint: str
    tenant: str
    token: pulumi.Input[str]
    config: str
    """The configuration's canonical YAML (`rule_files.AlertmanagerConfig.text`)."""
    trusted_roots: str = ""
    """PEM CAs the endpoint's certificate chains to, if not the system's (staging)."""


_ALERTMANAGER: Final = AlertmanagerConfigProvider()


class TenantAlertmanagerConfig(Resource, module="opstrace", name="TenantAlertmanagerConfig"):
    """A tenant's Alertmanager configuration from the stack file. Secret, with the token:
    receivers carry credentials (webhook URLs, API keys)."""

    config: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: TenantAlertmanagerConfigArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "endpoint": args.endpoint,
            "tenant": args.tenant,
            "token": args.token,
            "config": pulumi.Output.secret(args.config),
            **({TRUSTED_ROOTS: args.trusted_roots} if args.trusted_roots else {}),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["token", "config"])
        super().__init__(_ALERTMANAGER, name, props, pulumi.ResourceOptions.merge(opts, secret))
