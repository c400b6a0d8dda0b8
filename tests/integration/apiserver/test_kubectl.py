"""The real kubectl against the standalone ARC API server (issue 5, kubectl scenarios).

Each test works in its own namespace; waits poll with a deadline and every kubectl run has a timeout.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from api.arc.v1alpha1.types import OrderArtifact
from tests.integration.apiserver.conftest import API_VERSION, Kubectl, order, wait_for

pytestmark = pytest.mark.integration

WAIT = 20.0


def set_status(kubectl: Kubectl, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Write ``status`` through the /status subresource (what the controllers do)."""
    kubectl.run(
        "patch",
        "order",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        orjson.dumps({"status": status}).decode(),
    )


def rows(output: str) -> list[list[str]]:
    """The whitespace-split rows of kubectl's table output, header first."""
    return [line.split() for line in output.strip().splitlines() if line.strip()]


def names(kubectl: Kubectl, *args: str) -> list[str]:
    out = kubectl.run("get", *args, "-o", "name").stdout
    return sorted(line.split("/", 1)[1] for line in out.split())


def get_or_none(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    out = kubectl.run("get", "order", name, "-n", namespace, "--ignore-not-found", "-o", "json").stdout
    return orjson.loads(out) if out.strip() else None


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_api_resources_short_names_and_categories(kubectl: Kubectl, namespace: str) -> None:
    table = rows(kubectl.run("api-resources", "--api-group=arc.opendefense.cloud", "-o", "wide").stdout)
    header = table[0]
    assert header[:5] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert header[-1] == "CATEGORIES"
    by_name = {row[0]: row for row in table[1:]}
    expected = {
        "orders": ("ord", "true", "Order"),
        "artifactworkflows": ("aw", "true", "ArtifactWorkflow"),
        "endpoints": ("ep-arc,arcep", "true", "Endpoint"),
        "artifacttypes": ("at", "true", "ArtifactType"),
        "clusterartifacttypes": ("cat", "false", "ClusterArtifactType"),
    }
    assert set(by_name) == set(expected)
    for plural, (short, namespaced, kind) in expected.items():
        row = by_name[plural]
        assert row[1] == short, row
        assert row[2] == API_VERSION
        assert row[3] == namespaced
        assert row[4] == kind
        assert set(row[5].split(",")) == {
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        }
        assert row[6] == "arc"

    # Every short name resolves, and the `arc` category lists ARC objects (and nothing is in `all`).
    for short in ("ord", "aw", "ep-arc", "arcep", "at"):
        assert kubectl.run("get", short, "-n", namespace).stderr.startswith("No resources found")
    kubectl.run("get", "cat")
    kubectl.apply(order("cat-probe", namespace))
    listed = kubectl.run("get", "arc", "-n", namespace, "-o", "name").stdout.split()
    # Cluster-scoped ClusterArtifactTypes of other tests show up too; of this namespace, only the Order.
    assert [x for x in listed if not x.startswith("clusterartifacttype.")] == [
        "order.arc.opendefense.cloud/cat-probe"
    ]


def test_get_printer_columns_and_wide(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(order("shown", namespace))
    table = rows(kubectl.run("get", "orders", "-n", namespace).stdout)
    assert table[0] == ["NAME", "PHASE", "PROGRESS", "AGE"]
    assert table[1][0] == "shown"
    assert len(table[1]) == 2  # name and age: no phase and no progress yet

    set_status(
        kubectl,
        namespace,
        "shown",
        {
            "phase": "Running",
            "message": "copying",
            "progress": {"total": 2, "pending": 0, "running": 2, "succeeded": 0, "failed": 0},
        },
    )
    table = rows(kubectl.run("get", "ord", "-n", namespace).stdout)
    assert table[0] == ["NAME", "PHASE", "PROGRESS", "AGE"]
    assert table[1][:3] == ["shown", "Running", "0/2"]
    assert re.fullmatch(r"\d+s", table[1][3])

    wide = rows(kubectl.run("get", "ord", "shown", "-n", namespace, "-o", "wide").stdout)
    assert wide[0] == ["NAME", "PHASE", "PROGRESS", "AGE", "LAST", "SCHEDULE", "MESSAGE"]
    assert wide[1][:3] == ["shown", "Running", "0/2"]
    assert wide[1][4:] == ["copying"]  # not scheduled: LAST SCHEDULE is blank

    kubectl.apply(
        {
            "apiVersion": API_VERSION,
            "kind": "Endpoint",
            "metadata": {"name": "registry", "namespace": namespace},
            "spec": {"type": "oci", "remoteURL": "registry.example/mirror", "secretRef": {"name": "creds"}},
        }
    )
    table = rows(kubectl.run("get", "ep-arc", "-n", namespace).stdout)
    assert table[0] == ["NAME", "TYPE", "URL", "USAGE", "SECRET", "READY", "AGE", "MESSAGE"]
    assert table[1][:5] == ["registry", "oci", "registry.example/mirror", "All", "creds"]


def test_get_watch_shows_later_change(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    kubectl.apply(order("watched", namespace))
    output = tmp_path / "watch.out"
    proc = kubectl.start("get", "ord", "-n", namespace, "-w", "--request-timeout=60s", output=output)
    try:
        wait_for(lambda: "watched" in output.read_text(), timeout=WAIT, what="the initial row")
        set_status(kubectl, namespace, "watched", {"phase": "Succeeded"})
        wait_for(
            lambda: any(row[:2] == ["watched", "Succeeded"] for row in rows(output.read_text())),
            timeout=WAIT,
            what="the watched change",
        )
        assert proc.poll() is None, output.read_text()
    finally:
        stop(proc)
    table = rows(output.read_text())
    assert table[0] == ["NAME", "PHASE", "PROGRESS", "AGE"]
    assert table[1][0] == "watched"


def test_apply_twice_is_unchanged(kubectl: Kubectl, namespace: str) -> None:
    obj = order("applied", namespace, labels={"app": "demo"})
    assert kubectl.apply(obj).strip() == "order.arc.opendefense.cloud/applied created"
    first = kubectl.get_json("order", "applied", "-n", namespace)
    assert kubectl.apply(obj).strip() == "order.arc.opendefense.cloud/applied unchanged"
    second = kubectl.get_json("order", "applied", "-n", namespace)
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in second["metadata"]["annotations"]

    # A changed manifest is a three-way merge patch: generation goes up, the label is removed.
    changed = order("applied", namespace, images=("a", "c"))
    assert kubectl.apply(changed).strip() == "order.arc.opendefense.cloud/applied configured"
    third = kubectl.get_json("order", "applied", "-n", namespace)
    assert third["metadata"]["generation"] == 2
    assert "labels" not in third["metadata"] or "app" not in third["metadata"]["labels"]
    assert [a["spec"]["image"] for a in third["spec"]["artifacts"]] == ["a", "c"]


def test_edit_with_scripted_editor(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    kubectl.apply(order("edited", namespace, images=("old-image", "b")))
    env = {"EDITOR": "sed -i s/old-image/new-image/", "TMPDIR": str(tmp_path)}
    result = kubectl.run("edit", "order", "edited", "-n", namespace, env=env)
    assert result.stdout.strip() == "order.arc.opendefense.cloud/edited edited"
    obj = kubectl.get_json("order", "edited", "-n", namespace)
    assert [a["spec"]["image"] for a in obj["spec"]["artifacts"]] == ["new-image", "b"]
    assert obj["metadata"]["generation"] == 2

    # An edit that makes the object invalid is refused with the server's 422 causes and stores nothing;
    # kubectl keeps the attempt, headed by the server's errors, in a file.
    env = {"EDITOR": 'sed -i s/type:\\ oci/type:\\ \\"\\"/', "TMPDIR": str(tmp_path)}
    result = kubectl.run("edit", "order", "edited", "-n", namespace, env=env, check=False)
    assert result.returncode != 0
    assert 'error: orders.arc.opendefense.cloud "edited" is invalid' in result.stderr
    match = re.search(r'A copy of your changes has been stored to "([^"]+)"', result.stderr)
    assert match is not None, result.stderr
    header = Path(match.group(1)).read_text()
    assert "# * spec.artifacts[0].type: Required value" in header
    assert "# * spec.artifacts[1].type: Required value" in header
    assert kubectl.get_json("order", "edited", "-n", namespace) == obj


def test_patch_merge_and_json(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(order("patched", namespace))
    out = kubectl.run(
        "patch", "ord", "patched", "-n", namespace, "--type", "merge", "-p", '{"spec":{"queueName":"q1"}}'
    )
    assert out.stdout.strip() == "order.arc.opendefense.cloud/patched patched"
    out = kubectl.run(
        "patch",
        "ord",
        "patched",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/artifacts/1/spec/image","value":"z"},'
        '{"op":"add","path":"/metadata/labels","value":{"tier":"gold"}}]',
    )
    assert out.stdout.strip() == "order.arc.opendefense.cloud/patched patched"
    obj = kubectl.get_json("order", "patched", "-n", namespace)
    assert obj["spec"]["queueName"] == "q1"
    assert obj["spec"]["artifacts"][1]["spec"]["image"] == "z"
    assert obj["metadata"]["labels"] == {"tier": "gold"}
    assert obj["metadata"]["generation"] == 3

    # A failing JSON patch `test` is a 422 and changes nothing.
    failed = kubectl.run(
        "patch",
        "ord",
        "patched",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/queueName","value":"other"},'
        '{"op":"replace","path":"/spec/queueName","value":"q2"}]',
        check=False,
    )
    assert failed.returncode != 0
    # kube's words for a JSON patch that does not apply (NewGenericServerResponse 422, no causes).
    assert failed.stderr.strip() == (
        "The request is invalid: the server rejected our request due to an error in our request"
    )
    assert kubectl.get_json("order", "patched", "-n", namespace) == obj


def test_patch_without_type_is_a_strategic_merge_patch(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(order("strategic", namespace))
    result = kubectl.run("patch", "ord", "strategic", "-n", namespace, "-p", '{"spec":{"queueName":"q"}}')
    assert result.stdout.strip() == "order.arc.opendefense.cloud/strategic patched"
    assert kubectl.get_json("order", "strategic", "-n", namespace)["spec"]["queueName"] == "q"


def test_delete_waits_until_gone(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    kubectl.apply(order("plain", namespace))
    out = kubectl.run("delete", "order", "plain", "-n", namespace)
    assert out.stdout.strip() == 'order.arc.opendefense.cloud "plain" deleted'
    assert get_or_none(kubectl, namespace, "plain") is None

    # With a finalizer the (waiting) delete only returns once the object is really gone.
    kubectl.apply(order("held", namespace, finalizers=["arc.opendefense.cloud/test"]))
    output = tmp_path / "delete.out"
    proc = kubectl.start("delete", "order", "held", "-n", namespace, "--timeout=60s", output=output)
    try:
        wait_for(
            lambda: bool(
                (get_or_none(kubectl, namespace, "held") or {}).get("metadata", {}).get("deletionTimestamp")
            ),
            timeout=WAIT,
            what="deletionTimestamp",
        )
        assert 'order.arc.opendefense.cloud "held" deleted' in output.read_text()
        assert proc.poll() is None, "kubectl delete returned while the object still exists"
        kubectl.run(
            "patch",
            "ord",
            "held",
            "-n",
            namespace,
            "--type=json",
            "-p",
            '[{"op":"remove","path":"/metadata/finalizers"}]',
        )
        assert proc.wait(timeout=WAIT) == 0, output.read_text()
    finally:
        stop(proc)
    assert get_or_none(kubectl, namespace, "held") is None


def test_delete_with_finalizer_stays_terminating(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(order("final", namespace, finalizers=["arc.opendefense.cloud/test"]))
    out = kubectl.run("delete", "order", "final", "-n", namespace, "--wait=false")
    assert out.stdout.strip() == 'order.arc.opendefense.cloud "final" deleted'

    obj = kubectl.get_json("order", "final", "-n", namespace)
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["finalizers"] == ["arc.opendefense.cloud/test"]
    assert names(kubectl, "ord", "-n", namespace) == ["final"]
    # A second delete changes nothing: still terminating.
    kubectl.run("delete", "order", "final", "-n", namespace, "--wait=false")
    again = kubectl.get_json("order", "final", "-n", namespace)
    assert again["metadata"]["deletionTimestamp"] == obj["metadata"]["deletionTimestamp"]

    kubectl.run(
        "patch",
        "ord",
        "final",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers/0"}]',
    )
    assert get_or_none(kubectl, namespace, "final") is None
    assert names(kubectl, "ord", "-n", namespace) == []


def test_explain_order_spec_artifacts(kubectl: Kubectl) -> None:
    out = kubectl.run("explain", "order.spec.artifacts").stdout
    flat = " ".join(out.split())
    assert "KIND: Order" in flat
    assert "VERSION: v1alpha1" in flat
    assert "FIELD: artifacts <[]OrderArtifact>" in flat
    fields = OrderArtifact.model_fields
    for name, info in fields.items():
        wire = info.alias or name
        assert re.search(rf"\b{wire}\s+<", out), f"field {wire} missing:\n{out}"
        assert info.description is not None
        assert " ".join(info.description.split()) in flat, f"description of {wire} missing:\n{out}"
    assert re.search(r"\btype\s+<string> -required-", out)


def test_label_and_field_selectors(kubectl: Kubectl, namespace: str) -> None:
    labelled = (("gold-1", "gold", "Running"), ("gold-2", "gold", "Failed"), ("silver", "silver", None))
    for name, tier, phase in labelled:
        kubectl.apply(order(name, namespace, labels={"tier": tier}))
        if phase:
            set_status(kubectl, namespace, name, {"phase": phase})
    ns = ("-n", namespace)
    assert names(kubectl, "ord", *ns, "-l", "tier=gold") == ["gold-1", "gold-2"]
    assert names(kubectl, "ord", *ns, "-l", "tier in (silver,bronze)") == ["silver"]
    assert names(kubectl, "ord", *ns, "-l", "tier!=gold") == ["silver"]
    assert names(kubectl, "ord", *ns, "-l", "!tier") == []
    assert names(kubectl, "ord", *ns, "--field-selector", "status.phase=Running") == ["gold-1"]
    assert names(kubectl, "ord", *ns, "--field-selector", "status.phase!=Running") == ["gold-2", "silver"]
    assert names(kubectl, "ord", *ns, "--field-selector", "metadata.name=silver") == ["silver"]
    assert names(kubectl, "ord", *ns, "-l", "tier=gold", "--field-selector", "status.phase=Failed") == [
        "gold-2"
    ]
    assert names(kubectl, "ord", "-A", "--field-selector", f"metadata.namespace={namespace}") == [
        "gold-1",
        "gold-2",
        "silver",
    ]
    bad = kubectl.run("get", "ord", *ns, "--field-selector", "spec.queueName=x", check=False)
    assert bad.returncode != 0
    assert "field label not supported: spec.queueName" in bad.stderr


def test_chunk_size_pages_through_the_list(kubectl: Kubectl, namespace: str) -> None:
    expected = [f"chunk-{i}" for i in range(7)]
    for name in expected:
        kubectl.apply(order(name, namespace))
    result = kubectl.run("get", "ord", "-n", namespace, "--chunk-size=2", "-o", "name", "-v=6")
    assert sorted(line.split("/", 1)[1] for line in result.stdout.split()) == expected
    requests = re.findall(r"GET https://\S+/orders\?(\S+) 200 OK", result.stderr)
    assert len(requests) == 4, result.stderr
    assert "continue=" not in requests[0]
    assert all("limit=2" in query for query in requests)
    assert all("continue=" in query for query in requests[1:])

    table = rows(kubectl.run("get", "ord", "-n", namespace, "--chunk-size=3").stdout)
    assert table[0] == ["NAME", "PHASE", "PROGRESS", "AGE"]
    assert [row[0] for row in table[1:]] == expected


def test_wait_for_condition_ready(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    kubectl.apply(order("awaited", namespace))
    output = tmp_path / "wait.out"
    proc = kubectl.start(
        "wait", "--for=condition=Ready", "order/awaited", "-n", namespace, "--timeout=60s", output=output
    )
    try:
        set_status(
            kubectl,
            namespace,
            "awaited",
            {
                "phase": "Running",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "Running",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ],
            },
        )
        assert proc.poll() is None, output.read_text()
        set_status(
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
                        "message": "all artifacts copied",
                        "lastTransitionTime": "2026-01-01T00:00:01Z",
                    }
                ],
            },
        )
        assert proc.wait(timeout=WAIT) == 0, output.read_text()
    finally:
        stop(proc)
    assert output.read_text().strip() == "order.arc.opendefense.cloud/awaited condition met"
