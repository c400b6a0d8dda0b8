"""The Endpoint probe and reconciler against real remotes on loopback (docker-registry with htpasswd, with
and without TLS of a private CA; an aiohttp registry speaking the Bearer token flow).

Each case ends in the conditions a user sees with ``kubectl get endpoints.arc.opendefense.cloud``: the
reconciler runs with the in-memory kube client and the real prober, so the Secret's credentials travel
exactly as in the manager (a GET of the Secret, decoded, sent to the remote, kept nowhere).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from api.arc.v1alpha1.types import Endpoint
from controllers.endpoint.probe import DEFAULT_DENIED_CIDRS, AddressPolicy, Credentials, Prober, Target
from controllers.endpoint.reconciler import EndpointReconciler
from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import ENDPOINTS, SECRETS
from controllers.runtime import Request
from hack.process import free_port
from tests.integration.endpoint.support import TLSRegistry, TokenRegistry
from tests.integration.workflowtemplates.support import DOCKER_REGISTRY

NS = "team-a"
USER, PASSWORD = "mirror", "s3cret-Pa55"
POLICY = AddressPolicy.parse(DEFAULT_DENIED_CIDRS)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSRegistry]:
    if shutil.which(DOCKER_REGISTRY) is None:
        pytest.fail("docker-registry is missing: `make apt` installs it (hack/apt-packages.txt)")
    reg = TLSRegistry(tmp_path_factory.mktemp("registry-plain"), USER, PASSWORD)
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSRegistry]:
    reg = TLSRegistry(tmp_path_factory.mktemp("registry-tls"), USER, PASSWORD, tls=True)
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
async def token_registry() -> AsyncIterator[TokenRegistry]:
    reg = TokenRegistry(USER, PASSWORD)
    await reg.start()
    try:
        yield reg
    finally:
        await reg.stop()


def dockerconfig(host: str, user: str, password: str) -> dict[str, str]:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    raw = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    return {".dockerconfigjson": base64.b64encode(raw).decode()}


class _Secrets:
    """The shared Secret informer's view: a data hash per Secret (the reconciler re-probes on change)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], Any] = {}

    def get(self, namespace: str, name: str) -> Any:
        return self.records.get((namespace, name))


class _Endpoints:
    def __init__(self, client: FakeKubeClient) -> None:
        self.client = client

    def get(self, namespace: str, name: str) -> Endpoint | None:
        raw = self.client.objects.get((ENDPOINTS, namespace, name))
        return Endpoint.model_validate(raw) if raw is not None else None


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def record(self, obj: Any, type: str, reason: str, message: str) -> None:
        self.events.append((type, reason, message))


async def conditions_for(
    remote: str,
    data: dict[str, str] | None,
    *,
    policy: AddressPolicy = POLICY,
    type: str = "oci",
    secret_ref: str | None = None,
) -> dict[str, tuple[str, str, str]]:
    """Create the Endpoint (and its Secret), reconcile once; the conditions as (status, reason, message)."""
    client = FakeKubeClient()
    spec: dict[str, Any] = {"type": type, "remoteURL": remote}
    secrets = _Secrets()
    if data is not None:
        await client.create(SECRETS, NS, {"metadata": {"name": "creds"}, "data": data})
        secrets.records[(NS, "creds")] = type_record("creds", json.dumps(data, sort_keys=True))
        spec["secretRef"] = {"name": "creds"}
    if secret_ref is not None:
        spec["secretRef"] = {"name": secret_ref}
    await client.create(ENDPOINTS, NS, {"metadata": {"name": "ep"}, "spec": spec})
    reconciler = EndpointReconciler(
        client,
        _Recorder(),  # type: ignore[arg-type]
        endpoints=_Endpoints(client),  # type: ignore[arg-type]
        secrets=secrets,  # type: ignore[arg-type]
        prober=Prober(policy, timeout=5.0),
    )
    await reconciler.reconcile(Request(NS, "ep"))
    status = client.objects[(ENDPOINTS, NS, "ep")]["status"]
    assert status["observedGeneration"] == 1 and status["lastProbeTime"]
    out = {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}
    text = json.dumps(status)
    assert PASSWORD not in text and base64.b64encode(PASSWORD.encode()).decode() not in text
    return out


def type_record(name: str, data: str) -> Any:
    return SimpleNamespace(namespace=NS, name=name, data_hash=data)


async def test_good_credentials_are_ready(registry: TLSRegistry) -> None:
    c = await conditions_for(registry.url, dockerconfig(f"127.0.0.1:{registry.port}", USER, PASSWORD))
    assert c["Reachable"][:2] == ("True", "Reachable")
    assert c["Authenticated"][:2] == ("True", "Authenticated")
    assert c["Ready"][0] == "True"


async def test_basic_auth_secret_is_used_too(registry: TLSRegistry) -> None:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in (("username", USER), ("password", PASSWORD))}
    assert (await conditions_for(registry.url, data))["Ready"][0] == "True"


