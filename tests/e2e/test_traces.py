"""One trace from a client through kube-apiserver into ARC, in the real trace backend (issue 20).

The stack runs with tracing (``LocalCluster(tracing=True)``, what ``make run`` starts): Jaeger all-in-one
receives OTLP from kube-apiserver (``--tracing-config-file``), ARC's API server and ARC's controller manager.
The tests follow docs/operations.md's "Traces" section: the same kubectl commands and the same Jaeger query
API (``/api/traces/<trace id>``) an SRE uses.

- An Order's reconcile: its span is the parent of kube-apiserver's span for the ArtifactWorkflow POST, whose
  proxy (aggregator) span is the parent of ARC's request span, the parent of ARC's etcd span — one trace,
  whose id the ArtifactWorkflow carries (SPEC §5). The Workflow's trace id (its own reconcile's) is in
  Jaeger too, down to kube-apiserver's span for the Workflow's POST.
- An apply client's request with a ``traceparent`` header (kubectl cannot add headers; an instrumented
  client such as client-go with otelhttp sends exactly this): kube-apiserver continues the client's trace
  and ARC's spans join it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from hack.binaries import REPO_ROOT
from hack.cluster import LocalCluster, _banner
from hack.jaeger import KUBE_APISERVER_SERVICE, Span, Trace
from tests.e2e.conftest import Kubectl

T = TypeVar("T")
ANNOTATION_TRACE_ID = "arc.opendefense.cloud/trace-id"
ARC = "arc-apiserver"
CONTROLLERS = "arc-controller-manager"


def eventually(probe: Callable[[], T | None], *, timeout: float = 60, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout}s")
        time.sleep(1)


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The whole stack with tracing, its controller manager included (as ``make run``)."""
    cluster = LocalCluster(tmp_path_factory.mktemp("arc-traces"), tracing=True)
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def kubectl(traced: LocalCluster) -> Kubectl:
    return Kubectl(traced.kubeconfig)


def ancestors(trace: Trace, span: Span) -> list[Span]:
    chain: list[Span] = []
    parent = trace.parent(span)
    while parent is not None:
        chain.append(parent)
        parent = trace.parent(parent)
    return chain


def arc_requests_under(trace: Trace, kube_span: Span) -> list[tuple[Span, Span, list[Span]]]:
    """ARC's request spans below ``kube_span``: (kube-apiserver's proxy span, ARC's span, its etcd spans).

    The proxy span is ARC's span's parent and a kube-apiserver span itself (the aggregator's client span).
    """
    out = []
    for span in trace.of_service(ARC):
        if span.kind != "server" or kube_span not in ancestors(trace, span):
            continue
        proxy = trace.parent(span)
        assert proxy is not None and proxy.service == KUBE_APISERVER_SERVICE, trace.describe()
        etcd = [c for c in trace.children(span) if c.name.startswith("etcd.")]
        out.append((proxy, span, etcd))
    return out


def trace_with(traced: LocalCluster, trace_id: str, check: Callable[[Trace], bool], what: str) -> Trace:
    """The trace once Jaeger holds what ``check`` looks for (spans arrive in batches from 3 processes)."""
    last: list[Trace | None] = [None]

    def probe() -> Trace | None:
        last[0] = found = traced.jaeger.trace(trace_id)
        return found if found is not None and check(found) else None

    try:
        return eventually(probe, timeout=60, what=f"trace {trace_id} with {what}")
    except AssertionError as err:
        raise AssertionError(f"{err}\n{last[0].describe() if last[0] else 'no such trace'}") from None


def has_etcd_under_kube(trace: Trace) -> bool:
    return any(
        etcd for k in trace.of_service(KUBE_APISERVER_SERVICE) for _, _, etcd in arc_requests_under(trace, k)
    )


