"""Deterministic layers and OCI image layouts, written directly in Python.

Why not umoci or crane: an OCI image layout is only content-addressed blobs plus ``index.json``, and the one
hard part of reproducibility — byte-identical layer tars — is ours to get right whatever tool packs them
(umoci records the unpacked files' mtimes and owners as they are on disk; crane needs a Go build). Writing the
tar and gzip streams here fixes every byte: entries sorted by name, numeric owners with empty owner names,
one fixed mtime (or clamped to it), no device nodes, hard links pointing at the first name of their group,
gzip without a file name or timestamp (``mtime=0``), JSON with sorted keys. The layout then reads with
skopeo, podman and the registries like any other.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

#: gzip level: 6 is gzip's own default; the level is part of the layer's bytes, so it never changes silently.
GZIP_LEVEL = 6
_CHUNK = 1 << 20


def canonical_json(value: Any) -> bytes:
    """The one JSON encoding of every config, manifest and index: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Layer:
    """One gzip'd layer blob on disk: ``digest`` of the gzip bytes, ``diff_id`` of the tar inside."""

    path: Path
    digest: str
    diff_id: str
    size: int
    unpacked_size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "diffId": self.diff_id,
            "size": self.size,
            "unpackedSize": self.unpacked_size,
        }

    @classmethod
    def from_json(cls, path: Path, value: dict[str, Any]) -> Layer:
        return cls(path, value["digest"], value["diffId"], value["size"], value["unpackedSize"])


class _HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``target``."""

    def __init__(self, target: IO[bytes] | gzip.GzipFile | None) -> None:
        self.target = target
        self.hash = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.hash.update(view)
        self.count += len(view)
        if self.target is not None:
            self.target.write(view)
        return len(view)


@dataclass(frozen=True)
class Entry:
    """One entry of a layer: its tar header (name without a leading ``./``) and where its bytes come from."""

    info: tarfile.TarInfo
    source: Path | None = None  # regular file content on disk
    data: bytes | None = None  # regular file content in memory
    tar: tarfile.TarFile | None = None  # regular file content in another tar
    member: tarfile.TarInfo | None = None


def normalize(info: tarfile.TarInfo, mtime: int, *, clamp: bool) -> tarfile.TarInfo:
    """A copy of ``info`` with the fields that vary between builds fixed."""
    out = tarfile.TarInfo(info.name.removeprefix("./").rstrip("/"))
    out.type = info.type
    out.mode = info.mode & 0o7777
    out.uid, out.gid = info.uid, info.gid
    out.uname = out.gname = ""
    out.mtime = min(int(info.mtime), mtime) if clamp else mtime
    out.linkname = info.linkname.removeprefix("./") if info.type == tarfile.LNKTYPE else info.linkname
    out.size = info.size if info.isreg() else 0
    out.devmajor = out.devminor = 0
    return out


def write_layer(entries: Iterable[Entry], out: Path) -> Layer:
    """Write ``entries`` (any order) as a sorted tar, gzip'd deterministically, to ``out``.

    Hard links are rewritten so each group's first name (in sorted order) carries the content and the others
    link to it: an unpacker meets the target before the link whatever the original tar's order.
    """
    by_name = {e.info.name: e for e in entries}
    groups: dict[str, list[str]] = {}
    for name, entry in by_name.items():
        if entry.info.type == tarfile.LNKTYPE:
            groups.setdefault(entry.info.linkname, []).append(name)
    rewritten: dict[str, Entry] = {}
    for target, links in groups.items():
        if target not in by_name:
            raise ValueError(f"hard link to {target!r}, which is not in the layer")
        first = min([target, *links])
        content = by_name[target]
        for name in [target, *links]:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid = content.info.mode, content.info.uid, content.info.gid
            info.mtime = content.info.mtime
            if name == first:
                info.type, info.size = tarfile.REGTYPE, content.info.size
                rewritten[name] = Entry(info, content.source, content.data, content.tar, content.member)
            else:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
                rewritten[name] = Entry(info)
    by_name.update(rewritten)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp.{os.getpid()}")
    with tmp.open("wb") as raw:
        compressed = _HashingWriter(raw)
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=compressed, compresslevel=GZIP_LEVEL, mtime=0
        ) as gz:
            plain = _HashingWriter(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                for name in sorted(by_name):
                    entry = by_name[name]
                    tar.addfile(entry.info, _content(entry))
    os.replace(tmp, out)
    return Layer(
        out,
        "sha256:" + compressed.hash.hexdigest(),
        "sha256:" + plain.hash.hexdigest(),
        compressed.count,
        plain.count,
    )


def _content(entry: Entry) -> IO[bytes] | None:
    if not entry.info.isreg():
        return None
    if entry.source is not None:
        return entry.source.open("rb")
    if entry.data is not None:
        return io.BytesIO(entry.data)
    if entry.tar is not None and entry.member is not None:
        return entry.tar.extractfile(entry.member)
    raise ValueError(f"{entry.info.name}: regular file without content")


def tree_entries(root: Path, prefix: str, mtime: int, *, mode_dirs: int = 0o755) -> Iterator[Entry]:
    """Entries for the directory tree ``root`` placed at ``prefix`` (e.g. ``usr/local/lib``), owned by root,
    plus the parent directories of ``prefix``. Regular files keep their executable bit only."""
    parts = prefix.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        yield Entry(dir_info("/".join(parts[:i]), mtime, mode_dirs))
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        base = prefix.strip("/") if rel == Path(".") else f"{prefix.strip('/')}/{rel.as_posix()}"
        if rel != Path("."):
            yield Entry(dir_info(base, mtime, mode_dirs))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            st = path.lstat()
            info = tarfile.TarInfo(f"{base}/{filename}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
            if path.is_symlink():
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
                yield Entry(info)
            else:
                info.size = st.st_size
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                yield Entry(info, source=path)


def dir_info(name: str, mtime: int, mode: int = 0o755, uid: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = tarfile.DIRTYPE, mode, mtime, uid, uid
    return info


def file_info(name: str, size: int, mtime: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = size, mode, mtime, 0, 0
    return info


@dataclass(frozen=True)
class Image:
    """A built image: its manifest's digest (what a registry serves and a pod pins) and its parts."""

    name: str
    tag: str
    digest: str
    manifest: bytes
    config: bytes
    layers: tuple[Layer, ...]

    @property
    def size(self) -> int:
        """Bytes a pull transfers: config, manifest and the compressed layers."""
        return len(self.manifest) + len(self.config) + sum(layer.size for layer in self.layers)

    @property
    def unpacked_size(self) -> int:
        return sum(layer.unpacked_size for layer in self.layers)


