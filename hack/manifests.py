"""Reading upstream manifests and waiting for CRDs: shared by hack/argo.py and hack/kueue.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hack.kube import KubeHTTP


def documents(path: Path) -> Iterator[dict[str, Any]]:
    """The non-empty YAML documents of ``path``."""
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            yield doc


def wait_for_crds(client: KubeHTTP, names: list[str], *, timeout: float) -> None:
    """Poll until every named CustomResourceDefinition is Established (its kinds are served)."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        crd = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{pending[0]}")
        conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
        if conditions.get("Established") == "True":
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"CRD {pending[0]} not Established after {timeout:.0f}s")
        time.sleep(0.2)


def install_crds_and_rbac(
    client: KubeHTTP, namespace_manifest: Path, crds: list[dict[str, Any]], rbac: list[dict[str, Any]]
) -> None:
    """An upstream component's namespace, its CRDs (waited on until Established) and its RBAC."""
    client.apply_manifest(namespace_manifest)
    for crd in crds:
        client.apply(crd)
    wait_for_crds(client, [crd["metadata"]["name"] for crd in crds], timeout=60)
    for obj in rbac:
        client.apply(obj)
