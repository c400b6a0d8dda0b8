"""A bounded load of creates, updates and reads that remembers every acknowledged write (issue 14's faults).

Each worker owns its objects (``w<k>-<i>``), so no two writers race on one object and the outcome of every
write is known or, when the answer was lost (a 5xx, a dropped connection), one of a known set. The
``Ledger`` then says what must be stored: every acknowledged create, at least the resourceVersion of the
last acknowledged write, and the marker of that write or of a later unacknowledged one. Reads of objects
that were acknowledged must never answer 404 (storage trouble is a 5xx), and never go back in time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

MARKER = "fault.arc.opendefense.cloud/marker"
API_VERSION = "arc.opendefense.cloud/v1alpha1"


def order(name: str, namespace: str, marker: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Order",
        "metadata": {"name": name, "namespace": namespace, "annotations": {MARKER: marker}},
        "spec": {
            "defaults": {"srcRef": {"name": "src"}, "dstRef": {"name": "dst"}},
            "artifacts": [{"type": "oci", "spec": {"image": f"library/{name}:1"}}],
        },
    }


@dataclass
class Ledger:
    """What the clients were told, and what may have happened when they were told nothing."""

    acked: dict[str, tuple[int, str]] = field(default_factory=dict)
    """name -> (resourceVersion, marker) of the last acknowledged write."""
    maybe: dict[str, set[str]] = field(default_factory=dict)
    """name -> markers of writes after the last acknowledgement whose outcome is unknown."""
    statuses: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    acks: int = 0

    def ack(self, name: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.acked[name] = (int(meta["resourceVersion"]), meta["annotations"][MARKER])
        self.maybe.pop(name, None)
        self.acks += 1

    def unknown(self, name: str, marker: str) -> None:
        self.maybe.setdefault(name, set()).add(marker)

    def check_stored(self, stored: dict[str, dict[str, Any]]) -> list[str]:
        """Every acknowledged write is there (or a later one whose answer was lost)."""
        problems = []
        for name, (rv, marker) in sorted(self.acked.items()):
            obj = stored.get(name)
            if obj is None:
                problems.append(f"{name}: acknowledged (rv {rv}) but not stored")
                continue
            got_rv = int(obj["metadata"]["resourceVersion"])
            got = (obj["metadata"].get("annotations") or {}).get(MARKER)
            allowed = {marker, *self.maybe.get(name, ())}
            if got_rv < rv:
                problems.append(f"{name}: stored rv {got_rv} older than the acknowledged {rv}")
            if got not in allowed:
                problems.append(f"{name}: stored marker {got!r}, acknowledged {marker!r} (maybe {allowed})")
        return problems


class Load:
    """``workers`` coroutines of creates (until each owns ``objects``), merge-patch updates and GETs."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        namespace: str,
        ledger: Ledger,
        *,
        workers: int = 4,
        objects: int = 6,
        tag: str = "c0",
    ) -> None:
        self.session, self.base_url, self.namespace, self.ledger = session, base_url, namespace, ledger
        self.workers, self.objects, self.tag = workers, objects, tag
        self.collection = f"/apis/{API_VERSION}/namespaces/{namespace}/orders"
        self.stop = asyncio.Event()
        self.ops = 0
        self.answered: Counter[int] = Counter()
        self.counter = itertools.count()

    async def send(
        self, method: str, path: str, body: Any = None, content_type: str | None = None
    ) -> tuple[int, Any]:
        """The status and JSON body; 0 when no answer came (connection refused or dropped, timeout)."""
        headers = {"Content-Type": content_type or "application/json"} if body is not None else {}
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                data=orjson.dumps(body) if body is not None else None,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=15),
            ) as resp:
                raw = await resp.read()
                if resp.status >= 500:
                    await asyncio.sleep(0.05)  # storage is down: retry soon, not in a tight loop
                try:
                    return resp.status, orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    return resp.status, raw.decode(errors="replace")
        except (aiohttp.ClientError, TimeoutError, OSError):
            await asyncio.sleep(0.2)  # nobody listening (the API server is down): not a busy loop
            return 0, None

    def _answer(self, worker: int, verb: str, status: int) -> None:
        """Counts the answer; an operation that got no answer does not use up the worker's budget (the
        fault cycle bounds that time)."""
        self.ledger.statuses[f"{verb} {status}" if status else f"{verb} no answer"] += 1
        if status:
            self.answered[worker] += 1

    def _unexpected(self, what: str, status: int, body: Any) -> None:
        self.ledger.violations.append(f"{what}: {status} {str(body)[:300]}")

    async def worker(self, index: int, budget: int) -> None:
        owned: list[str] = sorted(n for n in self.ledger.acked if n.startswith(f"w{index}-"))
        pending: list[str] = []  # creates whose answer was lost: do they exist?
        names = (f"w{index}-{self.tag}-{i}" for i in itertools.count())
        step = 0
        while self.answered[index] < budget and not self.stop.is_set():
            step += 1
            self.ops += 1
            marker = f"{self.tag}-{next(self.counter)}"
            if pending:
                name = pending[0]
                status, body = await self.send("GET", f"{self.collection}/{name}")
                self._answer(index, "get-pending", status)
                if status == 200:
                    self.ledger.ack(name, body)
                    owned.append(pending.pop(0))
                elif status == 404:
                    self.ledger.maybe.pop(name, None)
                    pending.pop(0)
                continue
            if len(owned) < self.objects and (not owned or step % 6 == 0):  # creates among the updates
                name = next(names)
                status, body = await self.send("POST", self.collection, order(name, self.namespace, marker))
                self._answer(index, "create", status)
                if status == 201:
                    self.ledger.ack(name, body)
                    owned.append(name)
                elif status == 0 or status >= 500:
                    self.ledger.unknown(name, marker)
                    pending.append(name)
                else:
                    self._unexpected(f"create {name}", status, body)
                continue
            name = owned[step % len(owned)]
            path = f"{self.collection}/{name}"
            if step % 3 == 0:
                status, body = await self.send("GET", path)
                self._answer(index, "get", status)
                if status == 200:
                    rv = int(body["metadata"]["resourceVersion"])
                    if rv < self.ledger.acked[name][0]:
                        self._unexpected(f"get {name} went back to rv {rv}", status, self.ledger.acked[name])
                elif status == 404 or 0 < status < 500:
                    self._unexpected(f"get {name} (acknowledged)", status, body)
                continue
            image = {"type": "oci", "spec": {"image": f"library/{name}:{step}"}}
            patch = {"metadata": {"annotations": {MARKER: marker}}, "spec": {"artifacts": [image]}}
            status, body = await self.send("PATCH", path, patch, "application/merge-patch+json")
            self._answer(index, "update", status)
            if status == 200:
                self.ledger.ack(name, body)
            elif status == 0 or status >= 500:
                self.ledger.unknown(name, marker)
            else:  # 404 for an acknowledged object, or any other 4xx: the server lost or refused it
                self._unexpected(f"update {name} (acknowledged)", status, body)

    async def run(self, budget: int) -> None:
        await asyncio.gather(*(self.worker(i, budget) for i in range(self.workers)))

    async def stored(self) -> dict[str, dict[str, Any]]:
        status, body = await self.send("GET", self.collection)
        if status != 200:
            raise AssertionError(f"list after the fault: {status} {str(body)[:300]}")
        return {item["metadata"]["name"]: item for item in body["items"]}
