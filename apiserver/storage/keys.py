"""Key layout of SPEC §3: ``<prefix>/<group>/<plural>/<namespace>/<name>`` (no namespace when cluster-scoped).

List and watch prefixes end with ``/`` so that namespace ``a`` never matches namespace ``ab``.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "arc.opendefense.cloud"
DEFAULT_PREFIX = "/registry"


def _check_segment(kind: str, segment: str) -> None:
    if not segment or "/" in segment or segment in {".", ".."}:
        raise ValueError(f"invalid {kind} for a storage key: {segment!r}")


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Builds storage keys; ``prefix`` is configurable (tests use a unique one each)."""

    prefix: str = DEFAULT_PREFIX
    group: str = GROUP

    @property
    def group_prefix(self) -> str:
        """``/registry/arc.opendefense.cloud/``: every ARC resource lives below it."""
        return f"{self.prefix.rstrip('/')}/{self.group}/"

    def resource_prefix(self, plural: str) -> str:
        """All objects of a resource (all namespaces, or the cluster-scoped ones)."""
        _check_segment("resource", plural)
        return f"{self.group_prefix}{plural}/"

    def namespace_prefix(self, plural: str, namespace: str) -> str:
        """The objects of a namespaced resource in one namespace."""
        _check_segment("namespace", namespace)
        return f"{self.resource_prefix(plural)}{namespace}/"

    def object_key(self, plural: str, name: str, namespace: str | None = None) -> str:
        """One object's key; ``namespace`` is ``None`` for cluster-scoped resources."""
        _check_segment("name", name)
        if namespace is None:
            return f"{self.resource_prefix(plural)}{name}"
        return f"{self.namespace_prefix(plural, namespace)}{name}"

    def shared_watch_prefix(self, prefix: str) -> str:
        """The resource prefix a watch on ``prefix`` shares (one etcd watch per resource).

        Prefixes outside this layout's group are their own shared prefix.
        """
        group_prefix = self.group_prefix
        if prefix.startswith(group_prefix):
            end = prefix.find("/", len(group_prefix))
            if end >= 0:
                return prefix[: end + 1]
        return prefix

    def resource_label(self, key: str) -> str:
        """``<plural>.<group>`` for a key of this layout (kube's ``type`` metric label), else ``other``."""
        group_prefix = self.group_prefix
        if key.startswith(group_prefix):
            end = key.find("/", len(group_prefix))
            plural = key[len(group_prefix) : end] if end >= 0 else key[len(group_prefix) :]
            if plural:
                return f"{plural}.{self.group}"
        return "other"
