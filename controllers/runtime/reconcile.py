"""The reconcile contract (controller-runtime's `reconcile.Reconciler`).

`reconcile(request) -> Result` is level-based: it reads the current state of the object named by the
request and makes the world match. What happens next is said by the outcome:
- `Result()`: done; the key is forgotten by the rate limiter.
- `Result(requeue_after=s)`: run again in `s` seconds (polling); backoff is reset.
- `Result(requeue=True)`: run again with per-key exponential backoff.
- raising `TerminalError`: stop retrying (bad user input; the reconciler has said so in status).
- raising anything else: retry with per-key exponential backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Reconciler", "Request", "Result", "TerminalError"]


@dataclass(frozen=True, slots=True, order=True)
class Request:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Result:
    requeue_after: float = 0.0
    requeue: bool = False


class TerminalError(Exception):
    """A reconcile error that retrying will not fix."""


class Reconciler(Protocol):
    async def reconcile(self, request: Request) -> Result: ...
