"""apiserver.registry.managedfields: a create's fieldsV1, built directly, is the general computation's."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from apiserver.registry.managedfields import _all_fields_v1, field_values, to_fields_v1

_keys = st.sampled_from(["a", "b", "B", "a.b", "x/y", "0", "10", "2", ""])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
)
_objects = st.fixed_dictionaries(
    {
        "apiVersion": st.just("arc.opendefense.cloud/v1alpha1"),
        "kind": st.just("Order"),
        "metadata": st.fixed_dictionaries(
            {"name": st.just("o"), "resourceVersion": st.just("7"), "uid": st.just("u")},
            optional={
                "labels": st.dictionaries(_keys, st.text(max_size=3), max_size=3),
                "annotations": _json,
            },
        ),
    },
    optional={"spec": _json, "status": _json, "data": _json},
)


@given(obj=_objects, subresource=st.sampled_from([None, "status"]), reset_status=st.booleans())
def test_create_fields_equal_the_general_computation(
    obj: dict[str, Any], subresource: str | None, reset_status: bool
) -> None:
    direct = _all_fields_v1(obj, subresource=subresource, reset_status=reset_status)
    general = to_fields_v1(set(field_values(obj, subresource=subresource, reset_status=reset_status)))
    assert orjson.dumps(direct) == orjson.dumps(general)  # equal, and in the same key order
