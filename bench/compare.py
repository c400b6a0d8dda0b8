"""ARC vs the classic operator's alternative (CRDs in kube-apiserver) vs raw etcd, in ONE run.

    .venv/bin/python -m bench.compare [--quick | --full] [--out docs/bench/compare.json] [--keep]

Starts the whole local stack (``hack/cluster.py``, without ARC's controller manager) in a temporary work
directory, plus a second, standalone ``arc-apiserver`` on the stack's ARC etcd (own key prefix), and
registers the five ARC kinds as CustomResourceDefinitions in kube-apiserver under a different group,
``crd.arc.opendefense.cloud``, generated from ``api.openapi.build_v3()`` (so the schemas match and the
APIService of ``arc.opendefense.cloud`` is untouched). The SAME client code (aiohttp, HTTPS, JSON, one
connection per request in flight) then drives four systems:

- ``arc-direct``: the standalone ARC API server (bearer token) → etcd-arc;
- ``arc-aggregated``: ARC through kube-apiserver's aggregator (admin client certificate) → ARC's
  aggregated API server → etcd-arc;
- ``crd``: kube-apiserver serving the same kinds as CRDs (admin client certificate) → kube's etcd;
- ``raw-etcd``: the same operations on etcd-arc with aetcd's raw gRPC stubs (``bench.apiserver.RawEtcd``:
  create = txn on create_revision == 0, get = linearizable range, update = txn on mod_revision,
  merge-patch = range + decode + merge + txn on mod_revision).

Operations: create, get, update (PUT of the object read by the get), merge-patch (a spec field) and
server-side apply (the whole Order as a GitOps tool sends it, one spec field changed; raw etcd repeats its
merge-patch there, the closest read-modify-write) at 1, 16 and 64 in flight; LIST of 1,000 and 10,000
Orders in one namespace; watch event latency (time from the
start of a create to its ADDED event on an open watch, creates one after another). For every run: ops/s,
p50/p99, and the CPU seconds per 1,000 operations of each server process (``/proc/<pid>/stat``:
arc-apiserver (direct), arc-apiserver (aggregated), kube-apiserver, etcd, etcd-arc, and the benchmark
client); TCP connections opened to each ARC server per 1,000 operations (``/proc/net/tcp``); peak RSS
(``VmHWM``) of each at the end. Systems are interleaved per concurrency so that drifting load on the
machine hits all of them alike. The objects are Orders with 3 artifacts (~600 bytes).

``--h2`` adds a fifth system, ``arc-aggregated-h2``: the same aggregated ARC, reached by the aggregator
through HAProxy (``hack/haproxy.py``: TLS with ``alpn h2,http/1.1`` in front of ARC's
``--tls-terminator-socket``). Both aggregated variants run on the one stack: before each of their blocks the
APIService's port is switched (ARC's TLS port or HAProxy's) and the switch is confirmed by HAProxy's request
counter. Their runs also record the terminator's new client connections, requests received over HTTP/2 and
connections opened to ARC. ``--systems`` limits the run to some systems.

Everything runs on this machine's 2 cores: the client competes with the servers, and kube-controller-manager
(garbage collector, quota) watches both the aggregated ARC kinds and the CRDs, as in a real cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import json
import os
import signal
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aetcd.rpc as rpc
import aiohttp
import orjson

from api.openapi import build_v3
from api.resources import RESOURCES, ResourceInfo
from bench.apiserver import RawEtcd
from bench.apiserver import watch_latency_raw as raw_watch_latency
from bench.common import (
    Run,
    cpu_seconds,
    drive,
    exit_on_signal,
    log,
    percentile,
    report_header,
    rss_bytes,
    status_kib,
    work_directory,
    worker_args,
)
from hack.arcapiserver import ArcApiServer
from hack.cluster import ARC_APISERVICE, LocalCluster
from hack.kube import KubeHTTP, KubeHTTPError

ARC_GROUP = "arc.opendefense.cloud"
CRD_GROUP = "crd.arc.opendefense.cloud"
VERSION = "v1alpha1"
CONCURRENCIES = (1, 16, 64)
OPERATIONS = ("create", "get", "update", "patch", "apply")
SYSTEMS = ("raw-etcd", "arc-direct", "arc-aggregated", "crd")
H2_SYSTEM = "arc-aggregated-h2"
AGGREGATED = ("arc-aggregated", H2_SYSTEM)
_MOD = rpc.Compare.CompareTarget.MOD
_EQUAL = rpc.Compare.CompareResult.EQUAL
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


# --- CRDs from ARC's OpenAPI --------------------------------------------------------------------------

# JSONSchemaProps fields a CRD schema may carry (apiextensions.k8s.io/v1); everything else is dropped
# (readOnly, writeOnly, discriminator, deprecated, x-kubernetes-group-version-kind, ...).
_SCHEMA_KEYS = frozenset(
    {
        "description",
        "type",
        "format",
        "title",
        "default",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "multipleOf",
        "enum",
        "maxProperties",
        "minProperties",
        "required",
        "items",
        "allOf",
        "oneOf",
        "anyOf",
        "not",
        "properties",
        "additionalProperties",
        "nullable",
        "example",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-list-type",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
    }
)


_NESTED = frozenset({"items", "additionalProperties", "not", "allOf", "oneOf", "anyOf"})


def structural(node: Any, schemas: Mapping[str, Any], depth: int = 0) -> Any:
    """An OpenAPI v3 schema as a structural CRD schema: ``$ref``s (also the ``allOf: [{$ref}]`` wrapping
    that carries a field's description) resolved inline, ``x-kubernetes-*`` kept, the rest of what a CRD
    schema may not hold dropped; a typeless/propertyless object preserves unknown fields."""
    if depth > 40:
        raise ValueError("schema too deep (recursive $ref?)")
    if isinstance(node, list):
        return [structural(v, schemas, depth + 1) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return structural(schemas[node["$ref"].rsplit("/", 1)[1]], schemas, depth + 1)
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        base = structural(all_of[0], schemas, depth + 1)
        rest = structural({k: v for k, v in node.items() if k != "allOf"}, schemas, depth + 1)
        return {**base, **rest}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _SCHEMA_KEYS:
            continue
        if key == "properties":
            out[key] = {name: structural(prop, schemas, depth + 1) for name, prop in value.items()}
        elif key in _NESTED and (isinstance(value, dict) or key.endswith("Of")):
            out[key] = structural(value, schemas, depth + 1)
        else:
            out[key] = copy.deepcopy(value)
    if out.get("type") == "object" and "properties" in out and "additionalProperties" in out:
        del out["additionalProperties"]  # structural: mutually exclusive
    if out.get("type") == "object" and not out.get("properties") and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def crd_manifest(
    resource: ResourceInfo, schemas: Mapping[str, Any], group: str = CRD_GROUP
) -> dict[str, Any]:
    """The CRD of one ARC kind under ``group``: the same schema (metadata left to kube), ``status``
    subresource where ARC has one."""
    prefix = ".".join(reversed(resource.group.split("."))) + f".{resource.version}."
    schema = structural(schemas[prefix + resource.kind], schemas)
    schema["properties"]["metadata"] = {"type": "object"}
    version: dict[str, Any] = {
        "name": resource.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
    }
    if resource.has_status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.plural}.{group}"},
        "spec": {
            "group": group,
            "scope": resource.scope,
            "names": {
                "plural": resource.plural,
                "singular": resource.singular,
                "kind": resource.kind,
                "listKind": resource.list_kind,
            },
            "versions": [version],
        },
    }


def crd_manifests(group: str = CRD_GROUP) -> list[dict[str, Any]]:
    schemas = build_v3()["components"]["schemas"]
    return [crd_manifest(r, schemas, group) for r in RESOURCES]


def install_crds(admin: KubeHTTP, group: str = CRD_GROUP, *, timeout: float = 60.0) -> None:
    """Create the five CRDs and wait until each is Established and served."""
    for crd in crd_manifests(group):
        try:
            admin.request(
                "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=orjson.dumps(crd)
            )
        except KubeHTTPError as err:
            if err.status != 409:
                raise
    deadline = time.monotonic() + timeout
    names = [f"{r.plural}.{group}" for r in RESOURCES]
    while time.monotonic() < deadline:
        ready = 0
        for name in names:
            crd = admin.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])}
            ready += conditions.get("Established") == "True"
        if ready == len(names):
            try:
                served = {r["name"] for r in admin.get(f"/apis/{group}/{VERSION}")["resources"]}
            except KubeHTTPError:
                served = set()
            if {r.plural for r in RESOURCES} <= served:
                return
        time.sleep(0.2)
    raise TimeoutError(f"CRDs of {group} not established after {timeout:.0f}s")


def ensure_namespaces(admin: KubeHTTP, names: list[str]) -> None:
    for ns in names:
        try:
            admin.request(
                "POST",
                "/api/v1/namespaces",
                body=orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
        except KubeHTTPError as err:
            if err.status != 409:
                raise


# --- the objects and the one HTTP client ------------------------------------------------------------


def order(name: str, namespace: str, group: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An Order with 3 artifacts (~600 bytes stored), as bench/controllers creates them."""
    return {
        "apiVersion": f"{group}/{VERSION}",
        "kind": "Order",
        "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "yes", **(labels or {})}},
        "spec": {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
            "artifacts": [
                {
                    "type": "oci",
                    "spec": {"image": f"library/app-{name}-{j}", "tag": "1.0", "platforms": ["amd64"]},
                }
                for j in range(3)
            ],
        },
    }


@dataclass(frozen=True)
class Target:
    """An HTTP API server and how to reach it; every HTTP system is driven through :class:`Api`."""

    name: str
    base_url: str
    group: str
    ssl_context: ssl.SSLContext
    headers: Mapping[str, str]


def token_target(name: str, server: ArcApiServer, group: str = ARC_GROUP) -> Target:
    context = ssl.create_default_context(cafile=str(server.cert_dir / "apiserver.crt"))
    token = server.ensure_credentials()
    return Target(name, server.url, group, context, {"Authorization": f"Bearer {token}"})


def admin_target(name: str, cluster: LocalCluster, group: str) -> Target:
    context = ssl.create_default_context(cafile=str(cluster.pki_dir / "ca.crt"))
    context.load_cert_chain(str(cluster.pki_dir / "admin.crt"), str(cluster.pki_dir / "admin.key"))
    return Target(name, cluster.server, group, context, {})


class Api:
    """The one client: aiohttp over HTTPS, JSON bodies with orjson, up to 256 connections."""

    def __init__(self, target: Target, *, timeout: float = 120.0) -> None:
        self.target = target
        self.session = aiohttp.ClientSession(
            base_url=target.base_url,
            headers={**target.headers, "Accept": "application/json"},
            connector=aiohttp.TCPConnector(ssl=target.ssl_context, limit=256),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    def collection(self, plural: str, namespace: str | None) -> str:
        base = f"/apis/{self.target.group}/{VERSION}"
        return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        total_seconds: float | None = None,
    ) -> Any:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        limits = aiohttp.ClientTimeout(total=total_seconds) if total_seconds is not None else None
        async with self.session.request(
            method, path, data=data, params=params, headers=headers, timeout=limits
        ) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"{self.target.name}: {method} {path}: {resp.status} {raw[:300]!r}")
            return orjson.loads(raw)

    async def close(self) -> None:
        await self.session.close()


