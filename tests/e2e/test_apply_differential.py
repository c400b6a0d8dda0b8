"""kube-apiserver is the oracle for server-side apply: the same sequences of writes are sent to ARC (through
the aggregator) and to CRD copies of ARC's kinds in kube-apiserver (group crd.arc.opendefense.cloud, the
schemas bench/compare generates from ARC's OpenAPI), and must give the same objects, the same managedFields
(apart from times, uids, resourceVersions and the group in apiVersion), the same status codes and the same
conflict causes.

Strategic merge patch is 415 on CRDs, so it is compared against a built-in kind with the same list shape:
an ArtifactType's ``spec.parameters`` (a list keyed by ``name`` of name/value items) against a PodTemplate's
``template.spec.containers[0].env`` (the same shape and merge key).

Runs only kube-apiserver, the etcds and ARC's API server (``LocalCluster.up_api_only``).
"""

from __future__ import annotations

import itertools
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.compare import crd_manifests, install_crds
from hack.cluster import LocalCluster
from hack.kube import KubeHTTP, KubeHTTPError

ARC = "arc.opendefense.cloud"
CRD = "crd.arc.opendefense.cloud"
GROUPS = (ARC, CRD)
VERSION = "v1alpha1"
NAMESPACE = "apply-diff"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
SMP = "application/strategic-merge-patch+json"
PLURALS = {"Order": "orders", "ArtifactType": "artifacttypes"}
_names = itertools.count()


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeHTTP]:
    cluster = LocalCluster(tmp_path_factory.mktemp("apply-diff"), controller_manager=False)
    try:
        cluster.up_api_only()
        client = cluster.admin()
        install_crds(client)
        client.request(
            "POST",
            "/api/v1/namespaces",
            body=json.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
            ).encode(),
        )
        yield client
    finally:
        cluster.down()


