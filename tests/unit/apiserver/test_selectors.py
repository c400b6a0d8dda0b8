"""Label and field selectors against kube's own test tables (labels/selector_test.go,
fields/selector_test.go, apis/meta/v1/helpers_test.go).

The expected error messages were produced by running k8s.io/apimachinery v0.33.13 itself on the same
inputs, so they are kube's messages byte for byte.
"""

from __future__ import annotations

import string
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver.selectors import (
    EVERYTHING,
    NOTHING,
    FieldRequirement,
    FieldSelector,
    LabelSelector,
    Operator,
    Requirement,
    SelectorParseError,
    UnsupportedFieldSelectorError,
    crd_field_labels,
    default_field_label_conversion,
    escape_field_value,
    label_selector_from_dict,
    label_selector_from_set,
    new_requirement,
    parse_field_selector,
    parse_label_selector,
    unescape_field_value,
)

LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
QUALIFIED_NAME_MSG = (
    "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. "
    "'example.com/MyName')"
)
PREFIX_MSG = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
GT_LT_INT = "for 'Gt', 'Lt' operators, the value must be an integer"
REQ = "unable to parse requirement: "
BINARY_OPS = "in, notin, =, ==, !=, gt, lt"


def R(key: str, op: Operator, *values: str) -> Requirement:
    return new_requirement(key, op, values)


# --- labels.Parse: valid input ----------------------------------------------------------------------------

# (input, canonical String()) — TestSelectorParse, TestSetSelectorParser and more.
GOOD_LABEL_SELECTORS = [
    ("x=a,y=b,z=c", "x=a,y=b,z=c"),
    ("", ""),
    ("x!=a,y=b", "x!=a,y=b"),
    ("x=", "x="),
    ("x= ", "x="),
    ("x=,z= ", "x=,z="),
    ("x= ,z= ", "x=,z="),
    ("!x", "!x"),
    ("x>1", "x>1"),
    ("x>1,z<5", "x>1,z<5"),
    ("\rx", "x"),
    ("this-is-a-dns.domain.com/key-with-dash", "this-is-a-dns.domain.com/key-with-dash"),
    (
        "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        "this-is-another-dns.domain.com/key-with-dash in (so,what)",
    ),
    (
        "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
        "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
    ),
    ("foo  in\t (abc)", "foo in (abc)"),
    ("x notin\n (abc)", "x notin (abc)"),
    ("x  notin\t\t\t(abc,def)", "x notin (abc,def)"),
    ("x in (abc,def)", "x in (abc,def)"),
    ("x in (abc,)", "x in (,abc)"),
    ("x in ()", "x in ()"),
    ("x notin (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()"),
    ("x,y in (a)", "x,y in (a)"),
    ("x=a", "x=a"),
    ("x<7", "x<7"),
    ("x=a,y!=b,z in (h,i,j)", "x=a,y!=b,z in (h,i,j)"),
    ("x notin ( )", "x notin ()"),
    ("x notin (, a)", "x notin (,a)"),
    ("a ", "a"),
    ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
    ("x=a,a=x", "a=x,x=a"),
    ("a=x,x=a", "a=x,x=a"),
    ("notin=in", "notin=in"),
    ("in in (in)", "in in (in)"),
    ("x==a", "x==a"),
    ("x in (b,a,b)", "x in (a,b)"),
    ("x=a,x!=b", "x=a,x!=b"),
    ("x!=", "x!="),
    ("k8s.io/app==web , tier notin (db,cache)", "k8s.io/app==web,tier notin (cache,db)"),
    # Go's lexer reads NUL as the end of the input where a token would start ...
    ("x= \x00,y", "x="),
    # ... and consumes a NUL that ends an identifier or symbol.
    ("x=a\x00,y", "x=a,y"),
    ("x=\x00", "x="),
]


@pytest.mark.parametrize(("text", "canonical"), GOOD_LABEL_SELECTORS)
def test_parse_label_selector_valid(text: str, canonical: str) -> None:
    sel = parse_label_selector(text)
    assert str(sel) == canonical
    assert parse_label_selector(canonical) == sel


# TestSetSelectorParser: the parsed requirements, sorted by key.
PARSED_LABEL_REQUIREMENTS = [
    ("", ()),
    ("\rx", (R("x", Operator.EXISTS),)),
    ("x in (abc,)", (R("x", Operator.IN, "", "abc"),)),
    ("x in ()", (R("x", Operator.IN, ""),)),
    (
        "x notin (abc,,def),bar,z in (),w",
        (
            R("bar", Operator.EXISTS),
            R("w", Operator.EXISTS),
            R("x", Operator.NOT_IN, "", "abc", "def"),
            R("z", Operator.IN, ""),
        ),
    ),
    ("x=a,y!=b", (R("x", Operator.EQUALS, "a"), R("y", Operator.NOT_EQUALS, "b"))),
    ("x==a", (R("x", Operator.DOUBLE_EQUALS, "a"),)),
    ("x>1", (R("x", Operator.GREATER_THAN, "1"),)),
    ("x<7", (R("x", Operator.LESS_THAN, "7"),)),
    ("!x", (R("x", Operator.DOES_NOT_EXIST),)),
    ("x notin (, a)", (R("x", Operator.NOT_IN, "", "a"),)),
    ("a in (x,y,notin, z,in)", (R("a", Operator.IN, "in", "notin", "x", "y", "z"),)),
    ("x=", (R("x", Operator.EQUALS, ""),)),
]