class Raw(RawEtcd):
    """bench.apiserver's raw etcd reference plus merge-patch (range, decode, merge, encode, txn on mod)."""

    async def patch(self, key: str, patch: Mapping[str, Any]) -> int:
        raw = key.encode()
        response = await self.kv.Range(rpc.RangeRequest(key=raw), timeout=10)
        kv = response.kvs[0]
        obj = orjson.loads(kv.value)
        merge_patch(obj, patch)
        txn = await self.kv.Txn(
            rpc.TxnRequest(
                compare=[rpc.Compare(key=raw, target=_MOD, result=_EQUAL, mod_revision=kv.mod_revision)],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=raw, value=orjson.dumps(obj)))],
            ),
            timeout=10,
        )
        assert txn.succeeded
        return int(txn.header.revision)

    async def put_many(self, keys: list[str], value: bytes, concurrency: int = 64) -> None:
        it = iter(keys)

        async def worker() -> None:
            for key in it:
                await self.create(key, value)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def merge_patch(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7386 on a dict, in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value) if isinstance(value, dict | list) else value


# --- measurements -------------------------------------------------------------------------------------


def quantiles_ms(latencies: list[float]) -> list[float]:
    """The latency distribution as 101 quantiles (0..100 %) plus p99.9, in ms — for the CDF plots."""
    if not latencies:
        return []
    ordered = sorted(latencies)
    last = len(ordered) - 1
    points = [ordered[round(q / 100 * last)] for q in range(101)]
    points.append(ordered[round(0.999 * last)])
    return [round(v * 1000, 3) for v in points]


