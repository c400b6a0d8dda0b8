"""The resource table: every fact about ARC's kinds, in one place.

`RESOURCES` lists one `ResourceInfo` per kind (group, version, kind, plural, singular, scope, short names,
categories, subresources, verbs, printer columns, Python types). The API server builds routes, discovery,
OpenAPI paths, storage keys and Table responses from it; the controllers build their clients from it.
Nothing else in the code base should spell a plural or a short name.

Printer columns carry what a Table column definition needs (name, type, format, description, priority)
plus how to compute the cell: a CRD-style JSONPath (`.status.phase`) or, where a JSONPath cannot express
it (Order's `succeeded/total`), a function of the object's wire form. `date` cells are rendered as kube
does (`5m`, `2d3h`), relative to the `now` the caller passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, NamedTuple

from pydantic import BaseModel

from api.arc.v1alpha1 import types as v1alpha1
from api.meta import TableColumnDefinition, dump

__all__ = [
    "BY_KIND",
    "BY_PLURAL",
    "GROUP",
    "RESOURCES",
    "VERBS",
    "GroupKind",
    "GroupResource",
    "GroupVersionKind",
    "GroupVersionResource",
    "PrinterColumn",
    "ResourceInfo",
    "by_kind",
    "by_plural",
    "by_short_name",
    "format_rfc3339",
    "format_rfc3339_micro",
    "human_duration",
    "parse_rfc3339",
    "resolve",
]

GROUP: Final = v1alpha1.GROUP
VERSION: Final = v1alpha1.VERSION

VERBS: Final = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
"""Verbs on every ARC resource (sorted, as discovery lists them)."""
STATUS_VERBS: Final = ("get", "patch", "update")


class GroupVersionKind(NamedTuple):
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def to_dict(self) -> dict[str, str]:
        """The `x-kubernetes-group-version-kind` / discovery `responseKind` shape."""
        return {"group": self.group, "kind": self.kind, "version": self.version}


class GroupVersionResource(NamedTuple):
    group: str
    version: str
    resource: str


class GroupKind(NamedTuple):
    group: str
    kind: str

    def __str__(self) -> str:
        """`Order.arc.opendefense.cloud`, as in `NewInvalid` messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


class GroupResource(NamedTuple):
    group: str
    resource: str

    def __str__(self) -> str:
        """`orders.arc.opendefense.cloud`, as in NotFound/AlreadyExists/Conflict messages."""
        return f"{self.resource}.{self.group}" if self.group else self.resource


ColumnType = Literal["string", "integer", "number", "boolean", "date"]


