"""The per-request path's shortcuts keep their contracts: the serving TLS context issues no session
tickets, request metrics count every request under kube's labels, an incoming ``traceparent`` still becomes
the request's trace context, and cached client-certificate facts never outlive the certificate."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry import trace
from prometheus_client import REGISTRY

from apiserver.__main__ import serving_context
from apiserver.certs import ensure_self_signed
from apiserver.delegation.authn import PeerCertificate, issued_by
from apiserver.middleware import context_middleware
from apiserver.options import ServingOptions
from hack import pki

from .conftest import GV, Api


def test_serving_context_issues_no_session_tickets(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, ["127.0.0.1"])
    context = serving_context(ServingOptions("127.0.0.1", 0, cert, key))
    assert context.num_tickets == 0
    assert context.protocol == ssl.PROTOCOL_TLS_SERVER


def _total(code: str, verb: str) -> float:
    value = REGISTRY.get_sample_value(
        "apiserver_request_total",
        {
            "verb": verb,
            "dry_run": "",
            "group": "arc.opendefense.cloud",
            "version": "v1alpha1",
            "resource": "orders",
            "subresource": "",
            "scope": "resource",
            "component": "apiserver",
            "code": code,
        },
    )
    return value or 0.0


async def test_request_metrics_count_every_request_by_code(api: Api) -> None:
    before_404, before_200 = _total("404", "GET"), _total("200", "GET")
    for _ in range(3):
        status, _, _ = await api.call("GET", f"{GV}/namespaces/m/orders/missing")
        assert status == 404
    assert _total("404", "GET") == before_404 + 3
    assert _total("200", "GET") == before_200


async def test_incoming_traceparent_is_the_request_context() -> None:
    seen: list[trace.SpanContext] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(trace.get_current_span().get_span_context())
        return web.Response(text="ok")

    app = web.Application(middlewares=[context_middleware])
    app.router.add_get("/healthz", handler)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with TestClient[Any, Any](TestServer(app)) as client:
        response = await client.get("/healthz", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        assert response.status == 200
        response = await client.get("/healthz")
        assert response.status == 200
    assert format(seen[0].trace_id, "032x") == trace_id
    # Without the header: no span context at all, or (when an earlier test installed an SDK provider in
    # this process) a new trace of its own — never the previous request's.
    assert not seen[1].is_valid or format(seen[1].trace_id, "032x") != trace_id


@pytest.mark.parametrize("offset", [-10.0, 10.0])
def test_certificate_validity_is_checked_on_every_request(
    tmp_path: Path, offset: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography import x509

    ca = pki.create_ca(tmp_path, "ca", "ca")
    pair = pki.issue(ca, tmp_path, "client", common_name="front-proxy-client", client=True)
    cert = x509.load_pem_x509_certificate(pair.cert_file.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca.cert_file.read_bytes())
    peer = PeerCertificate(
        cert=cert,
        common_name="front-proxy-client",
        organizations=(),
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        client_auth=True,
    )
    assert issued_by(peer, [ca_cert])
    moment = peer.not_after + offset if offset > 0 else peer.not_before + offset
    monkeypatch.setattr("apiserver.delegation.authn.time.time", lambda: moment)
    assert not issued_by(peer, [ca_cert])
