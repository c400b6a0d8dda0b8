"""Field errors as k8s.io/apimachinery/pkg/util/validation/field reports them.

`FieldError` carries the same four things as Go's `field.Error` (type, field path, bad value, detail) and
renders the same strings: `str(err)` is `Error()` (`spec.type: Required value`) and `err.body()` is
`ErrorBody()`, which is what goes into a Status cause's `message`. The constructors (`required`,
`invalid`, `not_supported`, ...) mirror `field.Required`, `field.Invalid`, `field.NotSupported`, ...

`from_validation_error` turns a pydantic `ValidationError` (shape/type problems found while parsing) into
the same `FieldError`s, with camelCase Kubernetes paths, so the API server reports both kinds of problem
through one 422 `Invalid` Status.
"""

from __future__ import annotations

import enum
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError

__all__ = [
    "OMIT_VALUE",
    "ErrorType",
    "FieldError",
    "FieldPath",
    "aggregate_message",
    "duplicate",
    "forbidden",
    "format_value",
    "from_validation_error",
    "go_quote",
    "internal_error",
    "invalid",
    "invalid_message",
    "not_found",
    "not_supported",
    "path_from_loc",
    "required",
    "to_causes",
    "too_long",
    "too_many",
    "type_invalid",
]


class ErrorType(enum.StrEnum):
    """apimachinery's `field.ErrorType`; the value is the wire string (a Status cause's `reason`)."""

    NOT_FOUND = "FieldValueNotFound"
    REQUIRED = "FieldValueRequired"
    DUPLICATE = "FieldValueDuplicate"
    INVALID = "FieldValueInvalid"
    NOT_SUPPORTED = "FieldValueNotSupported"
    FORBIDDEN = "FieldValueForbidden"
    TOO_LONG = "FieldValueTooLong"
    TOO_MANY = "FieldValueTooMany"
    INTERNAL = "InternalError"
    TYPE_INVALID = "FieldValueTypeInvalid"

    @property
    def message(self) -> str:
        """The canonical message (`ErrorType.String()` in Go), e.g. `Required value`."""
        return _TYPE_MESSAGES[self]


_TYPE_MESSAGES: Final[dict[ErrorType, str]] = {
    ErrorType.NOT_FOUND: "Not found",
    ErrorType.REQUIRED: "Required value",
    ErrorType.DUPLICATE: "Duplicate value",
    ErrorType.INVALID: "Invalid value",
    ErrorType.NOT_SUPPORTED: "Unsupported value",
    ErrorType.FORBIDDEN: "Forbidden",
    ErrorType.TOO_LONG: "Too long",
    ErrorType.TOO_MANY: "Too many",
    ErrorType.INTERNAL: "Internal error",
    ErrorType.TYPE_INVALID: "Invalid value",
}


class _OmitValue:
    """Go's `omitValue`: the error body prints only the type, no value."""

    def __repr__(self) -> str:
        return "OMIT_VALUE"


OMIT_VALUE: Final = _OmitValue()


