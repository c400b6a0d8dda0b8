"""What finished ArtifactWorkflows tell an SRE: how many, how they ended, how long they ran.

- `arc_artifactworkflow_completions_total{namespace,artifact_type,result}`: counted once per transition
  into a finished phase, after the status write that records it succeeded (a write lost to a conflict is
  retried and counted then, not twice); `result` is `succeeded`, `failed` or `error`.
- `arc_artifactworkflow_duration_seconds{artifact_type,result}`: the Workflow's own start to finish (Argo's
  times), buckets sized for transfers (seconds to hours). No namespace or Order label on the histogram:
  every label value multiplies its 15 series.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

from api.resources import parse_rfc3339

__all__ = ["COMPLETIONS", "DURATION", "record_completion"]

COMPLETIONS: Final = Counter(
    "arc_artifactworkflow_completions_total",
    "ArtifactWorkflows that reached a finished phase, by namespace, artifact type and result.",
    ["namespace", "artifact_type", "result"],
)
DURATION: Final = Histogram(
    "arc_artifactworkflow_duration_seconds",
    "Run time of finished ArtifactWorkflows (their Workflow's startedAt to finishedAt), by artifact type"
    " and result.",
    ["artifact_type", "result"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800),
)


def record_completion(
    namespace: str, artifact_type: str, phase: str, started: str | None, finished: str | None
) -> None:
    """Count one ArtifactWorkflow that just finished in `phase`, and observe its duration when both times
    are known and in order."""
    result = phase.lower()
    COMPLETIONS.labels(namespace, artifact_type, result).inc()
    start = parse_rfc3339(started) if started else None
    end = parse_rfc3339(finished) if finished else None
    if start is not None and end is not None and end >= start:
        DURATION.labels(artifact_type, result).observe((end - start).total_seconds())
