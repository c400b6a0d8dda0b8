"""Label and field selectors, exactly as kube-apiserver parses and applies them.

Ports of `k8s.io/apimachinery/pkg/labels/selector.go` (`Parse`, `NewRequirement`, `Matches`, `String`,
`RequiresExactMatch`), `pkg/apis/meta/v1/helpers.go` (`LabelSelectorAsSelector`) and
`pkg/fields/selector.go` (`ParseSelector`, escaping, `Transform`). Error messages are kube's, byte for byte,
because clients show them to users verbatim, e.g.

    unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must consist of ...
    invalid selector: 'x=a,b'; can't understand 'b'
    "spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"

Pure: no I/O. The server parses one selector per list/watch request, so parsing is cached (the results are
immutable) and the lexer scans identifiers with one precompiled, linear regex.

Known deviation: Go sorts requirements with an unstable sort (pdqsort); for selectors with more than twelve
requirements *and* repeated keys the relative order of the requirements sharing a key (visible only in
`str()` and `requires_exact_match`) may differ from Go's. Python's stable sort equals Go's insertion sort
for up to twelve requirements.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from api.fields import format_value, go_quote, invalid, not_supported
from api.validation_meta import is_qualified_name, is_valid_label_value

__all__ = [
    "DEFAULT_FIELD_LABELS",
    "EVERYTHING",
    "NOTHING",
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Operator",
    "Requirement",
    "SelectorParseError",
    "UnsupportedFieldSelectorError",
    "crd_field_labels",
    "default_field_label_conversion",
    "escape_field_value",
    "label_selector_from_dict",
    "label_selector_from_set",
    "new_requirement",
    "parse_field_selector",
    "parse_label_selector",
    "unescape_field_value",
]


class SelectorParseError(ValueError):
    """A selector kube would reject; `message` is kube's error text (the handler answers 400 with it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedFieldSelectorError(SelectorParseError):
    """A field selector on a field the resource does not support (kube's `ConvertFieldLabel` error)."""


class Operator(enum.StrEnum):
    """`k8s.io/apimachinery/pkg/selection.Operator`; the value is Go's string."""

    DOES_NOT_EXIST = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    IN = "in"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    EXISTS = "exists"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


# Go's `binaryOperators` + `unaryOperators`, in Go's order (it appears in error messages).
_BINARY_OPERATORS: Final = (
    Operator.IN,
    Operator.NOT_IN,
    Operator.EQUALS,
    Operator.DOUBLE_EQUALS,
    Operator.NOT_EQUALS,
    Operator.GREATER_THAN,
    Operator.LESS_THAN,
)
_VALID_REQUIREMENT_OPERATORS: Final = (*_BINARY_OPERATORS, Operator.EXISTS, Operator.DOES_NOT_EXIST)
_BINARY_OPERATORS_TEXT: Final = ", ".join(_BINARY_OPERATORS)

_INT64_RE: Final = re.compile(r"[+-]?[0-9]+")
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


def _parse_int64(s: str) -> int | None:
    """Go's `strconv.ParseInt(s, 10, 64)`: ASCII digits, optional sign, no spaces/underscores, int64 range."""
    if _INT64_RE.fullmatch(s) is None:
        return None
    n = int(s)
    return n if _INT64_MIN <= n <= _INT64_MAX else None


