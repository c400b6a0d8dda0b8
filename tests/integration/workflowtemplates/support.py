"""Real registries, OCI layouts and the steps' own scripts, for the workflow-template step tests.

- :class:`Registry`: a Debian ``docker-registry`` (distribution 2.8) on a free loopback port, plain HTTP,
  optionally with htpasswd basic auth (bcrypt from the stdlib ``crypt`` module — no extra dependency).
- :class:`Layout`: an OCI image layout written in Python (config + gzip'd tar layer, manifests, indexes), so
  images exist without any container runtime; ``skopeo copy oci:… docker://…`` pushes them.
- :func:`run_step`: the exact ``command`` and ``env`` of a step of a rendered template in
  deploy/workflowtemplates/, with ``{{workflow.parameters.x}}`` replaced by the test's values (or the
  template's defaults) and the credential directories pointed at the test's files.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hack.process import free_port
from workflowtemplates.render import DEFAULT_OUT

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # bcrypt for htpasswd; deprecated, still in 3.11's stdlib

DOCKER_REGISTRY = "/usr/bin/docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Registry:
    """One docker-registry process; ``user``/``password`` set → htpasswd auth."""

    root: Path
    user: str | None = None
    password: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}},
            "http": {"addr": self.host, "secret": "arc-test"},
        }
        if self.user is not None and self.password is not None:
            htpasswd = self.root / "htpasswd"
            hashed = crypt.crypt(self.password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
            htpasswd.write_text(f"{self.user}:{hashed}\n")
            config["auth"] = {"htpasswd": {"realm": "arc-test", "path": str(htpasswd)}}
        (self.root / "config.yml").write_text(yaml.safe_dump(config))
        log = (self.root / "registry.log").open("wb")
        self.process = subprocess.Popen(
            [DOCKER_REGISTRY, "serve", str(self.root / "config.yml")], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.root / 'registry.log').read_text()}")
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return
            except urllib.error.HTTPError as exc:  # 401 with auth: it is up
                if exc.code == 401:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"docker-registry on {self.host} did not come up")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def auth_dir(self, path: Path) -> Path:
        """A directory holding this registry's credentials as a mounted dockerconfigjson Secret would."""
        assert self.user is not None and self.password is not None
        write_dockerconfigjson(path, self.host, self.user, self.password)
        return path

    def creds_args(self) -> list[str]:
        return ["--creds", f"{self.user}:{self.password}"] if self.user else ["--no-creds"]

    def raw_manifest(self, ref: str) -> bytes:
        """``skopeo inspect --raw`` of ``<host>/<ref>``: the manifest bytes the registry serves."""
        proc = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                "--tls-verify=false",
                *self.creds_args(),
                f"docker://{self.host}/{ref}",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
        return proc.stdout

    def has(self, ref: str) -> bool:
        proc = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                "--tls-verify=false",
                *self.creds_args(),
                f"docker://{self.host}/{ref}",
            ],
            capture_output=True,
            check=False,
            timeout=60,
        )
        return proc.returncode == 0

    def push_layout(self, layout: Path, tag: str, ref: str) -> None:
        """Push ``oci:<layout>:<tag>`` as ``<host>/<ref>``, byte for byte."""
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                *(["--dest-creds", f"{self.user}:{self.password}"] if self.user else []),
                f"oci:{layout}:{tag}",
                f"docker://{self.host}/{ref}",
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )


def write_dockerconfigjson(directory: Path, host: str, user: str, password: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / ".dockerconfigjson").write_text(json.dumps({"auths": {host: {"auth": auth}}}))


