"""Issue 14's smaller findings on the request path: named watch, strict duplicate keys, escaped URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.resources import ORDER
from apiserver.admission.namespace_lifecycle import NamespaceLifecycle
from apiserver.auth import UserInfo
from apiserver.delegation.kubeclient import KubeApiError
from apiserver.handlers import AdmissionAttributes
from apiserver.middleware import INFO
from apiserver.server import Config, create_app
from apiserver.storage.memory import MemoryStorage
from apiserver.strictjson import duplicate_fields
from tests.unit.apiserver.conftest import GV, Api, order

ORDERS = f"{GV}/namespaces/team-a/orders"


class NoWatch:
    """Allows every verb but watch, and records the verbs it was asked about."""

    def __init__(self) -> None:
        self.verbs: list[str] = []

    async def authorize(self, user: UserInfo, request: web.Request) -> tuple[bool, str]:
        self.verbs.append(request[INFO].verb)
        return request[INFO].verb != "watch", ""


@pytest.fixture
async def no_watch(tmp_path: Path) -> AsyncIterator[tuple[Api, NoWatch]]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("t,user,1\n")
    storage = MemoryStorage()
    await storage.start()
    authz = NoWatch()
    app = create_app(Config(storage=storage, token_auth_file=tokens, authorizer=authz, bookmark_interval=0.0))
    async with TestClient(TestServer(app)) as client:
        api = Api(client, storage)
        api.headers = {"Authorization": "Bearer t"}
        yield api, authz
    await storage.close()


async def test_a_named_get_with_watch_is_a_get_and_the_watch_path_needs_watch(
    no_watch: tuple[Api, NoWatch],
) -> None:
    """kube-apiserver's item route ignores `watch` (restfulGetResource), so `GET …/o1?watch=true` answers
    the object and is authorized as get; before, ARC streamed a watch to a user allowed only get."""
    api, authz = no_watch
    assert (await api.call("POST", ORDERS, json=order("o1")))[0] == 201
    authz.verbs.clear()
    status, body, headers = await api.call(
        "GET", f"{ORDERS}/o1", params={"watch": "true", "timeoutSeconds": "1"}
    )
    assert status == 200
    assert body["kind"] == "Order" and body["metadata"]["name"] == "o1"
    assert headers["Content-Type"].startswith("application/json")
    assert authz.verbs == ["get"]
    status, body, _ = await api.call(
        "GET", f"{GV}/watch/namespaces/team-a/orders/o1", params={"timeoutSeconds": "1"}
    )
    assert status == 403 and body["reason"] == "Forbidden"
    assert authz.verbs == ["get", "watch"]


def test_duplicate_keys_are_found_with_kube_field_paths() -> None:
    raw = (
        b'{"a":1,"a":2,"spec":{"artifacts":[{"type":"x","type":"y","spec":{"k":1,"k":2}}]},"b":{"c":1,"c":1}}'
    )
    assert duplicate_fields(raw, "application/json") == [
        "a",
        "spec.artifacts[0].type",
        "spec.artifacts[0].spec.k",
        "b.c",
    ]
    assert duplicate_fields(b'{"a":1,"b":{"a":1}}', None) == []
    assert duplicate_fields(b"a: 1\na: 2\n", "application/yaml") == []  # the YAML decoder's business
    assert duplicate_fields(b"{not json", "application/json") == []


async def test_strict_rejects_duplicate_keys_and_warn_warns(api: Api) -> None:
    body = (
        b'{"apiVersion":"arc.opendefense.cloud/v1alpha1","kind":"Order","metadata":{"name":"d","name":"d"},'
        b'"spec":{"artifacts":[{"type":"oci","spec":{}}],"defaults":{"srcRef":{"name":"a"},"dstRef":{"name":"b"}},'
        b'"bogus":1}}'
    )
    status, out, _ = await api.call(
        "POST", ORDERS, data=body, content_type="application/json", params={"fieldValidation": "Strict"}
    )
    assert status == 400, out
    assert (
        out["message"] == 'strict decoding error: duplicate field "metadata.name", unknown field "spec.bogus"'
    )
    status, out, headers = await api.call(
        "POST", ORDERS, data=body, content_type="application/json", params={"fieldValidation": "Warn"}
    )
    assert status == 201, out
    assert headers.getall("Warning") == [
        '299 - "duplicate field \\"metadata.name\\""',
        '299 - "unknown field \\"spec.bogus\\""',
    ]
    # an update too
    put = body.replace(
        b'"name":"d","name":"d"',
        b'"name":"d","name":"d","resourceVersion":"' + out["metadata"]["resourceVersion"].encode() + b'"',
    )
    status, out, _ = await api.call(
        "PUT", f"{ORDERS}/d", data=put, content_type="application/json", params={"fieldValidation": "Strict"}
    )
    assert status == 400 and "duplicate field" in out["message"]
    status, _, headers = await api.call(
        "PUT", f"{ORDERS}/d", data=put, content_type="application/json", params={"fieldValidation": "Ignore"}
    )
    assert status == 200 and "Warning" not in headers


class _Kube:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def get(self, path: str) -> dict[str, Any]:
        self.paths.append(path)
        raise KubeApiError(404, {})


class _EmptyInformer:
    items: dict[str, dict[str, Any]] = {}


@pytest.mark.parametrize(
    ("namespace", "path"),
    [
        ("team-a", "/api/v1/namespaces/team-a"),
        ("a/../../apis/x", "/api/v1/namespaces/a%2F..%2F..%2Fapis%2Fx"),
        ("b?watch=1#x", "/api/v1/namespaces/b%3Fwatch%3D1%23x"),
        ("%2e%2e", "/api/v1/namespaces/%252e%252e"),
    ],
)
async def test_namespace_lifecycle_escapes_the_namespace_into_one_path_segment(
    namespace: str, path: str
) -> None:
    kube = _Kube()
    plugin = NamespaceLifecycle(kube, _EmptyInformer())  # type: ignore[arg-type]
    attributes = AdmissionAttributes("CREATE", ORDER, namespace, "o", None, {}, False)
    with pytest.raises(Exception, match="not found"):
        await plugin.admit(attributes)
    assert kube.paths == [path]
