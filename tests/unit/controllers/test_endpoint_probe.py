"""The probe's pure parts: URLs, challenges, credentials from Secrets, the address policy, Ready."""

from __future__ import annotations

import base64
import json
import re

import pytest

from controllers.endpoint.probe import (
    DEFAULT_DENIED_CIDRS,
    AddressNotAllowedError,
    AddressPolicy,
    Check,
    HostNotAllowedError,
    ProbeResult,
    Target,
    _base_url,
    _challenge,
    credentials_from_secret,
    ready,
)


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


@pytest.mark.parametrize(
    ("type_", "remote", "url"),
    [
        ("oci", "registry.example/mirror", "https://registry.example"),
        ("oci", "http://127.0.0.1:5000/x/", "http://127.0.0.1:5000"),
        ("helm", "oci://ghcr.io/charts", "https://ghcr.io"),
        ("http", "https://files.example/dl/a.tgz?sig=x#f", "https://files.example/dl/a.tgz"),
        ("http", "https://user:pw@files.example", "https://files.example/"),
        ("oci", "[::1]:5000", "https://[::1]:5000"),
    ],
)
def test_base_url(type_: str, remote: str, url: str) -> None:
    assert _base_url(Target(type_, remote)) == url


@pytest.mark.parametrize("remote", ["", "ftp://x.example", "https://x.example:99999", "https:///path"])
def test_base_url_refuses(remote: str) -> None:
    with pytest.raises(ValueError):
        _base_url(Target("oci", remote))


def test_challenges() -> None:
    assert _challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"') == (
        "bearer",
        {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"},
    )
    assert _challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
    assert _challenge("Negotiate, basic realm=x") == ("basic", {"realm": "x"})
    assert _challenge("Negotiate") is None
    assert _challenge("") is None


def test_credentials_from_a_dockerconfigjson_only_for_its_host() -> None:
    config = {
        "auths": {
            "https://reg.example:5000": {"auth": b64("u:p:with:colons")},
            "other": {"username": "o", "password": "q"},
        }
    }
    data = {".dockerconfigjson": b64(json.dumps(config)), "ca.crt": b64("-----BEGIN CERTIFICATE-----")}
    creds, ca = credentials_from_secret(data, "reg.example:5000/mirror")
    assert creds is not None and (creds.username, creds.password) == ("u", "p:with:colons")
    assert ca == "-----BEGIN CERTIFICATE-----"
    assert credentials_from_secret(data, "https://elsewhere.example")[0] is None
    creds, _ = credentials_from_secret(data, "other")
    assert creds is not None and creds.username == "o"


def test_credentials_from_basic_auth_and_garbage() -> None:
    creds, ca = credentials_from_secret({"username": b64("u"), "password": b64("p")}, "x")
    assert creds is not None and creds.basic() == "Basic " + b64("u:p") and ca is None
    assert credentials_from_secret({".dockerconfigjson": "not base64!"}, "x") == (None, None)
    assert credentials_from_secret({".dockerconfigjson": b64("[1]")}, "x") == (None, None)
    assert credentials_from_secret(None, "x") == (None, None)


def test_address_policy() -> None:
    policy = AddressPolicy.parse(DEFAULT_DENIED_CIDRS)
    for address in ("169.254.169.254", "0.0.0.0", "fe80::1%eth0", "::ffff:169.254.169.254", "fd00:ec2::254"):
        assert not policy.allows(address), address
    for address in ("127.0.0.1", "10.0.0.1", "2001:db8::1", "192.0.2.10"):
        assert policy.allows(address), address
    with pytest.raises(AddressNotAllowedError, match=re.escape("169.254.169.254")):
        policy.check("metadata.example", ["192.0.2.1", "169.254.169.254"])
    with pytest.raises(ValueError, match=re.escape("invalid CIDR 'nope'")):
        AddressPolicy.parse(["10.0.0.0/8", "nope"])
    hosts = AddressPolicy.parse([], ["127.0.0.1", " LocalHost ", ""])
    hosts.check_host("localhost")
    with pytest.raises(HostNotAllowedError):
        hosts.check_host("registry.example")
    AddressPolicy.parse([]).check_host("anything.example")


def test_ready_summarises() -> None:
    up = Check("True", "Reachable", "answered 401")
    assert ready(ProbeResult(up, Check("True", "Authenticated", "ok"))) == Check("True", "Ready", "ok")
    unknown = Check("Unknown", "NotExercised", "anonymous")
    assert ready(ProbeResult(up, unknown)).status == "True"
    bad = Check("False", "Unauthorized", "rejected")
    assert ready(ProbeResult(up, bad)) == bad
    down = Check("False", "Timeout", "slow")
    assert ready(ProbeResult(down, Check("Unknown", "NotProbed", "-"))) == down
    assert ready(ProbeResult(Check("Unknown", "X", "y"), unknown)).status == "Unknown"
