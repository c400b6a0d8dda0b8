"""OpenAPI schemas of the custom resources the chart renders, from the projects' own CRD manifests in their
pinned Go modules: kubernetes-validate ships schemas of Kubernetes' built-in kinds only.

Argo's come from the Argo module the stack already builds (``hack.argo.module_dir``); cert-manager's
(``deploy/crds``) and the Prometheus Operator's (``example/prometheus-operator-crd``) are downloaded into the
Go module cache on first use (``go mod download``; the module proxy is one of the reachable registries).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from hack import argo
from hack.binaries import go_module_cache

#: group → (module, version, directory of its CRD manifests inside the module)
CRD_MODULES: dict[str, tuple[str, str, str]] = {
    "cert-manager.io": ("github.com/cert-manager/cert-manager", "v1.16.2", "deploy/crds"),
    "monitoring.coreos.com": (
        "github.com/prometheus-operator/prometheus-operator",
        "v0.79.2",
        "example/prometheus-operator-crd",
    ),
}


def module_dir(module: str, version: str) -> Path:
    """The module's sources in the Go module cache, downloaded if they are not there yet."""
    cached = go_module_cache() / f"{module}@{version}"
    if cached.is_dir():
        return cached
    env = {**os.environ, "GOMODCACHE": str(go_module_cache()), "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return Path(json.loads(proc.stdout)["Dir"])


def crd_directory(group: str) -> Path:
    if group == "argoproj.io":
        return argo.module_dir() / "manifests" / "base" / "crds" / "full"
    module, version, directory = CRD_MODULES[group]
    return module_dir(module, version) / directory


@functools.cache
def crd(group: str, kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of ``kind`` in ``group``, from the project's manifest (the file named
    after the kind's plural, as all three projects name them). Template markers of the projects' own Helm
    charts (in cert-manager's labels) are left out: only name and spec are kept."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(crd_directory(group).glob(f"*{kind.lower()}s.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=loader):
            if (
                doc
                and doc.get("kind") == "CustomResourceDefinition"
                and doc["spec"]["group"] == group
                and doc["spec"]["names"]["kind"] == kind
            ):
                return {
                    "apiVersion": doc["apiVersion"],
                    "kind": doc["kind"],
                    "metadata": {"name": doc["metadata"]["name"]},
                    "spec": doc["spec"],
                }
    raise KeyError(f"no CRD for {group} {kind} in {crd_directory(group)}")


def schema(group: str, version: str, kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of ``kind`` in ``group/version``."""
    for served in crd(group, kind)["spec"]["versions"]:
        if served["name"] == version:
            return dict(served["schema"]["openAPIV3Schema"])
    raise KeyError(f"{group} {kind} has no version {version}")
