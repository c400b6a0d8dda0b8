"""Query parameters of ARC requests, decoded and validated as kube-apiserver does.

``metav1.ListOptions`` (with the WatchList defaults and validation of
``apimachinery/pkg/apis/meta/internalversion``), Create/Update/Patch options (``dryRun``, ``fieldManager``,
``fieldValidation``) and the query form of DeleteOptions. Unknown parameters are ignored, as kube does;
known ones with bad values are a 400 BadRequest or a 422 Invalid naming the option.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from api import fields as f
from api.resources import GroupKind, ResourceInfo
from apiserver import errors
from apiserver.registry.store import ListOptions
from apiserver.selectors import SelectorParseError, parse_field_selector, parse_label_selector

META_GROUP = "meta.k8s.io"
FIELD_VALIDATION = ("Ignore", "Strict", "Warn")
DEFAULT_FIELD_VALIDATION = "Warn"


def _bool(query: Mapping[str, str], name: str) -> bool | None:
    raw = query.get(name)
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in ("", "true", "1", "t"):
        return True
    if lowered in ("false", "0", "f"):
        return False
    raise errors.bad_request(f'strconv.ParseBool: parsing "{raw}": invalid syntax')


_DECIMAL = re.compile(r"[+-]?[0-9]+")


def _int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        if not _DECIMAL.fullmatch(raw):
            raise ValueError(raw)
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None
    if not -(2**63) <= value < 2**63:
        # An int64 in kube's query decoder (and in etcd's RangeRequest).
        raise errors.bad_request(f'strconv.ParseInt: parsing "{raw}": value out of range')
    return value


@dataclass(frozen=True)
class WatchOptions:
    """The watch half of ListOptions."""

    resource_version: str | None
    send_initial_events: bool
    allow_bookmarks: bool
    timeout_seconds: int | None


def list_options(info: ResourceInfo, query: Mapping[str, str]) -> tuple[ListOptions, WatchOptions | None]:
    """Decode, default and validate ListOptions; returns the watch options when ``watch`` is set."""
    watch = bool(_bool(query, "watch"))
    rv = query.get("resourceVersion") or None
    match = query.get("resourceVersionMatch") or None
    continue_token = query.get("continue") or None
    send_initial = _bool(query, "sendInitialEvents")
    allow_bookmarks = bool(_bool(query, "allowWatchBookmarks"))
    limit = _int(query, "limit")
    timeout = _int(query, "timeoutSeconds")

    # SetListOptionsDefaults with the WatchList feature on.
    if watch and send_initial is None and match is None and rv in (None, "0"):
        send_initial, match = True, "NotOlderThan"

    errs: list[f.FieldError] = []
    if watch:
        if send_initial is not None and match != "NotOlderThan":
            errs.append(
                f.forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )
            )
        if match is not None:
            if send_initial is None:
                errs.append(
                    f.forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    )
                )
            if match != "NotOlderThan":
                errs.append(f.not_supported("resourceVersionMatch", match, ["NotOlderThan"]))
            if continue_token:
                errs.append(
                    f.forbidden(
                        "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided"
                    )
                )
    else:
        if match is not None:
            if rv is None:
                errs.append(
                    f.forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    )
                )
            if continue_token:
                errs.append(
                    f.forbidden(
                        "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided"
                    )
                )
            if match not in ("Exact", "NotOlderThan"):
                errs.append(f.not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""]))
            if match == "Exact" and rv == "0":
                errs.append(
                    f.forbidden(
                        "resourceVersionMatch",
                        'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                    )
                )
        if send_initial is not None:
            errs.append(f.forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    if errs:
        raise errors.invalid(GroupKind(META_GROUP, "ListOptions"), "", errs)

    if rv is not None:
        try:
            if not 0 <= int(rv) < 2**63:
                raise ValueError
        except ValueError:
            raise errors.bad_request(f'invalid resource version "{rv}"') from None
    if continue_token and rv not in (None, "0"):
        raise errors.bad_request("specifying resource version is not allowed when using continue")
    if limit is not None and limit < 0:
        limit = None

    label_selector = label_prefilter = None
    if query.get("labelSelector"):
        try:
            parsed = parse_label_selector(query["labelSelector"])
        except SelectorParseError as exc:
            raise errors.bad_request(str(exc)) from None
        label_selector, label_prefilter = parsed.matches, parsed.stored_json_prefilter()
    field_selector = None
    if query.get("fieldSelector"):
        try:
            selector = parse_field_selector(query["fieldSelector"])
        except SelectorParseError as exc:
            raise errors.bad_request(str(exc)) from None
        supported = {
            "metadata.name",
            *(("metadata.namespace",) if info.namespaced else ()),
            *info.selectable_fields,
        }
        for requirement in selector.requirements:
            if requirement.field not in supported:
                raise errors.bad_request(f"field label not supported: {requirement.field}")
        field_selector = selector.matches

    options = ListOptions(
        label_selector=label_selector,
        label_prefilter=label_prefilter,
        field_selector=field_selector,
        limit=limit,
        continue_token=continue_token,
        resource_version=rv,
        resource_version_match=match,
    )
    if not watch:
        return options, None
    return options, WatchOptions(
        resource_version=rv,
        send_initial_events=bool(send_initial),
        allow_bookmarks=allow_bookmarks,
        timeout_seconds=timeout,
    )


Operation = Literal["CreateOptions", "UpdateOptions", "PatchOptions", "DeleteOptions"]


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool
    field_manager: str | None
    field_validation: str


def write_options(query: Mapping[str, str], dry_run_values: list[str], kind: Operation) -> WriteOptions:
    """``dryRun`` / ``fieldManager`` / ``fieldValidation``, validated as ``ValidateCreateOptions`` does."""
    errs: list[f.FieldError] = []
    for value in dry_run_values:
        if value != "All":
            errs.append(f.not_supported("dryRun", value, ["All"]))
    manager = query.get("fieldManager") or None
    if manager is not None and len(manager) > 128:
        errs.append(f.too_long("fieldManager", 128))
    validation = query.get("fieldValidation") or DEFAULT_FIELD_VALIDATION
    if validation not in FIELD_VALIDATION:
        errs.append(f.not_supported("fieldValidation", validation, list(FIELD_VALIDATION)))
    if errs:
        raise errors.invalid(GroupKind(META_GROUP, kind), "", errs)
    return WriteOptions(dry_run=bool(dry_run_values), field_manager=manager, field_validation=validation)


def patch_options(query: Mapping[str, str], patch_type: str, field_manager: str | None) -> bool:
    """``force`` of PatchOptions, validated as ``ValidatePatchOptions`` does; returns it."""
    errs: list[f.FieldError] = []
    force = _bool(query, "force")
    if patch_type == "application/apply-patch+yaml":
        if not field_manager:
            errs.append(f.required("fieldManager", "is required for apply patch"))
    elif force is not None:
        errs.append(f.forbidden("force", "may not be specified for non-apply patch"))
    if errs:
        raise errors.invalid(GroupKind(META_GROUP, "PatchOptions"), "", errs)
    return bool(force)


_DELETE_OPTIONS_TYPES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "apiVersion": ("string", lambda v: isinstance(v, str)),
    "kind": ("string", lambda v: isinstance(v, str)),
    "gracePeriodSeconds": ("int64", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "orphanDependents": ("bool", lambda v: isinstance(v, bool)),
    "propagationPolicy": ("v1.DeletionPropagation", lambda v: isinstance(v, str)),
    "dryRun": ("[]string", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "preconditions": ("v1.Preconditions", lambda v: isinstance(v, dict)),
    "preconditions.uid": ("types.UID", lambda v: isinstance(v, str)),
    "preconditions.resourceVersion": ("string", lambda v: isinstance(v, str)),
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _check_delete_options_types(body: Mapping[str, Any]) -> None:
    """The body decodes into DeleteOptions as Go's decoder would, else kube's 400 (``json: cannot
    unmarshal … into Go struct field …``); null is every field's zero value."""
    fields = [(k, v) for k, v in body.items()]
    preconditions = body.get("preconditions")
    if isinstance(preconditions, dict):
        fields += [(f"preconditions.{k}", v) for k, v in preconditions.items()]
    for path, value in fields:
        expected = _DELETE_OPTIONS_TYPES.get(path)
        if expected is None or value is None or expected[1](value):
            continue
        raise errors.bad_request(
            f"json: cannot unmarshal {_json_type(value)} into Go struct field DeleteOptions.{path} "
            f"of type {expected[0]}"
        )


def delete_options(query: Mapping[str, str], body: Any, dry_run_values: list[str]) -> dict[str, Any]:
    """DeleteOptions from the body (if any) and the query (query wins, as kube's decoder does)."""
    options: dict[str, Any] = {}
    if body is not None:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of a delete must be a DeleteOptions object")
        _check_delete_options_types(body)
        options.update(body)
    grace = _int(query, "gracePeriodSeconds")
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    if query.get("propagationPolicy"):
        options["propagationPolicy"] = query["propagationPolicy"]
    orphan = _bool(query, "orphanDependents")
    if orphan is not None:
        options["orphanDependents"] = orphan
    if dry_run_values:
        options["dryRun"] = dry_run_values
    errs: list[f.FieldError] = []
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
        errs.append(
            f.not_supported("propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])
        )
    if policy is not None and options.get("orphanDependents") is not None:
        errs.append(
            f.invalid(
                "propagationPolicy", policy, "orphanDependents and deletionPropagation cannot be both set"
            )
        )
    for value in options.get("dryRun") or []:
        if value != "All":
            errs.append(f.not_supported("dryRun", value, ["All"]))
    if errs:
        raise errors.invalid(GroupKind(META_GROUP, "DeleteOptions"), "", errs)
    return options