def summarise(run: Run, system: str, op: str) -> dict[str, Any]:
    summary: dict[str, Any] = dict(run.summary())
    summary["system"] = system
    summary["operation"] = op
    summary["cpu_s_per_1k_ops"] = {k: round(v * 1000 / max(run.operations, 1), 3) for k, v in run.cpu.items()}
    summary["quantiles_ms"] = quantiles_ms(run.latencies)
    del summary["cpu_ms_per_op"]  # the same figure, as cpu_s_per_1k_ops
    return summary


OpFactory = Callable[[int], Awaitable[None]]


def http_operations(api: Api, namespace: str) -> dict[str, OpFactory]:
    path = api.collection("orders", namespace)
    objects: dict[int, Any] = {}

    async def create(i: int) -> None:
        await api.request("POST", path, order(f"o{i}", namespace, api.target.group))

    async def get(i: int) -> None:
        objects[i] = await api.request("GET", f"{path}/o{i}")

    async def update(i: int) -> None:
        obj = objects[i]
        obj["spec"]["queueName"] = f"q-{i}"
        await api.request("PUT", f"{path}/o{i}", obj)

    async def patch(i: int) -> None:
        await api.request(
            "PATCH", f"{path}/o{i}", {"spec": {"queueName": f"p-{i}"}}, content_type=MERGE_PATCH
        )

    async def apply(i: int) -> None:
        config = order(f"o{i}", namespace, api.target.group)
        config["spec"]["queueName"] = f"a-{i}"
        await api.request(
            "PATCH",
            f"{path}/o{i}",
            config,
            content_type=APPLY_PATCH,
            params={"fieldManager": "bench", "force": "true"},
        )

    return {"create": create, "get": get, "update": update, "patch": patch, "apply": apply}


