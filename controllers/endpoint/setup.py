"""Wiring of the Endpoint controller: Endpoints, their Secrets (through the shared Secret informer's
`secret` index of Endpoints), and the `arc_endpoint_ready` gauge.

Events map to Endpoints without listing everything:
- an Endpoint → itself (a spec change moves its generation: re-probed);
- a Secret `ns/s` → the Endpoints indexed under `secret=ns/s` (a rotation changes the data hash: re-probed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from api.arc.v1alpha1.types import Endpoint
from controllers.controllerutil import ENDPOINT_SECRET_INDEX, endpoint_secret_keys
from controllers.endpoint.probe import Prober
from controllers.endpoint.reconciler import READY, EndpointReconciler, SecretVersion
from controllers.kube.resources import ENDPOINTS
from controllers.runtime import Controller, Informer, Manager, Request
from controllers.runtime.handler import enqueue_request_for_object

__all__ = ["CONTROLLER_NAME", "EndpointReadiness", "setup_endpoint_controller"]

CONTROLLER_NAME = "endpoint"


class EndpointReadiness(Collector):
    """`arc_endpoint_ready{namespace,endpoint}`: 1 when the Endpoint's Ready condition is True, else 0
    (False, Unknown or not probed yet); kept from the informer's events, not counted per scrape."""

    def __init__(self, endpoints: Informer[Endpoint]) -> None:
        self.ready: dict[tuple[str, str], int] = {}
        endpoints.add_handler(self.handle)

    def handle(self, old: Endpoint | None, new: Endpoint | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        key = (obj.metadata.namespace or "", obj.metadata.name or "")
        if new is None:
            self.ready.pop(key, None)
            return
        condition = next(
            (c for c in (new.status.conditions if new.status else None) or [] if c.type == READY), None
        )
        self.ready[key] = 1 if condition is not None and condition.status == "True" else 0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "arc_endpoint_ready",
            "Whether the Endpoint's last probe found its remote reachable and its credentials accepted"
            " (the Ready condition is True).",
            labels=["namespace", "endpoint"],
        )
        for (namespace, name), value in sorted(self.ready.items()):
            family.add_metric([namespace, name], value)
        yield family


_collector: EndpointReadiness | None = None


def setup_endpoint_controller(
    manager: Manager,
    *,
    secrets: Informer[SecretVersion],
    prober: Prober,
    interval: float = 300.0,
    concurrency: int = 4,
) -> Controller:
    """`secrets`: the manager's shared Secret informer (its objects carry a hash of the data);
    `interval`: seconds between probes of an unchanged Endpoint, jittered (0: only on changes)."""
    global _collector
    endpoints = manager.informer(ENDPOINTS, Endpoint.model_validate)
    endpoints.add_index(ENDPOINT_SECRET_INDEX, endpoint_secret_keys)  # the Order controller's, too
    reconciler = EndpointReconciler(
        manager.client,
        manager.recorder,
        endpoints=endpoints,
        secrets=secrets,
        prober=prober,
        interval=interval,
    )
    controller = Controller(CONTROLLER_NAME, reconciler, concurrency=concurrency)

    def from_secret(secret: SecretVersion) -> Iterable[Request]:
        keys = endpoints.keys_by_index(ENDPOINT_SECRET_INDEX, f"{secret.namespace}/{secret.name}")
        return [Request(ns, name) for ns, name in keys]

    controller.watch(endpoints, enqueue_request_for_object)
    controller.watch(secrets, from_secret)
    manager.add_controller(controller)
    if _collector is not None:
        REGISTRY.unregister(_collector)
    _collector = EndpointReadiness(endpoints)
    REGISTRY.register(_collector)
    return controller
