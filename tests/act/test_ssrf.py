"""SSRF: without SEGMENTLY_ALLOW_PRIVATE_DESTINATIONS no request reaches a loopback,
private or link-local address, and the attempt says why."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from receivers import HOUR, Receiver, T, buy, deliver, log, queued, shop

from segmently.act import sending
from segmently.act.destinations import new_secret
from segmently.settings import Settings
from segmently.store import Store

DUCKDB = pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)


@DUCKDB
def test_a_loopback_destination_is_refused_without_the_setting(store: Store) -> None:
    secret = new_secret()
    with Receiver(secret) as hook:
        project = shop(store)
        hosts = {"by-address": "127.0.0.1", "by-name": "localhost"}
        for name, host in hosts.items():
            project.save_destination({"name": name, "kind": "webhook", "secret": secret,
                                      "url": hook.url.replace("127.0.0.1", host),
                                      "subscriptions": [{"segments": ["buyers"]}]})
        buy(store, project.id, ["u0"], T - HOUR)
        project.refresh(T)
        report = deliver(store, settings=Settings())
        assert (report.delivered, report.failed) == (0, 2)
        assert hook.arrivals == []
        for name, host in hosts.items():
            [row] = queued(store, project.id, name)
            [attempt] = log(store, project.id, row["message_id"])
            assert attempt["status"] is None and not attempt["ok"]
            assert attempt["error"].startswith(f"refused: {host} is ")
            assert "a loopback, private or link-local address" in attempt["error"]
            assert "SEGMENTLY_ALLOW_PRIVATE_DESTINATIONS" in attempt["error"]
        assert deliver(store).delivered == 2  # allowed: the same messages go
        assert sorted(a.webhook_id for a in hook.arrivals) == sorted(
            r["message_id"] for r in queued(store, project.id))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://127.9.9.9:8080/x", "http://[::1]/", "http://0.0.0.0/",
    "http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/", "http://[fc00::1]/",
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/", "http://2130706433/",  # 127.0.0.1
    "http://100.100.100.200/latest/meta-data/",  # Alibaba Cloud's metadata (100.64/10)
    "http://100.64.0.1/",  # shared address space (carrier-grade NAT, Tailscale): not global
])
def test_private_addresses_are_blocked(url: str) -> None:
    assert sending.blocked_address(url) is not None, url


@pytest.mark.parametrize("url", ["http://93.184.215.14/hook", "https://[2606:4700::1]/"])
def test_public_addresses_are_not_blocked(url: str) -> None:
    assert sending.blocked_address(url) is None


def test_the_address_checked_is_the_address_connected_to(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a name that resolves to a public address when checked and to
    127.0.0.1 when connected must not reach the loopback receiver."""
    real = socket.getaddrinfo
    calls = {"n": 0}

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            calls["n"] += 1
            address = "93.184.215.14" if calls["n"] == 1 else "127.0.0.1"
            return real(address, *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    secret = new_secret()
    with Receiver(secret) as hook:
        from segmently.act.destinations import Destination
        from segmently.act.payloads import Request

        dest = Destination(name="hook", kind="webhook", secret=secret,
                           url=hook.url.replace("127.0.0.1", "rebind.test"))
        outcome = sending.send(dest, Request(dest.url or "", b"{}", signed_id="msg_1"))
        assert hook.arrivals == [], "the request reached 127.0.0.1 through a rebound name"
        assert not outcome.ok
