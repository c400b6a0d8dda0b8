"""The harness's kubelet loop: start the release's Running pods for real, restart what exits, stop what goes.

Every ``interval`` seconds: list the pods of ``namespace`` matching ``selector``; a pod that kwok marks
Running (with an IP, not terminating) and that is not running yet gets a network namespace, its volumes,
its init containers (run to completion, in order) and its containers (``podman run``); a container that
exits is started again after a back-off (10 s doubling to 5 min, reset after 10 min up: the kubelet's
CrashLoopBackOff); a pod that is deleted, terminating or no longer Running is stopped with its grace period.
The same pass refreshes the Service proxy (ClusterIPs of the namespace and ``default/kubernetes``) and the
pods' ``/etc/hosts`` (rewritten in place, so running containers see new Services and members).

Container logs are ``<state>/pods/<uid>/<container>.log`` (podman's k8s-file format).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hack.kube import KubeHTTP, KubeHTTPError
from hack.podrunner import spec
from hack.podrunner.network import PodNetwork
from hack.podrunner.proxy import ServicePort, ServiceProxy

log = logging.getLogger(__name__)

JSON = dict[str, Any]
LABEL = "arc.podrunner"
BACKOFF_INITIAL, BACKOFF_MAX, BACKOFF_RESET = 10.0, 300.0, 600.0


class KubeLookup:
    """:class:`spec.Lookup` over the admin client (blocking calls; the runner calls it from a thread)."""

    def __init__(self, kube: KubeHTTP) -> None:
        self.kube = kube

    def _get(self, path: str) -> JSON | None:
        try:
            obj: JSON = self.kube.get(path)
        except KubeHTTPError as err:
            if err.status == 404:
                return None
            raise
        return obj

    def secret(self, namespace: str, name: str) -> JSON | None:
        return self._get(f"/api/v1/namespaces/{namespace}/secrets/{name}")

    def configmap(self, namespace: str, name: str) -> JSON | None:
        return self._get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")

    def pvc(self, namespace: str, name: str) -> JSON | None:
        return self._get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}")

    def pv(self, name: str) -> JSON | None:
        return self._get(f"/api/v1/persistentvolumes/{name}")

    def token(self, pod: JSON, audience: str | None, expiration_seconds: int) -> str:
        meta = pod["metadata"]
        sa = pod["spec"].get("serviceAccountName") or "default"
        request: JSON = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": expiration_seconds,
                "boundObjectRef": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
                **({"audiences": [audience]} if audience else {}),
            },
        }
        answer = self.kube.request(
            "POST",
            f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token",
            body=json.dumps(request).encode(),
        )
        return str(answer["status"]["token"])


@dataclass
class Container:
    name: str
    """podman's name"""
    argv: list[str]
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0


@dataclass
class RunningPod:
    pod: JSON
    netns: str
    directory: Path
    containers: list[Container] = field(default_factory=list)

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])