@pytest.mark.parametrize(("text", "requirements"), PARSED_LABEL_REQUIREMENTS)
def test_parse_label_selector_requirements(text: str, requirements: tuple[Requirement, ...]) -> None:
    assert parse_label_selector(text).requirements == requirements


def test_parse_is_deterministic() -> None:
    assert str(parse_label_selector("x=a,a=x")) == str(parse_label_selector("a=x,x=a"))


def test_empty_selector_matches_everything() -> None:
    sel = parse_label_selector("")
    assert sel == EVERYTHING
    assert sel.is_empty
    assert sel.matches({"x": "y"})
    assert sel.matches({})
    assert sel.matches(None)


# --- labels.Parse: invalid input --------------------------------------------------------------------------

BAD_LABEL_SELECTORS = [
    ("x=a||y=b", REQ + 'values[0][x]: Invalid value: "a||y": ' + LABEL_VALUE_MSG),
    ("x==a==b", "found '==', expected: ',' or 'end of string'"),
    ("!x=a", "found '=', expected: ',' or 'end of string'"),
    ("x<a", REQ + 'values[0]: Invalid value: "a": ' + GT_LT_INT),
    ("x,,y", "found ',', expected: identifier after ','"),
    (",x,y", "found ',', expected: !, identifier, or 'end of string'"),
    ("x nott in (y)", REQ + "found 'nott', expected: " + BINARY_OPS),
    ("a in (xyz),", "found '', expected: identifier after ','"),
    ("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'"),
    ("a in (xyz abc)", REQ + "found 'abc', expected: ',' or ')'"),
    ("a notin(", REQ + "found '', expected: ',', ')' or identifier"),
    ("a (", REQ + "found '(', expected: " + BINARY_OPS),
    ("(", "found '(', expected: !, identifier, or 'end of string'"),
    (")", "found ')', expected: !, identifier, or 'end of string'"),
    ("!", REQ + "found '', expected: identifier"),
    ("!!x", REQ + "found '!', expected: identifier"),
    ("x=(", REQ + "found '(', expected: identifier"),
    ("x<>1", REQ + "found '>', expected: identifier"),
    ("x in a", REQ + "found 'a' expected: '('"),
    ("x in (a", REQ + "found '', expected: ',' or ')'"),
    ("x in (a,", REQ + "found '', expected: ',', or identifier"),
    ("x in (a,,)", REQ + "found ')', expected: ',', or identifier"),
    ("x in (a b)", REQ + "found 'b', expected: ',' or ')'"),
    ("x in (a!b)", REQ + "found '!', expected: ',' or ')'"),
    ("x=a,", "found '', expected: identifier after ','"),
    ("x=a)", "found ')', expected: ',' or 'end of string'"),
    ("x==,", "found '', expected: identifier after ','"),
    ("x=a b", "found 'b', expected: ',' or 'end of string'"),
    ("x=a\x00garbage", "found 'garbage', expected: ',' or 'end of string'"),
    ("a/b/c", REQ + '<nil>: Invalid value: "a/b/c": ' + QUALIFIED_NAME_MSG),
    ("A" * 64, REQ + f'<nil>: Invalid value: "{"A" * 64}": name part must be no more than 63 characters'),
    ("/x", REQ + '<nil>: Invalid value: "/x": prefix part must be non-empty'),
    ("x/", REQ + '<nil>: Invalid value: "x/": name part must be non-empty; ' + NAME_PART_MSG),
    ("UPPER.example.com/x", REQ + '<nil>: Invalid value: "UPPER.example.com/x": ' + PREFIX_MSG),
    ("é", REQ + '<nil>: Invalid value: "é": ' + NAME_PART_MSG),
    ("x=" + "v" * 64, REQ + f'values[0][x]: Invalid value: "{"v" * 64}": must be no more than 63 characters'),
    ("x=é", REQ + 'values[0][x]: Invalid value: "é": ' + LABEL_VALUE_MSG),
    ("x>-5", REQ + 'values[0][x]: Invalid value: "-5": ' + LABEL_VALUE_MSG),
    ("x>99999999999999999999", REQ + 'values[0]: Invalid value: "99999999999999999999": ' + GT_LT_INT),
    ("x>1.5", REQ + 'values[0]: Invalid value: "1.5": ' + GT_LT_INT),
    ("x>", REQ + 'values[0]: Invalid value: "": ' + GT_LT_INT),
]


@pytest.mark.parametrize(("text", "message"), BAD_LABEL_SELECTORS)
def test_parse_label_selector_invalid(text: str, message: str) -> None:
    with pytest.raises(SelectorParseError) as exc:
        parse_label_selector(text)
    assert exc.value.message == message
    assert str(exc.value) == message


