"""OpenAPI documents for arc.opendefense.cloud/v1alpha1, generated from the models and the resource table.

- `build_v2()`: the Swagger 2.0 document served at `/openapi/v2` (merged by the aggregator).
- `build_v3()`: the OpenAPI 3.0 document served at `/openapi/v3/apis/arc.opendefense.cloud/v1alpha1`.
- `build_v3_root(v3_bytes)`: the `/openapi/v3` discovery document pointing at it (with kube's hash).
- `serialize(doc)`: stable bytes (sorted keys) for serving, hashing and the checked-in copies under
  `api/openapi-spec/` (regenerate with `python -m hack.update_openapi`).

ARC's schemas are named `cloud.opendefense.arc.v1alpha1.<Type>` (reverse-DNS group, as kube does for
aggregated and custom types). The meta types (`io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`, ...) and
the common query-parameter descriptions are byte-identical copies of kube-apiserver v1.33's, vendored in
`api/openapi-spec/kube-meta/` (refresh with `python -m hack.update_openapi --refresh-kube-meta`): the
aggregator's merger deduplicates identical definitions instead of renaming them.

What kubectl relies on, and where it comes from:
- `x-kubernetes-group-version-kind`: a list on schemas, a single object on operations (`kubectl explain`).
- Descriptions on every field (`kubectl explain`).
- `x-kubernetes-list-type` / `x-kubernetes-list-map-keys` (server-side apply merges lists by them).
- PATCH consumes exactly what is served: json-patch, merge-patch, strategic-merge-patch (from the
  `x-kubernetes-patch-strategy`/`-merge-key` metadata, which kubectl's client-side apply reads to build
  its patches) and apply-patch (server-side apply).
- `fieldValidation`, `dryRun`, `fieldManager`, `force` on the write operations (otherwise kubectl falls
  back to client-side validation).
"""

from __future__ import annotations

import copy
import enum
import functools
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from api import meta
from api.resources import GROUP, RESOURCES, VERSION, ResourceInfo

__all__ = [
    "KUBE_META_DIR",
    "SPEC_DIR",
    "V2_PATH",
    "V3_PATH",
    "build_v2",
    "build_v3",
    "build_v3_root",
    "definition_name",
    "serialize",
]

SPEC_DIR: Final = Path(__file__).resolve().parent / "openapi-spec"
KUBE_META_DIR: Final = SPEC_DIR / "kube-meta"
V2_PATH: Final = SPEC_DIR / "v2.json"
V3_PATH: Final = SPEC_DIR / "v3" / f"apis__{GROUP}__{VERSION}_openapi.json"

_DEF_PREFIX: Final = ".".join(reversed(GROUP.split("."))) + f".{VERSION}."  # cloud.opendefense.arc.v1alpha1.
_META_PREFIX: Final = "io.k8s.apimachinery.pkg.apis.meta.v1."

# Meta models whose schema is kube's (vendored), by kube's definition name.
_KUBE_NAMES: Final[dict[type[BaseModel], str]] = {
    meta.ObjectMeta: _META_PREFIX + "ObjectMeta",
    meta.ListMeta: _META_PREFIX + "ListMeta",
    meta.Condition: _META_PREFIX + "Condition",
    meta.OwnerReference: _META_PREFIX + "OwnerReference",
    meta.ManagedFieldsEntry: _META_PREFIX + "ManagedFieldsEntry",
    meta.Status: _META_PREFIX + "Status",
    meta.StatusDetails: _META_PREFIX + "StatusDetails",
    meta.StatusCause: _META_PREFIX + "StatusCause",
    meta.DeleteOptions: _META_PREFIX + "DeleteOptions",
    meta.Preconditions: _META_PREFIX + "Preconditions",
    meta.WatchEvent: _META_PREFIX + "WatchEvent",
}
KUBE_META_DEFINITIONS: Final = (
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIResource",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Condition",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Preconditions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.StatusCause",
    "io.k8s.apimachinery.pkg.apis.meta.v1.StatusDetails",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
)
"""The kube definitions the documents carry (closed under $ref)."""

PATCH_CONTENT_TYPES: Final = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_JSON: Final = "application/json"
_PRODUCES: Final = [_JSON, "application/yaml"]
_WATCH_PRODUCES: Final = [_JSON, "application/yaml", "application/json;stream=watch"]

Version = Literal[2, 3]


def definition_name(model: type[BaseModel]) -> str:
    """The OpenAPI definition name of a model: kube's for meta types, `cloud.opendefense.arc.v1alpha1.X`."""
    return _KUBE_NAMES.get(model) or _DEF_PREFIX + model.__name__