def call(
    admin: KubeHTTP, method: str, path: str, body: Any = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    try:
        data = None if body is None else json.dumps(body).encode()
        return 200, admin.request(method, path, body=data, content_type=content_type)
    except KubeHTTPError as err:
        try:
            return err.status, json.loads(err.body)
        except ValueError:
            return err.status, err.body


def object_path(group: str, kind: str, name: str, subresource: str = "") -> str:
    path = f"/apis/{group}/{VERSION}/namespaces/{NAMESPACE}/{PLURALS[kind]}/{name}"
    return f"{path}/{subresource}" if subresource else path


def with_group(obj: Any, group: str) -> Any:
    """A group-agnostic document (``apiVersion: GROUP/v1alpha1``) for one system."""
    return json.loads(json.dumps(obj).replace("GROUP/", f"{group}/"))


def normalize(obj: Any, group: str) -> Any:
    """What must agree: the object without server-made identity, times and the group."""
    if not isinstance(obj, dict) or "metadata" not in obj:
        return obj
    out = json.loads(json.dumps(obj).replace(f'"{group}/', '"GROUP/'))
    meta = out["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "namespace"):
        meta.pop(key, None)
    entries = meta.pop("managedFields", None) or []
    for entry in entries:
        entry.pop("time", None)
    meta["managedFields"] = sorted(
        entries, key=lambda e: (e["manager"], e["operation"], e.get("subresource", ""))
    )
    return out


def normalize_error(body: Any, group: str) -> Any:
    if not isinstance(body, dict):
        return body
    body = json.loads(json.dumps(body).replace(group, "GROUP"))
    causes = sorted(
        (c.get("field", ""), c.get("message", ""), c.get("reason", ""))
        for c in (body.get("details") or {}).get("causes") or []
    )
    message = str(body.get("message", ""))
    if body.get("code") == 409 and message.startswith("Apply failed with"):
        # Managers are listed per manager in a map order kube does not fix; compare the lines as a set.
        message = "\n".join(sorted(message.split("\n")))
    return {"code": body.get("code"), "reason": body.get("reason"), "causes": causes, "message": message}


Step = dict[str, Any]


def run_step(admin: KubeHTTP, group: str, kind: str, name: str, step: Step) -> tuple[int, Any]:
    query: dict[str, str] = {"fieldManager": step["manager"]}
    if step.get("force"):
        query["force"] = "true"
    path = object_path(group, kind, name, step.get("subresource", "")) + "?" + urllib.parse.urlencode(query)
    body = with_group(step["body"], group)
    if step["op"] == "create":
        body.setdefault("metadata", {})["name"] = name
        collection = object_path(group, kind, name).rsplit("/", 1)[0]
        return call(admin, "POST", f"{collection}?fieldManager={step['manager']}", body)
    if step["op"] == "apply":
        body.setdefault("metadata", {})["name"] = name
        return call(admin, "PATCH", path, body, APPLY)
    return call(admin, "PATCH", path, body, MERGE)


def check_sequence(admin: KubeHTTP, kind: str, steps: list[Step]) -> None:
    name = f"{kind.lower()}-{next(_names)}"
    versions: dict[str, str | None] = dict.fromkeys(GROUPS)
    for i, step in enumerate(steps):
        results = {group: run_step(admin, group, kind, name, step) for group in GROUPS}
        (arc_code, arc_body), (crd_code, crd_body) = results[ARC], results[CRD]
        where = f"step {i} of {json.dumps(steps)}"
        if (arc_code, crd_code) == (400, 500):
            # A configuration that does not fit the schema: kube answers a reasonless 500, ARC (whose bad
            # input is never a 5xx) the same message as a 400 BadRequest.
            arc_message = str(arc_body.get("message")).replace(ARC, "GROUP")
            assert arc_message == str(crd_body.get("message")).replace(CRD, "GROUP"), where
            assert arc_message.startswith("failed to create typed patch object"), where
            continue
        assert arc_code == crd_code, f"{where}: ARC {arc_code} {arc_body} vs CRD {crd_code} {crd_body}"
        if arc_code >= 400:
            if arc_code == 409:
                assert normalize_error(arc_body, ARC) == normalize_error(crd_body, CRD), where
            continue
        assert normalize(arc_body, ARC) == normalize(crd_body, CRD), where
        # The same steps write (a new resourceVersion) or write nothing in both.
        wrote = {}
        for group, (_, body) in results.items():
            rv = body["metadata"]["resourceVersion"]
            wrote[group] = rv != versions[group]
            versions[group] = rv
        assert wrote[ARC] == wrote[CRD], f"{where}: wrote {wrote}"
    finals = {group: call(admin, "GET", object_path(group, kind, name)) for group in GROUPS}
    assert finals[ARC][0] == finals[CRD][0]
    if finals[ARC][0] == 200:
        assert normalize(finals[ARC][1], ARC) == normalize(finals[CRD][1], CRD)


# ---- hand-written classics ------------------------------------------------------------------------------

ARTIFACTS = [{"type": "oci", "spec": {"image": "library/alpine:3.20"}}]
DEFAULTS = {"srcRef": {"name": "hub"}, "dstRef": {"name": "internal"}}


def order_config(**spec: Any) -> dict[str, Any]:
    labels = spec.pop("labels", None)
    meta: dict[str, Any] = {"labels": labels} if labels is not None else {}
    return {
        "apiVersion": "GROUP/v1alpha1",
        "kind": "Order",
        "metadata": meta,
        "spec": {"artifacts": ARTIFACTS, "defaults": DEFAULTS, **spec},
    }


def type_config(parameters: list[dict[str, str]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"workflowTemplateRef": {"name": "copy", "clusterScope": False}, **spec}
    if parameters is not None:
        body["parameters"] = parameters
    return {"apiVersion": "GROUP/v1alpha1", "kind": "ArtifactType", "metadata": {}, "spec": body}


def status_config(**status: Any) -> dict[str, Any]:
    return {"apiVersion": "GROUP/v1alpha1", "kind": "Order", "metadata": {}, "status": status}


def apply(manager: str, body: dict[str, Any], *, force: bool = False, subresource: str = "") -> Step:
    step: Step = {"op": "apply", "manager": manager, "body": body, "force": force}
    if subresource:
        step["subresource"] = subresource
    return step


def merge(manager: str, body: dict[str, Any]) -> Step:
    return {"op": "merge", "manager": manager, "body": body}


def create(manager: str, body: dict[str, Any]) -> Step:
    return {"op": "create", "manager": manager, "body": body}


RESET = {"metadata": {"managedFields": [{}]}}
"""A merge patch that resets managedFields (kube's ``[{}]``)."""


CONDITION = {
    "type": "Ready",
    "status": "True",
    "reason": "Done",
    "message": "",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}


def only(**spec: Any) -> dict[str, Any]:
    """An ArtifactType configuration with only these spec fields (a second manager's partial apply)."""
    return {**type_config(), "spec": spec}


LAST_APPLIED_ORDER = {
    **order_config(labels={"app": "a"}, queueName="q"),
    "metadata": {
        "labels": {"app": "a"},
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                order_config(labels={"app": "a"}, queueName="q"), sort_keys=True
            )
        },
    },
}

CLASSICS: dict[str, tuple[str, list[Step]]] = {
    "create, unchanged, conflict, force": (
        "Order",
        [
            apply("gitops", order_config(labels={"app": "a"})),
            apply("gitops", order_config(labels={"app": "a"})),
            apply("alice", order_config(labels={"app": "b"})),
            apply("alice", order_config(labels={"app": "b", "team": "x"}), force=True),
            apply("gitops", order_config(labels={"app": "a"})),
        ],
    ),
    "shared ownership and removal": (
        "Order",
        [
            apply("gitops", order_config(labels={"app": "a", "tier": "1"}, queueName="q")),
            apply("alice", {**order_config(labels={"tier": "1"}), "spec": {}}),
            apply("gitops", order_config()),
            apply("alice", {**order_config(), "spec": {}}),
        ],
    ),
    "an update takes ownership, then apply conflicts": (
        "Order",
        [
            apply("gitops", order_config(labels={"app": "a"}, queueName="q")),
            merge("kubectl-edit", {"metadata": {"labels": {"app": "edited"}}, "spec": {"queueName": "r"}}),
            apply("gitops", order_config(labels={"app": "a"}, queueName="q")),
            apply("gitops", order_config(labels={"app": "a"}, queueName="q"), force=True),
        ],
    ),
    "status apply": (
        "Order",
        [
            apply("gitops", order_config()),
            apply("ctrl", status_config(phase="Running", conditions=[CONDITION]), subresource="status"),
            apply("ctrl", status_config(phase="Succeeded"), subresource="status"),
            apply("other", status_config(phase="Failed"), subresource="status"),
            apply("gitops", {**order_config(), "status": {"phase": "Pending"}}),
        ],
    ),
    "keyed list items by two managers": (
        "ArtifactType",
        [
            apply("gitops", type_config([{"name": "a", "value": "1"}, {"name": "b", "value": "2"}])),
            apply("alice", only(parameters=[{"name": "c", "value": "3"}])),
            apply("alice", only(parameters=[{"name": "a", "value": "9"}])),
            apply("gitops", type_config([{"name": "b", "value": "2"}])),
            apply("alice", only(parameters=[{"name": "a", "value": "9"}]), force=True),
            merge("kubectl-edit", {"spec": {"rules": {"srcTypes": ["oci"]}}}),
            apply("gitops", type_config([{"name": "b", "value": "2"}], rules={"dstTypes": ["oci"]})),
        ],
    ),
    "created by POST, then applied": (
        "Order",
        [
            create("kubectl-create", order_config(labels={"app": "a"}, queueName="q")),
            apply("gitops", order_config(labels={"app": "a"})),
            apply("gitops", order_config(labels={"app": "b"})),
            apply("gitops", order_config(labels={"app": "b"}), force=True),
        ],
    ),
    "reset managedFields, then before-first-apply": (
        "ArtifactType",
        [
            create("kubectl-create", type_config([{"name": "a", "value": "1"}], queueName="q")),
            merge("tidy", RESET),
            merge("editor", {"spec": {"queueName": "r"}}),
            apply("gitops", type_config([{"name": "a", "value": "2"}])),
            apply("gitops", type_config([{"name": "a", "value": "2"}]), force=True),
            apply("gitops", type_config()),
        ],
    ),
    "kubectl takes over what its last-applied-configuration still says": (
        "Order",
        [
            create("kubectl-client-side-apply", LAST_APPLIED_ORDER),
            apply("kubectl", order_config(labels={"app": "b"}, queueName="q")),
            apply("someone", order_config(labels={"app": "c"})),
            apply("kubectl", order_config(labels={"app": "b"})),
        ],
    ),
    "configurations that do not fit the schema": (
        "ArtifactType",
        [
            apply("gitops", type_config([{"name": "a", "value": "1"}])),
            apply("gitops", {**type_config(), "spec": {"nope": 1}}),
            apply("gitops", type_config([{"name": "a", "value": "1"}, {"name": "a", "value": "2"}])),
            apply("gitops", {**type_config(), "spec": {"parameters": {"name": "a"}}}),
            apply("gitops", type_config([{"name": "b", "value": "1"}])),
        ],
    ),
    "atomic lists and refs": (
        "Order",
        [
            apply("gitops", order_config()),
            apply("alice", {**order_config(), "spec": {"defaults": {"srcRef": {"name": "other"}}}}),
            merge("kubectl-edit", {"spec": {"artifacts": [{"type": "helm", "spec": {"chart": "x"}}]}}),
            apply("gitops", order_config(), force=True),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CLASSICS))
def test_classic_sequences_match_kube(admin: KubeHTTP, case: str) -> None:
    kind, steps = CLASSICS[case]
    check_sequence(admin, kind, steps)


# ---- generated sequences --------------------------------------------------------------------------------

labels = st.dictionaries(st.sampled_from(["app", "team", "tier"]), st.sampled_from(["a", "b"]), max_size=3)
params = st.lists(
    st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "c"]), "value": st.sampled_from(["1", "2"])}),
    max_size=3,
    unique_by=lambda p: p["name"],
)
managers = st.sampled_from(["gitops", "alice", "kubectl"])


