"""Jaeger all-in-one (``jaeger-all-in-one``, hack/binaries.txt): the local stack's trace backend.

One process receives OTLP (gRPC and HTTP) from kube-apiserver (its ``--tracing-config-file``), ARC's API
server and ARC's controller manager, keeps the spans in memory and answers Jaeger's query API
(``/api/traces/<id>``, ``/api/traces?service=…``) and UI on one port. Every listener is bound to
127.0.0.1 (Jaeger's defaults are every interface); Zipkin's receiver stays off.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.binaries import binary_path

KUBE_APISERVER_SERVICE = "apiserver"
"""The service name kube-apiserver's spans carry (component-base's tracing default)."""


@dataclass(frozen=True)
class Jaeger:
    otlp_grpc_port: int
    otlp_http_port: int
    query_port: int
    admin_port: int
    collector_grpc_port: int
    collector_http_port: int
    query_grpc_port: int
    max_traces: int = 100_000

    def argv(self) -> list[str]:
        def at(port: int) -> str:
            return f"127.0.0.1:{port}"

        return [
            str(binary_path("jaeger-all-in-one")),
            f"--collector.otlp.grpc.host-port={at(self.otlp_grpc_port)}",
            f"--collector.otlp.http.host-port={at(self.otlp_http_port)}",
            f"--collector.grpc-server.host-port={at(self.collector_grpc_port)}",
            f"--collector.http-server.host-port={at(self.collector_http_port)}",
            f"--query.http-server.host-port={at(self.query_port)}",
            f"--query.grpc-server.host-port={at(self.query_grpc_port)}",
            f"--admin.http.host-port={at(self.admin_port)}",
            f"--memory.max-traces={self.max_traces}",
        ]

    # ---- where the others send and ask --------------------------------------------------------------
    @property
    def otlp_grpc_endpoint(self) -> str:
        """host:port, as kube-apiserver's TracingConfiguration wants it."""
        return f"127.0.0.1:{self.otlp_grpc_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """Base URL for OTLP/HTTP (``/v1/traces`` is appended by the exporters)."""
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def query_url(self) -> str:
        """Jaeger's UI and query API."""
        return f"http://127.0.0.1:{self.query_port}"

    def tracing_configuration(self, sampling_rate_per_million: int = 1_000_000) -> dict[str, Any]:
        """kube-apiserver's ``--tracing-config-file`` (apiserver.config.k8s.io/v1beta1 in Kubernetes 1.33).

        kube-apiserver samples parent-based: a request that arrives with a sampled ``traceparent`` is
        recorded whatever the rate, others at ``samplingRatePerMillion``.
        """
        return {
            "apiVersion": "apiserver.config.k8s.io/v1beta1",
            "kind": "TracingConfiguration",
            "endpoint": self.otlp_grpc_endpoint,
            "samplingRatePerMillion": sampling_rate_per_million,
        }

    def write_tracing_configuration(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.tracing_configuration(), indent=2) + "\n")
        return path

    # ---- queries --------------------------------------------------------------------------------------
    def ready(self) -> bool:
        """The admin port's health check answers 200 once the collector and query service serve."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/", timeout=2) as resp:
            return bool(resp.status == 200)

    def _get(self, path: str, **query: str) -> Any:
        url = f"{self.query_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def trace(self, trace_id: str) -> Trace | None:
        """One trace by id (32 hex digits), None while Jaeger has no span of it."""
        body = self._get(f"/api/traces/{trace_id}")
        data = (body or {}).get("data") or []
        return Trace(data[0]) if data else None

    def services(self) -> list[str]:
        return list((self._get("/api/services") or {}).get("data") or [])

    def find_traces(self, service: str, *, operation: str | None = None, limit: int = 20) -> list[Trace]:
        query = {"service": service, "limit": str(limit), "lookback": "1h"}
        if operation:
            query["operation"] = operation
        return [Trace(t) for t in (self._get("/api/traces", **query) or {}).get("data") or []]


@dataclass(frozen=True)
class Span:
    span_id: str
    parent_id: str | None
    name: str
    service: str
    tags: dict[str, Any]
    kind: str


class Trace:
    """A trace as Jaeger's query API returns it, with the parent links resolved."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.trace_id: str = raw["traceID"].rjust(32, "0")
        processes = {key: p.get("serviceName", "") for key, p in raw.get("processes", {}).items()}
        self.spans: list[Span] = []
        for s in raw.get("spans", []):
            parent = next(
                (r["spanID"] for r in s.get("references", []) if r.get("refType") == "CHILD_OF"), None
            )
            tags = {t["key"]: t.get("value") for t in s.get("tags", [])}
            self.spans.append(
                Span(
                    span_id=s["spanID"],
                    parent_id=parent,
                    name=s["operationName"],
                    service=processes.get(s.get("processID", ""), ""),
                    tags=tags,
                    kind=str(tags.get("span.kind", "")),
                )
            )
        self._by_id = {s.span_id: s for s in self.spans}

    def parent(self, span: Span) -> Span | None:
        return self._by_id.get(span.parent_id) if span.parent_id else None

    def children(self, span: Span) -> list[Span]:
        return [s for s in self.spans if s.parent_id == span.span_id]

    def of_service(self, service: str) -> Iterator[Span]:
        return (s for s in self.spans if s.service == service)

    def describe(self) -> str:
        """The tree, for failure messages."""
        lines: list[str] = []

        def walk(span: Span, depth: int) -> None:
            lines.append(f"{'  ' * depth}{span.service}: {span.name} [{span.kind}] {span.span_id}")
            for child in self.children(span):
                walk(child, depth + 1)

        for root in (s for s in self.spans if self.parent(s) is None):
            walk(root, 0)
        return "\n".join(lines)
