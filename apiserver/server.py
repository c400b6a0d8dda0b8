"""``create_app(config)``: the ARC API server as an aiohttp application.

Long-lived resources (the storage client, its compactor and watch fan-out) live in ``cleanup_ctx`` with
typed ``AppKey``s; routes come from the resource table (one Store and one set of handlers per resource) and
from the discovery module.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from api.resources import ENDPOINT, GROUP, RESOURCES, VERSION, ResourceInfo
from apiserver.admission.attributes import AdmissionPlugin
from apiserver.admission.namespace_lifecycle import NamespaceLifecycle
from apiserver.admission.resource_quota import ResourceQuotaGate
from apiserver.admission.secret_reference import SecretReference
from apiserver.auth import (
    AuthenticatedAllowedAuthorizer,
    Authenticator,
    Authorizer,
    TokenFileAuthenticator,
    UnionAuthenticator,
)
from apiserver.delegation.authn import (
    ClientCertificateAuthenticator,
    ExtensionAuthentication,
    RequestHeaderAuthenticator,
    TokenReviewAuthenticator,
)
from apiserver.delegation.authz import AUTHORIZED_TTL, UNAUTHORIZED_TTL, SubjectAccessReviewAuthorizer
from apiserver.delegation.cache import ListWatchCache
from apiserver.delegation.client import DelegationClient, load_kubeconfig
from apiserver.discovery import Documents, discovery_routes
from apiserver.handlers import MAX_BODY_BYTES, ResourceHandlers, resource_routes
from apiserver.health import PING, HealthCheck, HealthChecks, SharedProbe, ShutdownCheck
from apiserver.listing import MAX_IN_FLIGHT, MAX_QUEUED, ListGate
from apiserver.middleware import auth_middleware, context_middleware
from apiserver.registry.store import Store
from apiserver.storage.etcd import EtcdConfig, EtcdStorage
from apiserver.storage.interface import Storage, StorageError
from apiserver.storage.keys import KeyLayout
from apiserver.workermetrics import WorkerMetrics


@dataclass
class Config:
    """Everything the server needs, after options were validated and completed."""

    etcd_servers: str = "http://127.0.0.1:2379"
    """Comma-separated endpoints of ARC's etcd (all of them are used, with failover)."""
    etcd_cafile: Path | None = None
    etcd_certfile: Path | None = None
    etcd_keyfile: Path | None = None
    etcd_prefix: str = "/registry"
    etcd_request_timeout: float = 10.0
    etcd_healthcheck_timeout: float = 2.0
    """kube's ``--etcd-healthcheck-timeout``: the ``etcd`` check of /livez and /readyz."""
    etcd_readycheck_timeout: float = 2.0
    """kube's ``--etcd-readycheck-timeout``: the ``etcd-readiness`` check of /readyz."""
    compaction_interval: float = 300.0
    watch_progress_interval: float = 5.0
    bookmark_interval: float = 60.0
    token_auth_file: Path | None = None
    authenticator: Authenticator | None = None
    authorizer: Authorizer | None = None
    authorization_cache_authorized_ttl: float = AUTHORIZED_TTL
    """Delegated mode: seconds a review's answer is cached (``--authorization-webhook-cache-…-ttl``)."""
    authorization_cache_unauthorized_ttl: float = UNAUTHORIZED_TTL
    worker_metrics: WorkerMetrics | None = None
    """Under ``--workers``: this worker's index and where all workers' metrics are read (``/metrics``)."""
    admission: list[AdmissionPlugin] = field(default_factory=list)
    log_format: Literal["json", "text"] = "json"
    kubeconfig: Path | None = None
    """Delegated (aggregated) mode: authenticate and authorize through this kube-apiserver."""
    delegated: bool = False
    ssl_context: ssl.SSLContext | None = None
    """The serving TLS context: delegated mode adds the ConfigMap's CAs to verify client certificates."""
    terminator_client_cert_header: str | None = None
    """Delegated mode behind a local TLS terminator (``--tls-terminator-socket``): on Unix-socket connections
    only, this header carries the client certificate the terminator verified (``delegation.authn``)."""
    storage: Storage | None = None
    """An already built storage (tests inject the in-memory one); else etcd from ``etcd_servers``."""
    max_inflight_lists: int = MAX_IN_FLIGHT
    """Whole-collection reads (LISTs, watches' initial events) served at once (``listing.py``)."""
    max_queued_lists: int = MAX_QUEUED
    """Distinct whole-collection reads waiting for a slot; more are answered 429."""
    resource_quotas: Callable[[], Iterable[Mapping[str, Any]]] | None = None
    """The cluster's ResourceQuotas for ARC's quota admission (delegated mode reads them from
    kube-apiserver; tests may inject some)."""