@st.composite
def order_steps(draw: st.DrawFn) -> Step:
    manager = draw(managers)
    choice = draw(st.sampled_from(["full", "labels", "status", "merge"]))
    force = draw(st.booleans())
    if choice == "full":
        spec: dict[str, Any] = {}
        if draw(st.booleans()):
            spec["queueName"] = draw(st.sampled_from(["q1", "q2"]))
        return apply(manager, order_config(labels=draw(labels), **spec), force=force)
    if choice == "labels":
        return apply(manager, {**order_config(labels=draw(labels)), "spec": {}}, force=force)
    if choice == "status":
        status: dict[str, Any] = {"phase": draw(st.sampled_from(["Running", "Failed"]))}
        if draw(st.booleans()):
            status["conditions"] = [{**CONDITION, "status": draw(st.sampled_from(["True", "False"]))}]
        return apply(manager, status_config(**status), force=force, subresource="status")
    return merge(
        manager,
        {
            "metadata": {"labels": draw(labels) or None},
            "spec": {"queueName": draw(st.sampled_from(["q1", None]))},
        },
    )


@st.composite
def type_steps(draw: st.DrawFn) -> Step:
    manager = draw(managers)
    roll = draw(st.integers(0, 6))
    if roll == 0:
        return merge(manager, {"spec": {"queueName": draw(st.sampled_from(["q1", "q2", None]))}})
    if roll == 1:
        return merge(manager, RESET)
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["queueName"] = draw(st.sampled_from(["q1", "q2"]))
    return apply(manager, type_config(draw(params), **spec), force=draw(st.booleans()))


