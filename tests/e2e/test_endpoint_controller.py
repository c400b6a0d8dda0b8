"""The Endpoint controller against the real control plane: docs/api.md's commands, then Endpoints that do
not work, each with READY and MESSAGE as `kubectl get endpoints.arc.opendefense.cloud` shows them, and an
Order on a broken Endpoint that says why.

The remotes are `docker-registry` processes on loopback (htpasswd; one with TLS of a private CA); the
manager runs as its service account (deploy/controllers/rbac.yaml) with probes limited to loopback hosts.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.cluster import LocalCluster
from hack.process import free_port
from tests.e2e.conftest import Kubectl
from tests.e2e.support import API_VERSION, artifact_type, eventually, manifest, unique
from tests.e2e.test_order_controller import ManagerProcess, manager_kubeconfig
from tests.integration.endpoint.support import TLSRegistry

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "mirror", "e2e-Pa55-never-in-status"


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TLSRegistry, TLSRegistry]]:
    plain = TLSRegistry(tmp_path_factory.mktemp("ep-registry"), USER, PASSWORD)
    tls = TLSRegistry(tmp_path_factory.mktemp("ep-registry-tls"), USER, PASSWORD, tls=True)
    plain.start()
    try:
        tls.start()
        try:
            yield plain, tls
        finally:
            tls.stop()
    finally:
        plain.stop()


@pytest.fixture(scope="module")
def endpoint_manager(
    local_cluster: LocalCluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagerProcess]:
    log = tmp_path_factory.mktemp("endpoint-manager") / "manager.log"
    manager = ManagerProcess(manager_kubeconfig(local_cluster, kubectl), log, lease="arc-endpoint-tests")
    manager.argv += ["--endpoint-controller", "--endpoint-probe-allowed-hosts=127.0.0.1,localhost"]
    manager.stop()
    manager.start()
    eventually(manager.ready, timeout=60, what=f"manager ready; log:\n{manager.logs()}")
    try:
        yield manager
    finally:
        manager.stop()


def doc_commands() -> str:
    section = (REPO / "docs" / "api.md").read_text().split("## Endpoints: do they work?", 1)[1]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)[0]


def rows(output: str) -> dict[str, list[str]]:
    lines = [line.split() for line in output.strip().splitlines()]
    assert lines[0][:8] == ["NAME", "TYPE", "URL", "USAGE", "SECRET", "READY", "AGE", "MESSAGE"], lines[0]
    return {line[0]: line for line in lines[1:]}


def ready_column(kubectl: Kubectl, ns: str, name: str) -> tuple[str, str]:
    row = rows(kubectl.run("-n", ns, "get", "endpoints.arc.opendefense.cloud"))[name]
    return row[5], " ".join(row[7:])


def dockerconfig(host: str, password: str) -> str:
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": auth}}})


def test_documented_commands_show_ready(
    registries: tuple[TLSRegistry, TLSRegistry], endpoint_manager: ManagerProcess, kubectl: Kubectl
) -> None:
    plain, _ = registries
    ns = unique("ep-doc")
    script = doc_commands().replace("team-a", ns)
    env = {**kubectl.env, "REGISTRY": f"127.0.0.1:{plain.port}", "PASSWORD": PASSWORD}
    try:
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"{proc.stderr}\n{endpoint_manager.logs()}"
        table = rows(proc.stdout.split("condition met", 1)[1])
        assert table["mirror"][5] == "True", table
        assert " ".join(table["mirror"][7:]) == f"http://127.0.0.1:{plain.port} accepted the credentials"
        ep = kubectl.json("-n", ns, "get", "endpoints.arc.opendefense.cloud", "mirror")
        assert {c["type"] for c in ep["status"]["conditions"]} == {"Reachable", "Authenticated", "Ready"}
        assert ep["status"]["observedGeneration"] == 1 and ep["status"]["lastProbeTime"]
        assert PASSWORD not in json.dumps(ep)
        eventually(
            lambda: endpoint_manager.metric("arc_endpoint_ready", namespace=ns, endpoint="mirror") == 1.0,
            timeout=30,
            what="arc_endpoint_ready 1",
        )
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def test_broken_endpoints_say_why_and_so_does_an_order_on_them(
    registries: tuple[TLSRegistry, TLSRegistry],
    endpoint_manager: ManagerProcess,
    kubectl: Kubectl,
    tmp_path: Path,
) -> None:
    plain, tls = registries
    assert tls.ca is not None
    ns = unique("ep-broken")
    kubectl.run("create", "namespace", ns)
    try:
        closed = free_port()
        cases = {
            # name: (remoteURL, registry host for the credentials, password, with the CA)
            "good": (f"http://127.0.0.1:{plain.port}", f"127.0.0.1:{plain.port}", PASSWORD, False),
            "wrong": (f"http://127.0.0.1:{plain.port}", f"127.0.0.1:{plain.port}", "not-it", False),
            "closed": (f"http://127.0.0.1:{closed}", f"127.0.0.1:{closed}", PASSWORD, False),
            "untrusted": (f"127.0.0.1:{tls.port}", f"127.0.0.1:{tls.port}", PASSWORD, False),
            "trusted": (f"127.0.0.1:{tls.port}", f"127.0.0.1:{tls.port}", PASSWORD, True),
        }
        for name, (remote, host, password, with_ca) in cases.items():
            data = {".dockerconfigjson": base64.b64encode(dockerconfig(host, password).encode()).decode()}
            if with_ca:
                data["ca.crt"] = base64.b64encode(tls.ca.cert_pem).decode()
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-creds", "namespace": ns},
                "data": data,
            }
            endpoint = {
                "apiVersion": API_VERSION,
                "kind": "Endpoint",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"type": "oci", "remoteURL": remote, "secretRef": {"name": f"{name}-creds"}},
            }
            kubectl.run(
                "apply",
                "-f",
                "-",
                stdin=manifest({"apiVersion": "v1", "kind": "List", "items": [secret, endpoint]}),
            )

        def all_probed() -> bool:
            return all(ready_column(kubectl, ns, n)[0] in ("True", "False") for n in cases)

        eventually(all_probed, timeout=60, what=f"every Endpoint probed; log:\n{endpoint_manager.logs()}")
        seen = {n: ready_column(kubectl, ns, n) for n in cases}
        assert seen["good"] == ("True", f"http://127.0.0.1:{plain.port} accepted the credentials")
        assert seen["wrong"] == (
            "False",
            f"http://127.0.0.1:{plain.port} rejected the credentials (401 Unauthorized)",
        )
        assert seen["closed"] == ("False", f"http://127.0.0.1:{closed} refused the connection")
        assert seen["untrusted"][0] == "False"
        assert seen["untrusted"][1].startswith(f"https://127.0.0.1:{tls.port}: certificate not trusted")
        assert seen["trusted"] == ("True", f"https://127.0.0.1:{tls.port} accepted the credentials")
        assert PASSWORD not in kubectl.run("-n", ns, "get", "endpoints.arc.opendefense.cloud", "-o", "yaml")

        # rotating the Secret to the right password makes "wrong" Ready (no edit of the Endpoint)
        fixed = base64.b64encode(dockerconfig(f"127.0.0.1:{plain.port}", PASSWORD).encode()).decode()
        kubectl.run(
            "-n",
            ns,
            "patch",
            "secret",
            "wrong-creds",
            "--type=merge",
            "-p",
            json.dumps({"data": {".dockerconfigjson": fixed}}),
        )
        eventually(
            lambda: ready_column(kubectl, ns, "wrong")[0] == "True",
            timeout=60,
            what="wrong Ready after rotation",
        )

        # an Order on a broken Endpoint says why (its artifact is created anyway)
        kubectl.run("apply", "-f", "-", stdin=manifest(artifact_type("oci", ns)))
        order = {
            "apiVersion": API_VERSION,
            "kind": "Order",
            "metadata": {"name": "mirror", "namespace": ns},
            "spec": {
                "defaults": {"srcRef": {"name": "closed"}, "dstRef": {"name": "good"}},
                "artifacts": [{"type": "oci", "spec": {"image": "library/alpine:3.20"}}],
            },
        }
        kubectl.run("apply", "-f", "-", stdin=manifest(order))
        note = f'endpoint "closed" is not Ready: http://127.0.0.1:{closed} refused the connection'

        def says_why() -> bool:
            entries = (kubectl.json("-n", ns, "get", "orders", "mirror").get("status") or {}).get(
                "artifactWorkflows"
            ) or {}
            return any(note in (e.get("message") or "") for e in entries.values())

        eventually(
            says_why,
            timeout=60,
            what=f"the Order's artifact names the broken Endpoint; log:\n{endpoint_manager.logs()}",
        )
        assert note in kubectl.run("-n", ns, "describe", "order", "mirror")
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
