"""ResourceQuota for ARC's kinds: object-count quota (``count/<plural>.<group>``) enforced at create.

kube-apiserver's ResourceQuota admission never sees ARC's objects (the aggregator proxies their requests to
ARC untouched), while kube-controller-manager's quota controller does count them into ``status.used``. So
ARC admits creates itself, with kube's semantics and kube's answer:

- every ResourceQuota of the namespace whose ``spec.hard`` names ``count/<plural>.arc.opendefense.cloud``
  constrains creates of that resource (quotas with ``scopes``/``scopeSelector`` select pods by priority,
  termination or best-effort class and never match ARC's kinds, as kube's generic evaluator does);
- usage is ARC's own count of the namespace's objects (authoritative: etcd holds them), not the quota
  controller's ``status.used``, which lags;
- over the limit, the create is refused with kube's 403: ``orders.arc.opendefense.cloud "x" is forbidden:
  exceeded quota: q, requested: count/orders.arc.opendefense.cloud=1, used: …=5, limited: …=5``;
- creates of one resource in one namespace that a quota constrains are serialized (count, then write,
  under one lock), so concurrent creates cannot overshoot it, as kube serializes them through the quota's
  resourceVersion. (One API server process; replicas each hold their own lock.)

Quotas come from an informer on kube-apiserver's ``/api/v1/resourcequotas`` (delegated mode only).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from api.resources import ResourceInfo
from apiserver import errors

Counter = Callable[[ResourceInfo, str], Awaitable[int]]
"""How many objects of a resource a namespace holds."""

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[KMGTPE]i|[kMGTPE]|m|)$")
_SUFFIXES: dict[str, Decimal | int] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity (``5``, ``1k``, ``2Ki``, ``1e3``) as a number; None when it is not one."""
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        return None
    number, suffix = match.groups()
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number + suffix)
        return Decimal(number) * Decimal(_SUFFIXES[suffix])
    except (InvalidOperation, KeyError):
        return None


def _format(value: Decimal) -> str:
    return str(value.to_integral_value()) if value == value.to_integral_value() else str(value)


def count_resource_name(info: ResourceInfo) -> str:
    """``count/orders.arc.opendefense.cloud``."""
    return f"count/{info.plural}.{info.group}"


class ResourceQuotaGate:
    """Admits creates against the namespace's object-count quotas (see the module docstring)."""

    def __init__(self, quotas: Callable[[], Iterable[Mapping[str, Any]]], count: Counter) -> None:
        self._quotas = quotas
        self._count = count
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def constraining(self, info: ResourceInfo, namespace: str) -> list[tuple[str, Decimal]]:
        """``(quota name, hard limit)`` of the namespace's quotas on ``count/<resource>``, by name."""
        resource_name = count_resource_name(info)
        found: list[tuple[str, Decimal]] = []
        for quota in self._quotas():
            meta = quota.get("metadata") or {}
            spec = quota.get("spec") or {}
            if meta.get("namespace") != namespace or spec.get("scopes") or spec.get("scopeSelector"):
                continue
            hard = (spec.get("hard") or {}).get(resource_name)
            limit = parse_quantity(hard) if hard is not None else None
            if limit is not None:
                found.append((str(meta.get("name") or ""), limit))
        return sorted(found)

    @contextlib.asynccontextmanager
    async def create(self, info: ResourceInfo, namespace: str | None, name: str) -> AsyncIterator[None]:
        """Hold the create of one object: raises kube's 403 when a quota is exhausted, else the body of
        the ``async with`` (the write) runs before the next create of the resource in the namespace."""
        if not info.namespaced or not namespace:
            yield
            return
        constraining = self.constraining(info, namespace)
        if not constraining:
            yield
            return
        # One lock per (namespace, resource) with a quota, kept: a few per namespace at most.
        lock = self._locks.setdefault((namespace, info.plural), asyncio.Lock())
        async with lock:
            used = Decimal(await self._count(info, namespace))
            resource_name = count_resource_name(info)
            for quota_name, limit in constraining:
                if used + 1 > limit:
                    raise errors.forbidden(
                        info.group_resource,
                        name,
                        f"exceeded quota: {quota_name}, requested: {resource_name}=1, "
                        f"used: {resource_name}={_format(used)}, "
                        f"limited: {resource_name}={_format(limit)}",
                    )
            yield