def _ref(name: str, version: Version) -> str:
    return f"#/definitions/{name}" if version == 2 else f"#/components/schemas/{name}"


@functools.cache
def _kube_meta(version: Version) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((KUBE_META_DIR / f"v{version}.json").read_text())
    return data


# --- schemas from models --------------------------------------------------------------------------------


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _is_raw(annotation: Any) -> bool:
    return annotation is meta.RawJSON or (
        typing.get_origin(annotation) is typing.Annotated and typing.get_args(annotation)[0] is Any
    )


class _Builder:
    def __init__(self, version: Version) -> None:
        self.version: Version = version
        self.definitions: dict[str, Any] = {}

    def model(self, model: type[BaseModel]) -> str:
        name = definition_name(model)
        if name in self.definitions or name.startswith(_META_PREFIX):
            return name
        self.definitions[name] = {}  # placeholder against recursion
        schema: dict[str, Any] = {"type": "object", "properties": {}}
        doc = (model.__doc__ or "").strip()
        if doc:
            schema["description"] = " ".join(doc.split())
        required: list[str] = []
        for fname, info in model.model_fields.items():
            wire = info.alias or fname
            schema["properties"][wire] = self.field(info)
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if extra.get("x-arc-required"):
                required.append(wire)
        if required:
            schema["required"] = sorted(required)
        model_extra = model.model_config.get("json_schema_extra")
        if isinstance(model_extra, dict):
            schema.update({k: v for k, v in model_extra.items() if k.startswith("x-kubernetes-")})
        self.definitions[name] = schema
        return name

    def field(self, info: FieldInfo) -> dict[str, Any]:
        annotation = info.annotation
        if _is_raw(annotation) or any(getattr(m, "func", None) is meta._keep for m in info.metadata):
            schema: dict[str, Any] = {"type": "object"}
        else:
            annotation, optional = _unwrap_optional(annotation)
            schema = self.type_schema(annotation, as_field=not optional)
        extra = dict(info.json_schema_extra) if isinstance(info.json_schema_extra, dict) else {}
        extra.pop("x-arc-required", None)
        schema.update(extra)
        if info.description:
            schema = self._describe(schema, info.description)
        if (
            self.version == 3
            and info.default == ""
            and schema.get("type") == "string"
            and "enum" not in schema
        ):
            schema["default"] = ""
        return schema

    def _describe(self, schema: dict[str, Any], description: str) -> dict[str, Any]:
        if "$ref" in schema:
            if self.version == 2:
                return {"$ref": schema["$ref"], "description": description}
            return {"allOf": [{"$ref": schema["$ref"]}], "description": description}
        if "allOf" in schema:
            return {**schema, "description": description}
        return {**schema, "description": description}

    def type_schema(self, annotation: Any, *, as_field: bool = False) -> dict[str, Any]:
        if _is_raw(annotation):
            return {"type": "object"}
        annotation, _ = _unwrap_optional(annotation)
        origin = typing.get_origin(annotation)
        if origin is Literal or (isinstance(annotation, type) and issubclass(annotation, enum.Enum)):
            return {"type": "string"}  # the values come from the field's `x_kubernetes(enum=...)`
        if origin is list:
            (item,) = typing.get_args(annotation)
            return {"type": "array", "items": self.item_schema(item)}
        if origin is dict:
            _, value = typing.get_args(annotation)
            return {"type": "object", "additionalProperties": self.item_schema(value)}
        if annotation is str:
            return {"type": "string"}
        if annotation is bool:
            return {"type": "boolean"}
        if annotation is int:
            return {"type": "integer", "format": "int64"}
        if annotation is float:
            return {"type": "number", "format": "double"}
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            ref = {"$ref": _ref(self.model(annotation), self.version)}
            if self.version == 3 and as_field:
                return {"allOf": [ref]}
            return ref
        raise TypeError(f"no OpenAPI mapping for {annotation!r}")

    def item_schema(self, annotation: Any) -> dict[str, Any]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and self.version == 3:
            return {"allOf": [{"$ref": _ref(self.model(annotation), 3)}]}
        return self.type_schema(annotation)


def _schemas(version: Version) -> dict[str, Any]:
    b = _Builder(version)
    for r in RESOURCES:
        name = b.model(r.model)
        b.definitions[name]["x-kubernetes-group-version-kind"] = [r.gvk.to_dict()]
        list_name = b.model(r.list_model)
        b.definitions[list_name]["x-kubernetes-group-version-kind"] = [r.list_gvk.to_dict()]
    defs: dict[str, Any] = copy.deepcopy(_kube_meta(version)["definitions"])
    if version == 3:
        _strip_object_defaults(defs)
    defs.update(b.definitions)
    return defs