def raw_operations(raw: Raw, namespace: str) -> dict[str, OpFactory]:
    prefix = f"/raw/{namespace}/orders/"
    revisions: dict[int, int] = {}
    objects: dict[int, Any] = {}

    async def create(i: int) -> None:
        await raw.create(f"{prefix}o{i}", orjson.dumps(order(f"o{i}", namespace, ARC_GROUP)))

    async def get(i: int) -> None:
        value, revisions[i] = await raw.get(f"{prefix}o{i}")
        objects[i] = orjson.loads(value)

    async def update(i: int) -> None:
        obj = objects[i]
        obj["spec"]["queueName"] = f"q-{i}"
        await raw.update(f"{prefix}o{i}", orjson.dumps(obj), revisions[i])

    async def patch(i: int) -> None:
        await raw.patch(f"{prefix}o{i}", {"spec": {"queueName": f"p-{i}"}})

    async def apply(i: int) -> None:
        await raw.patch(f"{prefix}o{i}", {"spec": {"queueName": f"a-{i}"}})

    return {"create": create, "get": get, "update": update, "patch": patch, "apply": apply}


async def create_many(api: Api, namespace: str, names: list[str], concurrency: int = 64) -> list[float]:
    """Create Orders ``names`` in ``namespace`` with ``concurrency`` in flight; the latencies."""
    path = api.collection("orders", namespace)
    it = iter(names)
    latencies: list[float] = []

    async def worker() -> None:
        for name in it:
            started = time.perf_counter()
            await api.request("POST", path, order(name, namespace, api.target.group))
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def list_http(api: Api, namespace: str, expected: int, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = await api.request("GET", api.collection("orders", namespace))
        times.append(time.perf_counter() - started)
        assert len(out["items"]) == expected, (api.target.name, len(out["items"]), expected)
    return times


async def list_raw(raw: Raw, prefix: str, expected: int, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        count = await raw.list_decoded(prefix)
        times.append(time.perf_counter() - started)
        assert count == expected, (count, expected)
    return times


async def watch_latency_http(api: Api, namespace: str, writes: int, *, gap: float = 0.005) -> list[float]:
    """Seconds from the start of each create to its ADDED event on a watch opened just before."""
    path = api.collection("orders", namespace)
    started: dict[str, float] = {}
    arrived: dict[str, float] = {}
    listing = await api.request("GET", path, params={"limit": "1"})
    params = {"watch": "true", "resourceVersion": listing["metadata"]["resourceVersion"]}
    async with api.session.get(path, params=params, timeout=aiohttp.ClientTimeout(total=None)) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{api.target.name}: watch answered {resp.status}")

        async def reader() -> None:
            async for line in resp.content:
                event = orjson.loads(line)
                if event["type"] == "ADDED":
                    arrived[event["object"]["metadata"]["name"]] = time.perf_counter()
                if len(arrived) >= writes:
                    return

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.2)  # the watch is registered server-side before the first write
        for i in range(writes):
            name = f"w{i}"
            started[name] = time.perf_counter()
            await api.request("POST", path, order(name, namespace, api.target.group))
            await asyncio.sleep(gap)
        await asyncio.wait_for(task, 60)
    return [max(0.0, arrived[n] - started[n]) for n in started]


async def watch_latency_raw(raw: Raw, prefix: str, writes: int, *, gap: float = 0.005) -> list[float]:
    """The raw-etcd reference of the watch latency, writing Orders like the servers' runs."""
    return await raw_watch_latency(
        raw,
        prefix,
        writes,
        value=lambda i: orjson.dumps(order(f"w{i}", "watch", ARC_GROUP)),
        gap=gap,
        wait_seconds=60,
    )


def latency_summary(latencies: list[float]) -> dict[str, Any]:
    return {
        "samples": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "quantiles_ms": quantiles_ms(latencies),
    }


def peak_rss_bytes(pid: int) -> int:
    return status_kib(pid, "VmHWM") * 1024


# --- the run ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    ops: int  # per operation at 16 and 64 in flight (a quarter of it at 1)
    list_sizes: tuple[int, ...]
    list_repeats: int
    watch_writes: int


QUICK = Sizes(ops=1000, list_sizes=(1000, 10000), list_repeats=3, watch_writes=200)
FULL = Sizes(ops=5000, list_sizes=(1000, 10000), list_repeats=5, watch_writes=500)


def tcp_passive_opens() -> int:
    """Connections accepted over TCP by any process of this machine so far (``/proc/net/snmp``).

    During a run the only new TCP connections here are the ones the aggregator dials to ARC (the client's
    pool and every other client of the stack keep theirs), so the difference over a run counts those — on a
    machine without other work, as this one is when the benchmark runs alone. ``client_ports`` undercounts
    them on loopback: Linux reuses the port of a TIME_WAIT connection at once there (``tcp_tw_reuse=2``)."""
    with open("/proc/net/snmp") as handle:
        rows = [line.split() for line in handle if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("PassiveOpens")])


