"""The integrity monitor's shell against real HTTP endpoints that answer badly or not at all."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.networks import free_ports

from medalliance.app.integrity_status import findings_of_status
from medalliance.audit.integrity import Finding
from medalliance.node.integrity_monitor import IntegrityMonitor, WatchedPeer
from medalliance.node.operations import STATE_HASH_CONCURRENCY, OperationsServer

GOOD = {"ch": {"height": 3, "blockHash": "b" * 64, "stateHash": "s" * 64}}
BAD_STATE = {"ch": {"height": 3, "blockHash": "b" * 64, "stateHash": "x" * 64}}


@pytest.fixture
def endpoints() -> Iterator[dict[str, bytes]]:
    """A local HTTP server answering `/status?...` under `/<name>/` with the bytes set here."""
    answers: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.get(self.path.split("/")[1], b"")
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    answers["port"] = str(server.server_address[1]).encode()
    try:
        yield answers
    finally:
        server.shutdown()
        server.server_close()


def monitor(answers: dict[str, bytes], names: list[str]) -> IntegrityMonitor:
    port = answers["port"].decode()
    return IntegrityMonitor(
        host="me",
        organization="MeMSP",
        own=lambda: GOOD,
        # the path prefix picks the answer; the monitor appends /status?state_hash=1
        peers=[WatchedPeer(n, f"{n}MSP", f"127.0.0.1:{port}/{n}") for n in names],
        interval_s=1,
        timeout_s=5,
        now=lambda: dt.datetime(2026, 12, 3, tzinfo=dt.UTC),
    )


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"not json", id="an answer that is not JSON leaves the peer unreachable"),
        pytest.param(b'{"healthy": true}', id="an answer without ledgers leaves it unreachable"),
        pytest.param(b"{" + b" " * 2_000_000 + b"}", id="a huge answer is not buffered whole"),
    ],
)
def test_a_bad_answer_makes_a_peer_unreachable_not_divergent(
    endpoints: dict[str, bytes], answer: bytes
) -> None:
    endpoints["bad"] = answer
    endpoints["good"] = json.dumps({"ledgers": GOOD}).encode()
    check = asyncio.run(monitor(endpoints, ["bad", "good"]).check_once())
    assert check.unreachable == ("bad",)
    assert check.findings == ()
    assert check.channels[0].compared == ("good", "me")


def test_malformed_entries_are_left_out_of_the_comparison(endpoints: dict[str, bytes]) -> None:
    endpoints["odd"] = json.dumps({"ledgers": {"ch": {"height": "3", "stateHash": 7}}}).encode()
    endpoints["good"] = json.dumps({"ledgers": GOOD}).encode()
    check = asyncio.run(monitor(endpoints, ["odd", "good"]).check_once())
    assert check.unreachable == ()
    assert check.channels[0].compared == ("good", "me")


def test_a_finding_reaches_the_hooks_once(endpoints: dict[str, bytes]) -> None:
    endpoints["a"] = json.dumps({"ledgers": GOOD}).encode()
    endpoints["z"] = json.dumps({"ledgers": BAD_STATE}).encode()
    watcher = monitor(endpoints, ["a", "z"])
    raised: list[Finding] = []
    watcher.on_finding.append(raised.append)
    asyncio.run(watcher.check_once())
    asyncio.run(watcher.check_once())
    assert [(f.peer, f.kind) for f in raised] == [("z", "state-hash")]
    status = watcher.status()
    assert [f["peer"] for f in status["findings"]] == ["z"]
    assert status["checked"] == "2026-12-03T00:00:00+00:00"


def test_a_failing_hook_does_not_stop_the_others(endpoints: dict[str, bytes]) -> None:
    endpoints["a"] = json.dumps({"ledgers": GOOD}).encode()
    endpoints["z"] = json.dumps({"ledgers": BAD_STATE}).encode()
    watcher = monitor(endpoints, ["a", "z"])
    raised: list[Finding] = []

    def broken(finding: Finding) -> None:
        raise RuntimeError("the alarm could not be submitted")

    watcher.on_finding += [broken, raised.append]
    check = asyncio.run(watcher.check_once())
    assert [f.peer for f in raised] == ["z"]
    assert watcher.latest == check


def test_digests_that_cannot_be_computed_answer_503_and_status_still_works() -> None:
    def unavailable() -> dict[str, Any]:
        raise TimeoutError("the event loop did not answer")

    address = f"127.0.0.1:{free_ports(1)[0]}"
    server = OperationsServer(address, lambda: {"name": "peer0"}, ledgers=unavailable)
    server.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://{address}/status?state_hash=1", timeout=5)
        assert refused.value.code == 503
        with urllib.request.urlopen(f"http://{address}/status", timeout=5) as reply:
            assert json.loads(reply.read())["name"] == "peer0"
    finally:
        server.close()


def test_state_hash_requests_beyond_the_limit_are_refused_at_once_not_queued() -> None:
    """While STATE_HASH_CONCURRENCY digests are being computed, a further request is refused
    with 503 and Retry-After at once (never queued on the node's loop); health still answers,
    and the slow ones finish with their answer."""
    release, started = threading.Event(), threading.Semaphore(0)
    calls: list[int] = []

    def slow() -> dict[str, Any]:
        calls.append(1)
        started.release()
        release.wait(timeout=30)
        return GOOD

    address = f"127.0.0.1:{free_ports(1)[0]}"
    server = OperationsServer(address, lambda: {"name": "peer0"}, ledgers=slow)
    server.healthy = True
    server.start()
    url = f"http://{address}/status?state_hash=1"
    done: list[int] = []

    def ask() -> None:
        with urllib.request.urlopen(url, timeout=30) as reply:
            done.append(reply.status)

    holders = [threading.Thread(target=ask) for _ in range(STATE_HASH_CONCURRENCY)]
    try:
        for holder in holders:
            holder.start()
        for _ in holders:
            assert started.acquire(timeout=10)  # every slot is taken
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert (refused.value.code, refused.value.headers["Retry-After"]) == (503, "1")
        assert json.loads(refused.value.read())["error"].startswith("busy")
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=5) as reply:
            assert reply.status == 200
        assert len(calls) == STATE_HASH_CONCURRENCY  # the refused one never reached `ledgers`
    finally:
        release.set()
        for holder in holders:
            holder.join(timeout=30)
        server.close()
    assert done == [200] * STATE_HASH_CONCURRENCY


def test_the_runner_reads_findings_from_a_status_answer() -> None:
    finding = Finding("ch", 7, "peer0.b", "BMSP", "state-hash", "a" * 64, "c" * 64, ("p1", "p2"))
    status = {"integrity": {"checked": "2026-12-03T10:00:00+00:00", "findings": [
        {**dataclasses.asdict(finding), "agreeing": ["p1", "p2"], "message": "..."},
        {"peer": "peer0.c", "height": "7"},  # malformed: left out
    ]}}  # fmt: skip
    assert findings_of_status(status) == [finding]
    assert findings_of_status({"name": "peer0"}) is None  # no monitor on this peer
    assert findings_of_status({"integrity": {"checked": None, "findings": []}}) is None
