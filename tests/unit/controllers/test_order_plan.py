"""The Order controller's plan, on plain objects: no client, no cache, no event loop (SPEC §4.1)."""

from __future__ import annotations

from typing import Any

import pytest

from api.arc.v1alpha1.types import (
    ArtifactWorkflow,
    ClusterArtifactType,
    Endpoint,
    EndpointStatus,
    Order,
    OrderArtifactWorkflowStatus,
    StartFailureReason,
)
from api.meta import dump
from controllers.order.plan import Children, Plan, plan_order
from controllers.order.resolve import Inputs, Resolved, resolve_order

NS = "ns"
NOW = "2026-03-04T05:06:07Z"
ORDER_UID = "order-uid"


def order(*artifacts: dict[str, Any], status: dict[str, Any] | None = None, **annotations: str) -> Order:
    return Order.model_validate(
        {
            "metadata": {
                "name": "o",
                "namespace": NS,
                "uid": ORDER_UID,
                "generation": 1,
                "annotations": {
                    f"arc.opendefense.cloud/{k.replace('_', '-')}": v for k, v in annotations.items()
                },
            },
            "spec": {
                "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
                "artifacts": list(artifacts) or [{"type": "oci", "spec": {"image": "a"}}],
            },
            "status": status,
        }
    )


def endpoint(name: str, *, generation: int = 1, usage: str = "All", secret: str | None = None) -> Endpoint:
    spec: dict[str, Any] = {"type": "oci", "remoteURL": f"{name}.example", "usage": usage}
    if secret:
        spec["secretRef"] = {"name": secret}
    return Endpoint.model_validate(
        {"metadata": {"name": name, "namespace": NS, "generation": generation}, "spec": spec}
    )


OCI = ClusterArtifactType.model_validate(
    {
        "metadata": {"name": "oci"},
        "spec": {
            "workflowTemplateRef": {"name": "oci-transfer", "clusterScope": True},
            "parameters": [{"name": "scan", "value": "true"}],
            "rules": {"srcTypes": ["oci"], "dstTypes": ["oci"]},
        },
    }
)


def inputs(*endpoints: Endpoint, secrets: dict[str, str] | None = None, types: bool = True) -> Inputs:
    eps = endpoints or (endpoint("src", secret="creds"), endpoint("dst"))
    return Inputs(
        {e.metadata.name or "": e for e in eps},
        {"creds": "c0ffee"} if secrets is None else secrets,
        {"oci": OCI} if types else {},
    )


def child(
    name: str, *, owner: str | None = ORDER_UID, phase: str | None = None, **meta: Any
) -> ArtifactWorkflow:
    refs = (
        [{"apiVersion": "x", "kind": "Order", "name": "o", "uid": owner, "controller": True}] if owner else []
    )
    return ArtifactWorkflow.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": NS,
                "uid": f"{name}-uid",
                "ownerReferences": refs,
                **meta,
            },
            "spec": {"type": "oci"},
            "status": {"phase": phase, "message": f"{phase} message"} if phase else None,
        }
    )


def plan(o: Order, i: Inputs, *children: ArtifactWorkflow, **kwargs: Any) -> tuple[Resolved, Plan]:
    resolved = resolve_order(o, i)
    owned = {c.metadata.name or "": c for c in children if c.metadata.owner_references}
    named = {c.metadata.name or "": c for c in children if not c.metadata.owner_references}
    return resolved, plan_order(o, resolved, Children(owned, named), now=NOW, **kwargs)


def status_after(o: Order, p: Plan) -> Order:
    """The Order as the next reconcile sees it once the plan's status was written."""
    return o.model_copy(update={"status": p.status})


def reasons(p: Plan) -> list[str]:
    return [e.reason for e in p.events]