def client_ports(server_port: int) -> set[int]:
    """Local ports of every TCP socket connected to ``server_port`` on this machine (any state, TIME_WAIT
    included: a closed connection stays visible for 60 s), from /proc/net/tcp{,6}."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    local, remote = line.split()[1:3]
                    if int(remote.rsplit(":", 1)[1], 16) == server_port:
                        ports.add(int(local.rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            continue
    return ports


def namespace_of(system: str, namespace: str) -> str:
    """The namespace a system's objects go to: both aggregated variants store into the same ARC."""
    return f"{namespace}-h2" if system == H2_SYSTEM else namespace


Probe = Callable[[], dict[str, int]]
"""Counters read before and after each run of a system; the differences go into its summary."""


async def _no_switch(system: str) -> None:
    return None


async def measure(
    apis: Mapping[str, Api],
    raw: Raw,
    pids: Mapping[str, int],
    sizes: Sizes,
    *,
    server_ports: Mapping[str, int] | None = None,
    systems: tuple[str, ...] = SYSTEMS,
    switch: Callable[[str], Awaitable[None]] = _no_switch,
    probes: Mapping[str, Probe] | None = None,
) -> dict[str, Any]:
    """Every run; ``server_ports`` (system → the port of the ARC server behind it) adds the number of TCP
    connections opened to that server per 1,000 operations (the aggregator's proxy connections);
    ``switch(system)`` is awaited before each block of a system's runs (routing the aggregator);
    ``probes`` (system → counters) add the counters' differences over each run."""
    server_ports = server_ports or {}
    probes = probes or {}
    runs: list[dict[str, Any]] = []
    for name, api in apis.items():  # warm-up, not measured: handlers, caches, connections
        await switch(name)
        await create_many(api, namespace_of(name, "warmup"), [f"w{i}" for i in range(200)], concurrency=16)
    await raw.put_many([f"/raw/warmup/orders/w{i}" for i in range(200)], b"{}", concurrency=16)
    for concurrency in CONCURRENCIES:
        count = sizes.ops // 4 if concurrency == 1 else sizes.ops
        ns = f"c{concurrency}"
        for system in systems:
            await switch(system)
            ops = (
                raw_operations(raw, ns)
                if system == "raw-etcd"
                else http_operations(apis[system], namespace_of(system, ns))
            )
            for op in OPERATIONS:
                port = server_ports.get(system)
                before = client_ports(port) if port else set()
                probe = probes.get(system)
                counters = probe() if probe else {}
                accepted = tcp_passive_opens()
                run = await drive(
                    f"{system} {op}", ops[op], operations=count, concurrency=concurrency, pids=dict(pids)
                )
                summary = summarise(run, system, op)
                summary["tcp_connections_accepted_per_1k_ops"] = round(
                    (tcp_passive_opens() - accepted) * 1000 / count, 1
                )
                if port:
                    opened = len(client_ports(port) - before)
                    summary["server_connections_opened_per_1k_ops"] = round(opened * 1000 / count, 1)
                if probe:
                    summary["counters"] = {k: v - counters.get(k, 0) for k, v in probe().items()}
                runs.append(summary)
                log(
                    f"{system:>14} {op:>6} @{concurrency:<2}: {summary['ops_per_second']:>8.1f} ops/s"
                    f"  p50 {summary['p50_ms']:.2f} ms  p99 {summary['p99_ms']:.2f} ms"
                )

    lists: list[dict[str, Any]] = []
    stored = 0
    for size in sizes.list_sizes:
        names = [f"l{i}" for i in range(stored, size)]
        for system in systems:
            await switch(system)
            cpu_before = {k: cpu_seconds(p) for k, p in pids.items()}
            if system == "raw-etcd":
                await raw.put_many(
                    [f"/raw/list/orders/{n}" for n in names], orjson.dumps(order("l", "list", ARC_GROUP))
                )
                times = await list_raw(raw, "/raw/list/orders/", size, sizes.list_repeats)
            else:
                await create_many(apis[system], namespace_of(system, "list"), names)
                cpu_before = {k: cpu_seconds(p) for k, p in pids.items()}
                times = await list_http(apis[system], namespace_of(system, "list"), size, sizes.list_repeats)
            cpu = {
                k: round((cpu_seconds(p) - cpu_before[k]) / sizes.list_repeats, 3) for k, p in pids.items()
            }
            entry = {
                "system": system,
                "objects": size,
                "min_ms": round(min(times) * 1000, 1),
                "median_ms": round(percentile(times, 50) * 1000, 1),
                "cpu_s_per_list": cpu,
            }
            lists.append(entry)
            log(f"{system:>14} LIST {size}: {entry['min_ms']} ms (min of {sizes.list_repeats})")
        stored = size

    watches: dict[str, Any] = {}
    for system in systems:
        await switch(system)
        if system == "raw-etcd":
            latencies = await watch_latency_raw(raw, "/raw/watch/orders/", sizes.watch_writes)
        else:
            latencies = await watch_latency_http(
                apis[system], namespace_of(system, "watch"), sizes.watch_writes
            )
        watches[system] = latency_summary(latencies)
        log(f"{system:>14} watch: p50 {watches[system]['p50_ms']} ms  p99 {watches[system]['p99_ms']} ms")
    return {"runs": runs, "lists": lists, "watch": watches}