KUBE: web.AppKey[DelegationClient] = web.AppKey("kube", DelegationClient)
STORAGE: web.AppKey[Storage] = web.AppKey("storage", Storage)
STORES: web.AppKey[dict[str, Store]] = web.AppKey("stores", dict)
LISTS: web.AppKey[ListGate] = web.AppKey("lists", ListGate)
SHUTDOWN: web.AppKey[ShutdownCheck] = web.AppKey("shutdown", ShutdownCheck)
AUTHORIZER: web.AppKey[Authorizer] = web.AppKey("authorizer", Authorizer)
"""The authorizer every request passes (delegated mode: the SubjectAccessReview authorizer and its cache)."""
"""``initiate()`` it on SIGTERM: readyz fails from then on (``apiserver.health``)."""


def create_app(config: Config) -> web.Application:
    authenticators: list[Authenticator] = []
    if config.authenticator is not None:
        authenticators.append(config.authenticator)
    if config.token_auth_file is not None:
        authenticators.append(TokenFileAuthenticator(config.token_auth_file))
    authorizer = config.authorizer or AuthenticatedAllowedAuthorizer()
    admission = list(config.admission)
    resource_quotas = config.resource_quotas
    delegation_ctx = None
    sar_authorizer: SubjectAccessReviewAuthorizer | None = None
    informers: list[ListWatchCache] = []
    if config.delegated:
        kube = DelegationClient(load_kubeconfig(config.kubeconfig))
        trust = config.ssl_context.load_verify_locations if config.ssl_context is not None else None
        extension_auth = ExtensionAuthentication(
            kube, trust=lambda pems: trust(cadata=pems) if trust else None
        )
        authenticators += [
            RequestHeaderAuthenticator(
                extension_auth, terminator_header=config.terminator_client_cert_header
            ),
            ClientCertificateAuthenticator(
                extension_auth, terminator_header=config.terminator_client_cert_header
            ),
            TokenReviewAuthenticator(kube),
        ]
        authorizer = sar_authorizer = SubjectAccessReviewAuthorizer(
            kube,
            allow_ttl=config.authorization_cache_authorized_ttl,
            deny_ttl=config.authorization_cache_unauthorized_ttl,
        )
        namespaces = ListWatchCache(kube, "/api/v1/namespaces")
        admission.insert(0, NamespaceLifecycle(kube, namespaces))
        quotas = ListWatchCache(kube, "/api/v1/resourcequotas")
        informers += [extension_auth.informer, namespaces, quotas]
        resource_quotas = resource_quotas or (lambda: quotas.items.values())

        async def delegation(app: web.Application) -> AsyncIterator[None]:
            await kube.start()
            extension_auth.informer.start()
            namespaces.start()
            quotas.start()
            try:
                if not await extension_auth.informer.wait_synced(30):
                    raise RuntimeError("could not read kube-system/extension-apiserver-authentication in 30s")
                await namespaces.wait_synced(30)
                await quotas.wait_synced(30)
                yield
            finally:
                await extension_auth.informer.stop()
                await namespaces.stop()
                await quotas.stop()
                await kube.close()

        delegation_ctx = delegation
    app = web.Application(
        middlewares=[
            context_middleware,
            auth_middleware(UnionAuthenticator(authenticators), authorizer, anonymous=config.delegated),
        ],
        client_max_size=MAX_BODY_BYTES + 1,
    )
    if delegation_ctx is not None:
        app.cleanup_ctx.append(delegation_ctx)
    layout = KeyLayout(prefix=config.etcd_prefix)
    storage: Storage = config.storage or EtcdStorage(
        EtcdConfig(
            endpoint=config.etcd_servers,
            ca_file=config.etcd_cafile,
            cert_file=config.etcd_certfile,
            key_file=config.etcd_keyfile,
            request_timeout=config.etcd_request_timeout,
            compaction_interval=config.compaction_interval,
            layout=layout,
            progress_interval=config.watch_progress_interval,
        )
    )
    app[STORAGE] = storage
    app[AUTHORIZER] = authorizer
    if sar_authorizer is not None:
        admission.append(SecretReference(sar_authorizer, Store(ENDPOINT, storage, layout)))

    async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
        start = getattr(storage, "start", None)
        if start is not None and config.storage is None:
            await start()
        try:
            yield
        finally:
            close = getattr(storage, "close", None)
            if close is not None and config.storage is None:
                await close()

    app.cleanup_ctx.append(storage_ctx)

    stores: dict[str, Store] = {}
    group_version_path = f"/apis/{GROUP}/{VERSION}"
    routes: list[web.RouteDef] = []
    quota: ResourceQuotaGate | None = None
    if resource_quotas is not None:

        async def count(info: ResourceInfo, namespace: str) -> int:
            return await stores[info.plural].count(namespace)

        quota = ResourceQuotaGate(resource_quotas, count)
    lists = ListGate(max_in_flight=config.max_inflight_lists, max_queued=config.max_queued_lists)
    app[LISTS] = lists
    for info in RESOURCES:
        store = Store(info, storage, layout)
        stores[info.plural] = store
        handlers = ResourceHandlers(
            store,
            admission=admission,
            bookmark_interval=config.bookmark_interval,
            quota=quota,
            lists=lists,
        )
        routes.extend(resource_routes(handlers, group_version_path))
    app[STORES] = stores

    async def informer_sync() -> None:
        pending = [informer.path for informer in informers if not informer.synced.is_set()]
        if pending:
            raise RuntimeError(f"informers not synced: {', '.join(pending)}")

    async def etcd_ping() -> None:
        try:
            await storage.current_revision()
        except StorageError as err:
            raise RuntimeError(str(err) or type(err).__name__) from None

    shutdown = ShutdownCheck()
    app[SHUTDOWN] = shutdown
    etcd = HealthCheck("etcd", SharedProbe(etcd_ping, timeout=config.etcd_healthcheck_timeout))
    etcd_ready = HealthCheck("etcd-readiness", SharedProbe(etcd_ping, timeout=config.etcd_readycheck_timeout))
    readyz = [PING, etcd, etcd_ready]
    alarms = getattr(storage, "alarms", None)
    if alarms is not None:

        async def etcd_alarms() -> None:
            # etcd answers reads with a NOSPACE alarm raised, but refuses every write: not ready.
            active = await alarms()
            if active:
                raise RuntimeError(f"etcd alarms: {', '.join(active)}")

        readyz.append(
            HealthCheck("etcd-alarms", SharedProbe(etcd_alarms, timeout=config.etcd_readycheck_timeout))
        )
    readyz += [HealthCheck("informer-sync", informer_sync), shutdown.check()]
    health = HealthChecks(livez=[PING, etcd], readyz=readyz)

    worker_metrics = config.worker_metrics
    if worker_metrics is not None:
        app.cleanup_ctx.append(worker_metrics.serve_own)

    async def metrics(request: web.Request) -> web.StreamResponse:
        body = generate_latest(REGISTRY) if worker_metrics is None else await worker_metrics.exposition()
        response = web.Response(body=body, content_type=None)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    routes.extend(discovery_routes(Documents()))
    routes.extend(health.routes())
    routes.append(web.get("/metrics", metrics, allow_head=False))
    app.add_routes(routes)
    return app
