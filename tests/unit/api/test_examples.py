"""deploy/examples parse, have no unknown fields, validate, and reference each other consistently."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.arc.v1alpha1 import defaults, validation
from api.arc.v1alpha1.types import ClusterArtifactType, Endpoint, Order
from api.resources import BY_KIND
from api.schema import unknown_fields

EXAMPLES = Path(__file__).resolve().parents[3] / "deploy" / "examples"


def _docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


DOCS = _docs()
ARC = [d for d in DOCS if d["apiVersion"] == "arc.opendefense.cloud/v1alpha1"]


def test_expected_set() -> None:
    kinds = sorted(d["kind"] for d in DOCS)
    assert kinds == ["ClusterArtifactType", "Endpoint", "Endpoint", "Namespace", "Order", "Secret", "Secret"]
    listed = yaml.safe_load((EXAMPLES / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("doc", ARC, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_arc_objects_validate(doc: dict[str, Any]) -> None:
    info = BY_KIND[doc["kind"]]
    assert unknown_fields(info.model, doc) == []
    obj = info.model.model_validate(doc)
    defaults.set_defaults(obj)
    assert validation.validate(obj) == []


def test_secrets_are_dockerconfigjson() -> None:
    secrets = [d for d in DOCS if d["kind"] == "Secret"]
    for s in secrets:
        assert s["type"] == "kubernetes.io/dockerconfigjson"
        config = json.loads(base64.b64decode(s["data"][".dockerconfigjson"]))
        for entry in config["auths"].values():
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            assert (user, password) == (entry["username"], entry["password"])
            assert "fake" in password


def test_references_resolve() -> None:
    endpoints = {d["metadata"]["name"]: Endpoint.model_validate(d) for d in ARC if d["kind"] == "Endpoint"}
    secrets = {d["metadata"]["name"] for d in DOCS if d["kind"] == "Secret"}
    types = {
        d["metadata"]["name"]: ClusterArtifactType.model_validate(d)
        for d in ARC
        if d["kind"] == "ClusterArtifactType"
    }
    (order_doc,) = [d for d in ARC if d["kind"] == "Order"]
    order = Order.model_validate(order_doc)
    assert order.spec.artifacts is not None and len(order.spec.artifacts) == 2
    for ep in endpoints.values():
        assert ep.spec.secret_ref is not None and ep.spec.secret_ref.name in secrets
    assert order.spec.defaults is not None and order.spec.defaults.src_ref and order.spec.defaults.dst_ref
    src = endpoints[order.spec.defaults.src_ref.name]
    dst = endpoints[order.spec.defaults.dst_ref.name]
    assert src.spec.usage in ("PullOnly", "All") and dst.spec.usage in ("PushOnly", "All")
    for artifact in order.spec.artifacts:
        rules = types[artifact.type].spec.rules
        assert rules is not None
        assert src.spec.type in (rules.src_types or [src.spec.type])
        assert dst.spec.type in (rules.dst_types or [dst.spec.type])
