"""What a request is about, in Kubernetes terms: kube-apiserver's `RequestInfo`.

A port of `k8s.io/apiserver/pkg/endpoints/request/requestinfo.go` (`RequestInfoFactory.NewRequestInfo`,
v0.33.13, feature gate `AuthorizeWithSelectors` on as it is by default). The authorizer builds
SubjectAccessReviews from it and metrics/audit label requests with it, so every quirk is kept:

- `/api/{version}/...` and `/apis/{group}/{version}/...` with at least one more segment are resource
  requests; everything else (`/healthz`, `/version`, `/openapi/v2`, `/apis`, `/apis/{group}`,
  `/apis/{group}/{version}`, `/api/{version}`) is a non-resource request whose verb is the lower-cased
  HTTP method.
- Verbs: POST create, GET/HEAD get (list or watch without a name), PUT update, PATCH patch, DELETE delete
  (deletecollection without a name), any other method "". `?watch=` anything but `0`/`false` makes a
  list a watch; the deprecated `/watch/` and `/proxy/` path prefixes set the verb directly.
- `namespaces/{ns}/...` sets the namespace; `namespaces/{ns}/status|finalize` and `namespaces/{ns}` are
  requests on the namespace object itself.
- A list/watch whose `fieldSelector` pins `metadata.name` (and whose list options all parse) carries that
  name, as kube does so that "get/watch one object" can be authorized by name.

Pure: no I/O. `path` is the *decoded* URL path (aiohttp's `request.path`, Go's `URL.Path`). `query` is
best given as the raw query string (aiohttp's `request.rel_url.raw_query_string`), which is parsed with
Go's `url.ParseQuery` rules; an already parsed mapping also works: `{name: [values...]}`, or aiohttp's
`request.query` (a multidict, read with `getall`), though those were decoded by other rules than Go's
(`;` separators, bad `%` escapes).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote, unquote_to_bytes, urlencode

from apiserver.selectors import SelectorParseError, parse_field_selector, parse_label_selector

__all__ = [
    "DEFAULT_REQUEST_INFO_FACTORY",
    "NAMESPACE_SUBRESOURCES",
    "RequestInfo",
    "RequestInfoError",
    "RequestInfoFactory",
    "is_valid_path_segment_name",
    "new_request_info",
    "parse_query",
    "request_info_from",
]

Query = Mapping[str, list[str]] | Mapping[str, str]
"""A parsed query: values per name, or one value per name (aiohttp's multidict is read with `getall`)."""
_Values = dict[str, list[str]]
# The only parameters NewRequestInfo reads.
_QUERY_KEYS: Final = ("watch", "labelSelector", "fieldSelector", "timeoutSeconds", "limit")

# specialVerbs / specialVerbsNoSubresources / namespaceSubresources / verbsWithSelectors in requestinfo.go
SPECIAL_VERBS: Final = frozenset({"proxy", "watch"})
SPECIAL_VERBS_NO_SUBRESOURCES: Final = frozenset({"proxy"})
NAMESPACE_SUBRESOURCES: Final = frozenset({"status", "finalize"})
VERBS_WITH_SELECTORS: Final = frozenset({"list", "watch", "deletecollection"})

_METHOD_VERBS: Final[dict[str, str]] = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """Go's `request.RequestInfo`.

    For resource requests `parts` starts at the resource (`("pods", "foo", "status")`); `field_selector` and
    `label_selector` are the raw query values, set only for list, watch and deletecollection (not for the
    deprecated `/watch/` prefix), as kube hands them to the authorizer.
    """

    is_resource_request: bool
    path: str
    verb: str
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()
    field_selector: str = ""
    label_selector: str = ""


class RequestInfoError(Exception):
    """kube cannot build a RequestInfo (only `/.../{version}/watch` or `/proxy` with nothing after it).

    kube-apiserver answers 500 `failed to create RequestInfo: <message>`. `request_info` is what was known
    before the failure (Go returns it alongside the error).
    """

    def __init__(self, message: str, request_info: RequestInfo) -> None:
        super().__init__(message)
        self.message = message
        self.request_info = request_info


# --- Go's url.ParseQuery ------------------------------------------------------------------------------------

_BAD_PERCENT: Final = re.compile("%(?![0-9A-Fa-f]{2})")


def _query_unescape(s: str) -> str | None:
    """Go's `url.QueryUnescape` (`+` is a space); None where Go returns an error. Invalid UTF-8 becomes
    U+FFFD, which is how Go's JSON encoder would show the same bytes anyway."""
    if "%" not in s and "+" not in s:
        return s
    if _BAD_PERCENT.search(s):
        return None
    return unquote_to_bytes(s.replace("+", " ")).decode("utf-8", "replace")


def parse_query(raw: str) -> dict[str, list[str]]:
    """Go's `URL.Query()` (`url.ParseQuery`, errors ignored): `&`-separated `key=value` pairs, unescaped;
    a pair containing `;` or a bad `%` escape is dropped; a key without `=` has the value ""."""
    values: dict[str, list[str]] = {}
    for pair in raw.split("&"):
        if not pair or ";" in pair:
            continue
        k, _, v = pair.partition("=")
        key = _query_unescape(k)
        if key is None:
            continue
        value = _query_unescape(v)
        if value is None:
            continue
        values.setdefault(key, []).append(value)
    return values


# --- the bits of ListOptions decoding that decide the verb and the name ----------------------------------

_INT64_RE: Final = re.compile(r"[+-]?[0-9]+")
_FALSE_FOLD_RE: Final = re.compile("[fF][aA][lL][sS\u017f][eE]")  # strings.EqualFold(v, "false")


def _is_int64(s: str) -> bool:
    return _INT64_RE.fullmatch(s) is not None and -(1 << 63) <= int(s) < (1 << 63)


def _values(query: str | Query) -> _Values:
    """The parameters NewRequestInfo reads, as `{name: [values...]}`."""
    if isinstance(query, str):
        parsed = parse_query(query) if query else {}
        return {k: parsed[k] for k in _QUERY_KEYS if k in parsed}
    out: _Values = {}
    getall = getattr(query, "getall", None)
    for k in _QUERY_KEYS:
        vals: str | Sequence[str] | None = getall(k, []) if getall is not None else query.get(k)
        if isinstance(vals, str):
            out[k] = [vals]
        elif vals:
            out[k] = list(vals)
    return out


def _first(query: _Values, key: str) -> str | None:
    vals = query.get(key)
    return vals[0] if vals else None


def _list_options(query: _Values) -> tuple[bool, str | None]:
    """(watch, exact metadata.name) as kube's `ParameterCodec.DecodeParameters` into `ListOptions` yields
    them. When any option fails to decode (a bad selector, a non-integer `limit`/`timeoutSeconds`) kube
    drops everything but `watch`, which it then reads with `strings.ToLower(v) != "false"/"0"`."""
    watch_value = _first(query, "watch")
    try:
        selector = _first(query, "labelSelector")
        if selector is not None:
            parse_label_selector(selector)
        field_selector = _first(query, "fieldSelector")
        fields = parse_field_selector(field_selector) if field_selector is not None else None
        for key in ("timeoutSeconds", "limit"):
            value = _first(query, key)
            if value is not None and not _is_int64(value):
                raise SelectorParseError(f"invalid {key}")
    except SelectorParseError:
        watch = watch_value is not None and not (
            watch_value == "0" or (watch_value.isascii() and watch_value.lower() == "false")
        )
        return watch, None
    # runtime.Convert_Slice_string_To_bool: only "0" and (case-folded) "false" are false.
    watch = watch_value is not None and watch_value != "0" and _FALSE_FOLD_RE.fullmatch(watch_value) is None
    name = fields.exact_value("metadata.name") if fields is not None else None
    return watch, name


def is_valid_path_segment_name(name: str) -> bool:
    """Go's `path.IsValidPathSegmentName` found no problem: not `.`/`..`, no `/` or `%`."""
    return name not in (".", "..") and "/" not in name and "%" not in name


def _split_path(path: str) -> list[str]:
    path = path.strip("/")
    return path.split("/") if path else []


def _url_for_message(path: str, query: str | Query) -> str:
    """Go's `URL.String()` for a server request: the path escaped, the raw query appended. (Go keeps the
    client's own escaping of the path where it differs, e.g. `%2F`; only this 500 message can differ.)"""
    raw = (
        query
        if isinstance(query, str)
        else urlencode([(k, v) for k, vs in _values(query).items() for v in vs])
    )
    escaped = quote(path, safe="/$&+,:;=@")
    return f"{escaped}?{raw}" if raw else escaped


@dataclass(frozen=True, slots=True)
class RequestInfoFactory:
    """Go's `RequestInfoFactory`: the API prefixes (`api`, `apis`) and which of them carry no group."""

    api_prefixes: frozenset[str] = field(default_factory=lambda: frozenset({"api", "apis"}))
    groupless_api_prefixes: frozenset[str] = field(default_factory=lambda: frozenset({"api"}))
    authorize_with_selectors: bool = True
    """The `AuthorizeWithSelectors` feature gate (beta, on by default since 1.32)."""

    def new_request_info(self, method: str, path: str, query: str | Query = "") -> RequestInfo:
        """Go's `NewRequestInfo`. Raises `RequestInfoError` for `.../watch` or `.../proxy` with nothing
        after it; never for anything else (unknown paths are non-resource requests)."""
        verb = method.lower()
        parts = _split_path(path)
        if len(parts) < 3 or parts[0] not in self.api_prefixes:
            return RequestInfo(False, path, verb)
        api_prefix = parts[0]
        parts = parts[1:]
        api_group = ""
        if api_prefix not in self.groupless_api_prefixes:
            # one part (the prefix) is consumed already, so this is really "are there four parts?"
            if len(parts) < 3:
                # kube has set the prefix already: /apis/{group}/{version} is non-resource with prefix "apis"
                return RequestInfo(False, path, verb, api_prefix=api_prefix)
            api_group = parts[0]
            parts = parts[1:]
        api_version = parts[0]
        parts = parts[1:]

        verb_via_path_prefix = False
        if parts[0] in SPECIAL_VERBS:
            if len(parts) < 2:
                partial = RequestInfo(True, path, verb, api_prefix, api_group, api_version)
                message = f"unable to determine kind and namespace from url, {_url_for_message(path, query)}"
                raise RequestInfoError(message, partial)
            verb = parts[0]
            parts = parts[1:]
            verb_via_path_prefix = True
        else:
            verb = _METHOD_VERBS.get(method, "")

        namespace = ""
        # /namespaces/{namespace}/{resource}/...: parts become relative to the resource, unless what
        # follows the namespace name is one of the namespace's own subresources.
        if parts[0] == "namespaces" and len(parts) > 1:
            namespace = parts[1]
            if len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
                parts = parts[2:]

        # parts: resource/name/subresource/anything/else
        resource = parts[0]
        name = parts[1] if len(parts) >= 2 else ""
        subresource = parts[2] if len(parts) >= 3 and verb not in SPECIAL_VERBS_NO_SUBRESOURCES else ""

        q = _values(query)
        if not name and verb == "get":
            watch, selected_name = _list_options(q)
            verb = "watch" if watch else "list"
            if selected_name is not None and is_valid_path_segment_name(selected_name):
                name = selected_name
        if not name and verb == "delete":
            verb = "deletecollection"

        field_selector = label_selector = ""
        if self.authorize_with_selectors and not verb_via_path_prefix and verb in VERBS_WITH_SELECTORS:
            field_selector = _first(q, "fieldSelector") or ""
            label_selector = _first(q, "labelSelector") or ""

        return RequestInfo(
            is_resource_request=True,
            path=path,
            verb=verb,
            api_prefix=api_prefix,
            api_group=api_group,
            api_version=api_version,
            namespace=namespace,
            resource=resource,
            subresource=subresource,
            name=name,
            parts=tuple(parts),
            field_selector=field_selector,
            label_selector=label_selector,
        )


DEFAULT_REQUEST_INFO_FACTORY: Final = RequestInfoFactory()


def new_request_info(method: str, path: str, query: str | Query = "") -> RequestInfo:
    """`NewRequestInfo` with kube-apiserver's prefixes (`/api` without a group, `/apis` with one).
    Raises `RequestInfoError` where kube fails (`.../watch`, `.../proxy` with nothing after them)."""
    return DEFAULT_REQUEST_INFO_FACTORY.new_request_info(method, path, query)


def request_info_from(method: str, path: str, query: str | Query = "") -> RequestInfo:
    """`new_request_info` for a middleware that must always get an answer: where kube would fail with 500
    `failed to create RequestInfo`, this returns what was known before the failure (a resource request
    without a resource), which no route serves.

    Answers for a raw query string are cached (a `RequestInfo` is immutable and depends only on the three
    arguments): creates and lists repeat the same collection path."""
    if isinstance(query, str):
        return _cached_request_info(method, path, query)
    return _request_info_or_partial(method, path, query)


def _request_info_or_partial(method: str, path: str, query: str | Query) -> RequestInfo:
    try:
        return new_request_info(method, path, query)
    except RequestInfoError as e:
        return e.request_info


@functools.lru_cache(maxsize=2048)
def _cached_request_info(method: str, path: str, query: str) -> RequestInfo:
    return _request_info_or_partial(method, path, query)