def image_config(
    *,
    created: str,
    layers: Iterable[Layer],
    config: dict[str, Any],
    history: Iterable[str],
) -> bytes:
    layers = list(layers)
    return canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created": created, "created_by": step} for step in history],
        }
    )


def write_layout(out: Path, name: str, tag: str, config: bytes, layers: Iterable[Layer]) -> Image:
    """Write (or update in place) the OCI image layout ``out`` holding exactly one image tagged ``tag``.

    Blobs already present are kept (layers are hard-linked from the cache when possible); blobs no longer
    referenced are removed; ``index.json`` is written last, so a reader never sees a manifest without blobs.
    """
    layers = tuple(layers)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": [
                {"mediaType": MEDIA_LAYER_GZIP, "digest": la.digest, "size": la.size} for la in layers
            ],
        }
    )
    digest = sha256_digest(manifest)
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                {
                    "mediaType": MEDIA_MANIFEST,
                    "digest": digest,
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                }
            ],
        }
    )
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    wanted = {digest.removeprefix("sha256:"), sha256_digest(config).removeprefix("sha256:")}
    _write_if_changed(blobs / sha256_digest(config).removeprefix("sha256:"), config)
    _write_if_changed(blobs / digest.removeprefix("sha256:"), manifest)
    for layer in layers:
        hexdigest = layer.digest.removeprefix("sha256:")
        wanted.add(hexdigest)
        target = blobs / hexdigest
        if target.is_file() and target.stat().st_size == layer.size:
            continue
        tmp = target.with_name(f"{hexdigest}.tmp.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(layer.path, tmp)
        except OSError:
            shutil.copyfile(layer.path, tmp)
        os.replace(tmp, target)
    _write_if_changed(out / "oci-layout", canonical_json(OCI_LAYOUT))
    _write_if_changed(out / "index.json", index)
    for blob in blobs.iterdir():
        if blob.name not in wanted:
            blob.unlink()
    return Image(name, tag, digest, manifest, config, layers)


def read_layout(out: Path) -> tuple[str, str]:
    """(tag, manifest digest) of the single image in the layout ``out``."""
    index = json.loads((out / "index.json").read_text())
    (manifest,) = index["manifests"]
    return manifest["annotations"]["org.opencontainers.image.ref.name"], manifest["digest"]


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    write_atomic(path, data)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file and a rename: concurrent builds (two worktrees share the
    cache) never see half a file."""
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def diff_layouts(a: Path, b: Path, *, limit: int = 20) -> list[str]:
    """What differs between the single images of the layouts ``a`` and ``b``: config keys, then each layer's
    members (name, mode, owner, mtime, size, content hash), at most ``limit`` lines — what a failed
    reproducibility check prints, so the cause is in the log and not on the machine that saw it."""

    def image(out: Path) -> tuple[dict[str, Any], list[Path]]:
        _, digest = read_layout(out)
        blobs = out / "blobs" / "sha256"
        manifest = json.loads((blobs / digest.removeprefix("sha256:")).read_bytes())
        config = json.loads((blobs / manifest["config"]["digest"].removeprefix("sha256:")).read_bytes())
        return config, [blobs / la["digest"].removeprefix("sha256:") for la in manifest["layers"]]

    def members(path: Path) -> dict[str, tuple[Any, ...]]:
        found: dict[str, tuple[Any, ...]] = {}
        with tarfile.open(path, "r:gz") as tar:
            for m in tar:
                f = tar.extractfile(m) if m.isreg() else None
                content = hashlib.sha256(f.read()).hexdigest()[:12] if f else m.linkname
                found[m.name] = (m.type, oct(m.mode), m.uid, m.gid, m.mtime, m.size, content)
        return found

    (config_a, layers_a), (config_b, layers_b) = image(a), image(b)
    lines = []
    for key in ("config", "history", "created", "architecture", "os"):
        if config_a.get(key) != config_b.get(key):
            lines.append(f"config.{key}: {config_a.get(key)!r} != {config_b.get(key)!r}")
    if len(layers_a) != len(layers_b):
        lines.append(f"{len(layers_a)} layers != {len(layers_b)} layers")
    for i, (la, lb) in enumerate(zip(layers_a, layers_b, strict=False)):
        if la.name == lb.name:
            continue
        ma, mb = members(la), members(lb)
        for name in sorted(set(ma) | set(mb)):
            if ma.get(name) != mb.get(name):
                lines.append(f"layer {i} {name}: {ma.get(name)} != {mb.get(name)}")
                if len(lines) >= limit:
                    return lines
        if ma == mb:
            lines.append(f"layer {i}: same members, different bytes (tar headers or gzip)")
    return lines[:limit]
