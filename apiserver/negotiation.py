"""Content negotiation and conversions of responses: JSON/YAML, Table and PartialObjectMetadata.

Mirrors ``k8s.io/apiserver/pkg/endpoints/handlers/negotiation``: the ``Accept`` header is read in order, the
first media type the endpoint can produce wins, ``as=Table``/``as=PartialObjectMetadata[List]`` (group
``meta.k8s.io``, version ``v1`` or ``v1beta1``) transform the response, and nothing acceptable is a 406.
Protobuf is not served; clients that offer it also offer JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import yaml

from api.resources import ResourceInfo
from apiserver import errors, yamldecode
from apiserver.encoding import encode_json

JSON = "application/json"
YAML = "application/yaml"
SERVED_MEDIA_TYPES = (JSON, YAML, "application/vnd.kubernetes.protobuf")
META_GROUP = "meta.k8s.io"
Target = Literal["object", "list", "watch"]
Transform = Literal["Table", "PartialObjectMetadata", "PartialObjectMetadataList"]
_ALLOWED_TRANSFORMS: Mapping[Target, tuple[Transform, ...]] = {
    "object": ("Table", "PartialObjectMetadata"),
    "list": ("Table", "PartialObjectMetadataList"),
    "watch": ("Table", "PartialObjectMetadata"),
}


@dataclass(frozen=True, slots=True)
class MediaType:
    """What the response will be: JSON or YAML, optionally transformed."""

    subtype: Literal["json", "yaml"] = "json"
    transform: Transform | None = None
    version: str = "v1"

    @property
    def content_type(self) -> str:
        base = JSON if self.subtype == "json" else YAML
        if self.transform is None:
            return base
        return f"{base};as={self.transform};g={META_GROUP};v={self.version}"


DEFAULT = MediaType()


def _parse_accept(header: str) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params: dict[str, str] = {}
        for param in pieces[1:]:
            key, _, value = param.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        out.append((pieces[0].lower(), params))
    return out


def negotiate(accept: str | None, target: Target) -> MediaType:
    """The first acceptable media type of ``accept`` for a ``target`` response, else 406."""
    if not accept:
        return DEFAULT
    for media, params in _parse_accept(accept):
        if params.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        if media in (JSON, "application/*", "*/*"):
            subtype: Literal["json", "yaml"] = "json"
        elif media == YAML:
            subtype = "yaml"
        else:
            continue
        transform = params.get("as")
        if transform is None:
            return MediaType(subtype)
        if params.get("g") != META_GROUP or params.get("v") not in ("v1", "v1beta1"):
            continue
        if transform in _ALLOWED_TRANSFORMS[target]:
            return MediaType(subtype, transform, params["v"])
    raise errors.not_acceptable(SERVED_MEDIA_TYPES)


def encode(media: MediaType, body: Any) -> bytes:
    if media.subtype == "yaml":
        return yaml.safe_dump(body, sort_keys=False, allow_unicode=True).encode()
    return encode_json(body)


# ---- request bodies -------------------------------------------------------------------------------------

BODY_MEDIA_TYPES = (JSON, YAML, "application/vnd.kubernetes.protobuf")
PATCH_MEDIA_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
"""The patch types kube-apiserver serves for a kind with a Go type (the order of its 415 message)."""
JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH = PATCH_MEDIA_TYPES


def media_type_of(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """Decode a JSON or YAML request body (400 on malformed input, 415 on other media types).

    YAML is decoded here on the calling thread; request handlers use :func:`decode_body_async`, which
    decodes it off the event loop.
    """
    media = media_type_of(content_type)
    if media in YAML_MEDIA_TYPES:
        return _yaml_result(raw, None)
    return _decode_json(raw, media)


async def decode_body_async(raw: bytes, content_type: str | None) -> Any:
    """:func:`decode_body`, with YAML decoded in ``yamldecode``'s threads (go-yaml's limits apply)."""
    media = media_type_of(content_type)
    if media in YAML_MEDIA_TYPES:
        try:
            return await yamldecode.load_off_loop(raw)
        except (yaml.YAMLError, ValueError) as exc:
            return _yaml_result(raw, exc)
    return _decode_json(raw, media)


YAML_MEDIA_TYPES = (YAML, "application/x-yaml", "text/yaml")


def _decode_json(raw: bytes, media: str) -> Any:
    if media in ("", JSON):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"error decoding JSON: {exc}") from None
    raise errors.unsupported_media_type(media, BODY_MEDIA_TYPES)


def _yaml_result(raw: bytes, failure: BaseException | None) -> Any:
    """Decode ``raw`` (unless it already failed with ``failure``) or raise its 400."""
    if failure is None:
        try:
            return yamldecode.load(raw)
        except (yaml.YAMLError, ValueError) as exc:
            failure = exc
    raise errors.bad_request(f"error decoding YAML: {failure}") from None


async def decode_patch_async(raw: bytes, content_type: str | None) -> tuple[str, Any]:
    """The patch type and the decoded patch document: an apply configuration is JSON (read by orjson) or
    YAML, decoded in ``yamldecode``'s threads (go-yaml's limits apply: an alias bomb is refused, a large
    body does not hold the event loop)."""
    media = _patch_media_type(content_type)
    if media == APPLY_PATCH:
        json_doc = _json_apply_configuration(raw)
        if json_doc is not None:
            return media, json_doc
        try:
            doc = await yamldecode.load_off_loop(raw)
        except (yaml.YAMLError, ValueError) as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from None
        return media, _apply_configuration(doc)
    return media, _json_patch_document(raw, media)


def _patch_media_type(content_type: str | None) -> str:
    media = media_type_of(content_type)
    if media not in PATCH_MEDIA_TYPES:
        raise errors.unsupported_media_type(media, PATCH_MEDIA_TYPES)
    return media


def _json_apply_configuration(raw: bytes) -> dict[str, Any] | None:
    """kubectl, client-go and controller-runtime send apply configurations as JSON (which is YAML): orjson
    reads them ~50x faster than a YAML parser. None when the body is not a JSON object."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _apply_configuration(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise errors.bad_request("error decoding YAML: the apply configuration must be one object")
    return doc


