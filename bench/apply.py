"""CPU per write of ARC's Store in process (in-memory storage): update, merge-patch, server-side apply.

    .venv/bin/python -m bench.apply [--objects 3000] [--rounds 3]

No HTTP and no etcd: what is left is exactly what the write path of the Store costs (decoding, the field
manager, strategy and validation, encoding), so the ratio apply/update isolates what server-side apply adds.
Objects are bench/compare's Orders (3 artifacts); every write changes ``spec.queueName``. "apply (first)"
is a forced apply by a new manager (it takes the fields over), "apply (again)" the same manager applying
again with one field changed (the GitOps steady state). Reports the minimum over ``--rounds`` of the CPU
seconds (``time.process_time``) per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from api.resources import RESOURCES
from apiserver.registry.apply import apply
from apiserver.registry.store import RequestScope, Store
from apiserver.storage.keys import KeyLayout
from apiserver.storage.memory import MemoryStorage
from bench.compare import ARC_GROUP, order

ORDER = next(r for r in RESOURCES if r.kind == "Order")


async def measure(objects: int) -> dict[str, float]:
    storage = MemoryStorage()
    await storage.start()
    store = Store(ORDER, storage, KeyLayout("/registry"))
    names = [f"o{i}" for i in range(objects)]
    for name in names:
        await store.create(RequestScope(namespace="ns", user_agent="bench"), order(name, "ns", ARC_GROUP))
    current = {name: await store.get("ns", name) for name in names}

    async def update(i: int, name: str) -> None:
        obj = current[name]
        obj["spec"]["queueName"] = f"u-{i}"
        await store.update(RequestScope(namespace="ns", user_agent="bench"), name, obj)

    async def patch(i: int, name: str) -> None:
        scope = RequestScope(namespace="ns", user_agent="bench")
        await store.patch(scope, name, "application/merge-patch+json", {"spec": {"queueName": f"p-{i}"}})

    def applier(prefix: str) -> Callable[[int, str], Awaitable[None]]:
        async def run(i: int, name: str) -> None:
            config = order(name, "ns", ARC_GROUP)
            config["spec"]["queueName"] = f"{prefix}-{i}"
            scope = RequestScope(namespace="ns", field_manager="gitops")
            await apply(store, scope, name, config, subresource=None, force=True)

        return run

    out: dict[str, float] = {}
    for label, op in (
        ("update", update),
        ("merge-patch", patch),
        ("apply (first)", applier("a")),
        ("apply (again)", applier("b")),
    ):
        started = time.process_time()
        for i, name in enumerate(names):
            await op(i, name)
        out[label] = (time.process_time() - started) / objects
    await storage.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for label, seconds in asyncio.run(measure(args.objects)).items():
            best[label] = min(seconds, best.get(label, seconds))
    report = {label: round(seconds * 1000, 3) for label, seconds in best.items()}
    report["apply (again) / update"] = round(best["apply (again)"] / best["update"], 2)
    print(json.dumps({"cpu_ms_per_op": report}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
