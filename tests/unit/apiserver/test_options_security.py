"""kube's flag names for etcd TLS and serving TLS, validated at start (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiserver.options import ServingOptions, complete, parser
from apiserver.server import Config


def _complete(tmp_path: Path, *flags: str) -> tuple[Config, ServingOptions]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("t,u,1\n")
    args = parser().parse_args(
        ["--standalone", f"--token-auth-file={tokens}", f"--cert-dir={tmp_path}", *flags]
    )
    return complete(args)


def test_etcd_tls_flags_reach_the_config(tmp_path: Path) -> None:
    config, serving = _complete(
        tmp_path,
        "--etcd-servers=https://a:2379,https://b:2379",
        "--etcd-cafile=ca.crt",
        "--etcd-certfile=c.crt",
        "--etcd-keyfile=c.key",
        "--tls-min-version=VersionTLS13",
        "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256",
    )
    assert config.etcd_servers == "https://a:2379,https://b:2379"
    assert (config.etcd_cafile, config.etcd_certfile, config.etcd_keyfile) == (
        Path("ca.crt"),
        Path("c.crt"),
        Path("c.key"),
    )
    assert serving.tls_min_version == "VersionTLS13"
    assert serving.workers == 1  # one process unless --workers says more
    assert serving.tls_cipher_suites == (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_AES_128_GCM_SHA256",
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--etcd-certfile=c.crt",), "--etcd-certfile and --etcd-keyfile go together"),
        (("--etcd-keyfile=c.key",), "--etcd-certfile and --etcd-keyfile go together"),
        (("--tls-min-version=TLS12",), "unknown tls version 'TLS12'"),
        (("--tls-cipher-suites=TLS_RSA_WITH_NULL_SHA",), "Cipher suite TLS_RSA_WITH_NULL_SHA not supported"),
        (("--workers=0",), "--workers must be >= 1"),
    ],
)
def test_bad_combinations_stop_the_server(tmp_path: Path, flags: tuple[str, ...], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        _complete(tmp_path, *flags)


def _ttls(config: Config) -> tuple[float, float]:
    return config.authorization_cache_authorized_ttl, config.authorization_cache_unauthorized_ttl


def test_authorization_cache_ttls_take_go_durations(tmp_path: Path) -> None:
    assert _ttls(_complete(tmp_path)[0]) == (10, 10)
    config, _ = _complete(
        tmp_path,
        "--authorization-webhook-cache-authorized-ttl=5m",
        "--authorization-webhook-cache-unauthorized-ttl=0",
    )
    assert _ttls(config) == (300, 0)
    config, _ = _complete(tmp_path, "--authorization-webhook-cache-authorized-ttl=1m30s")
    assert config.authorization_cache_authorized_ttl == 90
    config, _ = _complete(tmp_path, "--authorization-webhook-cache-unauthorized-ttl=2.5")
    assert config.authorization_cache_unauthorized_ttl == 2.5


@pytest.mark.parametrize("value", ["ten", "-10s", "1d", "nan", "inf"])
def test_bad_authorization_cache_ttl_is_refused(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _complete(tmp_path, f"--authorization-webhook-cache-authorized-ttl={value}")
    assert "--authorization-webhook-cache-authorized-ttl: invalid duration" in capsys.readouterr().err


def test_the_tls_terminator_socket_is_for_the_aggregated_mode(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--tls-terminator-socket is for the aggregated mode"):
        _complete(tmp_path, f"--tls-terminator-socket={tmp_path / 'arc.sock'}")


def test_the_terminators_header_is_configured_only_with_its_socket(tmp_path: Path) -> None:
    def aggregated(*flags: str) -> tuple[Config, ServingOptions]:
        return complete(parser().parse_args(["--kubeconfig=kc", f"--cert-dir={tmp_path}", *flags]))

    config, serving = aggregated()
    assert (config.terminator_client_cert_header, serving.tls_terminator_socket) == (None, None)
    config, serving = aggregated(f"--tls-terminator-socket={tmp_path / 'arc.sock'}")
    assert (config.terminator_client_cert_header, serving.tls_terminator_socket) == (
        "Client-Cert",
        tmp_path / "arc.sock",
    )
    config, _ = aggregated(
        f"--tls-terminator-socket={tmp_path / 'arc.sock'}", "--tls-terminator-client-cert-header=X-Peer"
    )
    assert config.terminator_client_cert_header == "X-Peer"
