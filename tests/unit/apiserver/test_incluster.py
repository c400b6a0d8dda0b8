"""What the API server needs in a pod: options that write nothing by default, the service account."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from apiserver.__main__ import serving_context
from apiserver.certs import self_signed
from apiserver.delegation.client import (
    DelegationClient,
    KubeConfig,
    NotInClusterError,
    TokenFile,
    in_cluster_config,
)
from apiserver.options import complete, parser


def test_without_cert_options_the_serving_certificate_lives_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _, serving = complete(parser().parse_args(["--bind-address", "0.0.0.0"]))
    assert serving.tls_cert_file is None and serving.generated_cert is not None
    context = serving_context(serving)
    assert isinstance(context, ssl.SSLContext)
    assert list(tmp_path.iterdir()) == [], "nothing may be written (read-only root filesystem)"
    cert = x509.load_pem_x509_certificate(serving.generated_cert[0])
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_cert_dir_writes_and_reuses_the_pair(tmp_path: Path) -> None:
    argv = ["--cert-dir", str(tmp_path / "certs")]
    _, first = complete(parser().parse_args(argv))
    assert first.tls_cert_file == tmp_path / "certs" / "apiserver.crt"
    assert first.generated_cert is None
    pem = first.tls_cert_file.read_bytes()
    _, second = complete(parser().parse_args(argv))
    assert second.tls_cert_file is not None and second.tls_cert_file.read_bytes() == pem
    assert oct((tmp_path / "certs" / "apiserver.key").stat().st_mode & 0o777) == "0o600"
    serving_context(second)


def test_etcd_tls_and_probe_options_reach_the_config(tmp_path: Path) -> None:
    config, serving = complete(
        parser().parse_args(
            [
                "--etcd-servers=https://arc-etcd:2379",
                f"--etcd-cafile={tmp_path}/ca.crt",
                f"--etcd-certfile={tmp_path}/tls.crt",
                f"--etcd-keyfile={tmp_path}/tls.key",
                "--etcd-healthcheck-timeout=3",
                "--shutdown-delay-duration=5",
            ]
        )
    )
    assert config.etcd_cafile == tmp_path / "ca.crt"
    assert (config.etcd_certfile, config.etcd_keyfile) == (tmp_path / "tls.crt", tmp_path / "tls.key")
    assert config.etcd_healthcheck_timeout == 3.0 and config.etcd_readycheck_timeout == 2.0
    assert serving.shutdown_delay == 5.0
    with pytest.raises(SystemExit, match="go together"):
        complete(parser().parse_args([f"--etcd-certfile={tmp_path}/tls.crt"]))


def service_account(tmp_path: Path, token: str = "token-1") -> Path:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "ca.crt").write_bytes(self_signed(["kubernetes"])[0])
    (sa / "token").write_text(token)
    (sa / "namespace").write_text("arc-system")
    return sa


def test_in_cluster_uses_the_service_environment_not_cluster_dns(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    config = in_cluster_config(sa, {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"})
    assert config.server == "https://10.96.0.1:443"
    assert config.bearer_token() == "token-1"
    v6 = in_cluster_config(sa, {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"})
    assert v6.server == "https://[fd00::1]:6443"
    with pytest.raises(NotInClusterError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"):
        in_cluster_config(sa, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"})


def test_the_rotated_token_is_picked_up_and_an_unreadable_file_keeps_the_last(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    tokens = TokenFile(sa / "token", period=0.0)
    config = KubeConfig("https://10.96.0.1:443", ssl.create_default_context(), token_file=tokens)
    client = DelegationClient(config)
    assert client._auth() == {"Authorization": "Bearer token-1"}
    (sa / "token").write_text("token-2\n")
    assert client._auth({"Content-Type": "application/json"}) == {
        "Content-Type": "application/json",
        "Authorization": "Bearer token-2",
    }
    os.unlink(sa / "token")
    assert tokens.token() == "token-2"