def _strip_object_defaults(node: Any) -> None:
    """Drop kube's `"default": {}` next to `allOf: [$ref]` in v3 schemas.

    kube-openapi emits them for non-pointer structs, but an empty default does not satisfy the referenced
    schema's `required` list, so OpenAPI 3.0 validators reject the document. kubectl does not use them,
    and v3 documents are proxied per group-version (not merged), so they need not be byte-identical.
    """
    if isinstance(node, dict):
        if "allOf" in node and node.get("default") == {}:
            del node["default"]
        for v in node.values():
            _strip_object_defaults(v)
    elif isinstance(node, list):
        for v in node:
            _strip_object_defaults(v)


# --- paths ----------------------------------------------------------------------------------------------


def _camel_group() -> str:
    parts = GROUP.split(".")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


_TAG: Final = f"{_camel_group()}_{VERSION}"
_OP_PREFIX: Final = _camel_group()[:1].upper() + _camel_group()[1:] + VERSION[:1].upper() + VERSION[1:]


def _param(name: str, version: Version, *, variant: str = "") -> dict[str, Any]:
    params: Mapping[str, Any] = _kube_meta(2)["parameters"]
    p: dict[str, Any] = copy.deepcopy(params[f"{name}@{variant}" if variant else name])
    if version == 2:
        return p
    out: dict[str, Any] = {"description": p["description"], "in": p["in"], "name": p["name"]}
    if p.get("required"):
        out["required"] = True
    out["schema"] = {"type": p["type"], "uniqueItems": True}
    return out


def _path_param(name: str, description: str, version: Version) -> dict[str, Any]:
    if version == 2:
        return {
            "description": description,
            "in": "path",
            "name": name,
            "required": True,
            "type": "string",
            "uniqueItems": True,
        }
    return {
        "description": description,
        "in": "path",
        "name": name,
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


_LIST_PARAMS: Final = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)


def _body_param(schema_name: str, version: Version, *, required: bool = True) -> dict[str, Any]:
    p: dict[str, Any] = {"in": "body", "name": "body", "schema": {"$ref": _ref(schema_name, 2)}}
    if required:
        p["required"] = True
    return p


