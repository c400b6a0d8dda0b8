"""deploy/controllers/rbac.yaml grants exactly what the controllers' code does (issue 14: least privilege).

`USED` is the explicit list of the manager's API calls, as (apiGroup, resource, verb, scope) — scope
`cluster` for a call on all namespaces (informers) or a cluster-scoped kind, else the namespace the call is
limited to (`*` = whichever tenant namespace the object is in). Three checks hold it to both sides:
- every call in the controllers' source (`client.<verb>(RESOURCE, …)`, `manager.informer(RESOURCE, …)`,
  found with `ast`) is in `USED`, so new code cannot call what the list does not name;
- every entry of `USED` is granted by rbac.yaml with the scope it needs, so the code can run;
- every (group, resource, verb) rbac.yaml grants is in `USED`, so nothing unused is granted.
The e2e suite then runs the manager as this service account (hack/cluster.py), which proves the list is
enough in a real cluster.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from controllers.kube import resources

ROOT = Path(__file__).resolve().parents[3]
ARC = "arc.opendefense.cloud"
HOME = "arc-system"  # the manager's own namespace: leader Lease and hash-key Secret

# (group, resource, verb, scope): scope "cluster" | "*" (any namespace) | a namespace name
USED: frozenset[tuple[str, str, str, str]] = frozenset(
    {
        # informers (controllers/runtime/informer.py: list + watch, all namespaces)
        *(
            (ARC, r, v, "cluster")
            for r in ("orders", "artifactworkflows", "endpoints")
            for v in ("list", "watch")
        ),
        *(
            (ARC, r, v, "cluster")
            for r in ("artifacttypes", "clusterartifacttypes")
            for v in ("list", "watch")
        ),
        ("", "secrets", "list", "cluster"),  # Order controller: HMAC of data of referenced Secrets
        ("", "secrets", "get", "*"),  # Endpoint controller: the Secret of the Endpoint it probes, once
        (ARC, "endpoints/status", "update", "*"),  # Endpoint controller (controllers/endpoint/reconciler.py)
        ("", "secrets", "watch", "cluster"),
        ("argoproj.io", "workflows", "list", "cluster"),  # ArtifactWorkflow controller
        ("argoproj.io", "workflows", "watch", "cluster"),
        # Order controller (controllers/order/reconciler.py)
        (ARC, "orders", "patch", "*"),  # its finalizer
        (ARC, "orders/status", "update", "*"),
        (ARC, "artifactworkflows", "list", "*"),  # owned ones by label, before deleting the Order
        (ARC, "artifactworkflows", "create", "*"),
        (ARC, "artifactworkflows", "get", "*"),  # adopt after AlreadyExists
        (ARC, "artifactworkflows", "patch", "*"),
        (ARC, "artifactworkflows", "delete", "*"),
        (
            ARC,
            "orders/finalizers",
            "update",
            "*",
        ),  # blockOwnerDeletion (OwnerReferencesPermissionEnforcement)
        # ArtifactWorkflow controller (controllers/artifactworkflow/reconciler.py)
        (ARC, "artifactworkflows/status", "update", "*"),
        (ARC, "artifactworkflows/finalizers", "update", "*"),  # blockOwnerDeletion on Workflows
        ("argoproj.io", "workflows", "create", "*"),
        ("argoproj.io", "workflows", "get", "*"),
        ("argoproj.io", "workflows", "delete", "*"),
        ("kueue.x-k8s.io", "localqueues", "get", "*"),  # does the queue exist (before the Workflow)
        ("kueue.x-k8s.io", "workloads", "list", "*"),  # why pending pods wait for admission
        ("", "pods/log", "get", "*"),  # the failed step's last log lines (client.logs)
        # Event recorder (controllers/runtime/events.py)
        ("", "events", "create", "*"),
        ("", "events", "patch", "*"),
        # leader election (controllers/runtime/leaderelection.py)
        ("coordination.k8s.io", "leases", "get", HOME),
        ("coordination.k8s.io", "leases", "create", HOME),
        ("coordination.k8s.io", "leases", "update", HOME),
        # the installation's hash key (controllers/order/hashkey.py)
        ("", "secrets", "get", HOME),
        ("", "secrets", "create", HOME),
        # --metrics-secure (controllers/runtime/metricsauth.py)
        ("authentication.k8s.io", "tokenreviews", "create", "cluster"),
        ("authorization.k8s.io", "subjectaccessreviews", "create", "cluster"),
    }
)

_VERBS = {"get": "get", "list": "list", "watch": "watch", "create": "create", "replace": "update"}
_VERBS |= {"patch": "patch", "delete": "delete"}
#: helpers that call the client with the resource they are given, and their verb
_WRAPPERS = {"patch_finalizers": "patch"}
_RESOURCES = {name: value for name, value in vars(resources).items() if isinstance(value, resources.Resource)}


def _code_calls() -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every client call and informer in controllers/ (except the client)."""
    found: set[tuple[str, str, str]] = set()
    for path in (ROOT / "controllers").rglob("*.py"):
        if path.parent.name != "kube":  # the client itself
            found |= _calls_in(path.read_text(), str(path))
    return found


