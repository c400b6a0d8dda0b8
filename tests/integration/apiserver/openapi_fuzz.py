"""Requests generated from ARC's own OpenAPI document, and the oracle every answer must pass (issue 14).

Why hypothesis over the served ``/openapi/v2`` and not schemathesis: ARC's document is kube's (recursive
``ObjectMeta``/``managedFields`` definitions, one ``Patch`` schema for four media types, watch paths that
stream), so schemathesis would spend its time generating bodies that kube's decoding rejects on the first
byte, could not mutate YAML, JSON patch or merge patch bodies by their own grammars, would follow a watch
until its timeout, and would bring a second HTTP client and a dozen pinned packages. Here every operation
of the document (path x verb, ``x-kubernetes-action``) is driven on its own, with bodies that start from a
valid object of the operation's kind and are then mutated (values, types, unknown and missing fields,
names, content types, encodings), plus query parameters from kube's grammar and from noise. Sizes and
depths are bounded (≤ 10 levels, ≤ 6 patch operations, ≤ a few KB) so one run stays within its time and
memory budget.

The oracle (``Oracle.check``): no answer ≥ 500 (only 503/504 while etcd is deliberately stopped), every
4xx body a Kubernetes ``Status`` whose ``code`` is the HTTP status, and no traceback in the server's log.
"""

from __future__ import annotations

import copy
import functools
import http.client
import json
import re
import ssl
import string
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

GROUP = "arc.opendefense.cloud"
API_VERSION = f"{GROUP}/v1alpha1"
GV_PATH = f"/apis/{API_VERSION}"
SEED_NAMES = ("seed-0", "seed-1")
"""Objects of every kind that exist in every fuzz namespace (and cluster-wide), so that GET, PUT,
PATCH and DELETE by name reach the handlers behind the lookup, not only the 404 path."""

METHODS = ("get", "put", "post", "delete", "patch")
EXTRA_GETS = (
    "/api",
    "/apis",
    f"/apis/{GROUP}",
    "/version",
    "/healthz",
    "/livez",
    "/readyz",
    "/openapi/v2",
    f"/openapi/v3/apis/{API_VERSION}",
    "/metrics",
)
STATUS_REASONS = {
    400: {"BadRequest"},
    401: {"Unauthorized"},
    403: {"Forbidden"},
    404: {"NotFound"},
    405: {"MethodNotAllowed"},
    406: {"NotAcceptable"},
    409: {"AlreadyExists", "Conflict"},
    410: {"Expired", "Gone"},
    413: {"RequestEntityTooLarge"},
    415: {"UnsupportedMediaType"},
    422: {"Invalid"},
    429: {"TooManyRequests"},
}
"""kube's reasons per code (``k8s.io/apimachinery/pkg/api/errors``)."""


# ---- the operations of the document ----------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    type: str


@dataclass(frozen=True)
class Operation:
    """One path x verb of the OpenAPI document."""

    method: str
    path: str
    action: str
    kind: str | None
    query: tuple[Param, ...]
    consumes: tuple[str, ...]
    has_body: bool

    @property
    def key(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def cluster_scoped(self) -> bool:
        return "{namespace}" not in self.path


def operations(document: Mapping[str, Any]) -> list[Operation]:
    """Every operation of an OpenAPI v2 document, plus the server's non-resource GETs."""
    ops: list[Operation] = []
    for path, item in sorted(document["paths"].items()):
        shared = item.get("parameters") or []
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [*shared, *(op.get("parameters") or [])]
            gvk = op.get("x-kubernetes-group-version-kind") or {}
            ops.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    action=op.get("x-kubernetes-action", "get"),
                    kind=gvk.get("kind"),
                    query=tuple(
                        Param(p["name"], p.get("type", "string")) for p in params if p.get("in") == "query"
                    ),
                    consumes=tuple(op.get("consumes") or ()),
                    has_body=any(p.get("in") == "body" for p in params),
                )
            )
    for path in EXTRA_GETS:
        ops.append(Operation("GET", path, "get", None, (), (), False))
    return ops


# ---- valid objects to start from ------------------------------------------------------------------------


