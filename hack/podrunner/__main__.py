"""``python -m hack.podrunner``: run a release's pods for real on the local stack (see the package docstring).

    python -m hack.podrunner network up|down --pods-cidr 10.244.0.0/16 [--service-cidr 10.96.0.0/16]
    python -m hack.podrunner load --layout DIR[:TAG] --name localhost/arc:e2e
    python -m hack.podrunner run --work-dir .arc --namespace arc-system \\
        --selector app.kubernetes.io/instance=arc --pods-cidr 10.244.0.0/16 [--state-dir DIR]
    python -m hack.podrunner cleanup          # every container and namespace a crashed run left

``run`` stops every pod it started on SIGTERM/SIGINT. The bridge and routes belong to whoever ran
``network up`` (tests do it in-process, before the cluster can dial anything).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hack.cluster import SERVICE_CLUSTER_IP_RANGE, LocalCluster
from hack.podrunner.network import PodNetwork
from hack.podrunner.runner import LABEL, PodRunner

DEFAULT_STATE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "arc" / "podrunner"


def podman_command(state_dir: Path) -> list[str]:
    """podman with the harness's own storage (never the machine's) and runc (crun cannot setrlimit here)."""
    return [
        "podman",
        "--root", str(state_dir / "storage"),
        "--runroot", str(state_dir / "run"),
        "--storage-driver", "overlay",
        "--runtime", "runc",
        "--events-backend", "file",
    ]  # fmt: skip


def load_image(state_dir: Path, layout: str, name: str) -> str:
    """Copy an OCI layout (``DIR`` or ``DIR:TAG``) into the harness's storage as ``name``; its image id.

    skopeo rather than ``podman pull oci:``: podman derives a name from the layout's path, and a path
    component starting with a dot (``.arc/images``) is not a valid reference.
    """
    store = f"containers-storage:[overlay@{state_dir / 'storage'}+{state_dir / 'run'}]{name}"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}", store], check=True, capture_output=True)
    podman = podman_command(state_dir)
    for attempt in range(5):  # right after skopeo, podman can briefly fail to read the store
        out = subprocess.run(
            [*podman, "image", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True
        )
        if out.returncode == 0:
            break
        time.sleep(1 + attempt)
    else:
        raise RuntimeError(f"podman image inspect {name}: {out.stderr.strip()}")
    subprocess.run([*podman, "image", "prune", "--force"], capture_output=True)  # replaced builds
    return out.stdout.strip()


def cleanup(state_dir: Path, prefix: str) -> None:
    podman = podman_command(state_dir)
    subprocess.run(
        [*podman, "rm", "--force", "--ignore", "--filter", f"label={LABEL}=true"], capture_output=True
    )
    network = PodNetwork(pods_cidr="10.244.0.0/16", service_cidr=SERVICE_CLUSTER_IP_RANGE, prefix=prefix)
    network.teardown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hack.podrunner", description=__doc__.split("\n")[0])
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    p.add_argument("--prefix", default="arcpr", help="names of links, namespaces and containers")
    sub = p.add_subparsers(dest="command", required=True)
    net = sub.add_parser("network")
    net.add_argument("action", choices=("up", "down"))
    load = sub.add_parser("load")
    load.add_argument("--layout", required=True)
    load.add_argument("--name", required=True)
    run = sub.add_parser("run")
    run.add_argument("--work-dir", type=Path, required=True, help="the LocalCluster's work directory")
    run.add_argument("--namespace", required=True)
    run.add_argument("--selector", required=True, help="label selector of the pods to run")
    for parser in (net, run):
        parser.add_argument("--pods-cidr", default="10.244.0.0/16")
        parser.add_argument("--service-cidr", default=SERVICE_CLUSTER_IP_RANGE)
    sub.add_parser("cleanup")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "cleanup":
        cleanup(args.state_dir, args.prefix)
        return 0
    if args.command == "load":
        print(load_image(args.state_dir, args.layout, args.name))
        return 0
    network = PodNetwork(pods_cidr=args.pods_cidr, service_cidr=args.service_cidr, prefix=args.prefix)
    if args.command == "network":
        network.setup() if args.action == "up" else network.teardown()
        return 0
    cluster = LocalCluster(args.work_dir)
    runner = PodRunner(
        cluster.admin(),
        namespace=args.namespace,
        selector=args.selector,
        state_dir=args.state_dir,
        network=network,
        podman=podman_command(args.state_dir),
        kubernetes_endpoint=("127.0.0.1", cluster.ports.kube_apiserver),
    )

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await runner.run(stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
