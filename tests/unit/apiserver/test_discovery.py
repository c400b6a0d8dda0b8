"""Discovery and OpenAPI documents as kubectl and the aggregator read them."""

from __future__ import annotations

from tests.unit.apiserver.conftest import GV, Api

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


async def test_group_version_resource_list(api: Api) -> None:
    status, doc, _ = await api.call("GET", GV)
    assert status == 200 and doc["kind"] == "APIResourceList"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["orders"]["shortNames"] == ["ord"]
    assert by_name["orders"]["categories"] == ["arc"]
    assert by_name["orders"]["verbs"] == [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
    assert by_name["orders/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["clusterartifacttypes"]["namespaced"] is False
    assert "artifacttypes/status" not in by_name


async def test_aggregated_discovery_has_the_exact_content_type(api: Api) -> None:
    status, doc, headers = await api.call(
        "GET", "/apis", headers={"Accept": f"{AGGREGATED},application/json"}
    )
    assert status == 200 and headers["Content-Type"] == AGGREGATED
    versions = doc["items"][0]["versions"]
    assert versions[0]["version"] == "v1alpha1" and versions[0]["freshness"] == "Current"
    status, _, _ = await api.call(
        "GET", "/apis", headers={"Accept": AGGREGATED, "If-None-Match": headers["ETag"]}
    )
    assert status == 304
    status, legacy, headers = await api.call("GET", "/apis")
    assert legacy["kind"] == "APIGroupList" and headers["Content-Type"] == "application/json"


async def test_openapi_documents_with_etags(api: Api) -> None:
    status, v2, headers = await api.call("GET", "/openapi/v2")
    assert status == 200 and v2["swagger"] == "2.0"
    status, _, _ = await api.call("GET", "/openapi/v2", headers={"If-None-Match": headers["ETag"]})
    assert status == 304
    _, root, _ = await api.call("GET", "/openapi/v3")
    url = root["paths"]["apis/arc.opendefense.cloud/v1alpha1"]["serverRelativeURL"]
    status, v3, _ = await api.call("GET", url)
    assert status == 200 and v3["openapi"].startswith("3.")


async def test_metrics_use_kube_names(api: Api) -> None:
    await api.call("GET", f"{GV}/namespaces/x/orders")
    status, text, _ = await api.call("GET", "/metrics")
    assert status == 200
    assert (
        'apiserver_request_total{code="200",component="apiserver",dry_run="",group="arc.opendefense.cloud"'
        in text
    )
    assert "apiserver_request_duration_seconds_bucket" in text