def seed_object(kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    """A valid object of ``kind`` (the fuzzer mutates copies of it)."""
    meta: dict[str, Any] = {"name": name, "labels": {"fuzz": "seed"}}
    if namespace is not None:
        meta["namespace"] = namespace
    spec: dict[str, Any]
    if kind == "Order":
        spec = {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
            "artifacts": [{"type": "oci", "spec": {"image": "library/alpine:3.20"}}],
        }
    elif kind == "Endpoint":
        spec = {"type": "oci", "remoteURL": "registry.example/mirror", "usage": "All"}
    elif kind == "ArtifactType":
        spec = {"workflowTemplateRef": {"name": "copy", "clusterScope": False}}
    elif kind == "ClusterArtifactType":
        spec = {"workflowTemplateRef": {"name": "copy", "clusterScope": True}}
    elif kind == "ArtifactWorkflow":
        spec = {
            "type": "oci",
            "workflowTemplateRef": {"name": "copy", "clusterScope": False},
            "parameters": [{"name": "image", "value": "alpine"}],
        }
    else:
        raise ValueError(f"no seed object for kind {kind!r}")
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec}


KINDS = {
    "orders": "Order",
    "endpoints": "Endpoint",
    "artifacttypes": "ArtifactType",
    "artifactworkflows": "ArtifactWorkflow",
    "clusterartifacttypes": "ClusterArtifactType",
}


# ---- strategies -----------------------------------------------------------------------------------------

KEY_ALPHABET = string.ascii_letters + string.digits + "-_./:~$@ "
small_text = st.text(max_size=24)
keys = st.one_of(st.text(alphabet=KEY_ALPHABET, min_size=1, max_size=16), small_text)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    small_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=10,
)
dns_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")
hostile_names = st.one_of(
    st.sampled_from(
        [
            "",
            ".",
            "..",
            "a/b",
            "a%2Fb",
            "UPPER",
            "-lead",
            "trail-",
            "x" * 254,
            "x" * 64,
            "a..b",
            "a b",
            "ünïcode",
            "%00",
            "\x00",
            "status",
            "watch",
            "seed-0/status",
        ]
    ),
    st.text(max_size=30),
)


@functools.cache
def names(existing: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(existing), dns_label, hostile_names)