@dataclass(frozen=True, slots=True)
class PrinterColumn:
    """One `kubectl get` column: a Table column definition plus how to compute its cell."""

    name: str
    type: ColumnType
    json_path: str
    description: str
    priority: int = 0
    format: str = ""
    value: Callable[[Mapping[str, Any]], Any] | None = None
    """Computes the raw cell from the object's wire form; when unset, `json_path` is evaluated."""

    def definition(self) -> TableColumnDefinition:
        return TableColumnDefinition(
            name=self.name,
            type=self.type,
            format=self.format,
            description=self.description,
            priority=self.priority,
        )

    def cell(self, obj: Mapping[str, Any], now: datetime) -> Any:
        """The cell kube's CRD table convertor would produce (None when the value is missing)."""
        raw = self.value(obj) if self.value is not None else eval_json_path(obj, self.json_path)
        if raw is None:
            return None
        if self.type == "date":
            if not isinstance(raw, str):
                return None
            ts = parse_rfc3339(raw)
            if ts is None:
                return "<invalid>"
            return human_duration((now - ts).total_seconds())
        if self.type == "string":
            if isinstance(raw, bool):
                return "true" if raw else "false"
            return raw if isinstance(raw, str) else str(raw)
        if self.type == "integer":
            return int(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        if self.type == "number":
            return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        if self.type == "boolean":
            return raw if isinstance(raw, bool) else None
        return raw


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """Everything about one ARC resource. Look it up with `by_plural`, `by_kind`, `resolve`."""

    kind: str
    plural: str
    singular: str
    namespaced: bool
    model: type[BaseModel]
    list_model: type[BaseModel]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ("arc",)
    subresources: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    selectable_fields: tuple[str, ...] = ()
    """Field-selector fields beyond `metadata.name`/`metadata.namespace` (dotted paths, like a CRD's
    `selectableFields`), e.g. `kubectl get aw --field-selector status.phase=Failed`."""
    verbs: tuple[str, ...] = VERBS
    subresource_verbs: tuple[str, ...] = STATUS_VERBS
    group: str = GROUP
    version: str = VERSION
    description: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def scope(self) -> Literal["Namespaced", "Cluster"]:
        return "Namespaced" if self.namespaced else "Cluster"

    @property
    def gvk(self) -> GroupVersionKind:
        return GroupVersionKind(self.group, self.version, self.kind)

    @property
    def list_gvk(self) -> GroupVersionKind:
        return GroupVersionKind(self.group, self.version, self.list_kind)

    @property
    def gvr(self) -> GroupVersionResource:
        return GroupVersionResource(self.group, self.version, self.plural)

    @property
    def group_kind(self) -> GroupKind:
        return GroupKind(self.group, self.kind)

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def column_definitions(self) -> list[TableColumnDefinition]:
        """Table `columnDefinitions`: Name first (format `name`), then the printer columns."""
        return [NAME_COLUMN.definition(), *(c.definition() for c in self.printer_columns)]

    def row_cells(self, obj: BaseModel | Mapping[str, Any], now: datetime | None = None) -> list[Any]:
        """A Table row's `cells` for an object (a model or its wire form), in column order."""
        wire: Mapping[str, Any] = dump(obj) if isinstance(obj, BaseModel) else obj
        when = now if now is not None else datetime.now(UTC)
        meta = wire.get("metadata") or {}
        return [meta.get("name", ""), *(c.cell(wire, when) for c in self.printer_columns)]


# --- JSONPath subset, RFC 3339, HumanDuration -----------------------------------------------------------

_PATH_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]")


def eval_json_path(obj: Any, path: str) -> Any:
    """Evaluate a simple JSONPath like `.status.progress.total` or `.spec.parameters[0].name`."""
    cur = obj
    pos = 0
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if m is None:
            raise ValueError(f"unsupported JSONPath {path!r}")
        pos = m.end()
        if m.group(1) is not None:
            if not isinstance(cur, Mapping):
                return None
            cur = cur.get(m.group(1))
        else:
            idx = int(m.group(2))
            if not isinstance(cur, list) or idx >= len(cur):
                return None
            cur = cur[idx]
        if cur is None:
            return None
    return cur


def parse_rfc3339(value: str) -> datetime | None:
    """Parse an RFC 3339 timestamp (`Z` or offset, optional fraction); None when it is not one."""
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    if ts.tzinfo is None or "T" not in value.upper():
        return None
    return ts


def format_rfc3339(ts: datetime | None = None) -> str:
    """A `metav1.Time` on the wire: UTC, whole seconds, `Z` (`2026-01-02T03:04:05Z`); now when `ts` is None.

    The one spelling of a timestamp that the API server (creation and deletion timestamps) and the
    controllers (conditions, Events, status times) write.
    """
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_rfc3339_micro(ts: datetime | None = None) -> str:
    """A `metav1.MicroTime` on the wire (Lease times): as `format_rfc3339` with six fraction digits."""
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc(ts: datetime | None) -> datetime:
    if ts is None:
        return datetime.now(UTC)
    return ts.astimezone(UTC) if ts.tzinfo is not None else ts


