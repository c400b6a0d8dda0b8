"""status.provenance from Argo Workflow status documents with outputs (Argo v3.6.5's NodeStatus shape).

The documents are what the workflow-controller writes for an ``arc-oci`` run: a Steps node, a StepGroup, a
Retry node for ``copy`` whose first Pod attempt failed and whose second succeeded, with the output parameters
the copy step declares (``outputs.parameters[].valueFrom.path``, the value read by the wait container).
"""

from __future__ import annotations

import copy
from typing import Any

from controllers.artifactworkflow.provenance import event_message, provenance_from_workflow
from workflowtemplates.common import OUTPUT_DIR, OUTPUTS

NAME = "o-0123456789abcdef"
SRC = "sha256:" + "a" * 64
AMD = "sha256:" + "b" * 64
ARM = "sha256:" + "c" * 64
SIG = "sha256:" + "d" * 64
KEY = "ConfigMap/team/signing-keys[cosign.pub] sha256:" + "e" * 64


def _params(values: dict[str, str]) -> list[dict[str, Any]]:
    # Every declared output parameter is reported; the ones a step did not write are their default "".
    return [
        {
            "name": name,
            "value": values.get(name, ""),
            "valueFrom": {"path": f"{OUTPUT_DIR}/{name}", "default": ""},
            "description": description,
        }
        for name, description in OUTPUTS
    ]


EVIDENCE = {
    "sourceRef": "src.example:5000/team/hello:1.0",
    "sourceDigest": SRC,
    "destinationRef": "dst.example/mirror/team/hello:1.0",
    "destinationDigest": SRC,
    "platforms": f"linux/amd64 {AMD}\nlinux/arm64/v8 {ARM}\n",
    "signatureKey": KEY,
    "signedDigest": SRC,
    "referrers": f"sig {SIG} dst.example/mirror/team/hello:sha256-{'a' * 64}.sig\n",
    "tools": "skopeo 1.9.3\ncosign v2.2.4\n",
}

FIRST_ATTEMPT = {"sourceRef": EVIDENCE["sourceRef"], "sourceDigest": SRC, "tools": "skopeo 1.9.3\n"}


def workflow(evidence: dict[str, str], *, phase: str = "Succeeded") -> dict[str, Any]:
    """An Argo v3.6.5 Workflow as the workflow-controller leaves it after the run."""
    retry = f"{NAME}-1240954711"
    first, second = f"{NAME}-3581264512", f"{NAME}-3564486893"
    outputs = {"parameters": _params(evidence), "exitCode": "0"}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": NAME, "namespace": "team"},
        "spec": {"workflowTemplateRef": {"name": "arc-oci", "clusterScope": True}},
        "status": {
            "phase": phase,
            "startedAt": "2026-12-04T10:00:00Z",
            "finishedAt": "2026-12-04T10:01:10Z",
            "progress": "2/2",
            "nodes": {
                NAME: {
                    "id": NAME,
                    "name": NAME,
                    "displayName": NAME,
                    "type": "Steps",
                    "templateName": "main",
                    "templateScope": "cluster/arc-oci",
                    "phase": phase,
                    "startedAt": "2026-12-04T10:00:00Z",
                    "finishedAt": "2026-12-04T10:01:10Z",
                    "children": [f"{NAME}-2289312211"],
                    "outboundNodes": [second],
                    "outputs": {"exitCode": "0"},
                },
                f"{NAME}-2289312211": {
                    "id": f"{NAME}-2289312211",
                    "name": f"{NAME}[0]",
                    "displayName": "[0]",
                    "type": "StepGroup",
                    "templateScope": "cluster/arc-oci",
                    "phase": phase,
                    "boundaryID": NAME,
                    "startedAt": "2026-12-04T10:00:00Z",
                    "finishedAt": "2026-12-04T10:01:10Z",
                    "children": [retry],
                },
                retry: {
                    "id": retry,
                    "name": f"{NAME}[0].copy",
                    "displayName": "copy",
                    "type": "Retry",
                    "templateName": "copy",
                    "templateScope": "cluster/arc-oci",
                    "phase": phase,
                    "boundaryID": NAME,
                    "startedAt": "2026-12-04T10:00:00Z",
                    "finishedAt": "2026-12-04T10:01:10Z",
                    "children": [first, second],
                    "outputs": copy.deepcopy(outputs),
                },
                first: {
                    "id": first,
                    "name": f"{NAME}[0].copy(0)",
                    "displayName": "copy(0)",
                    "type": "Pod",
                    "templateName": "copy",
                    "templateScope": "cluster/arc-oci",
                    "phase": "Failed",
                    "boundaryID": NAME,
                    "message": "Error (exit code 1)",
                    "startedAt": "2026-12-04T10:00:00Z",
                    "finishedAt": "2026-12-04T10:00:20Z",
                    "hostNodeName": "node-1",
                    # The first attempt resolved the tag, then the registry went away.
                    "outputs": {"parameters": _params(FIRST_ATTEMPT), "exitCode": "1"},
                },
                second: {
                    "id": second,
                    "name": f"{NAME}[0].copy(1)",
                    "displayName": "copy(1)",
                    "type": "Pod",
                    "templateName": "copy",
                    "templateScope": "cluster/arc-oci",
                    "phase": phase,
                    "boundaryID": NAME,
                    "startedAt": "2026-12-04T10:00:30Z",
                    "finishedAt": "2026-12-04T10:01:10Z",
                    "hostNodeName": "node-1",
                    "resourcesDuration": {"cpu": 10, "memory": 10},
                    "outputs": copy.deepcopy(outputs),
                },
            },
            "taskResultsCompletionStatus": {first: True, second: True},
        },
    }


