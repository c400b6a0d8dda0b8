"""RequestInfo against kube's requestinfo_test.go, plus the quirks the authorizer depends on.

The extra expectations (ARC paths, list-option decoding failures, `watch` spellings) were produced by
running k8s.io/apiserver v0.33.13's `NewRequestInfo` on the same requests.
"""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict, MultiDictProxy

from apiserver.requestinfo import (
    RequestInfo,
    RequestInfoError,
    RequestInfoFactory,
    is_valid_path_segment_name,
    new_request_info,
    parse_query,
    request_info_from,
)


def info(method: str, url: str) -> RequestInfo:
    """Like Go's `http.NewRequest(method, url)`: the path is decoded, the query stays raw."""
    path, _, query = url.partition("?")
    return new_request_info(method, unquote(path), query)


# --- TestGetAPIRequestInfo --------------------------------------------------------------------------------

# method, url, verb, prefix, group, version, namespace, resource, subresource, name, parts
API_REQUESTS = [
    # resource paths
    ("GET", "/api/v1/namespaces", "list", "api", "", "v1", "", "namespaces", "", "", ["namespaces"]),
    (
        "GET",
        "/api/v1/namespaces/other",
        "get",
        "api",
        "",
        "v1",
        "other",
        "namespaces",
        "",
        "other",
        ["namespaces", "other"],
    ),
    ("GET", "/api/v1/namespaces/other/pods", "list", "api", "", "v1", "other", "pods", "", "", ["pods"]),
    (
        "GET",
        "/api/v1/namespaces/other/pods/foo",
        "get",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "",
        "foo",
        ["pods", "foo"],
    ),
    (
        "HEAD",
        "/api/v1/namespaces/other/pods/foo",
        "get",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "",
        "foo",
        ["pods", "foo"],
    ),
    ("GET", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", ["pods"]),
    ("HEAD", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", ["pods"]),
    # special verbs
    (
        "GET",
        "/api/v1/proxy/namespaces/other/pods/foo",
        "proxy",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "",
        "foo",
        ["pods", "foo"],
    ),
    (
        "GET",
        "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource",
        "proxy",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "",
        "foo",
        ["pods", "foo", "subpath", "not", "a", "subresource"],
    ),
    ("GET", "/api/v1/watch/pods", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]),
    ("GET", "/api/v1/pods?watch=true", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]),
    ("GET", "/api/v1/pods?watch=false", "list", "api", "", "v1", "", "pods", "", "", ["pods"]),
    (
        "GET",
        "/api/v1/watch/namespaces/other/pods",
        "watch",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "",
        "",
        ["pods"],
    ),
    (
        "GET",
        "/api/v1/namespaces/other/pods?watch=1",
        "watch",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "",
        "",
        ["pods"],
    ),
    (
        "GET",
        "/api/v1/namespaces/other/pods?watch=0",
        "list",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "",
        "",
        ["pods"],
    ),
    # subresource identification
    (
        "GET",
        "/api/v1/namespaces/other/pods/foo/status",
        "get",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "status",
        "foo",
        ["pods", "foo", "status"],
    ),
    (
        "GET",
        "/api/v1/namespaces/other/pods/foo/proxy/subpath",
        "get",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "proxy",
        "foo",
        ["pods", "foo", "proxy", "subpath"],
    ),
    (
        "PUT",
        "/api/v1/namespaces/other/finalize",
        "update",
        "api",
        "",
        "v1",
        "other",
        "namespaces",
        "finalize",
        "other",
        ["namespaces", "other", "finalize"],
    ),
    (
        "PUT",
        "/api/v1/namespaces/other/status",
        "update",
        "api",
        "",
        "v1",
        "other",
        "namespaces",
        "status",
        "other",
        ["namespaces", "other", "status"],
    ),
    # verb identification
    (
        "PATCH",
        "/api/v1/namespaces/other/pods/foo",
        "patch",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "",
        "foo",
        ["pods", "foo"],
    ),
    (
        "DELETE",
        "/api/v1/namespaces/other/pods/foo",
        "delete",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "",
        "foo",
        ["pods", "foo"],
    ),
    ("POST", "/api/v1/namespaces/other/pods", "create", "api", "", "v1", "other", "pods", "", "", ["pods"]),
    # deletecollection verb identification
    ("DELETE", "/api/v1/nodes", "deletecollection", "api", "", "v1", "", "nodes", "", "", ["nodes"]),
    (
        "DELETE",
        "/api/v1/namespaces",
        "deletecollection",
        "api",
        "",
        "v1",
        "",
        "namespaces",
        "",
        "",
        ["namespaces"],
    ),
    (
        "DELETE",
        "/api/v1/namespaces/other/pods",
        "deletecollection",
        "api",
        "",
        "v1",
        "other",
        "pods",
        "",
        "",
        ["pods"],
    ),
    (
        "DELETE",
        "/apis/extensions/v1/namespaces/other/pods",
        "deletecollection",
        "apis",
        "extensions",
        "v1",
        "other",
        "pods",
        "",
        "",
        ["pods"],
    ),
    # api group identification
    (
        "POST",
        "/apis/extensions/v1/namespaces/other/pods",
        "create",
        "apis",
        "extensions",
        "v1",
        "other",
        "pods",
        "",
        "",
        ["pods"],
    ),
    # api version identification
    (
        "POST",
        "/apis/extensions/v1beta3/namespaces/other/pods",
        "create",
        "apis",
        "extensions",
        "v1beta3",
        "other",
        "pods",
        "",
        "",
        ["pods"],
    ),
    # --- beyond kube's table: ARC's own paths and edge cases ---
    (
        "GET",
        "/apis/arc.example.com/v1alpha1/namespaces/ns/orders",
        "list",
        "apis",
        "arc.example.com",
        "v1alpha1",
        "ns",
        "orders",
        "",
        "",
        ["orders"],
    ),
    (
        "PUT",
        "/apis/arc.example.com/v1alpha1/namespaces/ns/orders/o1/status",
        "update",
        "apis",
        "arc.example.com",
        "v1alpha1",
        "ns",
        "orders",
        "status",
        "o1",
        ["orders", "o1", "status"],
    ),
    (
        "GET",
        "/apis/arc.example.com/v1alpha1/orders",
        "list",
        "apis",
        "arc.example.com",
        "v1alpha1",
        "",
        "orders",
        "",
        "",
        ["orders"],
    ),
    (
        "GET",
        "/apis/g/v/namespaces/ns/orders/foo/status/extra",
        "get",
        "apis",
        "g",
        "v",
        "ns",
        "orders",
        "status",
        "foo",
        ["orders", "foo", "status", "extra"],
    ),
    ("GET", "/apis/g/v/namespaces", "list", "apis", "g", "v", "", "namespaces", "", "", ["namespaces"]),
    (
        "GET",
        "/apis/g/v/namespaces/ns/",
        "get",
        "apis",
        "g",
        "v",
        "ns",
        "namespaces",
        "",
        "ns",
        ["namespaces", "ns"],
    ),
    (
        "GET",
        "/apis/g/v/watch/namespaces/ns",
        "watch",
        "apis",
        "g",
        "v",
        "ns",
        "namespaces",
        "",
        "ns",
        ["namespaces", "ns"],
    ),
    (
        "GET",
        "/apis/g/v/watch/namespaces/ns/orders/foo",
        "watch",
        "apis",
        "g",
        "v",
        "ns",
        "orders",
        "",
        "foo",
        ["orders", "foo"],
    ),
    (
        "GET",
        "/apis/g/v/proxy/nodes/n1/a/b",
        "proxy",
        "apis",
        "g",
        "v",
        "",
        "nodes",
        "",
        "n1",
        ["nodes", "n1", "a", "b"],
    ),
    (
        "POST",
        "/apis/g/v/namespaces/ns/orders/foo/eviction",
        "create",
        "apis",
        "g",
        "v",
        "ns",
        "orders",
        "eviction",
        "foo",
        ["orders", "foo", "eviction"],
    ),
    # an empty segment is kept (Go's strings.Split)
    ("GET", "/apis/g/v//orders", "get", "apis", "g", "v", "", "", "", "orders", ["", "orders"]),
    # a method kube does not map has no verb; methods are case-sensitive
    ("OPTIONS", "/apis/g/v/namespaces/ns/orders", "", "apis", "g", "v", "ns", "orders", "", "", ["orders"]),
    ("get", "/apis/g/v/namespaces/ns/orders", "", "apis", "g", "v", "ns", "orders", "", "", ["orders"]),
]


