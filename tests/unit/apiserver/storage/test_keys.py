from __future__ import annotations

import pytest

from apiserver.storage.keys import KeyLayout


def test_keys_follow_spec_layout() -> None:
    layout = KeyLayout()
    assert layout.object_key("orders", "o1", "team-a") == "/registry/arc.opendefense.cloud/orders/team-a/o1"
    assert (
        layout.object_key("clusterartifacttypes", "oci")
        == "/registry/arc.opendefense.cloud/clusterartifacttypes/oci"
    )
    assert layout.resource_prefix("orders") == "/registry/arc.opendefense.cloud/orders/"
    assert layout.namespace_prefix("orders", "team-a") == "/registry/arc.opendefense.cloud/orders/team-a/"


def test_prefix_is_configurable() -> None:
    assert (
        KeyLayout(prefix="/arc/").object_key("orders", "o1", "ns")
        == "/arc/arc.opendefense.cloud/orders/ns/o1"
    )


@pytest.mark.parametrize("segment", ["", "a/b", ".", ".."])
def test_segments_cannot_escape(segment: str) -> None:
    layout = KeyLayout()
    with pytest.raises(ValueError):
        layout.object_key("orders", segment, "ns")
    with pytest.raises(ValueError):
        layout.namespace_prefix("orders", segment)
    with pytest.raises(ValueError):
        layout.resource_prefix(segment)


def test_watches_share_the_resource_prefix() -> None:
    layout = KeyLayout()
    resource = layout.resource_prefix("orders")
    assert layout.shared_watch_prefix(layout.namespace_prefix("orders", "ns")) == resource
    assert layout.shared_watch_prefix(resource) == resource
    assert layout.shared_watch_prefix("/elsewhere/x/") == "/elsewhere/x/"
    assert layout.shared_watch_prefix(layout.group_prefix) == layout.group_prefix


def test_resource_label_for_metrics() -> None:
    layout = KeyLayout()
    assert layout.resource_label(layout.object_key("orders", "o1", "ns")) == "orders.arc.opendefense.cloud"
    assert layout.resource_label(layout.resource_prefix("endpoints")) == "endpoints.arc.opendefense.cloud"
    assert layout.resource_label("compact_rev_key") == "other"
