"""The controller manager in a pod: configuration from the service account, the Lease's namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s_client

from apiserver.certs import self_signed
from controllers.__main__ import parse_args
from controllers.kube import ConfigError, connect
from controllers.kube.client import _configure_in_cluster
from controllers.kube.incluster import (
    NotInClusterError,
    in_cluster,
    in_cluster_namespace,
    resolve_kubeconfig,
)

ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def service_account(tmp_path: Path) -> Path:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "ca.crt").write_bytes(self_signed(["kubernetes"])[0])
    (sa / "token").write_text("token-1\n")
    (sa / "namespace").write_text("tenant-ops")
    return sa


async def test_connect_without_kubeconfig_uses_the_service_account(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    client = await connect(None, service_account_dir=sa, environ=ENV)
    try:
        configuration = client._api.configuration
        assert configuration.host == "https://10.96.0.1:443"
        assert configuration.ssl_ca_cert == str(sa / "ca.crt")
        auth = await configuration.auth_settings()
        assert auth["BearerToken"]["value"] == "Bearer token-1"  # trailing newline trimmed
    finally:
        await client.close()


async def test_the_rotated_token_is_sent_once_reread(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    cluster = in_cluster(sa, ENV)
    configuration = k8s_client.Configuration()
    _configure_in_cluster(configuration, cluster)
    cluster.token.period = 0.0  # the next request re-reads (every minute in a pod)
    (sa / "token").write_text("token-2")
    assert (await configuration.auth_settings())["BearerToken"]["value"] == "Bearer token-2"
    (sa / "token").unlink()  # mid-rotation: the previous token is kept
    assert (await configuration.auth_settings())["BearerToken"]["value"] == "Bearer token-2"


async def test_outside_a_pod_connect_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotInClusterError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"):
        await connect(None, service_account_dir=tmp_path, environ={})
    with pytest.raises(ConfigError, match="CA"):
        await connect(None, service_account_dir=tmp_path, environ=ENV)


def test_ipv6_service_host_is_bracketed(tmp_path: Path) -> None:
    cluster = in_cluster(service_account(tmp_path), {**ENV, "KUBERNETES_SERVICE_HOST": "fd00::1"})
    assert cluster.host == "https://[fd00::1]:443"


def test_kubeconfig_resolution_follows_controller_runtime(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("{}")
    flag = tmp_path / "flag.kubeconfig"
    assert resolve_kubeconfig(flag, {**ENV, "KUBECONFIG": "/env"}, home) == flag
    assert resolve_kubeconfig(None, {**ENV, "KUBECONFIG": "/env"}, home) == Path("/env")
    assert resolve_kubeconfig(None, ENV, home) is None  # in a pod: the service account
    assert resolve_kubeconfig(None, {}, home) == home / ".kube" / "config"
    assert resolve_kubeconfig(None, {}, tmp_path / "nobody") is None


def test_namespace_file(tmp_path: Path) -> None:
    assert in_cluster_namespace(service_account(tmp_path)) == "tenant-ops"
    assert in_cluster_namespace(tmp_path / "absent") is None


def test_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    args = parse_args(
        [
            "--kubeconfig=/k",
            "--metrics-bind-address=:8080",
            "--health-probe-bind-address=:8081",
            "--leader-election-namespace=ops",
        ]
    )
    assert (args.metrics_bind_address, args.health_probe_bind_address) == (":8080", ":8081")
    assert args.leader_election_namespace == "ops"
    defaults = parse_args(["--kubeconfig=/k"])
    assert (defaults.metrics_bind_address, defaults.health_probe_bind_address) == ("127.0.0.1:0", None)
