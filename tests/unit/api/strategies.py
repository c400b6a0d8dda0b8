"""Hypothesis strategies for API models, derived from their annotations (sample-apiserver's fuzzer)."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, Literal, Union

from hypothesis import strategies as st
from pydantic import BaseModel

from api import meta

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text
json_values: st.SearchStrategy[Any] = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(_text, json_values, max_size=4)
rfc3339 = st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(
    lambda d: d.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
)


def _is_raw(info_annotation: Any, metadata: list[Any]) -> bool:
    return info_annotation is Any or any(getattr(m, "func", None) is meta._keep for m in metadata)


def for_annotation(annotation: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return json_values
    if annotation is Any:
        return json_values
    if origin in (Union, types.UnionType):
        args = typing.get_args(annotation)
        return st.one_of(*(st.none() if a is type(None) else for_annotation(a) for a in args))
    if origin is Literal:
        return st.sampled_from(typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return st.lists(for_annotation(item), max_size=3)
    if origin is dict:
        _, value = typing.get_args(annotation)
        return st.dictionaries(_text, for_annotation(value), max_size=3)
    if annotation is str:
        return _text
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(-(2**63), 2**63 - 1)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(list(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return for_model(annotation)
    raise TypeError(f"no strategy for {annotation!r}")


_cache: dict[type[BaseModel], st.SearchStrategy[Any]] = {}


def for_model(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    if model in _cache:
        return _cache[model]
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        if _is_raw(info.annotation, info.metadata):
            strat: st.SearchStrategy[Any] = json_values
        else:
            strat = for_annotation(info.annotation)
        if name.endswith("timestamp") or name.endswith("_at") or name == "time":
            strat = st.none() | rfc3339
        fields[name] = strat
    s = st.fixed_dictionaries(fields).map(lambda kw: model(**kw))
    _cache[model] = s
    return s
