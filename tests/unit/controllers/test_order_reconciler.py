"""The Order controller end to end over the in-memory FakeKubeClient (Manager, informers, indexes)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from api.resources import parse_rfc3339
from controllers.artifactworkflow import FINALIZER as AW_FINALIZER
from controllers.artifactworkflow import setup_artifact_workflow_controller
from controllers.kube import codec
from controllers.kube.fake import FakeKubeClient
from controllers.kube.resources import (
    ARTIFACT_WORKFLOWS,
    CLUSTER_ARTIFACT_TYPES,
    ENDPOINTS,
    EVENTS,
    ORDERS,
    SECRETS,
    WORKFLOWS,
)
from controllers.order import setup_order_controller
from controllers.order.hashkey import HashKey
from controllers.runtime import Manager

pytestmark = pytest.mark.looptime
NS = "ns"
TEST_KEY = HashKey(b"k" * 32)


class Env:
    def __init__(self, client: FakeKubeClient, manager: Manager) -> None:
        self.client = client
        self.manager = manager

    async def until(self, check: Callable[[], Any], within: float = 10) -> Any:
        async with asyncio.timeout(within):
            while True:
                value = check()
                if value:
                    return value
                await asyncio.sleep(0.05)

    def aws(self) -> dict[str, dict[str, Any]]:
        return {
            name: obj
            for (res, ns, name), obj in self.client.objects.items()
            if res == ARTIFACT_WORKFLOWS and ns == NS
        }

    def order(self, name: str = "o") -> dict[str, Any] | None:
        return self.client.objects.get((ORDERS, NS, name))

    def status(self, name: str = "o") -> dict[str, Any]:
        order = self.order(name)
        return (order or {}).get("status") or {}

    async def settle(self) -> None:
        """Let the controller drain its queue."""
        controller = self.manager._controllers[0]
        await asyncio.sleep(1)
        await self.until(lambda: len(controller.queue) == 0 and not controller.queue.processing)
        await asyncio.sleep(1)

    async def set_aw_phase(self, name: str, phase: str, message: str = "") -> None:
        aw = await self.client.get(ARTIFACT_WORKFLOWS, NS, name)
        aw["status"] = {"phase": phase, "message": message}
        await self.client.replace(ARTIFACT_WORKFLOWS, NS, name, aw, subresource="status")

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [
            o for (res, _, _), o in self.client.objects.items() if res == EVENTS and o["reason"] == reason
        ]


@pytest.fixture(params=[True, False], ids=["full-cache", "pruned-artifactworkflows"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    """Every test runs with ArtifactWorkflows cached whole and pruned to what the controller reads."""
    client = FakeKubeClient()
    manager = Manager(client, bind_address=None)
    setup_order_controller(
        manager, hash_key=TEST_KEY, concurrency=2, cache_artifact_workflow_specs=request.param
    )
    await client.create(
        CLUSTER_ARTIFACT_TYPES,
        None,
        {
            "metadata": {"name": "oci"},
            "spec": {
                "workflowTemplateRef": {"name": "oci-transfer", "clusterScope": True},
                "parameters": [{"name": "scan", "value": "true"}],
                "rules": {"srcTypes": ["oci"], "dstTypes": ["oci"]},
            },
        },
    )
    await client.create(SECRETS, NS, {"metadata": {"name": "creds"}, "data": {"x": "YQ=="}})
    for name, usage, secret in (("src", "All", "creds"), ("dst", "All", None), ("other", "All", None)):
        spec: dict[str, Any] = {"type": "oci", "remoteURL": f"{name}.example", "usage": usage}
        if secret:
            spec["secretRef"] = {"name": secret}
        await client.create(ENDPOINTS, NS, {"metadata": {"name": name}, "spec": spec})
    task = asyncio.create_task(manager.run())
    try:
        yield Env(client, manager)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def order_body(*artifacts: dict[str, Any], name: str = "o") -> dict[str, Any]:
    return {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "Order",
        "metadata": {"name": name},
        "spec": {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
            "artifacts": list(artifacts),
        },
    }


def art(image: str, **extra: Any) -> dict[str, Any]:
    return {"type": "oci", "spec": {"image": image}, **extra}


async def test_two_artifacts_make_two_workflows_with_parameters_owner_and_status(env: Env) -> None:
    order = await env.client.create(ORDERS, NS, order_body(art("a"), art("b")))
    aws = await env.until(lambda: len(env.aws()) == 2 and env.aws())
    await env.settle()
    for aw in aws.values():
        ref = aw["metadata"]["ownerReferences"][0]
        assert ref == {
            "apiVersion": "arc.opendefense.cloud/v1alpha1",
            "kind": "Order",
            "name": "o",
            "uid": order["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert aw["metadata"]["labels"] == {
            "arc.opendefense.cloud/order": "o",
            "arc.opendefense.cloud/artifact-type": "oci",
        }
        params = {p["name"]: p["value"] for p in aw["spec"]["parameters"]}
        assert params["srcRemoteURL"] == "src.example"
        assert params["srcSecret"] == "true" and params["dstSecret"] == "false"
        assert params["scan"] == "true"
        assert aw["spec"]["srcSecretRef"] == {"name": "creds"}
        assert aw["spec"]["dstSecretRef"] == {"name": ""}
        assert aw["spec"]["workflowTemplateRef"] == {"name": "oci-transfer", "clusterScope": True}
    assert sorted(
        p["value"] for aw in aws.values() for p in aw["spec"]["parameters"] if p["name"] == "specImage"
    ) == [
        "a",
        "b",
    ]
    status = env.status()
    assert status["phase"] == "Pending"
    assert status["progress"] == {"total": 2, "pending": 2, "running": 0, "succeeded": 0, "failed": 0}
    assert {e["name"] for e in status["artifactWorkflows"].values()} == set(aws)
    assert sorted(e["artifactIndex"] for e in status["artifactWorkflows"].values()) == [0, 1]
    assert env.order()["metadata"]["finalizers"] == ["arc.opendefense.cloud/order"]  # type: ignore[index]
    assert len(env.events("ArtifactWorkflowCreated")) == 2

    # level-based: nothing more happens
    writes = [c for c in env.client.calls if c[0] in ("create", "update/status", "delete")]
    env.manager._controllers[0].enqueue(
        __import__("controllers.runtime", fromlist=["Request"]).Request(NS, "o")
    )
    await env.settle()
    assert [c for c in env.client.calls if c[0] in ("create", "update/status", "delete")] == writes

    for name in aws:
        await env.set_aw_phase(name, "Succeeded")
    await env.until(lambda: env.status().get("phase") == "Succeeded")
    ready = next(c for c in env.status()["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Succeeded")
    await env.settle()
    assert env.events("Succeeded")


async def test_endpoint_edit_reruns_only_its_artifacts_and_secret_rotation_too(env: Env) -> None:
    await env.client.create(ORDERS, NS, order_body(art("a"), art("b", dstRef={"name": "other"})))
    first = set(await env.until(lambda: len(env.aws()) == 2 and env.aws()))
    await env.settle()
    by_dst = {aw["spec"]["parameters"][3]["value"]: n for n, aw in env.aws().items()}
    ep = await env.client.get(ENDPOINTS, NS, "other")
    ep["spec"]["remoteURL"] = "other2.example"
    await env.client.replace(ENDPOINTS, NS, "other", ep)
    await env.until(lambda: by_dst["other.example"] not in env.aws() and len(env.aws()) == 2)
    await env.settle()
    now = set(env.aws())
    assert by_dst["dst.example"] in now and len(now - first) == 1
    (new_b,) = now - first
    (rerun,) = env.events("Rerun")
    assert rerun["message"] == (
        f"Endpoint or Secret changed: re-running 1 artifact: #1 ({new_b} replaces {by_dst['other.example']})"
    )
    assert rerun["involvedObject"]["kind"] == "Order" and rerun["type"] == "Normal"

    # metadata-only change of the Secret: nothing re-runs
    secret = await env.client.get(SECRETS, NS, "creds")
    secret["metadata"]["labels"] = {"x": "y"}
    await env.client.replace(SECRETS, NS, "creds", secret)
    await env.settle()
    assert set(env.aws()) == now
    assert len(env.events("Rerun")) == 1
    # rotating its data re-runs both (both use src, which uses creds)
    secret = await env.client.get(SECRETS, NS, "creds")
    secret["data"] = {"x": "Yg=="}
    await env.client.replace(SECRETS, NS, "creds", secret)
    await env.until(lambda: not (set(env.aws()) & now) and len(env.aws()) == 2)
    await env.settle()
    messages = [e["message"] for e in env.events("Rerun")]
    assert len(messages) == 2 and messages[0] == rerun["message"]
    assert messages[1].startswith("Endpoint or Secret changed: re-running 2 artifacts: #0 (")
    for name in now:
        assert f"replaces {name})" in messages[1]


async def test_no_rerun_event_for_a_first_start_an_added_artifact_or_a_spec_edit(env: Env) -> None:
    await env.client.create(ORDERS, NS, order_body(art("a"), art("b", srcRef={"name": "later"})))
    await env.until(lambda: env.status().get("phase") == "Failed")
    await env.client.create(
        ENDPOINTS, NS, {"metadata": {"name": "later"}, "spec": {"type": "oci", "remoteURL": "l.example"}}
    )
    await env.until(lambda: len(env.aws()) == 2)  # the Endpoint appeared: a first start
    order = await env.client.get(ORDERS, NS, "o")
    order["spec"]["artifacts"] = [art("a2"), art("b", srcRef={"name": "later"}), art("c")]
    await env.client.replace(ORDERS, NS, "o", order)  # an edited and an added artifact
    await env.until(lambda: len(env.aws()) == 3 and env.status()["progress"]["total"] == 3)
    await env.settle()
    assert env.events("Rerun") == []
    assert len(env.events("ArtifactWorkflowCreated")) == 4


async def test_a_missing_endpoint_fails_only_its_artifact_until_it_appears(env: Env) -> None:
    await env.client.create(ORDERS, NS, order_body(art("a"), art("b", srcRef={"name": "later"})))
    await env.until(lambda: len(env.aws()) == 1)
    await env.until(lambda: env.status().get("phase") == "Failed")
    failed = [e for e in env.status()["artifactWorkflows"].values() if e["phase"] == "Failed"]
    assert [(e["artifactIndex"], e["message"]) for e in failed] == [(1, 'endpoint "later" not found')]
    ready = next(c for c in env.status()["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ArtifactFailed"
    await env.settle()
    assert env.events("ArtifactFailed")
    await env.client.create(
        ENDPOINTS, NS, {"metadata": {"name": "later"}, "spec": {"type": "oci", "remoteURL": "l.example"}}
    )
    await env.until(lambda: len(env.aws()) == 2)
    await env.until(lambda: env.status().get("phase") == "Pending")


async def test_usage_and_rule_violations_fail_their_artifact(env: Env) -> None:
    await env.client.create(
        ENDPOINTS,
        NS,
        {"metadata": {"name": "ro"}, "spec": {"type": "oci", "remoteURL": "ro.example", "usage": "PullOnly"}},
    )
    await env.client.create(
        ENDPOINTS, NS, {"metadata": {"name": "web"}, "spec": {"type": "http", "remoteURL": "web.example"}}
    )
    await env.client.create(
        ORDERS,
        NS,
        order_body(
            art("a", dstRef={"name": "ro"}), art("b", srcRef={"name": "web"}), art("c"), art("d", type="nope")
        ),
    )
    await env.until(lambda: env.status().get("progress", {}).get("failed") == 3)
    messages = sorted(
        e["message"] for e in env.status()["artifactWorkflows"].values() if e["phase"] == "Failed"
    )
    assert messages == [
        'artifact type "nope" not found',
        'endpoint "ro" has usage PullOnly and cannot be a destination',
        'endpoint type "http" is not allowed as source by artifact type "oci"',
    ]
    assert len(env.aws()) == 1


async def test_add_remove_reorder_and_manual_delete(env: Env) -> None:
    await env.client.create(ORDERS, NS, order_body(art("a"), art("b")))
    first = set(await env.until(lambda: len(env.aws()) == 2 and env.aws()))
    order = await env.client.get(ORDERS, NS, "o")
    order["spec"]["artifacts"] = [art("b"), art("a"), art("c")]
    await env.client.replace(ORDERS, NS, "o", order)
    await env.until(lambda: len(env.aws()) == 3)
    assert first < set(env.aws())
    await env.until(
        lambda: sorted(e["artifactIndex"] for e in env.status()["artifactWorkflows"].values()) == [0, 1, 2]
    )
    order = await env.client.get(ORDERS, NS, "o")
    order["spec"]["artifacts"] = [art("c")]
    await env.client.replace(ORDERS, NS, "o", order)
    await env.until(lambda: len(env.aws()) == 1)
    (remaining,) = env.aws()
    await env.client.delete(ARTIFACT_WORKFLOWS, NS, remaining)
    await env.until(lambda: remaining in env.aws())  # recreated while unfinished
    await env.set_aw_phase(remaining, "Succeeded")
    await env.until(lambda: env.status().get("phase") == "Succeeded")
    await env.client.delete(ARTIFACT_WORKFLOWS, NS, remaining)
    await env.settle()
    assert remaining not in env.aws(), "a finished artifact is not re-run"
    assert env.status()["phase"] == "Succeeded"


async def test_force_at_reruns_everything_and_retry_failed_at_only_failed(env: Env) -> None:
    await env.client.create(ORDERS, NS, order_body(art("a"), art("b")))
    first = await env.until(lambda: len(env.aws()) == 2 and sorted(env.aws()))
    await env.set_aw_phase(first[0], "Succeeded")
    await env.set_aw_phase(first[1], "Failed", "step copy: denied")
    await env.until(lambda: env.status().get("phase") == "Failed")
    await env.client.patch(
        ORDERS,
        NS,
        "o",
        {"metadata": {"annotations": {"arc.opendefense.cloud/retry-failed-at": "1767323045"}}},
    )
    await env.until(lambda: env.status().get("lastRetryAt") == "2026-01-02T03:04:05Z")
    await env.until(lambda: sorted(env.aws()) == first and not env.aws()[first[1]].get("status"))
    assert env.aws()[first[0]]["status"]["phase"] == "Succeeded", "the succeeded one is untouched"
    await env.client.patch(
        ORDERS,
        NS,
        "o",
        {"metadata": {"annotations": {"arc.opendefense.cloud/force-at": "2026-02-01T00:00:00Z"}}},
    )
    await env.until(lambda: len(env.aws()) == 2 and not set(env.aws()) & set(first))
    assert env.status()["lastForceAt"] == "2026-02-01T00:00:00Z"
    await env.client.patch(
        ORDERS, NS, "o", {"metadata": {"annotations": {"arc.opendefense.cloud/force-at": "garbage"}}}
    )
    await env.until(lambda: env.events("InvalidAnnotation"))


async def test_deleting_the_order_deletes_its_workflows_first(env: Env) -> None:
    await env.client.create(ORDERS, NS, order_body(art("a"), art("b")))
    await env.until(lambda: len(env.aws()) == 2)
    await env.until(lambda: env.order() and env.order()["metadata"].get("finalizers"))  # type: ignore[index]
    await env.client.delete(ORDERS, NS, "o")
    await env.until(lambda: env.order() is None)
    assert env.aws() == {}


async def test_numbers_are_passed_as_written(env: Env) -> None:
    body = order_body(art("a"))
    body["spec"]["artifacts"][0]["spec"] = codec.loads(b'{"image": "a", "size": 1e6, "n": 1000000}')
    await env.client.create(ORDERS, NS, body)
    (aw,) = (await env.until(lambda: env.aws())).values()
    params = {p["name"]: p["value"] for p in aw["spec"]["parameters"]}
    assert (params["specSize"], params["specN"]) == ("1e6", "1000000")


async def test_long_order_names_are_cut(env: Env) -> None:
    name = "x" * 70
    await env.client.create(ORDERS, NS, order_body(art("a"), name=name))
    (aw,) = (await env.until(lambda: env.aws())).values()
    assert len(aw["metadata"]["name"]) == 63
    assert len(aw["metadata"]["labels"]["arc.opendefense.cloud/order"]) == 63
    assert aw["metadata"]["annotations"]["arc.opendefense.cloud/order-name"] == name


async def test_the_writes_of_one_reconcile_run_concurrently(env: Env) -> None:
    """Six ArtifactWorkflows whose creates take 1 s each (virtual time) exist after ~1 s, not 6."""
    original_create = env.client.create

    async def slow_create(resource: Any, *args: Any, **kwargs: Any) -> Any:
        if resource == ARTIFACT_WORKFLOWS:
            await asyncio.sleep(1)
        return await original_create(resource, *args, **kwargs)

    env.client.create = slow_create  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    await original_create(ORDERS, NS, order_body(*(art(f"i{i}") for i in range(6))))
    started = loop.time()
    await env.until(lambda: len(env.aws()) == 6)
    assert loop.time() - started < 3
    await env.until(lambda: env.status().get("progress", {}).get("total") == 6)


async def test_an_artifact_type_edit_reruns_nothing_and_applies_to_later_workflows(env: Env) -> None:
    """SPEC §4.1: editing an ArtifactType affects ArtifactWorkflows created afterwards only."""
    await env.client.create(ORDERS, NS, order_body(art("a")))
    first = await env.until(lambda: len(env.aws()) == 1 and dict(env.aws()))
    await env.settle()
    versions = {n: aw["metadata"]["resourceVersion"] for n, aw in first.items()}
    order_rv = env.order()["metadata"]["resourceVersion"]  # type: ignore[index]
    cat = await env.client.get(CLUSTER_ARTIFACT_TYPES, None, "oci")
    cat["spec"]["parameters"] = [{"name": "scan", "value": "false"}]
    await env.client.replace(CLUSTER_ARTIFACT_TYPES, None, "oci", cat)
    await env.settle()
    assert {n: aw["metadata"]["resourceVersion"] for n, aw in env.aws().items()} == versions
    assert env.order()["metadata"]["resourceVersion"] == order_rv  # type: ignore[index]
    order = await env.client.get(ORDERS, NS, "o")
    order["spec"]["artifacts"].append(art("b"))
    await env.client.replace(ORDERS, NS, "o", order)
    aws = await env.until(lambda: len(env.aws()) == 2 and env.aws())
    scan = {n: {p["name"]: p["value"] for p in aw["spec"]["parameters"]}["scan"] for n, aw in aws.items()}
    assert scan == {**dict.fromkeys(first, "true"), **{n: "false" for n in aws if n not in first}}


def requests(client: FakeKubeClient, since: int = 0) -> Counter[tuple[str, str]]:
    return Counter(
        (verb, plural) for verb, plural, _, _ in client.calls[since:] if verb not in ("list", "watch")
    )


async def test_the_requests_of_a_new_order(env: Env) -> None:
    """A new Order with 3 artifacts: one finalizer PATCH, 3 creates, one status write, 3 Events — no reads
    (everything comes from the caches) and nothing more from the reconciles its own writes trigger."""
    since = len(env.client.calls)
    await env.client.create(ORDERS, NS, order_body(art("a"), art("b"), art("c")))
    await env.until(lambda: env.status().get("progress", {}).get("total") == 3)
    await env.settle()
    await env.manager.recorder.flush()
    assert requests(env.client, since) == {
        ("create", "orders"): 1,  # the test's own
        ("patch", "orders"): 1,
        ("create", "artifactworkflows"): 3,
        ("update/status", "orders"): 1,
        ("create", "events"): 3,
    }
    for aw in env.aws().values():
        index = next(
            e["artifactIndex"]
            for e in env.status()["artifactWorkflows"].values()
            if e["name"] == aw["metadata"]["name"]
        )
        annotations = aw["metadata"]["annotations"]
        assert annotations["arc.opendefense.cloud/artifact-index"] == str(index)
        assert annotations["arc.opendefense.cloud/src-endpoint"] == "src"
        assert annotations["arc.opendefense.cloud/dst-endpoint"] == "dst"
        assert "finalizers" not in aw["metadata"]  # no ArtifactWorkflow controller in this manager


async def test_with_the_artifact_workflow_controller_its_finalizer_is_set_at_create() -> None:
    """Both controllers in one manager: ArtifactWorkflows are created with the ArtifactWorkflow controller's
    finalizer (no PATCH each), their Workflows at once with the artifact index in the title (no waiting for
    the Order's status), and deleting the Order still removes everything."""
    client = FakeKubeClient()
    manager = Manager(client, bind_address=None)
    setup_order_controller(manager, hash_key=TEST_KEY, concurrency=2, workflow_finalizers=[AW_FINALIZER])
    setup_artifact_workflow_controller(manager, concurrency=2)
    await client.create(
        CLUSTER_ARTIFACT_TYPES,
        None,
        {"metadata": {"name": "oci"}, "spec": {"workflowTemplateRef": {"name": "t", "clusterScope": True}}},
    )
    for name in ("src", "dst"):
        await client.create(
            ENDPOINTS,
            NS,
            {"metadata": {"name": name}, "spec": {"type": "oci", "remoteURL": f"{name}.example"}},
        )
    task = asyncio.create_task(manager.run())
    env = Env(client, manager)
    try:
        await client.create(ORDERS, NS, order_body(art("a"), art("b")))

        def workflows_now() -> list[dict[str, Any]]:
            return [o for (res, _, _), o in client.objects.items() if res == WORKFLOWS]

        workflows = await env.until(lambda: len(workflows_now()) == 2 and workflows_now(), within=5)
        titles = sorted(wf["metadata"]["annotations"]["workflows.argoproj.io/title"] for wf in workflows)
        assert titles == ["o: oci #0", "o: oci #1"]
        descriptions = {
            wf["metadata"]["annotations"]["workflows.argoproj.io/description"] for wf in workflows
        }
        assert descriptions == {"src (src.example) → dst (dst.example)"}
        await env.until(lambda: env.status().get("progress", {}).get("total") == 2)
        for aw in env.aws().values():
            assert aw["metadata"]["finalizers"] == [AW_FINALIZER]
        assert not [c for c in client.calls if c[:2] == ("patch", "artifactworkflows")]

        await client.delete(ORDERS, NS, "o")
        await env.until(lambda: env.order() is None and not env.aws(), within=30)
        assert not workflows_now()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_phase_gauges_follow_the_informers(env: Env) -> None:
    def gauge(name: str, phase: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"phase": phase})

    await env.client.create(ORDERS, NS, order_body(art("a"), art("b")))
    aws = await env.until(lambda: len(env.aws()) == 2 and env.aws())
    await env.settle()
    assert gauge("arc_orders", "Pending") == 1 and gauge("arc_artifactworkflows", "Pending") == 2
    first, second = aws
    await env.set_aw_phase(first, "Succeeded")
    await env.set_aw_phase(second, "Running")
    await env.until(lambda: env.status().get("phase") == "Running")
    await env.settle()
    assert gauge("arc_orders", "Running") == 1 and gauge("arc_orders", "Pending") == 0
    assert [gauge("arc_artifactworkflows", p) for p in ("Pending", "Running", "Succeeded")] == [0, 1, 1]
    await env.client.delete(ORDERS, NS, "o")
    await env.until(lambda: env.order() is None)
    await env.settle()
    assert gauge("arc_orders", "Running") == 0 and gauge("arc_artifactworkflows", "Succeeded") == 0


async def test_last_success_timestamp_per_order(env: Env) -> None:
    def last() -> float | None:
        return REGISTRY.get_sample_value(
            "arc_order_last_success_timestamp_seconds", {"namespace": NS, "order": "o"}
        )

    await env.client.create(ORDERS, NS, order_body(art("a")))
    (name,) = await env.until(lambda: len(env.aws()) == 1 and env.aws())
    await env.settle()
    assert last() is None, "not succeeded yet: no series"
    await env.set_aw_phase(name, "Succeeded")
    await env.until(lambda: env.status().get("phase") == "Succeeded")
    await env.settle()
    ready = next(c for c in env.status()["conditions"] if c["type"] == "Ready")
    assert last() == parse_rfc3339(ready["lastTransitionTime"]).timestamp()  # type: ignore[union-attr]
    await env.client.delete(ORDERS, NS, "o")
    await env.until(lambda: env.order() is None)
    await env.settle()
    assert last() is None
