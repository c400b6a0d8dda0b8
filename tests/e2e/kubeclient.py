"""HTTPS to kube-apiserver as the cluster admin (client certificate), optionally impersonating a user:
the raw status and Status body of each answer, which kubectl would turn into prose."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any

from hack.cluster import LocalCluster


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class KubeClient:
    """HTTPS to kube-apiserver as the cluster admin, optionally impersonating a user."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.host, self.port = "127.0.0.1", cluster.ports.kube_apiserver
        self.context = ssl.create_default_context(cafile=str(cluster.pki_dir / "ca.crt"))
        self.context.load_cert_chain(str(cluster.pki_dir / "admin.crt"), str(cluster.pki_dir / "admin.key"))

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        user: str | None = None,
        stream: bool = False,
    ) -> Answer:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=30)
        headers = {"Accept": "application/json"}
        if user is not None:
            headers["Impersonate-User"] = user
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            if stream and resp.status == 200:
                return Answer(200, None)  # a watch: the headers are the answer
            raw = resp.read()
            try:
                return Answer(resp.status, json.loads(raw) if raw else None)
            except ValueError:
                return Answer(resp.status, raw.decode(errors="replace"))
        finally:
            conn.close()
