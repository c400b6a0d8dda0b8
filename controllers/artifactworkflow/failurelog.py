"""The end of a failed step's container log, for the failure message (as the Go ARC shows it).

A failed ArtifactWorkflow's message names the failed step (`workflow.workflow_state`); this adds the last
lines of that step's `main` container log, read once through the Kubernetes API (`pods/log`, so it works
wherever kube-apiserver reaches the kubelet), when the ArtifactWorkflow turns Failed or Error:
- the pod is found by Argo's own naming (`GeneratePodName`: v2 `<workflow>-<template>-<fnv32a(node name)>`,
  v1 the node id, as the Workflow's `workflows.argoproj.io/pod-name-format` annotation says);
- at most `--failed-step-log-lines` lines (off by default: a kubelet must serve them; the chart asks for
  `TAIL_LINES`) and `LIMIT_BYTES` bytes are asked for, each line cut to `MAX_LINE` characters;
- secrets are masked: every value of the transfer's Secrets (decoded, base64 and the user:password and
  password of each dockerconfigjson entry), then anything that looks like a credential on a command line or
  in a header (`--creds x:y`, `Authorization: Bearer …`, `password=…`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["LIMIT_BYTES", "TAIL_LINES", "mask", "pod_name", "secret_values", "tail_message"]

TAIL_LINES: Final = 10
"""The chart's `--failed-step-log-lines`."""
LIMIT_BYTES: Final = 4096
MAX_LINE: Final = 240
MASK: Final = "******"
_MAX_PREFIX: Final = 253 - 10 - 1

_PATTERNS: Final = (
    re.compile(r"(?i)(authorization:\s*(?:basic|bearer)\s+)\S+"),
    re.compile(r"(?i)(--(?:src-|dest-)?(?:creds|password|registry-token)[= ])\S+"),
    re.compile(r"(?i)((?:password|passwd|token|secret)\s*[=:]\s*)\S+"),
)


def _fnv32a(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode():
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def pod_name(workflow: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    """The pod Argo created for `node` (workflow/util.GeneratePodName)."""
    meta = workflow.get("metadata") or {}
    name = str(meta.get("name") or "")
    if (meta.get("annotations") or {}).get("workflows.argoproj.io/pod-name-format") == "v1":
        return str(node.get("id") or "")
    node_name = str(node.get("name") or "")
    if node_name == name:
        return name
    template = str(node.get("templateName") or (node.get("templateRef") or {}).get("template") or "")
    prefix = f"{name}-{template}" if template else name
    return f"{prefix[:_MAX_PREFIX]}-{_fnv32a(node_name)}"


def secret_values(data: Mapping[str, str] | None) -> set[str]:
    """Every string of a Secret's `data` worth masking: values as stored (base64) and decoded, and in a
    dockerconfigjson each entry's `auth`, its decoded user:password and the password alone."""
    out: set[str] = set()
    for raw in (data or {}).values():
        out.add(raw)
        try:
            decoded = base64.b64decode(raw, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            continue
        out.add(decoded)
        try:
            auths = json.loads(decoded).get("auths") or {}
        except (ValueError, AttributeError):
            continue
        for entry in auths.values() if isinstance(auths, dict) else ():
            if not isinstance(entry, dict):
                continue
            for key in ("auth", "password", "identitytoken", "registrytoken"):
                if isinstance(entry.get(key), str):
                    out.add(entry[key])
            try:
                pair = base64.b64decode(str(entry.get("auth") or ""), validate=True).decode(
                    "utf-8", "replace"
                )
            except (binascii.Error, ValueError):
                continue
            out.add(pair)
            out.add(pair.partition(":")[2])
    return {v for v in out if len(v) >= 4}


def mask(text: str, secrets: Iterable[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def tail_message(message: str, log: str, secrets: Iterable[str], *, lines: int = TAIL_LINES) -> str:
    """`message`, then the step's last `lines` log lines (bounded, masked) on lines of their own."""
    kept = [line[:MAX_LINE] for line in log.splitlines()[-lines:] if line.strip()] if lines > 0 else []
    if not kept:
        return message
    tail = mask("\n".join(kept), secrets)
    return f"{message}; last log lines:\n{tail}"