def test_an_orders_reconcile_is_one_trace_through_kube_apiserver_into_arc_and_etcd(
    traced: LocalCluster, kubectl: Kubectl
) -> None:
    kubectl.run("apply", "-k", str(REPO_ROOT / "deploy" / "examples"))  # `make demo`
    aws = eventually(
        lambda: [
            aw
            for aw in kubectl.json("get", "artifactworkflows", "-n", "arc-demo")["items"]
            if ANNOTATION_TRACE_ID in aw["metadata"].get("annotations", {})
        ],
        what="ArtifactWorkflows with a trace id",
    )
    trace_id = aws[0]["metadata"]["annotations"][ANNOTATION_TRACE_ID]
    # Every ArtifactWorkflow that carries this trace id was created in this trace (one reconcile).
    created = [aw for aw in aws if aw["metadata"]["annotations"][ANNOTATION_TRACE_ID] == trace_id]

    def all_creations_arrived(trace: Trace) -> bool:
        # The reconcile's span ends last, and three processes export in batches (every few seconds).
        arc_posts = [s for s in trace.of_service(ARC) if s.name == "POST artifactworkflows"]
        reconciles = [s for s in trace.of_service(CONTROLLERS) if s.name == "reconcile order"]
        return bool(reconciles) and len(arc_posts) >= len(created) and has_etcd_under_kube(trace)

    found = trace_with(
        traced,
        trace_id,
        all_creations_arrived,
        "the reconcile, ARC's POSTs and etcd spans under kube-apiserver",
    )
    tree = found.describe()
    (reconcile,) = [s for s in found.of_service(CONTROLLERS) if s.name == "reconcile order"]
    assert reconcile.parent_id is None, tree  # the reconcile starts the trace
    assert reconcile.tags["k8s.object.name"] == "mirror-base-images", tree
    # kube-apiserver's server span for the ArtifactWorkflow's creation is the reconcile's child...
    posts = [
        s
        for s in found.children(reconcile)
        if s.service == KUBE_APISERVER_SERVICE
        and s.kind == "server"
        and s.name.startswith("POST ")
        and s.name.endswith("/artifactworkflows")
    ]
    assert posts, tree
    for post in posts:
        # ...its aggregator proxy span is the parent of ARC's request span, the parent of ARC's etcd span.
        ((proxy, arc, etcd),) = arc_requests_under(found, post)
        assert proxy.kind == "client" and post in ancestors(found, proxy), tree
        assert arc.name == "POST artifactworkflows", tree
        assert etcd and all(e.tags["db.system"] == "etcd" for e in etcd), tree
        assert "etcd.create" in [e.name for e in etcd], tree
        assert all("/artifactworkflows/arc-demo/" in str(e.tags["etcd.key"]) for e in etcd), tree
    assert len(posts) == len(created), tree  # one trace for the reconcile that created them all


def test_the_workflows_trace_id_is_found_in_the_backend(traced: LocalCluster, kubectl: Kubectl) -> None:
    kubectl.run("apply", "-k", str(REPO_ROOT / "deploy" / "examples"))
    workflows = eventually(
        lambda: [
            wf
            for wf in kubectl.json("get", "workflows.argoproj.io", "-n", "arc-demo")["items"]
            if ANNOTATION_TRACE_ID in wf["metadata"].get("annotations", {})
        ],
        what="Workflows with a trace id",
    )
    wf = workflows[0]
    trace_id = wf["metadata"]["annotations"][ANNOTATION_TRACE_ID]

    def created_the_workflow(trace: Trace) -> bool:
        return any(
            s.service == KUBE_APISERVER_SERVICE
            and s.name.startswith("POST ")
            and s.name.endswith("/workflows")
            for s in trace.spans
        )

    found = trace_with(traced, trace_id, created_the_workflow, "kube-apiserver's POST of the Workflow")
    tree = found.describe()
    (reconcile,) = [s for s in found.of_service(CONTROLLERS) if s.name == "reconcile artifactworkflow"]
    assert reconcile.tags["k8s.object.name"] == wf["metadata"]["name"], tree
    post = next(
        s for s in found.spans if s.service == KUBE_APISERVER_SERVICE and s.name.endswith("/workflows")
    )
    assert found.parent(post) == reconcile, tree


