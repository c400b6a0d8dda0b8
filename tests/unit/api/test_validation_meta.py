"""Object-meta validation: kube's exact messages (apimachinery objectmeta.go, util/validation)."""

from __future__ import annotations

import pytest

from api.fields import FieldPath
from api.meta import ObjectMeta, OwnerReference
from api.validation_meta import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    name_is_dns_subdomain,
    validate_object_meta,
    validate_object_meta_update,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def test_dns_subdomain_messages() -> None:
    assert is_dns1123_subdomain("example.com") == []
    assert is_dns1123_subdomain("Example") == [SUBDOMAIN_MSG]
    assert is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert is_dns1123_label("a.b") == ["must not contain dots"]


def test_qualified_name_messages() -> None:
    assert is_qualified_name("arc.opendefense.cloud/order") == []
    assert is_qualified_name("-bad") == [QNAME_MSG]  # the double space is kube's
    assert is_qualified_name("a" * 64) == ["name part must be no more than 63 characters"]
    assert is_qualified_name("/x") == ["prefix part must be non-empty"]
    assert is_qualified_name("Bad_Prefix/x")[0].startswith("prefix part a lowercase RFC 1123 subdomain")
    assert is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert is_valid_label_value("") == []
    assert is_valid_label_value("a" * 64) == ["must be no more than 63 characters"]


def test_generate_name_allows_trailing_dash() -> None:
    assert name_is_dns_subdomain("mirror-", True) == []
    assert name_is_dns_subdomain("mirror-", False) != []
    meta = ObjectMeta(generate_name="mirror-", name="mirror-x7k2p", namespace="ns")
    assert validate_object_meta(meta, requires_namespace=True) == []
    bad = ObjectMeta(generate_name="Mirror-", name="mirror-x7k2p", namespace="ns")
    assert [e.field for e in validate_object_meta(bad, requires_namespace=True)] == ["metadata.generateName"]


def test_missing_name_message() -> None:
    (err,) = validate_object_meta(ObjectMeta(namespace="ns"), requires_namespace=True)
    assert str(err) == "metadata.name: Required value: name or generateName is required"


def test_invalid_name_message() -> None:
    (err,) = validate_object_meta(ObjectMeta(name="Bad", namespace="ns"), requires_namespace=True)
    assert str(err) == f'metadata.name: Invalid value: "Bad": {SUBDOMAIN_MSG}'


def test_namespace_rules() -> None:
    (err,) = validate_object_meta(ObjectMeta(name="x", namespace="ns"), requires_namespace=False)
    assert str(err) == "metadata.namespace: Forbidden: not allowed on this type"
    (err,) = validate_object_meta(ObjectMeta(name="x"), requires_namespace=True)
    assert str(err) == "metadata.namespace: Required value"
    (err,) = validate_object_meta(ObjectMeta(name="x", namespace="a.b"), requires_namespace=True)
    assert str(err) == 'metadata.namespace: Invalid value: "a.b": must not contain dots'


def test_owner_references() -> None:
    refs = [
        OwnerReference(
            api_version="arc.opendefense.cloud/v1alpha1", kind="Order", name="o", uid="1", controller=True
        ),
        OwnerReference(api_version="", kind="Order", name="p", uid="", controller=True),
    ]
    errs = validate_object_meta(
        ObjectMeta(name="x", namespace="n", owner_references=refs), requires_namespace=True
    )
    assert [str(e) for e in errs] == [
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty',
        "metadata.ownerReferences: Invalid value: Only one reference can have Controller set to true. "
        'Found "true" in references for Order/o and Order/p',
    ]


def test_finalizers_conflict() -> None:
    errs = validate_object_meta(
        ObjectMeta(name="x", namespace="n", finalizers=["orphan", "foregroundDeletion"]),
        requires_namespace=True,
    )
    assert [str(e) for e in errs] == [
        'metadata.finalizers: Invalid value: []string{"orphan", "foregroundDeletion"}: finalizer orphan and '
        "foregroundDeletion cannot be both set"
    ]


def test_annotation_size_limit_counts_keys_and_values() -> None:
    ok = {"k": "v" * (256 * 1024 - 1)}
    assert validate_object_meta(ObjectMeta(name="x", annotations=ok), requires_namespace=False) == []
    too_big = {"kk": "v" * (256 * 1024 - 1)}
    (err,) = validate_object_meta(ObjectMeta(name="x", annotations=too_big), requires_namespace=False)
    assert str(err) == "metadata.annotations: Too long: may not be more than 262144 bytes"


def test_managed_fields() -> None:
    meta = ObjectMeta.model_validate(
        {
            "name": "x",
            "managedFields": [{"manager": "kubectl", "operation": "Patch", "fieldsType": "FieldsV2"}],
        }
    )
    errs = validate_object_meta(meta, requires_namespace=False)
    assert [str(e) for e in errs] == [
        'metadata.managedFields[0].operation: Invalid value: "Patch": must be `Apply` or `Update`',
        'metadata.managedFields[0].fieldsType: Invalid value: "FieldsV2": must be `FieldsV1`',
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"creation_timestamp": "2026-11-21T10:00:01Z"}, "metadata.creationTimestamp"),
        ({"deletion_timestamp": "2026-11-21T10:00:01Z"}, "metadata.deletionTimestamp"),
        ({"generation": 1}, "metadata.generation"),
    ],
)
def test_object_meta_update(change: dict[str, object], field: str) -> None:
    old = ObjectMeta(
        name="x", uid="u", resource_version="1", generation=2, creation_timestamp="2026-11-21T10:00:00Z"
    )
    new = old.model_copy(update=change)
    assert [e.field for e in validate_object_meta_update(new, old)] == [field]


def test_no_new_finalizers_when_terminating() -> None:
    old = ObjectMeta(
        name="x", resource_version="1", deletion_timestamp="2026-11-21T10:00:00Z", finalizers=["a/b"]
    )
    new = old.model_copy(update={"finalizers": ["a/b", "c/d"]})
    (err,) = validate_object_meta_update(new, old, path=FieldPath("metadata"))
    assert str(err) == (
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, "
        'found new finalizers []string{"c/d"}'
    )