@pytest.mark.parametrize(
    (
        "method",
        "url",
        "verb",
        "prefix",
        "group",
        "version",
        "namespace",
        "resource",
        "subresource",
        "name",
        "parts",
    ),
    API_REQUESTS,
)
def test_api_request_info(
    method: str,
    url: str,
    verb: str,
    prefix: str,
    group: str,
    version: str,
    namespace: str,
    resource: str,
    subresource: str,
    name: str,
    parts: list[str],
) -> None:
    ri = info(method, url)
    assert ri.is_resource_request
    assert (ri.verb, ri.api_prefix, ri.api_group, ri.api_version) == (verb, prefix, group, version)
    assert (ri.namespace, ri.resource, ri.subresource, ri.name) == (namespace, resource, subresource, name)
    assert ri.parts == tuple(parts)
    assert ri.path == unquote(url.partition("?")[0])


# --- TestGetNonAPIRequestInfo and non-resource paths -------------------------------------------------------

NON_RESOURCE = [
    # kube's error cases: not resource requests, no error
    ("GET", "/", "get", ""),
    ("GET", "/api/version/", "get", ""),
    ("GET", "/apis/group/version/", "get", "apis"),
    ("GET", "/badprefix/version/resource", "get", ""),
    ("GET", "/apis/version/resource", "get", "apis"),
    ("GET", "/not-api/version/resource", "get", ""),
    ("GET", "/apis/extensions/v1beta1", "get", "apis"),
    ("GET", "/apis/extensions/v1beta1/", "get", "apis"),
    ("GET", "/api/version", "get", ""),
    ("GET", "/api", "get", ""),
    ("GET", "", "get", ""),
    # discovery, health, openapi, version: the verb is the lower-cased method
    ("GET", "/apis", "get", ""),
    ("GET", "/apis/arc.example.com", "get", ""),
    ("GET", "/apis/arc.example.com/v1alpha1", "get", "apis"),
    ("POST", "/apis/arc.example.com/v1alpha1", "post", "apis"),
    ("GET", "/api/v1", "get", ""),
    ("GET", "/healthz", "get", ""),
    ("GET", "/readyz/etcd", "get", ""),
    ("GET", "/openapi/v2", "get", ""),
    ("GET", "/openapi/v3/apis/arc.example.com/v1alpha1", "get", ""),
    ("GET", "/version", "get", ""),
    ("HEAD", "/healthz", "head", ""),
    ("DELETE", "/metrics", "delete", ""),
]


