"""/healthz, /livez, /readyz: kube-apiserver's checks, names, texts and status codes."""

from __future__ import annotations

import asyncio

import pytest

from apiserver.health import SharedProbe
from apiserver.server import SHUTDOWN
from tests.unit.apiserver.conftest import Api

LIVEZ_CHECKS = ["ping", "etcd"]
READYZ_CHECKS = ["ping", "etcd", "etcd-readiness", "informer-sync", "shutdown"]


async def probe(api: Api, path: str, **params: str) -> tuple[int, str]:
    """An unauthenticated probe, as the kubelet sends it."""
    resp = await api.client.get(path, params=params)
    return resp.status, await resp.text()


@pytest.mark.parametrize("endpoint", ["/healthz", "/livez", "/readyz"])
async def test_a_healthy_server_answers_ok_to_anonymous_probes(api: Api, endpoint: str) -> None:
    resp = await api.client.get(endpoint)
    assert resp.status == 200
    assert await resp.text() == "ok"
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("endpoint", "checks"), [("livez", LIVEZ_CHECKS), ("readyz", READYZ_CHECKS)])
async def test_verbose_lists_every_check_in_kube_order(api: Api, endpoint: str, checks: list[str]) -> None:
    status, text = await probe(api, f"/{endpoint}", verbose="")
    assert status == 200
    assert text == "".join(f"[+]{c} ok\n" for c in checks) + f"{endpoint} check passed\n"


async def test_etcd_down_fails_readyz_and_livez_withholding_the_reason(api: Api) -> None:
    api.storage.unavailable = True
    try:
        status, text = await probe(api, "/readyz")
        assert status == 500
        assert text == (
            "[+]ping ok\n[-]etcd failed: reason withheld\n[-]etcd-readiness failed: reason withheld\n"
            "[+]informer-sync ok\n[+]shutdown ok\nreadyz check failed\n"
        )
        assert "memory storage" not in text
        status, text = await probe(api, "/livez")
        assert status == 500 and "[-]etcd failed: reason withheld" in text
        # A probe that must not restart the pod during an etcd outage excludes the check.
        status, text = await probe(api, "/livez", exclude="etcd")
        assert (status, text) == (200, "ok")
        status, text = await probe(api, "/readyz", exclude="etcd,etcd-readiness", verbose="")
        assert status == 200
        assert "[+]etcd excluded: ok\n[+]etcd-readiness excluded: ok\n" in text
        # The single-check path is authorized like any other path, and says why.
        status, body, _ = await api.call("GET", "/readyz/etcd")
        assert status == 500
        assert body == "internal server error: memory storage is marked unavailable\n"
    finally:
        api.storage.unavailable = False
    # A failure is not remembered: recovery shows at once.
    assert await probe(api, "/readyz") == (200, "ok")


async def test_unknown_exclusions_are_reported(api: Api) -> None:
    status, text = await probe(api, "/livez", exclude="nope", verbose="")
    assert status == 200
    assert 'warn: some health checks cannot be excluded: no matches for "nope"\n' in text


async def test_shutdown_fails_readyz_but_not_livez(api: Api) -> None:
    app = api.client.server.app
    assert app is not None
    app[SHUTDOWN].initiate()
    status, text = await probe(api, "/readyz")
    assert status == 500 and "[-]shutdown failed: reason withheld\n" in text
    assert await probe(api, "/livez") == (200, "ok")
    assert (await api.call("GET", "/readyz/shutdown"))[0] == 500
    assert (await api.call("GET", "/livez/ping"))[:2] == (200, "ok")


@pytest.mark.looptime
async def test_concurrent_probes_share_one_call_and_later_ones_ask_again() -> None:
    calls = 0

    async def ping() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.5)

    probe_ = SharedProbe(ping, timeout=2.0)
    await asyncio.gather(*(probe_() for _ in range(10)))
    assert calls == 1
    await probe_()
    assert calls == 2


@pytest.mark.looptime
async def test_a_probe_times_out() -> None:
    calls = 0

    async def hang() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(60)

    probe_ = SharedProbe(hang, timeout=2.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError, match="no answer within 2s"):
        await probe_()
    assert loop.time() - started == pytest.approx(2.0)
    with pytest.raises(TimeoutError):
        await probe_()
    assert calls == 2