RESOURCE_VERSIONS = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "abc", "99999999999999999999", "18446744073709551616", " 1"]),
    st.integers(min_value=0, max_value=2**64).map(str),
    small_text,
)
SELECTORS = st.one_of(
    st.sampled_from(
        [
            "fuzz=seed",
            "fuzz!=seed",
            "fuzz",
            "!fuzz",
            "fuzz in (seed,x)",
            "fuzz notin (seed)",
            "a=b,c=d",
            "=",
            "a==",
            "(",
            "in",
            "a in (",
            "x" * 300,
            "metadata.name=seed-0",
            "metadata.namespace!=x",
            "spec.type=oci",
            "status.phase=Succeeded",
            "metadata.name",
        ]
    ),
    small_text,
)
BOOLS = st.one_of(st.sampled_from(["true", "false", "1", "0", "True", ""]), small_text)
INTEGERS = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64).map(str),
    st.sampled_from(["", "1.5", "1e3", "0x10", " 1", "NaN"]),
    small_text,
)
EXTRA_QUERY = {
    "dryRun": st.sampled_from(["All", "", "None", "all", "All,All"]),
    "fieldManager": st.one_of(st.sampled_from(["fuzz", "", "x" * 200, "\x01"]), small_text),
    "fieldValidation": st.sampled_from(["Strict", "Warn", "Ignore", "", "strict", "Bogus"]),
    "propagationPolicy": st.sampled_from(["Orphan", "Background", "Foreground", "", "Bogus"]),
    "gracePeriodSeconds": INTEGERS,
    "force": BOOLS,
    "resourceVersion": RESOURCE_VERSIONS,
    "limit": INTEGERS,
    "continue": st.one_of(
        st.sampled_from(["", "e30", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MX0"]), small_text
    ),
    "labelSelector": SELECTORS,
    "fieldSelector": SELECTORS,
    "orphanDependents": BOOLS,
}
"""kube's query parameters that the document does not list for every operation."""


def query_value(param: Param) -> st.SearchStrategy[str]:
    specific = EXTRA_QUERY.get(param.name)
    if specific is not None:
        return specific
    if param.name == "timeoutSeconds":
        return st.sampled_from(["0", "1", "-1", "x"])
    if param.type == "integer":
        return INTEGERS
    if param.type == "boolean":
        return BOOLS
    return small_text


@functools.cache
def _choose(pool: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(pool), max_size=4, unique=True)


@st.composite
def query_strategy(draw: st.DrawFn, op: Operation) -> list[tuple[str, str]]:
    candidates = [p.name for p in op.query]
    if op.method in ("POST", "PUT", "PATCH"):
        candidates += ["dryRun", "fieldManager", "fieldValidation"]
    if op.method == "DELETE":
        candidates += ["dryRun", "propagationPolicy", "gracePeriodSeconds", "orphanDependents"]
    if op.method == "PATCH":
        candidates.append("force")
    if op.action in ("list", "deletecollection"):
        candidates += ["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion"]
    chosen = (
        draw(st.lists(st.sampled_from(sorted(set(candidates))), max_size=4, unique=True))
        if candidates
        else []
    )
    query = [(name, draw(query_value(Param(name, "string")))) for name in chosen]
    if draw(st.integers(0, 19)) == 0:  # a parameter kube does not know
        query.append((draw(dns_label), draw(small_text)))
    # A watch is bounded: kube ends it after timeoutSeconds; the driver reads only its headers anyway.
    if op.action in ("watch", "watchlist") or any(n == "watch" for n, _ in query):
        query = [(n, v) for n, v in query if n != "timeoutSeconds"] + [("timeoutSeconds", "1")]
    return query


POINTER_SEGMENTS = st.sampled_from(
    [
        "metadata",
        "spec",
        "status",
        "labels",
        "annotations",
        "name",
        "namespace",
        "artifacts",
        "0",
        "-",
        "~1",
        "~0",
        "type",
        "defaults",
        "srcRef",
        "kind",
        "apiVersion",
        "resourceVersion",
        "finalizers",
        "x",
    ]
)
pointers = st.one_of(
    st.lists(POINTER_SEGMENTS, max_size=4).map(lambda segments: "".join("/" + s for s in segments)),
    small_text,
)


PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test", "x")


@st.composite
def json_patch(draw: st.DrawFn) -> list[Any]:
    ops: list[Any] = []
    for _ in range(draw(st.integers(0, 6))):
        op: dict[str, Any] = {
            "op": draw(st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "x"]))
        }
        if draw(st.integers(0, 9)):
            op["path"] = draw(pointers)
        if op["op"] in ("move", "copy") and draw(st.integers(0, 9)):
            op["from"] = draw(pointers)
        if op["op"] in ("add", "replace", "test") and draw(st.integers(0, 9)):
            op["value"] = draw(json_values)
        ops.append(op if draw(st.integers(0, 19)) else draw(json_values))
    return ops


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value inside ``value`` (dict keys and list indices), parents first."""
    children: Iterable[tuple[Any, Any]] = ()
    if isinstance(value, dict):
        children = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    for key, child in children:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


MUTATIONS = ("replace", "replace", "remove", "unknown-field", "append", "wrap")


@st.composite
def mutated(draw: st.DrawFn, obj: Any) -> Any:
    """``obj`` with up to four of its values replaced (by any JSON: wrong types, wrong values), removed,
    wrapped in a list, or joined by an unknown field / list item. Few draws per example: the long run
    sends 100,000 of them."""
    out = copy.deepcopy(obj)
    paths = list(_paths(out))
    for _ in range(draw(st.integers(0, 4))):
        if not paths:
            break
        path = paths[draw(st.integers(0, len(paths) - 1))]
        action = MUTATIONS[draw(st.integers(0, len(MUTATIONS) - 1))]
        parent: Any = out
        try:
            for key in path[:-1]:
                parent = parent[key]
            last = path[-1]
            if action == "replace":
                parent[last] = draw(json_values)
            elif action == "remove":
                del parent[last]
            elif action == "wrap":
                parent[last] = [parent[last]]
            elif action == "unknown-field" and isinstance(parent[last], dict):
                parent[last][draw(keys)] = draw(json_values)
            elif action == "append" and isinstance(parent[last], list):
                parent[last].append(draw(json_values))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the path
    return out


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None
    op: Operation

    @property
    def target(self) -> str:
        return self.path + ("?" + urlencode(self.query) if self.query else "")

    def describe(self, limit: int = 300) -> str:
        body = (self.body or b"")[:limit].decode(errors="replace")
        return f"{self.method} {self.target} [{self.headers.get('Content-Type', '')}] {body}"


PROTOBUF = "application/vnd.kubernetes.protobuf"


YAML = "application/yaml"


def encode_object(draw: st.DrawFn, obj: Any) -> tuple[str, bytes]:
    """JSON mostly, YAML sometimes, and now and then a wrong media type or bytes that are neither."""
    choice = draw(st.integers(0, 19))
    if choice < 13:
        return "application/json", json.dumps(obj).encode()
    if choice < 17:
        return "application/yaml", yaml.safe_dump(obj, allow_unicode=True).encode()
    if choice == 17:
        media = draw(
            st.sampled_from(["text/plain", "application/xml", "", "application/vnd.kubernetes.protobuf"])
        )
        return media, json.dumps(obj).encode()
    if choice == 18:
        return "application/json", draw(st.binary(max_size=64))
    return "application/json", json.dumps(obj).encode()[: draw(st.integers(0, 40))]


@st.composite
def request_strategy(draw: st.DrawFn, op: Operation, namespaces: Sequence[str]) -> FuzzRequest:
    namespace = draw(st.one_of(st.sampled_from(list(namespaces)), dns_label, hostile_names))
    if draw(st.integers(0, 3)):  # mostly the namespaces that hold the seed objects
        namespace = draw(st.sampled_from(list(namespaces)))
    name = draw(names(SEED_NAMES))
    path = op.path.replace("{namespace}", quote(namespace, safe="")).replace("{name}", quote(name, safe=""))
    query = draw(query_strategy(op))
    headers: dict[str, str] = {
        "Accept": draw(
            st.sampled_from(
                [
                    "application/json",
                    "application/json",
                    "*/*",
                    "application/yaml",
                    "text/html",
                    "application/json;as=Table;v=v1;g=meta.k8s.io",
                    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
                ]
            )
        )
    }
    body: bytes | None = None
    resource = op.path.split("/")[-1] if "{name}" not in op.path.split("/")[-1] else ""
    kind = op.kind or KINDS.get(resource)
    if op.method in ("POST", "PUT") and kind is not None:
        ns = None if op.cluster_scoped else namespace
        base = seed_object(kind, name if op.method == "PUT" else draw(names(("fz-new",))), ns)
        obj = draw(mutated(base)) if draw(st.integers(0, 4)) else base
        media, body = encode_object(draw, obj)
        headers["Content-Type"] = media
    elif op.method == "PATCH":
        flavour = draw(st.sampled_from(["json", "merge", "merge", "apply", "strategic", "other"]))
        if flavour == "json":
            headers["Content-Type"] = "application/json-patch+json"
            body = json.dumps(draw(json_patch())).encode()
        elif flavour == "merge":
            headers["Content-Type"] = "application/merge-patch+json"
            base = seed_object(kind or "Order", name, None if op.cluster_scoped else namespace)
            body = json.dumps(draw(st.one_of(mutated(base), json_values))).encode()
        elif flavour == "apply":
            headers["Content-Type"] = "application/apply-patch+yaml"
            base = seed_object(kind or "Order", name, None if op.cluster_scoped else namespace)
            body = yaml.safe_dump(draw(mutated(base)), allow_unicode=True).encode()
            if draw(st.booleans()):
                query.append(("fieldManager", "fuzz-apply"))
        elif flavour == "strategic":
            headers["Content-Type"] = "application/strategic-merge-patch+json"
            body = json.dumps(draw(json_values)).encode()
        else:
            headers["Content-Type"] = draw(
                st.sampled_from(["application/json", "text/plain", "", "application/yaml"])
            )
            body = draw(st.binary(max_size=64))
    elif op.method == "DELETE" and draw(st.integers(0, 2)) == 0:
        options = draw(
            mutated(
                {
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "propagationPolicy": "Background",
                    "preconditions": {"resourceVersion": "1"},
                    "dryRun": ["All"],
                }
            )
        )
        headers["Content-Type"] = "application/json"
        body = json.dumps(options).encode()
    return FuzzRequest(op.method, path, query, headers, body, op)


# ---- the driver -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str


class Client:
    """One keep-alive HTTPS connection (re-opened when the server closes it); a watch's body is not read."""

    def __init__(
        self, host: str, port: int, context: ssl.SSLContext, headers: Mapping[str, str], timeout: float = 30
    ) -> None:
        self.host, self.port, self.context, self.headers, self.timeout = host, port, context, headers, timeout
        self.conn: http.client.HTTPSConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(self, request: FuzzRequest) -> Answer:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    self.host, self.port, context=self.context, timeout=self.timeout
                )
            try:
                self.conn.request(
                    request.method,
                    request.target,
                    body=request.body,
                    headers={**self.headers, **request.headers},
                )
                resp = self.conn.getresponse()
                content_type = resp.getheader("Content-Type") or ""
                streaming = "watch" in content_type or any(
                    n == "watch" and v in ("true", "1", "True") for n, v in request.query
                )
                if resp.status == 200 and (streaming or request.op.action in ("watch", "watchlist")):
                    self.close()  # the stream's headers are the answer; its events are not fuzzed
                    return Answer(resp.status, b"", content_type)
                body = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return Answer(resp.status, body, content_type)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


