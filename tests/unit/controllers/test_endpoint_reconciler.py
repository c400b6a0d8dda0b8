"""The Endpoint controller over the in-memory FakeKubeClient, with a scripted prober (no sockets here; the
real prober against real remotes is tests/integration/endpoint/test_probe.py)."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import REGISTRY

from controllers.endpoint import setup_endpoint_controller
from controllers.endpoint.probe import AddressPolicy, Check, Prober, ProbeResult, Target
from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import ENDPOINTS, EVENTS, SECRETS
from controllers.runtime import Manager

pytestmark = pytest.mark.looptime
NS = "team-a"
PASSWORD = "hunter2-very-secret"
UP = ProbeResult(Check("True", "Reachable", "up"), Check("True", "Authenticated", "accepted"))
REJECTED = ProbeResult(Check("True", "Reachable", "up"), Check("False", "Unauthorized", "rejected (401)"))
DOWN = ProbeResult(
    Check("False", "ConnectionRefused", "refused"), Check("Unknown", "NotProbed", "not reached")
)


@dataclass(frozen=True)
class SecretRecord:
    namespace: str
    name: str
    data_hash: str


def decode_secret(raw: dict[str, Any]) -> SecretRecord:
    meta = raw["metadata"]
    return SecretRecord(meta["namespace"], meta["name"], json.dumps(raw.get("data"), sort_keys=True))


class ScriptedProber(Prober):
    def __init__(self) -> None:
        super().__init__(AddressPolicy(()))
        self.result = UP
        self.targets: list[Target] = []

    async def probe(self, target: Target) -> ProbeResult:
        self.targets.append(target)
        return self.result


class Env:
    def __init__(self, client: FakeKubeClient, prober: ScriptedProber) -> None:
        self.client = client
        self.prober = prober

    async def until(self, check: Callable[[], Any], within: float = 30) -> Any:
        async with asyncio.timeout(within):
            while True:
                value = check()
                if value:
                    return value
                await asyncio.sleep(0.05)

    def endpoint(self, name: str = "hub") -> dict[str, Any]:
        return copy.deepcopy(self.client.objects[(ENDPOINTS, NS, name)])

    def conditions(self, name: str = "hub") -> dict[str, dict[str, Any]]:
        return {c["type"]: c for c in (self.endpoint(name).get("status") or {}).get("conditions") or []}

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [
            o for (res, _, _), o in self.client.objects.items() if res == EVENTS and o["reason"] == reason
        ]


def auth(user: str, password: str) -> dict[str, str]:
    config = {
        "auths": {"registry.example": {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}
    }
    return {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    client = FakeKubeClient()
    manager = Manager(client, bind_address=None)
    prober = ScriptedProber()
    setup_endpoint_controller(
        manager, secrets=manager.informer(SECRETS, decode_secret), prober=prober, interval=100.0
    )
    await client.create(SECRETS, NS, {"metadata": {"name": "creds"}, "data": auth("mirror", PASSWORD)})
    await client.create(
        ENDPOINTS,
        NS,
        {
            "metadata": {"name": "hub"},
            "spec": {"type": "oci", "remoteURL": "registry.example/library", "secretRef": {"name": "creds"}},
        },
    )
    task = asyncio.create_task(manager.run())
    try:
        yield Env(client, prober)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_probe_result_becomes_conditions(env: Env) -> None:
    await env.until(lambda: "Ready" in env.conditions())
    status = env.endpoint()["status"]
    assert status["observedGeneration"] == 1 and status["lastProbeTime"]
    c = env.conditions()
    assert [(t, c[t]["status"], c[t]["reason"]) for t in ("Reachable", "Authenticated", "Ready")] == [
        ("Reachable", "True", "Reachable"),
        ("Authenticated", "True", "Authenticated"),
        ("Ready", "True", "Ready"),
    ]
    assert all(x["observedGeneration"] == 1 for x in c.values())
    target = env.prober.targets[0]
    assert (target.type, target.remote_url) == ("oci", "registry.example/library")
    assert target.credentials is not None and target.credentials.username == "mirror"
    assert PASSWORD not in json.dumps(env.endpoint())
    await env.until(lambda: env.events("EndpointReady"))


async def test_own_status_write_and_metadata_edits_do_not_reprobe(env: Env) -> None:
    await env.until(lambda: "Ready" in env.conditions())
    await asyncio.sleep(5)
    ep = env.endpoint()
    ep["metadata"]["labels"] = {"team": "a"}
    await env.client.replace(ENDPOINTS, NS, "hub", ep)
    await asyncio.sleep(5)
    assert len(env.prober.targets) == 1


async def test_spec_change_reprobes_and_flips_ready(env: Env) -> None:
    await env.until(lambda: "Ready" in env.conditions())
    env.prober.result = DOWN
    ep = env.endpoint()
    ep["spec"]["remoteURL"] = "registry.example:5000"
    await env.client.replace(ENDPOINTS, NS, "hub", ep)
    await env.until(lambda: env.conditions()["Ready"]["status"] == "False")
    c = env.conditions()
    assert (c["Ready"]["reason"], c["Ready"]["message"]) == ("ConnectionRefused", "refused")
    assert c["Ready"]["observedGeneration"] == 2 and env.endpoint()["status"]["observedGeneration"] == 2
    assert env.prober.targets[-1].remote_url == "registry.example:5000"
    events = await env.until(lambda: env.events("EndpointNotReady"))
    assert events[0]["type"] == "Warning" and "ConnectionRefused" in events[0]["message"]


async def test_secret_rotation_reprobes_with_the_new_credentials(env: Env) -> None:
    await env.until(lambda: "Ready" in env.conditions())
    env.prober.result = REJECTED
    secret = await env.client.get(SECRETS, NS, "creds")
    secret["data"] = auth("mirror", "rotated-" + PASSWORD)
    await env.client.replace(SECRETS, NS, "creds", secret)
    await env.until(lambda: env.conditions()["Authenticated"]["status"] == "False")
    assert env.conditions()["Ready"]["reason"] == "Unauthorized"
    creds = env.prober.targets[-1].credentials
    assert creds is not None and creds.password == "rotated-" + PASSWORD
    assert "rotated" not in json.dumps(env.endpoint())


async def test_periodic_probe_with_jitter(env: Env) -> None:
    await env.until(lambda: "Ready" in env.conditions())
    loop = asyncio.get_running_loop()
    start = loop.time()
    await env.until(lambda: len(env.prober.targets) == 2, within=200)
    elapsed = loop.time() - start
    assert 100.0 <= elapsed <= 121.0, elapsed


async def test_missing_secret_says_so_and_probes_anonymously(env: Env) -> None:
    await env.client.create(
        ENDPOINTS,
        NS,
        {
            "metadata": {"name": "lost"},
            "spec": {"type": "oci", "remoteURL": "registry.example", "secretRef": {"name": "nope"}},
        },
    )
    await env.until(lambda: "Ready" in env.conditions("lost"))
    c = env.conditions("lost")
    assert (c["Authenticated"]["status"], c["Authenticated"]["reason"]) == ("False", "SecretNotFound")
    assert (c["Ready"]["status"], c["Ready"]["message"]) == ("False", 'secret "nope" not found')
    assert env.prober.targets[-1].credentials is None
    # the Secret appears: re-probed with it
    await env.client.create(SECRETS, NS, {"metadata": {"name": "nope"}, "data": auth("u", "p")})
    await env.until(lambda: env.conditions("lost")["Ready"]["status"] == "True")


async def test_ready_gauge(env: Env) -> None:
    await env.until(lambda: "Ready" in env.conditions())
    labels = {"namespace": NS, "endpoint": "hub"}
    await env.until(lambda: REGISTRY.get_sample_value("arc_endpoint_ready", labels) == 1.0)
    env.prober.result = DOWN
    ep = env.endpoint()
    ep["spec"]["usage"] = "PullOnly"
    await env.client.replace(ENDPOINTS, NS, "hub", ep)
    await env.until(lambda: REGISTRY.get_sample_value("arc_endpoint_ready", labels) == 0.0)
    await env.client.delete(ENDPOINTS, NS, "hub")
    await env.until(lambda: REGISTRY.get_sample_value("arc_endpoint_ready", labels) is None)