class FieldPath:
    """An immutable Kubernetes field path.

    `FieldPath("spec").child("artifacts").index(1)` is `spec.artifacts[1]`.

    `key(k)` renders `[k]` (unquoted), as `field.Path.Key` does.
    """

    __slots__ = ("_s",)

    def __init__(self, name: str = "", *more: str) -> None:
        self._s = ".".join((name, *more)) if name else ".".join(more)

    @classmethod
    def _raw(cls, s: str) -> FieldPath:
        p = cls.__new__(cls)
        p._s = s
        return p

    def child(self, name: str, *more: str) -> FieldPath:
        s = self._s
        for n in (name, *more):
            s = f"{s}.{n}" if s else n
        return FieldPath._raw(s)

    def index(self, i: int) -> FieldPath:
        return FieldPath._raw(f"{self._s}[{i}]")

    def key(self, k: str) -> FieldPath:
        return FieldPath._raw(f"{self._s}[{k}]")

    def __str__(self) -> str:
        return self._s

    def __repr__(self) -> str:
        return f"FieldPath({self._s!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldPath) and other._s == self._s

    def __hash__(self) -> int:
        return hash(self._s)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field-level validation error (Go's `*field.Error`)."""

    type: ErrorType
    field: str
    bad_value: Any = ""
    detail: str = ""

    def body(self) -> str:
        """`ErrorBody()`: the message without the field name (a Status cause's `message`)."""
        t = self.type
        if t in (ErrorType.REQUIRED, ErrorType.FORBIDDEN, ErrorType.TOO_LONG, ErrorType.INTERNAL) or (
            self.bad_value is OMIT_VALUE
        ):
            s = t.message
        else:
            s = f"{t.message}: {format_value(self.bad_value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def to_cause(self) -> dict[str, str]:
        """The Status cause apimachinery's `NewInvalid` builds from this error."""
        return {"reason": self.type.value, "message": self.body(), "field": self.field}


def _path(p: FieldPath | str) -> str:
    return str(p)


def required(path: FieldPath | str, detail: str = "") -> FieldError:
    return FieldError(ErrorType.REQUIRED, _path(path), "", detail)


def invalid(path: FieldPath | str, value: Any, detail: str = "") -> FieldError:
    return FieldError(ErrorType.INVALID, _path(path), value, detail)


def type_invalid(path: FieldPath | str, value: Any, detail: str = "") -> FieldError:
    return FieldError(ErrorType.TYPE_INVALID, _path(path), value, detail)


def not_found(path: FieldPath | str, value: Any) -> FieldError:
    return FieldError(ErrorType.NOT_FOUND, _path(path), value, "")


def duplicate(path: FieldPath | str, value: Any) -> FieldError:
    return FieldError(ErrorType.DUPLICATE, _path(path), value, "")


def not_supported(path: FieldPath | str, value: Any, valid_values: Sequence[str]) -> FieldError:
    detail = ""
    if valid_values:
        detail = "supported values: " + ", ".join(go_quote(str(v)) for v in valid_values)
    return FieldError(ErrorType.NOT_SUPPORTED, _path(path), value, detail)


def forbidden(path: FieldPath | str, detail: str) -> FieldError:
    return FieldError(ErrorType.FORBIDDEN, _path(path), "", detail)


def too_long(path: FieldPath | str, max_length: int) -> FieldError:
    detail = f"may not be more than {max_length} bytes" if max_length >= 0 else "value is too long"
    return FieldError(ErrorType.TOO_LONG, _path(path), "<value omitted>", detail)


def too_many(path: FieldPath | str, actual: int, max_quantity: int) -> FieldError:
    detail = f"must have at most {max_quantity} items" if max_quantity >= 0 else "has too many items"
    return FieldError(ErrorType.TOO_MANY, _path(path), actual if actual >= 0 else OMIT_VALUE, detail)


def internal_error(path: FieldPath | str, err: str) -> FieldError:
    return FieldError(ErrorType.INTERNAL, _path(path), None, err)


def to_causes(errs: Iterable[FieldError]) -> list[dict[str, str]]:
    """Status `details.causes` for a list of field errors, in order (as `NewInvalid` builds them)."""
    return [e.to_cause() for e in errs]


def aggregate_message(errs: Sequence[FieldError]) -> str:
    """`errs.ToAggregate().Error()`: one message, or `[a, b]` for several (duplicates dropped)."""
    seen: list[str] = []
    for e in errs:
        s = str(e)
        if s not in seen:
            seen.append(s)
    if not seen:
        return ""
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


def invalid_message(kind: str, group: str, name: str, errs: Sequence[FieldError]) -> str:
    """The message of apimachinery's `NewInvalid`: `Order.arc.opendefense.cloud "x" is invalid: ...`."""
    qualified = f"{kind}.{group}" if group else kind
    if not errs:
        return f"{qualified} {go_quote(name)} is invalid"
    return f"{qualified} {go_quote(name)} is invalid: {aggregate_message(errs)}"


# --- Go value formatting -------------------------------------------------------------------------------

_GO_ESCAPES: Final[dict[str, str]] = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
    "\\": r"\\",
    '"': r"\"",
}


