"""`arc-controller-manager` / `python -m controllers`: the Manager with the Order controller.

    python -m controllers [--kubeconfig PATH] [--leader-elect] [--metrics-bind-address 127.0.0.1:0]
                          [--health-probe-bind-address HOST:PORT] [--concurrency N]
                          [--leader-election-namespace NS] [--leader-election-id arc-controller-manager]
                          [--log-level info] [--log-format json] [--endpoint-controller]
                          [--endpoint-probe-interval 300] [--endpoint-probe-timeout 5]
                          [--endpoint-probe-concurrency 8] [--endpoint-probe-denied-cidrs CIDR,...]
                          [--endpoint-probe-allowed-hosts HOST,...]
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

from api.tracing import add_tracing_flags
from controllers.artifactworkflow import FINALIZER as AW_FINALIZER
from controllers.artifactworkflow import setup_artifact_workflow_controller
from controllers.endpoint import setup_endpoint_controller
from controllers.endpoint.probe import DEFAULT_DENIED_CIDRS, AddressPolicy, Prober
from controllers.kube import ConfigError, connect
from controllers.kube.incluster import in_cluster_namespace, resolve_kubeconfig
from controllers.kube.resources import SECRETS
from controllers.order import setup_order_controller
from controllers.order.hashkey import DEFAULT_SECRET, load_or_create_hash_key
from controllers.order.setup import decode_secret
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
        "--metrics-secure",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Serve /metrics over HTTPS to callers kube-apiserver authenticates (TokenReview) and authorizes"
        " (SubjectAccessReview: get on the non-resource URL /metrics), as controller-runtime's filter; the"
        " Helm chart turns it on",
    )
    p.add_argument(
        "--metrics-cert-dir",
        type=Path,
        default=None,
        help="directory with tls.crt and tls.key for --metrics-secure (default: self-signed, in memory)",
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
        "--failed-step-log-lines",
        type=int,
        default=0,
        help="End a failed artifact's message with this many last lines of the failed step's container"
        " log, read through pods/log and masked (0: off; the kubelets must serve logs to the API server).",
    )
    p.add_argument(
        "--argo-ui-base-url",
        default=None,
        help="The Argo UI (argo-server) as users reach it, e.g. https://argo.example.com: each artifact in"
        " an Order's status links its Workflow there (workflowURL; kubectl describe order shows it).",
    )
    p.add_argument(
        "--hash-key-secret",
        default=None,
        help="namespace/name of the Secret holding the installation's artifact hash key (created when"
        f" missing; SPEC 4.1); default: {HASH_KEY_NAME} in the pod's namespace,"
        f" {DEFAULT_SECRET} outside a pod",
    )
    p.add_argument(
        "--endpoint-controller",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Also run the Endpoint controller: probe every Endpoint's remote from this process and report"
        " Reachable, Authenticated and Ready in its status (the chart turns it on).",
    )
    p.add_argument(
        "--endpoint-probe-interval",
        type=float,
        default=300.0,
        help="Seconds between probes of an unchanged Endpoint, plus up to 20%% jitter (0: probe only when"
        " the Endpoint or its Secret changes).",
    )
    p.add_argument(
        "--endpoint-probe-timeout", type=float, default=5.0, help="Deadline of one probe, in seconds."
    )
    p.add_argument("--endpoint-probe-concurrency", type=int, default=8, help="Probes in flight at most.")
    p.add_argument(
        "--endpoint-probe-denied-cidrs",
        default=",".join(DEFAULT_DENIED_CIDRS),
        help="Comma-separated CIDRs that probes never connect to, checked on the resolved addresses"
        " (default: unspecified, link-local and cloud metadata addresses; add your node and service"
        " ranges, or loopback, as your cluster needs; empty allows every address).",
    )
    p.add_argument(
        "--endpoint-probe-allowed-hosts",
        default="",
        help="Comma-separated host names or IP addresses that probes may reach, checked before anything"
        " is resolved (default: any host not denied by --endpoint-probe-denied-cidrs).",
    )
    p.add_argument("--log-level", default="info")
    p.add_argument("--log-format", choices=("json", "text"), default="json")
    add_tracing_flags(p, "--trace-exporter")
    args = p.parse_args(argv)
    try:
        args.endpoint_probe_policy = AddressPolicy.parse(
            args.endpoint_probe_denied_cidrs.split(","), args.endpoint_probe_allowed_hosts.split(",")
        )
    except ValueError as exc:
        p.error(f"--endpoint-probe-denied-cidrs: {exc}")
    if (
        args.endpoint_probe_timeout <= 0
        or args.endpoint_probe_concurrency < 1
        or args.endpoint_probe_interval < 0
    ):
        p.error(
            "--endpoint-probe-timeout and --endpoint-probe-concurrency must be positive, the interval >= 0"
        )
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
        metrics_secure=args.metrics_secure,
        metrics_cert_dir=args.metrics_cert_dir,
    )
    # With the ArtifactWorkflow controller here, ArtifactWorkflows are created with its finalizer already on
    # (one PATCH per ArtifactWorkflow saved); without it, nothing would ever remove that finalizer.
    setup_order_controller(
        manager,
        hash_key=hash_key,
        concurrency=args.concurrency,
        workflow_finalizers=[AW_FINALIZER] if args.artifact_workflow_controller else [],
        # Without the ArtifactWorkflow controller nothing here reads their specs: cache them pruned.
        cache_artifact_workflow_specs=args.artifact_workflow_controller,
        argo_ui_base_url=args.argo_ui_base_url,
    )
    if args.artifact_workflow_controller:
        setup_artifact_workflow_controller(
            manager, concurrency=args.concurrency, log_lines=args.failed_step_log_lines
        )
    if args.endpoint_controller:
        setup_endpoint_controller(
            manager,
            # the Order controller's Secret informer (one watch of Secrets): only a keyed hash of the data
            secrets=manager.informer(SECRETS, lambda raw: decode_secret(raw, key=hash_key)),
            prober=Prober(
                args.endpoint_probe_policy,
                timeout=args.endpoint_probe_timeout,
                concurrency=args.endpoint_probe_concurrency,
            ),
            interval=args.endpoint_probe_interval,
            concurrency=min(args.concurrency, args.endpoint_probe_concurrency),
        )
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
        tracing = TracingSettings.from_flags(args)
    except ValueError as exc:
        raise SystemExit(f"arc-controller-manager: {exc}") from exc
    setup_tracing(tracing)
    return uvloop.run(run(args))  # as the API server: less CPU per request and per watch event


if __name__ == "__main__":
    sys.exit(main())