_SETTINGS = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
)


@_SETTINGS
@given(first=st.just(apply("gitops", order_config())), rest=st.lists(order_steps(), min_size=1, max_size=5))
def test_generated_order_sequences_match_kube(admin: KubeHTTP, first: Step, rest: list[Step]) -> None:
    check_sequence(admin, "Order", [first, *rest])


@_SETTINGS
@given(steps=st.lists(type_steps(), min_size=1, max_size=5))
def test_generated_artifact_type_sequences_match_kube(admin: KubeHTTP, steps: list[Step]) -> None:
    check_sequence(admin, "ArtifactType", steps)


# ---- strategic merge patch against a built-in kind of the same shape -------------------------------------

SMP_CASES = [
    {"items": [{"name": "c", "value": "3"}]},
    {"items": [{"name": "a", "$patch": "delete"}]},
    {"items": [{"name": "b", "value": "9"}], "order": [{"name": "b"}, {"name": "a"}]},
    {
        "items": [{"name": "c", "value": "3"}, {"name": "a", "value": "0"}],
        "order": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
    },
    {"items": [{"$patch": "replace"}, {"name": "z", "value": "1"}]},
]


def _pod_template(name: str, env: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "template": {"spec": {"containers": [{"name": "main", "image": "busybox", "env": env}]}},
    }


