"""The evidence of a transfer reaches the ArtifactWorkflow's status, the Order's status and an Event, and
docs/audit-trail.md's commands show it (issue 18).

How the outputs are obtained without faking the code under test: kwok runs no containers, so no Argo wait
container reports the copy step's output parameters. The test does what that wait container does, with real
evidence: it runs the very ``copy`` step of deploy/workflowtemplates/oci.yaml (its script, the parameters the
Order controller will pass) against two local docker-registry instances with a cosign-signed image, and
writes the files it produced into a ``WorkflowTaskResult`` named after the step's pod node
(``<workflow>-<fnv32a("<workflow>[1].copy(0)")>``, Argo's ``Workflow.NodeID``) and labelled with the
workflow — exactly the object the executor creates. From there everything is the real chain: Argo's
workflow-controller copies the task result into the node's outputs, ARC's ArtifactWorkflow controller into
``status.provenance`` and a ``Transferred`` Event, the Order controller into the artifact's entry.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from controllers.order.naming import artifact_hash, workflow_name
from tests.e2e.conftest import Kubectl
from tests.e2e.support import API_VERSION, eventually, unique
from tests.e2e.test_transfer import SECRET_PASSWORD, Tenant, transfer_manager  # noqa: F401 (fixture)
from tests.integration.workflowtemplates.support import Layout, Registry, find_tool, outputs, run_step

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}


def fnv32a(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Registry]]:
    src, dst = Registry(tmp_path_factory.mktemp("zone-src")), Registry(tmp_path_factory.mktemp("zone-dst"))
    src.start()
    dst.start()
    try:
        yield src, dst
    finally:
        src.stop()
        dst.stop()


def _cosign(tmp: Path, *args: str) -> None:
    import subprocess

    binary = find_tool("cosign")
    assert binary is not None, "cosign is not built: hack/build-binaries.sh cosign"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp),
        "COSIGN_PASSWORD": "e2e",
        "COSIGN_YES": "true",
        **SANDBOX,
    }
    proc = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp)
    assert proc.returncode == 0, proc.stderr


def _doc_commands() -> list[str]:
    text = (ROOT / "docs" / "audit-trail.md").read_text()
    section = text.split("## Read the evidence", 1)[1]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        commands += [line for line in block.splitlines() if line.startswith("kubectl ")]
    return commands


def test_evidence_reaches_status_events_and_the_documented_commands(
    kubectl: Kubectl,
    transfer_manager: object,  # noqa: F811 (the fixture)
    registries: tuple[Registry, Registry],
    tmp_path: Path,
) -> None:
    src, dst = registries
    tenant = Tenant(kubectl, unique("prov"))
    try:
        _run(kubectl, tenant, src, dst, tmp_path)
    finally:
        tenant.delete()


def _run(kubectl: Kubectl, tenant: Tenant, src: Registry, dst: Registry, tmp_path: Path) -> None:
    ns = tenant.ns
    # A signed two-platform image in the "outside" registry.
    layout = Layout(tmp_path / "layout")
    index = layout.index([layout.image("amd64 e2e"), layout.image("arm64 e2e", arch="arm64")])
    layout.tag(index, "t")
    src.push_layout(layout.path, "t", "team/hello:1.0")
    keys = tmp_path / "keys"
    keys.mkdir()
    _cosign(keys, "generate-key-pair")
    _cosign(
        keys,
        "sign",
        "--key",
        str(keys / "cosign.key"),
        "--tlog-upload=false",
        "--allow-insecure-registry",
        "--allow-http-registry",
        f"{src.host}/team/hello@{index['digest']}",
    )
    public_key = (keys / "cosign.pub").read_text()

    src_url, dst_url = f"http://{src.host}", f"http://{dst.host}/zone"
    tenant.apply(
        {
            "apiVersion": API_VERSION,
            "kind": "Endpoint",
            "metadata": {"name": "outside"},
            "spec": {"type": "oci", "remoteURL": src_url, "usage": "PullOnly"},
        },
        {
            "apiVersion": API_VERSION,
            "kind": "Endpoint",
            "metadata": {"name": "zone"},
            "spec": {"type": "oci", "remoteURL": dst_url, "usage": "PushOnly"},
        },
        {
            "apiVersion": API_VERSION,
            "kind": "ArtifactType",
            "metadata": {"name": "signed-oci"},
            "spec": {
                "workflowTemplateRef": {"name": "arc-oci", "clusterScope": True},
                "queueName": "arc",
                "parameters": [{"name": "specCopyReferrers", "value": "true"}],
                "verification": {"cosign": {"publicKey": public_key}},
            },
        },
    )
    spec = {"image": "team/hello:1.0"}
    generations = {
        name: tenant.get("endpoints.arc.opendefense.cloud", name)["metadata"]["generation"]
        for name in ("outside", "zone")
    }
    name = workflow_name(
        "mirror",
        artifact_hash(
            namespace=ns,
            type="signed-oci",
            spec=spec,
            src_name="outside",
            src_generation=generations["outside"],
            dst_name="zone",
            dst_generation=generations["zone"],
            src_secret_hash="",
            dst_secret_hash="",
            last_force_at=None,
        ),
    )

    # The copy step, for real, with the parameters the Order controller passes (see its ArtifactWorkflow).
    params = {
        "srcType": "oci",
        "srcRemoteURL": src_url,
        "dstType": "oci",
        "dstRemoteURL": dst_url,
        "specImage": "team/hello:1.0",
        "specCopyReferrers": "true",
        "verifyCosignPublicKey": public_key,
        "verifyCosignKeyIdentity": f"ArtifactType/{ns}/signed-oci",
    }
    tools = tmp_path / "tools"
    tools.mkdir()
    cosign = find_tool("cosign")
    assert cosign is not None
    (tools / "cosign").symlink_to(cosign)
    proc = run_step("oci.yaml", "copy", params, work=tmp_path / "step", tools=[tools], extra_env=SANDBOX)
    assert proc.returncode == 0, proc.stderr
    evidence = outputs(tmp_path / "step")
    assert evidence["destinationDigest"] == index["digest"]

    # What Argo's wait container would report for the copy step's first pod.
    node_id = f"{name}-{fnv32a(f'{name}[1].copy(0)')}"
    task_result = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTaskResult",
        "metadata": {
            "name": node_id,
            "namespace": ns,
            "labels": {
                "workflows.argoproj.io/workflow": name,
                "workflows.argoproj.io/report-outputs-completed": "true",
            },
        },
        "outputs": {
            "parameters": [{"name": k, "value": v} for k, v in evidence.items()],
            "exitCode": "0",
        },
    }
    kubectl.run("apply", "-f", "-", stdin=json.dumps(task_result))
    tenant.apply(
        {
            "apiVersion": API_VERSION,
            "kind": "Order",
            "metadata": {"name": "mirror"},
            "spec": {
                "defaults": {"srcRef": {"name": "outside"}, "dstRef": {"name": "zone"}},
                "artifacts": [{"type": "signed-oci", "spec": spec}],
            },
        }
    )
    eventually(lambda: tenant.phase("mirror") == "Succeeded", timeout=120, what="Order Succeeded")

    aw = tenant.get("artifactworkflows.arc.opendefense.cloud", name)
    sent = {p["name"]: p["value"] for p in aw["spec"]["parameters"]}
    assert {k: sent[k] for k in params} == params  # the step ran with exactly what the controller passes
    provenance = eventually_provenance(tenant, name)
    digest = index["digest"]
    assert provenance["source"] == {"reference": f"{src.host}/team/hello:1.0", "digest": digest}
    assert provenance["destination"] == {"reference": f"{dst.host}/zone/team/hello:1.0", "digest": digest}
    assert len(provenance["platforms"]) == 2
    signature = provenance["signature"]
    assert signature["verified"] is True and signature["signedDigest"] == digest
    assert signature["key"].startswith(f"ArtifactType/{ns}/signed-oci sha256:")
    assert {r["kind"] for r in provenance["referrers"]} == {"sig"}

    order = tenant.get("orders.arc.opendefense.cloud", "mirror")
    (entry,) = order["status"]["artifactWorkflows"].values()
    assert (entry["digest"], entry["verifiedBy"]) == (digest, signature["key"])

    events = tenant.items("events", "--field-selector", "reason=Transferred")
    assert [e["message"] for e in events] == [
        f"Transferred: {src.host}/team/hello@{digest} → {dst.host}/zone/team/hello@{digest}, "
        f"signature verified by {signature['key']}"
    ]

    # docs/audit-trail.md's commands, as a tenant types them.
    commands = _doc_commands()
    assert len(commands) == 4
    shown = [kubectl.run(*_args(command.replace("-n team", f"-n {ns}"))) for command in commands]
    wide, describe, listed, jsonpath = shown
    assert "DIGEST" in wide and "VERIFIED-BY" in wide and digest in wide and signature["key"] in wide
    assert digest in describe and "Verified By" in describe
    assert "Transferred" in listed and digest in listed
    assert json.loads(jsonpath)["destination"]["digest"] == digest

    # No credential anywhere in what a tenant sees.
    for text in (json.dumps(aw), json.dumps(order), json.dumps(events), *shown):
        assert SECRET_PASSWORD not in text
        assert base64.b64encode(SECRET_PASSWORD.encode()).decode() not in text


def eventually_provenance(tenant: Tenant, name: str) -> dict[str, object]:
    found: dict[str, object] = {}

    def ready() -> bool:
        status = tenant.get("artifactworkflows.arc.opendefense.cloud", name).get("status") or {}
        found.update(status.get("provenance") or {})
        return bool(found)

    eventually(ready, timeout=30, what="status.provenance")
    return found


def _args(command: str) -> list[str]:
    import shlex

    return shlex.split(command)[1:]
