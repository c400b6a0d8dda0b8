"""A pod's spec → what the kubelet would give its containers: env, files, mounts, user, podman arguments.

Pure functions over the pod (a dict, as the API returns it) and a :class:`Lookup` of the objects it refers
to, so that the translation is unit-tested without a cluster. What follows the kubelet exactly:

- env: service links first (``KUBERNETES_SERVICE_HOST`` … and, with ``enableServiceLinks``, every Service
  of the namespace), then ``envFrom`` in order, then ``env`` with ``$(VAR)`` expansion over what came
  before; ``valueFrom`` from fieldRef, resourceFieldRef, Secrets and ConfigMaps (``optional`` honoured);
- command/args: ``command`` replaces the image's entrypoint (and its CMD), ``args`` its CMD, both expanded;
- files: Secret, ConfigMap, downwardAPI and projected volumes (``items``, ``defaultMode``/``mode``, the
  service-account token from a TokenRequest bound to the pod), always mounted read-only; emptyDir;
  hostPath; a PersistentVolumeClaim mounted from its bound PersistentVolume's hostPath; ``subPath``;
- ``fsGroup``: volume files get the group and group read (read-write for emptyDir and claims), as the
  kubelet's volume ownership management (and a CSI driver for claims) does;
- security context: user and group (container over pod), supplemental groups, read-only root filesystem
  (without podman's extra tmpfs mounts: what is writable is what the pod says), dropped/added
  capabilities, no-new-privileges, runAsNonRoot.

Not modelled: resource limits (no cgroup limits are set), probes (kwok decides Ready; tests probe the real
endpoints), lifecycle hooks, ephemeral containers, NetworkPolicy.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

JSON = dict[str, Any]

CLUSTER_DOMAIN = "cluster.local"
SA_TOKEN_DEFAULT_EXPIRATION = 3600


class Lookup(Protocol):
    """The objects a pod refers to (None: not found)."""

    def secret(self, namespace: str, name: str) -> JSON | None: ...

    def configmap(self, namespace: str, name: str) -> JSON | None: ...

    def pvc(self, namespace: str, name: str) -> JSON | None: ...

    def pv(self, name: str) -> JSON | None: ...

    def token(self, pod: JSON, audience: str | None, expiration_seconds: int) -> str:
        """A service-account token for the pod's service account, bound to the pod."""
        ...


class PodSpecError(Exception):
    """The pod cannot run as specified (a missing Secret key that is not optional, …): the kubelet's
    CreateContainerConfigError."""


# ---- $(VAR) expansion (k8s.io/kubernetes/third_party/forked/golang/expansion) ----------------------
_REFERENCE = re.compile(r"\$\$|\$\(([^)]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """``$(VAR)`` → its value when defined (else left as is); ``$$`` → ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _REFERENCE.sub(replace, text)


# ---- field and resource references --------------------------------------------------------------------
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_ref(pod: JSON, path: str) -> str:
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": status.get("hostIP", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs", [])),
        "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs", [])),
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1], {})
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    match = _SUBSCRIPT.match(path)
    if match:
        return str(meta.get(match.group(1), {}).get(match.group(2), ""))
    raise PodSpecError(f"unsupported fieldRef {path!r}")


_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}  # fmt: skip