def go_quote(s: str) -> str:
    """Go's `strconv.Quote` (`%q`): printable Unicode kept, everything else escaped."""
    out = ['"']
    for ch in s:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif _go_is_print(ch):
            out.append(ch)
        else:
            cp = ord(ch)
            if cp < 0x80:
                out.append(f"\\x{cp:02x}")
            elif cp <= 0xFFFF:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def _go_is_print(ch: str) -> bool:
    if ch == " ":
        return True
    cat = unicodedata.category(ch)
    return cat[0] in "LMNPS"


def _go_literal(v: Any) -> str:
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>"
    return str(v)


def format_value(value: Any) -> str:
    """How `ErrorBody` prints a bad value: `%v` for numbers/bools, `%q` for strings, `null` for nil.

    Composite values are printed the way `%#v` prints the common Go types (`[]string{"a", "b"}`,
    `map[string]string{"k":"v"}`); anything else falls back to JSON.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, enum.Enum):
        return format_value(value.value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return (
            "map[string]string{" + ", ".join(f"{go_quote(k)}:{go_quote(v)}" for k, v in value.items()) + "}"
        )
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _go_float(f: float) -> str:
    """Go's `%v` for a float64: `strconv.FormatFloat(f, 'g', -1, 64)` (shortest digits, exponent when
    the decimal exponent is < -4 or >= 6, e.g. `1e+06`, `0.5`, `1.5e-05`)."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign, digits, exponent = Decimal(repr(f)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    exp = len(ds) - 1 + int(exponent)
    neg = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp >= len(ds) - 1:
        return neg + ds + "0" * (exp - len(ds) + 1)
    if exp >= 0:
        return f"{neg}{ds[: exp + 1]}.{ds[exp + 1 :]}"
    return f"{neg}0.{'0' * (-exp - 1)}{ds}"


# --- pydantic ValidationError → FieldErrors -----------------------------------------------------------

_REQUIRED_TYPES: Final = frozenset({"missing", "missing_argument", "missing_keyword_only_argument"})
_TOO_LONG_TYPES: Final = frozenset({"string_too_long", "too_long", "bytes_too_long"})


def path_from_loc(loc: Sequence[int | str], base: FieldPath | None = None) -> FieldPath:
    """A pydantic error `loc` as a Kubernetes path.

    `('spec', 'artifacts', 1, 'srcRef')` → `spec.artifacts[1].srcRef`.

    Dict keys (strings following a dict field) are rendered as `.key`, like the CRD pruning paths; a
    string is a dict key only when pydantic cannot tell, so in practice keys look like children.
    """
    p = base if base is not None else FieldPath()
    for part in loc:
        p = p.index(part) if isinstance(part, int) else p.child(str(part))
    return p


def from_validation_error(exc: ValidationError, base: FieldPath | None = None) -> list[FieldError]:
    """Convert pydantic's errors (locations by alias, i.e. camelCase) into `FieldError`s.

    `missing` → Required; `literal_error`/`enum` → NotSupported with the expected values; too long →
    TooLong; every other shape/type problem → Invalid with pydantic's message as detail.
    """
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        etype = err["type"]
        path = path_from_loc(err["loc"], base)
        value = err.get("input")
        ctx = err.get("ctx") or {}
        if etype in _REQUIRED_TYPES:
            out.append(required(path))
        elif etype in ("literal_error", "enum"):
            expected = str(ctx.get("expected", ""))
            values = [v.strip().strip("'\"") for v in expected.replace(" or ", ",").split(",") if v.strip()]
            out.append(not_supported(path, value if _is_scalar(value) else OMIT_VALUE, values))
        elif etype in _TOO_LONG_TYPES:
            max_length = ctx.get("max_length", -1)
            out.append(too_long(path, int(max_length) if isinstance(max_length, int) else -1))
        else:
            out.append(invalid(path, value if _is_scalar(value) else OMIT_VALUE, _lower_first(err["msg"])))
    return out


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _lower_first(msg: str) -> str:
    return msg[:1].lower() + msg[1:] if msg else msg
