"""The user guides (docs/guides/) run as written, on the stack `make run` starts (issue 19 item 5).

Each guide's ``sh`` blocks run in order in one bash (``-euo pipefail``): the platform owner's as the cluster's
admin, then the tenant's as user ``alice`` with exactly the roles the platform owner's guide gave her (a
kubeconfig that impersonates her), then the SRE's as admin with the addresses ``make run`` prints. A command
that fails, a role that is missing, a column or message that changed fails the test, so the guides cannot rot.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hack.binaries import binary_path
from hack.cluster import LocalCluster

pytestmark = pytest.mark.e2e

GUIDES = Path(__file__).resolve().parents[2] / "docs" / "guides"
HUB_PASSWORD = "hub-Pa55-never-shown"
MIRROR_PASSWORD = "mirror-Pa55-never-shown"


def sh_blocks(guide: str) -> str:
    """The guide's commands: every ```sh block, in order."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", (GUIDES / guide).read_text(), flags=re.S | re.M)
    assert blocks, f"{guide} has no sh blocks"
    return "\n".join(blocks)


def run_guide(guide: str, env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", sh_blocks(guide)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"{guide} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def impersonating(kubeconfig: Path, user: str, out: Path) -> Path:
    """A copy of ``kubeconfig`` whose users act as ``user`` (kubeconfig's ``as``, kubectl's --as)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["users"]:
        entry["user"]["as"] = user
    out.write_text(yaml.safe_dump(config))
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """What `make run` starts (without Jaeger, which no guide command needs)."""
    cluster = LocalCluster(tmp_path_factory.mktemp("arc-guides"))
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def admin_env(stack: LocalCluster) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(stack.kubeconfig)}


@pytest.fixture(scope="module")
def platform_owner(admin_env: dict[str, str]) -> str:
    env = {**admin_env, "HUB_PASSWORD": HUB_PASSWORD, "MIRROR_PASSWORD": MIRROR_PASSWORD}
    return run_guide("platform-owner.md", env)


@pytest.fixture(scope="module")
def tenant(
    platform_owner: str,
    stack: LocalCluster,
    admin_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    kubeconfig = impersonating(stack.kubeconfig, "alice", tmp_path_factory.mktemp("alice") / "kubeconfig")
    return run_guide("tenant.md", {**admin_env, "KUBECONFIG": str(kubeconfig)})


def kubectl_json(env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run(
        ["kubectl", *args, "-o", "json"], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def table(output: str, *columns: str) -> dict[str, list[str]]:
    """The rows, by name, of the first kubectl table in ``output`` whose header is NAME, ``columns``…"""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[: len(columns) + 1] == ["NAME", *columns])
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith("NAME "):
            break
        rows[line.split()[0]] = line.split()
    return rows


def test_the_platform_owners_guide_sets_up_a_team(platform_owner: str, admin_env: dict[str, str]) -> None:
    endpoints = table(platform_owner, "TYPE", "URL", "USAGE", "SECRET", "READY", "AGE", "MESSAGE")
    assert set(endpoints) == {"docker-hub", "internal-registry"}, platform_owner
    assert re.search(r"^oci-scanned ", platform_owner, flags=re.M), platform_owner
    # the roles: alice writes Orders in team-a only, and reads no Secret
    assert platform_owner.rstrip().splitlines()[-4:] == ["yes", "no", "no", "no"], platform_owner
    stored = json.dumps(kubectl_json(admin_env, "-n", "team-a", "get", "endpoints.arc.opendefense.cloud"))
    assert HUB_PASSWORD not in stored and MIRROR_PASSWORD not in stored


def test_the_tenants_guide_runs_as_the_tenant(tenant: str, admin_env: dict[str, str]) -> None:
    assert 'Failed: endpoint "docker-hub-typo" not found' in tenant
    orders = table(tenant, "PHASE", "PROGRESS", "AGE")
    assert orders["base-images"][1:3] == ["Succeeded", "2/2"], tenant
    order = kubectl_json(admin_env, "-n", "team-a", "get", "order", "base-images")
    status = order["status"]
    assert isinstance(status, dict) and status["lastForceAt"] and status["phase"] == "Succeeded"
    nightly = kubectl_json(admin_env, "-n", "team-a", "get", "order", "nightly-nginx")
    assert "waiting for the first scheduled time" in json.dumps(nightly["status"])
    # the last block deleted "tools" (which succeeded after the fix)
    gone = subprocess.run(
        ["kubectl", "-n", "team-a", "get", "order", "tools"], env=admin_env, capture_output=True, text=True
    )
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_the_sres_guide_follows_the_order_to_pods_metrics_and_logs(
    tenant: str, stack: LocalCluster, admin_env: dict[str, str], tmp_path: Path
) -> None:
    tools = tmp_path / "bin"  # the argo CLI on the PATH, as the guide asks
    tools.mkdir()
    (tools / "argo").symlink_to(binary_path("argo"))
    env = {
        **admin_env,
        "PATH": f"{tools}:{admin_env['PATH']}",
        "PROMETHEUS": stack.prometheus.url,
        "ARGO_SERVER": stack.argo_server.address,
        "ARC_LOGS": str(stack.work_dir / "logs"),
    }
    out = run_guide("sre.md", env)
    # each artifact's link to its Workflow, and the argo CLI through argo-server with the SRE's token
    links = re.findall(
        rf"^https://{re.escape(stack.argo_server.address)}/workflows/team-a/base-images-\w+$", out, re.M
    )
    assert len(links) == 2, out
    assert len(re.findall(r"^base-images-\w+ +Succeeded ", out, flags=re.M)) >= 2, out  # argo list
    assert re.search(r"^base-images: (oci|oci-scanned) #[01]$", out, flags=re.M), out  # argo get: the title
    assert len(table(out, "TYPE", "PHASE", "WORKFLOW")) >= 2, out  # the re-run's two (the first two going)
    # the finished transfers of the tenant's guide (2, 1 after the fix, 2 re-run), as of the last scrape
    succeeded = re.search(r"^team-a succeeded (\d+)$", out, flags=re.M)
    assert succeeded and 1 <= int(succeeded[1]) <= 5, out
    assert "ARCArtifactWorkflowsFailed" in out
    assert re.search(r"\d+ order\tINFO\t", out), out
    for secret in (HUB_PASSWORD, MIRROR_PASSWORD):
        assert secret not in out
        assert secret not in (stack.work_dir / "logs" / "arc-controller-manager.log").read_text()
