"""ARC's local stack: a real Kubernetes control plane built from pinned upstream modules, on loopback.

    python -m hack.cluster up|down|status|run [--work-dir DIR]

Components, in start order (``down`` stops them in reverse, SIGTERM then SIGKILL, so it never hangs):
etcd (Kubernetes' store), etcd-arc (ARC's own dedicated store), kube-apiserver (RBAC, service-account
keys, client CA, front-proxy CA and proxy client cert for the aggregation layer), kube-controller-manager,
kube-scheduler, kwok (fake nodes that run pods to completion without a container runtime; stages in
hack/kwok/stages.yaml), arc-apiserver, kueue (hack/kueue.py: plain-pod quota, webhooks by URL),
argo-workflow-controller (hack/argo.py), arc-controller-manager and prometheus (hack/prometheus.py: scrapes
both API servers and the controller manager, evaluates deploy/prometheus/'s rules). ``up`` then installs the
demo objects (deploy/demo/, deploy/workflowtemplates/). With tracing (``--tracing``, the CLI's default;
``LocalCluster(tracing=True)``) jaeger (hack/jaeger.py) starts first and kube-apiserver, arc-apiserver and
arc-controller-manager send their spans to it over OTLP. With ``--h2-terminator``
(``LocalCluster(h2_terminator=True)``) arc-h2-terminator (hack/haproxy.py: HAProxy, TLS with HTTP/2) starts
before arc-apiserver and the APIService points at it; ARC serves it over a Unix socket.

Everything lives under the work directory (default ``.arc/`` in the checkout): ``pki/``, ``data/``,
``kubeconfig`` (admin), ``run/<component>.pid``, ``logs/<component>.log`` and ``cluster.json`` with the
ports chosen at the first ``up``. Every server binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import ssl
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from hack import argo, kueue, pki, prometheus
from hack.binaries import REPO_ROOT, binary_path
from hack.etcd import EtcdServer, EtcdTLS
from hack.haproxy import H2Terminator
from hack.jaeger import Jaeger
from hack.kube import KubeHTTP, KubeHTTPError, write_kubeconfig
from hack.manifests import documents
from hack.process import Component, free_port

DEFAULT_WORK_DIR = REPO_ROOT / ".arc"
FAKE_NODES = ("kwok-node-0", "kwok-node-1", "kwok-node-2")
ARC_NAMESPACE = "arc-system"
ARC_SERVICE_DNS = f"arc-apiserver.{ARC_NAMESPACE}.svc"
ARC_APISERVICE = "v1alpha1.arc.opendefense.cloud"
DEPLOY_DIR = REPO_ROOT / "deploy"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"


def log(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


@dataclass(frozen=True)
class Ports:
    """Ports chosen once per work directory and reused by later ``up`` calls."""

    etcd_client: int
    etcd_peer: int
    etcd_arc_client: int
    etcd_arc_peer: int
    kube_apiserver: int
    kube_controller_manager: int
    kube_scheduler: int
    kwok: int
    arc_apiserver: int
    arc_controller_manager: int
    kueue_webhook: int
    kueue_health: int
    kueue_metrics: int
    argo_metrics: int
    argo_server: int
    prometheus: int
    jaeger_otlp_grpc: int
    jaeger_otlp_http: int
    jaeger_query: int
    jaeger_admin: int
    jaeger_collector_grpc: int
    jaeger_collector_http: int
    jaeger_query_grpc: int
    arc_h2_terminator: int

    @classmethod
    def allocate(cls, known: dict[str, int] | None = None) -> Ports:
        """Fresh ports for every component, keeping the ones already ``known`` (from cluster.json)."""
        known = known or {}
        return cls(**{name: known.get(name) or free_port() for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ComponentSpec:
    """One component of the stack, described once (as hack/binaries.txt has one line per build).

    ``up`` walks ``COMPONENTS`` in order: ``before`` (install what it needs: RBAC, CRDs, registrations),
    start ``argv`` (with ``env``) unless it already runs, wait until ``ready`` (at most ``ready_timeout``
    seconds), then ``after`` (what needs it running: webhooks, nodes). ``down`` walks it in reverse.
    """

    name: str
    argv: Callable[[LocalCluster], list[str]]
    ready: Callable[[LocalCluster], bool] | None = None
    ready_timeout: float = 60.0
    ready_what: str = "ready"
    before: Callable[[LocalCluster], None] | None = None
    after: Callable[[LocalCluster], None] | None = None
    env: Mapping[str, str] | None = None
    controller_manager: bool = False
    """ARC's controller manager: left out with ``LocalCluster(controller_manager=False)``."""


