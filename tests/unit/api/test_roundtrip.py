"""Round trips: wire form → model → wire form is lossless, for every kind and the meta types."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel

from api import meta
from api.arc.v1alpha1.types import Order
from api.meta import dump
from api.resources import RESOURCES

from .strategies import for_model

MODELS: list[type[BaseModel]] = [
    *(r.model for r in RESOURCES),
    *(r.list_model for r in RESOURCES),
    meta.Status,
    meta.Table,
    meta.PartialObjectMetadataList,
    meta.WatchEvent,
    meta.DeleteOptions,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_round_trip(model: type[BaseModel]) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(obj=for_model(model))
    def check(obj: BaseModel) -> None:
        wire = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
        assert model.model_validate(wire) == obj
        # and the wire form is stable through a second pass
        assert dump(model.model_validate(wire)) == wire

    check()


def test_artifact_spec_keeps_nulls() -> None:
    wire: dict[str, Any] = {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "Order",
        "metadata": {"name": "o", "namespace": "n"},
        "spec": {
            "artifacts": [
                {
                    "type": "oci",
                    "srcRef": {"name": "a"},
                    "spec": {"image": "x", "tag": None, "opts": {"tlsVerify": None}, "list": [None, 1]},
                }
            ]
        },
    }
    order = Order.model_validate(wire)
    assert dump(order) == wire
    assert order.model_dump_json(exclude_none=True).count("null") == 3


def test_omitempty_and_camel_case() -> None:
    order = Order.model_validate({"metadata": {"name": "o"}, "spec": {"queueName": "q"}})
    assert order.spec.queue_name == "q"
    assert dump(order) == {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": "Order",
        "metadata": {"name": "o"},
        "spec": {"queueName": "q"},
    }


def test_timestamps_and_resource_version_kept_verbatim() -> None:
    wire = {
        "metadata": {
            "name": "o",
            "creationTimestamp": "2026-11-21T10:00:00Z",
            "resourceVersion": "000123",
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Apply",
                    "time": "2026-11-21T10:00:00Z",
                    "fieldsV1": {"f:spec": {}},
                }
            ],
        }
    }
    out = dump(Order.model_validate(wire))["metadata"]
    assert out == wire["metadata"]


def test_list_meta_continue_alias() -> None:
    lm = meta.ListMeta.model_validate({"continue": "abc", "remainingItemCount": 3})
    assert lm.continue_ == "abc"
    assert dump(lm) == {"continue": "abc", "remainingItemCount": 3}


def test_remote_url_alias() -> None:
    from api.arc.v1alpha1.types import Endpoint

    ep = Endpoint.model_validate({"spec": {"type": "oci", "remoteURL": "ghcr.io"}})
    assert ep.spec.remote_url == "ghcr.io"
    assert dump(ep)["spec"] == {"type": "oci", "remoteURL": "ghcr.io"}
