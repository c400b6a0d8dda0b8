"""The test's own network: a bridge for the pod CIDRs, a namespace per pod, blackholes for the rest.

Routing is set up before anything can dial a pod or Service address, and torn down afterwards:

- the bridge ``<prefix>0`` holds ``host_ip/<pods CIDR prefix>``, so the kernel's connected route sends the
  whole pods CIDR into the bridge (and so only into this harness's namespaces);
- ``blackhole`` routes cover the Service range (ClusterIPs the proxy serves are /32 addresses of the bridge:
  local, so they win over the blackhole) and kwok's default pod range; ``ip route get`` proves both;
- a pod's namespace has its IP on ``eth0`` (a veth whose other end is in the bridge), the pods CIDR on-link
  and the Service range via the bridge's address; no default route, so a pod cannot reach anything else.

Every link, namespace and route is named after ``prefix``, so ``cleanup`` removes what a crashed run left.
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip``; raise with its stderr when it fails and ``check``."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


@dataclass
class PodNetwork:
    pods_cidr: str
    """All pod IPs (the fake nodes' podCIDRs lie inside)."""
    service_cidr: str
    """The cluster's Service range."""
    blackholes: Sequence[str] = ("10.0.0.0/24",)
    """More ranges nothing may reach (kwok's default pod range)."""
    prefix: str = "arcpr"
    host_ip: str = field(default="")
    """The bridge's address (default: the last usable address of ``pods_cidr``)."""

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.pods_cidr)
        if not self.host_ip:
            self.host_ip = str(net.broadcast_address - 1)
        self.bridge = f"{self.prefix}0"

    @property
    def routes(self) -> list[str]:
        return [self.service_cidr, *self.blackholes]

    # ---- host side ----------------------------------------------------------------------------------
    def setup(self) -> None:
        """Bridge and blackholes (idempotent: a leftover of a crashed run is replaced)."""
        self.teardown()
        prefixlen = ipaddress.ip_network(self.pods_cidr).prefixlen
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.host_ip}/{prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for cidr in self.routes:
            ip("route", "replace", "blackhole", cidr)
        log.info("pod network up", extra={"bridge": self.bridge, "pods": self.pods_cidr})

    def teardown(self) -> None:
        for name in ip("-o", "netns", "list", check=False).stdout.split("\n"):
            netns = name.split(" ", 1)[0]
            if netns.startswith(f"{self.prefix}-"):
                ip("netns", "del", netns, check=False)
        for line in ip("-o", "link", "show", check=False).stdout.splitlines():
            name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
            if name.startswith(f"{self.prefix}h"):  # a pod's veth whose namespace is still being destroyed
                ip("link", "del", name, check=False)
        ip("link", "del", self.bridge, check=False)
        for cidr in self.routes:
            ip("route", "del", "blackhole", cidr, check=False)

    def route_of(self, address: str) -> str:
        """``ip route get`` for ``address``: the route the host would use (or the error, for a blackhole)."""
        proc = ip("route", "get", address, check=False)
        return (proc.stdout or proc.stderr).strip()

    def add_service_ip(self, address: str) -> None:
        ip("addr", "replace", f"{address}/32", "dev", self.bridge)

    def remove_service_ip(self, address: str) -> None:
        ip("addr", "del", f"{address}/32", "dev", self.bridge, check=False)

    # ---- pods ---------------------------------------------------------------------------------------
    def netns_name(self, uid: str) -> str:
        return f"{self.prefix}-{uid[:8]}"

    def add_pod(self, uid: str, pod_ip: str) -> str:
        """A namespace for the pod holding ``pod_ip``; returns its name (``/run/netns/<name>``)."""
        netns = self.netns_name(uid)
        veth = f"{self.prefix}h{uid[:8]}"
        prefixlen = ipaddress.ip_network(self.pods_cidr).prefixlen
        ip("netns", "del", netns, check=False)
        # The kernel destroys a deleted namespace (and its veth) asynchronously: a quick restart of the same
        # pod can still find the old host end.
        ip("link", "del", veth, check=False)
        ip("netns", "add", netns)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("link", "set", veth, "master", self.bridge, "up")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", netns, "addr", "add", f"{pod_ip}/{prefixlen}", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "route", "add", self.service_cidr, "via", self.host_ip, "dev", "eth0")
        return netns

    def remove_pod(self, uid: str) -> None:
        ip("netns", "del", self.netns_name(uid), check=False)  # takes the veth pair with it