def quantity(text: str) -> float:
    """A Kubernetes resource quantity as a number (``500m`` → 0.5, ``1Gi`` → 1073741824)."""
    match = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)", str(text).strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise PodSpecError(f"bad quantity {text!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def resource_field_ref(container: JSON, ref: JSON) -> str:
    """limits/requests of cpu, memory, ephemeral-storage; divided by ``divisor``, rounded up (kubelet)."""
    kind, _, name = ref["resource"].partition(".")
    resources = container.get("resources", {})
    value = resources.get(kind, {}).get(name) or resources.get("limits", {}).get(name)
    if value is None:
        value = "0"
    divisor = quantity(ref.get("divisor") or "1")
    return str(math.ceil(quantity(value) / divisor))


# ---- env ----------------------------------------------------------------------------------------------
def _env_name(service: str) -> str:
    return service.upper().replace("-", "_")


def service_env(services: list[JSON], kubernetes: tuple[str, int], *, links: bool) -> dict[str, str]:
    """What the kubelet puts first: ``KUBERNETES_SERVICE_HOST/PORT`` (the ``kubernetes`` Service) and,
    with service links, the docker-link variables of every ClusterIP Service of the namespace."""
    host, port = kubernetes
    env = {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
        "KUBERNETES_PORT": f"tcp://{host}:{port}",
        f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
        f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
        f"KUBERNETES_PORT_{port}_TCP_PORT": str(port),
        f"KUBERNETES_PORT_{port}_TCP_ADDR": host,
    }
    if not links:
        return env
    for service in services:
        cluster_ip = service.get("spec", {}).get("clusterIP")
        ports = service.get("spec", {}).get("ports", [])
        if not cluster_ip or cluster_ip == "None" or not ports:
            continue
        name = _env_name(service["metadata"]["name"])
        env[f"{name}_SERVICE_HOST"] = cluster_ip
        env[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            proto = p.get("protocol", "TCP")
            if p.get("name"):
                env[f"{name}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p["port"])
            prefix = f"{name}_PORT_{p['port']}_{proto}"
            env[prefix] = f"{proto.lower()}://{cluster_ip}:{p['port']}"
            env[f"{prefix}_PROTO"] = proto.lower()
            env[f"{prefix}_PORT"] = str(p["port"])
            env[f"{prefix}_ADDR"] = cluster_ip
        first = ports[0]
        env[f"{name}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{cluster_ip}:{first['port']}"
    return env


def _data(obj: JSON | None) -> dict[str, str]:
    """A Secret's or ConfigMap's values as text (Secret data is base64)."""
    if obj is None:
        return {}
    if obj.get("kind") == "Secret":
        out = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        out.update(obj.get("stringData") or {})
        return out
    return dict(obj.get("data") or {})


def _binary_data(obj: JSON) -> dict[str, bytes]:
    if obj.get("kind") == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


def container_env(pod: JSON, container: JSON, lookup: Lookup, base: Mapping[str, str]) -> dict[str, str]:
    namespace = pod["metadata"]["namespace"]
    env = dict(base)
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref, obj = source["configMapRef"], lookup.configmap(namespace, source["configMapRef"]["name"])
        else:
            ref, obj = source["secretRef"], lookup.secret(namespace, source["secretRef"]["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise PodSpecError(f"envFrom: {ref['name']} not found")
        env.update({prefix + k: v for k, v in _data(obj).items()})
    for var in container.get("env", []):
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_ref(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            env[name] = resource_field_ref(container, source["resourceFieldRef"])
        else:
            is_secret = "secretKeyRef" in source
            ref = source["secretKeyRef" if is_secret else "configMapKeyRef"]
            obj = (lookup.secret if is_secret else lookup.configmap)(namespace, ref["name"])
            values = _data(obj)
            if ref["key"] not in values:
                if ref.get("optional"):
                    continue
                raise PodSpecError(f"env {name}: key {ref['key']!r} of {ref['name']} not found")
            env[name] = values[ref["key"]]
    return env


# ---- volumes ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Volume:
    path: Path
    read_only: bool
    """Mounted read-only whatever the mount says (Secret, ConfigMap, downwardAPI, projected)."""


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool


def _write(directory: Path, files: Mapping[str, bytes], modes: Mapping[str, int], default_mode: int) -> None:
    for rel, content in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(modes.get(rel, default_mode))


def _select(
    values: Mapping[str, bytes], items: list[JSON] | None, what: str, *, optional: bool
) -> tuple[dict[str, bytes], dict[str, int]]:
    if not items:
        return dict(values), {}
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    for item in items:
        if item["key"] not in values:
            if optional:
                continue
            raise PodSpecError(f"{what}: key {item['key']!r} not found")
        files[item["path"]] = values[item["key"]]
        if "mode" in item:
            modes[item["path"]] = item["mode"]
    return files, modes


def _downward(pod: JSON, items: list[JSON]) -> tuple[dict[str, bytes], dict[str, int]]:
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    containers = {c["name"]: c for c in pod["spec"].get("containers", [])}
    for item in items:
        if "fieldRef" in item:
            value = field_ref(pod, item["fieldRef"]["fieldPath"])
        else:
            ref = item["resourceFieldRef"]
            value = resource_field_ref(containers[ref.get("containerName") or next(iter(containers))], ref)
        files[item["path"]] = value.encode()
        if "mode" in item:
            modes[item["path"]] = item["mode"]
    return files, modes


def _ref_object(lookup: Lookup, namespace: str, source: JSON, key: str) -> JSON | None:
    name = source.get("secretName") or source.get("name", "")
    return lookup.secret(namespace, name) if key == "secret" else lookup.configmap(namespace, name)


def write_volumes(pod: JSON, lookup: Lookup, pod_dir: Path) -> dict[str, Volume]:
    """Materialize the pod's volumes under ``pod_dir/volumes`` (claims and hostPaths are used in place)."""
    namespace = pod["metadata"]["namespace"]
    security = pod["spec"].get("securityContext", {})
    fs_group: int | None = security.get("fsGroup")
    volumes: dict[str, Volume] = {}
    for volume in pod["spec"].get("volumes", []):
        name = volume["name"]
        directory = pod_dir / "volumes" / name
        if "emptyDir" in volume:
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o777)
            volumes[name] = Volume(directory, False)
            continue
        if "hostPath" in volume:
            volumes[name] = Volume(Path(volume["hostPath"]["path"]), False)
            continue
        if "persistentVolumeClaim" in volume:
            volumes[name] = Volume(_claim_path(lookup, namespace, volume["persistentVolumeClaim"]), False)
            if volume["persistentVolumeClaim"].get("readOnly"):
                volumes[name] = Volume(volumes[name].path, True)
            _own(volumes[name].path, fs_group, writable=True)
            continue
        files: dict[str, bytes] = {}
        modes: dict[str, int] = {}
        default_mode = 0o644
        if "secret" in volume or "configMap" in volume:
            key = "secret" if "secret" in volume else "configMap"
            source = volume[key]
            default_mode = source.get("defaultMode", 0o644)
            obj = _ref_object(lookup, namespace, source, "secret" if key == "secret" else "configmap")
            if obj is None and not source.get("optional"):
                raise PodSpecError(
                    f"volume {name}: {key} {source.get('secretName') or source.get('name')} not found"
                )
            files, modes = _select(
                _binary_data(obj) if obj else {},
                source.get("items"),
                f"volume {name}",
                optional=bool(source.get("optional")),
            )
        elif "downwardAPI" in volume:
            default_mode = volume["downwardAPI"].get("defaultMode", 0o644)
            files, modes = _downward(pod, volume["downwardAPI"].get("items", []))
        elif "projected" in volume:
            default_mode = volume["projected"].get("defaultMode", 0o644)
            for source in volume["projected"].get("sources", []):
                if "serviceAccountToken" in source:
                    token = source["serviceAccountToken"]
                    expiration = token.get("expirationSeconds", SA_TOKEN_DEFAULT_EXPIRATION)
                    files[token["path"]] = lookup.token(pod, token.get("audience"), expiration).encode()
                elif "downwardAPI" in source:
                    more, more_modes = _downward(pod, source["downwardAPI"].get("items", []))
                    files.update(more)
                    modes.update(more_modes)
                elif "secret" in source or "configMap" in source:
                    key = "secret" if "secret" in source else "configmap"
                    ref = source["secret" if key == "secret" else "configMap"]
                    obj = _ref_object(lookup, namespace, ref, key)
                    if obj is None:
                        if ref.get("optional"):
                            continue
                        raise PodSpecError(f"volume {name}: {key} {ref.get('name')} not found")
                    more, more_modes = _select(
                        _binary_data(obj),
                        ref.get("items"),
                        f"volume {name}",
                        optional=bool(ref.get("optional")),
                    )
                    files.update(more)
                    modes.update(more_modes)
                else:
                    raise PodSpecError(f"volume {name}: unsupported projected source {sorted(source)}")
        else:
            raise PodSpecError(f"volume {name}: unsupported kind {sorted(set(volume) - {'name'})}")
        directory.mkdir(parents=True, exist_ok=True)
        _write(directory, files, modes, default_mode)
        _own(directory, fs_group, writable=False)
        volumes[name] = Volume(directory, True)
    return volumes


def _claim_path(lookup: Lookup, namespace: str, source: JSON) -> Path:
    claim = lookup.pvc(namespace, source["claimName"])
    if claim is None or claim.get("status", {}).get("phase") != "Bound":
        raise PodSpecError(f"claim {source['claimName']} is not bound")
    pv = lookup.pv(claim["spec"]["volumeName"])
    spec = (pv or {}).get("spec", {})
    path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
    if not path:
        raise PodSpecError(f"claim {source['claimName']}: its PersistentVolume has no hostPath or local path")
    Path(path).mkdir(parents=True, exist_ok=True)
    return Path(path)


def _own(directory: Path, fs_group: int | None, *, writable: bool) -> None:
    """The kubelet's volume ownership for ``fsGroup``: group = fsGroup, group may read (and write)."""
    if fs_group is None:
        return
    for root, dirs, files in os.walk(directory):
        os.chown(root, -1, fs_group)
        os.chmod(root, os.stat(root).st_mode | 0o2050 | (0o020 if writable else 0))
        for entry in files:
            path = os.path.join(root, entry)
            os.chown(path, -1, fs_group)
            os.chmod(path, os.stat(path).st_mode | 0o040 | (0o020 if writable else 0))
        del dirs  # os.walk descends on its own


def container_mounts(container: JSON, volumes: Mapping[str, Volume]) -> list[Mount]:
    mounts: list[Mount] = []
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"])
        if volume is None:
            raise PodSpecError(f"volumeMount {mount['name']}: no such volume")
        source = volume.path / mount["subPath"] if mount.get("subPath") else volume.path
        if mount.get("subPath") and not source.exists():
            source.mkdir(parents=True)
        mounts.append(Mount(source, mount["mountPath"], volume.read_only or bool(mount.get("readOnly"))))
    return mounts


# ---- names ----------------------------------------------------------------------------------------------
def hostname(pod: JSON) -> str:
    return str(pod["spec"].get("hostname") or pod["metadata"]["name"])[:63]


def hosts_file(pod: JSON, entries: list[tuple[str, list[str]]]) -> str:
    """The kubelet's managed /etc/hosts, plus ``entries`` standing in for the cluster's DNS."""
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    pod_ip = pod["status"]["podIP"]
    subdomain = pod["spec"].get("subdomain")
    if subdomain:
        fqdn = f"{hostname(pod)}.{subdomain}.{pod['metadata']['namespace']}.svc.{CLUSTER_DOMAIN}"
        lines.append(f"{pod_ip}\t{fqdn}\t{hostname(pod)}")
        # What cluster DNS would also answer for the pod's own name (etcd resolves its advertised URLs).
        lines.append(f"{pod_ip}\t{fqdn.removesuffix('.' + CLUSTER_DOMAIN)}")
    else:
        lines.append(f"{pod_ip}\t{hostname(pod)}")
    lines.append("# arc podrunner: Services and headless members (no cluster DNS here)")
    lines += [f"{address}\t{' '.join(names)}" for address, names in entries]
    return "\n".join(lines) + "\n"


def service_names(name: str, namespace: str, pod_namespace: str) -> list[str]:
    names = [f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}", f"{name}.{namespace}.svc", f"{name}.{namespace}"]
    return [*names, name] if namespace == pod_namespace else names


def resolv_conf(namespace: str) -> str:
    return (
        f"search {namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\n"
        "nameserver 127.0.0.53\noptions ndots:5\n"
    )


# ---- podman -------------------------------------------------------------------------------------------
@dataclass
class ContainerRun:
    """Everything ``podman run`` needs for one container of a pod."""

    name: str
    image: str
    command: list[str] | None
    args: list[str] | None
    env: dict[str, str]
    mounts: list[Mount]
    user: str | None = None
    groups: list[int] = field(default_factory=list)
    workdir: str | None = None
    read_only_root: bool = False
    cap_drop: list[str] = field(default_factory=list)
    cap_add: list[str] = field(default_factory=list)
    no_new_privileges: bool = False


def plan_container(
    pod: JSON, container: JSON, env: dict[str, str], mounts: list[Mount], name: str
) -> ContainerRun:
    pod_security = pod["spec"].get("securityContext", {})
    security = container.get("securityContext", {})
    uid = security.get("runAsUser", pod_security.get("runAsUser"))
    gid = security.get("runAsGroup", pod_security.get("runAsGroup"))
    if (security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))) and uid == 0:
        raise PodSpecError(f"container {container['name']}: runAsNonRoot and runAsUser 0")
    user = None if uid is None else (f"{uid}:{gid}" if gid is not None else str(uid))
    groups = [*pod_security.get("supplementalGroups", [])]
    if pod_security.get("fsGroup") is not None:
        groups.append(pod_security["fsGroup"])
    capabilities = security.get("capabilities", {})
    command = [expand(c, env) for c in container["command"]] if container.get("command") else None
    args = [expand(a, env) for a in container["args"]] if container.get("args") else None
    return ContainerRun(
        name=name,
        image=container["image"],
        command=command,
        args=args,
        env=env,
        mounts=mounts,
        user=user,
        groups=groups,
        workdir=container.get("workingDir"),
        read_only_root=bool(security.get("readOnlyRootFilesystem")),
        cap_drop=[c.lower() for c in capabilities.get("drop", [])],
        cap_add=[c.lower() for c in capabilities.get("add", [])],
        no_new_privileges=security.get("allowPrivilegeEscalation") is False,
    )


def podman_run_argv(
    run: ContainerRun,
    *,
    netns: str,
    hostname: str,
    hosts: Path,
    resolv: Path,
    env_file: Path,
    log_file: Path,
    labels: Mapping[str, str],
    ulimits: Mapping[str, int],
) -> list[str]:
    """``podman run`` arguments (after the global options); the env goes to ``env_file`` (mode 0600) so
    no value shows in a process list."""
    argv = [
        "run", "--detach", "--name", run.name, "--pull=never",
        "--network", f"ns:/run/netns/{netns}", "--hostname", hostname,
        "--log-driver", "k8s-file", "--log-opt", f"path={log_file}",
        "--read-only-tmpfs=false",
        "-v", f"{hosts}:/etc/hosts:ro", "-v", f"{resolv}:/etc/resolv.conf:ro",
    ]  # fmt: skip
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    for name, limit in ulimits.items():
        argv += ["--ulimit", f"{name}={limit}:{limit}"]
    if run.user is not None:
        argv += ["--user", run.user]
    for group in run.groups:
        argv += ["--group-add", str(group)]
    if run.read_only_root:
        argv.append("--read-only")
    argv += [f"--cap-drop={c}" for c in run.cap_drop] + [f"--cap-add={c}" for c in run.cap_add]
    if run.no_new_privileges:
        argv += ["--security-opt", "no-new-privileges"]
    if run.workdir:
        argv += ["--workdir", run.workdir]
    for mount in run.mounts:
        argv += ["-v", f"{mount.source}:{mount.target}:{'ro' if mount.read_only else 'rw'}"]
    env_file.write_text("".join(f"{k}={v}\n" for k, v in run.env.items() if "\n" not in v))
    env_file.chmod(0o600)
    argv += ["--env-file", str(env_file)]
    for key, value in run.env.items():
        if "\n" in value:  # env files are line-based
            argv += ["--env", f"{key}={value}"]
    if run.command is not None:
        argv += ["--entrypoint", json.dumps(run.command)]
    argv.append(run.image)
    if run.args is not None:
        argv += run.args
    return argv
