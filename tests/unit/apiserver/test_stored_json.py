"""``store.stored_json``: a stored object's wire JSON without decoding it equals decoding it."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.registry.store import decode_stored, encode_for_storage, stored_json
from apiserver.storage.interface import Revision, StoredValue

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
# Keys and strings that look like the layout the splice relies on.
tricky = st.sampled_from(['"metadata":{', "{", "}", '\\"metadata\\":{', "metadata", ""])


@settings(max_examples=200, deadline=None)
@given(
    meta=st.dictionaries(st.text(max_size=8) | tricky, json_values, max_size=3),
    spec=st.dictionaries(st.text(max_size=8) | tricky, json_values | tricky, max_size=3),
    kind=st.sampled_from(["Order", 'we{ird"kind']),
    revision=st.integers(1, 2**40),
)
def test_stored_json_equals_decoding(
    meta: dict[str, Any], spec: dict[str, Any], kind: str, revision: int
) -> None:
    obj = {
        "apiVersion": "arc.opendefense.cloud/v1alpha1",
        "kind": kind,
        "metadata": meta,
        "spec": {"metadata": spec},
    }
    value = StoredValue("/k", encode_for_storage(obj), Revision(1), Revision(revision))
    assert orjson.loads(stored_json(value)) == decode_stored(value)


def test_other_layouts_fall_back_to_decoding() -> None:
    for obj in ({"spec": {"metadata": {"x": 1}}, "metadata": {"name": "a"}}, {"metadata": {}}, {}):
        value = StoredValue("/k", orjson.dumps(obj), Revision(1), Revision(7))
        assert orjson.loads(stored_json(value)) == decode_stored(value)
