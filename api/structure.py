"""Structural schemas of ARC's kinds: what server-side apply and strategic merge patch walk.

kube-apiserver turns a kind's OpenAPI into a structured-merge-diff schema (``kube-openapi``'s
``schemaconv``): every object is a map whose declared properties are its fields, ``additionalProperties``
gives the type of undeclared keys, lists are atomic unless ``x-kubernetes-list-type`` says ``set`` or
``map`` (keyed by ``x-kubernetes-list-map-keys``), maps are granular unless ``x-kubernetes-map-type`` is
``atomic``, and ``x-kubernetes-preserve-unknown-fields`` objects are "deduced" (granular maps, atomic lists,
all the way down). The same OpenAPI carries Go's strategic merge patch tags
(``x-kubernetes-patch-strategy``/``-merge-key``). This module derives one :class:`Schema` tree per kind from
``api.openapi.build_v3()`` so that ARC's OpenAPI, its CRD copy in kube-apiserver (bench/compare) and the
merge algorithms can never disagree.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DEDUCED", "Schema", "schema_from_openapi", "schema_of"]

Kind = Literal["scalar", "map", "list", "deduced"]


@dataclass(eq=False)
class Schema:
    """One node of a structural schema (structured-merge-diff's ``schema.Atom``)."""

    kind: Kind
    fields: dict[str, Schema] = field(default_factory=dict)
    """Declared properties of a map (a struct)."""
    elem: Schema | None = None
    """Type of undeclared map keys (``additionalProperties``) or of list items."""
    atomic: bool = False
    """An atomic map or list: owned, merged and replaced as one value."""
    list_type: Literal["atomic", "set", "map"] = "atomic"
    keys: tuple[str, ...] = ()
    """``x-kubernetes-list-map-keys`` of a ``map`` list."""
    patch_strategy: str = ""
    patch_merge_key: str = ""
    default: Any = None
    """The schema default of a scalar (a missing list-map key takes it, as in structured-merge-diff)."""

    def child(self, name: str) -> Schema | None:
        """The type of key ``name`` of a map; None when the map does not declare it."""
        found = self.fields.get(name)
        return found if found is not None else self.elem


DEDUCED = Schema("deduced")
"""The type of ``x-kubernetes-preserve-unknown-fields`` values: granular maps, atomic lists, scalars."""


def _resolve(node: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow ``$ref`` (and the ``allOf: [{$ref}]`` that carries a field's description); the referring
    node's own keys win over the referenced schema's."""
    for _ in range(64):
        if "$ref" in node:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            node = {**schemas[str(node["$ref"]).rsplit("/", 1)[1]], **rest}
            continue
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
            rest = {k: v for k, v in node.items() if k != "allOf"}
            node = {**_resolve(all_of[0], schemas), **rest}
            continue
        return node
    raise ValueError("$ref chain too long")


def schema_from_openapi(
    node: Mapping[str, Any], schemas: Mapping[str, Any], _seen: dict[str, Schema] | None = None
) -> Schema:
    """The structural schema of an OpenAPI v3 schema node (``$ref``s resolved against ``schemas``)."""
    seen = {} if _seen is None else _seen
    ref = _ref_name(node)
    if ref is not None and ref in seen and not _has_field_extensions(node):
        return seen[ref]
    resolved = _resolve(node, schemas)
    if resolved.get("x-kubernetes-preserve-unknown-fields") and not resolved.get("properties"):
        return DEDUCED
    kind_of = resolved.get("type")
    out: Schema
    if kind_of == "array":
        list_type = resolved.get("x-kubernetes-list-type")
        keys = tuple(resolved.get("x-kubernetes-list-map-keys") or ())
        strategy = str(resolved.get("x-kubernetes-patch-strategy") or "")
        merge_key = str(resolved.get("x-kubernetes-patch-merge-key") or "")
        if list_type is None and "merge" in strategy.split(","):
            # schemaconv: a merge patch strategy without a list type makes an associative list.
            list_type, keys = ("map", (merge_key,)) if merge_key else ("set", ())
        relationship: Literal["atomic", "set", "map"] = (
            "set" if list_type == "set" else "map" if list_type == "map" else "atomic"
        )
        out = Schema(
            "list",
            atomic=relationship == "atomic",
            list_type=relationship,
            keys=keys,
            patch_strategy=strategy,
            patch_merge_key=merge_key,
        )
        items = resolved.get("items")
        out.elem = schema_from_openapi(items, schemas, seen) if isinstance(items, Mapping) else DEDUCED
        return out
    if kind_of == "object" or "properties" in resolved or "additionalProperties" in resolved:
        out = Schema(
            "map",
            atomic=resolved.get("x-kubernetes-map-type") == "atomic",
            patch_strategy=str(resolved.get("x-kubernetes-patch-strategy") or ""),
        )
        if ref is not None and not _has_field_extensions(node):
            seen[ref] = out
        properties = resolved.get("properties") or {}
        for name, prop in properties.items():
            out.fields[name] = schema_from_openapi(prop, schemas, seen)
        extra = resolved.get("additionalProperties")
        if isinstance(extra, Mapping):
            out.elem = schema_from_openapi(extra, schemas, seen)
        elif extra is True or not properties:
            out.elem = DEDUCED
        return out
    return Schema("scalar", default=resolved.get("default"))


def _ref_name(node: Mapping[str, Any]) -> str | None:
    if "$ref" in node:
        return str(node["$ref"])
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
        inner = all_of[0].get("$ref")
        return str(inner) if inner else None
    return None


def _has_field_extensions(node: Mapping[str, Any]) -> bool:
    return any(str(k).startswith("x-kubernetes-") for k in node)


def schema_of(kind: str) -> Schema:
    """The structural schema of one ARC kind (``Order``, ``Endpoint``, ...), from ARC's OpenAPI."""
    return _schemas()[kind]


@functools.cache
def _schemas() -> dict[str, Schema]:
    """Every ARC kind's schema, from one build of the OpenAPI document (~0.15 s: done once, at start-up)."""
    from api.openapi import build_v3  # the OpenAPI builder imports the models; keep this module light

    schemas = build_v3()["components"]["schemas"]
    out: dict[str, Schema] = {}
    for name, node in schemas.items():
        if not name.startswith("cloud."):
            continue
        for gvk in node.get("x-kubernetes-group-version-kind") or []:
            if not str(gvk.get("kind", "")).endswith("List"):
                out[str(gvk["kind"])] = schema_from_openapi(node, schemas)
    return out