@pytest.mark.parametrize(("method", "url", "verb", "prefix"), NON_RESOURCE)
def test_non_resource_request_info(method: str, url: str, verb: str, prefix: str) -> None:
    ri = info(method, url)
    assert ri == RequestInfo(False, url, verb, api_prefix=prefix)


RESOURCE_OR_NOT = [
    ("/api/version/resource", True),
    ("/apis/group/version/resource/name/subresource", True),
    ("/api/version/resource/name/subresource", True),
    ("/apis/batch/v1/job", True),
    ("/apis/batch/v1/job/foo", True),
    ("/apis/batch/v1/job/foo/scale", True),
    ("/not-api/version/resource", False),
    ("/apis/extensions/v1beta1", False),
    ("/apis/extensions/v1beta1/", False),
    ("/api/version", False),
    ("/api", False),
    ("/", False),
    ("", False),
]


@pytest.mark.parametrize(("url", "expected"), RESOURCE_OR_NOT)
def test_is_resource_request(url: str, expected: bool) -> None:
    assert info("GET", url).is_resource_request is expected


# --- special verb without a resource ----------------------------------------------------------------------

SPECIAL_VERB_ERRORS = [
    ("/api/v1/watch", "", "api", "", "v1", "unable to determine kind and namespace from url, /api/v1/watch"),
    (
        "/apis/g/v/proxy",
        "x=1",
        "apis",
        "g",
        "v",
        "unable to determine kind and namespace from url, /apis/g/v/proxy?x=1",
    ),
    (
        "/apis/g/v/watch/",
        "",
        "apis",
        "g",
        "v",
        "unable to determine kind and namespace from url, /apis/g/v/watch/",
    ),
]


