"""Create (or merge-patch) the chart's default ClusterArtifactTypes once ARC's API is served.

Run by the chart's post-install/post-upgrade hook Job in ARC's image (standard library only, no shell):

    python3 apply-clusterartifacttypes.py OBJECTS.json

A hook, because ARC's API server serves the kind itself and is not Available yet while Helm creates
the release. In a pod it talks to kube-apiserver as its service account (``KUBERNETES_SERVICE_HOST``/
``_PORT``, the mounted token and CA); ``ARC_KUBE_SERVER``, ``ARC_TOKEN_FILE`` and ``ARC_CA_FILE`` override
them (tests). It waits up to ``ARC_WAIT_SECONDS`` for ``/apis/arc.opendefense.cloud/v1alpha1`` to answer
200, then creates each object; an object that exists (409) is merge-patched to the chart's labels and spec.
Exits 1 with the server's Status message on any other answer, or when the time is up.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from typing import Any

GROUP_VERSION = "/apis/arc.opendefense.cloud/v1alpha1"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
RETRIABLE = {429, 500, 502, 503, 504}


class Client:
    def __init__(self) -> None:
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:
            host = f"[{host}]"
        self.server = os.environ.get("ARC_KUBE_SERVER", f"https://{host}:{port}")
        self.token_file = os.environ.get("ARC_TOKEN_FILE", f"{SA_DIR}/token")
        self.context = ssl.create_default_context(cafile=os.environ.get("ARC_CA_FILE", f"{SA_DIR}/ca.crt"))

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> int:
        """The response's status code; raises ``StatusError`` with the Status message for errors."""
        with open(self.token_file) as f:  # re-read: projected tokens rotate
            token = f.read().strip()
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=15) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            raise StatusError(err.code, _message(err.read())) from None


class StatusError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _message(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("message", ""))
    except ValueError:
        return raw.decode(errors="replace")[:200]


def log(message: str) -> None:
    print(f"apply-clusterartifacttypes: {message}", flush=True)


def until_served(client: Client, deadline: float) -> None:
    last = ""
    while True:
        try:
            client.request("GET", GROUP_VERSION)
            return
        except (StatusError, OSError) as err:
            if str(err) != last:
                log(f"waiting for {GROUP_VERSION}: {err}")
                last = str(err)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{GROUP_VERSION} not served in time (last answer: {last})")
        time.sleep(2)


def apply(client: Client, obj: dict[str, Any], deadline: float) -> str:
    name = obj["metadata"]["name"]
    collection = f"{GROUP_VERSION}/clusterartifacttypes"
    while True:
        try:
            try:
                client.request("POST", collection, obj)
                return f"clusterartifacttype/{name} created"
            except StatusError as err:
                if err.code != 409:
                    raise
            patch = {"metadata": {"labels": obj["metadata"].get("labels", {})}, "spec": obj["spec"]}
            client.request("PATCH", f"{collection}/{name}", patch, "application/merge-patch+json")
            return f"clusterartifacttype/{name} configured"
        except StatusError as err:
            if err.code not in RETRIABLE or time.monotonic() > deadline:
                raise
            log(f"clusterartifacttype/{name}: {err}; retrying")
            time.sleep(2)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        objects: list[dict[str, Any]] = json.load(f)
    deadline = time.monotonic() + float(os.environ.get("ARC_WAIT_SECONDS", "300"))
    client = Client()
    try:
        until_served(client, deadline)
        for obj in objects:
            log(apply(client, obj, deadline))
    except (StatusError, OSError, TimeoutError) as err:
        log(f"failed: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