def ratios(results: Mapping[str, Any]) -> dict[str, Any]:
    """ARC (direct and aggregated) against CRD and raw etcd, per operation and concurrency."""
    by = {(r["system"], r["operation"], r["concurrency"]): r for r in results["runs"]}
    server_of = {
        "arc-direct": "arc-apiserver-direct",
        "arc-aggregated": "arc-apiserver",
        H2_SYSTEM: "arc-apiserver",
        "crd": "kube-apiserver",
    }
    out: dict[str, Any] = {}
    for op in OPERATIONS:
        for c in CONCURRENCIES:
            raw, crd = by.get(("raw-etcd", op, c)), by.get(("crd", op, c))
            row: dict[str, Any] = {}
            for system in ("arc-direct", *AGGREGATED):
                arc = by.get((system, op, c))
                if not (arc and crd):
                    continue
                if system in AGGREGATED:
                    cpu = arc["cpu_s_per_1k_ops"]
                    row[system] = {
                        "throughput_vs_crd": round(arc["ops_per_second"] / crd["ops_per_second"], 2),
                        "p99_vs_crd": round(arc["p99_ms"] / crd["p99_ms"], 2),
                        "server_cpu_s_per_1k": cpu["arc-apiserver"],
                        "kube_apiserver_cpu_s_per_1k": cpu["kube-apiserver"],
                        "terminator_cpu_s_per_1k": cpu.get("arc-h2-terminator"),
                    }
                if not raw:
                    continue
                row[system] = {
                    **row.get(system, {}),
                    "throughput_vs_crd": round(arc["ops_per_second"] / crd["ops_per_second"], 2),
                    "throughput_vs_raw": round(arc["ops_per_second"] / raw["ops_per_second"], 3),
                    "p99_vs_raw": round(arc["p99_ms"] / raw["p99_ms"], 2),
                    "p99_vs_crd": round(arc["p99_ms"] / crd["p99_ms"], 2),
                    "server_cpu_s_per_1k": arc["cpu_s_per_1k_ops"][server_of[system]],
                }
            if raw and crd:
                row["crd_throughput_vs_raw"] = round(crd["ops_per_second"] / raw["ops_per_second"], 3)
                row["crd_kube_apiserver_cpu_s_per_1k"] = crd["cpu_s_per_1k_ops"]["kube-apiserver"]
                row["raw_etcd_cpu_s_per_1k"] = raw["cpu_s_per_1k_ops"]["etcd-arc"]
            out[f"{op}@{c}"] = row
    lists = {(e["system"], e["objects"]): e for e in results.get("lists", [])}
    for (system, size), entry in lists.items():
        if system.startswith("arc") and ("crd", size) in lists:
            out[f"list{size}:{system}"] = {
                "vs_crd": round(entry["min_ms"] / lists[("crd", size)]["min_ms"], 2),
                **(
                    {"vs_raw": round(entry["min_ms"] / lists[("raw-etcd", size)]["min_ms"], 2)}
                    if ("raw-etcd", size) in lists
                    else {}
                ),
            }
    return out


