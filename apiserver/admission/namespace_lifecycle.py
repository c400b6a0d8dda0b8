"""NamespaceLifecycle: no new objects in namespaces that do not exist or are being terminated.

As kube-apiserver's plugin: a namespace informer answers most requests; a namespace missing from it is
looked up live (it may have just been created) before the request is rejected with ``namespaces "x" not
found``; a terminating namespace rejects creates with 403 Forbidden.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from api.resources import GroupResource
from apiserver import errors
from apiserver.delegation.informer import Informer
from apiserver.delegation.kubeclient import KubeApiError, KubeClient
from apiserver.handlers import AdmissionAttributes

NAMESPACES = GroupResource("", "namespaces")


class NamespaceLifecycle:
    def __init__(self, client: KubeClient, informer: Informer) -> None:
        self.client = client
        self.informer = informer

    async def _namespace(self, name: str) -> dict[str, Any] | None:
        cached = self.informer.items.get(name)
        if cached is not None:
            return cached
        try:
            # the name comes from the request's URL: escaped, it stays one path segment (client-go does so)
            found: dict[str, Any] = await self.client.get(f"/api/v1/namespaces/{quote(name, safe='')}")
        except KubeApiError as err:
            if err.status == 404:
                return None
            raise errors.internal_error("the namespace could not be looked up") from None
        return found

    async def admit(self, attributes: AdmissionAttributes) -> None:
        if attributes.operation != "CREATE" or not attributes.info.namespaced or not attributes.namespace:
            return
        namespace = await self._namespace(attributes.namespace)
        if namespace is None:
            raise errors.not_found(NAMESPACES, attributes.namespace)
        phase = (namespace.get("status") or {}).get("phase")
        if phase == "Terminating" or (namespace.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.forbidden(
                attributes.info.group_resource,
                attributes.name,
                f"unable to create new content in namespace {attributes.namespace} "
                "because it is being terminated",
            )
