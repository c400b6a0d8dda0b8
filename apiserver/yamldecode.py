"""YAML request bodies: decoded with go-yaml's limits, off the event loop (the one thread boundary).

YAML costs more than its size: an alias names a whole subtree, so a 1 KB document of nested aliases
("billion laughs") expands to billions of nodes, and a flat 3 MB document still takes seconds to build in
Python. kube-apiserver decodes YAML with sigs.k8s.io/yaml (go-yaml v2), which refuses a document whose
nodes come mostly from alias expansion ("document contains excessive aliasing": ``allowedAliasRatio``, 99 %
up to 400,000 decoded nodes, falling to 10 % at 4,000,000) and nesting deeper than its maximum.

Here the same rule is applied before anything is built: a first pass over libyaml's event stream (flat
and iterative: no recursion, no objects) counts every node each anchor stands for, the nodes the
aliases expand to, and the depth; only a document within the limits is then composed. Both passes run in
a small dedicated thread pool, so a large body slows its own request, not the others: the event loop keeps
serving while libyaml works.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import copy
from datetime import datetime
from typing import Any

import yaml

from apiserver.limits import MAX_DECODE_DEPTH

# go-yaml v2 (decode.go): the share of decoded nodes that may come from alias expansion.
_ALIAS_RATIO_RANGE_LOW = 400_000
_ALIAS_RATIO_RANGE_HIGH = 4_000_000
_SATURATED = 2**62
YAML_DECODE_WORKERS = 2

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_executor = concurrent.futures.ThreadPoolExecutor(
    max_workers=YAML_DECODE_WORKERS, thread_name_prefix="yaml-decode"
)


class YAMLLimitError(ValueError):
    """The document is beyond go-yaml's limits (excessive aliasing, too deep)."""


def allowed_alias_ratio(decode_count: int) -> float:
    """go-yaml's ``allowedAliasRatio``."""
    if decode_count <= _ALIAS_RATIO_RANGE_LOW:
        return 0.99
    if decode_count >= _ALIAS_RATIO_RANGE_HIGH:
        return 0.10
    span = _ALIAS_RATIO_RANGE_HIGH - _ALIAS_RATIO_RANGE_LOW
    return 0.99 - 0.89 * ((decode_count - _ALIAS_RATIO_RANGE_LOW) / span)


_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


class _Collection:
    """A mapping or sequence being built: its value, where it started, its anchor, pending merges."""

    __slots__ = ("anchor", "before", "key", "merges", "value")

    def __init__(self, value: dict[str, Any] | list[Any], before: int, anchor: str | None) -> None:
        self.value = value
        self.before = before
        self.anchor = anchor
        self.key: Any = _NO_KEY
        self.merges: list[Any] = []


_NO_KEY = object()


def _scalar(value: Any) -> Any:
    """YAML scalars JSON has no type for (timestamps, dates, binary) as kube's YAML→JSON writes them."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value.tzinfo else value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def load(raw: bytes, *, max_depth: int = MAX_DECODE_DEPTH) -> Any:
    """The single document of ``raw`` as JSON-compatible values, built in one pass over libyaml's events.

    Every node counts once and an alias counts as the whole subtree its anchor names (as go-yaml counts
    the nodes it decodes); once more than 100 nodes came from aliases and more than 1,000 were decoded,
    the alias share is checked as go-yaml does. The walk is iterative (no recursion, whatever the depth).

    Raises ``YAMLLimitError`` beyond the limits, ``yaml.YAMLError`` when it is not YAML and ``ValueError``
    when it does not hold exactly one document.
    """
    loader = _Loader(raw)
    try:
        return _build(loader, max_depth)
    finally:
        loader.dispose()


def _build(loader: Any, max_depth: int) -> Any:
    anchors: dict[str, tuple[Any, int]] = {}
    stack: list[_Collection] = []
    decoded = aliased = documents = 0
    result: Any = None
    constructors = loader.yaml_constructors

    def place(value: Any) -> None:
        nonlocal result
        if not stack:
            result = value
            return
        top = stack[-1]
        if isinstance(top.value, list):
            top.value.append(value)
        elif top.key is _NO_KEY:
            if isinstance(value, dict | list):
                raise YAMLLimitError("yaml: a mapping key must be a scalar")
            top.key = value
        else:
            key, top.key = top.key, _NO_KEY
            if key is _MERGE_KEY:
                top.merges.append(value)
            else:
                top.value[str(key) if not isinstance(key, str) else key] = value

    while loader.check_event():
        event = loader.get_event()
        if isinstance(event, yaml.ScalarEvent):
            decoded += 1
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            if tag == _STR:
                value: Any = event.value
            elif tag == _MERGE and stack and isinstance(stack[-1].value, dict) and stack[-1].key is _NO_KEY:
                value = _MERGE_KEY
            else:
                construct = constructors.get(tag) or constructors[None]
                value = _scalar(construct(loader, yaml.ScalarNode(tag, event.value)))
            if event.anchor:
                anchors[event.anchor] = (value, 1)
            place(value)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}", None)
            anchored, size = anchors[event.anchor]
            decoded = min(decoded + size, _SATURATED)
            aliased = min(aliased + size, _SATURATED)
            if aliased > 100 and decoded > 1000 and aliased / decoded > allowed_alias_ratio(decoded):
                raise YAMLLimitError("yaml: document contains excessive aliasing")
            place(copy.deepcopy(anchored) if isinstance(anchored, dict | list) else anchored)
        elif isinstance(event, yaml.CollectionStartEvent):
            container: dict[str, Any] | list[Any] = {} if isinstance(event, yaml.MappingStartEvent) else []
            stack.append(_Collection(container, decoded, event.anchor))
            decoded += 1
            if len(stack) > max_depth:
                raise YAMLLimitError(f"yaml: exceeded max depth of {max_depth}")
        elif isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            if done.merges and isinstance(done.value, dict):
                _merge(done.value, done.merges)
            if done.anchor:
                anchors[done.anchor] = (done.value, decoded - done.before)
            place(done.value)
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise ValueError("expected exactly one document")
    if documents != 1:
        raise ValueError("expected exactly one document")
    return result


_MERGE_KEY = object()


def _merge(mapping: dict[str, Any], merges: list[Any]) -> None:
    """YAML merge keys (``<<: *base`` or ``<<: [*a, *b]``): keys the mapping lacks, earlier first."""
    for merge in merges:
        sources = merge if isinstance(merge, list) else [merge]
        for source in sources:
            if not isinstance(source, dict):
                raise yaml.constructor.ConstructorError(
                    None, None, "expected a mapping or list of mappings for merging", None
                )
            for key, value in source.items():
                mapping.setdefault(key, value)


async def load_off_loop(raw: bytes) -> Any:
    """``load`` in the YAML decode threads (at most ``YAML_DECODE_WORKERS`` bodies at once)."""
    return await asyncio.get_running_loop().run_in_executor(_executor, load, raw)
