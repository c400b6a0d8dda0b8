"""hack.podrunner's network with the real kernel: pod IPs reachable only through the test's bridge, the
Service range blackholed except the ClusterIPs its proxy serves, and a pod reaching a Service's endpoint.

Own prefix and ranges (10.245.0.0/16 for pods, 10.97.0.0/16 as the Service range), so it never touches
what an e2e run of the chart's pods set up (arcpr, 10.244.0.0/16, 10.96.0.0/16).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hack.podrunner.network import PodNetwork
from hack.podrunner.proxy import ServicePort, ServiceProxy

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="network namespaces need root and iproute2"
)

POD_IP, OTHER_IP, SERVICE_IP = "10.245.1.5", "10.245.2.9", "10.97.3.4"
SERVE = (
    "import socket,sys; s=socket.create_server((sys.argv[1], 8080)); c,_=s.accept();"
    " c.sendall(b'hello from pod'); c.close()"
)
DIAL = (
    "import socket,sys; c=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5);"
    " print(c.recv(100).decode())"
)


@pytest.fixture
def network() -> Iterator[PodNetwork]:
    net = PodNetwork(pods_cidr="10.245.0.0/16", service_cidr="10.97.0.0/16", blackholes=(), prefix="arcpt")
    net.setup()
    try:
        yield net
    finally:
        net.teardown()


def in_netns(netns: str, code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    )


def test_routes(network: PodNetwork) -> None:
    assert f"dev {network.bridge}" in network.route_of(POD_IP)
    service_route = network.route_of("10.97.200.1")
    assert "via" not in service_route and "dev" not in service_route, service_route  # blackholed
    network.add_service_ip(SERVICE_IP)
    assert network.route_of(SERVICE_IP).startswith("local ")


async def test_the_host_reaches_a_pod_and_a_pod_reaches_a_service(network: PodNetwork) -> None:
    pod = network.add_pod("aaaaaaaa-1", POD_IP)
    other = network.add_pod("bbbbbbbb-2", OTHER_IP)
    server = in_netns(pod, SERVE, POD_IP)
    await asyncio.sleep(0.5)
    reader, writer = await asyncio.open_connection(POD_IP, 8080)  # host → pod, through the bridge
    assert await reader.read() == b"hello from pod"
    writer.close()
    server.wait(10)

    network.add_service_ip(SERVICE_IP)
    proxy = ServiceProxy()
    await proxy.serve(ServicePort("ns", "svc", SERVICE_IP, 80), lambda: [(POD_IP, 8080)])
    server = in_netns(pod, SERVE, POD_IP)
    await asyncio.sleep(0.5)
    client = in_netns(other, DIAL, SERVICE_IP, "80")  # pod → ClusterIP → proxy → pod
    out, _ = await asyncio.to_thread(client.communicate, timeout=15)
    assert out.strip() == "hello from pod"
    assert proxy.connections == 1
    await proxy.close()
    server.wait(10)
    # No default route in a pod: anything but pods and Services is unreachable from inside.
    route = await asyncio.to_thread(
        subprocess.run, ["ip", "-n", other, "route", "get", "192.0.2.1"], capture_output=True, text=True
    )
    assert route.returncode != 0 and "unreachable" in route.stderr
