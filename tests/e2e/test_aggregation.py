"""ARC through kube-apiserver's aggregation layer: the APIService, discovery, and every kubectl scenario a
user runs (get, -w, apply, edit, patch, delete, explain, wait) with the admin kubeconfig."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from hack.cluster import ARC_APISERVICE
from tests.e2e.conftest import Kubectl
from tests.e2e.support import (
    GROUP,
    artifact_type,
    cluster_artifact_type,
    endpoint,
    eventually,
    kubectl_proc,
    kubectl_stream,
    manifest,
    order,
    unique,
)

pytestmark = pytest.mark.e2e

ORDERS = f"orders.{GROUP}"


def test_apiservice_is_available(kubectl: Kubectl) -> None:
    apiservice = kubectl.json("get", "apiservice", ARC_APISERVICE)
    assert apiservice["spec"]["service"] == {
        "namespace": "arc-system",
        "name": "arc-apiserver",
        "port": apiservice["spec"]["service"]["port"],
    }
    assert apiservice["spec"].get("caBundle"), "registered with a CA bundle"
    assert not apiservice["spec"].get("insecureSkipTLSVerify")
    available = {c["type"]: c for c in apiservice["status"]["conditions"]}["Available"]
    assert (available["status"], available["reason"]) == ("True", "Passed")


def test_api_resources_lists_the_five_kinds(kubectl: Kubectl) -> None:
    out = kubectl.run("api-resources", f"--api-group={GROUP}", "--no-headers")
    rows = {}
    for line in out.splitlines():
        fields = line.split()
        # NAME SHORTNAMES APIVERSION NAMESPACED KIND
        rows[fields[0]] = (fields[1], fields[2], fields[3], fields[4])
    version = f"{GROUP}/v1alpha1"
    assert rows == {
        "artifacttypes": ("at", version, "true", "ArtifactType"),
        "artifactworkflows": ("aw", version, "true", "ArtifactWorkflow"),
        "clusterartifacttypes": ("cat", version, "false", "ClusterArtifactType"),
        "endpoints": ("ep-arc,arcep", version, "true", "Endpoint"),
        "orders": ("ord", version, "true", "Order"),
    }
    wide = kubectl.run("api-resources", f"--api-group={GROUP}", "-o", "wide", "--no-headers")
    for line in wide.splitlines():
        # ... VERBS CATEGORIES; nothing goes into "all".
        assert line.split()[-2:] == ["create,delete,deletecollection,get,list,patch,update,watch", "arc"], (
            line
        )


def _set_status(kubectl: Kubectl, namespace: str, name: str, status: dict[str, object]) -> None:
    kubectl.run(
        "patch",
        ORDERS,
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        json.dumps({"status": status}),
    )


def test_get_shows_printer_columns(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "-f", "-", stdin=manifest(order("mirror", namespace)))
    _set_status(
        kubectl,
        namespace,
        "mirror",
        {
            "phase": "Running",
            "message": "copying-images",
            "progress": {"total": 3, "pending": 1, "running": 1, "succeeded": 1, "failed": 0},
        },
    )
    table = kubectl.run("get", "ord", "-n", namespace).splitlines()
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "AGE"]
    assert table[1].split()[:3] == ["mirror", "Running", "1/3"]
    wide = kubectl.run("get", "orders", "-n", namespace, "-o", "wide").splitlines()
    assert wide[0].split() == ["NAME", "PHASE", "PROGRESS", "AGE", "LAST", "SCHEDULE", "MESSAGE"]
    assert wide[1].split()[:3] == ["mirror", "Running", "1/3"]
    assert wide[1].split()[-1] == "copying-images"

    kubectl.run("create", "-f", "-", stdin=manifest(endpoint("hub", namespace)))
    endpoints = kubectl.run("get", "arcep", "-n", namespace).splitlines()
    assert endpoints[0].split() == ["NAME", "TYPE", "URL", "USAGE", "SECRET", "READY", "AGE", "MESSAGE"]
    assert endpoints[1].split()[:4] == ["hub", "oci", "registry.example/mirror", "All"]

    kubectl.run("create", "-f", "-", stdin=manifest(artifact_type("oci", namespace)))
    types = kubectl.run("get", "at", "-n", namespace, "-o", "wide").splitlines()
    assert types[0].split() == ["NAME", "TEMPLATE", "CLUSTER-SCOPE-TEMPLATE", "AGE", "PARAMETERS"]
    assert types[1].split()[:3] == ["oci", "arc-oci", "false"]

    # Structured output is the object itself, with apiVersion/kind on list items.
    items = kubectl.json("get", "orders", "-n", namespace)["items"]
    assert [(i["apiVersion"], i["kind"], i["metadata"]["name"]) for i in items] == [
        (f"{GROUP}/v1alpha1", "Order", "mirror")
    ]


def test_get_watch_shows_a_later_change(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "-f", "-", stdin=manifest(order("watched", namespace)))
    with kubectl_stream(kubectl, "get", ORDERS, "-n", namespace, "-w") as expect:
        expect(lambda line: line.split()[:1] == ["NAME"], 30)
        expect(lambda line: line.split()[:1] == ["watched"], 30)
        _set_status(kubectl, namespace, "watched", {"phase": "Succeeded"})
        line = expect(lambda line: "Succeeded" in line, 30)
        assert line.split()[:2] == ["watched", "Succeeded"]
        kubectl.run("create", "-f", "-", stdin=manifest(order("later", namespace)))
        expect(lambda line: line.split()[:1] == ["later"], 30)


def test_apply_twice_is_unchanged(kubectl: Kubectl, namespace: str) -> None:
    doc = manifest(order("applied", namespace))
    assert kubectl.run("apply", "-f", "-", stdin=doc).strip() == f"order.{GROUP}/applied created"
    assert kubectl.run("apply", "-f", "-", stdin=doc).strip() == f"order.{GROUP}/applied unchanged"
    changed = order("applied", namespace)
    changed["spec"]["artifacts"][0]["spec"]["image"] = "library/alpine:3.21"
    assert kubectl.run("apply", "-f", "-", stdin=manifest(changed)).strip() == (
        f"order.{GROUP}/applied configured"
    )
    obj = kubectl.json("get", ORDERS, "-n", namespace, "applied")
    assert obj["spec"]["artifacts"][0]["spec"]["image"] == "library/alpine:3.21"
    assert obj["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]


def test_server_side_apply_twice_is_unchanged(kubectl: Kubectl, namespace: str) -> None:
    doc = manifest(order("server-applied", namespace))
    kubectl.run("apply", "--server-side", "-f", "-", stdin=doc)
    rv = kubectl.json("get", ORDERS, "-n", namespace, "server-applied")["metadata"]["resourceVersion"]
    kubectl.run("apply", "--server-side", "-f", "-", stdin=doc)
    again = kubectl.json("get", ORDERS, "-n", namespace, "server-applied")
    assert again["metadata"]["resourceVersion"] == rv


def test_edit_with_a_scripted_editor(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    kubectl.run("create", "-f", "-", stdin=manifest(order("edited", namespace)))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's#library/alpine:3.20#library/alpine:3.99#' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    proc = kubectl_proc(
        kubectl, "edit", ORDERS, "edited", "-n", namespace, env={"EDITOR": str(editor), "KUBE_EDITOR": ""}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"order.{GROUP}/edited edited"
    obj = kubectl.json("get", ORDERS, "-n", namespace, "edited", "--show-managed-fields")
    assert obj["spec"]["artifacts"][0]["spec"]["image"] == "library/alpine:3.99"
    assert obj["metadata"]["generation"] == 2
    managers = {m["manager"] for m in obj["metadata"].get("managedFields", [])}
    assert "kubectl-edit" in managers


def test_patch_merge_json_and_strategic(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "-f", "-", stdin=manifest(order("patched", namespace)))
    out = kubectl.run(
        "patch",
        ORDERS,
        "patched",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"metadata":{"labels":{"a":"1"}}}',
    )
    assert out.strip() == f"order.{GROUP}/patched patched"
    kubectl.run(
        "patch",
        ORDERS,
        "patched",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"add","path":"/metadata/labels/b","value":"2"},'
        '{"op":"replace","path":"/spec/artifacts/0/type","value":"helm"}]',
    )
    obj = kubectl.json("get", ORDERS, "-n", namespace, "patched")
    assert obj["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert obj["spec"]["artifacts"][0]["type"] == "helm"

    # Without --type kubectl sends a strategic merge patch.
    out = kubectl.run("patch", ORDERS, "patched", "-n", namespace, "-p", '{"metadata":{"labels":{"c":"3"}}}')
    assert out.strip() == f"order.{GROUP}/patched patched"
    assert kubectl.json("get", ORDERS, "-n", namespace, "patched")["metadata"]["labels"]["c"] == "3"

    # A failed JSON-patch test is 422 Invalid, as kube-apiserver answers it.
    failed = kubectl_proc(
        kubectl,
        "patch",
        ORDERS,
        "patched",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/metadata/labels/a","value":"nope"}]',
    )
    assert failed.returncode != 0
    assert "(Invalid)" in failed.stderr or "is invalid" in failed.stderr, failed.stderr


def test_delete_waits_until_gone(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "-f", "-", stdin=manifest(order("doomed", namespace)))
    out = kubectl.run("delete", ORDERS, "doomed", "-n", namespace, "--timeout=60s", timeout=90)
    assert out.strip() == f'order.{GROUP} "doomed" deleted'
    gone = kubectl_proc(kubectl, "get", ORDERS, "doomed", "-n", namespace)
    assert gone.returncode != 0
    assert f'orders.{GROUP} "doomed" not found' in gone.stderr


def test_delete_with_a_finalizer_stays_terminating(kubectl: Kubectl, namespace: str) -> None:
    held = order("held", namespace, finalizers=["example.com/hold"])
    kubectl.run("create", "-f", "-", stdin=manifest(held))
    # kubectl's own wait (list+watch by metadata.name) times out: the object is still there.
    proc = kubectl_proc(kubectl, "delete", ORDERS, "held", "-n", namespace, "--timeout=3s", timeout=60)
    assert proc.returncode != 0
    assert "timed out waiting" in proc.stderr, proc.stderr
    obj = kubectl.json("get", ORDERS, "-n", namespace, "held")
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["finalizers"] == ["example.com/hold"]
    # A terminating object takes no new finalizers.
    refused = kubectl_proc(
        kubectl,
        "patch",
        ORDERS,
        "held",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/more"}]',
    )
    assert refused.returncode != 0
    kubectl.run(
        "patch",
        ORDERS,
        "held",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    kubectl.run("wait", "--for=delete", f"{ORDERS}/held", "-n", namespace, "--timeout=60s", timeout=90)
    assert "not found" in kubectl_proc(kubectl, "get", ORDERS, "held", "-n", namespace).stderr


def test_explain_order_spec_artifacts(kubectl: Kubectl) -> None:
    out = kubectl.run("explain", "order.spec.artifacts")
    assert "GROUP:      arc.opendefense.cloud" in out
    assert "KIND:       Order" in out
    assert "VERSION:    v1alpha1" in out
    assert "FIELD: artifacts <[]" in out
    fields = {
        line.split()[0]
        for line in out.split("FIELDS:")[1].splitlines()
        if line.startswith("  ") and line.strip() and not line.startswith("    ")
    }
    assert fields == {"cron", "dstRef", "spec", "srcRef", "type"}
    assert "-required-" in next(line for line in out.splitlines() if line.startswith("  type"))
    recursive = kubectl.run("explain", "orders.spec", "--recursive")
    assert "artifacts" in recursive and "defaults" in recursive


def test_wait_for_condition_ready(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "-f", "-", stdin=manifest(order("awaited", namespace)))
    with kubectl_stream(
        kubectl, "wait", "--for=condition=Ready", "order/awaited", "-n", namespace, "--timeout=60s"
    ) as wait:
        _set_status(
            kubectl,
            namespace,
            "awaited",
            {
                "phase": "Succeeded",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Succeeded",
                        "message": "all artifacts succeeded",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                        "observedGeneration": 1,
                    }
                ],
            },
        )
        line = wait(lambda line: "condition met" in line or "error" in line.lower(), 60)
    assert line.strip() == f"order.{GROUP}/awaited condition met"


def test_cluster_scoped_get_and_delete(kubectl: Kubectl) -> None:
    name = unique("cat")
    kubectl.run("create", "-f", "-", stdin=manifest(cluster_artifact_type(name)))
    table = kubectl.run("get", "cat", name).splitlines()
    assert table[0].split() == ["NAME", "TEMPLATE", "CLUSTER-SCOPE-TEMPLATE", "AGE"]
    assert table[1].split()[:3] == [name, "arc-oci", "true"]
    kubectl.run("delete", "cat", name, "--timeout=60s", timeout=90)
    eventually(
        lambda: "not found" in kubectl_proc(kubectl, "get", "cat", name).stderr,
        timeout=30,
        what="deleted",
    )
