"""The installation's hash key (SPEC §4.1): the key of the HMAC over Secrets' data in artifact hashes.

Random, 32 bytes, generated once per installation and kept in a Secret in the controller manager's
namespace (`arc-system/arc-artifact-hash-key` by default), data key `key`. Every replica of the manager
reads it at start; the first one to find it missing creates it, and a replica that loses that race reads
the winner's (create is atomic, so all replicas end up with one key). The key itself never leaves this
module and `naming.secret_hash`: it is not logged, not put into any object but its own Secret, and its
`repr` is masked.

Rotating the key (deleting the Secret and restarting the managers) changes the hash of every artifact with
credentials, so those artifacts re-run once; docs/security.md says so.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass, field
from typing import Final

from controllers.kube import AlreadyExistsError, KubeClient, NotFoundError
from controllers.kube.resources import SECRETS

__all__ = ["DATA_KEY", "DEFAULT_SECRET", "KEY_BYTES", "HashKey", "load_or_create_hash_key"]

logger = logging.getLogger(__name__)

DEFAULT_SECRET: Final = "arc-system/arc-artifact-hash-key"
DATA_KEY: Final = "key"
KEY_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class HashKey:
    """The key bytes; `repr`/`str` never show them (a key in a log line or traceback would undo it)."""

    value: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.value) < 16:
            raise ValueError("the artifact hash key must have at least 16 bytes")

    def __str__(self) -> str:
        return "HashKey(***)"


def _decode(secret: dict[str, object], where: str) -> HashKey:
    data = secret.get("data")
    raw = data.get(DATA_KEY) if isinstance(data, dict) else None
    if not isinstance(raw, str):
        raise ValueError(f"secret {where} has no data key {DATA_KEY!r}")
    return HashKey(base64.b64decode(raw, validate=True))


async def load_or_create_hash_key(client: KubeClient, secret: str = DEFAULT_SECRET) -> HashKey:
    """The key from the Secret `namespace/name`, created with 32 random bytes when it does not exist."""
    namespace, _, name = secret.partition("/")
    if not namespace or not name:
        raise ValueError(f"hash key secret must be namespace/name, not {secret!r}")
    try:
        return _decode(await client.get(SECRETS, namespace, name), secret)
    except NotFoundError:
        pass
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "arc"},
            "annotations": {
                "arc.opendefense.cloud/description": "key of the HMAC over Secrets' data in ArtifactWorkflow "
                "names; deleting it re-runs every artifact with credentials"
            },
        },
        "type": "Opaque",
        "immutable": True,
        "data": {DATA_KEY: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()},
    }
    try:
        created = await client.create(SECRETS, namespace, body)
    except AlreadyExistsError:
        created = await client.get(SECRETS, namespace, name)  # another replica won the race
    else:
        logger.info("artifact hash key created", extra={"namespace": namespace, "secret": name})
    return _decode(created, secret)
