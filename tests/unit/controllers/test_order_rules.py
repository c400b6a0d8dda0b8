"""SPEC §4.1 rules as pure functions: hash, names, labels, parameter flattening, phase and progress."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from api.arc.v1alpha1.types import OrderArtifactWorkflowStatus
from controllers.kube import codec
from controllers.order.naming import artifact_hash, canonical_json, label_value, secret_hash, workflow_name
from controllers.order.parameters import build_parameters, flatten_spec
from controllers.order.reconciler import parse_annotation_time
from controllers.order.status import summarize


def test_hash_is_sha256_of_the_canonical_ten_element_array() -> None:
    args = dict(
        namespace="ns",
        type="oci",
        spec={"image": "library/nginx:1.27", "b": [1, True, None], "ä": "ö"},
        src_name="src",
        src_generation=1,
        dst_name="dst",
        dst_generation=None,
        src_secret_hash="",
        dst_secret_hash=None,
        last_force_at=None,
    )
    doc = (
        '["ns","oci",{"b":[1,true,null],"image":"library/nginx:1.27","ä":"ö"},'
        '"src",1,"dst",null,"",null,null]'
    )
    assert canonical_json(list(args.values())) == doc
    assert artifact_hash(**args) == hashlib.sha256(doc.encode()).hexdigest()[:16]  # type: ignore[arg-type]


def test_numbers_keep_their_text_in_hash_and_parameters() -> None:
    spec = codec.loads(b'{"big": 1e6, "n": 1000000, "f": 1.50}')
    assert canonical_json(spec) == '{"big":1e6,"f":1.50,"n":1000000}'
    assert dict(flatten_spec(spec)) == {"specBig": "1e6", "specF": "1.50", "specN": "1000000"}


def test_secret_hash_is_an_hmac_over_the_stored_base64_data() -> None:
    """SPEC §4.1: HMAC-SHA-256 keyed with the installation's key, over the canonical JSON of `data`."""
    data = {"b": "Yg==", "a": "YQ=="}
    key = b"k" * 32
    assert secret_hash(data, key=key) == hmac.new(key, b'{"a":"YQ==","b":"Yg=="}', hashlib.sha256).hexdigest()
    assert secret_hash(None, key=key) == hmac.new(key, b"{}", hashlib.sha256).hexdigest()
    # the unkeyed hash of the data (what names carried before) is not what is used
    assert secret_hash(data, key=key) != hashlib.sha256(b'{"a":"YQ==","b":"Yg=="}').hexdigest()


def test_same_secret_data_with_another_key_gives_another_artifact_name() -> None:
    """Two installations (keys) name the same artifact with the same credentials differently, so a name
    cannot be used to test password guesses without the key."""
    data = {"password": "aHVudGVyMg=="}
    names = set()
    for key in (b"a" * 32, b"b" * 32):
        h = artifact_hash(
            namespace="ns",
            type="oci",
            spec={},
            src_name="src",
            src_generation=1,
            dst_name="dst",
            dst_generation=1,
            src_secret_hash=secret_hash(data, key=key),
            dst_secret_hash="",
            last_force_at=None,
        )
        names.add(workflow_name("o", h))
    assert len(names) == 2


def test_secret_hash_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError):
        secret_hash({"a": "YQ=="}, key=b"")


def test_names_are_cut_to_63_and_labels_get_a_hash_suffix() -> None:
    h = "0123456789abcdef"
    assert workflow_name("order", h) == "order-0123456789abcdef"
    long = "o" * 70
    name = workflow_name(long, h)
    assert len(name) == 63 and name == "o" * 46 + "-" + h
    assert label_value("short") == "short"
    cut = label_value(long)
    assert len(cut) == 63
    assert cut == "o" * 54 + "-" + hashlib.sha256(long.encode()).hexdigest()[:8]


def test_flattening_follows_the_spec_examples() -> None:
    spec = {
        "opts": {"tlsVerify": False},
        "files": [{"url": "a"}, {"url": "b", "sha": None}],
        "tags": ["x", "y"],
        "n": 3,
    }
    assert list(flatten_spec(spec)) == [
        ("specFiles0Url", "a"),
        ("specFiles1Sha", ""),
        ("specFiles1Url", "b"),
        ("specN", "3"),
        ("specOptsTlsVerify", "false"),
        ("specTags0", "x"),
        ("specTags1", "y"),
    ]


