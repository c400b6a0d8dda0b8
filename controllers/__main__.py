"""`arc-controller-manager` / `python -m controllers`: the Manager with the Order controller.

    python -m controllers [--kubeconfig PATH] [--leader-elect] [--metrics-bind-address 127.0.0.1:0]
                          [--health-probe-bind-address HOST:PORT] [--concurrency N]
                          [--leader-election-namespace NS] [--leader-election-id arc-controller-manager]
                          [--log-level info] [--log-format json]
                          [--tracing-exporter otlp --tracing-endpoint URL --tracing-sampling-rate R]

kube-apiserver is found as controller-runtime finds it: --kubeconfig, $KUBECONFIG, the pod's service
account (in a pod; `controllers.kube.incluster`), ~/.kube/config. The leader Lease lives in the pod's own
namespace unless --leader-election-namespace says otherwise (arc-system outside a pod).

Runs until SIGTERM/SIGINT, then stops gracefully (releasing the leader Lease). Exits 1 when leadership is
lost, as controller-runtime does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import uvloop

from controllers.artifactworkflow import FINALIZER as AW_FINALIZER
from controllers.artifactworkflow import setup_artifact_workflow_controller
from controllers.kube import ConfigError, connect
from controllers.kube.incluster import in_cluster_namespace, resolve_kubeconfig
from controllers.order import setup_order_controller
from controllers.order.hashkey import DEFAULT_SECRET, load_or_create_hash_key
from controllers.runtime import LeaderElectionConfig, LostLeadershipError, Manager
from controllers.runtime.logs import configure_logging
from controllers.runtime.tracing import TracingSettings, setup_tracing

logger = logging.getLogger("controllers")

HASH_KEY_NAME = DEFAULT_SECRET.partition("/")[2]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="arc-controller-manager", description=__doc__.split("\n")[0])
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="kubeconfig file (default: $KUBECONFIG, else the in-cluster service account,"
        " else ~/.kube/config)",
    )
    p.add_argument(
        "--leader-elect", action="store_true", help="Elect a leader on a Lease before reconciling."
    )
    p.add_argument(
        "--leader-election-namespace",
        default=None,
        help="namespace of the leader Lease (default: the pod's namespace; arc-system outside a pod)",
    )
    p.add_argument("--leader-election-id", default="arc-controller-manager")
    p.add_argument(
        "--metrics-bind-address",
        default="127.0.0.1:0",
        help="host:port serving /metrics (':8080' is every interface; '0' turns it off); also the probes"
        " unless --health-probe-bind-address is given",
    )
    p.add_argument(
        "--health-probe-bind-address",
        default=None,
        help="host:port serving /healthz /livez /readyz (':8081' is every interface; '0' turns it off)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="Workers per controller (16: bench/controllers converged 1,000 Orders x 3 artifacts as fast as"
        " with 32 and with less CPU per Order than 4 or 8; reconciles wait on the API, not on the CPU).",
    )
    p.add_argument(
        "--artifact-workflow-controller",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Also run the ArtifactWorkflow controller (needs Argo's Workflow CRD in the cluster).",
    )
    p.add_argument(
        "--hash-key-secret",
        default=None,
        help="namespace/name of the Secret holding the installation's artifact hash key (created when"
        f" missing; SPEC 4.1); default: {HASH_KEY_NAME} in the pod's namespace,"
        f" {DEFAULT_SECRET} outside a pod",
    )
    p.add_argument("--log-level", default="info")
    p.add_argument("--log-format", choices=("json", "text"), default="json")
    p.add_argument(
        "--tracing-exporter",
        "--trace-exporter",
        dest="tracing_exporter",
        choices=("none", "console", "otlp"),
        default=None,
        help="where spans go (default: $OTEL_TRACES_EXPORTER; otlp when an OTLP endpoint is set; else none)",
    )
    p.add_argument(
        "--tracing-endpoint",
        default=None,
        help="OTLP collector URL, e.g. http://127.0.0.1:4318 (default: $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    p.add_argument(
        "--tracing-protocol",
        choices=("grpc", "http/protobuf"),
        default=None,
        help="OTLP transport (default: $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf)",
    )
    p.add_argument(
        "--tracing-sampling-rate",
        type=float,
        default=None,
        help="fraction of reconciles whose traces are recorded (default: $OTEL_TRACES_SAMPLER, else all);"
        " kube-apiserver and ARC's API server follow the reconcile's decision (parent-based sampling)",
    )
    args = p.parse_args(argv)
    args.kubeconfig = resolve_kubeconfig(args.kubeconfig)
    pod_namespace = in_cluster_namespace()
    if args.leader_election_namespace is None:
        args.leader_election_namespace = pod_namespace or "arc-system"
    if args.hash_key_secret is None:
        args.hash_key_secret = f"{pod_namespace}/{HASH_KEY_NAME}" if pod_namespace else DEFAULT_SECRET
    return args


async def run(args: argparse.Namespace) -> int:
    try:
        client = await connect(args.kubeconfig)
    except ConfigError as exc:
        logger.error("no usable configuration for kube-apiserver", extra={"error": str(exc)})
        return 1
    hash_key = await load_or_create_hash_key(client, args.hash_key_secret)
    leader_election = None
    if args.leader_elect:
        identity = f"{socket.gethostname()}_{uuid.uuid4()}"
        leader_election = LeaderElectionConfig(
            namespace=args.leader_election_namespace, name=args.leader_election_id, identity=identity
        )
    manager = Manager(
        client,
        leader_election=leader_election,
        bind_address=args.metrics_bind_address,
        health_probe_bind_address=args.health_probe_bind_address,
    )
    # With the ArtifactWorkflow controller here, ArtifactWorkflows are created with its finalizer already on
    # (one PATCH per ArtifactWorkflow saved); without it, nothing would ever remove that finalizer.
    setup_order_controller(
        manager,
        hash_key=hash_key,
        concurrency=args.concurrency,
        workflow_finalizers=[AW_FINALIZER] if args.artifact_workflow_controller else [],
    )
    if args.artifact_workflow_controller:
        setup_artifact_workflow_controller(manager, concurrency=args.concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        await manager.run(stop)
    except* LostLeadershipError:
        logger.error("leadership lost, exiting")
        code = 1
    finally:
        await client.close()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level, json_output=args.log_format == "json")
    try:
        tracing = TracingSettings.resolve(
            exporter=args.tracing_exporter,
            endpoint=args.tracing_endpoint,
            protocol=args.tracing_protocol,
            sampling_rate=args.tracing_sampling_rate,
        )
    except ValueError as exc:
        raise SystemExit(f"arc-controller-manager: {exc}") from exc
    setup_tracing(tracing)
    return uvloop.run(run(args))  # as the API server: less CPU per request and per watch event


if __name__ == "__main__":
    sys.exit(main())