@pytest.mark.parametrize(("path", "query", "prefix", "group", "version", "message"), SPECIAL_VERB_ERRORS)
def test_special_verb_without_resource(
    path: str, query: str, prefix: str, group: str, version: str, message: str
) -> None:
    with pytest.raises(RequestInfoError) as exc:
        new_request_info("GET", path, query)
    assert exc.value.message == message
    assert exc.value.request_info == RequestInfo(True, path, "get", prefix, group, version)


# --- TestSelectorParsing ----------------------------------------------------------------------------------

# method, url, name, verb, fieldSelector, labelSelector
SELECTOR_REQUESTS = [
    ("GET", "/apis/group/version/resource", "", "list", "", ""),
    (
        "GET",
        "/apis/group/version/resource?fieldSelector=metadata.name=name1",
        "name1",
        "list",
        "metadata.name=name1",
        "",
    ),
    (
        "GET",
        "/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1",
        "name1",
        "watch",
        "metadata.name=name1",
        "",
    ),
    (
        "GET",
        "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux",
        "",
        "list",
        "foo=bar",
        "baz=qux",
    ),
    (
        "GET",
        "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo",
        "",
        "list",
        "metadata.name=name1,foo",
        "",
    ),
    (
        "GET",
        "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true",
        "",
        "watch",
        "metadata.name=name1,foo",
        "",
    ),
    (
        "GET",
        "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false",
        "",
        "list",
        "metadata.name=name1,foo",
        "",
    ),
    (
        "DELETE",
        "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux",
        "",
        "deletecollection",
        "foo=bar",
        "baz=qux",
    ),
    (
        "GET",
        "/apis/group/version/resource?fieldSelector=metadata.name=foo&fieldSelector=metadata.name=bar"
        "&labelSelector=foo=bar&labelSelector=foo=baz",
        "foo",
        "list",
        "metadata.name=foo",
        "foo=bar",
    ),
    (
        "GET",
        "/apis/group/version/resource/name?fieldSelector=foo=bar&labelSelector=foo=bar",
        "name",
        "get",
        "",
        "",
    ),
    (
        "GET",
        "/apis/group/version/watch/resource?fieldSelector=metadata.name=foo&labelSelector=foo=bar",
        "",
        "watch",
        "",
        "",
    ),
    (
        "GET",
        "/apis/group/version/watch/resource/name?fieldSelector=metadata.name=foo&labelSelector=foo=bar",
        "name",
        "watch",
        "",
        "",
    ),
    # --- beyond kube's table (checked against kube) ---
    # any option that fails to decode drops the name, but not watch
    (
        "GET",
        "/apis/g/v/namespaces/ns/orders?fieldSelector=metadata.name%3Dfoo&limit=abc",
        "",
        "list",
        "metadata.name=foo",
        "",
    ),
    (
        "GET",
        "/apis/g/v/orders?fieldSelector=metadata.name%3Dfoo&timeoutSeconds=1.5",
        "",
        "list",
        "metadata.name=foo",
        "",
    ),
    (
        "GET",
        "/apis/g/v/orders?fieldSelector=metadata.name%3Dfoo&labelSelector=!!",
        "",
        "list",
        "metadata.name=foo",
        "!!",
    ),
    (
        "GET",
        "/apis/g/v/orders?fieldSelector=metadata.name%3Dfoo&limit=%2B5",
        "foo",
        "list",
        "metadata.name=foo",
        "",
    ),
    (
        "GET",
        "/apis/g/v/orders?fieldSelector=metadata.name%3Dfoo&limit=99999999999999999999",
        "",
        "list",
        "metadata.name=foo",
        "",
    ),
    # the name must be a valid path segment
    (
        "GET",
        "/apis/g/v/namespaces/ns/orders?fieldSelector=metadata.name%3D..&watch=1",
        "",
        "watch",
        "metadata.name=..",
        "",
    ),
    ("GET", "/apis/g/v/orders?fieldSelector=metadata.name%3Da%252Fb", "", "list", "metadata.name=a%2Fb", ""),
    ("GET", "/apis/g/v/orders?fieldSelector=metadata.name%3D", "", "list", "metadata.name=", ""),
    # only an equality pins the name; == counts, != does not
    ("GET", "/apis/g/v/orders?fieldSelector=metadata.name%3D%3Dfoo", "foo", "list", "metadata.name==foo", ""),
    ("GET", "/apis/g/v/orders?fieldSelector=metadata.name!%3Dfoo", "", "list", "metadata.name!=foo", ""),
    # deletecollection never takes the name from the selector
    (
        "DELETE",
        "/apis/g/v/namespaces/ns/orders?fieldSelector=metadata.name%3Dfoo",
        "",
        "deletecollection",
        "metadata.name=foo",
        "",
    ),
    # labelSelector is passed raw (decoded), + is a space
    ("GET", "/apis/g/v/orders?labelSelector=a+in+(b)&watch=FALSE", "", "list", "", "a in (b)"),
]