# --- matching ---------------------------------------------------------------------------------------------

LABELSET = {"foo": "bar", "baz": "blah"}

# TestSelectorMatches and TestRequirementSelectorMatching.
LABEL_MATCHES: list[tuple[str, dict[str, str] | None, bool]] = [
    ("", {"x": "y"}, True),
    ("x=y", {"x": "y"}, True),
    ("x=y,z=w", {"x": "y", "z": "w"}, True),
    ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
    ("notin=in", {"notin": "in"}, True),
    ("x", {"x": "z"}, True),
    ("!x", {"y": "z"}, True),
    ("x>1", {"x": "2"}, True),
    ("x<1", {"x": "0"}, True),
    ("x=z", {}, False),
    ("x=z", None, False),
    ("x!=z", None, True),
    ("x=y", {"x": "z"}, False),
    ("x=y,z=w", {"x": "w", "z": "w"}, False),
    ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
    ("x", {"y": "z"}, False),
    ("!x", {"x": "z"}, False),
    ("x>1", {"x": "0"}, False),
    ("x<1", {"x": "2"}, False),
    ("foo=bar", LABELSET, True),
    ("baz=blah", LABELSET, True),
    ("foo=bar,baz=blah", LABELSET, True),
    ("foo=blah", LABELSET, False),
    ("baz=bar", LABELSET, False),
    ("foo=bar,foobar=bar,baz=blah", LABELSET, False),
    ("x in (foo),y notin (alpha)", {"x": "foo", "y": "baz"}, True),
    ("x in (foo),y in (alpha)", {"x": "foo", "y": "baz"}, False),
    ("x notin (),y", {"y": ""}, True),
    ("!x,y", {"y": ""}, True),
    ("x notin (),!y", {"y": ""}, False),
    ("x in ()", {"y": "baz"}, False),
    ("x in ()", {"x": ""}, True),
    ("x=", {"x": ""}, True),
    ("x=", {}, False),
    ("z>1", {"z": "2"}, True),
    ("z>1", {"z": "v2"}, False),
    ("z>1", {"z": "+2"}, True),
    ("z<1", {"z": "-9223372036854775808"}, True),
    ("z<1", {"z": "-9223372036854775809"}, False),
    ("z>1", {"z": " 2"}, False),
    ("z>1", {"z": "1_0"}, False),
    ("z>1", {"z": "٣"}, False),
    ("z>1", {}, False),
    ("x in (a,b)", {"x": "b"}, True),
    ("x notin (a,b)", {"x": "c"}, True),
    ("x notin (a,b)", {"x": "a"}, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), LABEL_MATCHES)
