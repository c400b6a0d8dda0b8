from __future__ import annotations

import base64

import pytest

from apiserver.storage.continuation import LATEST, decode_continue, encode_continue
from apiserver.storage.interface import InvalidContinueError

PREFIX = "/registry/arc.opendefense.cloud/orders/"


def raw_token(json_text: str) -> str:
    return base64.urlsafe_b64encode(json_text.encode()).rstrip(b"=").decode()


def test_token_is_byte_identical_to_kube() -> None:
    # What k8s.io/apiserver's EncodeContinue produces for the same key, prefix and revision
    # (Go's encoding/json escapes NUL as \u0000).
    kube = raw_token('{"v":"meta.k8s.io/v1","rv":42,"start":"ns/o1\\u0000"}')
    assert encode_continue(PREFIX + "ns/o1\x00", PREFIX, 42) == kube
    assert decode_continue(kube, PREFIX) == (PREFIX + "ns/o1\x00", 42)


def test_latest_revision_token() -> None:
    token = encode_continue(PREFIX + "ns/o2", PREFIX, LATEST)
    assert decode_continue(token, PREFIX) == (PREFIX + "ns/o2", LATEST)


def test_key_outside_prefix_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        encode_continue("/registry/other/x", PREFIX, 1)


@pytest.mark.parametrize(
    "token",
    [
        "%%%",
        raw_token("not json"),
        raw_token("[1]"),
        raw_token('{"v":"meta.k8s.io/v2","rv":1,"start":"a"}'),
        raw_token('{"v":"meta.k8s.io/v1","rv":0,"start":"a"}'),
        raw_token('{"v":"meta.k8s.io/v1","rv":-2,"start":"a"}'),
        raw_token('{"v":"meta.k8s.io/v1","rv":"1","start":"a"}'),
        raw_token('{"v":"meta.k8s.io/v1","rv":1,"start":""}'),
        raw_token('{"v":"meta.k8s.io/v1","rv":1,"start":"../../secrets/x"}'),
        raw_token('{"v":"meta.k8s.io/v1","rv":1,"start":"ns/./x"}'),
    ],
)
def test_invalid_tokens(token: str) -> None:
    with pytest.raises(InvalidContinueError, match="continue key is not valid"):
        decode_continue(token, PREFIX)
