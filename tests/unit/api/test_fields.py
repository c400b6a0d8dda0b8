"""FieldError strings match k8s.io/apimachinery/pkg/util/validation/field/errors.go."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api import fields as f
from api.arc.v1alpha1.types import Order
from api.fields import ErrorType, FieldPath


def test_path_rendering() -> None:
    p = FieldPath("spec").child("artifacts").index(1).child("srcRef")
    assert str(p) == "spec.artifacts[1].srcRef"
    assert str(FieldPath("metadata").child("labels").key("app")) == "metadata.labels[app]"
    assert str(FieldPath("spec", "ttl")) == "spec.ttl"
    assert FieldPath("a").child("b") == FieldPath("a", "b")


@pytest.mark.parametrize(
    ("err", "text", "reason"),
    [
        (f.required(FieldPath("spec", "type")), "spec.type: Required value", "FieldValueRequired"),
        (
            f.required("metadata.name", "name or generateName is required"),
            "metadata.name: Required value: name or generateName is required",
            "FieldValueRequired",
        ),
        (
            f.not_supported("spec.usage", "X", ("All", "PullOnly", "PushOnly")),
            'spec.usage: Unsupported value: "X": supported values: "All", "PullOnly", "PushOnly"',
            "FieldValueNotSupported",
        ),
        (
            f.duplicate("spec.parameters[1].name", "a"),
            'spec.parameters[1].name: Duplicate value: "a"',
            "FieldValueDuplicate",
        ),
        (
            f.forbidden("metadata.namespace", "not allowed on this type"),
            "metadata.namespace: Forbidden: not allowed on this type",
            "FieldValueForbidden",
        ),
        (
            f.too_long("metadata.annotations", 262144),
            "metadata.annotations: Too long: may not be more than 262144 bytes",
            "FieldValueTooLong",
        ),
        (f.invalid("x", 5, "bad"), "x: Invalid value: 5: bad", "FieldValueInvalid"),
        (f.invalid("x", False, "bad"), "x: Invalid value: false: bad", "FieldValueInvalid"),
        (f.invalid("x", None, "bad"), "x: Invalid value: null: bad", "FieldValueInvalid"),
        (f.invalid("x", 1e6, "bad"), "x: Invalid value: 1e+06: bad", "FieldValueInvalid"),
        (f.invalid("x", "a\nb", ""), 'x: Invalid value: "a\\nb"', "FieldValueInvalid"),
        (f.invalid("x", ["a", "b"], "d"), 'x: Invalid value: []string{"a", "b"}: d', "FieldValueInvalid"),
        (f.invalid("x", f.OMIT_VALUE, "d"), "x: Invalid value: d", "FieldValueInvalid"),
        (f.too_many("x", 5, 3), "x: Too many: 5: must have at most 3 items", "FieldValueTooMany"),
    ],
)
def test_error_strings(err: f.FieldError, text: str, reason: str) -> None:
    assert str(err) == text
    assert err.type.value == reason
    assert err.to_cause() == {"reason": reason, "message": text.split(": ", 1)[1], "field": err.field}


def test_go_quote_keeps_printable_unicode() -> None:
    assert f.go_quote('ä"\\\t\x01') == '"ä\\"\\\\\\t\\x01"'


def test_aggregate_and_invalid_message() -> None:
    a = f.required("spec.type")
    b = f.required("spec.remoteURL")
    assert f.aggregate_message([a]) == "spec.type: Required value"
    assert f.aggregate_message([a, b, a]) == "[spec.type: Required value, spec.remoteURL: Required value]"
    assert (
        f.invalid_message("Endpoint", "arc.opendefense.cloud", "ep", [a, b])
        == 'Endpoint.arc.opendefense.cloud "ep" is invalid: '
        "[spec.type: Required value, spec.remoteURL: Required value]"
    )
    assert (
        f.invalid_message("Endpoint", "arc.opendefense.cloud", "ep", [])
        == 'Endpoint.arc.opendefense.cloud "ep" is invalid'
    )


def test_from_validation_error_uses_camel_case_paths() -> None:
    with pytest.raises(ValidationError) as exc:
        Order.model_validate(
            {
                "kind": "Endpoint",
                "metadata": {"generation": "x"},
                "spec": {"artifacts": [{"type": "oci"}, {"type": 5, "srcRef": "nope"}]},
            }
        )
    errs = f.from_validation_error(exc.value)
    by_field = {e.field: e for e in errs}
    assert by_field["kind"].type is ErrorType.NOT_SUPPORTED
    assert str(by_field["kind"]) == 'kind: Unsupported value: "Endpoint": supported values: "Order"'
    assert by_field["metadata.generation"].type is ErrorType.INVALID
    assert by_field["spec.artifacts[1].type"].type is ErrorType.INVALID
    assert by_field["spec.artifacts[1].srcRef"].type is ErrorType.INVALID


def test_from_validation_error_required() -> None:
    from api.meta import WatchEvent

    with pytest.raises(ValidationError) as exc:
        WatchEvent.model_validate({})
    assert [str(e) for e in f.from_validation_error(exc.value)] == ["type: Required value"]