def human_duration(seconds: float) -> str:
    """`k8s.io/apimachinery/pkg/util/duration.HumanDuration`: `45s`, `5m3s`, `7h`, `3d4h`, `2y`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


# --- columns --------------------------------------------------------------------------------------------

NAME_COLUMN: Final = PrinterColumn(
    name="Name",
    type="string",
    format="name",
    json_path=".metadata.name",
    description=(
        "Name must be unique within a namespace. Is required when creating resources, although some "
        "resources may allow a client to request the generation of an appropriate name automatically. Name "
        "is primarily intended for creation idempotence and configuration definition. Cannot be updated. "
        "More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
    ),
)
AGE_COLUMN: Final = PrinterColumn(
    name="Age",
    type="date",
    json_path=".metadata.creationTimestamp",
    description=(
        "CreationTimestamp is a timestamp representing the server time when this object was created. It is "
        "not guaranteed to be set in happens-before order across separate operations. Clients may not set "
        "this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. "
        "Null for lists. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
    ),
)


def _order_progress(obj: Mapping[str, Any]) -> str | None:
    progress = (obj.get("status") or {}).get("progress")
    if not isinstance(progress, Mapping):
        return None
    return f"{progress.get('succeeded', 0)}/{progress.get('total', 0)}"


def _condition_field(obj: Mapping[str, Any], type_: str, field: str) -> Any:
    """A field of the condition of `type_` (the JSONPath filter `conditions[?(@.type=="Ready")]`)."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == type_:
            return condition.get(field)
    return None


def _parameter_names(obj: Mapping[str, Any]) -> str | None:
    params = (obj.get("spec") or {}).get("parameters")
    if not params:
        return None
    return ",".join(str(p.get("name", "")) for p in params if isinstance(p, Mapping))


_TYPE_COLUMNS: Final = (
    PrinterColumn("Template", "string", ".spec.workflowTemplateRef.name", "The Argo workflow template."),
    PrinterColumn(
        "Cluster-Scope-Template",
        "boolean",
        ".spec.workflowTemplateRef.clusterScope",
        "Whether the template is a ClusterWorkflowTemplate.",
    ),
    AGE_COLUMN,
    PrinterColumn(
        "Parameters",
        "string",
        ".spec.parameters[*].name",
        "Names of the default workflow parameters.",
        priority=1,
        value=_parameter_names,
    ),
)

ORDER: Final = ResourceInfo(
    kind="Order",
    plural="orders",
    singular="order",
    namespaced=True,
    model=v1alpha1.Order,
    list_model=v1alpha1.OrderList,
    short_names=("ord",),
    subresources=("status",),
    selectable_fields=("status.phase",),
    description="Order asks ARC to copy a set of artifacts between Endpoints.",
    printer_columns=(
        PrinterColumn("Phase", "string", ".status.phase", "Phase of the Order."),
        PrinterColumn(
            "Progress",
            "string",
            ".status.progress",
            "Succeeded artifacts / total artifacts.",
            value=_order_progress,
        ),
        AGE_COLUMN,
        PrinterColumn(
            "Last Schedule",
            "date",
            ".status.lastScheduleTime",
            "The latest scheduled time at which a scheduled artifact started.",
            priority=1,
        ),
        PrinterColumn("Message", "string", ".status.message", "Details about the Order's state.", priority=1),
    ),
)

ARTIFACT_WORKFLOW: Final = ResourceInfo(
    kind="ArtifactWorkflow",
    plural="artifactworkflows",
    singular="artifactworkflow",
    namespaced=True,
    model=v1alpha1.ArtifactWorkflow,
    list_model=v1alpha1.ArtifactWorkflowList,
    short_names=("aw",),
    subresources=("status",),
    selectable_fields=("spec.type", "status.phase"),
    description="ArtifactWorkflow is one artifact transfer of an Order, run as an Argo Workflow.",
    printer_columns=(
        PrinterColumn("Type", "string", ".spec.type", "The artifact type."),
        PrinterColumn("Phase", "string", ".status.phase", "Phase of the workflow."),
        PrinterColumn("Workflow", "string", ".status.workflowName", "Name of the Argo Workflow."),
        AGE_COLUMN,
        PrinterColumn(
            "Message", "string", ".status.message", "Details about the workflow's state.", priority=1
        ),
        PrinterColumn(
            "Digest",
            "string",
            ".status.provenance.destination.digest",
            "Digest of the artifact at the destination.",
            priority=1,
        ),
        PrinterColumn(
            "Verified-By",
            "string",
            ".status.provenance.signature.key",
            "The public key whose signature was verified before the copy.",
            priority=1,
        ),
    ),
)