class _Op:
    """Builds one operation for v2 or v3."""

    def __init__(self, r: ResourceInfo, version: Version) -> None:
        self.r = r
        self.v: Version = version
        self.kind_def = definition_name(r.model)
        self.list_def = definition_name(r.list_model)

    def response(
        self, schema_name: str, codes: tuple[tuple[str, str], ...], *, watch: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for code, desc in codes:
            if self.v == 2:
                out[code] = {"description": desc, "schema": {"$ref": _ref(schema_name, 2)}}
            else:
                media = _WATCH_PRODUCES if watch else _PRODUCES
                out[code] = {
                    "content": {m: {"schema": {"$ref": _ref(schema_name, 3)}} for m in media},
                    "description": desc,
                }
        out["401"] = {"description": "Unauthorized"}
        return out

    def op(
        self,
        *,
        op_id: str,
        description: str,
        action: str,
        params: list[dict[str, Any]],
        responses: dict[str, Any],
        body: tuple[str, tuple[str, ...]] | None = None,
        body_required: bool = True,
        watch: bool = False,
    ) -> dict[str, Any]:
        o: dict[str, Any] = {"description": description, "operationId": op_id}
        if self.v == 2:
            consumes = list(body[1]) if body is not None else ["*/*"]
            o["consumes"] = consumes
            o["produces"] = _WATCH_PRODUCES if watch else _PRODUCES
            o["schemes"] = ["https"]
            if body is not None:
                params = [_body_param(body[0], 2, required=body_required), *params]
        elif body is not None:
            rb: dict[str, Any] = {"content": {m: {"schema": {"$ref": _ref(body[0], 3)}} for m in body[1]}}
            if body_required:
                rb["required"] = True
            o["requestBody"] = rb
        if params:
            o["parameters"] = params
        o["responses"] = responses
        o["tags"] = [_TAG]
        o["x-kubernetes-action"] = action
        o["x-kubernetes-group-version-kind"] = self.r.gvk.to_dict()
        return o


def _resource_paths(r: ResourceInfo, version: Version) -> dict[str, Any]:
    v = version
    o = _Op(r, v)
    base = f"/apis/{GROUP}/{VERSION}"
    ns_seg = "namespaces/{namespace}/" if r.namespaced else ""
    scope = "Namespaced" if r.namespaced else ""
    kind = r.kind
    ok = (("200", "OK"),)
    name_param = _path_param("name", f"name of the {kind}", v)
    ns_param = [_param("namespace", v)] if r.namespaced else []
    pretty = _param("pretty", v)
    list_params = [_param(n, v) for n in _LIST_PARAMS]
    write_params = [_param("dryRun", v), _param("fieldManager", v), _param("fieldValidation", v)]
    patch_params = [
        _param("dryRun", v),
        _param("fieldManager", v, variant="patch"),
        _param("fieldValidation", v),
        _param("force", v),
    ]
    delete_params = [
        _param("dryRun", v),
        _param("gracePeriodSeconds", v),
        _param("ignoreStoreReadErrorWithClusterBreakingPotential", v),
        _param("orphanDependents", v),
        _param("propagationPolicy", v),
    ]
    delete_options = definition_name(meta.DeleteOptions)
    status_def = definition_name(meta.Status)
    patch_def = _META_PREFIX + "Patch"
    watch_def = definition_name(meta.WatchEvent)
    paths: dict[str, Any] = {}

    collection = f"{base}/{ns_seg}{r.plural}"
    paths[collection] = {
        "parameters": [*ns_param, pretty],
        "get": o.op(
            op_id=f"list{_OP_PREFIX}{scope}{kind}",
            description=f"list or watch objects of kind {kind}",
            action="list",
            params=list_params,
            responses=o.response(o.list_def, ok, watch=True),
            watch=True,
        ),
        "post": o.op(
            op_id=f"create{_OP_PREFIX}{scope}{kind}",
            description=f"create a {kind}",
            action="post",
            params=write_params,
            responses=o.response(o.kind_def, (("200", "OK"), ("201", "Created"), ("202", "Accepted"))),
            body=(o.kind_def, ("*/*",)),
        ),
        "delete": o.op(
            op_id=f"delete{_OP_PREFIX}Collection{scope}{kind}",
            description=f"delete collection of {kind}",
            action="deletecollection",
            params=[
                *delete_params[:1],
                _param("continue", v),
                _param("fieldSelector", v),
                *delete_params[1:4],
                _param("labelSelector", v),
                _param("limit", v),
                *delete_params[4:],
                _param("resourceVersion", v),
                _param("resourceVersionMatch", v),
                _param("sendInitialEvents", v),
                _param("timeoutSeconds", v),
            ],
            responses=o.response(status_def, ok),
            body=(delete_options, ("*/*",)),
            body_required=False,
        ),
    }
    item = f"{collection}/{{name}}"

    def read_replace_patch(suffix: str, what: str) -> dict[str, Any]:
        """get/put/patch of the object (``suffix=""``) or of its ``/status`` (``suffix="Status"``)."""
        written = (("200", "OK"), ("201", "Created"))
        return {
            "get": o.op(
                op_id=f"read{_OP_PREFIX}{scope}{kind}{suffix}",
                description=f"read {what} {kind}",
                action="get",
                params=[],
                responses=o.response(o.kind_def, ok),
            ),
            "put": o.op(
                op_id=f"replace{_OP_PREFIX}{scope}{kind}{suffix}",
                description=f"replace {what} {kind}",
                action="put",
                params=write_params,
                responses=o.response(o.kind_def, written),
                body=(o.kind_def, ("*/*",)),
            ),
            "patch": o.op(
                op_id=f"patch{_OP_PREFIX}{scope}{kind}{suffix}",
                description=f"partially update {what} {kind}",
                action="patch",
                params=patch_params,
                responses=o.response(o.kind_def, written),
                body=(patch_def, PATCH_CONTENT_TYPES),
            ),
        }

    paths[item] = {
        "parameters": [name_param, *ns_param, pretty],
        **read_replace_patch("", "the specified"),
        "delete": o.op(
            op_id=f"delete{_OP_PREFIX}{scope}{kind}",
            description=f"delete a {kind}",
            action="delete",
            params=delete_params,
            responses=o.response(status_def, (("200", "OK"), ("202", "Accepted"))),
            body=(delete_options, ("*/*",)),
            body_required=False,
        ),
    }
    if r.has_status:
        paths[f"{item}/status"] = {
            "parameters": [name_param, *ns_param, pretty],
            **read_replace_patch("Status", "status of the specified"),
        }

    def list_parameters(*path_params: dict[str, Any]) -> list[dict[str, Any]]:
        """A list or watch path's parameters in kube's order: the list options around path and pretty."""
        return [*list_params[:5], *path_params, pretty, *list_params[5:]]

    def streaming_get(op_id: str, description: str, action: str, definition: str) -> dict[str, Any]:
        """The GET of a list-only or watch-only path: every parameter is the path's, the answer may stream."""
        return o.op(
            op_id=op_id,
            description=description,
            action=action,
            params=[],
            responses=o.response(definition, ok, watch=True),
            watch=True,
        )

    watch_list = (
        f"watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list "
        "operation instead."
    )
    paths[f"{base}/watch/{ns_seg}{r.plural}"] = {
        "parameters": list_parameters(*ns_param),
        "get": streaming_get(f"watch{_OP_PREFIX}{scope}{kind}List", watch_list, "watchlist", watch_def),
    }
    paths[f"{base}/watch/{ns_seg}{r.plural}/{{name}}"] = {
        "parameters": list_parameters(name_param, *ns_param),
        "get": streaming_get(
            f"watch{_OP_PREFIX}{scope}{kind}",
            f"watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list "
            "operation instead, filtered to a single item with the 'fieldSelector' parameter.",
            "watch",
            watch_def,
        ),
    }
    if r.namespaced:
        paths[f"{base}/{r.plural}"] = {
            "parameters": list_parameters(),
            "get": streaming_get(
                f"list{_OP_PREFIX}{kind}ForAllNamespaces",
                f"list or watch objects of kind {kind}",
                "list",
                o.list_def,
            ),
        }
        paths[f"{base}/watch/{r.plural}"] = {
            "parameters": list_parameters(),
            "get": streaming_get(
                f"watch{_OP_PREFIX}{kind}ListForAllNamespaces", watch_list, "watchlist", watch_def
            ),
        }
    return paths


def _discovery_path(version: Version) -> dict[str, Any]:
    name = _META_PREFIX + "APIResourceList"
    op: dict[str, Any] = {
        "description": "get available resources",
        "operationId": f"get{_OP_PREFIX}APIResources",
    }
    if version == 2:
        op["consumes"] = [_JSON, "application/yaml"]
        op["produces"] = [_JSON, "application/yaml"]
        op["schemes"] = ["https"]
        op["responses"] = {
            "200": {"description": "OK", "schema": {"$ref": _ref(name, 2)}},
            "401": {"description": "Unauthorized"},
        }
    else:
        op["responses"] = {
            "200": {
                "content": {m: {"schema": {"$ref": _ref(name, 3)}} for m in _PRODUCES},
                "description": "OK",
            },
            "401": {"description": "Unauthorized"},
        }
    op["tags"] = [_TAG]
    return {f"/apis/{GROUP}/{VERSION}/": {"get": op}}


def _paths(version: Version) -> dict[str, Any]:
    paths = _discovery_path(version)
    for r in RESOURCES:
        paths.update(_resource_paths(r, version))
    return paths


_INFO: Final = {"title": "ARC (Artifact Conduit)", "version": VERSION}
_BEARER: Final = {
    "BearerToken": {
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    }
}


def build_v2() -> dict[str, Any]:
    """The Swagger 2.0 document for `/openapi/v2`."""
    return {
        "swagger": "2.0",
        "info": dict(_INFO),
        "paths": _paths(2),
        "definitions": _schemas(2),
        "securityDefinitions": copy.deepcopy(_BEARER),
        "security": [{"BearerToken": []}],
    }


def build_v3() -> dict[str, Any]:
    """The OpenAPI 3.0 document for `/openapi/v3/apis/arc.opendefense.cloud/v1alpha1`."""
    return {
        "openapi": "3.0.0",
        "info": dict(_INFO),
        "paths": _paths(3),
        "components": {"schemas": _schemas(3), "securitySchemes": copy.deepcopy(_BEARER)},
    }


def serialize(doc: Mapping[str, Any]) -> bytes:
    """Stable JSON bytes: sorted keys, two-space indent, trailing newline."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def v3_hash(v3_bytes: bytes) -> str:
    """kube's OpenAPI v3 ETag/hash: upper-case hex SHA-512 of the served bytes."""
    return hashlib.sha512(v3_bytes).hexdigest().upper()


def build_v3_root(v3_bytes: bytes) -> dict[str, Any]:
    """The `/openapi/v3` discovery document the aggregator reads."""
    gv = f"apis/{GROUP}/{VERSION}"
    return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={v3_hash(v3_bytes)}"}}}