def test_a_new_order_creates_one_artifact_workflow_per_artifact_with_owner_labels_and_annotations() -> None:
    o = order({"type": "oci", "spec": {"image": "a"}}, {"type": "oci", "spec": {"image": "b"}})
    resolved, p = plan(o, inputs(), workflow_finalizers=["fin"], trace_id="ab" * 16)
    assert [c.name for c in p.creates] == [a.name for a in resolved.artifacts]
    assert [c.index for c in p.creates] == [0, 1] and not any(c.recreated for c in p.creates)
    body = p.creates[0].body
    assert body["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "arc.opendefense.cloud/v1alpha1",
            "kind": "Order",
            "name": "o",
            "uid": ORDER_UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert body["metadata"]["labels"] == {
        "arc.opendefense.cloud/order": "o",
        "arc.opendefense.cloud/artifact-type": "oci",
    }
    assert body["metadata"]["annotations"] == {
        "arc.opendefense.cloud/artifact-index": "0",
        "arc.opendefense.cloud/src-endpoint": "src",
        "arc.opendefense.cloud/dst-endpoint": "dst",
        "arc.opendefense.cloud/trace-id": "ab" * 16,
    }
    assert body["metadata"]["finalizers"] == ["fin"]
    assert body["spec"]["srcSecretRef"] == {"name": "creds"} and body["spec"]["dstSecretRef"] == {"name": ""}
    assert body["spec"]["workflowTemplateRef"] == {"name": "oci-transfer", "clusterScope": True}
    assert p.status_changed and p.status.phase == "Pending" and p.status.observed_generation == 1
    assert {e.phase for e in (p.status.artifact_workflows or {}).values()} == {"Pending"}
    assert p.status.conditions is not None and p.status.conditions[0].last_transition_time == NOW
    assert p.events == [] and p.deletes == [] and p.adopts == []


def test_planning_twice_in_a_row_writes_nothing() -> None:
    o = order()
    _, first = plan(o, inputs())
    (create,) = first.creates
    created = child(create.name)
    _, second = plan(status_after(o, first), inputs(), created)
    assert second.creates == [] and not second.status_changed and second.events == []


@pytest.mark.parametrize(
    ("endpoints", "secrets", "types", "reason", "message"),
    [
        ((endpoint("dst"),), None, True, StartFailureReason.ENDPOINT_NOT_FOUND, 'endpoint "src" not found'),
        (None, {}, True, StartFailureReason.SECRET_NOT_FOUND, 'secret "creds" not found'),
        (None, None, False, StartFailureReason.ARTIFACT_TYPE_NOT_FOUND, 'artifact type "oci" not found'),
        (
            (endpoint("src", usage="PushOnly"), endpoint("dst")),
            None,
            True,
            StartFailureReason.ENDPOINT_USAGE_NOT_ALLOWED,
            'endpoint "src" has usage PushOnly and cannot be a source',
        ),
        (
            (endpoint("src"), endpoint("dst", usage="PullOnly")),
            None,
            True,
            StartFailureReason.ENDPOINT_USAGE_NOT_ALLOWED,
            'endpoint "dst" has usage PullOnly and cannot be a destination',
        ),
    ],
)
def test_an_artifact_that_cannot_start_fails_with_its_reason_and_spec_message(
    endpoints: tuple[Endpoint, ...] | None,
    secrets: dict[str, str] | None,
    types: bool,
    reason: StartFailureReason,
    message: str,
) -> None:
    i = inputs(*(endpoints or ()), secrets=secrets, types=types)
    _, p = plan(order(), i)
    (entry,) = (p.status.artifact_workflows or {}).values()
    assert (entry.phase, entry.reason, entry.message) == ("Failed", reason, message)
    assert p.creates == [] and reasons(p) == ["ArtifactFailed"]
    assert (
        dump(p.status)["artifactWorkflows"][next(iter(p.status.artifact_workflows or {}))]["reason"] == reason
    )


def test_one_failing_artifact_does_not_block_its_siblings() -> None:
    o = order({"type": "oci", "spec": {"image": "a"}}, {"type": "nope", "spec": {"image": "b"}})
    _, p = plan(o, inputs())
    assert [c.index for c in p.creates] == [0]
    assert p.status.phase == "Failed" and p.status.progress is not None and p.status.progress.failed == 1


def test_a_start_failure_is_decided_by_its_reason_not_by_its_message() -> None:
    """Rewording SPEC's messages changes nothing: an entry that could not start is retried by itself
    whatever its message says, and a workflow failure that reads like one is kept."""
    o = order()
    (art,) = resolve_order(o, inputs()).artifacts
    reworded = OrderArtifactWorkflowStatus(
        artifact_index=0,
        name=art.name,
        phase="Failed",
        message="die Endpoint-Definition fehlt",
        reason=StartFailureReason.ARTIFACT_TYPE_NOT_FOUND,
    )
    _, p = plan(order(status={"artifactWorkflows": {art.hash: dump(reworded)}}), inputs())
    assert [c.name for c in p.creates] == [art.name] and not p.creates[0].recreated

    looks_like_one = OrderArtifactWorkflowStatus(
        artifact_index=0, name=art.name, phase="Failed", message='endpoint "src" not found'
    )
    _, p = plan(order(status={"artifactWorkflows": {art.hash: dump(looks_like_one)}}), inputs())
    assert p.creates == [], "a finished artifact is not re-run, whatever its message"
    assert (p.status.artifact_workflows or {})[art.hash] == looks_like_one


def test_existing_children_are_mirrored_adopted_or_waited_for() -> None:
    o = order({"type": "oci", "spec": {"image": "a"}}, {"type": "oci", "spec": {"image": "b"}})
    a, b = resolve_order(o, inputs()).artifacts
    _, p = plan(o, inputs(), child(a.name, phase="Running"), child(b.name, owner=None, phase="Succeeded"))
    assert [aw.metadata.name for aw in p.adopts] == [b.name] and p.creates == []
    entries = p.status.artifact_workflows or {}
    assert (entries[a.hash].phase, entries[b.hash].phase, p.status.phase) == (
        "Running",
        "Succeeded",
        "Running",
    )

    _, p = plan(o, inputs(), child(a.name, owner="someone-else"))
    assert (p.status.artifact_workflows or {})[a.hash].message == (
        f"waiting for ArtifactWorkflow {a.name} of another owner to go away"
    )
    assert p.requeue_after == 5.0 and [c.name for c in p.creates] == [b.name]


def test_children_no_longer_desired_are_deleted_and_finished_results_kept() -> None:
    o = order()
    (art,) = resolve_order(o, inputs()).artifacts
    done = OrderArtifactWorkflowStatus(artifact_index=0, name=art.name, phase="Succeeded")
    stale = child("o-0000000000000000", phase="Succeeded")
    deleting = child("o-1111111111111111", deletionTimestamp=NOW)
    _, p = plan(order(status={"artifactWorkflows": {art.hash: dump(done)}}), inputs(), stale, deleting)
    assert [(d.name, d.uid, d.why) for d in p.deletes] == [
        ("o-0000000000000000", "o-0000000000000000-uid", "no longer desired by the Order")
    ]
    assert p.creates == [], "its ArtifactWorkflow is gone, the result stays"
    assert p.status.phase == "Succeeded" and reasons(p) == ["Succeeded"]


def test_retry_failed_at_deletes_only_the_artifacts_that_failed_while_running() -> None:
    o = order({"type": "oci", "spec": {"image": "a"}}, {"type": "nope", "spec": {"image": "b"}})
    ran, cannot = resolve_order(o, inputs()).artifacts
    failed = OrderArtifactWorkflowStatus(artifact_index=0, name=ran.name, phase="Failed", message="step copy")
    not_started = OrderArtifactWorkflowStatus(
        artifact_index=1,
        name=cannot.name,
        phase="Failed",
        message='artifact type "nope" not found',
        reason=StartFailureReason.ARTIFACT_TYPE_NOT_FOUND,
    )
    status = {"artifactWorkflows": {ran.hash: dump(failed), cannot.hash: dump(not_started)}}
    retry = order(*o.spec.model_dump(by_alias=True)["artifacts"], status=status, retry_failed_at="1767323045")
    _, p = plan(retry, inputs(), child(ran.name, phase="Failed"))
    assert [(d.name, d.why) for d in p.deletes] == [(ran.name, "retrying the failed artifact")]
    entries = p.status.artifact_workflows or {}
    assert (entries[ran.hash].phase, entries[ran.hash].message) == ("Pending", "retrying")
    assert entries[cannot.hash].reason == StartFailureReason.ARTIFACT_TYPE_NOT_FOUND
    assert p.status.last_retry_at == "2026-01-02T03:04:05Z" and "Rerun" in reasons(p)

    _, again = plan(status_after(retry, p), inputs(), child(ran.name, phase="Failed"))
    assert again.deletes == [], "a handled retry-failed-at is not handled twice"


def test_force_at_gives_every_artifact_a_new_name_and_invalid_values_are_reported() -> None:
    o = order()
    (before,) = resolve_order(o, inputs()).artifacts
    forced, p = plan(
        order(force_at="2026-02-01T00:00:00.5Z"), inputs(), child(before.name, phase="Succeeded")
    )
    (after,) = forced.artifacts
    assert after.name != before.name and [c.name for c in p.creates] == [after.name]
    assert [d.name for d in p.deletes] == [before.name]
    assert p.status.last_force_at == "2026-02-01T00:00:00.500000Z" and reasons(p) == ["Rerun"]

    invalid, p = plan(order(force_at="garbage"), inputs())
    assert invalid.invalid_annotations == (("arc.opendefense.cloud/force-at", "garbage"),)
    assert invalid.force_at is None and p.status.last_force_at is None


def test_an_endpoint_edit_reruns_its_artifacts_with_one_event() -> None:
    o = order()
    _, first = plan(o, inputs())
    (create,) = first.creates
    done = status_after(o, first)
    edited = inputs(endpoint("src", generation=2, secret="creds"), endpoint("dst"))
    resolved, p = plan(done, edited, child(create.name, phase="Succeeded"))
    (art,) = resolved.artifacts
    assert [c.name for c in p.creates] == [art.name] and [d.name for d in p.deletes] == [create.name]
    assert reasons(p) == ["Rerun"]
    assert (
        p.events[0].message
        == f"Endpoint or Secret changed: re-running 1 artifact: #0 ({art.name} replaces {create.name})"
    )


def test_an_artifacts_entry_gets_the_destination_digest_and_the_verifying_key() -> None:
    digest, key = "sha256:" + "a" * 64, "ConfigMap/ns/keys[cosign.pub] sha256:" + "b" * 64
    o = order()
    (a,) = resolve_order(o, inputs()).artifacts
    done = child(a.name, phase="Succeeded")
    assert done.status is not None
    done.status = done.status.model_validate(
        dump(done.status)
        | {
            "provenance": {
                "source": {"reference": "src.example/a:latest", "digest": digest},
                "destination": {"reference": "dst.example/a:latest", "digest": digest},
                "signature": {"verified": True, "key": key, "signedDigest": digest},
            }
        }
    )
    _, p = plan(o, inputs(), done)
    entry = (p.status.artifact_workflows or {})[a.hash]
    assert (entry.phase, entry.digest, entry.verified_by) == ("Succeeded", digest, key)
    # Kept once the ArtifactWorkflow is gone (a finished result stays in the Order's status).
    _, p = plan(status_after(o, p), inputs())
    entry = (p.status.artifact_workflows or {})[a.hash]
    assert (entry.digest, entry.verified_by) == (digest, key)


def test_with_the_argo_ui_an_artifacts_entry_links_its_workflow() -> None:
    o = order()
    (a,) = resolve_order(o, inputs()).artifacts
    running = child(a.name, phase="Running")
    _, p = plan(o, inputs(), running)
    assert (p.status.artifact_workflows or {})[a.hash].workflow_url is None  # no base URL: no link
    _, p = plan(o, inputs(), running, argo_ui_base_url="https://argo.example/ui/")
    entry = (p.status.artifact_workflows or {})[a.hash]
    assert entry.workflow_url == f"https://argo.example/ui/workflows/{o.metadata.namespace}/{a.name}"
    assert dump(entry)["workflowURL"] == entry.workflow_url
    # A finished entry keeps its last run's link once the ArtifactWorkflow is gone, as it keeps its digest.
    done = child(a.name, phase="Succeeded")
    _, p = plan(o, inputs(), done, argo_ui_base_url="https://argo.example")
    _, p = plan(status_after(o, p), inputs(), argo_ui_base_url="https://argo.example")
    assert (p.status.artifact_workflows or {})[a.hash].workflow_url == entry.workflow_url.replace("/ui", "")


def test_with_the_argo_ui_the_reconcile_after_the_creates_writes_no_status() -> None:
    """The creating reconcile links each Workflow already; the next one, which finds the ArtifactWorkflows,
    computes the same status (it used to add the links: a second status write and reconcile per Order)."""
    base = "https://argo.example"
    o = order({"type": "oci", "spec": {"image": "a"}}, {"type": "oci", "spec": {"image": "b"}})
    resolved, p = plan(o, inputs(), argo_ui_base_url=base)
    assert len(p.creates) == 2 and p.status_changed
    created = [child(a.name) for a in resolved.artifacts]
    _, again = plan(status_after(o, p), inputs(), *created, argo_ui_base_url=base)
    assert not again.creates
    assert not again.status_changed, (dump(p.status), dump(again.status))


def test_the_types_cosign_key_becomes_the_signature_gates_parameters_and_an_order_cannot_override_it() -> (
    None
):
    pem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"
    gated = ClusterArtifactType.model_validate(
        dump(OCI)
        | {
            "spec": dump(OCI)["spec"]
            | {
                "verification": {"cosign": {"publicKey": pem}},
                "parameters": [{"name": "verifyCosignPublicKey", "value": "the type's own parameter loses"}],
            }
        }
    )
    o = order({"type": "oci", "spec": {"image": "a", "verifyCosignPublicKey": "", "verify": {"cosign": "x"}}})
    i = inputs()
    i = Inputs(i.endpoints, i.secret_hashes, {"oci": gated})
    (a,) = resolve_order(o, i).artifacts
    assert a.spec is not None
    params = {p["name"]: p["value"] for p in a.spec["parameters"]}
    assert params["verifyCosignPublicKey"] == pem
    assert params["verifyCosignKeyIdentity"] == "ClusterArtifactType/oci"
    # The Order's spec only ever makes spec* names.
    assert params["specVerifyCosignPublicKey"] == "" and params["specVerifyCosign"] == "x"
    # Without verification nothing is added.
    (plain,) = resolve_order(o, inputs()).artifacts
    assert plain.spec is not None
    assert not {p["name"] for p in plain.spec["parameters"]} & {
        "verifyCosignPublicKey",
        "verifyCosignKeyIdentity",
    }


def not_ready(e: Endpoint, message: str, *, status: str = "False", generation: int = 1) -> Endpoint:
    condition = {
        "type": "Ready",
        "status": status,
        "reason": "Unauthorized",
        "message": message,
        "observedGeneration": generation,
    }
    return e.model_copy(update={"status": EndpointStatus.model_validate({"conditions": [condition]})})


def test_an_artifact_on_an_endpoint_that_is_not_ready_says_so() -> None:
    o = order({"type": "oci", "spec": {"image": "a"}}, {"type": "oci", "spec": {"image": "b"}})
    broken = not_ready(endpoint("src", secret="creds"), "https://src.example rejected the credentials (401)")
    i = inputs(broken, endpoint("dst"))
    a, b = resolve_order(o, i).artifacts
    note = 'endpoint "src" is not Ready: https://src.example rejected the credentials (401)'
    assert a.endpoint_notes == (note,)
    # a new artifact (Pending, created anyway: the probe may see less than the transfer) and a running one
    _, p = plan(o, i, child(b.name, phase="Running"))
    entries = p.status.artifact_workflows or {}
    assert [c.name for c in p.creates] == [a.name]
    assert entries[a.hash].message == note
    assert entries[b.hash].message == f"Running message; {note}"
    # planning again with that status changes nothing (the note is not repeated)
    _, again = plan(status_after(o, p), i, child(b.name, phase="Running"), child(a.name, phase="Pending"))
    assert (again.status.artifact_workflows or {})[b.hash].message == f"Running message; {note}"
    # succeeded: no note; the Endpoint Ready again, or its condition about an older generation: no note
    _, p = plan(o, i, child(a.name, phase="Succeeded"), child(b.name, phase="Failed"))
    entries = p.status.artifact_workflows or {}
    assert entries[a.hash].message == "Succeeded message"
    assert entries[b.hash].message == f"Failed message; {note}"
    for fine in (
        not_ready(endpoint("src", secret="creds"), "ok", status="True"),
        not_ready(endpoint("src", secret="creds", generation=2), "old news", generation=1),
        endpoint("src", secret="creds"),
    ):
        assert resolve_order(o, inputs(fine, endpoint("dst"))).artifacts[0].endpoint_notes == ()


def test_a_start_failure_keeps_its_spec_message_alone() -> None:
    o = order()
    broken = not_ready(endpoint("src", secret="creds"), "down")
    _, p = plan(o, inputs(broken, endpoint("dst"), types=False))
    (entry,) = (p.status.artifact_workflows or {}).values()
    assert (entry.phase, entry.message) == ("Failed", 'artifact type "oci" not found')
