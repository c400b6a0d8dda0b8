"""An Endpoint may only reference a Secret its writer may read (issue 14: no exfiltration through ARC).

The API server in-process with the SecretReference admission plugin and a recording authorizer in place
of kube-apiserver's SubjectAccessReview (the e2e test runs the real one through the aggregator).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from api.resources import ENDPOINT
from apiserver.admission.secret_reference import SecretReference
from apiserver.auth import UserInfo
from apiserver.registry.store import Store
from apiserver.server import Config, create_app
from apiserver.storage.keys import KeyLayout
from apiserver.storage.memory import MemoryStorage
from tests.unit.apiserver.conftest import GV, Api

NS = "team-a"
EPS = f"{GV}/namespaces/{NS}/endpoints"


class Readable:
    """Answers "may user get secrets/<name>": the tenant may read `own` only; records every question."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, str]]] = []

    async def allowed(self, user: UserInfo, attrs: dict[str, str]) -> tuple[bool, str]:
        self.asked.append((user.name, attrs))
        if "system:masters" in user.groups:
            return True, ""
        return attrs["name"] == "own", ""


@pytest.fixture
async def apis(tmp_path: Path) -> AsyncIterator[tuple[Api, Api, Readable]]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('admin-token,admin,1,"system:masters"\ntenant-token,tenant,2\n')
    storage = MemoryStorage()
    await storage.start()
    readable = Readable()
    plugin = SecretReference(readable, Store(ENDPOINT, storage, KeyLayout()))
    app = create_app(Config(storage=storage, token_auth_file=tokens, admission=[plugin]))
    async with TestClient(TestServer(app)) as client:
        admin, tenant = Api(client, storage), Api(client, storage)
        tenant.headers = {"Authorization": "Bearer tenant-token"}
        yield admin, tenant, readable
    await storage.close()


def endpoint(name: str, secret: str | None, url: str = "registry.team-a.example") -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "oci", "remoteURL": url}
    if secret is not None:
        spec["secretRef"] = {"name": secret}
    return {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "Endpoint",
        "metadata": {"name": name},
        "spec": spec,
    }


async def test_create_naming_a_secret_the_writer_cannot_read_is_forbidden(
    apis: tuple[Api, Api, Readable],
) -> None:
    _, tenant, readable = apis
    labels = {"name": "SecretReference", "operation": "CREATE", "rejected": "true", "type": "validate"}
    metric = "apiserver_admission_controller_admission_duration_seconds_count"
    before = REGISTRY.get_sample_value(metric, labels) or 0.0
    status, body, _ = await tenant.call("POST", EPS, json=endpoint("steal", "neighbour", "evil.example"))
    assert status == 403, body
    assert REGISTRY.get_sample_value(metric, labels) == before + 1
    assert body["reason"] == "Forbidden"
    assert "spec.secretRef.name" in body["message"] and '"neighbour"' in body["message"]
    assert body["details"] == {"name": "steal", "group": "arc.opendefense.cloud", "kind": "endpoints"}
    assert readable.asked == [
        (
            "tenant",
            {
                "namespace": NS,
                "verb": "get",
                "group": "",
                "version": "v1",
                "resource": "secrets",
                "name": "neighbour",
            },
        )
    ]
    status, _, _ = await tenant.call("POST", EPS, json=endpoint("mine", "own"))
    assert status == 201
    status, _, _ = await tenant.call("POST", EPS, json=endpoint("anon", None))
    assert status == 201


async def test_changing_the_reference_or_the_host_of_a_referenced_secret_is_checked(
    apis: tuple[Api, Api, Readable],
) -> None:
    admin, tenant, readable = apis
    assert (await admin.call("POST", EPS, json=endpoint("shared", "neighbour")))[0] == 201
    assert (await tenant.call("POST", EPS, json=endpoint("mine", "own")))[0] == 201
    merge = "application/merge-patch+json"
    # point one's own Endpoint at the neighbour's Secret
    status, body, _ = await tenant.call(
        "PATCH", f"{EPS}/mine", data='{"spec":{"secretRef":{"name":"neighbour"}}}', content_type=merge
    )
    assert status == 403 and "spec.secretRef.name" in body["message"]
    # send the neighbour's credentials elsewhere by moving the host under the existing reference
    status, body, _ = await tenant.call(
        "PATCH", f"{EPS}/shared", data='{"spec":{"remoteURL":"evil.example"}}', content_type=merge
    )
    assert status == 403, body
    # ... also with a PUT
    _, current, _ = await tenant.call("GET", f"{EPS}/shared")
    current["spec"]["remoteURL"] = "evil.example"
    assert (await tenant.call("PUT", f"{EPS}/shared", json=current))[0] == 403
    # metadata-only writes keep the reference where it is: no question, allowed
    readable.asked.clear()
    status, _, _ = await tenant.call(
        "PATCH", f"{EPS}/shared", data='{"metadata":{"labels":{"a":"b"}}}', content_type=merge
    )
    assert status == 200
    _, current, _ = await tenant.call("GET", f"{EPS}/shared")
    current["metadata"]["labels"] = {"c": "d"}
    assert (await tenant.call("PUT", f"{EPS}/shared", json=current))[0] == 200
    assert readable.asked == []
    # the same moves with a Secret the tenant may read are fine
    status, _, _ = await tenant.call(
        "PATCH", f"{EPS}/mine", data='{"spec":{"remoteURL":"other.example"}}', content_type=merge
    )
    assert status == 200


async def test_a_json_patch_copying_a_name_into_the_reference_is_refused_at_write(
    apis: tuple[Api, Api, Readable],
) -> None:
    """The patch's result is checked inside the store's read-modify-write, not only the patch document."""
    _, tenant, _ = apis
    body = endpoint("mine", None)
    body["metadata"]["labels"] = {"x": "neighbour"}
    assert (await tenant.call("POST", EPS, json=body))[0] == 201
    patch = (
        '[{"op":"add","path":"/spec/secretRef","value":{}},'
        '{"op":"copy","from":"/metadata/labels/x","path":"/spec/secretRef/name"}]'
    )
    status, body, _ = await tenant.call(
        "PATCH", f"{EPS}/mine", data=patch, content_type="application/json-patch+json"
    )
    assert status == 403, body
    assert "spec.secretRef.name" in body["message"]
    _, stored, _ = await tenant.call("GET", f"{EPS}/mine")
    assert "secretRef" not in stored["spec"]
