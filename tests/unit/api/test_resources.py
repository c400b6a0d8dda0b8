"""The resource table: SPEC §1 facts, lookups, printer columns and Table cells."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api import resources
from api.arc.v1alpha1.types import ClusterArtifactType, Endpoint, EndpointStatus, Order
from api.resources import RESOURCES, by_kind, by_plural, by_short_name, human_duration, resolve

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def test_spec_section_1_table() -> None:
    facts = {
        (r.kind, r.plural, r.singular, r.scope, r.short_names, r.categories, r.subresources)
        for r in RESOURCES
    }
    assert facts == {
        ("Order", "orders", "order", "Namespaced", ("ord",), ("arc",), ("status",)),
        (
            "ArtifactWorkflow",
            "artifactworkflows",
            "artifactworkflow",
            "Namespaced",
            ("aw",),
            ("arc",),
            ("status",),
        ),
        ("Endpoint", "endpoints", "endpoint", "Namespaced", ("ep-arc", "arcep"), ("arc",), ("status",)),
        ("ArtifactType", "artifacttypes", "artifacttype", "Namespaced", ("at",), ("arc",), ()),
        (
            "ClusterArtifactType",
            "clusterartifacttypes",
            "clusterartifacttype",
            "Cluster",
            ("cat",),
            ("arc",),
            (),
        ),
    }
    for r in RESOURCES:
        assert r.group == "arc.opendefense.cloud" and r.version == "v1alpha1"
        assert r.verbs == ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
        assert r.subresource_verbs == ("get", "patch", "update")
        assert "all" not in r.categories
        assert r.model.model_fields["kind"].default == r.kind
        assert r.list_model.model_fields["kind"].default == r.list_kind
        assert r.model.model_fields["api_version"].default == r.api_version


def test_selectable_fields_exist_in_the_schema() -> None:
    for r in RESOURCES:
        for path in r.selectable_fields:
            model = r.model
            for part in path.split("."):
                fields = {info.alias or name: info for name, info in model.model_fields.items()}
                assert part in fields, (r.kind, path)
                ann = fields[part].annotation
                model = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type)), ann)


def test_lookups() -> None:
    assert by_plural("orders") is resources.ORDER
    assert by_kind("Endpoint") is resources.ENDPOINT
    assert by_short_name("ep-arc") is by_short_name("arcep") is resources.ENDPOINT
    assert resolve("CAT") is resolve("clusterartifacttype") is resources.CLUSTER_ARTIFACT_TYPE
    assert resolve("pods") is None
    assert str(resources.ORDER.group_kind) == "Order.arc.opendefense.cloud"
    assert str(resources.ORDER.group_resource) == "orders.arc.opendefense.cloud"
    assert resources.info_for(Order()) is resources.ORDER


def _headers(kind: str) -> list[tuple[str, int]]:
    r = by_kind(kind)
    assert r is not None
    return [(c.name.upper(), c.priority) for c in r.column_definitions()]


def test_printer_columns_per_spec() -> None:
    assert _headers("Order") == [
        ("NAME", 0),
        ("PHASE", 0),
        ("PROGRESS", 0),
        ("AGE", 0),
        ("LAST SCHEDULE", 1),
        ("MESSAGE", 1),
    ]
    assert _headers("ArtifactWorkflow") == [
        ("NAME", 0),
        ("TYPE", 0),
        ("PHASE", 0),
        ("WORKFLOW", 0),
        ("AGE", 0),
        ("MESSAGE", 1),
        ("DIGEST", 1),
        ("VERIFIED-BY", 1),
    ]
    assert _headers("Endpoint") == [
        ("NAME", 0),
        ("TYPE", 0),
        ("URL", 0),
        ("USAGE", 0),
        ("SECRET", 0),
        ("READY", 0),
        ("AGE", 0),
        ("MESSAGE", 0),
    ]
    expected = [("NAME", 0), ("TEMPLATE", 0), ("CLUSTER-SCOPE-TEMPLATE", 0), ("AGE", 0), ("PARAMETERS", 1)]
    assert _headers("ArtifactType") == _headers("ClusterArtifactType") == expected
    name = resources.ORDER.column_definitions()[0]
    assert (name.name, name.type, name.format) == ("Name", "string", "name")
    assert all(c.description for r in RESOURCES for c in r.column_definitions())


def test_order_cells() -> None:
    order = Order.model_validate(
        {
            "metadata": {"name": "mirror", "creationTimestamp": "2026-11-21T11:55:00Z"},
            "status": {
                "phase": "Running",
                "message": "1 of 3 done",
                "progress": {"total": 3, "succeeded": 2},
            },
        }
    )
    assert resources.ORDER.row_cells(order, NOW) == ["mirror", "Running", "2/3", "5m", None, "1 of 3 done"]
    assert resources.ORDER.row_cells(Order.model_validate({"metadata": {"name": "new"}}), NOW) == [
        "new",
        None,
        None,
        None,
        None,
        None,
    ]
    scheduled = order.model_copy(deep=True)
    assert scheduled.status is not None
    scheduled.status.last_schedule_time = "2026-11-21T11:58:00Z"
    assert resources.ORDER.row_cells(scheduled, NOW)[4] == "2m"  # LAST SCHEDULE: an age, as CronJob's


def test_endpoint_and_type_cells() -> None:
    ep = Endpoint.model_validate(
        {
            "metadata": {"name": "hub", "creationTimestamp": "2026-11-19T09:00:00Z"},
            "spec": {
                "type": "oci",
                "remoteURL": "docker.io",
                "usage": "PullOnly",
                "secretRef": {"name": "creds"},
            },
        }
    )
    assert resources.ENDPOINT.row_cells(ep, NOW) == [
        "hub",
        "oci",
        "docker.io",
        "PullOnly",
        "creds",
        None,
        "2d3h",
        None,
    ]
    probed = ep.model_copy(
        update={
            "status": EndpointStatus.model_validate(
                {
                    "conditions": [
                        {"type": "Reachable", "status": "True", "reason": "Reachable", "message": "up"},
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "Unauthorized",
                            "message": "docker.io rejected the credentials (401 Unauthorized)",
                        },
                    ]
                }
            )
        }
    )
    cells = resources.ENDPOINT.row_cells(probed, NOW)
    assert cells[5:] == ["False", "2d3h", "docker.io rejected the credentials (401 Unauthorized)"]
    cat = ClusterArtifactType.model_validate(
        {
            "metadata": {"name": "oci", "creationTimestamp": "bogus"},
            "spec": {
                "workflowTemplateRef": {"name": "oci-copy", "clusterScope": True},
                "parameters": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}],
            },
        }
    )
    assert resources.CLUSTER_ARTIFACT_TYPE.row_cells(cat, NOW) == [
        "oci",
        "oci-copy",
        True,
        "<invalid>",
        "a,b",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (45, "45s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (9 * 3600, "9h"),
        (50 * 3600, "2d2h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400, "3y"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text