def test_label_selector_matches(text: str, labels: dict[str, str] | None, expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_requirement_matches_unvalidated_gt_lt() -> None:
    # Requirements built without validation behave as Go's do: no match rather than an error.
    assert not Requirement("x", Operator.GREATER_THAN, ("a",)).matches({"x": "2"})
    assert not Requirement("x", Operator.GREATER_THAN, ("1", "2")).matches({"x": "3"})
    assert not LabelSelector((Requirement("x", Operator.IN, ()),)).matches({"x": "a"})


# --- RequiresExactMatch -----------------------------------------------------------------------------------

EXACT_MATCHES = [
    ("key in (value)", "key", "value"),
    ("key in (value,value2)", "key", None),
    ("key in (value,value1),key2 in (value2)", "key2", "value2"),
    ("key=value", "key", "value"),
    ("key==value", "key", "value"),
    ("key!=value", "key", None),
    ("key in (value),key2 in (value2)", "key", "value"),
    ("key=", "key", ""),
    ("key", "key", None),
    ("other=x", "key", None),
    # only the first requirement on the key counts
    ("key!=a,key=b", "key", None),
]


@pytest.mark.parametrize(("text", "key", "value"), EXACT_MATCHES)
def test_label_selector_requires_exact_match(text: str, key: str, value: str | None) -> None:
    assert parse_label_selector(text).requires_exact_match(key) == value


# --- Requirement / NewRequirement -------------------------------------------------------------------------

REQUIREMENT_ERRORS: list[tuple[str, str, list[str] | None, str | None]] = [
    (
        "x1",
        "in",
        [],
        "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
    ),
    (
        "x2",
        "notin",
        None,
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
    ),
    ("x3", "in", ["foo"], None),
    ("x4", "notin", ["foo"], None),
    (
        "x5",
        "=",
        ["bar", "foo"],
        'values: Invalid value: []string{"bar", "foo"}: exact-match compatibility requires one single value',
    ),
    ("x6", "exists", [], None),
    ("x7", "!", [], None),
    (
        "x8",
        "exists",
        ["foo"],
        'values: Invalid value: []string{"foo"}: values set must be empty for exists and does not exist',
    ),
    ("x11", "gt", ["1"], None),
    ("x12", "lt", ["6"], None),
    (
        "x13",
        "gt",
        [],
        "values: Invalid value: []string{}: for 'Gt', 'Lt' operators, exactly one value is required",
    ),
    ("x14", "gt", ["bar"], 'values[0]: Invalid value: "bar": ' + GT_LT_INT),
    ("x15", "lt", ["bar"], 'values[0]: Invalid value: "bar": ' + GT_LT_INT),
    (
        "a" * 254,
        "exists",
        [],
        f'key: Invalid value: "{"a" * 254}": name part must be no more than 63 characters',
    ),
    (
        "x16",
        "=",
        ["a" * 254],
        f'values[0][x16]: Invalid value: "{"a" * 254}": must be no more than 63 characters',
    ),
    ("x17", "=", ["a b"], 'values[0][x17]: Invalid value: "a b": ' + LABEL_VALUE_MSG),
    (
        "x18",
        "unsupportedOp",
        [],
        'operator: Unsupported value: "unsupportedOp": supported values: "in", "notin", "=", "==", "!=", '
        '"gt", "lt", "exists", "!"',
    ),
    # several errors aggregate as Go's utilerrors.Aggregate does
    (
        "x/",
        "in",
        ["a b", "c d"],
        '[key: Invalid value: "x/": name part must be non-empty; '
        + NAME_PART_MSG
        + ', values[0][x/]: Invalid value: "a b": '
        + LABEL_VALUE_MSG
        + ', values[1][x/]: Invalid value: "c d": '
        + LABEL_VALUE_MSG
        + "]",
    ),
]


@pytest.mark.parametrize(("key", "op", "values", "message"), REQUIREMENT_ERRORS)
def test_new_requirement(key: str, op: str, values: list[str] | None, message: str | None) -> None:
    if message is None:
        req = new_requirement(key, op, values)
        assert req == Requirement(key, Operator(op), tuple(values or ()))
        return
    with pytest.raises(SelectorParseError) as exc:
        new_requirement(key, op, values)
    assert exc.value.message == message


# TestToString
TO_STRING = [
    (
        (R("x", Operator.IN, "abc", "def"), R("y", Operator.NOT_IN, "jkl"), R("z", Operator.EXISTS)),
        "x in (abc,def),y notin (jkl),z",
    ),
    (
        (
            R("x", Operator.NOT_IN, "abc", "def"),
            R("y", Operator.NOT_EQUALS, "jkl"),
            R("z", Operator.DOES_NOT_EXIST),
        ),
        "x notin (abc,def),y!=jkl,!z",
    ),
    (
        (R("x", Operator.NOT_IN, "abc"), R("y", Operator.IN, "jkl", "mno"), R("z", Operator.NOT_IN, "")),
        "x notin (abc),y in (jkl,mno),z notin ()",
    ),
    (
        (
            R("x", Operator.EQUALS, "abc"),
            R("y", Operator.DOUBLE_EQUALS, "jkl"),
            R("z", Operator.NOT_EQUALS, "a"),
            R("z", Operator.EXISTS),
        ),
        "x=abc,y==jkl,z!=a,z",
    ),
    (
        (R("x", Operator.GREATER_THAN, "2"), R("y", Operator.LESS_THAN, "8"), R("z", Operator.EXISTS)),
        "x>2,y<8,z",
    ),
    # values print sorted without changing the requirement
    ((R("x", Operator.IN, "b", "a"),), "x in (a,b)"),
]


@pytest.mark.parametrize(("requirements", "expected"), TO_STRING)
def test_label_selector_str(requirements: tuple[Requirement, ...], expected: str) -> None:
    sel = LabelSelector(requirements)
    assert str(sel) == expected


def test_add_sorts_by_key() -> None:
    sel = EVERYTHING.add(R("key", Operator.IN, "value"))
    assert sel == LabelSelector((R("key", Operator.IN, "value"),))
    sel = sel.add(R("a", Operator.EQUALS, "b"))
    assert [r.key for r in sel.requirements] == ["a", "key"]
    assert NOTHING.add(R("a", Operator.EXISTS)) is NOTHING


# --- metav1.LabelSelector (LabelSelectorAsSelector) -------------------------------------------------------

DICT_SELECTORS: list[tuple[dict[str, Any] | None, str, dict[str, str], bool]] = [
    (None, "", {"a": "b"}, False),
    ({}, "", {"a": "b"}, True),
    ({"matchLabels": {}, "matchExpressions": []}, "", {}, True),
    ({"matchLabels": {"foo": "bar", "baz": "blah"}}, "baz=blah,foo=bar", {"foo": "bar", "baz": "blah"}, True),
    ({"matchLabels": {"foo": "bar"}}, "foo=bar", {"foo": "baz"}, False),
    (
        {
            "matchLabels": {"foo": "bar"},
            "matchExpressions": [
                {"key": "baz", "operator": "In", "values": ["qux", "norf"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        },
        "baz in (norf,qux),env notin (prod),foo=bar,!legacy,team",
        {"foo": "bar", "baz": "qux", "team": "x"},
        True,
    ),
    (
        {"matchExpressions": [{"key": "baz", "operator": "In", "values": ["qux"]}]},
        "baz in (qux)",
        {"baz": "norf"},
        False,
    ),
    (
        {"matchExpressions": [{"key": "team", "operator": "Exists", "values": []}]},
        "team",
        {},
        False,
    ),
]


@pytest.mark.parametrize(("selector", "canonical", "labels", "matches"), DICT_SELECTORS)
def test_label_selector_from_dict(
    selector: dict[str, Any] | None, canonical: str, labels: dict[str, str], matches: bool
) -> None:
    sel = label_selector_from_dict(selector)
    assert str(sel) == canonical
    assert sel.matches(labels) is matches


def test_label_selector_from_dict_nil_and_empty() -> None:
    assert label_selector_from_dict(None) is NOTHING
    assert not NOTHING.is_empty
    assert not NOTHING.matches({})
    assert NOTHING.requires_exact_match("a") is None
    assert label_selector_from_dict({}) == EVERYTHING


DICT_ERRORS: list[tuple[dict[str, Any], str]] = [
    (
        {"matchExpressions": [{"key": "foo", "operator": "Gt", "values": ["1"]}]},
        '"Gt" is not a valid label selector operator',
    ),
    (
        {"matchExpressions": [{"key": "foo", "operator": "in", "values": ["1"]}]},
        '"in" is not a valid label selector operator',
    ),
    ({"matchExpressions": [{"key": "foo"}]}, '"" is not a valid label selector operator'),
    (
        {"matchExpressions": [{"key": "foo", "operator": "In"}]},
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
    ),
    (
        {"matchExpressions": [{"key": "foo", "operator": "NotIn", "values": []}]},
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
    ),
    (
        {"matchExpressions": [{"key": "foo", "operator": "Exists", "values": ["a"]}]},
        'values: Invalid value: []string{"a"}: values set must be empty for exists and does not exist',
    ),
    (
        {"matchLabels": {"a/b/c": "x"}},
        'key: Invalid value: "a/b/c": ' + QUALIFIED_NAME_MSG,
    ),
    ({"matchLabels": {"a": "b c"}}, 'values[0][a]: Invalid value: "b c": ' + LABEL_VALUE_MSG),
    (
        {"matchExpressions": [{"key": "", "operator": "Exists"}]},
        'key: Invalid value: "": name part must be non-empty; ' + NAME_PART_MSG,
    ),
]


@pytest.mark.parametrize(("selector", "message"), DICT_ERRORS)
def test_label_selector_from_dict_invalid(selector: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorParseError) as exc:
        label_selector_from_dict(selector)
    assert exc.value.message == message


def test_label_selector_from_set() -> None:
    assert label_selector_from_set(None) == EVERYTHING
    assert label_selector_from_set({}) == EVERYTHING
    sel = label_selector_from_set({"app": "foo", "a": "b"})
    assert str(sel) == "a=b,app=foo"
    assert sel.matches({"app": "foo", "a": "b", "extra": "label"})
    assert not sel.matches({"app": "foo"})
    # unvalidated by default (SelectorFromSet), validated on request (ValidatedSelectorFromSet)
    too_long = "axahm2EJ8Phiephe2eixohbee9eGeiyees1thuozi1xoh0GiuH3diewi8iem7Nui"
    assert label_selector_from_set({"Key": too_long}).matches({"Key": too_long})
    with pytest.raises(SelectorParseError) as exc:
        label_selector_from_set({"Key": too_long}, validate=True)
    assert (
        exc.value.message
        == f'values[0][Key]: Invalid value: "{too_long}": must be no more than 63 characters'
    )


# --- fields.ParseSelector ---------------------------------------------------------------------------------

# (input, canonical String(), requirements as (field, operator, value))
GOOD_FIELD_SELECTORS: list[tuple[str, str, list[tuple[str, str, str]]]] = [
    ("x=a,y=b,z=c", "x=a,y=b,z=c", [("x", "=", "a"), ("y", "=", "b"), ("z", "=", "c")]),
    ("", "", []),
    ("x!=a,y=b", "x!=a,y=b", [("x", "!=", "a"), ("y", "=", "b")]),
    ("x=a||y\\=b", "x=a||y\\=b", [("x", "=", "a||y=b")]),
    ("x=a\\=\\=b", "x=a\\=\\=b", [("x", "=", "a==b")]),
    ("x=a,a=x", "a=x,x=a", [("a", "=", "x"), ("x", "=", "a")]),
    ("a=x,x=a", "a=x,x=a", [("a", "=", "x"), ("x", "=", "a")]),
    ("k=\\,,k2=v2", "k2=v2,k=\\,", [("k2", "=", "v2"), ("k", "=", ",")]),
    ("k=\\\\,k2=v2", "k2=v2,k=\\\\", [("k2", "=", "v2"), ("k", "=", "\\")]),
    ("k=\\\\\\,,k2=v2", "k2=v2,k=\\\\\\,", [("k2", "=", "v2"), ("k", "=", "\\,")]),
    ("함=수,목=록", "목=록,함=수", [("목", "=", "록"), ("함", "=", "수")]),
    ("=", "", []),
    (",,", "", []),
    ("=,a=b", "a=b", [("a", "=", "b")]),
    ("a=b,", "a=b", [("a", "=", "b")]),
    (",a=b", "a=b", [("a", "=", "b")]),
    ("=x", "=x", [("", "=", "x")]),
    ("metadata.name=foo", "metadata.name=foo", [("metadata.name", "=", "foo")]),
    ("metadata.name==foo", "metadata.name=foo", [("metadata.name", "=", "foo")]),
    ("metadata.name!=foo", "metadata.name!=foo", [("metadata.name", "!=", "foo")]),
    (
        "metadata.namespace=ns,metadata.name=n",
        "metadata.name=n,metadata.namespace=ns",
        [("metadata.name", "=", "n"), ("metadata.namespace", "=", "ns")],
    ),
    ("a=!b", "a=!b", [("a", "=", "!b")]),
    ("a!b=c", "a!b=c", [("a!b", "=", "c")]),
    ("a=b\\,c,d=e", "a=b\\,c,d=e", [("a", "=", "b,c"), ("d", "=", "e")]),
    ("\\,=x", "\\,=x", [("\\,", "=", "x")]),
    ("a= b ", "a= b ", [("a", "=", " b ")]),
    (" a=b", " a=b", [(" a", "=", "b")]),
    (
        "foo=bar,foobar=bar,baz=blah",
        "baz=blah,foo=bar,foobar=bar",
        [("baz", "=", "blah"), ("foo", "=", "bar"), ("foobar", "=", "bar")],
    ),
]


@pytest.mark.parametrize(("text", "canonical", "requirements"), GOOD_FIELD_SELECTORS)
def test_parse_field_selector_valid(
    text: str, canonical: str, requirements: list[tuple[str, str, str]]
) -> None:
    sel = parse_field_selector(text)
    assert str(sel) == canonical
    assert [(r.field, r.operator.value, r.value) for r in sel.requirements] == requirements
    assert sel.is_empty is (not requirements)
    assert parse_field_selector(canonical) == sel


BAD_FIELD_SELECTORS = [
    ("x=a||y=b", "invalid field selector: unescaped character in value: 61"),
    ("x==a==b", "invalid field selector: unescaped character in value: 61"),
    ("a!==b", "invalid field selector: unescaped character in value: 61"),
    ("x=a,b", "invalid selector: 'x=a,b'; can't understand 'b'"),
    ("x in (a)", "invalid selector: 'x in (a)'; can't understand 'x in (a)'"),
    ("x in (a,b,c)", "invalid selector: 'x in (a,b,c)'; can't understand 'b'"),
    ("x", "invalid selector: 'x'; can't understand 'x'"),
    ("k=\\a\\b\\", "invalid field selector: invalid escape sequence: \\a"),
    ("k=\\", "invalid field selector: invalid escape sequence: \\"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FIELD_SELECTORS)
def test_parse_field_selector_invalid(text: str, message: str) -> None:
    with pytest.raises(SelectorParseError) as exc:
        parse_field_selector(text)
    assert exc.value.message == message


# TestSplitTerm/TestSplitTerms are internal; their cases show through parsing and escaping here.
ESCAPES = [
    ("", ""),
    ("a", "a"),
    ("=", "\\="),
    (",", "\\,"),
    ("\\", "\\\\"),
    ("\\=\\,\\", "\\\\\\=\\\\\\,\\\\"),
]


@pytest.mark.parametrize(("raw", "escaped"), ESCAPES)
def test_escape_and_unescape_field_value(raw: str, escaped: str) -> None:
    assert escape_field_value(raw) == escaped
    assert unescape_field_value(escaped) == raw


@pytest.mark.parametrize("value", ["\\", "\\\\\\", "\\a"])
def test_unescape_field_value_invalid_escape(value: str) -> None:
    with pytest.raises(SelectorParseError, match="invalid field selector: invalid escape sequence"):
        unescape_field_value(value)


@pytest.mark.parametrize(("value", "code"), [("a,b", 44), ("a=b", 61)])
def test_unescape_field_value_unescaped_rune(value: str, code: int) -> None:
    with pytest.raises(SelectorParseError) as exc:
        unescape_field_value(value)
    assert exc.value.message == f"invalid field selector: unescaped character in value: {code}"


FIELDSET = {"foo": "bar", "baz": "blah", "complex": "=value\\,\\"}

FIELD_MATCHES = [
    ("", {"x": "y"}, True),
    ("x=y", {"x": "y"}, True),
    ("x=y,z=w", {"x": "y", "z": "w"}, True),
    ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
    ("notin=in", {"notin": "in"}, True),
    ("x=y", {"x": "z"}, False),
    ("x=y,z=w", {"x": "w", "z": "w"}, False),
    ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
    ("foo=bar", FIELDSET, True),
    ("baz=blah", FIELDSET, True),
    ("foo=bar,baz=blah", FIELDSET, True),
    ("foo=bar,baz=blah,complex=\\=value\\\\\\,\\\\", FIELDSET, True),
    ("foo=blah", FIELDSET, False),
    ("baz=bar", FIELDSET, False),
    ("foo=bar,foobar=bar,baz=blah", FIELDSET, False),
    # an absent field reads as ""
    ("x=", {}, True),
    ("x!=", {}, False),
    ("x!=a", {}, True),
]


@pytest.mark.parametrize(("text", "fields", "expected"), FIELD_MATCHES)
def test_field_selector_matches(text: str, fields: dict[str, str], expected: bool) -> None:
    assert parse_field_selector(text).matches(fields) is expected


FIELD_EXACT = [
    ("", "test", None),
    ("a=b", "test", None),
    ("test=b", "test", "b"),
    ("test=", "test", ""),
    ("test!=b", "test", None),
    ("test!=", "test", None),
    ("test!=a,test=b", "test", "b"),  # unlike labels, a != term does not stop the search
    ("metadata.name=foo,metadata.name=bar", "metadata.name", "bar"),  # first in kube's (sorted) order
    ("metadata.name==foo", "metadata.name", "foo"),
]


@pytest.mark.parametrize(("text", "field", "value"), FIELD_EXACT)
def test_field_selector_exact_value(text: str, field: str, value: str | None) -> None:
    assert parse_field_selector(text).exact_value(field) == value


def test_field_selector_requirements_are_typed() -> None:
    sel = parse_field_selector("metadata.name!=a,status.phase==Failed")
    assert sel.requirements == (
        FieldRequirement("metadata.name", Operator.NOT_EQUALS, "a"),
        FieldRequirement("status.phase", Operator.EQUALS, "Failed"),
    )


# TestTransform
def _rename_a(field: str, value: str) -> tuple[str, str]:
    return ("e", "f") if field == "a" else (field, value)


def _drop_c(field: str, value: str) -> tuple[str, str]:
    return ("", "") if field == "c" else (field, value)


TRANSFORMS = [
    ("", lambda f, v: (f, v), "", True),
    ("a=b,c=d", lambda f, v: (f, v), "a=b,c=d", False),
    ("a=b,c=d", _rename_a, "e=f,c=d", False),
    ("a=b", lambda f, v: ("", ""), "", True),
    ("a=b,c=d,e=f", _drop_c, "a=b,e=f", False),
]


@pytest.mark.parametrize(("text", "fn", "result", "empty"), TRANSFORMS)
def test_field_selector_transform(text: str, fn: Any, result: str, empty: bool) -> None:
    out = parse_field_selector(text).transform(fn)
    assert str(out) == result
    assert out.is_empty is empty


# --- supported fields (ConvertFieldLabel) -----------------------------------------------------------------

DEFAULT_UNSUPPORTED = [
    ("spec.foo=bar", '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    (
        "status.phase!=Failed,metadata.name=x",
        '"status.phase" is not a known field selector: only "metadata.name", "metadata.namespace"',
    ),
    ("x=a,a=x", '"a" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("=x", '"" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("\\,=x", '"\\\\," is not a known field selector: only "metadata.name", "metadata.namespace"'),
]


@pytest.mark.parametrize(("text", "message"), DEFAULT_UNSUPPORTED)
def test_check_fields_default(text: str, message: str) -> None:
    with pytest.raises(UnsupportedFieldSelectorError) as exc:
        parse_field_selector(text).check_fields()
    assert exc.value.message == message
    assert isinstance(exc.value, SelectorParseError)


@pytest.mark.parametrize("text", ["", "=", "metadata.name=a", "metadata.namespace!=b,metadata.name==c"])
def test_check_fields_default_accepts_metadata(text: str) -> None:
    parse_field_selector(text).check_fields()


def test_check_fields_explicit_set() -> None:
    supported = {"metadata.name", "metadata.namespace", "status.phase"}
    parse_field_selector("status.phase=Failed,metadata.name=x").check_fields(supported)
    with pytest.raises(UnsupportedFieldSelectorError) as exc:
        parse_field_selector("status.phase=Failed,spec.type=oci").check_fields(supported)
    assert exc.value.message == "field label not supported: spec.type"
    # cluster-scoped resources (CRD converter) do not accept metadata.namespace
    with pytest.raises(UnsupportedFieldSelectorError) as exc:
        parse_field_selector("metadata.namespace=x").check_fields({"metadata.name"})
    assert exc.value.message == "field label not supported: metadata.namespace"


def test_crd_field_labels() -> None:
    assert crd_field_labels() == {"metadata.name", "metadata.namespace"}
    assert crd_field_labels(("status.phase",), namespaced=False) == {"metadata.name", "status.phase"}
    sel = parse_field_selector("spec.type=oci,metadata.namespace=x")
    sel.check_fields(crd_field_labels(["spec.type"]))
    with pytest.raises(UnsupportedFieldSelectorError) as exc:
        sel.check_fields(crd_field_labels(["spec.type"], namespaced=False))
    assert exc.value.message == "field label not supported: metadata.namespace"


def test_default_field_label_conversion() -> None:
    assert default_field_label_conversion("metadata.name", "x") == ("metadata.name", "x")
    with pytest.raises(UnsupportedFieldSelectorError):
        default_field_label_conversion("spec.x", "x")


def test_everything_field_selector() -> None:
    assert FieldSelector().is_empty
    assert FieldSelector().matches({"x": "y"})
    assert str(FieldSelector()) == ""


# --- properties -------------------------------------------------------------------------------------------

_LABEL_CHARS = string.ascii_letters + string.digits
_label_name = st.builds(
    lambda a, mid, b: a + mid + b if b else a,
    st.sampled_from(_LABEL_CHARS),
    st.text(alphabet=_LABEL_CHARS + "-_.", max_size=10),
    st.sampled_from(["", *_LABEL_CHARS]),
)
_label_value = st.one_of(st.just(""), _label_name)
_prefix = st.sampled_from(["", "example.com/", "k8s.io/", "a.b-c/"])
_key = st.builds(lambda p, n: p + n, _prefix, _label_name)


@st.composite
def _requirement(draw: st.DrawFn) -> Requirement:
    op = draw(st.sampled_from(list(Operator)))
    key = draw(_key)
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        return new_requirement(key, op, ())
    if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        return new_requirement(key, op, (str(draw(st.integers(0, 10**6))),))
    if op in (Operator.IN, Operator.NOT_IN):
        vals = draw(st.lists(_label_value, min_size=1, max_size=4, unique=True))
        return new_requirement(key, op, sorted(vals))
    return new_requirement(key, op, (draw(_label_value),))


@given(st.lists(_requirement(), max_size=6))
def test_label_selector_string_round_trips(reqs: list[Requirement]) -> None:
    sel = EVERYTHING.add(*reqs)
    assert parse_label_selector(str(sel)) == sel


@given(st.text(alphabet=st.sampled_from(list("ab=!(),<> \tin1/.-\x00é")), max_size=30))
def test_label_parser_only_raises_selector_parse_error(text: str) -> None:
    try:
        sel = parse_label_selector(text)
    except SelectorParseError:
        return
    assert parse_label_selector(str(sel)) == sel


@given(st.dictionaries(st.text(alphabet="ab.=,\\!", min_size=1, max_size=6), st.text(max_size=8), max_size=4))
def test_field_selector_escaping_round_trips(fields: dict[str, str]) -> None:
    # Field names are not escaped by kube, so keep them free of the syntax characters.
    fields = {
        k: v for k, v in fields.items() if "=" not in k and "," not in k and "\\" not in k and "!" not in k
    }
    text = ",".join(f"{k}={escape_field_value(v)}" for k, v in fields.items())
    sel = parse_field_selector(text)
    assert {(r.field, r.value) for r in sel.requirements} == set(fields.items())
    assert sel.matches(fields)


@given(st.text(alphabet=st.sampled_from(list("ab=!,\\ x")), max_size=20))
def test_field_parser_only_raises_selector_parse_error(text: str) -> None:
    try:
        sel = parse_field_selector(text)
    except SelectorParseError:
        return
    assert parse_field_selector(str(sel)) == sel


# --- the stored-JSON prefilter: a necessary condition, never a false negative ---------------------------

_LABEL_KEYS = ["app", "tier", "example.com/team", "shard"]
_LABEL_VALUES = ["", "a", "b", "s7", "s70", "10", "2"]


@given(
    labels=st.dictionaries(st.sampled_from(_LABEL_KEYS), st.sampled_from(_LABEL_VALUES), max_size=4),
    annotations=st.dictionaries(st.sampled_from(_LABEL_KEYS), st.sampled_from(_LABEL_VALUES), max_size=2),
    selector=st.sampled_from(
        [text for text, _, _ in LABEL_MATCHES]
        + ["shard=s7", "shard in (s7,s70),app", "tier!=a", "!app", "shard>5", "app,tier notin (b)", "x=y"]
    ),
)
def test_stored_json_prefilter_never_rejects_a_match(
    labels: dict[str, str], annotations: dict[str, str], selector: str
) -> None:

    parsed = parse_label_selector(selector)
    stored = orjson.dumps({"metadata": {"name": "o", "labels": labels, "annotations": annotations}})
    prefilter = parsed.stored_json_prefilter()
    if parsed.matches(labels):
        assert prefilter is None or prefilter(stored)


def test_stored_json_prefilter_rejects_objects_without_the_required_labels() -> None:

    prefilter = parse_label_selector("shard=s7,app").stored_json_prefilter()
    assert prefilter is not None
    assert not prefilter(orjson.dumps({"metadata": {"labels": {"shard": "s8", "app": "x"}}}))
    assert not prefilter(orjson.dumps({"metadata": {"labels": {"shard": "s7"}}}))
    assert prefilter(orjson.dumps({"metadata": {"labels": {"shard": "s7", "app": "x"}}}))
    assert parse_label_selector("a!=b,!c,d notin (e)").stored_json_prefilter() is None
    never = NOTHING.stored_json_prefilter()
    assert never is not None and not never(b"{}")
