"""``python -m hack.images {build,lock,push} ...`` — see docs/images.md.

- ``build [--only NAME] [--out DIR] [--refresh-base] [--rebuild]``: write the OCI layouts ``DIR/arc`` and
  ``DIR/arc-tools`` (default ``.arc/images``), their SBOMs ``DIR/<name>.spdx.json`` and ``DIR/images.json``;
  says when ``deploy/images.lock.json`` no longer matches the built ``arc-tools``.
- ``lock [--check]``: build, then write ``deploy/images.lock.json`` and render the workflow templates with the
  new ``arc-tools`` digest (``--check``: only exit 1 when the lock differs from the build).
- ``push --registry HOST[:PORT]/PREFIX [--dest-tls-verify=BOOL]``: copy the built layouts with skopeo to
  ``<registry>/arc:<version>`` and ``<registry>/arc-tools:<tag>`` (digests preserved). TLS verification is off
  for loopback registries unless asked for.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from hack.binaries import REPO_ROOT
from hack.images.build import DEFAULT_OUT, IMAGE_NAMES, LOCK_FILE, build, lock_text


def _is_loopback(registry: str) -> bool:
    host = registry.split("/", 1)[0]
    host = host[1 : host.index("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return value == "true"


def push(out: Path, registry: str, tls_verify: bool | None) -> dict[str, str]:
    """Copy every built layout to ``registry``; name → pushed reference with digest."""
    summary = json.loads((out / "images.json").read_text())
    verify = (not _is_loopback(registry)) if tls_verify is None else tls_verify
    pushed = {}
    for name in IMAGE_NAMES:
        entry = summary[name]
        destination = f"{registry.rstrip('/')}/{name}:{entry['tag']}"
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--preserve-digests",
                f"--dest-tls-verify={str(verify).lower()}",
                f"oci:{out / entry['layout']}:{entry['tag']}",
                f"docker://{destination}",
            ],
            check=True,
        )
        pushed[name] = f"{destination}@{entry['digest']}"
        print(f"pushed {pushed[name]}")
    return pushed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "lock"):
        p = sub.add_parser(name)
        p.add_argument("--out", type=Path, default=DEFAULT_OUT)
        p.add_argument("--only", choices=IMAGE_NAMES, action="append")
        p.add_argument("--refresh-base", action="store_true", help="fetch the Debian bases again")
        p.add_argument(
            "--rebuild", action="store_true", help="rebuild the app and tools layers (not the bases)"
        )
    sub.choices["lock"].add_argument("--check", action="store_true")
    p = sub.add_parser("push")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--registry", required=True, help="host[:port]/prefix")
    p.add_argument("--dest-tls-verify", type=_bool, default=None, metavar="BOOL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[images] %(message)s")

    if args.command == "push":
        push(args.out, args.registry, args.dest_tls_verify)
        return 0
    started = time.monotonic()
    names = tuple(args.only) if args.only else IMAGE_NAMES
    if args.command == "lock":
        names = tuple(dict.fromkeys([*names, "arc-tools"]))
    built = build(args.out, names, refresh_base=args.refresh_base, rebuild=args.rebuild)
    for name, b in built.items():
        print(
            f"{name}: {b.layout} {b.image.tag} {b.image.digest} "
            f"({b.image.size / 1e6:.1f} MB compressed, {b.image.unpacked_size / 1e6:.1f} MB unpacked, "
            f"{b.seconds:.1f} s)"
        )
    print(f"built in {time.monotonic() - started:.1f} s")
    if "arc-tools" not in built:
        return 0
    text = lock_text(args.out)
    current = LOCK_FILE.read_text() if LOCK_FILE.is_file() else ""
    if args.command == "build":
        if text != current:
            print(
                f"note: {LOCK_FILE.relative_to(REPO_ROOT)} does not match this arc-tools build "
                "(`python -m hack.images lock` pins it)"
            )
        return 0
    if args.check:
        if text != current:
            print(f"stale: {LOCK_FILE} (run `python -m hack.images lock`)", file=sys.stderr)
            return 1
        return 0
    if text != current:
        LOCK_FILE.write_text(text)
        print(f"wrote {LOCK_FILE}")
    subprocess.run([sys.executable, "-m", "workflowtemplates", "render"], cwd=REPO_ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