@pytest.mark.parametrize(
    ("method", "url", "name", "verb", "field_selector", "label_selector"), SELECTOR_REQUESTS
)
def test_selector_parsing(
    method: str, url: str, name: str, verb: str, field_selector: str, label_selector: str
) -> None:
    ri = info(method, url)
    assert (ri.name, ri.verb) == (name, verb)
    assert (ri.field_selector, ri.label_selector) == (field_selector, label_selector)


def test_selectors_not_recorded_without_authorize_with_selectors() -> None:
    factory = RequestInfoFactory(authorize_with_selectors=False)
    ri = factory.new_request_info(
        "GET", "/apis/g/v/orders", "fieldSelector=metadata.name%3Dfoo&labelSelector=a"
    )
    assert (ri.verb, ri.name, ri.field_selector, ri.label_selector) == ("list", "foo", "", "")


# --- watch=... --------------------------------------------------------------------------------------------

WATCH_VALUES = [
    ("watch=true", "watch"),
    ("watch=1", "watch"),
    ("watch=0", "list"),
    ("watch=false", "list"),
    ("watch=FALSE", "list"),
    ("watch=False", "list"),
    ("watch=", "watch"),
    ("watch", "watch"),
    ("watch=no", "watch"),
    ("watch=yes&watch=false", "watch"),
    ("watch=false&watch=yes", "list"),
    # strings.EqualFold folds the long s (U+017F) to s ...
    ("watch=fal%C5%BFe", "list"),
    # ... but when another option fails to decode kube re-reads watch with strings.ToLower, which does not
    ("watch=fal%C5%BFe&labelSelector=!!", "watch"),
    ("watch=FALSE&labelSelector=!!", "list"),
    ("watch=true&labelSelector=!!", "watch"),
    # pairs Go's url.ParseQuery rejects are dropped
    ("watch=%zz", "list"),
    ("watch=yes;x=1", "list"),
    ("watch=tru%65", "watch"),
    ("allowWatchBookmarks=true", "list"),
]


@pytest.mark.parametrize(("query", "verb"), WATCH_VALUES)
def test_watch_parameter(query: str, verb: str) -> None:
    assert new_request_info("GET", "/apis/g/v/orders", query).verb == verb


def test_query_as_mapping() -> None:
    ri = new_request_info(
        "GET", "/apis/g/v/namespaces/ns/orders", {"watch": ["1"], "fieldSelector": ["metadata.name=o1"]}
    )
    assert (ri.verb, ri.name, ri.field_selector) == ("watch", "o1", "metadata.name=o1")
    assert new_request_info("GET", "/apis/g/v/orders", {"watch": []}).verb == "list"


