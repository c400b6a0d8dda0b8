"""hack.podrunner.runner's decisions without a cluster: which pods run, Service endpoints, DNS stand-ins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hack.kube import KubeHTTP
from hack.podrunner.network import PodNetwork
from hack.podrunner.proxy import ServicePort
from hack.podrunner.runner import PodRunner, _runnable


def runner() -> PodRunner:
    kube = KubeHTTP("https://127.0.0.1:1", Path("ca"), Path("crt"), Path("key"))
    return PodRunner(
        kube,
        namespace="arc-system",
        selector="app=x",
        state_dir=Path("/nonexistent"),
        network=PodNetwork(pods_cidr="10.244.0.0/16", service_cidr="10.96.0.0/16"),
        podman=["podman"],
        kubernetes_endpoint=("127.0.0.1", 6443),
    )


def pod(**meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", **meta}, "status": {"phase": "Running", "podIP": "10.244.0.3"}}


def test_only_running_non_job_pods_with_an_ip_run() -> None:
    assert _runnable(pod())
    assert not _runnable(pod(deletionTimestamp="2026-12-04T00:00:00Z"))
    assert not _runnable(pod(ownerReferences=[{"kind": "Job", "name": "hook"}]))
    assert _runnable(pod(ownerReferences=[{"kind": "ReplicaSet", "name": "rs"}]))
    assert not _runnable({"metadata": {"name": "p"}, "status": {"phase": "Pending"}})


def test_endpoints_by_port_name_ready_only_and_kubernetes_fallback() -> None:
    r = runner()
    r._slices = {
        "arc-system/arc-etcd": [
            {
                "ports": [{"name": "client", "port": 2379}, {"name": "peer", "port": 2380}],
                "endpoints": [
                    {"addresses": ["10.244.1.3"], "conditions": {"ready": True}},
                    {"addresses": ["10.244.2.3"], "conditions": {"ready": False}},
                ],
            }
        ]
    }
    etcd = r._endpoints_of(ServicePort("arc-system", "arc-etcd", "10.96.3.4", 2379), "client")
    assert etcd() == [("10.244.1.3", 2379)]
    kubernetes = r._endpoints_of(ServicePort("default", "kubernetes", "10.96.0.1", 443), "https")
    assert kubernetes() == [("127.0.0.1", 6443)]  # kube-apiserver publishes none for 127.0.0.1


def test_hosts_entries_name_services_and_headless_members() -> None:
    r = runner()
    r._kubernetes = ("10.96.0.1", 443)
    r._services = [
        {"metadata": {"name": "arc-etcd", "namespace": "arc-system"}, "spec": {"clusterIP": "10.96.3.4"}},
        {"metadata": {"name": "arc-etcd-headless", "namespace": "arc-system"}, "spec": {"clusterIP": "None"}},
    ]
    r._slices = {
        "arc-system/arc-etcd-headless": [
            {"endpoints": [{"addresses": ["10.244.1.3"], "hostname": "arc-etcd-0"}]},
        ]
    }
    entries = dict((names[0], (address, names)) for address, names in r._dns_entries())
    assert entries["kubernetes.default.svc.cluster.local"][0] == "10.96.0.1"
    assert entries["arc-etcd.arc-system.svc.cluster.local"][0] == "10.96.3.4"
    member = entries["arc-etcd-0.arc-etcd-headless.arc-system.svc.cluster.local"]
    assert member[0] == "10.244.1.3"
    assert "arc-etcd-0.arc-etcd-headless.arc-system.svc" in member[1]