class LocalCluster:
    """The local control plane in one work directory."""

    def __init__(
        self,
        work_dir: Path = DEFAULT_WORK_DIR,
        *,
        controller_manager: bool = True,
        arc_apiserver: bool = True,
        aggregator_routing: bool = False,
        pod_cidrs: Sequence[str] = (),
        demo: bool = True,
        etcd_tls: bool = True,
        arc_apiserver_args: Sequence[str] = (),
        kube_apiserver_args: Sequence[str] = (),
        tracing: bool = False,
        h2_terminator: bool = False,
    ) -> None:
        """``controller_manager=False`` leaves ARC's controller manager out (tests that run their own).

        For tests that install ARC into the cluster (the Helm chart) instead of running it on the host:
        ``arc_apiserver=False`` starts neither the host API server nor its etcd nor Prometheus and registers
        nothing (so the chart's APIService and its arc-metrics-reader are the only ones; the demo's ARC
        objects are left out too),
        ``aggregator_routing=True`` makes kube-apiserver dial an APIService's endpoint (pod) IPs instead
        of its Service's ClusterIP (``--enable-aggregator-routing``: no kube-proxy here), ``pod_cidrs``
        gives each fake node a ``spec.podCIDR``, from which kwok allocates its pods' IPs (without one kwok
        takes 10.0.0.0/24);
        ``demo=False`` installs none of the demo objects (a chart that ships its own templates).
        ``etcd_tls=False`` serves ARC's etcd over plain HTTP (benchmarks that compare with raw etcd calls);
        by default it requires client certificates, and only arc-apiserver holds one.
        ``arc_apiserver_args``: more flags for the host API server (benchmarks: ``--workers=2``);
        ``kube_apiserver_args``: more flags for kube-apiserver, after (so overriding) its own
        (bench/profile: ``--profiling=true``).
        ``tracing=True`` runs Jaeger and points kube-apiserver's, arc-apiserver's and the controller
        manager's tracing at it (``LocalCluster.jaeger``).
        ``h2_terminator=True`` puts HAProxy (``hack/haproxy.py``) in front of ARC's API server: TLS with
        ``h2`` for kube-apiserver's aggregator on its own port (the APIService's), ARC behind it on
        ``--tls-terminator-socket``; ARC's TLS port keeps serving (probes, Prometheus).
        """
        self.work_dir = work_dir.resolve()
        self.with_controller_manager = controller_manager
        self.with_arc_apiserver = arc_apiserver
        self.arc_apiserver_args = tuple(arc_apiserver_args)
        self.kube_apiserver_args = tuple(kube_apiserver_args)
        self.aggregator_routing = aggregator_routing
        if pod_cidrs and len(pod_cidrs) != len(FAKE_NODES):
            raise ValueError(f"pod_cidrs: one CIDR per fake node ({len(FAKE_NODES)})")
        self.pod_cidrs = tuple(pod_cidrs)
        self.with_demo = demo
        self.tracing = tracing
        self.with_h2_terminator = h2_terminator
        self.pki_dir = self.work_dir / "pki"
        self.kubeconfig = self.work_dir / "kubeconfig"
        self.state_file = self.work_dir / "cluster.json"
        self.ports = self._load_or_allocate_ports()
        self.etcd = EtcdServer("etcd", self.work_dir, self.ports.etcd_client, self.ports.etcd_peer)
        self.etcd_arc = EtcdServer(
            "etcd-arc",
            self.work_dir,
            self.ports.etcd_arc_client,
            self.ports.etcd_arc_peer,
            tls=EtcdTLS.create(self.pki_dir / "etcd-arc", "etcd-arc") if etcd_tls else None,
        )

    # ---- facts other tools read -------------------------------------------------------------------
    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.kube_apiserver}"

    def component(self, name: str) -> Component:
        return Component(name, self.work_dir)

    @property
    def components(self) -> list[ComponentSpec]:
        """Start order."""
        return [
            c
            for c in COMPONENTS
            if (self.with_controller_manager or not c.controller_manager)
            # Prometheus scrapes the local ARC (and binds arc-metrics-reader, which a chart installed into a
            # bare control plane brings itself): without ARC's API server it has nothing of ARC to scrape;
            # argo-server is for an SRE following ARC's Workflows, too.
            and (
                self.with_arc_apiserver
                or c.name not in ("arc-apiserver", "etcd-arc", "prometheus", "argo-server")
            )
            and (self.tracing or c.name != "jaeger")
            and ((self.with_h2_terminator and self.with_arc_apiserver) or c.name != "arc-h2-terminator")
        ]

    @property
    def component_names(self) -> list[str]:
        """Start order."""
        return [c.name for c in self.components]

    def admin(self) -> KubeHTTP:
        return KubeHTTP(
            self.server,
            self.pki_dir / "ca.crt",
            self.pki_dir / "admin.crt",
            self.pki_dir / "admin.key",
        )

    def _load_or_allocate_ports(self) -> Ports:
        known = json.loads(self.state_file.read_text())["ports"] if self.state_file.exists() else {}
        ports = Ports.allocate(known)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"ports": asdict(ports)}, indent=2) + "\n")
        return ports

    # ---- certificates and kubeconfigs -------------------------------------------------------------
    def ensure_pki(self) -> None:
        d = self.pki_dir
        ca = pki.create_ca(d, "ca", "arc-local-ca")
        front_proxy_ca = pki.create_ca(d, "front-proxy-ca", "arc-local-front-proxy-ca")
        pki.issue(
            ca,
            d,
            "kube-apiserver",
            common_name="kube-apiserver",
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ip_addresses=["127.0.0.1", KUBERNETES_SERVICE_IP],
            server=True,
        )
        pki.issue(front_proxy_ca, d, "front-proxy-client", common_name="front-proxy-client", client=True)
        # ARC's API server: serving certificate for the name the aggregator dials (<service>.<namespace>.svc).
        pki.issue(
            ca,
            d,
            "arc-apiserver",
            common_name="arc-apiserver",
            dns_names=[ARC_SERVICE_DNS, f"{ARC_SERVICE_DNS}.cluster.local", "localhost"],
            ip_addresses=["127.0.0.1"],
            server=True,
        )
        # kwok serves the kubelet API of every fake node (pods/log, from POD_LOGS_FILE): kube-apiserver dials
        # it at the nodes' InternalIP 127.0.0.1 and checks this certificate against the cluster CA.
        pki.issue(ca, d, "kwok-kubelet", common_name="kwok-kubelet", ip_addresses=["127.0.0.1"], server=True)
        pki.create_service_account_keys(d)
        clients = {
            # kube-apiserver's client certificate towards the kubelets (kwok asks for none; a kubelet does).
            "kube-apiserver-kubelet-client": ("kube-apiserver-kubelet-client", []),
            "admin": ("kubernetes-admin", ["system:masters"]),
            "kube-controller-manager": ("system:kube-controller-manager", []),
            "kube-scheduler": ("system:kube-scheduler", []),
            # kwok plays the kubelet of every fake node (node status, leases, pod status of many nodes).
            "kwok": ("kwok-controller", ["system:masters"]),
            # ARC's API server acts as its service account, so deploy/apiserver/rbac.yaml applies as is.
            "arc-apiserver-client": (f"system:serviceaccount:{ARC_NAMESPACE}:arc-apiserver", []),
            "arc-controller-manager": (f"system:serviceaccount:{ARC_NAMESPACE}:arc-controller-manager", []),
            # The same identity in system:monitoring: kube-apiserver continues a client's trace (W3C
            # traceparent) only for system:masters and system:monitoring (WithPublicEndpointFn in
            # k8s.io/apiserver's WithTracing), and starts a linked trace of its own for everyone else.
            # With tracing, the controller manager uses this one, so its reconcile span is the parent of
            # kube-apiserver's; system:monitoring only adds GET on /metrics and the health endpoints.
            "arc-controller-manager-traced": (
                f"system:serviceaccount:{ARC_NAMESPACE}:arc-controller-manager",
                ["system:monitoring"],
            ),
            # Kueue and Argo as their in-cluster service accounts: their upstream RBAC applies unchanged.
            "kueue": (kueue.USER, []),
            "argo-workflow-controller": (argo.USER, []),
            "argo-server": (argo.SERVER_USER, []),
            # Prometheus scrapes both API servers' /metrics with this identity (deploy/prometheus/rbac.yaml).
            "prometheus": (prometheus.USER, []),
        }
        for name, (user, groups) in clients.items():
            pair = pki.issue(ca, d, name, common_name=user, organizations=groups, client=True)
            path = (
                self.kubeconfig if name == "admin" else self.work_dir / "kubeconfigs" / f"{name}.kubeconfig"
            )
            write_kubeconfig(
                path,
                server=self.server,
                ca_file=ca.cert_file,
                cert_file=pair.cert_file,
                key_file=pair.key_file,
                user=user,
            )

    # ---- components -------------------------------------------------------------------------------
    def _kubeconfig_of(self, name: str) -> str:
        return str(self.work_dir / "kubeconfigs" / f"{name}.kubeconfig")

    def kube_apiserver_argv(self) -> list[str]:
        p = self.pki_dir
        return [
            str(binary_path("kube-apiserver")),
            f"--etcd-servers={self.etcd.client_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports.kube_apiserver}",
            f"--tls-cert-file={p / 'kube-apiserver.crt'}",
            f"--tls-private-key-file={p / 'kube-apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            # pods/log, exec...: the fake nodes' kubelet is kwok at their InternalIP 127.0.0.1 (never a node
            # name to resolve), its serving certificate checked against the cluster CA.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-certificate-authority={p / 'ca.crt'}",
            f"--kubelet-client-certificate={p / 'kube-apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'kube-apiserver-kubelet-client.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--profiling=false",
            # Aggregation layer: kube-apiserver proxies to extension API servers with this client
            # certificate and publish the CA + header names in kube-system/extension-apiserver-authentication.
            f"--requestheader-client-ca-file={p / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-uid-headers=X-Remote-Uid",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={p / 'front-proxy-client.key'}",
            *(["--enable-aggregator-routing=true"] if self.aggregator_routing else []),
            *(["--tracing-config-file=" + str(self.tracing_config_file())] if self.tracing else []),
            *self.kube_apiserver_args,
        ]

    def _component_base_argv(self, name: str, secure_port: int) -> list[str]:
        """What kube-controller-manager and kube-scheduler are both given (their component-base options):
        one kubeconfig to reach, authenticate and authorize against kube-apiserver, secure serving on
        loopback, no leader election (one replica) and no profiling endpoints."""
        kubeconfig = self._kubeconfig_of(name)
        return [
            str(binary_path(name)),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={secure_port}",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def kube_controller_manager_argv(self) -> list[str]:
        p = self.pki_dir
        return [
            *self._component_base_argv("kube-controller-manager", self.ports.kube_controller_manager),
            "--controllers=*",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            f"--cluster-signing-cert-file={p / 'ca.crt'}",
            f"--cluster-signing-key-file={p / 'ca.key'}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--cluster-name=arc-local",
        ]

    def kube_scheduler_argv(self) -> list[str]:
        return self._component_base_argv("kube-scheduler", self.ports.kube_scheduler)

    def kwok_argv(self) -> list[str]:
        return [
            str(binary_path("kwok")),
            f"--kubeconfig={self._kubeconfig_of('kwok')}",
            f"--config={REPO_ROOT / 'hack' / 'kwok' / 'stages.yaml'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{self.ports.kwok}",
            # The kubelet API of every fake node, over TLS at 127.0.0.1 (the nodes' InternalIP and kubelet
            # port): kube-apiserver's pods/log reaches it, and it answers from POD_LOGS_FILE (kwok-logs.yaml).
            f"--tls-cert-file={self.pki_dir / 'kwok-kubelet.crt'}",
            f"--tls-private-key-file={self.pki_dir / 'kwok-kubelet.key'}",
            "--node-ip=127.0.0.1",
            f"--node-port={self.ports.kwok}",
            f"--config={self.write_kwok_logs_config()}",
            "--node-lease-duration-seconds=40",
        ]

    @property
    def pod_logs_file(self) -> Path:
        """What every fake pod's ``main`` container logged, in the CRI log format kubelets keep
        (``<RFC 3339 time> stdout F <line>``): kwok serves it as ``pods/log`` (kubectl logs, Argo's and ARC's
        log readers). Empty until someone writes it; a test writes the lines its failing step should show."""
        return self.work_dir / "pod-logs" / "main.log"

    def write_kwok_logs_config(self) -> Path:
        """kwok's ClusterLogs for every pod (no selector): container ``main`` logs ``pod_logs_file``."""
        self.pod_logs_file.parent.mkdir(parents=True, exist_ok=True)
        self.pod_logs_file.touch()
        config = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "main-containers"},
            "spec": {
                "logs": [{"containers": ["main"], "logsFile": str(self.pod_logs_file), "follow": False}]
            },
        }
        path = self.work_dir / "kwok-logs.yaml"
        path.write_text(json.dumps(config))
        return path

    def arc_apiserver_argv(self) -> list[str]:
        p = self.pki_dir
        return [
            sys.executable,
            "-m",
            "apiserver",
            f"--kubeconfig={self._kubeconfig_of('arc-apiserver-client')}",
            *self.etcd_arc.client_flags(),
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.arc_apiserver}",
            f"--tls-cert-file={p / 'arc-apiserver.crt'}",
            f"--tls-private-key-file={p / 'arc-apiserver.key'}",
            *(
                [f"--tls-terminator-socket={self.h2_terminator.backend_socket}"]
                if self.with_h2_terminator
                else []
            ),
            *self.arc_apiserver_args,
            *self.tracing_flags(),
        ]

    def arc_apiserver_ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        url = f"https://127.0.0.1:{self.ports.arc_apiserver}/readyz"
        with urllib.request.urlopen(url, context=context, timeout=2) as resp:
            return bool(resp.status == 200)

    def register_arc_apiserver(self) -> None:
        """RBAC of deploy/apiserver, then the host process behind an ExternalName Service and the APIService.

        With kube-apiserver's default ``--enable-aggregator-routing=false`` an ExternalName Service routes to
        ``https://<externalName>:<APIService port>`` and skips the EndpointSlice checks (notes §0.16).
        """
        client = self.admin()
        for manifest in ("namespace.yaml", "rbac.yaml", "user-roles.yaml"):
            client.apply_manifest(DEPLOY_DIR / "apiserver" / manifest)
        client.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "arc-apiserver", "namespace": ARC_NAMESPACE},
                "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
            }
        )
        apiservice = yaml.safe_load((DEPLOY_DIR / "apiserver" / "apiservice.yaml").read_text())
        apiservice["spec"]["service"]["port"] = self.apiservice_port
        apiservice["spec"]["caBundle"] = base64.b64encode((self.pki_dir / "ca.crt").read_bytes()).decode()
        client.apply(apiservice)

    @property
    def apiservice_port(self) -> int:
        """Where the aggregator reaches ARC: HAProxy's port with the h2 terminator, else ARC's TLS port."""
        return self.ports.arc_h2_terminator if self.with_h2_terminator else self.ports.arc_apiserver

    @property
    def h2_terminator(self) -> H2Terminator:
        p = self.pki_dir
        return H2Terminator(
            work_dir=self.work_dir,
            port=self.ports.arc_h2_terminator,
            backend_socket=self.work_dir / "sockets" / "arc-apiserver.sock",
            cert_file=p / "arc-apiserver.crt",
            key_file=p / "arc-apiserver.key",
            client_ca_files=(p / "ca.crt", p / "front-proxy-ca.crt"),
        )

    def apiservice_available(self) -> bool:
        apiservice = self.admin().get(f"/apis/apiregistration.k8s.io/v1/apiservices/{ARC_APISERVICE}")
        conditions = {c["type"]: c for c in apiservice.get("status", {}).get("conditions", [])}
        return bool(conditions.get("Available", {}).get("status") == "True")

    def start_arc_apiserver(self) -> None:
        self.start_component(COMPONENTS_BY_NAME["arc-apiserver"])

    def wait_for_apiservice(self) -> None:
        self._poll(
            self.apiservice_available,
            timeout=90,
            what=f"APIService {ARC_APISERVICE} Available",
            watch=["arc-apiserver"],
        )
        log(f"arc-apiserver: registered as {ARC_APISERVICE}, Available")

    @property
    def controller_manager_kubeconfig(self) -> Path:
        """The controller manager's service-account identity (exactly deploy/controllers/rbac.yaml; with
        tracing also in system:monitoring, see ``ensure_pki``)."""
        return Path(
            self._kubeconfig_of("arc-controller-manager-traced" if self.tracing else "arc-controller-manager")
        )

    def arc_controller_manager_argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "controllers",
            f"--kubeconfig={self.controller_manager_kubeconfig}",
            "--leader-elect",
            "--artifact-workflow-controller",
            # Endpoints are probed, but only on loopback: nothing else may be reached from this machine
            # (the demo's docker.io Endpoint says so in its Ready condition: HostNotAllowed).
            "--endpoint-controller",
            "--endpoint-probe-allowed-hosts=127.0.0.1,localhost,::1",
            # as the chart: a failed step's last log lines in its message (kwok serves pods/log)
            "--failed-step-log-lines=10",
            # each artifact of an Order links its Workflow on argo-server (its API; no UI is built here)
            f"--argo-ui-base-url=https://{self.argo_server.address}",
            f"--metrics-bind-address=127.0.0.1:{self.ports.arc_controller_manager}",
            *self.tracing_flags(),
        ]

    def arc_controller_manager_secure_argv(self) -> list[str]:
        """The stack's manager, as the Helm chart runs it: /metrics over HTTPS (self-signed) for tokens
        allowed to get /metrics (bench/controllers runs the plain ``arc_controller_manager_argv``)."""
        return [*self.arc_controller_manager_argv(), "--metrics-secure"]

    def arc_controller_manager_ready(self) -> bool:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # self-signed; the probes need no credentials
        url = f"https://127.0.0.1:{self.ports.arc_controller_manager}/readyz"
        with urllib.request.urlopen(url, context=context, timeout=2) as resp:
            return bool(resp.status == 200)

    def install_controller_manager_rbac(self) -> None:
        """The controller manager runs as its service account (deploy/controllers/rbac.yaml)."""
        self.admin().apply_manifest(DEPLOY_DIR / "controllers" / "rbac.yaml")

    # ---- Prometheus ------------------------------------------------------------------------------
    @property
    def prometheus(self) -> prometheus.Prometheus:
        return prometheus.Prometheus(
            work_dir=self.work_dir,
            port=self.ports.prometheus,
            ca_file=self.pki_dir / "ca.crt",
            cert_file=self.pki_dir / "prometheus.crt",
            key_file=self.pki_dir / "prometheus.key",
            arc_apiserver=f"127.0.0.1:{self.ports.arc_apiserver}",
            kube_apiserver=f"127.0.0.1:{self.ports.kube_apiserver}",
            controller_manager=f"127.0.0.1:{self.ports.arc_controller_manager}",
            argo_workflow_controller=f"127.0.0.1:{self.ports.argo_metrics}",
        )

    def install_prometheus(self) -> None:
        """deploy/prometheus/rbac.yaml bound to Prometheus' user (its client certificate, for both API
        servers) and to its service account (a token, for the controller manager's ``--metrics-secure``,
        which reviews bearer tokens only, as controller-runtime's filter), and its configuration."""
        client = self.admin()
        client.apply_manifest(DEPLOY_DIR / "prometheus" / "rbac.yaml")
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ARC_NAMESPACE}})
        client.apply(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": prometheus.SERVICE_ACCOUNT, "namespace": ARC_NAMESPACE},
            }
        )
        client.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": prometheus.CLUSTER_ROLE},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": prometheus.CLUSTER_ROLE,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": prometheus.USER},
                    {
                        "kind": "ServiceAccount",
                        "name": prometheus.SERVICE_ACCOUNT,
                        "namespace": ARC_NAMESPACE,
                    },
                ],
            }
        )
        token = None
        if self.with_controller_manager:
            token = self.prometheus.token_file
            token.parent.mkdir(parents=True, exist_ok=True)
            pki.write_private_file(token, self._prometheus_token(client).encode())
        self.prometheus.write_config(controller_manager_token=token)

    def _prometheus_token(self, client: KubeHTTP) -> str:
        """A long-lived token of Prometheus' service account (a ``service-account-token`` Secret, filled by
        kube-controller-manager's token controller): ``make run`` may stay up for days."""
        name = f"{prometheus.SERVICE_ACCOUNT}-token"
        client.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/service-account-token",
                "metadata": {
                    "name": name,
                    "namespace": ARC_NAMESPACE,
                    "annotations": {"kubernetes.io/service-account.name": prometheus.SERVICE_ACCOUNT},
                },
            }
        )
        found: list[str] = []

        def filled() -> bool:
            data = client.get(f"/api/v1/namespaces/{ARC_NAMESPACE}/secrets/{name}").get("data") or {}
            if data.get("token"):
                found.append(base64.b64decode(data["token"]).decode())
            return bool(found)

        self._poll(filled, timeout=60, what=f"Secret {name} filled", watch=["kube-controller-manager"])
        return found[0]

    # ---- traces -----------------------------------------------------------------------------------
    @property
    def jaeger(self) -> Jaeger:
        p = self.ports
        return Jaeger(
            otlp_grpc_port=p.jaeger_otlp_grpc,
            otlp_http_port=p.jaeger_otlp_http,
            query_port=p.jaeger_query,
            admin_port=p.jaeger_admin,
            collector_grpc_port=p.jaeger_collector_grpc,
            collector_http_port=p.jaeger_collector_http,
            query_grpc_port=p.jaeger_query_grpc,
        )

    def tracing_config_file(self) -> Path:
        """kube-apiserver's TracingConfiguration: OTLP/gRPC to Jaeger, every request sampled."""
        return self.jaeger.write_tracing_configuration(self.work_dir / "tracing" / "kube-apiserver.yaml")

    def tracing_flags(self) -> list[str]:
        """ARC's processes: OTLP/HTTP to Jaeger (nothing without tracing)."""
        if not self.tracing:
            return []
        return ["--tracing-exporter=otlp", f"--tracing-endpoint={self.jaeger.otlp_http_endpoint}"]

    # ---- Kueue and Argo ---------------------------------------------------------------------------
    @property
    def kueue_server(self) -> kueue.Kueue:
        return kueue.Kueue(
            work_dir=self.work_dir,
            kubeconfig=Path(self._kubeconfig_of("kueue")),
            webhook_port=self.ports.kueue_webhook,
            health_port=self.ports.kueue_health,
            metrics_port=self.ports.kueue_metrics,
        )

    def install_kueue(self) -> None:
        """CRDs and RBAC before the process; the webhooks only once it serves them (`register_kueue_webhooks`:
        failurePolicy Fail — registered earlier, they would reject every pod of a managed namespace)."""
        q = self.kueue_server
        q.prepare(pki.KeyPair(self.pki_dir / "ca.crt", self.pki_dir / "ca.key"))
        q.install(self.admin())

    def register_kueue_webhooks(self) -> None:
        q = self.kueue_server
        q.register_webhooks(self.admin(), (self.pki_dir / "ca.crt").read_bytes())
        log(f"kueue: ready, webhooks at https://127.0.0.1:{q.webhook_port}")

    @property
    def workflow_controller(self) -> argo.WorkflowController:
        return argo.WorkflowController(
            kubeconfig=Path(self._kubeconfig_of("argo-workflow-controller")),
            kube_apiserver_port=self.ports.kube_apiserver,
            metrics_port=self.ports.argo_metrics,
        )

    @property
    def argo_server(self) -> argo.ArgoServer:
        return argo.ArgoServer(
            kubeconfig=Path(self._kubeconfig_of("argo-server")),
            kube_apiserver_port=self.ports.kube_apiserver,
            port=self.ports.argo_server,
        )

    def install_argo(self) -> None:
        self.workflow_controller.install(self.admin())

    def argo_started(self) -> bool:
        """Argo logged its start line since the process was last started (hack.process marks each start)."""
        log_file = self.component("argo-workflow-controller").log_file
        data = log_file.read_bytes() if log_file.exists() else b""
        return argo.STARTED_LOG_LINE.encode() in data[data.rfind(b" starting: ") :]

    def install_demo(self) -> None:
        """deploy/demo/ (Kueue quota, the ClusterArtifactType "oci") and every ClusterWorkflowTemplate in
        deploy/workflowtemplates/ (if that directory exists)."""
        client = self.admin()
        for name in ("namespace.yaml", "kueue.yaml"):
            client.apply_manifest(DEPLOY_DIR / "demo" / name)
        if self.with_arc_apiserver:  # else ARC's API is not served yet (the test installs it)
            for doc in documents(DEPLOY_DIR / "demo" / "clusterartifacttype-oci.yaml"):
                self._create_or_merge(client, doc)
        templates = DEPLOY_DIR / "workflowtemplates"
        applied = []
        for path in sorted(templates.glob("*.yaml")) if templates.is_dir() else []:
            for doc in documents(path):
                client.apply(doc)
                applied.append(doc["metadata"]["name"])
        log(f"demo objects installed (workflow templates: {', '.join(applied) or 'none yet'})")

    @staticmethod
    def _create_or_merge(client: KubeHTTP, obj: dict[str, Any]) -> None:
        """Create ``obj``, or merge-patch it over the existing one: ARC's API server has no server-side apply
        (it answers ``application/apply-patch+yaml`` with 415)."""
        path = client.object_path(obj)
        try:
            client.request("POST", path.rsplit("/", 1)[0], body=json.dumps(obj).encode())
        except KubeHTTPError as err:
            if err.status != 409:
                raise
            client.request(
                "PATCH", path, body=json.dumps(obj).encode(), content_type="application/merge-patch+json"
            )

    def start_component(self, spec: ComponentSpec) -> None:
        """``spec``'s before, start (unless it already runs), ready and after steps."""
        if spec.before is not None:
            spec.before(self)
        component = self.component(spec.name)
        if component.is_running():
            log(f"{spec.name}: already running (pid {component.pid()})")
        else:
            component.start(spec.argv(self), env=spec.env)
            log(f"{spec.name}: started (pid {component.pid()}, log {component.log_file})")
        if spec.ready is not None:
            ready = spec.ready
            component.wait_until(lambda: ready(self), timeout=spec.ready_timeout, what=spec.ready_what)
            log(f"{spec.name}: {spec.ready_what}")
        if spec.after is not None:
            spec.after(self)

    def kube_apiserver_ready(self) -> bool:
        return bool(self.admin().request("GET", "/readyz", timeout=3) == "ok")

    def up(self) -> None:
        """Start every component that is not running and wait until the cluster is usable."""
        started = time.monotonic()
        self.ensure_pki()
        for spec in self.components:
            self.start_component(spec)
        if self.with_demo:
            self.install_demo()
        log(f"control plane up in {time.monotonic() - started:.1f}s")

    def up_api_only(self) -> None:
        """Only what serves the APIs: both etcds, kube-apiserver and ARC's API server behind the aggregator
        (tests of API semantics that need no controllers, nodes, Argo or Kueue; ``down()`` stops them)."""
        self.ensure_pki()
        wanted = set(self.component_names)
        for name in ("jaeger", *API_COMPONENTS):
            if name in wanted:
                self.start_component(COMPONENTS_BY_NAME[name])

    def ensure_fake_nodes(self) -> None:
        client = self.admin()
        for index, name in enumerate(FAKE_NODES):
            spec = (
                {"podCIDR": self.pod_cidrs[index], "podCIDRs": [self.pod_cidrs[index]]}
                if self.pod_cidrs
                else {}
            )
            client.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    **({"spec": spec} if spec else {}),
                    "metadata": {
                        "name": name,
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "type": "kwok",
                        },
                    },
                }
            )

    def _poll(self, check: Callable[[], bool], *, timeout: float, what: str, watch: list[str]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in watch:
                component = self.component(name)
                if not component.is_running():
                    raise RuntimeError(f"{name} exited while waiting for {what}:\n{component.log_tail()}")
            try:
                if check():
                    return
            except (KubeHTTPError, OSError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")

    def nodes_ready(self) -> bool:
        """Every fake node is Ready and schedulable (no not-ready taint left by the node lifecycle)."""
        nodes = {n["metadata"]["name"]: n for n in self.admin().get("/api/v1/nodes")["items"]}
        for name in FAKE_NODES:
            node = nodes.get(name)
            if node is None:
                return False
            conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
            taints = [t["key"] for t in node.get("spec", {}).get("taints", [])]
            if conditions.get("Ready") != "True" or "node.kubernetes.io/not-ready" in taints:
                return False
        return True

    def prepare_nodes(self) -> None:
        """The fake nodes, Ready (kwok and the node lifecycle controller), and the default ServiceAccount."""
        self.ensure_fake_nodes()
        self.wait_for_nodes_ready(timeout=120)
        self.wait_for_default_service_account(timeout=120)

    def wait_for_nodes_ready(self, *, timeout: float) -> None:
        self._poll(
            self.nodes_ready,
            timeout=timeout,
            what="kwok nodes Ready",
            watch=["kwok", "kube-controller-manager"],
        )
        log(f"nodes Ready: {', '.join(FAKE_NODES)}")

    def wait_for_default_service_account(self, *, timeout: float) -> None:
        def exists() -> bool:
            self.admin().get("/api/v1/namespaces/default/serviceaccounts/default")
            return True

        self._poll(
            exists, timeout=timeout, what="the default ServiceAccount", watch=["kube-controller-manager"]
        )

    def down(self) -> None:
        """Stop every component in reverse start order (SIGTERM, SIGKILL after a timeout) — also those this
        instance's options leave out (a stack started with ``--h2-terminator`` or tracing, stopped without
        them)."""
        for name in reversed([c.name for c in COMPONENTS]):
            component = self.component(name)
            if component.is_running():
                component.stop(timeout=20)
                log(f"{name}: stopped")

    def status(self) -> dict[str, Any]:
        return {
            name: {"running": self.component(name).is_running(), "pid": self.component(name).pid()}
            for name in self.component_names
        }


def _etcd(name: str, server: Callable[[LocalCluster], EtcdServer]) -> ComponentSpec:
    return ComponentSpec(
        name,
        lambda c: server(c).argv(),
        before=lambda c: server(c).data_dir.mkdir(parents=True, exist_ok=True),
        ready=lambda c: server(c).healthy(),
        ready_timeout=30,
        ready_what="healthy",
    )


COMPONENTS: tuple[ComponentSpec, ...] = (
    ComponentSpec("jaeger", lambda c: c.jaeger.argv(), ready=lambda c: c.jaeger.ready()),
    _etcd("etcd", lambda c: c.etcd),
    _etcd("etcd-arc", lambda c: c.etcd_arc),
    ComponentSpec(
        "kube-apiserver",
        LocalCluster.kube_apiserver_argv,
        ready=LocalCluster.kube_apiserver_ready,
        ready_timeout=120,
    ),
    ComponentSpec("kube-controller-manager", LocalCluster.kube_controller_manager_argv),
    ComponentSpec("kube-scheduler", LocalCluster.kube_scheduler_argv),
    ComponentSpec("kwok", LocalCluster.kwok_argv, after=LocalCluster.prepare_nodes),
    ComponentSpec(
        "arc-h2-terminator",
        lambda c: c.h2_terminator.argv(),
        ready=lambda c: c.h2_terminator.ready(c.pki_dir / "ca.crt"),
        ready_what="serving TLS with h2",
    ),
    ComponentSpec(
        "arc-apiserver",
        LocalCluster.arc_apiserver_argv,
        before=LocalCluster.register_arc_apiserver,
        ready=LocalCluster.arc_apiserver_ready,
        after=LocalCluster.wait_for_apiservice,
    ),
    ComponentSpec(
        "kueue",
        lambda c: c.kueue_server.argv(),
        before=LocalCluster.install_kueue,
        ready=lambda c: c.kueue_server.ready(),
        ready_timeout=90,
        after=LocalCluster.register_kueue_webhooks,
    ),
    ComponentSpec(
        "argo-workflow-controller",
        lambda c: c.workflow_controller.argv(),
        env=argo.ENV,
        before=LocalCluster.install_argo,
        ready=LocalCluster.argo_started,
        ready_what="started",
    ),
    ComponentSpec(
        "argo-server",
        lambda c: c.argo_server.argv(),
        ready=lambda c: c.argo_server.ready(),
    ),
    ComponentSpec(
        "arc-controller-manager",
        LocalCluster.arc_controller_manager_secure_argv,
        before=LocalCluster.install_controller_manager_rbac,
        ready=LocalCluster.arc_controller_manager_ready,
        controller_manager=True,
    ),
    ComponentSpec(
        "prometheus",
        lambda c: c.prometheus.argv(),
        before=LocalCluster.install_prometheus,
        ready=lambda c: c.prometheus.ready(),
    ),
)
"""The stack, in start order."""

COMPONENTS_BY_NAME: dict[str, ComponentSpec] = {c.name: c for c in COMPONENTS}
API_COMPONENTS = ("etcd", "etcd-arc", "kube-apiserver", "arc-h2-terminator", "arc-apiserver")
# (with tracing, ``up_api_only`` starts jaeger first too)
"""What ``up_api_only`` starts: the APIs without controllers, nodes, Argo or Kueue."""


def _banner(cluster: LocalCluster) -> str:
    return "\n".join(
        [
            "",
            "ARC local stack is up. Point kubectl at it with:",
            "",
            f"export KUBECONFIG={cluster.kubeconfig}",
            "",
            "Demo (another shell): make demo  — applies deploy/examples/, watches the Order until Succeeded",
            f"Prometheus: {cluster.prometheus.url}  (alerts and runbook: docs/operations.md)",
            f"argo-server: export ARGO_SERVER={cluster.argo_server.address} ARGO_INSECURE_SKIP_VERIFY=true"
            "  (and ARGO_TOKEN: docs/guides/sre.md)",
            *(
                [f"traces (Jaeger UI and query API /api/traces): {cluster.jaeger.query_url}"]
                if cluster.tracing
                else []
            ),
            f"logs: {cluster.work_dir / 'logs'}    pids: {cluster.work_dir / 'run'}",
            "Press Ctrl-C to stop everything.",
            "",
        ]
    )


def run(cluster: LocalCluster) -> None:
    """``make run``: bring everything up, print how to use it, stay up until Ctrl-C, then stop it all."""
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        cluster.up()
        print(_banner(cluster), flush=True)
        reported: set[str] = set()
        while not stopping:
            for name in cluster.component_names:
                if name not in reported and not cluster.component(name).is_running():
                    reported.add(name)
                    log(f"{name} is not running any more; see {cluster.component(name).log_file}")
            time.sleep(1)
    finally:
        log("stopping ...")
        cluster.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status", "run"])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument(
        "--tracing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run Jaeger and send kube-apiserver's and ARC's spans to it",
    )
    parser.add_argument(
        "--h2-terminator",
        action="store_true",
        help="HAProxy in front of ARC's API server: HTTP/2 to kube-apiserver's aggregator (hack/haproxy.py)",
    )
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.work_dir, tracing=args.tracing, h2_terminator=args.h2_terminator)
    if args.command == "up":
        cluster.up()
        print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
        if cluster.tracing:
            print(f"# traces (Jaeger UI and query API /api/traces): {cluster.jaeger.query_url}", flush=True)
    elif args.command == "down":
        cluster.down()
    elif args.command == "status":
        print(json.dumps(cluster.status(), indent=2))
    else:
        run(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