def test_query_as_multidict() -> None:
    # aiohttp's request.query: one value per item, repeated names allowed; the first value counts.
    query = MultiDictProxy(
        MultiDict([("watch", "false"), ("watch", "1"), ("fieldSelector", "metadata.name=o1")])
    )
    ri = new_request_info("GET", "/apis/g/v/namespaces/ns/orders", query)
    assert (ri.verb, ri.name, ri.field_selector) == ("list", "o1", "metadata.name=o1")
    assert (
        new_request_info("GET", "/apis/g/v/orders", MultiDictProxy(MultiDict([("watch", "")]))).verb
        == "watch"
    )


def test_query_as_single_values() -> None:
    assert new_request_info("GET", "/apis/g/v/orders", {"watch": ""}).verb == "watch"
    assert new_request_info("GET", "/apis/g/v/orders", {"watch": "0"}).verb == "list"
    ri = new_request_info("GET", "/apis/g/v/orders", {"labelSelector": "a=b", "limit": "x"})
    assert (ri.verb, ri.label_selector) == ("list", "a=b")


def test_request_info_from_never_raises() -> None:
    assert request_info_from("GET", "/api/v1/watch") == RequestInfo(
        True, "/api/v1/watch", "get", "api", "", "v1"
    )
    assert request_info_from("GET", "/healthz") == RequestInfo(False, "/healthz", "get")
    assert request_info_from("DELETE", "/apis/g/v/orders/o1", "") == new_request_info(
        "DELETE", "/apis/g/v/orders/o1"
    )


# --- helpers ----------------------------------------------------------------------------------------------

PARSE_QUERY = [
    ("", {}),
    ("a=1&b=2&a=3", {"a": ["1", "3"], "b": ["2"]}),
    ("a", {"a": [""]}),
    ("a=", {"a": [""]}),
    ("=x", {"": ["x"]}),
    ("&&a=1&", {"a": ["1"]}),
    ("a=b+c%20d", {"a": ["b c d"]}),
    ("a%3Db=c%3Dd", {"a=b": ["c=d"]}),
    ("a=1;b=2&c=3", {"c": ["3"]}),
    ("a=%zz&b=%4", {}),
    ("a=%41%", {}),
    ("k=%E2%9C%93", {"k": ["✓"]}),
    ("k=%FF", {"k": ["\ufffd"]}),
    ("a=b=c", {"a": ["b=c"]}),
]


@pytest.mark.parametrize(("raw", "expected"), PARSE_QUERY)
def test_parse_query(raw: str, expected: dict[str, list[str]]) -> None:
    assert parse_query(raw) == expected


@pytest.mark.parametrize(
    ("name", "valid"),
    [("foo", True), ("", True), (".", False), ("..", False), ("a/b", False), ("a%b", False)],
)
def test_is_valid_path_segment_name(name: str, valid: bool) -> None:
    assert is_valid_path_segment_name(name) is valid


_segment = st.sampled_from(
    ["api", "apis", "v1", "g", "namespaces", "ns", "orders", "o1", "status", "finalize", "watch", "proxy", ""]
)


@given(
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    st.lists(_segment, max_size=8),
    st.text(alphabet="aw=&%tch01", max_size=12),
)
def test_request_info_invariants(method: str, segments: list[str], query: str) -> None:
    path = "/" + "/".join(segments)
    try:
        ri = new_request_info(method, path, query)
    except RequestInfoError as e:
        assert e.request_info.is_resource_request
        assert e.request_info.parts == ()
        return
    assert ri.path == path
    if not ri.is_resource_request:
        assert ri.verb == method.lower()
        assert ri.parts == ()
        return
    assert ri.parts, "a resource request has at least the resource part"
    assert ri.resource == ri.parts[0]
    assert ri.verb in {
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
        "proxy",
        "",
    }
    if ri.verb == "deletecollection":
        assert not ri.name