def test_parameters_are_fixed_then_spec_then_type_and_later_wins_in_place() -> None:
    params = build_parameters(
        src_type="oci",
        src_remote_url="src.example",
        dst_type="oci",
        dst_remote_url="dst.example",
        src_secret=True,
        dst_secret=False,
        spec={"image": "a", "dstType": "ignored?"},
        type_parameters=[("specImage", "from-type"), ("extra", "1"), ("srcType", "t")],
    )
    assert params == [
        {"name": "srcType", "value": "t"},
        {"name": "srcRemoteURL", "value": "src.example"},
        {"name": "dstType", "value": "oci"},
        {"name": "dstRemoteURL", "value": "dst.example"},
        {"name": "srcSecret", "value": "true"},
        {"name": "dstSecret", "value": "false"},
        {"name": "specDstType", "value": "ignored?"},
        {"name": "specImage", "value": "from-type"},
        {"name": "extra", "value": "1"},
    ]
    assert len({p["name"] for p in params}) == len(params)


def _scan_params(spec: dict[str, object], type_parameters: list[tuple[str, str]]) -> dict[str, str]:
    params = build_parameters(
        src_type="oci",
        src_remote_url="src.example",
        dst_type="oci",
        dst_remote_url="dst.example",
        src_secret=False,
        dst_secret=False,
        spec=spec,
        type_parameters=type_parameters,
    )
    return {p["name"]: p["value"] for p in params}


def test_tenants_cannot_steer_the_scan_gate_unless_the_type_allows() -> None:
    """An Order cannot weaken a gate its type forces (issue 14): its scan severity and trivy database are
    dropped; the type's values (or the template's defaults) apply. A type may allow them."""
    spec = {"image": "a", "scan": {"severity": "UNKNOWN", "dbRepository": "evil.example/db"}}
    forced = [("specScan", "true")]
    params = _scan_params(spec, forced)
    assert params["specScan"] == "true"
    assert "specScanSeverity" not in params and "specScanDbRepository" not in params
    pinned = _scan_params(spec, [*forced, ("specScanSeverity", "MEDIUM,HIGH,CRITICAL")])
    assert pinned["specScanSeverity"] == "MEDIUM,HIGH,CRITICAL"  # the type's pin wins
    assert "specScanDbRepository" not in pinned
    allowed = _scan_params(spec, [*forced, ("allowTenantScanSettings", "true")])
    assert allowed["specScanSeverity"] == "UNKNOWN" and allowed["specScanDbRepository"] == "evil.example/db"
    both = _scan_params(spec, [("allowTenantScanSettings", "true"), ("specScanSeverity", "CRITICAL")])
    assert both["specScanSeverity"] == "CRITICAL"  # allowed, but a pin still wins


def entry(i: int, phase: str, message: str | None = None) -> OrderArtifactWorkflowStatus:
    return OrderArtifactWorkflowStatus(artifact_index=i, name=f"o-{i}", phase=phase, message=message)


def test_phase_progress_and_ready_condition() -> None:
    s = summarize({"a": entry(0, "Pending"), "b": entry(1, "Pending")}, 3)
    assert (s.phase, s.ready.status, s.ready.reason) == ("Pending", "False", "Processing")
    assert s.ready.observed_generation == 3
    s = summarize({"a": entry(0, "Succeeded"), "b": entry(1, "Pending")}, 1)
    assert s.phase == "Running"
    assert (s.progress.succeeded, s.progress.pending, s.progress.total) == (1, 1, 2)
    s = summarize({"a": entry(0, "Succeeded"), "b": entry(1, "Succeeded")}, 1)
    assert (s.phase, s.ready.status, s.ready.reason) == ("Succeeded", "True", "Succeeded")
    s = summarize({"a": entry(0, "Error", "step copy: boom"), "b": entry(1, "Running")}, 1)
    assert (s.phase, s.ready.reason, s.progress.failed, s.progress.running) == (
        "Failed",
        "ArtifactFailed",
        1,
        1,
    )
    assert "artifact #0 (o-0): step copy: boom" in s.ready.message


def test_annotation_times() -> None:
    assert parse_annotation_time("2026-01-02T03:04:05Z") is not None
    ts = parse_annotation_time("1767323045")
    assert ts is not None and ts.year == 2026
    assert parse_annotation_time("tomorrow") is None
    assert parse_annotation_time("nan") is None
    assert json.dumps(None) == "null"
