"""The fuzzer of tests/integration/apiserver/openapi_fuzz.py through kube-apiserver's aggregation layer
(issue 14): every operation of ARC's OpenAPI document, as the cluster admin, proxied to ARC with the
front-proxy identity. The same oracle: no answer >= 500, every 4xx a Status, no traceback in ARC's log.
A short, derandomized run (``FUZZ_E2E_PER_OPERATION``, default 6 requests per operation).
"""

from __future__ import annotations

import dataclasses
import json
import os
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from hack.cluster import LocalCluster
from tests.e2e.conftest import Kubectl
from tests.integration.apiserver.openapi_fuzz import (
    GROUP,
    Client,
    FuzzRequest,
    Oracle,
    Target,
    assert_clean,
    fuzz,
    known_findings,
    operations,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def dry_runs_outside(namespaces: tuple[str, ...]) -> Callable[[FuzzRequest], FuzzRequest]:
    """Writes outside the fuzzer's own namespaces become dry runs: the cluster is shared with the other e2e
    tests (a deletecollection of ClusterArtifactTypes, or of Orders in a namespace the generator happened
    to name, would remove theirs). Dry runs are still decoded, validated, admitted and authorized in full."""
    ours = {f"/namespaces/{quote(ns, safe='')}/" for ns in namespaces}

    def adjust(request: FuzzRequest) -> FuzzRequest:
        if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return request
        if not request.op.cluster_scoped and any(prefix in request.path for prefix in ours):
            return request
        query = [(k, v) for k, v in request.query if k != "dryRun"] + [("dryRun", "All")]
        return dataclasses.replace(request, query=query)

    return adjust


@pytest.fixture(scope="module")
def aggregated(local_cluster: LocalCluster, kubectl: Kubectl) -> Iterator[Target]:
    suffix = uuid.uuid4().hex[:6]
    namespaces = (f"fz-a-{suffix}", f"fz-b-{suffix}")
    for ns in namespaces:
        kubectl.run("create", "namespace", ns)
    context = ssl.create_default_context(cafile=str(local_cluster.pki_dir / "ca.crt"))
    context.load_cert_chain(
        str(local_cluster.pki_dir / "admin.crt"), str(local_cluster.pki_dir / "admin.key")
    )
    client = Client("127.0.0.1", local_cluster.ports.kube_apiserver, context, {})
    # ARC's own document (the one it serves); its non-resource paths would reach kube-apiserver, not ARC.
    document = json.loads((REPO / "api/openapi-spec/v2.json").read_text())
    ops = [op for op in operations(document) if op.path.startswith(f"/apis/{GROUP}")]
    log_file = local_cluster.component("arc-apiserver").log_file
    try:
        yield Target(client, ops, namespaces, log_file, adjust=dry_runs_outside(namespaces))
    finally:
        client.close()
        for ns in namespaces:
            kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
        kubectl.run(
            "delete", f"clusterartifacttypes.{GROUP}", "seed-0", "seed-1", "--wait=false", check=False
        )


def test_fuzz_through_the_aggregator(aggregated: Target) -> None:
    log_start = len(aggregated.log_text())
    oracle = Oracle(known=known_findings(aggregated))
    per_operation = int(os.environ.get("FUZZ_E2E_PER_OPERATION", "6"))
    fuzz(aggregated, oracle, per_operation=per_operation, deadline=time.monotonic() + 150)
    assert oracle.requests >= len(aggregated.ops) * min(per_operation, 3)
    assert_clean(aggregated, oracle, log_start)
