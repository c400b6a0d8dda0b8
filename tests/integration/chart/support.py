"""Running helm (and its plugins) on deploy/charts/arc in an isolated helm home, rendering and splitting."""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from hack.binaries import REPO_ROOT, binary_path
from hack.process import free_port

CHART_DIR = REPO_ROOT / "deploy" / "charts" / "arc"
CI_VALUES = sorted((CHART_DIR / "ci").glob("*-values.yaml"))


def helm_env(home: Path) -> dict[str, str]:
    """helm's config, cache, data and plugins under ``home`` (never the user's ~/.config/helm)."""
    return {
        **os.environ,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_PLUGINS": str(home / "plugins"),
    }


def helm(
    *args: str,
    home: Path,
    check: bool = True,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(binary_path("helm")), *args],
        env={**helm_env(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout}"
        )
    return proc


def documents(manifest: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def render(
    home: Path,
    *,
    values: Sequence[Path] = (),
    sets: Sequence[str] = (),
    release: str = "arc",
    namespace: str = "arc-system",
) -> list[dict[str, Any]]:
    """``helm template`` (hooks included) as a list of objects."""
    args = ["template", release, str(CHART_DIR), "--namespace", namespace]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return documents(helm(*args, home=home).stdout)


class EtcdMember:
    """Member 0 of the chart's etcd, run on loopback from the StatefulSet's own command line and the chart's
    certificates (rendered objects ``objects``). What differs between a pod and this host is replaced by
    :meth:`localize`: the pod's name, its network (0.0.0.0 and the Services' names → loopback ports) and the
    mounted volumes (→ directories under ``work``)."""

    def __init__(self, objects: list[dict[str, Any]], work: Path, *, namespace: str = "arc-system") -> None:
        self.objects = objects
        self.work = work
        self.namespace = namespace
        self.data = work / "data"
        self.client_port, self.peer_port, self.metrics_port = free_port(), free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None
        secrets = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "Secret"}
        for secret in ("arc-etcd-server", "arc-etcd-client"):
            (work / secret).mkdir(parents=True, exist_ok=True)
            for key, value in secrets[secret].items():
                (work / secret / key).write_bytes(base64.b64decode(value))
        statefulset = next(o for o in objects if o["kind"] == "StatefulSet")
        self.container = statefulset["spec"]["template"]["spec"]["containers"][0]
        self.args = [self.localize(a, tls="arc-etcd-server") for a in self.container["args"]]
        self.probes = {c: self.container[f"{c}Probe"]["httpGet"]["path"] for c in ("liveness", "readiness")}

    @property
    def name(self) -> str:
        return "arc-etcd-0"

    def localize(self, value: str, *, tls: str = "arc-etcd-client") -> str:
        headless = f"arc-etcd-headless.{self.namespace}.svc"
        for old, new in {
            "$(POD_NAME)": self.name,
            "https://0.0.0.0:2379": f"https://127.0.0.1:{self.client_port}",
            "https://0.0.0.0:2380": f"https://127.0.0.1:{self.peer_port}",
            "http://0.0.0.0:2381": f"http://127.0.0.1:{self.metrics_port}",
            f"https://{self.name}.{headless}:2379": f"https://127.0.0.1:{self.client_port}",
            f"https://arc-etcd.{self.namespace}.svc:2379": f"https://127.0.0.1:{self.client_port}",
            "/etc/etcd/tls": str(self.work / tls),
            "/var/lib/etcd": str(self.work),
            "/snapshots": str(self.work / "snapshots"),
        }.items():
            value = value.replace(old, new)
        return value

    def start(self) -> None:
        assert self.container["command"] == ["etcd"]
        log = (self.work / "etcd.log").open("ab")
        self.process = subprocess.Popen([str(binary_path("etcd")), *self.args], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, (self.work / "etcd.log").read_text()
            try:
                ready = f"http://127.0.0.1:{self.metrics_port}{self.probes['readiness']}"
                with urllib.request.urlopen(ready, timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def ssl_context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        client = self.work / "arc-etcd-client"
        context = ssl.create_default_context(cafile=str(client / "ca.crt"))
        if client_cert:
            context.load_cert_chain(client / "tls.crt", client / "tls.key")
        return context

    def kv(self, path: str, body: dict[str, str], *, client_cert: bool = True) -> Any:
        """etcd's JSON gateway on the client port (``/v3/kv/put``, ``/v3/kv/range``)."""
        context = self.ssl_context(client_cert=client_cert)
        connection = http.client.HTTPSConnection("127.0.0.1", self.client_port, context=context, timeout=5)
        try:
            connection.request(
                "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            assert response.status == 200, response.read()
            return json.loads(response.read())
        finally:
            connection.close()

    def put(self, key: str, value: str) -> None:
        self.kv("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def get(self, key: str) -> str | None:
        kvs = self.kv("/v3/kv/range", {"key": _b64(key)}).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
