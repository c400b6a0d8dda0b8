"""Discovery, OpenAPI and version endpoints (everything that is neither a resource nor a health probe).

Shapes follow ``k8s.io/apiserver/pkg/endpoints/discovery`` and notes/aggregated-apiserver.md §2.3 to §2.4:
legacy discovery (``/apis``, ``/apis/<g>``, ``/apis/<g>/<v>``), aggregated discovery v2 on ``/apis`` with the
exact content type, OpenAPI v2 and v3 with ETags (``If-None-Match`` → 304) and ``/version``.
"""

from __future__ import annotations

import base64
import hashlib
import platform
from typing import Any

import orjson
from aiohttp import web

from api import openapi
from api.resources import GROUP, RESOURCES, VERSION, ResourceInfo
from apiserver import errors

AGGREGATED_DISCOVERY = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
ARC_VERSION = "v0.1.0"


def _storage_version_hash(info: ResourceInfo) -> str:
    """kube's ``storageVersionHash``: base64 of the first 8 bytes of SHA-256 over ``group/version/kind``."""
    digest = hashlib.sha256(f"{info.group}/{info.version}/{info.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _short_names_and_categories(info: ResourceInfo) -> dict[str, list[str]]:
    """``shortNames`` and ``categories`` of both discovery formats, each left out when empty (omitempty)."""
    names: dict[str, list[str]] = {}
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    if info.categories:
        names["categories"] = list(info.categories)
    return names


def api_resource_list() -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for info in RESOURCES:
        entry: dict[str, Any] = {
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": list(info.verbs),
            **_short_names_and_categories(info),
        }
        entry["storageVersionHash"] = _storage_version_hash(info)
        resources.append(entry)
        for sub in info.subresources:
            resources.append(
                {
                    "name": f"{info.plural}/{sub}",
                    "singularName": "",
                    "namespaced": info.namespaced,
                    "kind": info.kind,
                    "verbs": list(info.subresource_verbs),
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{GROUP}/{VERSION}",
        "resources": resources,
    }


def _group_version() -> dict[str, str]:
    return {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}


def api_group() -> dict[str, Any]:
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [_group_version()],
        "preferredVersion": _group_version(),
    }


def api_group_list() -> dict[str, Any]:
    group = api_group()
    del group["kind"], group["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}


def api_group_discovery_list() -> dict[str, Any]:
    resources = []
    for info in RESOURCES:
        kind = {"group": info.group, "version": info.version, "kind": info.kind}
        entry: dict[str, Any] = {
            "resource": info.plural,
            "responseKind": kind,
            "scope": info.scope,
            "singularResource": info.singular,
            "verbs": list(info.verbs),
            **_short_names_and_categories(info),
        }
        if info.subresources:
            entry["subresources"] = [
                {"subresource": sub, "responseKind": kind, "verbs": list(info.subresource_verbs)}
                for sub in info.subresources
            ]
        resources.append(entry)
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": GROUP, "creationTimestamp": None},
                "versions": [{"version": VERSION, "freshness": "Current", "resources": resources}],
            }
        ],
    }


def version_info() -> dict[str, str]:
    return {
        "major": "0",
        "minor": "1",
        "gitVersion": ARC_VERSION,
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{platform.machine()}",
    }


class Documents:
    """Pre-encoded discovery and OpenAPI documents with their ETags (built once at start-up)."""

    def __init__(self) -> None:
        self.resource_list = orjson.dumps(api_resource_list())
        self.group = orjson.dumps(api_group())
        self.group_list = orjson.dumps(api_group_list())
        self.discovery_v2 = orjson.dumps(api_group_discovery_list())
        self.openapi_v2 = orjson.dumps(openapi.build_v2())
        self.openapi_v3 = openapi.serialize(openapi.build_v3())
        self.openapi_v3_root = orjson.dumps(openapi.build_v3_root(self.openapi_v3))
        self.version = orjson.dumps(version_info())

    @staticmethod
    def etag(body: bytes) -> str:
        return '"' + hashlib.sha512(body).hexdigest().upper() + '"'


def _json(
    body: bytes,
    *,
    content_type: str = "application/json",
    etag: str | None = None,
    request: web.Request | None = None,
    cache_control: str | None = None,
) -> web.Response:
    if etag is not None and request is not None and request.headers.get("If-None-Match") == etag:
        response = web.Response(status=304)
        response.headers["ETag"] = etag
        return response
    response = web.Response(body=body, content_type=None)
    response.headers["Content-Type"] = content_type
    if etag is not None:
        response.headers["ETag"] = etag
    if cache_control is not None:
        response.headers["Cache-Control"] = cache_control
    return response


def _wants_aggregated(accept: str) -> bool:
    for part in accept.split(","):
        params = {p.strip().partition("=")[0]: p.strip().partition("=")[2] for p in part.split(";")[1:]}
        if (
            params.get("g") == "apidiscovery.k8s.io"
            and params.get("v") == "v2"
            and params.get("as") == "APIGroupDiscoveryList"
        ):
            return True
        if part.split(";")[0].strip() in ("application/json", "*/*", "application/*"):
            return False
    return False


def discovery_routes(
    docs: Documents,
) -> list[web.RouteDef]:
    """Discovery, OpenAPI and version routes (the health endpoints are ``apiserver.health``'s)."""
    group_path = f"/apis/{GROUP}"

    async def apis(request: web.Request) -> web.StreamResponse:
        if _wants_aggregated(request.headers.get("Accept", "")):
            return _json(
                docs.discovery_v2,
                content_type=AGGREGATED_DISCOVERY,
                etag=Documents.etag(docs.discovery_v2),
                request=request,
            )
        return _json(docs.group_list)

    async def group(request: web.Request) -> web.StreamResponse:
        return _json(docs.group)

    async def group_version(request: web.Request) -> web.StreamResponse:
        return _json(docs.resource_list)

    async def openapi_v2(request: web.Request) -> web.StreamResponse:
        return _json(docs.openapi_v2, etag=Documents.etag(docs.openapi_v2), request=request)

    async def openapi_v3_root(request: web.Request) -> web.StreamResponse:
        return _json(docs.openapi_v3_root)

    async def openapi_v3(request: web.Request) -> web.StreamResponse:
        etag = '"' + openapi.v3_hash(docs.openapi_v3) + '"'
        immutable = "public, immutable" if request.query.get("hash") else "no-cache, private"
        return _json(docs.openapi_v3, etag=etag, request=request, cache_control=immutable)

    async def version(request: web.Request) -> web.StreamResponse:
        return _json(docs.version)

    async def not_served(request: web.Request) -> web.StreamResponse:
        raise errors.not_found_path()

    return [
        web.get("/apis", apis, allow_head=False),
        web.get("/apis/", apis, allow_head=False),
        web.get(group_path, group, allow_head=False),
        web.get(f"{group_path}/", group, allow_head=False),
        web.get(f"{group_path}/{VERSION}", group_version, allow_head=False),
        web.get(f"{group_path}/{VERSION}/", group_version, allow_head=False),
        web.get("/openapi/v2", openapi_v2, allow_head=False),
        web.get("/openapi/v3", openapi_v3_root, allow_head=False),
        web.get(f"/openapi/v3/apis/{GROUP}/{VERSION}", openapi_v3, allow_head=False),
        web.get("/version", version, allow_head=False),
        web.get("/version/", version, allow_head=False),
        web.get("/api", not_served, allow_head=False),
    ]