def terminator_counters(cluster: LocalCluster) -> dict[str, int]:
    """HAProxy's counters: client connections and requests (all, over HTTP/2), connections to ARC."""
    stats = cluster.h2_terminator.stats()
    front, server = stats["arc/FRONTEND"], stats["arc/arc"]

    def number(row: Mapping[str, str], key: str) -> int:
        return int(row.get(key) or 0)

    return {
        "terminator_client_connections": number(front, "conn_tot"),
        "terminator_h2_connections": number(front, "h2_total_connections"),
        "terminator_requests": number(front, "req_tot"),
        "terminator_h2_requests": number(front, "h2_headers_rcvd"),
        "terminator_connections_to_arc": number(server, "connect"),
        "terminator_reused_connections_to_arc": number(server, "reuse"),
    }


def set_apiservice_port(admin: KubeHTTP, port: int) -> None:
    admin.request(
        "PATCH",
        f"/apis/apiregistration.k8s.io/v1/apiservices/{ARC_APISERVICE}",
        body=orjson.dumps({"spec": {"service": {"port": port}}}),
        content_type=MERGE_PATCH,
    )


def aggregator_switch(
    cluster: LocalCluster, apis: Mapping[str, Api], *, timeout: float = 60.0
) -> Callable[[str], Awaitable[None]]:
    """Route the aggregator to ARC's TLS port (``arc-aggregated``) or HAProxy's (``arc-aggregated-h2``)
    before a system's block, and wait until requests through kube-apiserver arrive where they should."""
    admin = cluster.admin()
    current: list[str] = []

    async def switch(system: str) -> None:
        if system not in AGGREGATED or current == [system]:
            return
        want_h2 = system == H2_SYSTEM
        port = cluster.ports.arc_h2_terminator if want_h2 else cluster.ports.arc_apiserver
        await asyncio.to_thread(set_apiservice_port, admin, port)
        deadline = time.monotonic() + timeout
        while True:
            before = terminator_counters(cluster)["terminator_requests"]
            for _ in range(5):
                with contextlib.suppress(RuntimeError, aiohttp.ClientError):
                    await apis[system].request("GET", f"/apis/{ARC_GROUP}/{VERSION}")
            through = terminator_counters(cluster)["terminator_requests"] - before
            if (through >= 5) if want_h2 else (through == 0):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the aggregator does not route to port {port} after {timeout:.0f}s")
            await asyncio.sleep(0.5)
        current[:] = [system]
        log(f"aggregator routed to {'HAProxy (h2)' if want_h2 else 'ARC (HTTP/1.1)'} on port {port}")

    return switch