@pytest.mark.parametrize("case", range(len(SMP_CASES)))
def test_strategic_merge_patch_matches_a_built_in_kind(admin: KubeHTTP, case: int) -> None:
    start = [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]
    spec = SMP_CASES[case]
    name = f"smp-{next(_names)}"
    at = with_group(type_config(start), ARC)
    at["metadata"]["name"] = name
    assert call(admin, "POST", f"/apis/{ARC}/{VERSION}/namespaces/{NAMESPACE}/artifacttypes", at)[0] == 200
    assert (
        call(admin, "POST", f"/api/v1/namespaces/{NAMESPACE}/podtemplates", _pod_template(name, start))[0]
        == 200
    )
    arc_patch: dict[str, Any] = {"parameters": spec["items"]}
    env_patch: dict[str, Any] = {"env": spec["items"]}
    if "order" in spec:
        arc_patch["$setElementOrder/parameters"] = spec["order"]
        env_patch["$setElementOrder/env"] = spec["order"]
    arc_code, arc = call(admin, "PATCH", object_path(ARC, "ArtifactType", name), {"spec": arc_patch}, SMP)
    pod_patch = {
        "template": {
            "spec": {
                "$setElementOrder/containers": [{"name": "main"}],
                "containers": [{"name": "main", **env_patch}],
            }
        }
    }
    pod_code, pod = call(
        admin, "PATCH", f"/api/v1/namespaces/{NAMESPACE}/podtemplates/{name}", pod_patch, SMP
    )
    assert arc_code == pod_code, (arc, pod)
    if arc_code == 200:
        assert arc["spec"].get("parameters", []) == pod["template"]["spec"]["containers"][0].get("env", [])
    crd_code, _ = call(admin, "PATCH", object_path(CRD, "ArtifactType", name), {"spec": arc_patch}, SMP)
    assert crd_code in (404, 415)


def test_crds_are_generated_from_the_same_openapi() -> None:
    """The CRD copies carry ARC's list and map types (what this test relies on)."""
    by_kind = {c["spec"]["names"]["kind"]: c for c in crd_manifests()}
    schema = by_kind["ArtifactType"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    parameters = schema["properties"]["spec"]["properties"]["parameters"]
    assert parameters["x-kubernetes-list-type"] == "map"
    assert parameters["x-kubernetes-list-map-keys"] == ["name"]
