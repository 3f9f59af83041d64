"""The integrity monitor's shell against real HTTP endpoints that answer badly or not at all."""

from __future__ import annotations

import asyncio
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

from medalliance.audit.integrity import Finding
from medalliance.node.integrity_monitor import IntegrityMonitor, WatchedPeer
from medalliance.node.operations import OperationsServer

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