def _json_patch_document(raw: bytes, media: str) -> Any:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding patch: {exc}") from None
    if media == JSON_PATCH and not isinstance(doc, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    return doc


# ---- transforms -----------------------------------------------------------------------------------------


def partial_object_metadata(obj: Mapping[str, Any], version: str = "v1") -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"{META_GROUP}/{version}",
        "metadata": obj.get("metadata") or {},
    }


def partial_object_metadata_list(
    items: Sequence[Mapping[str, Any]], list_meta: Mapping[str, Any], version: str = "v1"
) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": f"{META_GROUP}/{version}",
        "metadata": dict(list_meta),
        "items": [partial_object_metadata(o, version) for o in items],
    }


IncludeObject = Literal["None", "Metadata", "Object"]


def table(
    info: ResourceInfo,
    items: Sequence[Mapping[str, Any]],
    *,
    list_meta: Mapping[str, Any] | None = None,
    include_object: IncludeObject = "Metadata",
    with_columns: bool = True,
    version: str = "v1",
) -> dict[str, Any]:
    """A ``meta.k8s.io`` Table of ``items`` with the resource's printer columns."""
    now = datetime.now(UTC)
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": info.row_cells(obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object == "Metadata":
            row["object"] = partial_object_metadata(obj, version)
        rows.append(row)
    out: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": f"{META_GROUP}/{version}",
        "metadata": dict(list_meta or {}),
    }
    if with_columns:
        out["columnDefinitions"] = [
            d.model_dump(mode="json", by_alias=True) for d in info.column_definitions()
        ]
    out["rows"] = rows
    return out


def transform_object(
    info: ResourceInfo, media: MediaType, obj: Mapping[str, Any], include_object: IncludeObject
) -> Any:
    if media.transform == "Table":
        meta = obj.get("metadata") or {}
        return table(
            info,
            [obj],
            list_meta={"resourceVersion": meta.get("resourceVersion", "")},
            include_object=include_object,
            version=media.version,
        )
    if media.transform == "PartialObjectMetadata":
        return partial_object_metadata(obj, media.version)
    return obj


def transform_list(
    info: ResourceInfo,
    media: MediaType,
    items: Sequence[Mapping[str, Any]],
    list_meta: Mapping[str, Any],
    include_object: IncludeObject,
) -> dict[str, Any]:
    if media.transform == "Table":
        return table(info, items, list_meta=list_meta, include_object=include_object, version=media.version)
    if media.transform == "PartialObjectMetadataList":
        return partial_object_metadata_list(items, list_meta, media.version)
    return {
        "apiVersion": info.api_version,
        "kind": info.list_kind,
        "metadata": dict(list_meta),
        "items": list(items),
    }