def test_every_field_of_the_evidence_reaches_provenance() -> None:
    prov = provenance_from_workflow(workflow(EVIDENCE))
    assert prov is not None
    assert prov.source is not None and prov.destination is not None
    assert (prov.source.reference, prov.source.digest) == ("src.example:5000/team/hello:1.0", SRC)
    assert (prov.destination.reference, prov.destination.digest) == ("dst.example/mirror/team/hello:1.0", SRC)
    assert [(p.platform, p.digest) for p in prov.platforms or []] == [
        ("linux/amd64", AMD),
        ("linux/arm64/v8", ARM),
    ]
    assert prov.signature is not None
    assert (prov.signature.verified, prov.signature.key, prov.signature.signed_digest) == (True, KEY, SRC)
    assert [(r.kind, r.digest) for r in prov.referrers or []] == [("sig", SIG)]
    assert [(t.name, t.version) for t in prov.tools or []] == [("skopeo", "1.9.3"), ("cosign", "v2.2.4")]


def test_the_transferred_event_names_both_digests_and_the_key() -> None:
    prov = provenance_from_workflow(workflow(EVIDENCE))
    assert prov is not None
    assert event_message(prov) == (
        f"Transferred: src.example:5000/team/hello@{SRC} → dst.example/mirror/team/hello@{SRC}, "
        f"signature verified by {KEY}"
    )


def test_without_a_signature_gate_the_event_says_so() -> None:
    evidence = {k: v for k, v in EVIDENCE.items() if k not in ("signatureKey", "signedDigest")}
    prov = provenance_from_workflow(workflow(evidence))
    assert prov is not None and prov.signature is None
    message = event_message(prov)
    assert message is not None and message.endswith("signature not verified (the type requires none)")


def test_a_failed_gate_keeps_what_was_resolved_and_no_signature() -> None:
    # The signature gate failed: the step resolved the digest, wrote no destination and no signature.
    evidence = {"sourceRef": EVIDENCE["sourceRef"], "sourceDigest": SRC, "tools": "skopeo 1.9.3\n"}
    prov = provenance_from_workflow(workflow(evidence, phase="Failed"))
    assert prov is not None and prov.source is not None and prov.source.digest == SRC
    assert prov.destination is None and prov.signature is None
    assert event_message(prov) is None


def test_a_workflow_without_outputs_has_no_provenance() -> None:
    # kwok's simulated pods and templates without evidence: nothing is made up.
    doc = workflow({})
    for node in doc["status"]["nodes"].values():
        if "outputs" in node and node["type"] == "Pod":
            node["outputs"]["parameters"] = _params({})
    assert provenance_from_workflow(doc) is None
    for node in doc["status"]["nodes"].values():
        node.pop("outputs", None)
    assert provenance_from_workflow(doc) is None
    assert provenance_from_workflow({"status": {"phase": "Running"}}) is None


def test_malformed_values_are_dropped_not_trusted() -> None:
    evidence = dict(EVIDENCE)
    evidence |= {
        "destinationDigest": "sha256:not-a-digest",
        "platforms": "linux/amd64\ngarbage line with words\nlinux/s390x sha256:123\n",
        "referrers": "sig nodigest\n",
        "tools": "x" * 10_000,
    }
    prov = provenance_from_workflow(workflow(evidence))
    assert prov is not None and prov.destination is not None
    assert prov.destination.digest is None and prov.platforms is None and prov.referrers is None
    assert prov.tools is None
    assert event_message(prov) is None


def test_credentials_written_into_a_remote_url_do_not_reach_status() -> None:
    evidence = dict(EVIDENCE)
    evidence |= {
        "sourceRef": "https://robot:s3cret@src.example/team/hello:1.0",
        "destinationRef": "robot:s3cret@dst.example/mirror/team/hello:1.0",
        "referrers": f"sig {SIG} robot:s3cret@dst.example/mirror/team/hello:sha256-{'a' * 64}.sig\n",
    }
    prov = provenance_from_workflow(workflow(evidence))
    assert prov is not None and prov.source is not None and prov.destination is not None
    assert prov.source.reference == "https://src.example/team/hello:1.0"
    assert prov.destination.reference == "dst.example/mirror/team/hello:1.0"
    assert "s3cret" not in prov.model_dump_json() and "s3cret" not in (event_message(prov) or "")
    # A digest reference keeps its @: only userinfo before the host is removed.
    pinned = provenance_from_workflow(workflow(EVIDENCE | {"sourceRef": f"src.example/team/hello@{SRC}"}))
    assert pinned is not None and pinned.source is not None
    assert pinned.source.reference == f"src.example/team/hello@{SRC}"