async def run(
    cluster: LocalCluster, direct: ArcApiServer | None, sizes: Sizes, systems: tuple[str, ...]
) -> dict[str, Any]:
    targets = {"crd": admin_target("crd", cluster, CRD_GROUP)}
    if direct is not None:
        targets["arc-direct"] = token_target("arc-direct", direct)
    for system in AGGREGATED:
        if system in systems:
            targets[system] = admin_target(system, cluster, ARC_GROUP)
    apis = {name: Api(t) for name, t in targets.items() if name in systems}
    raw = Raw(cluster.etcd_arc.client_url)
    pids: dict[str, int] = {"bench-client": os.getpid()}
    names = ["arc-apiserver", "kube-apiserver", "etcd", "etcd-arc"]
    if cluster.with_h2_terminator:
        names.append("arc-h2-terminator")
    for name in names:
        pid = cluster.component(name).pid()
        assert pid is not None, name
        pids[name] = pid
    if direct is not None:
        direct_pid = direct.component.pid()
        assert direct_pid is not None
        pids["arc-apiserver-direct"] = direct_pid
    rss_start = {k: rss_bytes(p) for k, p in pids.items()}
    started = time.perf_counter()
    try:
        ports = {"arc-aggregated": cluster.ports.arc_apiserver}
        if direct is not None:
            ports["arc-direct"] = direct.port
        switch: Callable[[str], Awaitable[None]] = _no_switch
        probes: dict[str, Probe] = {}
        if cluster.with_h2_terminator:
            ports[H2_SYSTEM] = cluster.ports.arc_h2_terminator
            switch = aggregator_switch(cluster, apis)
            probes = {system: lambda: terminator_counters(cluster) for system in AGGREGATED}
        results = await measure(
            apis, raw, pids, sizes, server_ports=ports, systems=systems, switch=switch, probes=probes
        )
    finally:
        for api in apis.values():
            await api.close()
        await raw.close()
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["processes"] = {
        name: {
            "rss_start_mb": round(rss_start[name] / 2**20, 1),
            "rss_end_mb": round(rss_bytes(pid) / 2**20, 1),
            "peak_rss_mb": round(peak_rss_bytes(pid) / 2**20, 1),
            "cpu_total_s": round(cpu_seconds(pid), 1),
        }
        for name, pid in pids.items()
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1,000 operations per step (a few minutes)")
    mode.add_argument("--full", action="store_true", help="5,000 operations per step (the default)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/compare.json"))
    parser.add_argument("--ops", type=int, help="operations per step (overrides the mode)")
    parser.add_argument("--lists", type=int, nargs="+", help="LIST sizes (overrides the mode's 1,000 10,000)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    parser.add_argument(
        "--workers", type=int, default=1, help="arc-apiserver --workers for both ARC servers (default 1)"
    )
    parser.add_argument(
        "--h2",
        action="store_true",
        help=f"also ARC through HAProxy speaking HTTP/2 to the aggregator ({H2_SYSTEM}, hack/haproxy.py)",
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=(*SYSTEMS, H2_SYSTEM),
        help="measure only these systems, in this order within each block (default: all; crd is the "
        "reference of the ratios)",
    )
    args = parser.parse_args(argv)
    systems: tuple[str, ...] = (*SYSTEMS[:3], H2_SYSTEM, SYSTEMS[3]) if args.h2 else SYSTEMS
    if args.systems:  # in the order given: which system of a block runs first is the caller's choice
        systems = tuple(dict.fromkeys(s for s in args.systems if s in systems or s == H2_SYSTEM))
        if H2_SYSTEM in systems and not args.h2:
            parser.error(f"{H2_SYSTEM} needs --h2")
    sizes = QUICK if args.quick else FULL
    if args.ops:
        sizes = dataclasses.replace(sizes, ops=args.ops)
    if args.lists:
        sizes = dataclasses.replace(sizes, list_sizes=tuple(sorted(args.lists)))

    signal.signal(signal.SIGTERM, exit_on_signal)  # unwind through the finally that stops the stack
    with work_directory("arc-bench-compare-", keep=args.keep) as work_dir:
        workers = worker_args(args.workers)
        cluster = LocalCluster(
            work_dir,
            controller_manager=False,
            etcd_tls=False,
            arc_apiserver_args=workers,
            h2_terminator=args.h2,
        )
        direct = (
            ArcApiServer(
                work_dir,
                cluster.etcd_arc.client_url,
                name="arc-apiserver-direct",
                etcd_prefix="/arc-direct",
                extra_args=("--log-level=WARNING", *workers),
            )
            if "arc-direct" in systems
            else None
        )
        try:
            cluster.up()
            if direct is not None:
                direct.start()
            admin = cluster.admin()
            install_crds(admin)
            namespaces = [f"c{c}" for c in CONCURRENCIES] + ["list", "watch", "warmup"]
            ensure_namespaces(admin, namespaces + [namespace_of(H2_SYSTEM, ns) for ns in namespaces])
            log("stack up, CRDs established; measuring")
            import uvloop

            result = uvloop.run(run(cluster, direct, sizes, systems))
        finally:
            if direct is not None:
                direct.stop()
            cluster.down()
    report = {
        **report_header("compare", "quick" if args.quick else "full"),
        "arc_workers": args.workers,
        "systems": list(systems),
        "sizes": {"ops": sizes.ops, "ops_at_1": sizes.ops // 4, "lists": list(sizes.list_sizes)},
        **result,
    }
    report["ratios"] = ratios(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["ratios"], indent=1))
    log(f"raw results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
