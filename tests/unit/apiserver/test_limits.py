"""apiserver.limits and apiserver.yamldecode: kube's bounds on request documents, without sockets."""

from __future__ import annotations

import jsonpatch
import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver import limits, yamldecode


def nested(depth: int) -> dict[str, object]:
    root: dict[str, object] = {}
    node = root
    for _ in range(depth - 1):
        child: dict[str, object] = {}
        node["a"] = child
        node = child
    return root


# ---- nesting depth --------------------------------------------------------------------------------------


def test_nesting_depth_counts_objects_and_arrays() -> None:
    assert limits.nesting_depth("x") == 0
    assert limits.nesting_depth({}) == 1
    assert limits.nesting_depth({"a": [1, {"b": []}]}) == 4
    assert limits.nesting_depth(nested(5000)) == 5000  # iterative: far beyond Python's recursion limit


def test_too_deep_field_names_the_first_field_past_the_limit() -> None:
    assert limits.too_deep_field({"spec": nested(limits.MAX_OBJECT_DEPTH - 1)}) is None
    err = limits.too_deep_field({"spec": {"list": [nested(limits.MAX_OBJECT_DEPTH)]}})
    assert err is not None
    assert err.field == "spec.list[0]" + ".a" * (limits.MAX_OBJECT_DEPTH - 3)
    assert err.to_cause()["reason"] == "FieldValueInvalid"
    assert f"must not be nested more than {limits.MAX_OBJECT_DEPTH} levels deep" in err.body()


_trees = st.recursive(
    st.integers() | st.text(max_size=2),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text("ab", max_size=2), children, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(tree=_trees, limit=st.integers(1, 6))
def test_too_deep_field_counts_levels_as_nesting_depth_does(tree: object, limit: int) -> None:
    """The level-counting pre-check agrees with ``nesting_depth``, and a field is named exactly when it says
    too deep (no false None, no false error)."""
    too_deep = limits.nesting_depth(tree) > limit
    assert limits._deeper_than(tree, limit) is too_deep
    assert (limits.too_deep_field(tree, limit) is not None) is too_deep


def test_path_segment_problems_are_kubes() -> None:
    assert limits.path_segment_problems("fine-name") == []
    assert limits.path_segment_problems("..") == ["may not be '..'"]
    assert limits.path_segment_problems("a/b%c") == ["may not contain '/'", "may not contain '%'"]


# ---- JSON patch -----------------------------------------------------------------------------------------


def test_json_patch_operation_limit() -> None:
    ops = [{"op": "test", "path": "/a", "value": 1}] * (limits.MAX_JSON_PATCH_OPERATIONS + 1)
    with pytest.raises(limits.PatchTooLargeError, match="is 10000, got 10001"):
        limits.apply_json_patch({"a": 1}, ops)
    assert limits.apply_json_patch({"a": 1}, ops[:-1]) == {"a": 1}


def test_json_patch_copies_are_counted_before_they_are_made() -> None:
    """A doubling chain of copies (2^40 KB if applied) is refused once 3 MiB were copied."""
    ops = [{"op": "add", "path": "/d", "value": ["x" * 1024]}]
    ops += [{"op": "copy", "from": "/d", "path": "/d/-"}] * 40
    with pytest.raises(limits.PatchCopyLimitError, match="exceeding the limit 3145728"):
        limits.apply_json_patch({}, ops)


def test_json_patch_within_limits_applies_and_leaves_the_input_alone() -> None:
    doc = {"a": {"b": [1]}}
    ops = [
        {"op": "copy", "from": "/a", "path": "/c"},
        {"op": "add", "path": "/a/b/-", "value": 2},
        {"op": "remove", "path": "/c/b/0"},
    ]
    assert limits.apply_json_patch(doc, ops) == {"a": {"b": [1, 2]}, "c": {"b": []}}
    assert doc == {"a": {"b": [1]}}


def test_json_patch_value_nested_too_deep_is_an_invalid_patch() -> None:
    ops = [{"op": "add", "path": "/x", "value": nested(limits.MAX_DECODE_DEPTH + 1)}]
    with pytest.raises(jsonpatch.InvalidJsonPatch):
        limits.apply_json_patch({}, ops)


@settings(max_examples=50, deadline=None)
@given(
    doc=st.dictionaries(st.text("abc", min_size=1, max_size=3), st.integers(), max_size=4),
    value=st.integers(),
)
def test_json_patch_matches_jsonpatch_on_ordinary_patches(doc: dict[str, int], value: int) -> None:
    ops = [{"op": "add", "path": "/new", "value": value}]
    ops += [{"op": "copy", "from": f"/{key}", "path": f"/{key}-copy"} for key in doc]
    assert limits.apply_json_patch(doc, ops) == jsonpatch.JsonPatch(ops).apply(doc)


# ---- YAML -----------------------------------------------------------------------------------------------


def alias_bomb(levels: int) -> bytes:
    doc = b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghijklmnopq"[: levels - 1]:
        doc += f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]\n".encode()
        previous = name
    return doc


