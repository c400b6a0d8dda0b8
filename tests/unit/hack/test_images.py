"""hack/images' deterministic layers and layouts, and its dpkg status reader (no network, no mmdebstrap)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from hack.images.app import drop_build_host_files
from hack.images.oci import (
    Entry,
    diff_layouts,
    dir_info,
    file_info,
    image_config,
    normalize,
    read_layout,
    write_layer,
    write_layout,
)
from hack.images.rootfs import parse_dpkg_status
from hack.images.sbom import document, versions


def _entries(order: list[str], mtime: int = 1000) -> list[Entry]:
    files = {"b/x": b"x-content", "a/y": b"y", "a/z": b"zzz"}
    out: list[Entry] = []
    for name in order:
        if name in ("a", "b"):
            out.append(Entry(dir_info(name, mtime)))
        else:
            data = files[name]
            out.append(Entry(file_info(name, len(data), mtime), data=data))
    return out


def test_a_layer_is_the_same_bytes_whatever_the_input_order(tmp_path: Path) -> None:
    one = write_layer(_entries(["b", "b/x", "a", "a/z", "a/y"]), tmp_path / "one.tar.gz")
    two = write_layer(_entries(["a/y", "a", "b/x", "a/z", "b"]), tmp_path / "two.tar.gz")
    assert one.digest == two.digest and one.diff_id == two.diff_id
    assert one.digest == "sha256:" + hashlib.sha256((tmp_path / "one.tar.gz").read_bytes()).hexdigest()
    raw = (tmp_path / "one.tar.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip MTIME field
    assert not raw[3] & 0x08  # no FNAME
    plain = gzip.decompress(raw)
    assert one.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest() and one.unpacked_size == len(plain)
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a", "a/y", "a/z", "b", "b/x"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 1000)}


def test_another_mtime_is_another_layer(tmp_path: Path) -> None:
    one = write_layer(_entries(["a", "a/y"], mtime=1000), tmp_path / "one.tar.gz")
    two = write_layer(_entries(["a", "a/y"], mtime=1001), tmp_path / "two.tar.gz")
    assert one.digest != two.digest


def test_hard_links_point_at_the_first_name_of_their_group(tmp_path: Path) -> None:
    data = b"#!/usr/bin/perl\n"
    target = Entry(file_info("usr/bin/perl", len(data), 5, 0o755), data=data)
    link = tarfile.TarInfo("usr/bin/perl5.36.0")
    link.type, link.linkname, link.mode = tarfile.LNKTYPE, "usr/bin/perl", 0o755
    other = tarfile.TarInfo("usr/bin/aaa")
    other.type, other.linkname = tarfile.LNKTYPE, "usr/bin/perl"
    layer = write_layer([Entry(link), target, Entry(other)], tmp_path / "l.tar.gz")
    with tarfile.open(layer.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["usr/bin/aaa"].isreg() and members["usr/bin/aaa"].mode == 0o755
        extracted = tar.extractfile("usr/bin/aaa")
        assert extracted is not None and extracted.read() == data
        assert members["usr/bin/perl"].islnk() and members["usr/bin/perl"].linkname == "usr/bin/aaa"
        assert members["usr/bin/perl5.36.0"].linkname == "usr/bin/aaa"
        assert list(members) == sorted(members)


def test_normalize_fixes_owner_names_mtime_and_leading_dot() -> None:
    info = tarfile.TarInfo("./etc/passwd")
    info.uname, info.gname, info.mtime, info.uid, info.gid, info.mode = "root", "root", 2e9, 0, 42, 0o100640
    fixed = normalize(info, 1735689600, clamp=False)
    assert (fixed.name, fixed.uname, fixed.gname, fixed.mtime, fixed.gid, fixed.mode) == (
        "etc/passwd",
        "",
        "",
        1735689600,
        42,
        0o640,
    )
    assert normalize(info, 3e9, clamp=True).mtime == 2e9  # type: ignore[arg-type]


def test_layout_is_written_once_and_unreferenced_blobs_go(tmp_path: Path) -> None:
    layer = write_layer(_entries(["a", "a/y"]), tmp_path / "layer.tar.gz")
    config = image_config(created="2025-01-01T00:00:00Z", layers=[layer], config={"User": "1"}, history=["x"])
    out = tmp_path / "layout"
    image = write_layout(out, "t", "1.0", config, [layer])
    assert read_layout(out) == ("1.0", image.digest)
    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    manifest = json.loads((out / "blobs" / "sha256" / image.digest.removeprefix("sha256:")).read_bytes())
    assert manifest["layers"][0]["digest"] == layer.digest
    assert json.loads(config)["rootfs"]["diff_ids"] == [layer.diff_id]
    again = write_layout(out, "t", "1.0", config, [layer])
    assert again.digest == image.digest
    other = image_config(created="2025-01-01T00:00:00Z", layers=[layer], config={"User": "2"}, history=["x"])
    changed = write_layout(out, "t", "1.0", other, [layer])
    assert changed.digest != image.digest
    blobs = {p.name for p in (out / "blobs" / "sha256").iterdir()}
    assert image.digest.removeprefix("sha256:") not in blobs
    assert changed.digest.removeprefix("sha256:") in blobs and len(blobs) == 3


def test_diff_layouts_names_the_config_keys_and_members_that_differ(tmp_path: Path) -> None:
    def layout(name: str, user: str, mtime: int, y: bytes) -> Path:
        entries = [Entry(dir_info("a", 1000)), Entry(file_info("a/y", len(y), mtime), data=y)]
        layer = write_layer(entries, tmp_path / f"{name}.tar.gz")
        created = "2025-01-01T00:00:00Z"
        config = image_config(created=created, layers=[layer], config={"User": user}, history=[])
        write_layout(tmp_path / name, "t", "1.0", config, [layer])
        return tmp_path / name

    one = layout("one", "1", 1000, b"y")
    assert diff_layouts(one, layout("same", "1", 1000, b"y")) == []
    (user,) = diff_layouts(one, layout("user", "2", 1000, b"y"))
    assert user == "config.config: {'User': '1'} != {'User': '2'}"
    (member,) = diff_layouts(one, layout("mtime", "1", 1001, b"y"))
    assert member.startswith("layer 0 a/y: ") and ", 1000, 1, " in member and ", 1001, 1, " in member
    assert len(diff_layouts(one, layout("both", "2", 1000, b"z"))) == 2


STATUS = """Package: python3
Status: install ok installed
Architecture: amd64
Source: python3-defaults
Version: 3.11.2-1+b1
Description: interactive high-level object-oriented language
 multi-line description

