"""An Endpoint may only reference a Secret its writer may read — through the aggregator, with RBAC (issue 14).

eve may write Endpoints in her namespace but read no Secrets (but one, by name); alice has `edit` (Secrets
included). A neighbour's registry Secret lives in the same namespace. Without ARC's SubjectAccessReview at
admission, eve could point an Endpoint at that Secret and a host of hers and receive the password.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl
from tests.e2e.support import API_VERSION, GROUP, kubectl_proc, manifest, unique

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Team:
    ns: str


@pytest.fixture(scope="module")
def team(kubectl: Kubectl) -> Iterator[Team]:
    ns = unique("secref")
    kubectl.run("create", "namespace", ns)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "endpoint-writer", "namespace": ns},
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": ["endpoints"],
                "verbs": ["get", "list", "create", "update", "patch", "delete"],
            },
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["eve-creds"], "verbs": ["get"]},
        ],
    }
    kubectl.run("apply", "-f", "-", stdin=manifest(role))
    kubectl.run("create", "rolebinding", "eve", "--role=endpoint-writer", "--user=eve", "-n", ns)
    kubectl.run("create", "rolebinding", "alice", "--clusterrole=edit", "--user=alice", "-n", ns)
    for name in ("neighbour-creds", "eve-creds"):
        kubectl.run(
            "create", "secret", "docker-registry", name, "-n", ns,
            "--docker-server=registry.internal", "--docker-username=robot", f"--docker-password=pw-{name}",
        )  # fmt: skip
    try:
        yield Team(ns)
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def ep(name: str, ns: str, secret: str | None, url: str = "registry.internal") -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "oci", "remoteURL": url}
    if secret:
        spec["secretRef"] = {"name": secret}
    return {
        "apiVersion": API_VERSION,
        "kind": "Endpoint",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def test_eve_cannot_reference_a_secret_she_cannot_read(kubectl: Kubectl, team: Team) -> None:
    proc = kubectl_proc(
        kubectl,
        "create",
        "-f",
        "-",
        "--as=eve",
        stdin=manifest(ep("steal", team.ns, "neighbour-creds", "evil.example")),
    )
    assert proc.returncode != 0
    assert "(Forbidden)" in proc.stderr and "spec.secretRef.name" in proc.stderr, proc.stderr
    assert 'User "eve" cannot get resource "secrets"' in proc.stderr
    assert "not found" in kubectl_proc(kubectl, "get", f"endpoints.{GROUP}", "steal", "-n", team.ns).stderr


def test_a_secret_eve_may_read_and_no_secret_are_fine(kubectl: Kubectl, team: Team) -> None:
    for name, secret in (("mine", "eve-creds"), ("anonymous", None)):
        out = kubectl.run("create", "-f", "-", "--as=eve", stdin=manifest(ep(name, team.ns, secret)))
        assert f"endpoint.{GROUP}/{name} created" in out


def test_eve_cannot_move_a_referenced_secret_to_her_host_or_repoint_hers(
    kubectl: Kubectl, team: Team
) -> None:
    shared = unique("shared")
    kubectl.run("create", "-f", "-", "--as=alice", stdin=manifest(ep(shared, team.ns, "neighbour-creds")))
    moved = kubectl_proc(
        kubectl, "patch", f"endpoints.{GROUP}", shared, "-n", team.ns, "--as=eve", "--type=merge",
        "-p", json.dumps({"spec": {"remoteURL": "evil.example"}}),
    )  # fmt: skip
    assert moved.returncode != 0 and "spec.secretRef.name" in moved.stderr, moved.stderr
    own = unique("own")
    kubectl.run("create", "-f", "-", "--as=eve", stdin=manifest(ep(own, team.ns, "eve-creds")))
    repointed = kubectl_proc(
        kubectl, "patch", f"endpoints.{GROUP}", own, "-n", team.ns, "--as=eve", "--type=json",
        "-p", json.dumps([{"op": "replace", "path": "/spec/secretRef/name", "value": "neighbour-creds"}]),
    )  # fmt: skip
    assert repointed.returncode != 0 and "spec.secretRef.name" in repointed.stderr, repointed.stderr
    # labels are no reference change: allowed without any Secret permission
    labelled = kubectl_proc(kubectl, "label", f"endpoints.{GROUP}", shared, "-n", team.ns, "--as=eve", "x=y")
    assert labelled.returncode == 0, labelled.stderr
    stored = kubectl.json("get", f"endpoints.{GROUP}", shared, "-n", team.ns)
    assert stored["spec"]["remoteURL"] == "registry.internal"


def test_alice_with_edit_may_reference_any_secret_of_her_namespace(kubectl: Kubectl, team: Team) -> None:
    name = unique("alice")
    out = kubectl.run("create", "-f", "-", "--as=alice", stdin=manifest(ep(name, team.ns, "neighbour-creds")))
    assert f"endpoint.{GROUP}/{name} created" in out