# --- label requirements ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """One label requirement (Go's `labels.Requirement`): `key <operator> values`.

    Build validated ones with `new_requirement`; `values` keep the order they were given in (the parser
    gives them sorted and de-duplicated, as Go's `sets.String.List()` does).
    """

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Go's `Requirement.Matches`: In/=/== need the key with one of the values; NotIn/!= match when the
        key is absent or has none of the values; Gt/Lt compare as int64 (no match if not an integer)."""
        op = self.operator
        if op is Operator.IN or op is Operator.EQUALS or op is Operator.DOUBLE_EQUALS:
            v = labels.get(self.key)
            return v is not None and v in self.values
        if op is Operator.NOT_IN or op is Operator.NOT_EQUALS:
            v = labels.get(self.key)
            return v is None or v not in self.values
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        if op is Operator.GREATER_THAN or op is Operator.LESS_THAN:
            v = labels.get(self.key)
            if v is None:
                return False
            have = _parse_int64(v)
            if have is None or len(self.values) != 1:
                return False
            want = _parse_int64(self.values[0])
            if want is None:
                return False
            return have > want if op is Operator.GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        """Go's `Requirement.String()`: `!k`, `k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k>1`, ..."""
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op is Operator.IN:
            return f"{self.key} in ({vals})"
        if op is Operator.NOT_IN:
            return f"{self.key} notin ({vals})"
        sym = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{sym}{vals}"


def _requirement_errors(key: str, operator: str, values: Sequence[str] | None) -> list[str]:
    """The field errors of Go's `NewRequirement` (with a nil path: `key`, `values[0]`, `values[0][key]`),
    rendered as Go's `field.Error.Error()`."""
    errs: list[str] = []
    key_msgs = is_qualified_name(key)
    if key_msgs:
        errs.append(str(invalid("key", key, "; ".join(key_msgs))))
    vals: Sequence[str] = values or ()
    # Go prints the bad []string with %#v; the dict conversion passes a nil slice for "no values".
    shown = "[]string(nil)" if values is None else format_value(list(vals))

    def bad_values(detail: str) -> str:
        return f"values: Invalid value: {shown}: {detail}"

    if operator in (Operator.IN, Operator.NOT_IN):
        if not vals:
            errs.append(bad_values("for 'in', 'notin' operators, values set can't be empty"))
    elif operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS):
        if len(vals) != 1:
            errs.append(bad_values("exact-match compatibility requires one single value"))
    elif operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        if vals:
            errs.append(bad_values("values set must be empty for exists and does not exist"))
    elif operator in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(vals) != 1:
            errs.append(bad_values("for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                detail = "for 'Gt', 'Lt' operators, the value must be an integer"
                errs.append(str(invalid(f"values[{i}]", v, detail)))
    else:
        errs.append(str(not_supported("operator", operator, [str(o) for o in _VALID_REQUIREMENT_OPERATORS])))
    for i, v in enumerate(vals):
        msgs = is_valid_label_value(v)
        if msgs:
            errs.append(str(invalid(f"values[{i}][{key}]", v, "; ".join(msgs))))
    return errs


def _aggregate(errs: list[str]) -> str:
    """Go's `utilerrors.NewAggregate(errs).Error()`: one message, or `[a, b]` without duplicates."""
    seen = list(dict.fromkeys(errs))
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


def new_requirement(key: str, operator: Operator | str, values: Iterable[str] | None = ()) -> Requirement:
    """Go's `labels.NewRequirement`: validate and build one requirement.

    `values=None` stands for Go's nil slice (only visible in an error message). Raises `SelectorParseError`
    with the aggregated field errors, e.g. `values: Invalid value: []string{}: for 'in', 'notin' operators,
    values set can't be empty`.
    """
    vals = None if values is None else tuple(values)
    errs = _requirement_errors(key, operator, vals)
    if errs:
        raise SelectorParseError(_aggregate(errs))
    return Requirement(key, Operator(operator), vals or ())


# --- label selectors ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed label selector: the AND of its requirements, sorted by key (Go's `internalSelector`).

    `LabelSelector()` (no requirements) is `labels.Everything()`, matching every object; `NOTHING`
    (`labels.Nothing()`, from a nil metav1.LabelSelector) matches none.
    """

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def is_empty(self) -> bool:
        """Go's `Empty()`: True when the selector does not restrict anything (never for `NOTHING`)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with these labels is selected (None means no labels)."""
        if self.nothing:
            return False
        ls: Mapping[str, str] = labels if labels is not None else {}
        return all(r.matches(ls) for r in self.requirements)

    def stored_json_prefilter(self) -> Callable[[bytes], bool] | None:
        """A cheap necessary condition on an object's stored JSON, to skip decoding most non-matches.

        Every requirement that needs a label present (`=`, `==`, `in`, exists, `>`, `<`) needs its key —
        and for the first three one of its values — as a JSON string somewhere in the bytes (label keys
        and values never need escaping, so ``orjson`` writes them verbatim). None when nothing can be
        ruled out this way (only `!=`, `notin`, `!key` requirements).
        """
        if self.nothing:
            return _never
        needed: list[tuple[bytes, ...]] = []
        for r in self.requirements:
            if r.operator in _NEEDS_ONE_OF_VALUES:
                needed.append(tuple(_json_string(v) for v in r.values))
            if r.operator in _NEEDS_KEY:
                needed.append((_json_string(r.key),))
        if not needed:
            return None

        def maybe_matches(raw: bytes) -> bool:
            return all(any(token in raw for token in alternatives) for alternatives in needed)

        return maybe_matches

    def requires_exact_match(self, key: str) -> str | None:
        """Go's `RequiresExactMatch`: the value a selector pins `key` to (via `=`, `==` or a one-value `in`),
        judged by the first requirement on `key`; None otherwise."""
        for r in self.requirements:
            if r.key == key:
                if (
                    r.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
                    and len(r.values) == 1
                ):
                    return r.values[0]
                return None
        return None

    def add(self, *requirements: Requirement) -> LabelSelector:
        """Go's `Add`: a new selector with more requirements, re-sorted by key."""
        if self.nothing:
            return self
        return LabelSelector(tuple(sorted((*self.requirements, *requirements), key=_by_key)))

    def __str__(self) -> str:
        """kube's canonical string (`x in (a,b),y!=c,!z`); empty for everything and nothing."""
        return ",".join(str(r) for r in self.requirements)


_NEEDS_ONE_OF_VALUES: Final = frozenset({Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS})
_NEEDS_KEY: Final = _NEEDS_ONE_OF_VALUES | {Operator.EXISTS, Operator.GREATER_THAN, Operator.LESS_THAN}


def _json_string(text: str) -> bytes:
    return b'"' + text.encode() + b'"'


def _never(_: bytes) -> bool:
    return False


def _by_key(r: Requirement) -> str:
    return r.key


EVERYTHING: Final = LabelSelector()
NOTHING: Final = LabelSelector(nothing=True)


class _Tok(enum.IntEnum):
    ERROR = 0
    END_OF_STRING = 1
    CLOSED_PAR = 2
    COMMA = 3
    DOES_NOT_EXIST = 4
    DOUBLE_EQUALS = 5
    EQUALS = 6
    GREATER_THAN = 7
    IDENTIFIER = 8
    IN = 9
    LESS_THAN = 10
    NOT_EQUALS = 11
    NOT_IN = 12
    OPEN_PAR = 13


_STRING_TO_TOKEN: Final[dict[str, _Tok]] = {
    ")": _Tok.CLOSED_PAR,
    ",": _Tok.COMMA,
    "!": _Tok.DOES_NOT_EXIST,
    "==": _Tok.DOUBLE_EQUALS,
    "=": _Tok.EQUALS,
    ">": _Tok.GREATER_THAN,
    "in": _Tok.IN,
    "<": _Tok.LESS_THAN,
    "!=": _Tok.NOT_EQUALS,
    "notin": _Tok.NOT_IN,
    "(": _Tok.OPEN_PAR,
}
_WHITESPACE: Final = frozenset(" \t\r\n")
_SPECIAL: Final = frozenset("=!(),><")
# An identifier runs to the next special symbol, whitespace or NUL (Go's read() returns 0 at the end, so
# a NUL byte ends the identifier and is consumed, exactly like the end of the string).
_IDENT_RE: Final = re.compile("[^=!(),>< \t\r\n\x00]+")

_Item = tuple[_Tok, str]


def _lex(s: str) -> list[_Item]:
    """Go's `Parser.scan`: all tokens up to and including the first END_OF_STRING."""
    items: list[_Item] = []
    n = len(s)
    pos = 0
    while True:
        while pos < n and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= n or s[pos] == "\x00":
            items.append((_Tok.END_OF_STRING, ""))
            return items
        ch = s[pos]
        if ch in _SPECIAL:
            two = s[pos : pos + 2]
            lit = two if two in ("==", "!=") else ch
            pos += len(lit)
            if pos < n and s[pos] == "\x00":  # Go's scanSpecialSymbol consumes a NUL that ends the symbol
                pos += 1
            items.append((_STRING_TO_TOKEN[lit], lit))
            continue
        m = _IDENT_RE.match(s, pos)
        assert m is not None  # ch is neither special, whitespace nor NUL
        lit = m.group()
        pos = m.end()
        if pos < n and s[pos] == "\x00":
            pos += 1
        tok = _STRING_TO_TOKEN.get(lit)
        items.append((tok if tok is not None else _Tok.IDENTIFIER, lit))


class _Parser:
    """Go's recursive-descent `labels.Parser`, token for token (so the error messages match)."""

    __slots__ = ("items", "pos")

    def __init__(self, items: list[_Item]) -> None:
        self.items = items
        self.pos = 0

    def _at(self, i: int, values: bool) -> _Item:
        tok, lit = self.items[i] if i < len(self.items) else (_Tok.END_OF_STRING, "")
        if values and (tok is _Tok.IN or tok is _Tok.NOT_IN):
            tok = _Tok.IDENTIFIER
        return tok, lit

    def lookahead(self, values: bool = True) -> _Item:
        return self._at(self.pos, values)

    def consume(self, values: bool = True) -> _Item:
        self.pos += 1
        return self._at(self.pos - 1, values)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok is _Tok.IDENTIFIER or tok is _Tok.DOES_NOT_EXIST:
                try:
                    reqs.append(self.parse_requirement())
                except SelectorParseError as e:
                    raise SelectorParseError(f"unable to parse requirement: {e.message}") from None
                t, lt = self.consume()
                if t is _Tok.END_OF_STRING:
                    return reqs
                if t is _Tok.COMMA:
                    t2, l2 = self.lookahead()
                    if t2 is not _Tok.IDENTIFIER and t2 is not _Tok.DOES_NOT_EXIST:
                        raise SelectorParseError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise SelectorParseError(f"found '{lt}', expected: ',' or 'end of string'")
            elif tok is _Tok.END_OF_STRING:
                return reqs
            else:
                raise SelectorParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        key, op = self.parse_key_and_infer_operator()
        if op is Operator.EXISTS or op is Operator.DOES_NOT_EXIST:
            return new_requirement(key, op, ())
        op = self.parse_operator()
        if op is Operator.IN or op is Operator.NOT_IN:
            values = self.parse_values()
        else:
            values = self.parse_exact_value()
        return new_requirement(key, op, sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, Operator | None]:
        op: Operator | None = None
        tok, lit = self.consume()
        if tok is _Tok.DOES_NOT_EXIST:
            op = Operator.DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok is not _Tok.IDENTIFIER:
            raise SelectorParseError(f"found '{lit}', expected: identifier")
        msgs = is_qualified_name(lit)
        if msgs:
            # Go validates with the parser's (nil) path here, hence the literal "<nil>" field.
            raise SelectorParseError(str(invalid("<nil>", lit, "; ".join(msgs))))
        t, _ = self.lookahead()
        if (t is _Tok.END_OF_STRING or t is _Tok.COMMA) and op is not Operator.DOES_NOT_EXIST:
            op = Operator.EXISTS
        return lit, op

    def parse_operator(self) -> Operator:
        tok, lit = self.consume(values=False)
        op = _TOKEN_TO_OPERATOR.get(tok)
        if op is None:
            raise SelectorParseError(f"found '{lit}', expected: {_BINARY_OPERATORS_TEXT}")
        return op

    def parse_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok is not _Tok.OPEN_PAR:
            raise SelectorParseError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok is _Tok.IDENTIFIER or tok is _Tok.COMMA:
            s = self.parse_identifiers_list()
            if self.consume()[0] is not _Tok.CLOSED_PAR:
                raise SelectorParseError(f"found '{lit}', expected: ')'")
            return s
        if tok is _Tok.CLOSED_PAR:
            self.consume()
            return {""}
        raise SelectorParseError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        s: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok is _Tok.IDENTIFIER:
                s.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 is _Tok.COMMA:
                    continue
                if tok2 is _Tok.CLOSED_PAR:
                    return s
                raise SelectorParseError(f"found '{lit2}', expected: ',' or ')'")
            if tok is _Tok.COMMA:
                if not s:
                    s.add("")  # "(,"
                tok2, _ = self.lookahead()
                if tok2 is _Tok.CLOSED_PAR:
                    s.add("")  # ",)"
                    return s
                if tok2 is _Tok.COMMA:
                    self.consume()
                    s.add("")  # ",,"
                continue
            raise SelectorParseError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead()
        if tok is _Tok.END_OF_STRING or tok is _Tok.COMMA:
            return {""}
        tok, lit = self.consume()
        if tok is _Tok.IDENTIFIER:
            return {lit}
        raise SelectorParseError(f"found '{lit}', expected: identifier")


_TOKEN_TO_OPERATOR: Final[dict[_Tok, Operator]] = {
    _Tok.IN: Operator.IN,
    _Tok.EQUALS: Operator.EQUALS,
    _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Tok.GREATER_THAN: Operator.GREATER_THAN,
    _Tok.LESS_THAN: Operator.LESS_THAN,
    _Tok.NOT_IN: Operator.NOT_IN,
    _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
}


@functools.lru_cache(maxsize=1024)
def parse_label_selector(text: str) -> LabelSelector:
    """Go's `labels.Parse`: the `labelSelector` query parameter syntax.

    `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, joined by commas;
    whitespace (space, tab, CR, LF) between tokens is ignored. The empty string selects everything.
    Raises `SelectorParseError` with kube's message for anything kube rejects.
    """
    if not text:
        return EVERYTHING
    reqs = _Parser(_lex(text)).parse()
    reqs.sort(key=_by_key)
    return LabelSelector(tuple(reqs))


_DICT_OPERATORS: Final[dict[str, Operator]] = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def label_selector_from_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """Go's `metav1.LabelSelectorAsSelector` for a wire `metav1.LabelSelector` (camelCase dict).

    None selects nothing (`NOTHING`); a selector without `matchLabels` and `matchExpressions` selects
    everything. Raises `SelectorParseError` with kube's message for an invalid key, value or operator.
    """
    if selector is None:
        return NOTHING
    match_labels: Mapping[str, str] = selector.get("matchLabels") or {}
    expressions: Sequence[Mapping[str, Any]] = selector.get("matchExpressions") or ()
    if not match_labels and not expressions:
        return EVERYTHING
    reqs: list[Requirement] = []
    # Go ranges over a map (random order); sorting makes the first reported error deterministic.
    for k in sorted(match_labels):
        reqs.append(new_requirement(k, Operator.EQUALS, (match_labels[k],)))
    for expr in expressions:
        raw_op = expr.get("operator") or ""
        op = _DICT_OPERATORS.get(raw_op)
        if op is None:
            raise SelectorParseError(f"{go_quote(str(raw_op))} is not a valid label selector operator")
        values = expr.get("values")
        # `append([]string(nil), expr.Values...)` is nil for an empty list.
        reqs.append(new_requirement(expr.get("key") or "", op, tuple(values) if values else None))
    return EVERYTHING.add(*reqs)


def label_selector_from_set(labels: Mapping[str, str] | None, *, validate: bool = False) -> LabelSelector:
    """Go's `labels.SelectorFromSet` (`validate=False`) / `ValidatedSelectorFromSet` (`validate=True`):
    `k1=v1,k2=v2`, selecting objects carrying all these labels. None or {} selects everything."""
    if not labels:
        return EVERYTHING
    if validate:
        reqs = [new_requirement(k, Operator.EQUALS, (labels[k],)) for k in sorted(labels)]
    else:
        reqs = [Requirement(k, Operator.EQUALS, (labels[k],)) for k in sorted(labels)]
    return LabelSelector(tuple(reqs))


# --- field selectors ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """One field selector term (Go's `fields.Requirement`); `operator` is `=` or `!=` (`==` reads as `=`)."""

    field: str
    operator: Operator
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.field, "")  # Go's fields.Set.Get: "" when absent
        return have == self.value if self.operator is Operator.EQUALS else have != self.value

    def __str__(self) -> str:
        sym = "=" if self.operator is Operator.EQUALS else "!="
        return f"{self.field}{sym}{escape_field_value(self.value)}"


DEFAULT_FIELD_LABELS: Final = ("metadata.name", "metadata.namespace")


def default_field_label_conversion(label: str, value: str) -> tuple[str, str]:
    """Go's `runtime.DefaultMetaV1FieldSelectorConversion`: what a registry resource without its own
    field-label conversion (every sample-apiserver style resource) accepts."""
    if label in DEFAULT_FIELD_LABELS:
        return label, value
    raise UnsupportedFieldSelectorError(
        f"{go_quote(label)} is not a known field selector: only "
        f"{go_quote('metadata.name')}, {go_quote('metadata.namespace')}"
    )


def crd_field_labels(selectable_fields: Iterable[str] = (), *, namespaced: bool = True) -> frozenset[str]:
    """The fields apiextensions' `crConverter.ConvertFieldLabel` accepts for a CRD: `metadata.name`,
    `metadata.namespace` when namespaced, and the CRD's `selectableFields`. Pass the result to
    `FieldSelector.check_fields` to answer `field label not supported: <field>` as a CRD does."""
    labels = {"metadata.name", *selectable_fields}
    if namespaced:
        labels.add("metadata.namespace")
    return frozenset(labels)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed field selector: the AND of its terms, in kube's order (sorted by the raw term text)."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        """Go's `Empty()`: no terms, selects everything."""
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Whether an object with these field values is selected (absent fields read as "")."""
        return all(r.matches(fields) for r in self.requirements)

    def exact_value(self, field: str) -> str | None:
        """Go's `RequiresExactMatch`: the value of the first `field=value` term, else None.

        kube uses `exact_value("metadata.name")` to turn a list/watch into a request for one object.
        """
        for r in self.requirements:
            if r.field == field and r.operator is Operator.EQUALS:
                return r.value
        return None

    def transform(self, fn: Callable[[str, str], tuple[str, str]]) -> FieldSelector:
        """Go's `Transform`: map every (field, value); a term mapped to ("", "") is dropped. `fn` raises
        to reject a term (the first rejected term, in order, wins)."""
        out: list[FieldRequirement] = []
        for r in self.requirements:
            field, value = fn(r.field, r.value)
            if field or value:
                out.append(FieldRequirement(field, r.operator, value))
        return FieldSelector(tuple(out))

    def check_fields(self, supported: Collection[str] | None = None) -> None:
        """Reject terms on fields the resource cannot select on, with kube's message (the handler answers
        400 BadRequest with it).

        `supported=None` is kube's default for registry resources (`DefaultMetaV1FieldSelectorConversion`):
        only `metadata.name` and `metadata.namespace`, and the message is
        `"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"`.
        An explicit set is a resource with its own conversion function, which kube's built-in resources and
        CRDs answer with `field label not supported: spec.foo`.
        """
        for r in self.requirements:
            if supported is None:
                default_field_label_conversion(r.field, r.value)
            elif r.field not in supported:
                raise UnsupportedFieldSelectorError(f"field label not supported: {r.field}")

    def __str__(self) -> str:
        """kube's string form, values escaped (`a=b,c!=d\\,e`)."""
        return ",".join(str(r) for r in self.requirements)


def escape_field_value(value: str) -> str:
    """Go's `fields.EscapeValue`: `\\` → `\\\\`, `,` → `\\,`, `=` → `\\=`."""
    if "\\" not in value and "," not in value and "=" not in value:
        return value
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(value: str) -> str:
    """Go's `fields.UnescapeValue`; raises `SelectorParseError` on a bad escape or a bare `,`/`=`."""
    if "\\" not in value and "," not in value and "=" not in value:
        return value
    out: list[str] = []
    in_slash = False
    for c in value:
        if in_slash:
            if c not in "\\,=":
                raise SelectorParseError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            # Go formats the rune with %v, i.e. as its code point number.
            raise SelectorParseError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise SelectorParseError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(selector: str) -> list[str]:
    """Go's `splitTerms`: split on commas not escaped by a backslash (the backslashes stay)."""
    if not selector:
        return []
    if "\\" not in selector:
        return selector.split(",")
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, c in enumerate(selector):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return terms


# The first operator occurrence wins; at one position "!=" beats "==" beats "=".
_TERM_OPERATOR_RE: Final = re.compile("!=|==|=")


def _split_term(term: str) -> tuple[str, str, str] | None:
    m = _TERM_OPERATOR_RE.search(term)
    if m is None:
        return None
    return term[: m.start()], m.group(), term[m.end() :]


@functools.lru_cache(maxsize=1024)
def parse_field_selector(text: str) -> FieldSelector:
    """Go's `fields.ParseSelector`: the `fieldSelector` query parameter syntax.

    `field=value`, `field==value`, `field!=value`, joined by commas; in values `\\,`, `\\=` and `\\\\` escape
    `,`, `=` and `\\`. Empty terms are skipped, and a term with an empty field and value (`=`) selects
    everything. Raises `SelectorParseError` with kube's message, e.g.
    `invalid selector: 'x=a,b'; can't understand 'b'`.
    """
    parts = _split_terms(text)
    parts.sort()
    reqs: list[FieldRequirement] = []
    for part in parts:
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorParseError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        value = unescape_field_value(rhs)
        if not lhs and not value:
            continue  # ParseSelector's identity Transform turns ("", "") into Everything, which is dropped
        reqs.append(FieldRequirement(lhs, Operator.NOT_EQUALS if op == "!=" else Operator.EQUALS, value))
    return FieldSelector(tuple(reqs))