class Layout:
    """An OCI image layout on disk, built from Python."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.refs: list[dict[str, Any]] = []

    def blob(self, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        digest = sha256(data)
        (self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def json_blob(self, value: Any, media_type: str, **extra: Any) -> dict[str, Any]:
        return self.blob(json.dumps(value, separators=(",", ":")).encode(), media_type, **extra)

    def image(self, content: str, *, arch: str = "amd64") -> dict[str, Any]:
        """A one-layer image whose only file is /hello with ``content``; returns its manifest descriptor."""
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w") as tf:
            info = tarfile.TarInfo("hello")
            data = content.encode()
            info.size, info.mtime = len(data), 0
            tf.addfile(info, io.BytesIO(data))
        layer_tar = tar.getvalue()
        layer = self.blob(gzip.compress(layer_tar, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
        config = self.json_blob(
            {
                "architecture": arch,
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]},
            },
            "application/vnd.oci.image.config.v1+json",
        )
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
        return self.json_blob(manifest, OCI_MANIFEST, platform={"architecture": arch, "os": "linux"})

    def index(self, manifests: list[dict[str, Any]]) -> dict[str, Any]:
        """A multi-architecture image index over ``manifests``."""
        return self.json_blob({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, OCI_INDEX)

    def artifact(
        self, config: tuple[bytes, str], layers: list[tuple[bytes, str, dict[str, str]]]
    ) -> dict[str, Any]:
        """A manifest with an arbitrary config and layers (Helm charts, cosign signatures)."""
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.blob(*config),
            "layers": [self.blob(data, mt, **({"annotations": a} if a else {})) for data, mt, a in layers],
        }
        return self.json_blob(manifest, OCI_MANIFEST)

    def tag(self, descriptor: dict[str, Any], tag: str) -> None:
        ref = {k: v for k, v in descriptor.items() if k != "platform"}
        ref["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.refs.append(ref)
        (self.path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.refs}))

    def read_blob(self, digest: str) -> bytes:
        return (self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def step(filename: str, name: str) -> dict[str, Any]:
    """The container of step ``name`` in deploy/workflowtemplates/<filename>, and the declared parameters."""
    doc = yaml.safe_load((DEFAULT_OUT / filename).read_text())
    template = next(t for t in doc["spec"]["templates"] if t["name"] == name)
    return {"container": template["container"], "parameters": doc["spec"]["arguments"]["parameters"]}


def run_step(
    filename: str,
    name: str,
    params: dict[str, str],
    *,
    work: Path,
    src_auth: Path | None = None,
    dst_auth: Path | None = None,
    tools: Sequence[Path] = (),
    timeout: float = 180,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the step's exact command with its env, parameters substituted as Argo would (``extra_env``:
    what the test's sandbox adds, e.g. a dead proxy so no tool reaches beyond loopback)."""
    found = step(filename, name)
    values = {p["name"]: p.get("value") for p in found["parameters"]}
    unknown = set(params) - set(values)
    assert not unknown, f"not parameters of {filename}: {unknown}"
    values.update(params)
    missing = [n for n, v in values.items() if v is None]
    assert not missing, f"required parameters missing: {missing}"
    env: dict[str, str] = {}
    for entry in found["container"]["env"]:
        value = entry["value"]
        for pname, pvalue in values.items():
            value = value.replace("{{workflow.parameters." + pname + "}}", str(pvalue))
        assert "{{" not in value, value
        env[entry["name"]] = value
    # The Secret volumes: an emptyDir (empty directory) unless the test gives credentials.
    env["ARC_SRC_AUTH_DIR"] = str(src_auth or _empty_dir(work / "src-empty"))
    env["ARC_DST_AUTH_DIR"] = str(dst_auth or _empty_dir(work / "dst-empty"))
    home = _empty_dir(work / "home")
    env |= {
        "PATH": os.pathsep.join([*map(str, tools), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home),
        "TMPDIR": str(_empty_dir(work / "tmp")),
    }
    if "ARC_OUTPUT_DIR" in env:  # the evidence files Argo would read: the test reads them with `outputs`
        env["ARC_OUTPUT_DIR"] = str(work / "outputs")
    env |= extra_env or {}
    return subprocess.run(
        found["container"]["command"], env=env, capture_output=True, text=True, check=False, timeout=timeout
    )


def outputs(work: Path) -> dict[str, str]:
    """The output parameters a step run by :func:`run_step` in ``work`` wrote, as Argo would report them
    (every declared one; "" for a file left empty)."""
    found = work / "outputs"
    return {p.name: p.read_text() for p in sorted(found.iterdir())} if found.is_dir() else {}


def _empty_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_tool(name: str) -> Path | None:
    """A tool that is neither in Debian nor built by hack/ yet (helm, oras): on PATH, or hack's cache."""
    found = shutil.which(name)
    if found:
        return Path(found)
    try:
        from hack.binaries import binary_path

        return binary_path(name)
    except (KeyError, FileNotFoundError):
        return None


class FileServer:
    """A loopback HTTP server for a directory, optionally behind basic auth (a classic Helm repo, files)."""

    def __init__(
        self,
        root: Path,
        *,
        user: str | None = None,
        password: str | None = None,
        address: str = "127.0.0.1",
        redirects: dict[str, str] | None = None,
    ) -> None:
        """``address``: another loopback address (127.0.0.2) makes another host; ``redirects``: path →
        absolute URL answered with 302 (after authentication), as mirrors send clients to a CDN."""
        import functools
        import http.server
        import threading

        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user else None
        self.requests: list[tuple[str, str | None]] = []
        requests = self.requests
        moved = dict(redirects or {})

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append((self.path, self.headers.get("Authorization")))
                if expected is not None and self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="arc-test"')
                    self.end_headers()
                    return
                if self.path in moved:
                    self.send_response(302)
                    self.send_header("Location", moved[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.root = root
        self.server = http.server.ThreadingHTTPServer(
            (address, 0), functools.partial(Handler, directory=str(root))
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"{self.server.server_address[0]}:{self.server.server_address[1]}"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def chart_archive(name: str, version: str) -> bytes:
    """A minimal Helm chart ``<name>-<version>.tgz`` (Chart.yaml, values.yaml, one template)."""
    files = {
        f"{name}/Chart.yaml": f"apiVersion: v2\nname: {name}\nversion: {version}\ntype: application\n",
        f"{name}/values.yaml": "greeting: hello\n",
        f"{name}/templates/configmap.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
            "data:\n  greeting: {{ .Values.greeting }}\n"
        ),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 0
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def classic_repository(root: Path, name: str, version: str) -> bytes:
    """A classic chart repository in ``root`` (index.yaml + the archive); returns the archive's bytes."""
    archive = chart_archive(name, version)
    filename = f"{name}-{version}.tgz"
    (root / filename).write_bytes(archive)
    index = {
        "apiVersion": "v1",
        "entries": {
            name: [
                {
                    "apiVersion": "v2",
                    "name": name,
                    "version": version,
                    "type": "application",
                    "urls": [filename],
                    "digest": hashlib.sha256(archive).hexdigest(),
                    "created": "2026-01-01T00:00:00Z",
                }
            ]
        },
        "generated": "2026-01-01T00:00:00Z",
    }
    (root / "index.yaml").write_text(yaml.safe_dump(index))
    return archive


def tool_dir(path: Path, name: str) -> Path | None:
    """A directory holding ``name`` (a symlink to :func:`find_tool`'s binary), or None when there is none."""
    found = find_tool(name)
    if found is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    link = path / name
    if not link.exists():
        link.symlink_to(found)
    return path