def status_problem(answer: Answer) -> str | None:
    """Why a 4xx answer is not a Kubernetes Status (None when it is one)."""
    try:
        body = json.loads(answer.body)
    except ValueError:
        return f"not JSON: {answer.body[:120]!r}"
    if not isinstance(body, dict):
        return f"not an object: {answer.body[:120]!r}"
    if body.get("kind") != "Status" or body.get("apiVersion") != "v1":
        return f"kind/apiVersion {body.get('kind')!r}/{body.get('apiVersion')!r}"
    if body.get("status") != "Failure":
        return f"status {body.get('status')!r}"
    if body.get("code") != answer.status:
        return f"code {body.get('code')!r} != HTTP {answer.status}"
    if not isinstance(body.get("message"), str):
        return "no message"
    expected = STATUS_REASONS.get(answer.status)
    if expected is not None and body.get("reason") not in expected:
        return f"reason {body.get('reason')!r} for {answer.status}"
    return None


@dataclass(frozen=True)
class KnownFinding:
    """A bug the fuzzer found that another change fixes (its own test is ``xfail(strict=True)``): while it
    still reproduces, the answers and log records it explains are counted apart instead of failing the run."""

    reason: str
    explains: Callable[[FuzzRequest, Answer], bool]
    traceback: str
    """A regular expression (``re.search``) for the log records with a traceback it explains."""