async def test_bad_credentials_are_unauthorized(registry: TLSRegistry) -> None:
    c = await conditions_for(registry.url, dockerconfig(f"127.0.0.1:{registry.port}", USER, "wrong"))
    assert c["Reachable"][0] == "True"
    assert c["Authenticated"][:2] == ("False", "Unauthorized")
    assert c["Ready"][:2] == ("False", "Unauthorized")
    assert "rejected the credentials (401 Unauthorized)" in c["Ready"][2]


async def test_credentials_of_another_host_are_not_sent(registry: TLSRegistry) -> None:
    c = await conditions_for(registry.url, dockerconfig("other.example", USER, PASSWORD))
    assert c["Authenticated"][:2] == ("False", "CredentialsNotFound")
    assert c["Ready"][0] == "False"


async def test_no_credentials_against_an_auth_registry(registry: TLSRegistry) -> None:
    c = await conditions_for(registry.url, None)
    assert c["Authenticated"][:2] == ("False", "NoCredentials")


async def test_missing_secret(registry: TLSRegistry) -> None:
    c = await conditions_for(registry.url, None, secret_ref="gone")
    assert c["Reachable"][0] == "True"
    assert c["Authenticated"] == ("False", "SecretNotFound", 'secret "gone" not found')
    assert c["Ready"][:2] == ("False", "SecretNotFound")


async def test_closed_port_is_not_reachable() -> None:
    port = free_port()
    c = await conditions_for(f"http://127.0.0.1:{port}", dockerconfig(f"127.0.0.1:{port}", USER, PASSWORD))
    assert c["Reachable"][:2] == ("False", "ConnectionRefused")
    assert c["Authenticated"][0] == "Unknown"
    assert c["Ready"][:2] == ("False", "ConnectionRefused")


async def test_self_signed_without_its_ca_is_a_tls_error(tls_registry: TLSRegistry) -> None:
    c = await conditions_for(
        f"127.0.0.1:{tls_registry.port}", dockerconfig(f"127.0.0.1:{tls_registry.port}", USER, PASSWORD)
    )
    assert c["Reachable"][:2] == ("False", "TLSError")
    assert "certificate" in c["Reachable"][2]
    assert c["Ready"][:2] == ("False", "TLSError")


async def test_self_signed_with_its_ca_is_ready(tls_registry: TLSRegistry) -> None:
    assert tls_registry.ca is not None
    data = dockerconfig(f"127.0.0.1:{tls_registry.port}", USER, PASSWORD)
    data["ca.crt"] = base64.b64encode(tls_registry.ca.cert_pem).decode()
    c = await conditions_for(f"127.0.0.1:{tls_registry.port}", data)
    assert c["Reachable"][:2] == ("True", "Reachable")
    assert c["Authenticated"][:2] == ("True", "Authenticated")
    assert c["Ready"][0] == "True"
    assert c["Ready"][2].startswith(f"https://127.0.0.1:{tls_registry.port}")


async def test_bearer_token_flow(token_registry: TokenRegistry) -> None:
    host = f"127.0.0.1:{token_registry.port}"
    c = await conditions_for(token_registry.url, dockerconfig(host, USER, PASSWORD))
    assert c["Authenticated"][:2] == ("True", "Authenticated"), c
    assert token_registry.token_requests[-1] == {"service": "arc-test", "scope": "registry:catalog:*"}
    c = await conditions_for(token_registry.url, dockerconfig(host, USER, "wrong"))
    assert c["Authenticated"][:2] == ("False", "Unauthorized")
    assert "token service" in c["Authenticated"][2]


async def test_denied_addresses_are_never_contacted(registry: TLSRegistry) -> None:
    policy = AddressPolicy.parse(["127.0.0.0/8"])
    for remote in (registry.url, f"http://localhost:{registry.port}"):
        c = await conditions_for(remote, None, policy=policy)
        assert c["Reachable"][:2] == ("False", "AddressNotAllowed"), (remote, c)
    c = await conditions_for("http://169.254.169.254/latest/meta-data/", None, type="http")
    assert c["Reachable"][:2] == ("False", "AddressNotAllowed")
    c = await conditions_for("registry.example", None, policy=AddressPolicy.parse([], ["127.0.0.1"]))
    assert c["Reachable"][:2] == ("False", "HostNotAllowed")


async def test_http_head_probe(registry: TLSRegistry) -> None:
    c = await conditions_for(f"{registry.url}/v2/", None, type="http")
    assert c["Reachable"][0] == "True"
    assert c["Authenticated"][:2] == ("False", "NoCredentials")
    data = {k: base64.b64encode(v.encode()).decode() for k, v in (("username", USER), ("password", PASSWORD))}
    c = await conditions_for(f"{registry.url}/v2/", data, type="http")
    assert c["Ready"][0] == "True", c


async def test_prober_bounds_its_time() -> None:
    """A remote that accepts and never answers: Timeout within the deadline."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        result = await Prober(POLICY, timeout=0.5).probe(Target("oci", f"http://127.0.0.1:{port}"))
        assert loop.time() - start < 2
        assert (result.reachable.status, result.reachable.reason) == ("False", "Timeout")
    finally:
        server.close()


def test_credentials_repr_hides_the_password() -> None:
    assert PASSWORD not in repr(Credentials(USER, PASSWORD))
    assert PASSWORD not in repr(Target("oci", "x", Credentials(USER, PASSWORD)))
