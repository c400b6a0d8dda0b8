"""kube-apiserver's TLS flags for the serving port: ``--tls-min-version`` and ``--tls-cipher-suites``.

Names are kube's (``k8s.io/component-base/cli/flag``): versions ``VersionTLS10`` … ``VersionTLS13`` and the
IANA cipher suite names Go knows, mapped here to OpenSSL's. As in Go, TLS 1.3 suites are accepted but not
configurable (TLS 1.3 always offers its three AEAD suites), and suites this OpenSSL build no longer has
(RC4) are refused at start.

Defaults are stricter than Go's: TLS 1.2 at least, and without a ``--tls-cipher-suites`` only ECDHE with
AES-GCM or ChaCha20-Poly1305 — no CBC suites (Lucky13-style padding oracles), no static-RSA key exchange
(no forward secrecy). A CBC suite can still be chosen explicitly, as in kube.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Final

__all__ = [
    "DEFAULT_CIPHERS",
    "DEFAULT_MIN_VERSION",
    "TLS_VERSIONS",
    "TLSConfigError",
    "apply_tls_options",
    "openssl_ciphers",
]


class TLSConfigError(ValueError):
    """A flag value kube would refuse (its words)."""


TLS_VERSIONS: Final = {
    "VersionTLS10": ssl.TLSVersion.TLSv1,
    "VersionTLS11": ssl.TLSVersion.TLSv1_1,
    "VersionTLS12": ssl.TLSVersion.TLSv1_2,
    "VersionTLS13": ssl.TLSVersion.TLSv1_3,
}
DEFAULT_MIN_VERSION: Final = "VersionTLS12"

# IANA name (as Go's crypto/tls spells it) → OpenSSL name; None: TLS 1.3, always on and not configurable
_SUITES: Final[dict[str, str | None]] = {
    # secure (tls.CipherSuites())
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",  # Go's legacy alias
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    # insecure (tls.InsecureCipherSuites()): accepted when named, as kube does
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_RSA_WITH_RC4_128_SHA": "RC4-SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "ECDHE-RSA-RC4-SHA",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "ECDHE-ECDSA-RC4-SHA",
}

DEFAULT_CIPHERS: Final = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)


def min_version(name: str) -> ssl.TLSVersion:
    try:
        return TLS_VERSIONS[name]
    except KeyError:
        raise TLSConfigError(f"unknown tls version {name!r}") from None


def openssl_ciphers(names: Sequence[str]) -> str:
    """The OpenSSL cipher string for kube's ``--tls-cipher-suites`` names (TLS 1.3 names contribute
    nothing: TLS 1.3 suites are not configurable, in Go either)."""
    out: list[str] = []
    for name in names:
        if name not in _SUITES:
            raise TLSConfigError(f"Cipher suite {name} not supported or doesn't exist")
        openssl = _SUITES[name]
        if openssl is not None and openssl not in out:
            out.append(openssl)
    return ":".join(out)


def apply_tls_options(
    context: ssl.SSLContext, *, min_version_name: str = DEFAULT_MIN_VERSION, cipher_suites: Sequence[str] = ()
) -> None:
    """Set the minimum version and the TLS ≤ 1.2 suites on ``context``; raises :class:`TLSConfigError`."""
    context.minimum_version = min_version(min_version_name)
    ciphers = openssl_ciphers(cipher_suites or DEFAULT_CIPHERS)
    if ciphers:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError:
            raise TLSConfigError(
                f"none of the cipher suites {', '.join(cipher_suites)} is available in this TLS library"
            ) from None
    else:
        # only TLS 1.3 suites named: no TLS 1.2 suite is left, so (as with Go) only TLS 1.3 can be spoken
        context.minimum_version = ssl.TLSVersion.TLSv1_3