ENDPOINT: Final = ResourceInfo(
    kind="Endpoint",
    plural="endpoints",
    singular="endpoint",
    namespaced=True,
    model=v1alpha1.Endpoint,
    list_model=v1alpha1.EndpointList,
    short_names=("ep-arc", "arcep"),
    subresources=("status",),
    selectable_fields=("spec.type", "spec.usage"),
    description="Endpoint is a remote registry, repository or server that artifacts are copied from or to.",
    printer_columns=(
        PrinterColumn("Type", "string", ".spec.type", "The endpoint type."),
        PrinterColumn("URL", "string", ".spec.remoteURL", "The remote URL."),
        PrinterColumn("Usage", "string", ".spec.usage", "PullOnly, PushOnly or All."),
        PrinterColumn("Secret", "string", ".spec.secretRef.name", "The Secret with credentials."),
        PrinterColumn(
            "Ready",
            "string",
            '.status.conditions[?(@.type=="Ready")].status',
            "Whether the last probe reached the remote and its credentials were accepted.",
            value=lambda obj: _condition_field(obj, "Ready", "status"),
        ),
        AGE_COLUMN,
        PrinterColumn(
            "Message",
            "string",
            '.status.conditions[?(@.type=="Ready")].message',
            "Why the Endpoint is (not) Ready.",
            value=lambda obj: _condition_field(obj, "Ready", "message"),
        ),
    ),
)

ARTIFACT_TYPE: Final = ResourceInfo(
    kind="ArtifactType",
    plural="artifacttypes",
    singular="artifacttype",
    namespaced=True,
    model=v1alpha1.ArtifactType,
    list_model=v1alpha1.ArtifactTypeList,
    short_names=("at",),
    description="ArtifactType says how artifacts of one type are transferred in its namespace.",
    printer_columns=_TYPE_COLUMNS,
)

CLUSTER_ARTIFACT_TYPE: Final = ResourceInfo(
    kind="ClusterArtifactType",
    plural="clusterartifacttypes",
    singular="clusterartifacttype",
    namespaced=False,
    model=v1alpha1.ClusterArtifactType,
    list_model=v1alpha1.ClusterArtifactTypeList,
    short_names=("cat",),
    description="ClusterArtifactType says how artifacts of one type are transferred cluster-wide.",
    printer_columns=_TYPE_COLUMNS,
)

RESOURCES: Final[tuple[ResourceInfo, ...]] = (
    ORDER,
    ARTIFACT_WORKFLOW,
    ENDPOINT,
    ARTIFACT_TYPE,
    CLUSTER_ARTIFACT_TYPE,
)

BY_PLURAL: Final[Mapping[str, ResourceInfo]] = {r.plural: r for r in RESOURCES}
BY_KIND: Final[Mapping[str, ResourceInfo]] = {r.kind: r for r in RESOURCES}
BY_LIST_KIND: Final[Mapping[str, ResourceInfo]] = {r.list_kind: r for r in RESOURCES}
_BY_SHORT: Final[Mapping[str, ResourceInfo]] = {s: r for r in RESOURCES for s in r.short_names}
_BY_MODEL: Final[Mapping[type[BaseModel], ResourceInfo]] = {r.model: r for r in RESOURCES}


def by_plural(plural: str) -> ResourceInfo | None:
    return BY_PLURAL.get(plural)


def by_kind(kind: str) -> ResourceInfo | None:
    return BY_KIND.get(kind)


def by_short_name(short: str) -> ResourceInfo | None:
    return _BY_SHORT.get(short)


def by_model(model: type[BaseModel]) -> ResourceInfo | None:
    return _BY_MODEL.get(model)


def info_for(obj: BaseModel) -> ResourceInfo:
    """The ResourceInfo of an ARC object (KeyError for anything else)."""
    return _BY_MODEL[type(obj)]


def resolve(name: str) -> ResourceInfo | None:
    """Resolve what a user typed (`orders`, `order`, `ord`, `Order`) the way kubectl's RESTMapper does."""
    lowered = name.lower()
    for r in RESOURCES:
        if lowered in (r.plural, r.singular, r.kind.lower()) or lowered in r.short_names:
            return r
    return None
