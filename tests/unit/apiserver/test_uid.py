"""apiserver.uid: version-4 UUIDs from pooled random bytes."""

from __future__ import annotations

import uuid

from apiserver.uid import UUIDSource


def test_uuids_are_version_4_rfc_4122_and_unique_across_refills() -> None:
    source = UUIDSource(batch=8)
    values = [source() for _ in range(1_000)]
    assert len(set(values)) == len(values)
    for value in values:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_every_random_bit_varies() -> None:
    source = UUIDSource(batch=4)
    ints = [uuid.UUID(source()).int for _ in range(256)]
    fixed = ~0
    for value in ints:
        fixed &= ~(value ^ ints[0])  # bits equal in every value
    version_and_variant = (0xF << 76) | (0x3 << 62)
    assert fixed & ((1 << 128) - 1) == version_and_variant
