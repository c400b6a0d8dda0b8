"""Real clients through the aggregator: kubectl's server-side apply (unchanged, conflict, --force-conflicts,
migration from client-side apply), ``kubectl diff``, ``kubectl patch`` without ``--type`` (strategic merge),
lightkube's ``apply`` and kr8s.

Runs only kube-apiserver, the etcds and ARC's API server (``LocalCluster.up_api_only``).
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.cluster import LocalCluster
from tests.e2e.conftest import Kubectl

GROUP = "arc.opendefense.cloud"
ORDERS = f"orders.{GROUP}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    stack = LocalCluster(tmp_path_factory.mktemp("apply-clients"), controller_manager=False)
    try:
        stack.up_api_only()
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def kc(cluster: LocalCluster) -> Kubectl:
    return Kubectl(cluster.kubeconfig)


@pytest.fixture
def ns(kc: Kubectl) -> Iterator[str]:
    name = f"apply-{uuid.uuid4().hex[:8]}"
    kc.run("create", "namespace", name)
    yield name
    kc.run("delete", "namespace", name, "--wait=false", check=False)


def order(name: str, namespace: str, *, image: str = "library/alpine:3.20", **labels: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "Order",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": "demo"}},
            "spec": {
                "defaults": {"srcRef": {"name": "docker-hub"}, "dstRef": {"name": "internal"}},
                "artifacts": [{"type": "oci", "spec": {"image": image}}],
            },
        }
    )


def proc(kc: Kubectl, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", *args], env=kc.env, capture_output=True, text=True, timeout=60, input=stdin
    )


def managers(obj: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields", [])}


def test_kubectl_server_side_apply_unchanged_conflict_force(kc: Kubectl, ns: str) -> None:
    doc = order("ssa", ns)
    assert (
        kc.run("apply", "--server-side", "-f", "-", stdin=doc).strip()
        == f"order.{GROUP}/ssa serverside-applied"
    )
    rv = kc.json("get", ORDERS, "-n", ns, "ssa")["metadata"]["resourceVersion"]
    kc.run("apply", "--server-side", "-f", "-", stdin=doc)
    obj = kc.json("get", ORDERS, "-n", ns, "ssa", "--show-managed-fields")
    assert obj["metadata"]["resourceVersion"] == rv
    assert managers(obj) == {("kubectl", "Apply")}

    other = order("ssa", ns, app="other")
    failed = proc(kc, "apply", "--server-side", "--field-manager=alice", "-f", "-", stdin=other)
    assert failed.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .metadata.labels.app' in failed.stderr
    assert "--force-conflicts" in failed.stderr  # kubectl recognised the conflict and explains the way out
    kc.run("apply", "--server-side", "--field-manager=alice", "--force-conflicts", "-f", "-", stdin=other)
    obj = kc.json("get", ORDERS, "-n", ns, "ssa", "--show-managed-fields")
    assert obj["metadata"]["labels"] == {"app": "other"}
    assert managers(obj) == {("kubectl", "Apply"), ("alice", "Apply")}


def test_server_side_apply_after_client_side_apply_migrates(kc: Kubectl, ns: str) -> None:
    kc.run("apply", "-f", "-", stdin=order("migrated", ns))
    obj = kc.json("get", ORDERS, "-n", ns, "migrated", "--show-managed-fields")
    assert ("kubectl-client-side-apply", "Update") in managers(obj)
    out = kc.run(
        "apply", "--server-side", "-f", "-", stdin=order("migrated", ns, image="library/alpine:3.21")
    )
    assert out.strip() == f"order.{GROUP}/migrated serverside-applied"
    obj = kc.json("get", ORDERS, "-n", ns, "migrated", "--show-managed-fields")
    assert obj["spec"]["artifacts"][0]["spec"]["image"] == "library/alpine:3.21"
    # kubectl moved the client-side manager's fields to its server-side one (and keeps the annotation
    # current as "kubectl-last-applied").
    assert ("kubectl", "Apply") in managers(obj)
    assert ("kubectl-client-side-apply", "Update") not in managers(obj)
    # A later server-side apply without a field removes it: kubectl owns everything it applied before.
    kc.run(
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=order("migrated", ns, image="library/alpine:3.21", tier="x"),
    )
    assert kc.json("get", ORDERS, "-n", ns, "migrated")["metadata"]["labels"] == {"tier": "x"}


def test_client_side_apply_is_a_strategic_merge_patch(kc: Kubectl, ns: str) -> None:
    doc = order("csa", ns)
    assert kc.run("apply", "-f", "-", stdin=doc).strip() == f"order.{GROUP}/csa created"
    assert kc.run("apply", "-f", "-", stdin=doc).strip() == f"order.{GROUP}/csa unchanged"
    out = kc.run("apply", "-f", "-", "-v=8", stdin=order("csa", ns, image="library/alpine:3.21"))
    assert "configured" in out


def test_kubectl_diff(kc: Kubectl, ns: str) -> None:
    doc = order("diffed", ns)
    kc.run("apply", "--server-side", "-f", "-", stdin=doc)
    same = proc(kc, "diff", "--server-side", "-f", "-", stdin=doc)
    assert same.returncode == 0 and same.stdout == "", same.stderr
    kc.run("apply", "-f", "-", stdin=order("csa-diffed", ns))
    same = proc(kc, "diff", "-f", "-", stdin=order("csa-diffed", ns))
    assert same.returncode == 0 and same.stdout == "", same.stderr
    edited = proc(kc, "diff", "-f", "-", stdin=order("csa-diffed", ns, image="library/alpine:3.99"))
    assert edited.returncode == 1, edited.stderr
    changed = [line.replace(" ", "") for line in edited.stdout.splitlines() if line[:1] in "-+"]
    assert "-image:library/alpine:3.20" in changed and "+image:library/alpine:3.99" in changed
    assert "generation" in edited.stdout  # the server's dry run bumped it


def test_kubectl_patch_without_type_is_strategic_merge(kc: Kubectl, ns: str) -> None:
    kc.run("apply", "-f", "-", stdin=order("patched", ns))
    out = kc.run("patch", ORDERS, "patched", "-n", ns, "-p", '{"metadata":{"labels":{"b":"2"}}}')
    assert out.strip() == f"order.{GROUP}/patched patched"
    assert kc.json("get", ORDERS, "-n", ns, "patched")["metadata"]["labels"] == {"app": "demo", "b": "2"}


def test_lightkube_apply(cluster: LocalCluster, ns: str) -> None:
    from lightkube import Client, KubeConfig
    from lightkube.core.exceptions import ApiError
    from lightkube.generic_resource import create_namespaced_resource

    Order = create_namespaced_resource(GROUP, "v1alpha1", "Order", "orders")
    client = Client(KubeConfig.from_file(str(cluster.kubeconfig)), field_manager="lightkube")
    body = yaml.safe_load(order("lk", ns))
    created = client.apply(Order(body), field_manager="lightkube")
    assert created.metadata.managedFields[0].manager == "lightkube"
    body["metadata"]["labels"] = {"app": "changed"}
    with pytest.raises(ApiError) as conflict:
        client.apply(Order(body), field_manager="someone-else")
    assert conflict.value.status.code == 409
    assert conflict.value.status.details.causes[0].field == ".metadata.labels.app"
    forced = client.apply(Order(body), field_manager="someone-else", force=True)
    assert forced.metadata.labels == {"app": "changed"}


def test_kr8s_create_patch_and_apply(cluster: LocalCluster, ns: str) -> None:
    import kr8s
    from kr8s.asyncio.objects import new_class

    async def scenario() -> dict[str, Any]:
        api = await kr8s.asyncio.api(kubeconfig=str(cluster.kubeconfig))
        Order = new_class("Order", version=f"{GROUP}/v1alpha1", namespaced=True, asyncio=True)
        obj = await Order(yaml.safe_load(order("k8", ns)), api=api)
        await obj.create()
        await obj.patch({"metadata": {"labels": {"via": "kr8s"}}})
        config = yaml.safe_load(order("k8", ns, app="demo", via="kr8s", extra="yes"))
        async with api.call_api(
            "PATCH",
            version=f"{GROUP}/v1alpha1",
            url="orders/k8?fieldManager=kr8s&force=true",
            namespace=ns,
            content=json.dumps(config),
            headers={"Content-Type": "application/apply-patch+yaml"},
        ) as resp:
            return dict(resp.json())

    applied = asyncio.run(scenario())
    assert applied["metadata"]["labels"] == {"app": "demo", "via": "kr8s", "extra": "yes"}
    assert ("kr8s", "Apply") in managers(applied)
    assert Path(cluster.kubeconfig).exists()


DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def doc_example() -> tuple[dict[str, str], list[tuple[str, list[str]]]]:
    """docs/api.md's field-ownership example: its files and its (command, expected output lines)."""
    text = DOC.read_text()
    files = dict(re.findall(r"```yaml file=(\S+)\n(.*?)```", text, flags=re.S))
    (console,) = re.findall(r"```console\n(.*?)```", text, flags=re.S)
    steps: list[tuple[str, list[str]]] = []
    for line in console.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line:
            steps[-1][1].append(line)
    return files, steps


def test_the_field_ownership_example_of_the_docs(kc: Kubectl, ns: str, tmp_path: Path) -> None:
    files, steps = doc_example()
    assert len(files) == 2 and len(steps) >= 6
    for name, content in files.items():
        (tmp_path / name).write_text(content.replace("namespace: team-a", f"namespace: {ns}"))
    for command, expected in steps:
        argv = shlex.split(command.replace("-n team-a", f"-n {ns}"))
        assert argv[0] == "kubectl"
        result = subprocess.run(argv, env=kc.env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        output = (result.stdout + result.stderr).strip()
        for line in expected:
            assert line in output, (command, output)
        assert (result.returncode == 0) == (not expected[0].startswith("error:")), (command, output)