def kube_too_large_resource_version(answer: Answer) -> bool:
    """kube answers a list from a resourceVersion beyond etcd's with 504 Timeout, cause
    ``ResourceVersionTooLarge`` (``storage.NewTooLargeResourceVersionError``): not a server fault."""
    if answer.status != 504:
        return False
    try:
        causes = (json.loads(answer.body).get("details") or {}).get("causes") or []
    except (ValueError, AttributeError):
        return False
    return any(cause.get("reason") == "ResourceVersionTooLarge" for cause in causes)


@dataclass
class Oracle:
    """Counts every answer; keeps the first example of each kind of failure."""

    etcd_stopped: Callable[[], bool] = lambda: False
    known: Sequence[KnownFinding] = ()
    known_counts: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    per_operation: Counter[str] = field(default_factory=Counter)
    findings: dict[str, str] = field(default_factory=dict)
    finding_counts: Counter[str] = field(default_factory=Counter)

    def record(self, key: str, example: str) -> None:
        self.finding_counts[key] += 1
        self.findings.setdefault(key, example)

    def check(self, request: FuzzRequest, answer: Answer) -> None:
        self.requests += 1
        self.statuses[answer.status] += 1
        self.per_operation[request.op.key] += 1
        where = request.op.key
        if answer.status >= 500:
            if answer.status in (503, 504) and self.etcd_stopped():
                return
            if kube_too_large_resource_version(answer):
                return
            for known in self.known:
                if known.explains(request, answer):
                    self.known_counts[known.reason] += 1
                    return
            self.record(f"{where} -> {answer.status}", f"{request.describe()}\n  => {answer.body[:300]!r}")
        elif 400 <= answer.status < 500:
            problem = status_problem(answer)
            if problem is not None:
                self.record(
                    f"{where} -> {answer.status} not a Status ({problem.split(':')[0]})",
                    f"{request.describe()}\n  => {problem}",
                )

    def summary(self) -> str:
        lines = [f"{self.requests} requests, statuses {dict(sorted(self.statuses.items()))}"]
        for key, count in self.finding_counts.most_common():
            lines.append(f"  {count:6d} x {key}\n         e.g. {self.findings[key]}")
        for reason, count in self.known_counts.most_common():
            lines.append(f"  {count:6d} x known (xfail elsewhere): {reason}")
        return "\n".join(lines)

    def tracebacks(self, log_text: str) -> list[str]:
        """Log records of the server that carry a traceback (JSON ``exc_info`` or a plain ``Traceback``),
        except those a still-reproducing known finding explains (counted in ``known_counts``)."""
        found = []
        for line in log_text.splitlines():
            if "Traceback" not in line and '"exc_info"' not in line:
                continue
            known = next((k for k in self.known if re.search(k.traceback, line)), None)
            if known is not None:
                self.known_counts[f"traceback: {known.reason}"] += 1
            else:
                found.append(line[-600:])
        return found