def test_an_apply_with_traceparent_lands_in_one_trace_through_kube_apiserver_into_arc(
    traced: LocalCluster, kubectl: Kubectl, tmp_path: Path
) -> None:
    """kubectl cannot add a header; an apply client instrumented with OpenTelemetry (client-go's otelhttp
    transport) sends its server-side apply PATCH with ``traceparent`` — the request below, as the admin."""
    namespace = f"traces-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", namespace)
    trace_id, client_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    order = {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "Order",
        "metadata": {"name": "traced", "namespace": namespace},
        "spec": {
            "defaults": {"srcRef": {"name": "docker-hub"}, "dstRef": {"name": "internal-registry"}},
            "artifacts": [{"type": "oci", "spec": {"image": "library/alpine:3.20"}}],
        },
    }
    traced.admin().request(
        "PATCH",
        f"/apis/arc.opendefense.cloud/v1alpha1/namespaces/{namespace}/orders/traced"
        "?fieldManager=kubectl-client-side-apply&force=true",
        body=json.dumps(order).encode(),
        content_type="application/apply-patch+yaml",
        headers={"traceparent": f"00-{trace_id}-{client_span}-01"},
    )
    assert kubectl.json("get", "order", "traced", "-n", namespace)["metadata"]["name"] == "traced"
    found = trace_with(traced, trace_id, has_etcd_under_kube, "ARC's etcd spans under kube-apiserver")
    tree = found.describe()
    (patch,) = [s for s in found.of_service(KUBE_APISERVER_SERVICE) if s.parent_id == client_span]
    assert (
        patch.kind == "server" and patch.name.startswith("PATCH ") and patch.name.endswith("/orders/{:name}")
    ), tree
    ((proxy, arc, etcd),) = arc_requests_under(found, patch)
    assert proxy.kind == "client" and found.parent(proxy) == patch, tree
    assert arc.name == "PATCH orders" and arc.tags["http.response.status_code"] == 201, tree
    assert "etcd.create" in [e.name for e in etcd], tree
    key = f"/registry/arc.opendefense.cloud/orders/{namespace}/traced"
    assert all(e.tags["etcd.key"] == key for e in etcd), tree


def test_the_documented_commands_follow_an_order_into_jaeger(
    traced: LocalCluster, kubectl: Kubectl, tmp_path: Path
) -> None:
    """docs/operations.md "Follow one Order through traces", verbatim, in a directory whose .arc/ is the
    stack's work directory (as in a checkout after ``make run``)."""
    kubectl.run("apply", "-k", str(REPO_ROOT / "deploy" / "examples"))
    eventually(
        lambda: kubectl.json("get", "artifactworkflows", "-n", "arc-demo")["items"],
        what="the demo's ArtifactWorkflows",
    )
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    section = text.split("### Follow one Order through traces", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, blocks
    (tmp_path / ".arc").symlink_to(traced.work_dir)
    script = "set -euo pipefail\n" + blocks[0] + 'echo "TRACE_ID=$TRACE_ID"\n' + blocks[1]

    def run() -> str | None:
        proc = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        out = proc.stdout
        if proc.returncode == 0 and "arc-apiserver etcd." in out and '"trace_id"' in out:
            return out
        return None

    out = eventually(run, timeout=60, what="the documented commands printing the whole trace")
    lines = out.splitlines()
    assert "arc-controller-manager reconcile order" in lines, out
    assert any(
        line.startswith(f"{KUBE_APISERVER_SERVICE} POST /apis/arc.opendefense.cloud/") for line in lines
    ), out
    assert "arc-apiserver POST artifactworkflows" in lines, out
    trace_id = next(line.split("=", 1)[1] for line in lines if line.startswith("TRACE_ID="))
    log_lines = [json.loads(line) for line in lines if line.startswith("{")]
    assert log_lines and all(r["trace_id"] == trace_id and r["controller"] == "order" for r in log_lines), out


def test_make_run_prints_the_trace_ui_and_every_component_reports_to_it(traced: LocalCluster) -> None:
    assert f"traces (Jaeger UI and query API /api/traces): {traced.jaeger.query_url}" in _banner(traced)
    services = eventually(
        lambda: (
            {KUBE_APISERVER_SERVICE, ARC, CONTROLLERS} <= set(traced.jaeger.services())
            and traced.jaeger.services()
        ),
        what="kube-apiserver, arc-apiserver and arc-controller-manager in Jaeger's services",
    )
    assert {KUBE_APISERVER_SERVICE, ARC, CONTROLLERS} <= set(services)
