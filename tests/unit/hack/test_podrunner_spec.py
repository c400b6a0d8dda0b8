"""hack.podrunner.spec: a pod as the kubelet would run it (env, files, mounts, user, podman arguments)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hack.podrunner import spec

JSON = dict[str, Any]


class FakeLookup:
    def __init__(self, objects: dict[tuple[str, str], JSON] | None = None) -> None:
        self.objects = objects or {}
        self.tokens: list[tuple[str, str | None, int]] = []

    def secret(self, namespace: str, name: str) -> JSON | None:
        return self.objects.get(("Secret", f"{namespace}/{name}"))

    def configmap(self, namespace: str, name: str) -> JSON | None:
        return self.objects.get(("ConfigMap", f"{namespace}/{name}"))

    def pvc(self, namespace: str, name: str) -> JSON | None:
        return self.objects.get(("PersistentVolumeClaim", f"{namespace}/{name}"))

    def pv(self, name: str) -> JSON | None:
        return self.objects.get(("PersistentVolume", name))

    def token(self, pod: JSON, audience: str | None, expiration_seconds: int) -> str:
        self.tokens.append((pod["metadata"]["name"], audience, expiration_seconds))
        return "bound-token"


def secret(name: str, **data: str) -> JSON:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"kind": "Secret", "metadata": {"name": name, "namespace": "arc"}, "data": encoded}


def configmap(name: str, **data: str) -> JSON:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "arc"}, "data": data}


def pod(**spec_: Any) -> JSON:
    return {
        "metadata": {"name": "web-0", "namespace": "arc", "uid": "1234-5678", "labels": {"app": "web"}},
        "spec": {"nodeName": "kwok-node-1", "serviceAccountName": "web", **spec_},
        "status": {"podIP": "10.244.1.7", "hostIP": "10.0.0.1", "phase": "Running"},
    }


def test_expansion_follows_kubelet() -> None:
    env = {"A": "1", "B": "two"}
    assert spec.expand("$(A)-$(B)", env) == "1-two"
    assert spec.expand("$(MISSING)", env) == "$(MISSING)"
    assert spec.expand("$$(A)", env) == "$(A)"
    assert spec.expand("$$", env) == "$"


def test_env_order_value_from_and_expansion() -> None:
    lookup = FakeLookup(
        {
            ("Secret", "arc/creds"): secret("creds", password="p4ss"),
            ("ConfigMap", "arc/settings"): configmap("settings", LEVEL="debug", MODE="fast"),
        }
    )
    container = {
        "name": "c",
        "resources": {"limits": {"memory": "512Mi", "cpu": "1500m"}},
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}}},
            {
                "name": "MEM_MI",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "URL", "value": "https://$(POD_IP):8443/$(CFG_MODE)"},
        ],
    }
    env = spec.container_env(pod(), container, lookup, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert (env["CFG_LEVEL"], env["POD_NAME"], env["POD_IP"], env["APP"]) == (
        "debug",
        "web-0",
        "10.244.1.7",
        "web",
    )
    assert env["PASSWORD"] == "p4ss" and "GONE" not in env
    assert (env["MEM_MI"], env["CPUS"]) == ("512", "2")
    assert env["URL"] == "https://10.244.1.7:8443/fast"
    with pytest.raises(spec.PodSpecError, match="key 'nope'"):
        bad = {
            "name": "c",
            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope"}}}],
        }
        spec.container_env(pod(), bad, lookup, {})


def test_service_links_name_the_kubernetes_service_and_the_namespace_services() -> None:
    services = [
        {
            "metadata": {"name": "arc-etcd", "namespace": "arc"},
            "spec": {
                "clusterIP": "10.96.3.4",
                "ports": [{"name": "client", "port": 2379, "protocol": "TCP"}],
            },
        },
        {
            "metadata": {"name": "headless", "namespace": "arc"},
            "spec": {"clusterIP": "None", "ports": [{"port": 1}]},
        },
    ]
    env = spec.service_env(services, ("10.96.0.1", 443), links=True)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["ARC_ETCD_SERVICE_HOST"] == "10.96.3.4" and env["ARC_ETCD_SERVICE_PORT_CLIENT"] == "2379"
    assert env["ARC_ETCD_PORT_2379_TCP_ADDR"] == "10.96.3.4"
    assert not any(k.startswith("HEADLESS") for k in env)
    assert "ARC_ETCD_SERVICE_HOST" not in spec.service_env(services, ("10.96.0.1", 443), links=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="fsGroup ownership needs chown (the harness runs as root)")
def test_volumes_are_written_as_the_kubelet_writes_them(tmp_path: Path) -> None:
    lookup = FakeLookup(
        {
            ("Secret", "arc/tls"): secret("tls", **{"tls.crt": "CERT", "tls.key": "KEY", "ca.crt": "CA"}),
            ("ConfigMap", "arc/kube-root-ca.crt"): configmap("kube-root-ca.crt", **{"ca.crt": "ROOT"}),
            ("PersistentVolumeClaim", "arc/data-web-0"): {
                "spec": {"volumeName": "pv-1"},
                "status": {"phase": "Bound"},
            },
            ("PersistentVolume", "pv-1"): {"spec": {"hostPath": {"path": str(tmp_path / "pv-1")}}},
        }
    )
    p = pod(
        securityContext={"fsGroup": 65532, "runAsUser": 65532, "runAsNonRoot": True},
        volumes=[
            {
                "name": "tls",
                "secret": {
                    "secretName": "tls",
                    "defaultMode": 0o400,
                    "items": [{"key": "tls.key", "path": "k/tls.key"}],
                },
            },
            {"name": "tmp", "emptyDir": {}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
            {
                "name": "kube-api-access",
                "projected": {
                    "defaultMode": 0o644,
                    "sources": [
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                                ]
                            }
                        },
                    ],
                },
            },
        ],
    )
    volumes = spec.write_volumes(p, lookup, tmp_path / "pod")
    key = volumes["tls"].path / "k" / "tls.key"
    assert key.read_text() == "KEY" and not (volumes["tls"].path / "tls.crt").exists()
    assert oct(key.stat().st_mode & 0o777) == "0o440" and key.stat().st_gid == 65532  # fsGroup may read
    assert volumes["tls"].read_only and not volumes["tmp"].read_only
    assert oct(volumes["tmp"].path.stat().st_mode & 0o777) == "0o777"
    sa = volumes["kube-api-access"].path
    assert {f: (sa / f).read_text() for f in ("token", "ca.crt", "namespace")} == {
        "token": "bound-token",
        "ca.crt": "ROOT",
        "namespace": "arc",
    }
    assert lookup.tokens == [("web-0", None, 3607)]
    assert volumes["data"].path == tmp_path / "pv-1" and (tmp_path / "pv-1").stat().st_gid == 65532

    container = {
        "name": "c",
        "volumeMounts": [
            {"name": "tls", "mountPath": "/etc/tls"},
            {"name": "data", "mountPath": "/var/lib/etcd", "subPath": "member"},
            {"name": "tmp", "mountPath": "/tmp", "readOnly": True},
        ],
    }
    mounts = spec.container_mounts(container, volumes)
    assert [(m.target, m.read_only) for m in mounts] == [
        ("/etc/tls", True),
        ("/var/lib/etcd", False),
        ("/tmp", True),
    ]
    assert mounts[1].source == tmp_path / "pv-1" / "member" and mounts[1].source.is_dir()


def test_a_missing_secret_stops_the_pod(tmp_path: Path) -> None:
    p = pod(volumes=[{"name": "tls", "secret": {"secretName": "absent"}}])
    with pytest.raises(spec.PodSpecError, match="absent not found"):
        spec.write_volumes(p, FakeLookup(), tmp_path)


def test_podman_arguments_carry_the_security_context(tmp_path: Path) -> None:
    p = pod(securityContext={"runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 2000, "runAsNonRoot": True})
    container = {
        "name": "apiserver",
        "image": "localhost/arc:e2e",
        "command": ["arc-apiserver"],
        "args": ["--bind-address=0.0.0.0", "--name=$(POD_NAME)"],
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    env = {"POD_NAME": "web-0", "PEM": "line1\nline2"}
    run = spec.plan_container(
        p, container, env, [spec.Mount(tmp_path, "/tmp", False)], "arcpr-1234-apiserver"
    )
    argv = spec.podman_run_argv(
        run,
        netns="arcpr-1234",
        hostname="web-0",
        hosts=tmp_path / "hosts",
        resolv=tmp_path / "resolv.conf",
        env_file=tmp_path / "env",
        log_file=tmp_path / "log",
        labels={"arc.podrunner": "true"},
        ulimits={"nofile": 1024},
    )
    joined = " ".join(argv)
    assert "--network ns:/run/netns/arcpr-1234" in joined
    assert "--user 65532:65532" in joined and "--group-add 2000" in joined
    assert "--read-only " in joined and "--read-only-tmpfs=false" in joined
    assert "--cap-drop=all" in argv and "--security-opt no-new-privileges" in joined
    assert f"-v {tmp_path}:/tmp:rw" in joined and "--ulimit nofile=1024:1024" in joined
    assert argv[argv.index("--entrypoint") + 1] == json.dumps(["arc-apiserver"])
    assert argv[-3:] == ["localhost/arc:e2e", "--bind-address=0.0.0.0", "--name=web-0"]
    assert (tmp_path / "env").read_text() == "POD_NAME=web-0\n"  # values never on a command line...
    assert "--env PEM=line1\nline2" in joined  # ...except multi-line ones, which env files cannot hold
    assert oct((tmp_path / "env").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(spec.PodSpecError, match="runAsNonRoot"):
        spec.plan_container(
            pod(securityContext={"runAsUser": 0, "runAsNonRoot": True}), container, {}, [], "x"
        )


def test_hosts_file_stands_in_for_cluster_dns() -> None:
    p = pod(hostname="arc-etcd-0", subdomain="arc-etcd-headless")
    text = spec.hosts_file(p, [("10.96.3.4", spec.service_names("arc-etcd", "arc", "arc"))])
    assert "10.244.1.7\tarc-etcd-0.arc-etcd-headless.arc.svc.cluster.local\tarc-etcd-0\n" in text
    assert "10.96.3.4\tarc-etcd.arc.svc.cluster.local arc-etcd.arc.svc arc-etcd.arc arc-etcd\n" in text
    assert spec.service_names("kubernetes", "default", "arc")[-1] == "kubernetes.default"
    assert "search arc.svc.cluster.local" in spec.resolv_conf("arc")
