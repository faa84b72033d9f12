"""The stand-ins' process (`lb-controller`): the load balancer and cert-manager stand-ins
as controllers, each watching its objects and acting on each as it appears or changes,
and the gateway pods run as local processes (`gateway_pods`).

A controller lists its objects, acts on each, then watches from the list's
resourceVersion; when the watch ends it watches again from the last event, and when
the API server says that version is gone (410) it lists again. `down` stops the process.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Final

from sidecar import kube_client
from tools.cluster import cert_manager, credentials, gateway_pods, load_balancer, state

RETRY_SECONDS: Final = 1.0

Reconcile = Callable[[kube_client.Api, dict[str, Any]], str | None]
CONTROLLERS: Final[dict[str, tuple[str, Reconcile]]] = {
    "load balancers": (load_balancer.SERVICES, load_balancer.assign),
    "certificates": (cert_manager.CERTIFICATES, cert_manager.issue),
}


def say(line: str) -> None:
    print(f"lb-controller: {line}", flush=True)


def _act(api: kube_client.Api, reconcile: Reconcile, obj: dict[str, Any]) -> None:
    try:
        if done := reconcile(api, obj):
            say(done)
    except kube_client.ApiError as error:  # this object only: the others still get served
        say(str(error))


def control(api: kube_client.Api, path: str, reconcile: Reconcile) -> None:
    """Forever: every object at `path`, as listed and as changed, handed to `reconcile`."""
    while True:
        try:
            listing = api.list(path)
            for obj in listing.get("items", []):
                _act(api, reconcile, obj)
            version = listing["metadata"]["resourceVersion"]
            while True:
                for event in api.watch(path, resource_version=version, bookmarks=True):
                    version = event.resource_version or version
                    if event.type in ("ADDED", "MODIFIED"):
                        _act(api, reconcile, event.object)
        except kube_client.Gone:
            continue  # the version is too old: list again
        except kube_client.KubeApiError as error:
            say(str(error))
            time.sleep(RETRY_SECONDS)  # the API server restarting, or a CRD not there yet


def run() -> int:
    """Run every controller until the process is stopped; 1 if one of them failed."""
    say(
        "assigning <name>-<namespace>.lb.local to LoadBalancer Services, issuing Certificates, "
        "running gateway pods"
    )
    api = credentials.admin_api()
    failed = threading.Event()

    def serve(path: str, reconcile: Reconcile) -> None:
        try:
            control(api, path, reconcile)
        except BaseException:
            traceback.print_exc()  # before `failed` lets the process exit without it
        finally:
            failed.set()  # only an unexpected exception ends a controller

    for name, (path, reconcile) in CONTROLLERS.items():
        threading.Thread(target=serve, args=(path, reconcile), name=name, daemon=True).start()

    def pods() -> None:
        try:
            gateway_pods.run(api, state.read_ports().apiserver, say)
        except BaseException:
            traceback.print_exc()
        finally:
            failed.set()

    threading.Thread(target=pods, name="gateway pods", daemon=True).start()
    failed.wait()
    say("a controller failed (its traceback is above): stopping")
    return 1
