"""The Order's status summary: progress, phase, the Ready condition and the message (SPEC §4.1, §5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from api.arc.v1alpha1.types import Condition, OrderArtifactWorkflowStatus, OrderProgress

__all__ = [
    "FAILED",
    "FINISHED",
    "Summary",
    "summarize",
]

FAILED: Final = frozenset({"Failed", "Error"})
FINISHED: Final = frozenset({"Succeeded", "Failed", "Error"})


class Summary:
    def __init__(self, progress: OrderProgress, phase: str, ready: Condition) -> None:
        self.progress = progress
        self.phase = phase
        self.ready = ready


def summarize(entries: Mapping[str, OrderArtifactWorkflowStatus], generation: int | None) -> Summary:
    progress = OrderProgress(total=len(entries))
    for entry in entries.values():
        if entry.phase == "Running":
            progress.running += 1
        elif entry.phase == "Succeeded":
            progress.succeeded += 1
        elif entry.phase in FAILED:
            progress.failed += 1
        else:
            progress.pending += 1
    if progress.failed:
        phase = "Failed"
    elif progress.succeeded == progress.total:
        phase = "Succeeded"
    elif progress.running or progress.succeeded:
        phase = "Running"
    else:
        phase = "Pending"
    if phase == "Succeeded":
        ready = Condition(
            type="Ready",
            status="True",
            reason="Succeeded",
            message=f"all {progress.total} artifacts succeeded",
        )
    elif phase == "Failed":
        failed = sorted((e for e in entries.values() if e.phase in FAILED), key=lambda e: e.artifact_index)
        parts = [f"artifact #{e.artifact_index} ({e.name}): {e.message or e.phase}" for e in failed]
        ready = Condition(
            type="Ready",
            status="False",
            reason="ArtifactFailed",
            message=f"{len(failed)} of {progress.total} artifacts failed: " + "; ".join(parts),
        )
    else:
        ready = Condition(
            type="Ready",
            status="False",
            reason="Processing",
            message=f"{progress.succeeded}/{progress.total} artifacts succeeded",
        )
    ready.observed_generation = generation
    return Summary(progress, phase, ready)
