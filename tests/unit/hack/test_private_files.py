"""Keys, tokens and kubeconfigs are created with their final mode 0600 (issue 14: never readable by others,
not even between the write and a chmod).

An audit hook records how each file is opened: a private file must be created by ``os.open`` with mode
0600 (the audit event carries the permission bits), and never widened or chmod'ed by path afterwards. The
umask is 0 during the test, so a file created by ``open()``/``write_bytes`` would be 0666 until chmod.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apiserver import certs
from apiserver.delegation import client as delegation_client
from hack import arcapiserver, kube, pki

_EVENTS: list[tuple[str, tuple[Any, ...]]] = []
_RECORDING = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING and event in ("open", "os.chmod"):
        _EVENTS.append((event, args))


sys.addaudithook(_hook)  # cannot be removed; it records only while a test sets _RECORDING


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Events: ("open", (path, str mode, flags)) of open()/write_bytes, ("os.chmod", (path, ...)), and
    ("os.open", (path, flags, mode)) recorded by a wrapper, since the audit event of os.open has no mode."""
    global _RECORDING
    _EVENTS.clear()
    real_open = os.open

    def recording_open(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        _EVENTS.append(("os.open", (path, flags, mode)))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    old = os.umask(0)
    _RECORDING = True
    try:
        yield _EVENTS
    finally:
        _RECORDING = False
        os.umask(old)


def _assert_private(path: Path, events: list[tuple[str, tuple[Any, ...]]]) -> None:
    assert path.stat().st_mode & 0o777 == 0o600, oct(path.stat().st_mode)
    mine = [(e, a) for e, a in events if str(a[0]) == str(path)]
    creates = [a for e, a in mine if e == "os.open" and a[1] & os.O_CREAT]
    assert creates and all(a[2] == 0o600 for a in creates), (
        f"{path} not created by os.open(..., 0o600): {mine}"
    )
    assert not [a for e, a in mine if e == "open" and isinstance(a[1], str)], f"{path} written with open()"
    assert not [e for e, _ in mine if e == "os.chmod"], f"{path} chmod'ed by path after it was written"


def test_write_private_file_creates_0600_and_narrows_an_old_wide_file(
    tmp_path: Path, opens: list[tuple[str, tuple[Any, ...]]]
) -> None:
    # hack.pki re-exports apiserver.certs' writer: still checked by both names, each on a file of its own
    for name, write in (("certs", certs.write_private_file), ("pki", pki.write_private_file)):
        path = tmp_path / f"{name}.key"
        write(path, b"secret")
        _assert_private(path, opens)
        assert path.read_bytes() == b"secret"
        path.chmod(0o644)
        write(path, b"other")
        assert path.stat().st_mode & 0o777 == 0o600 and path.read_bytes() == b"other"


@pytest.mark.parametrize(
    "make",
    [
        lambda d: certs.ensure_self_signed(d, ["localhost"])[1],
        lambda d: pki.create_ca(d, "ca", "test-ca").key_file,
        lambda d: pki.issue(pki.create_ca(d, "ca", "c"), d, "srv", common_name="srv", server=True).key_file,
        lambda d: pki.create_service_account_keys(d).key_file,
    ],
    ids=["apiserver-self-signed", "pki-ca", "pki-issue", "pki-service-account"],
)
def test_every_key_writer_creates_its_key_private(
    tmp_path: Path, opens: list[tuple[str, tuple[Any, ...]]], make: Callable[[Path], Path]
) -> None:
    _assert_private(make(tmp_path), opens)


def test_kubeconfigs_and_tokens_are_private(tmp_path: Path, opens: list[tuple[str, tuple[Any, ...]]]) -> None:
    path = tmp_path / "kubeconfig"
    kube.write_kubeconfig(
        path,
        server="https://127.0.0.1:1",
        ca_file=tmp_path / "ca.crt",
        cert_file=tmp_path / "u.crt",
        key_file=tmp_path / "u.key",
        user="u",
    )
    _assert_private(path, opens)
    server = arcapiserver.ArcApiServer(tmp_path, "http://127.0.0.1:1", port=1)
    server.ensure_credentials()
    _assert_private(server.token_file, opens)
    _assert_private(server.kubeconfig, opens)
    assert (
        delegation_client.write_private_file is certs.write_private_file
    )  # the delegation client's temp key