Package: removed
Status: deinstall ok config-files
Version: 1

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc (2.36-9+deb12u10)
Version: 2.36-9+deb12u10
"""


def test_dpkg_status_lists_installed_packages_only() -> None:
    packages = parse_dpkg_status(STATUS)
    assert [(p.name, p.version, p.source) for p in packages] == [
        ("libc6", "2.36-9+deb12u10", "glibc"),
        ("python3", "3.11.2-1+b1", "python3-defaults"),
    ]
    doc = document(
        image="arc",
        repository="r/arc",
        digest="sha256:" + "1" * 64,
        created="2025-01-01T00:00:00Z",
        suite="bookworm",
        debs=packages,
    )
    assert versions(doc, "pkg:deb/") == {"libc6": "2.36-9+deb12u10", "python3": "3.11.2-1+b1"}
    assert doc["packages"][0]["primaryPackagePurpose"] == "CONTAINER"


def test_the_app_layer_drops_what_pip_wrote_for_the_build_host(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "demo-1.0.dist-info"
    info.mkdir(parents=True)
    (site / "bin").mkdir()
    (site / "bin" / "demo").write_text("#!/some/venv/bin/python\n")
    (info / "direct_url.json").write_text('{"url": "file:///tmp/arc-app-x/demo.whl"}')
    (info / "RECORD").write_text(
        "../../bin/demo,sha256=abc,24\n"
        "demo/__init__.py,sha256=def,1\n"
        "demo-1.0.dist-info/direct_url.json,sha256=ghi,40\n"
        "demo-1.0.dist-info/RECORD,,\n"
    )
    drop_build_host_files(site)
    assert not (site / "bin").exists()
    assert not (info / "direct_url.json").exists()
    assert (info / "RECORD").read_text() == "demo/__init__.py,sha256=def,1\ndemo-1.0.dist-info/RECORD,,\n"