# ---- driving a server -------------------------------------------------------------------------------------


@dataclass
class Target:
    """A server under fuzzing: a client, the operations of its document, the namespaces holding the seed
    objects, and its log (for tracebacks)."""

    client: Client
    ops: list[Operation]
    namespaces: tuple[str, ...]
    log_file: Path
    adjust: Callable[[FuzzRequest], FuzzRequest] | None = None
    """Rewrites each generated request before it is sent (a shared cluster keeps its cluster-scoped
    objects by making those writes dry runs)."""

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace")


def get(path: str, query: list[tuple[str, str]] | None = None, action: str = "get") -> FuzzRequest:
    return FuzzRequest(
        "GET", path, query or [], {}, None, Operation("GET", path, action, None, (), (), False)
    )


def reseed(client: Client, namespaces: Sequence[str]) -> None:
    """Every kind's seed objects in every fuzz namespace and cluster-wide (the fuzzer deletes some)."""
    for resource, kind in KINDS.items():
        for name in SEED_NAMES:
            scopes: tuple[str | None, ...] = (None,) if resource == "clusterartifacttypes" else namespaces
            for ns in scopes:
                prefix = f"/apis/arc.opendefense.cloud/v1alpha1{f'/namespaces/{ns}' if ns else ''}/{resource}"
                body = json.dumps(seed_object(kind, name, ns)).encode()
                op = Operation("POST", prefix, "post", kind, (), (), True)
                client.send(FuzzRequest("POST", prefix, [], {"Content-Type": "application/json"}, body, op))


class DeadlineReached(Exception):
    """The run's time budget is spent."""


