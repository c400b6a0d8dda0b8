"""SecretReference: an Endpoint may only point at a Secret that the user writing it may read.

An Endpoint's ``spec.secretRef`` makes ARC's workflows send that Secret's credentials to the Endpoint's
``remoteURL``. Without this check, a tenant allowed to write Endpoints but not to read Secrets could name
a neighbour's registry Secret and a host of their own, and receive the password. kube-apiserver guards such
references the same way (a SubjectAccessReview for the *requesting* user, as RBAC's escalation check and
the ``use`` verbs do): on create, and on an update that sets or changes ``secretRef`` — or changes
``remoteURL`` while a Secret is referenced, since that sends the same credentials somewhere else — the
writer must be allowed ``get`` on ``secrets/<name>`` in the Endpoint's namespace, else 403 Forbidden naming
the field. Answers are cached like the request authorizer's (10 s).

A PATCH's result is not known before the store applies it, so the plugin authorizes the names the patch
document sets and adds a final check that runs inside the read-modify-write on the object as it will be
stored: if the stored reference differs from what was authorized (a ``copy``/``move`` into ``secretRef``,
or a concurrent write), the request is refused there, before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from api.resources import ENDPOINT, GroupResource
from apiserver import errors
from apiserver.auth import UserInfo
from apiserver.handlers import AdmissionAttributes
from apiserver.registry.store import Store

__all__ = ["SecretReference"]

SECRET_FIELD = "spec.secretRef.name"
_ENDPOINTS = GroupResource(ENDPOINT.group, ENDPOINT.plural)


class ResourceAuthorizer(Protocol):
    async def allowed(self, user: UserInfo, resource_attributes: dict[str, str]) -> tuple[bool, str]: ...


def _reference(obj: Mapping[str, Any] | None) -> tuple[str, str]:
    """(secretRef.name, remoteURL) of a wire-form Endpoint; "" for what is absent."""
    spec = (obj or {}).get("spec")
    if not isinstance(spec, Mapping):
        return "", ""
    ref = spec.get("secretRef")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    url = spec.get("remoteURL")
    return (name if isinstance(name, str) else ""), (url if isinstance(url, str) else "")


def _needs_check(new: tuple[str, str], old: tuple[str, str] | None) -> bool:
    secret, url = new
    return bool(secret) and (old is None or old[0] != secret or old[1] != url)


def _patched_names(patch_type: str, doc: Any) -> set[str]:
    """Secret names a patch document sets by value (merge/apply: the object; JSON patch: add/replace)."""
    names: set[str] = set()
    if isinstance(doc, Mapping):
        names.add(_reference(doc)[0])
    elif isinstance(doc, list):
        for op in doc:
            if not isinstance(op, Mapping) or op.get("op") not in ("add", "replace"):
                continue
            path, value = op.get("path"), op.get("value")
            if path == "/spec/secretRef/name" and isinstance(value, str):
                names.add(value)
            elif path == "/spec/secretRef" and isinstance(value, Mapping):
                names.add(_reference({"spec": {"secretRef": value}})[0])
            elif path == "/spec":
                names.add(_reference({"spec": value})[0])
            elif path == "":
                names.add(_reference(value)[0])
    names.discard("")
    return names


def _touches_remote_url(patch_type: str, doc: Any) -> bool:
    if isinstance(doc, Mapping):
        spec = doc.get("spec")
        return isinstance(spec, Mapping) and "remoteURL" in spec
    if isinstance(doc, list):
        return any(
            isinstance(op, Mapping) and op.get("path") in ("", "/spec", "/spec/remoteURL") for op in doc
        )
    return True


class SecretReference:
    def __init__(self, authorizer: ResourceAuthorizer, endpoints: Store) -> None:
        self.authorizer = authorizer
        self.endpoints = endpoints

    async def _authorize(self, attributes: AdmissionAttributes, user: UserInfo, secret: str) -> None:
        namespace = attributes.namespace or ""
        allowed, reason = await self.authorizer.allowed(
            user,
            {
                "namespace": namespace,
                "verb": "get",
                "group": "",
                "version": "v1",
                "resource": "secrets",
                "name": secret,
            },
        )
        if not allowed:
            message = (
                f'{SECRET_FIELD}: User "{user.name}" cannot get resource "secrets" in API group "" '
                f'in the namespace "{namespace}" (the Endpoint would send Secret "{secret}" to its remoteURL)'
            )
            if reason:
                message += f": {reason}"
            raise errors.forbidden(_ENDPOINTS, attributes.name, message)

    async def _stored(self, attributes: AdmissionAttributes) -> tuple[str, str] | None:
        try:
            return _reference(await self.endpoints.get(attributes.namespace, attributes.name))
        except errors.StatusError:
            return None  # missing (the store answers the update) or unreadable: the final check still runs

    async def admit(self, attributes: AdmissionAttributes) -> None:
        if attributes.info.plural != ENDPOINT.plural or attributes.info.group != ENDPOINT.group:
            return
        if attributes.subresource or attributes.operation not in ("CREATE", "UPDATE"):
            return
        user = attributes.user
        if user is None:  # an internal write (no request): nothing to authorize
            return
        if attributes.operation == "CREATE":
            new = _reference(attributes.obj)
            if _needs_check(new, None):
                await self._authorize(attributes, user, new[0])
            return
        old = await self._stored(attributes)
        if attributes.obj is not None:  # PUT: the body is the new object
            new = _reference(attributes.obj)
            candidates = {new[0]} if _needs_check(new, old) else set()
        elif attributes.patch is not None:
            candidates = _patched_names(*attributes.patch)
            if old is not None and old[0] and _touches_remote_url(*attributes.patch):
                candidates.add(old[0])  # the stored credentials would go to another host
        else:
            candidates = set()
        authorized: set[str] = set()
        for secret in sorted(candidates):
            await self._authorize(attributes, user, secret)
            authorized.add(secret)
        if attributes.scope is not None:
            name = attributes.name

            def final_check(new_wire: Mapping[str, Any], old_wire: Mapping[str, Any]) -> None:
                new_ref = _reference(new_wire)
                if _needs_check(new_ref, _reference(old_wire)) and new_ref[0] not in authorized:
                    raise errors.forbidden(
                        _ENDPOINTS,
                        name,
                        f"{SECRET_FIELD}: the Secret reference was not authorized for this request "
                        "(set secretRef.name by value, and retry)",
                    )

            attributes.scope.final_checks.append(final_check)