@pytest.mark.parametrize("levels", [7, 9, 12, 16])
def test_alias_bombs_are_refused_before_expansion(levels: int) -> None:
    with pytest.raises(yamldecode.YAMLLimitError, match="document contains excessive aliasing"):
        yamldecode.load(alias_bomb(levels))


def test_a_few_aliases_are_fine() -> None:
    doc = b"base: &b {x: 1, y: [1, 2]}\nm:\n  <<: *b\n  y: 3\nl: [*b, *b]\n"
    loaded = yamldecode.load(doc)
    assert loaded == {"base": {"x": 1, "y": [1, 2]}, "m": {"y": 3, "x": 1}, "l": [{"x": 1, "y": [1, 2]}] * 2}
    loaded["l"][0]["x"] = 9  # aliases are expanded into copies, as kube's YAML-to-JSON does
    assert loaded["base"]["x"] == 1


def test_alias_ratio_is_go_yamls() -> None:
    assert yamldecode.allowed_alias_ratio(1000) == 0.99
    assert yamldecode.allowed_alias_ratio(4_000_000) == 0.10
    assert 0.10 < yamldecode.allowed_alias_ratio(2_000_000) < 0.99


def test_yaml_depth_limit() -> None:
    ok = b"[" * limits.MAX_DECODE_DEPTH + b"]" * limits.MAX_DECODE_DEPTH
    assert limits.nesting_depth(yamldecode.load(ok)) == limits.MAX_DECODE_DEPTH
    too_deep = b"[" * 100_000 + b"]" * 100_000  # libyaml's composer would recurse this deep
    with pytest.raises(yamldecode.YAMLLimitError, match=f"exceeded max depth of {limits.MAX_DECODE_DEPTH}"):
        yamldecode.load(too_deep)


@pytest.mark.parametrize(
    "doc",
    [
        b"a: 1\nb: [1, 2.5, true, null, ~, yes, '3']\nc: {d: e}\n",
        b"t: 2001-12-14t21:59:43.10-05:00\nd: 2002-12-14\n",
        b"- &a x\n- *a\n- !!str 12\n- !!int '7'\n- 0x1F\n- 1e3\n- .inf\n",
        b"apiVersion: v1\nkind: List\nmetadata: {}\nitems: []\n",
        b"k: |\n  multi\n  line\n",
    ],
)
def test_scalars_match_pyyaml_safe_load_made_json_compatible(doc: bytes) -> None:
    expected = yaml.safe_load(doc)
    got = yamldecode.load(doc)
    assert orjson.dumps(got) == orjson.dumps(_json_compatible(expected))


def _json_compatible(value: object) -> object:
    import datetime

    if isinstance(value, dict):
        return {str(k): _json_compatible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_compatible(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value.tzinfo else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        (b"", ValueError),
        (b"a: 1\n---\nb: 2\n", ValueError),
        (b"a: *nope\n", yaml.YAMLError),
        (b"a: !custom x\n", yaml.YAMLError),
        (b"{[1]: 2}", yamldecode.YAMLLimitError),
        (b"a: [1, 2\n", yaml.YAMLError),
    ],
)
def test_bad_yaml_raises_what_the_handler_maps_to_400(doc: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        yamldecode.load(doc)


async def test_yaml_is_decoded_off_the_event_loop() -> None:
    import threading

    seen: list[str] = []
    original = yamldecode.load

    def spy(raw: bytes, **kwargs: int) -> object:
        seen.append(threading.current_thread().name)
        return original(raw)

    yamldecode.load = spy  # type: ignore[assignment]
    try:
        assert await yamldecode.load_off_loop(b"a: 1\n") == {"a": 1}
    finally:
        yamldecode.load = original  # type: ignore[assignment]
    assert seen and seen[0].startswith("yaml-decode")