def one_operation(
    target: Target, oracle: Oracle, op: Operation, *, per_operation: int, deadline: float, seed: int | None
) -> Callable[[], None]:
    """A hypothesis run of ``per_operation`` generated requests for ``op`` (shrinking off: every answer is
    checked and counted by the oracle, none raises)."""

    @settings(
        max_examples=per_operation,
        derandomize=seed is None,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def one(data: st.DataObject) -> None:
        if time.monotonic() > deadline:
            raise DeadlineReached  # ends this hypothesis run (returning early would make draws inconsistent)
        request = data.draw(request_strategy(op, target.namespaces))
        if target.adjust is not None:
            request = target.adjust(request)
        try:
            answer = target.client.send(request)
        except OSError as exc:  # the server dropped the connection: that is the finding
            target.client.close()
            oracle.requests += 1
            oracle.per_operation[op.key] += 1
            for known in oracle.known:
                if known.explains(request, Answer(0, b"", "")):
                    oracle.known_counts[known.reason] += 1
                    return
            oracle.record(f"{op.key} -> connection error {type(exc).__name__}", request.describe())
            return
        oracle.check(request, answer)

    return hypothesis_seed(seed)(one) if seed is not None else one


def fuzz(
    target: Target,
    oracle: Oracle,
    *,
    per_operation: int,
    deadline: float,
    seed: int | None = None,
    ops: list[Operation] | None = None,
) -> None:
    """``per_operation`` generated requests for each operation (derandomized unless ``seed`` is given)."""
    for op in ops or target.ops:
        if time.monotonic() > deadline:
            return
        if not oracle.etcd_stopped():
            reseed(target.client, target.namespaces)

        one = one_operation(target, oracle, op, per_operation=per_operation, deadline=deadline, seed=seed)
        try:
            one()
        except DeadlineReached:
            return


# ---- what the fuzzer found (each its own xfail(strict=True) test below) --------------------------------

MALFORMED_NAME = (
    "malformed names (e.g. 'a/b' as %2F in the path) answer 500 with a traceback per request instead of "
    "kube's 4xx (issue 14's finding; fixed by the hostile-input change in apiserver/)"
)
WATCH_DISCONNECT = (
    "a watch whose client has gone logs 'unhandled error' with a traceback (ClientConnectionResetError from "
    "response.write_eof() after the watch's timeout, outside serve_watch's ConnectionResetError guard in "
    "apiserver/watch.py)"
)
NAME_SEGMENT = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def _malformed_segment(request: FuzzRequest, answer: Answer) -> bool:
    template = request.op.path.split("/")
    actual = request.path.split("/")
    return answer.status == 500 and any(
        t in ("{name}", "{namespace}") and not NAME_SEGMENT.fullmatch(unquote(a))
        for t, a in zip(template, actual, strict=False)
    )


def malformed_name_reproduces(target: Target) -> bool:
    """``a/b`` (as ``%2F``; kube-apiserver does not pass it on) and ``.`` (it does) as names."""
    start = len(target.log_text())
    for name in ("a%2Fb", "."):
        path = f"{GV_PATH}/namespaces/{target.namespaces[0]}/orders/{name}"
        for method in ("GET", "DELETE"):
            op = Operation(method, path, "get", None, (), (), False)
            answer = target.client.send(FuzzRequest(method, path, [], {}, None, op))
            if answer.status >= 500 or "for a storage key" in target.log_text()[start:]:
                return True
    return False


def watch_disconnect_reproduces(target: Target) -> bool:
    start = len(target.log_text())
    path = f"{GV_PATH}/namespaces/{target.namespaces[0]}/orders"
    op = Operation("GET", path, "watch", None, (), (), False)
    answer = target.client.send(
        FuzzRequest("GET", path, [("watch", "true"), ("timeoutSeconds", "1")], {}, None, op)
    )
    assert answer.status == 200
    time.sleep(2.5)
    return "Cannot write to closing transport" in target.log_text()[start:]


DELETE_OPTIONS_TYPES = (
    "a DeleteOptions body whose fields have the wrong JSON type (dryRun: -1, preconditions.resourceVersion: "
    "['1']) answers 500 with a traceback (TypeError in the store); kube answers 400 BadRequest, the body "
    "does not decode into DeleteOptions (apiserver/query.py delete_options checks values, not types)"
)
WARNING_HEADER = (
    "an unknown field whose name holds a control character (e.g. 'a\\nb' in spec of a create or merge "
    "patch) goes verbatim into the Warning header; aiohttp refuses it ('Forbidden control character "
    "detected in headers') after the handler returned, so the connection is closed without any answer "
    "and a traceback is logged; kube escapes the warning text and answers"
)


def _bad_delete_options(request: FuzzRequest, answer: Answer) -> bool:
    return request.method == "DELETE" and request.body is not None and answer.status == 500


def _unanswered_write(request: FuzzRequest, answer: Answer) -> bool:
    return request.method in ("POST", "PUT", "PATCH") and answer.status == 0


def delete_options_reproduce(target: Target) -> bool:
    """A DELETE of an object that does not exist, with ``dryRun: -1`` in its body (400 before any lookup)."""
    path = f"{GV_PATH}/namespaces/{target.namespaces[0]}/orders/fz-absent"
    op = Operation("DELETE", path, "delete", None, (), (), True)
    body = json.dumps({"dryRun": -1}).encode()
    answer = target.client.send(FuzzRequest("DELETE", path, [], JSON_BODY, body, op))
    return answer.status >= 500


def warning_header_reproduces(target: Target) -> bool:
    ns = target.namespaces[0]
    path = f"{GV_PATH}/namespaces/{ns}/orders"
    op = Operation("POST", path, "post", "Order", (), (), True)
    obj = seed_object("Order", "fz-warning", ns)
    obj["spec"]["a\nb"] = 1
    body = json.dumps(obj).encode()
    try:
        answer = target.client.send(FuzzRequest("POST", path, [("dryRun", "All")], JSON_BODY, body, op))
    except OSError:
        target.client.close()
        return True
    return answer.status >= 500


JSON_BODY = {"Content-Type": "application/json"}

LIMIT_OVERFLOW = (
    "a deletecollection with limit >= 2^63 (e.g. 18446744073709551615) answers 500 with a traceback "
    "(etcd's RangeRequest: 'Value out of range'); kube answers 400 (issue 14's oversized-limit finding, "
    "fixed by the hostile-input change's int64 check)"
)


def _limit_overflow(request: FuzzRequest, answer: Answer) -> bool:
    def huge(value: str) -> bool:
        try:
            return not -(2**63) <= int(value) < 2**63
        except ValueError:
            return False

    return answer.status == 500 and any(n == "limit" and huge(v) for n, v in request.query)


def limit_overflow_reproduces(target: Target) -> bool:
    path = f"{GV_PATH}/namespaces/{target.namespaces[0]}/orders"
    op = Operation("DELETE", path, "deletecollection", None, (), (), False)
    query = [("limit", str(2**64 - 1)), ("dryRun", "All")]
    return target.client.send(FuzzRequest("DELETE", path, query, {}, None, op)).status >= 500


def known_findings(target: Target) -> list[KnownFinding]:
    """The findings below that still reproduce on this server (none, once their fixes are merged)."""
    known = []
    if malformed_name_reproduces(target):
        known.append(KnownFinding(MALFORMED_NAME, _malformed_segment, "for a storage key"))
    if watch_disconnect_reproduces(target):
        known.append(
            KnownFinding(WATCH_DISCONNECT, lambda _r, _a: False, "Cannot write to closing transport")
        )
    if delete_options_reproduce(target):
        pattern = (
            r"TypeError: int\(\) argument must be|TypeError: 'int' object is not iterable"
            r"|AttributeError: '\w+' object has no attribute 'get'"
        )
        known.append(KnownFinding(DELETE_OPTIONS_TYPES, _bad_delete_options, pattern))
    if limit_overflow_reproduces(target):
        known.append(KnownFinding(LIMIT_OVERFLOW, _limit_overflow, "Value out of range"))
    if warning_header_reproduces(target):
        pattern = "Forbidden control character detected in headers"
        known.append(KnownFinding(WARNING_HEADER, _unanswered_write, pattern))
    return known


def assert_clean(target: Target, oracle: Oracle, log_start: int) -> None:
    missing = [op.key for op in target.ops if oracle.per_operation[op.key] == 0]
    found = oracle.tracebacks(target.log_text()[log_start:])
    print(oracle.summary())  # the counts, for the report (pytest -s / -rA)
    assert not missing, f"operations never exercised: {missing}"
    assert not oracle.findings, oracle.summary()
    assert not found, f"{len(found)} log records with a traceback, e.g.:\n" + "\n".join(found[:5])
