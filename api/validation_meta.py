"""Object-meta validation as kube does it, with kube's messages.

Ports of `k8s.io/apimachinery/pkg/util/validation` (`is_dns1123_subdomain`, `is_qualified_name`, ...),
`pkg/api/validation/objectmeta.go` (`validate_object_meta`, `validate_object_meta_update`) and
`pkg/apis/meta/v1/validation` (labels, managed fields, conditions). Messages and field paths are the ones
kube-apiserver returns, e.g. `metadata.name: Invalid value: "A": a lowercase RFC 1123 subdomain must ...`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from api import fields as f
from api.fields import FieldError, FieldPath
from api.meta import Condition, ManagedFieldsEntry, ObjectMeta, OwnerReference

__all__ = [
    "FIELD_IMMUTABLE_ERROR_MSG",
    "TOTAL_ANNOTATION_SIZE_LIMIT_B",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_qualified_name",
    "is_valid_label_value",
    "name_is_dns_label",
    "name_is_dns_subdomain",
    "validate_annotations",
    "validate_conditions",
    "validate_finalizers",
    "validate_immutable_field",
    "validate_labels",
    "validate_managed_fields",
    "validate_object_meta",
    "validate_object_meta_update",
    "validate_owner_references",
]

FIELD_IMMUTABLE_ERROR_MSG: Final = "field is immutable"
TOTAL_ANNOTATION_SIZE_LIMIT_B: Final = 256 * (1 << 10)
IS_NEGATIVE_ERROR_MSG: Final = "must be greater than or equal to 0"

_QNAME_CHAR_FMT: Final = "[A-Za-z0-9]"
_QNAME_EXT_CHAR_FMT: Final = "[-A-Za-z0-9_.]"
_QUALIFIED_NAME_FMT: Final = "(" + _QNAME_CHAR_FMT + _QNAME_EXT_CHAR_FMT + "*)?" + _QNAME_CHAR_FMT
_QUALIFIED_NAME_ERR_MSG: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character"
)
_QUALIFIED_NAME_MAX_LENGTH: Final = 63
_QUALIFIED_NAME_RE: Final = re.compile("^" + _QUALIFIED_NAME_FMT + "$")

_LABEL_VALUE_FMT: Final = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_ERR_MSG: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character"
)
LABEL_VALUE_MAX_LENGTH: Final = 63
_LABEL_VALUE_RE: Final = re.compile("^" + _LABEL_VALUE_FMT + "$")

_DNS1123_LABEL_FMT: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_ERR_MSG: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character"
)
DNS1123_LABEL_MAX_LENGTH: Final = 63
_DNS1123_LABEL_RE: Final = re.compile("^" + _DNS1123_LABEL_FMT + "$")

_DNS1123_SUBDOMAIN_FMT: Final = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_ERR_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character"
)
DNS1123_SUBDOMAIN_MAX_LENGTH: Final = 253
_DNS1123_SUBDOMAIN_RE: Final = re.compile("^" + _DNS1123_SUBDOMAIN_FMT + "$")

FIELD_MANAGER_MAX_LENGTH: Final = 128
MAX_SUBRESOURCE_NAME_LENGTH: Final = 256

FINALIZER_ORPHAN_DEPENDENTS: Final = "orphan"
FINALIZER_DELETE_DEPENDENTS: Final = "foregroundDeletion"

ValidateNameFunc = Callable[[str, bool], list[str]]


def _full(regex: re.Pattern[str], value: str) -> bool:
    # Go's regexp `^...$` has no "$ matches before a trailing newline" quirk; fullmatch is the equivalent.
    return regex.fullmatch(value) is not None


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    parts = [msg, " (e.g. "]
    for i, e in enumerate(examples):
        if i > 0:
            parts.append(" or ")
        parts.append(f"'{e}', ")
    parts.append(f"regex used for validation is '{fmt}')")
    return "".join(parts)


def empty_error() -> str:
    return "must be non-empty"


def _len(value: str) -> int:
    """Go's len(string): bytes, not characters."""
    return len(value.encode("utf-8"))


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if _len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _full(_DNS1123_SUBDOMAIN_RE, value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_ERR_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if _len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _full(_DNS1123_LABEL_RE, value):
        if _full(_DNS1123_SUBDOMAIN_RE, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_ERR_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Label keys, finalizers, annotation keys: `[prefix/]name`, name ≤ 63, prefix a DNS subdomain."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_ERR_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif _len(name) > _QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + max_len_error(_QUALIFIED_NAME_MAX_LENGTH))
    if not _full(_QUALIFIED_NAME_RE, name):
        errs.append(
            "name part "
            + regex_error(_QUALIFIED_NAME_ERR_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if _len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _full(_LABEL_VALUE_RE, value):
        errs.append(regex_error(_LABEL_VALUE_ERR_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _mask_trailing_dash(name: str) -> str:
    # Kept exactly as kube has it (it drops two characters before appending "a").
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    """`NameIsDNSSubdomain`; with `prefix` (generateName) a trailing dash is allowed."""
    if prefix:
        name = _mask_trailing_dash(name)
    return is_dns1123_subdomain(name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    """`NameIsDNSLabel` (also `ValidateNamespaceName`)."""
    if prefix:
        name = _mask_trailing_dash(name)
    return is_dns1123_label(name)


# --- labels, annotations, owners, finalizers, managed fields --------------------------------------------


def validate_label_name(name: str, path: FieldPath) -> list[FieldError]:
    return [f.invalid(path, name, m) for m in is_qualified_name(name)]


def validate_labels(labels: Mapping[str, str] | None, path: FieldPath) -> list[FieldError]:
    errs: list[FieldError] = []
    for k, v in (labels or {}).items():
        errs.extend(validate_label_name(k, path))
        errs.extend(f.invalid(path, v, m) for m in is_valid_label_value(v))
    return errs


def validate_annotations(annotations: Mapping[str, str] | None, path: FieldPath) -> list[FieldError]:
    errs: list[FieldError] = []
    if not annotations:
        return errs
    total = 0
    for k, v in annotations.items():
        errs.extend(f.invalid(path, k, m) for m in is_qualified_name(k.lower()))
        total += _len(k) + _len(v)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B:
        errs.append(f.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_B))
    return errs


def _split_api_version(api_version: str) -> tuple[str, str]:
    if api_version.count("/") == 1:
        group, version = api_version.split("/")
        return group, version
    if "/" not in api_version:
        return "", api_version
    return "", ""


def _validate_owner_reference(ref: OwnerReference, path: FieldPath) -> list[FieldError]:
    errs: list[FieldError] = []
    group, version = _split_api_version(ref.api_version)
    if not version:
        errs.append(f.invalid(path.child("apiVersion"), ref.api_version, "version must not be empty"))
    if not ref.kind:
        errs.append(f.invalid(path.child("kind"), ref.kind, "kind must not be empty"))
    if not ref.name:
        errs.append(f.invalid(path.child("name"), ref.name, "name must not be empty"))
    if not ref.uid:
        errs.append(f.invalid(path.child("uid"), ref.uid, "uid must not be empty"))
    if group == "" and version == "v1" and ref.kind == "Event":
        errs.append(f.invalid(path, f.OMIT_VALUE, "/v1, Kind=Event is disallowed from being an owner"))
    return errs


def validate_owner_references(refs: Sequence[OwnerReference] | None, path: FieldPath) -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    for ref in refs or ():
        errs.extend(_validate_owner_reference(ref, path))
        if ref.controller:
            current = f"{ref.kind}/{ref.name}"
            if first_controller:
                errs.append(
                    f.invalid(
                        path,
                        f.OMIT_VALUE,
                        'Only one reference can have Controller set to true. Found "true" in references for '
                        f"{first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errs


def validate_finalizers(finalizers: Sequence[str] | None, path: FieldPath) -> list[FieldError]:
    errs: list[FieldError] = []
    items = list(finalizers or ())
    for fin in items:
        errs.extend(f.invalid(path, fin, m) for m in is_qualified_name(fin))
    if FINALIZER_ORPHAN_DEPENDENTS in items and FINALIZER_DELETE_DEPENDENTS in items:
        errs.append(
            f.invalid(
                path,
                items,
                f"finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} "
                "cannot be both set",
            )
        )
    return errs


def _go_is_print(ch: str) -> bool:
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def validate_field_manager(manager: str, path: FieldPath) -> list[FieldError]:
    errs: list[FieldError] = []
    if _len(manager) > FIELD_MANAGER_MAX_LENGTH:
        errs.append(f.too_long(path, FIELD_MANAGER_MAX_LENGTH))
    pos = 0
    for ch in manager:
        if not _go_is_print(ch):
            errs.append(f.invalid(path, manager, f"invalid character U+{ord(ch):04X} (at position {pos})"))
        pos += len(ch.encode("utf-8"))
    return errs


def validate_managed_fields(
    entries: Sequence[ManagedFieldsEntry] | None, path: FieldPath
) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, entry in enumerate(entries or ()):
        p = path.index(i)
        if entry.operation not in ("Apply", "Update"):
            errs.append(f.invalid(p.child("operation"), entry.operation or "", "must be `Apply` or `Update`"))
        if entry.fields_type and entry.fields_type != "FieldsV1":
            errs.append(f.invalid(p.child("fieldsType"), entry.fields_type, "must be `FieldsV1`"))
        errs.extend(validate_field_manager(entry.manager or "", p.child("manager")))
        if _len(entry.subresource or "") > MAX_SUBRESOURCE_NAME_LENGTH:
            errs.append(f.too_long(p.child("subresource"), MAX_SUBRESOURCE_NAME_LENGTH))
    return errs


# --- ObjectMeta -----------------------------------------------------------------------------------------


def validate_object_meta(
    meta: ObjectMeta,
    *,
    requires_namespace: bool,
    name_fn: ValidateNameFunc = name_is_dns_subdomain,
    path: FieldPath | None = None,
) -> list[FieldError]:
    """`ValidateObjectMeta` on create (name generation already done). Cluster-scoped objects must not
    carry a namespace (`metadata.namespace: Forbidden: not allowed on this type`)."""
    p = path if path is not None else FieldPath("metadata")
    errs: list[FieldError] = []
    if meta.generate_name:
        errs.extend(
            f.invalid(p.child("generateName"), meta.generate_name, m)
            for m in name_fn(meta.generate_name, True)
        )
    if not meta.name:
        errs.append(f.required(p.child("name"), "name or generateName is required"))
    else:
        errs.extend(f.invalid(p.child("name"), meta.name, m) for m in name_fn(meta.name, False))
    if requires_namespace:
        if not meta.namespace:
            errs.append(f.required(p.child("namespace")))
        else:
            errs.extend(
                f.invalid(p.child("namespace"), meta.namespace, m)
                for m in name_is_dns_label(meta.namespace, False)
            )
    elif meta.namespace:
        errs.append(f.forbidden(p.child("namespace"), "not allowed on this type"))
    if meta.generation is not None and meta.generation < 0:
        errs.append(f.invalid(p.child("generation"), meta.generation, IS_NEGATIVE_ERROR_MSG))
    errs.extend(validate_labels(meta.labels, p.child("labels")))
    errs.extend(validate_annotations(meta.annotations, p.child("annotations")))
    errs.extend(validate_owner_references(meta.owner_references, p.child("ownerReferences")))
    errs.extend(validate_finalizers(meta.finalizers, p.child("finalizers")))
    errs.extend(validate_managed_fields(meta.managed_fields, p.child("managedFields")))
    return errs


def validate_immutable_field(new: object, old: object, path: FieldPath) -> list[FieldError]:
    if new != old:
        return [f.invalid(path, new, FIELD_IMMUTABLE_ERROR_MSG)]
    return []


def validate_object_meta_update(
    new: ObjectMeta,
    old: ObjectMeta,
    *,
    path: FieldPath | None = None,
    require_resource_version: bool = True,
) -> list[FieldError]:
    """`ValidateObjectMetaUpdate`: name, namespace, uid, creationTimestamp, deletionTimestamp and
    deletionGracePeriodSeconds immutable; resourceVersion set; generation not decremented; no new
    finalizers once the object is being deleted; labels/annotations/owners/managedFields syntax.

    `require_resource_version=False` is for servers that fill in the stored resourceVersion before
    validating an unconditional update (kube's rest.Update does that for types that allow it).
    """
    p = path if path is not None else FieldPath("metadata")
    errs: list[FieldError] = []
    if old.deletion_timestamp is not None:
        extra = sorted(set(new.finalizers or ()) - set(old.finalizers or ()))
        if extra:
            errs.append(
                f.forbidden(
                    p.child("finalizers"),
                    "no new finalizers can be added if the object is being deleted, found new finalizers "
                    + f.format_value(extra),
                )
            )
    if require_resource_version and not new.resource_version:
        errs.append(
            f.invalid(
                p.child("resourceVersion"), new.resource_version or "", "must be specified for an update"
            )
        )
    if (new.generation or 0) < (old.generation or 0):
        errs.append(f.invalid(p.child("generation"), new.generation or 0, "must not be decremented"))
    errs.extend(validate_immutable_field(new.name or "", old.name or "", p.child("name")))
    errs.extend(validate_immutable_field(new.namespace or "", old.namespace or "", p.child("namespace")))
    errs.extend(validate_immutable_field(new.uid or "", old.uid or "", p.child("uid")))
    errs.extend(
        validate_immutable_field(new.creation_timestamp, old.creation_timestamp, p.child("creationTimestamp"))
    )
    errs.extend(
        validate_immutable_field(new.deletion_timestamp, old.deletion_timestamp, p.child("deletionTimestamp"))
    )
    errs.extend(
        validate_immutable_field(
            new.deletion_grace_period_seconds,
            old.deletion_grace_period_seconds,
            p.child("deletionGracePeriodSeconds"),
        )
    )
    errs.extend(validate_labels(new.labels, p.child("labels")))
    errs.extend(validate_annotations(new.annotations, p.child("annotations")))
    errs.extend(validate_owner_references(new.owner_references, p.child("ownerReferences")))
    errs.extend(validate_managed_fields(new.managed_fields, p.child("managedFields")))
    return errs


# --- Conditions (metav1 ValidateConditions) -------------------------------------------------------------

_CONDITION_REASON_FMT: Final = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?"
_CONDITION_REASON_ERR_MSG: Final = (
    "a condition reason must start with alphabetic character, optionally followed by a string of "
    "alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'"
)
_CONDITION_REASON_RE: Final = re.compile("^" + _CONDITION_REASON_FMT + "$")
_MAX_REASON_LEN: Final = 1024
_MAX_MESSAGE_LEN: Final = 32 * 1024


def validate_conditions(conditions: Sequence[Condition] | None, path: FieldPath) -> list[FieldError]:
    """`metav1validation.ValidateConditions`: unique types, qualified-name type, status enum,
    observedGeneration ≥ 0, lastTransitionTime set, CamelCase reason ≤ 1024, message ≤ 32 KiB."""
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, c in enumerate(conditions or ()):
        p = path.index(i)
        if c.type in seen:
            errs.append(f.duplicate(p.child("type"), c.type))
        seen.add(c.type)
        errs.extend(f.invalid(p.child("type"), c.type, m) for m in is_qualified_name(c.type))
        if c.status not in ("False", "True", "Unknown"):
            errs.append(f.not_supported(p.child("status"), c.status, ("False", "True", "Unknown")))
        if c.observed_generation is not None and c.observed_generation < 0:
            errs.append(
                f.invalid(
                    p.child("observedGeneration"),
                    c.observed_generation,
                    "must be greater than or equal to zero",
                )
            )
        if not c.last_transition_time:
            errs.append(f.required(p.child("lastTransitionTime"), "must be set"))
        if not c.reason:
            errs.append(f.required(p.child("reason"), "must be set"))
        else:
            if not _full(_CONDITION_REASON_RE, c.reason):
                errs.append(
                    f.invalid(
                        p.child("reason"),
                        c.reason,
                        regex_error(
                            _CONDITION_REASON_ERR_MSG,
                            _CONDITION_REASON_FMT,
                            "my_name",
                            "MY_NAME",
                            "MyName",
                            "ReasonA,ReasonB",
                            "ReasonA:ReasonB",
                        ),
                    )
                )
            if _len(c.reason) > _MAX_REASON_LEN:
                errs.append(f.too_long(p.child("reason"), _MAX_REASON_LEN))
        if _len(c.message) > _MAX_MESSAGE_LEN:
            errs.append(f.too_long(p.child("message"), _MAX_MESSAGE_LEN))
    return errs