def _calls_in(source: str, path: str = "<test>") -> set[tuple[str, str, str]]:
    """Every call that passes a resource constant (``ORDERS``…) positionally: a client verb, an informer, or
    a known wrapper (``_WRAPPERS``). Any other function given a resource constant fails the scan, so a new
    helper that calls the API has to be named here, with its verb."""
    found: set[tuple[str, str, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "logs" and isinstance(func, ast.Attribute):  # KubeClient.logs: pods/log, no constant
            found.add(("", "pods/log", "get"))
            continue
        resources_passed = [a.id for a in node.args if isinstance(a, ast.Name) and a.id in _RESOURCES]
        if not resources_passed:
            continue
        res = _RESOURCES[resources_passed[0]]
        if name == "informer":
            found |= {(res.group, res.plural, "list"), (res.group, res.plural, "watch")}
            continue
        verb = _VERBS.get(name) or _WRAPPERS.get(name)
        assert verb is not None, f"{path}:{node.lineno}: {name}() gets a resource: add it to _WRAPPERS"
        plural = res.plural
        for kw in node.keywords:
            if kw.arg == "subresource" and isinstance(kw.value, ast.Constant) and kw.value.value:
                plural = f"{plural}/{kw.value.value}"
        found.add((res.group, plural, verb))
    return found


def _rbac() -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all((ROOT / "deploy/controllers/rbac.yaml").read_text()) if d]


def _grants() -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    """(group, resource, verb, scope, resourceNames) granted to the manager's service account."""
    docs = _rbac()
    roles = {(d["kind"], (d["metadata"] or {}).get("namespace"), d["metadata"]["name"]): d for d in docs}  # type: ignore[index,union-attr]
    out = []
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = binding["subjects"]  # type: ignore[index]
        assert {"kind": "ServiceAccount", "name": "arc-controller-manager", "namespace": HOME} in subjects
        ref = binding["roleRef"]  # type: ignore[index]
        scope = "cluster" if binding["kind"] == "ClusterRoleBinding" else binding["metadata"]["namespace"]  # type: ignore[index]
        ns = None if ref["kind"] == "ClusterRole" else binding["metadata"]["namespace"]  # type: ignore[index]
        role = roles[(ref["kind"], ns, ref["name"])]  # type: ignore[index]
        for rule in role["rules"]:  # type: ignore[index,union-attr]
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.append((group, resource, verb, scope, tuple(rule.get("resourceNames", ()))))
    return out


def test_every_client_call_in_the_code_is_in_the_list() -> None:
    listed = {(g, r, v) for g, r, v, _ in USED}
    calls = _code_calls()
    assert calls, "the scan found no calls: it is broken"
    assert calls - listed == set()


def test_every_call_in_the_list_is_granted_with_its_scope() -> None:
    grants = _grants()
    for group, resource, verb, scope in USED:
        ok = any(
            g == group and r == resource and v == verb and (s == "cluster" or (s == scope and scope != "*"))
            for g, r, v, s, _ in grants
        )
        assert ok, (group, resource, verb, scope)


def test_nothing_is_granted_that_the_code_does_not_do() -> None:
    listed = {(g, r, v) for g, r, v, _ in USED}
    for group, resource, verb, scope, names in _grants():
        assert (group, resource, verb) in listed, (group, resource, verb, scope)
        if (group, resource) == ("", "secrets") and scope == "cluster":
            # get adds nothing list grants already (the Endpoint controller reads one Secret when it probes)
            assert verb in ("get", "list", "watch"), f"cluster-wide Secret {verb}"
        if (group, resource, verb) == ("", "secrets", "get") and scope != "cluster":
            assert scope == HOME and names == ("arc-artifact-hash-key",)
        assert "*" not in (group, resource, verb)


def test_the_scan_sees_calls_spelled_as_the_code_spells_them() -> None:
    """The source scan is not vacuous: a replace on a subresource, a multi-line call and an informer."""
    source = (
        "async def f(self, manager):\n"
        "    await self.client.replace(ENDPOINTS, 'ns', 'x', {}, subresource='status')\n"
        "    await self.client.delete(\n        SECRETS,\n        'ns',\n        'x',\n    )\n"
        "    manager.informer(LEASES, decode)\n"
    )
    assert _calls_in(source) == {
        (ARC, "endpoints/status", "update"),
        ("", "secrets", "delete"),
        ("coordination.k8s.io", "leases", "list"),
        ("coordination.k8s.io", "leases", "watch"),
    }
    assert not _calls_in(source) <= {(g, r, v) for g, r, v, _ in USED}