class PodRunner:
    def __init__(
        self,
        kube: KubeHTTP,
        *,
        namespace: str,
        selector: str,
        state_dir: Path,
        network: PodNetwork,
        podman: Sequence[str],
        ulimits: dict[str, int] | None = None,
        interval: float = 1.0,
        kubernetes_endpoint: tuple[str, int] | None = None,
    ) -> None:
        """``kubernetes_endpoint``: where ``default/kubernetes`` leads when it has no endpoints (the local
        kube-apiserver advertises 127.0.0.1, for which it publishes none)."""
        self.kube = kube
        self.lookup = KubeLookup(kube)
        self.namespace = namespace
        self.selector = selector
        self.state_dir = state_dir
        self.network = network
        self.podman = list(podman)
        self.ulimits = ulimits or {"nofile": 20000, "nproc": 4096}
        self.interval = interval
        self.kubernetes_endpoint = kubernetes_endpoint
        self.proxy = ServiceProxy()
        self.pods: dict[str, RunningPod] = {}
        self._services: list[JSON] = []
        self._kubernetes: tuple[str, int] = ("", 443)
        self._slices: dict[str, list[JSON]] = {}

    # ---- the loop -----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.sync()
                except (KubeHTTPError, OSError, RuntimeError) as exc:
                    log.warning("sync failed: %r", exc)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await stop.wait()
        finally:
            for uid in list(self.pods):
                await self.stop_pod(uid)
            await self.proxy.close()

    async def sync(self) -> None:
        await self._sync_services()
        path = f"/api/v1/namespaces/{self.namespace}/pods?labelSelector={quote(self.selector)}"
        pods = (await asyncio.to_thread(self.kube.get, path))["items"]
        wanted = {p["metadata"]["uid"]: p for p in pods if _runnable(p)}
        for uid in [u for u in self.pods if u not in wanted]:
            await self.stop_pod(uid)
        for uid, pod in wanted.items():
            if uid not in self.pods:
                try:
                    await self.start_pod(pod)
                except (spec.PodSpecError, RuntimeError, KubeHTTPError, OSError) as exc:
                    log.warning("pod %s not started: %s", pod["metadata"]["name"], exc)
                    await self.stop_pod(uid)
        for running in self.pods.values():
            self._write_hosts(running)
            await self._supervise(running)

    # ---- Services -----------------------------------------------------------------------------------
    async def _sync_services(self) -> None:
        services = (await asyncio.to_thread(self.kube.get, f"/api/v1/namespaces/{self.namespace}/services"))[
            "items"
        ]
        kubernetes = await asyncio.to_thread(self.kube.get, "/api/v1/namespaces/default/services/kubernetes")
        self._kubernetes = (kubernetes["spec"]["clusterIP"], kubernetes["spec"]["ports"][0]["port"])
        slices: dict[str, list[JSON]] = {}
        for namespace in {self.namespace, "default"}:
            items = (
                await asyncio.to_thread(
                    self.kube.get, f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
                )
            )["items"]
            for item in items:
                service = item["metadata"].get("labels", {}).get("kubernetes.io/service-name")
                if service:
                    slices.setdefault(f"{namespace}/{service}", []).append(item)
        self._slices = slices
        self._services = services
        wanted: dict[ServicePort, JSON] = {}
        for service in [*services, kubernetes]:
            cluster_ip = service["spec"].get("clusterIP")
            if not cluster_ip or cluster_ip == "None":
                continue
            for port in service["spec"].get("ports", []):
                if port.get("protocol", "TCP") != "TCP":
                    continue
                key = ServicePort(
                    service["metadata"]["namespace"], service["metadata"]["name"], cluster_ip, port["port"]
                )
                wanted[key] = port
        for gone in self.proxy.ports - set(wanted):
            await self.proxy.stop(gone)
        for key, port in wanted.items():
            if key not in self.proxy.ports:
                await asyncio.to_thread(self.network.add_service_ip, key.cluster_ip)
            await self.proxy.serve(key, self._endpoints_of(key, port.get("name", "")))

    def _endpoints_of(self, key: ServicePort, port_name: str) -> Any:
        def endpoints() -> list[tuple[str, int]]:
            out: list[tuple[str, int]] = []
            for item in self._slices.get(f"{key.namespace}/{key.name}", []):
                ports = [p["port"] for p in item.get("ports") or [] if (p.get("name") or "") == port_name]
                for endpoint in item.get("endpoints") or []:
                    if endpoint.get("conditions", {}).get("ready") is False:
                        continue
                    out += [(address, port) for address in endpoint["addresses"] for port in ports]
            if (
                not out
                and (key.namespace, key.name) == ("default", "kubernetes")
                and self.kubernetes_endpoint
            ):
                out.append(self.kubernetes_endpoint)
            return out

        return endpoints

    def _dns_entries(self) -> list[tuple[str, list[str]]]:
        entries: list[tuple[str, list[str]]] = []
        ip, _ = self._kubernetes
        entries.append((ip, spec.service_names("kubernetes", "default", self.namespace)))
        for service in self._services:
            name, ns = service["metadata"]["name"], service["metadata"]["namespace"]
            cluster_ip = service["spec"].get("clusterIP")
            if cluster_ip and cluster_ip != "None":
                entries.append((cluster_ip, spec.service_names(name, ns, self.namespace)))
                continue
            for item in self._slices.get(f"{ns}/{name}", []):  # headless: members by hostname
                for endpoint in item.get("endpoints") or []:
                    for address in endpoint["addresses"]:
                        names = spec.service_names(name, ns, self.namespace)
                        if endpoint.get("hostname"):
                            names = [f"{endpoint['hostname']}.{n}" for n in names if "." in n] + names
                        entries.append((address, names))
        return entries

    # ---- pods ---------------------------------------------------------------------------------------
    def _pod_dir(self, uid: str) -> Path:
        return self.state_dir / "pods" / uid

    def _write_hosts(self, running: RunningPod) -> None:
        path = running.directory / "hosts"
        content = spec.hosts_file(running.pod, self._dns_entries())
        if not path.exists() or path.read_text() != content:
            with path.open("r+" if path.exists() else "w") as handle:  # same inode: bind mounts see it
                handle.seek(0)
                handle.truncate()
                handle.write(content)

    async def start_pod(self, pod: JSON) -> None:
        meta = pod["metadata"]
        uid, name = meta["uid"], meta["name"]
        directory = self._pod_dir(uid)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        netns = await asyncio.to_thread(self.network.add_pod, uid, pod["status"]["podIP"])
        running = RunningPod(pod, netns, directory)
        self.pods[uid] = running
        volumes = await asyncio.to_thread(spec.write_volumes, pod, self.lookup, directory)
        self._write_hosts(running)
        (directory / "resolv.conf").write_text(spec.resolv_conf(meta["namespace"]))
        links = pod["spec"].get("enableServiceLinks", True)
        base = spec.service_env(self._services, self._kubernetes, links=bool(links))
        log.info("starting pod %s at %s", name, pod["status"]["podIP"])
        for index, container in enumerate(pod["spec"].get("initContainers", [])):
            argv = self._argv(running, container, volumes, base, f"init{index}")
            foreground = [a for a in argv if a != "--detach"]  # podman run returns the exit code
            code = await self._podman(*foreground)
            await self._podman("rm", "--force", "--ignore", argv[argv.index("--name") + 1])
            if code != 0:
                raise RuntimeError(f"init container {container['name']} of {name} failed")
        for container in pod["spec"].get("containers", []):
            argv = self._argv(running, container, volumes, base, "")
            run = Container(argv[argv.index("--name") + 1], argv)
            running.containers.append(run)
            await self._start(run)

    def _argv(
        self,
        running: RunningPod,
        container: JSON,
        volumes: dict[str, spec.Volume],
        base: dict[str, str],
        kind: str,
    ) -> list[str]:
        pod = running.pod
        env = spec.container_env(pod, container, self.lookup, base)
        mounts = spec.container_mounts(container, volumes)
        podman_name = f"{self.network.prefix}-{running.uid[:8]}-{kind}{container['name']}"
        plan = spec.plan_container(pod, container, env, mounts, podman_name)
        return spec.podman_run_argv(
            plan,
            netns=running.netns,
            hostname=spec.hostname(pod),
            hosts=running.directory / "hosts",
            resolv=running.directory / "resolv.conf",
            env_file=running.directory / f"{container['name']}.env",
            log_file=running.directory / f"{container['name']}.log",
            labels={LABEL: "true", f"{LABEL}.pod": running.uid, f"{LABEL}.name": pod["metadata"]["name"]},
            ulimits=self.ulimits,
        )

    async def _start(self, container: Container) -> None:
        await self._podman("rm", "--force", "--ignore", container.name)
        code = await self._podman(*container.argv)
        container.started_at = time.monotonic()
        if code != 0:
            raise RuntimeError(f"podman run {container.name} exited {code}")

    async def _supervise(self, running: RunningPod) -> None:
        """Restart exited containers with the kubelet's back-off."""
        for container in running.containers:
            state = await self._state(container.name)
            if state in ("running", "created", "configured"):
                continue
            now = time.monotonic()
            if container.next_start == 0.0:
                up = now - container.started_at
                if up > BACKOFF_RESET:
                    container.restarts = 0
                delay = min(BACKOFF_INITIAL * 2**container.restarts, BACKOFF_MAX)
                container.next_start = now + delay
                log.warning("container %s exited; restart in %.0fs", container.name, delay)
            elif now >= container.next_start:
                container.restarts += 1
                container.next_start = 0.0
                with contextlib.suppress(RuntimeError):
                    await self._start(container)

    async def _state(self, name: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            *self.podman, "inspect", "--format", "{{.State.Status}}", name,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await proc.communicate()
        return out.decode().strip() or "missing"

    async def stop_pod(self, uid: str) -> None:
        running = self.pods.pop(uid, None)
        if running is None:
            return
        grace = int(running.pod["spec"].get("terminationGracePeriodSeconds", 30))
        for container in running.containers:
            await self._podman("rm", "--force", "--ignore", "--time", str(min(grace, 10)), container.name)
        await asyncio.to_thread(self.network.remove_pod, uid)
        log.info("stopped pod %s", running.pod["metadata"]["name"])

    async def _podman(self, *args: str) -> int:
        proc = await asyncio.create_subprocess_exec(
            *self.podman, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            log.warning("podman %s failed: %s", " ".join(args[:3]), err.decode()[-2000:])
        return proc.returncode or 0


def _runnable(pod: JSON) -> bool:
    """Running on kwok, with an IP, not terminating, and not a Job's: kwok completes a Job's pods on its
    own (hack/kwok/stages.yaml), so running them for real would race that simulated end."""
    if any(ref.get("kind") == "Job" for ref in pod["metadata"].get("ownerReferences", [])):
        return False
    return bool(
        pod.get("status", {}).get("phase") == "Running"
        and pod["status"].get("podIP")
        and not pod["metadata"].get("deletionTimestamp")
    )
