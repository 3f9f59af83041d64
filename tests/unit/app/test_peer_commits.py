"""Waiting until the other peers commit a block: who is waited for, and who is not.

Each peer is a real HTTP server answering `GET /status` as a peer's operations endpoint does;
its height is scripted per request, so the tests see how often a peer was asked.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from medalliance.app.peer_commits import wait_for_peers
from medalliance.node.launcher import NodeInfo

CHANNEL, BLOCK = "alliance", 7


class FakePeer:
    """An operations endpoint whose /status body is `answer(n)` for its n-th request."""

    def __init__(self, name: str, answer: Callable[[int], bytes]) -> None:
        self.asked = 0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = answer(peer.asked)
                peer.asked += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        host, port = self.server.server_address[:2]
        self.node = NodeInfo(name, "Org1MSP", "peer", "", f"{host!s}:{port}")
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def heights(*per_request: int) -> Callable[[int], bytes]:
    """The channel's height at each request (the last one from then on)."""
    return lambda n: json.dumps(
        {"channels": {CHANNEL: per_request[min(n, len(per_request) - 1)]}}
    ).encode()


@pytest.fixture
def peers() -> Iterator[Callable[[str, Callable[[int], bytes]], FakePeer]]:
    started: list[FakePeer] = []

    def start(name: str, answer: Callable[[int], bytes]) -> FakePeer:
        started.append(FakePeer(name, answer))
        return started[-1]

    yield start
    for peer in started:
        peer.close()


def test_a_peer_that_commits_the_block_later_is_waited_for(
    peers: Callable[[str, Callable[[int], bytes]], FakePeer],
) -> None:
    done = peers("done", heights(BLOCK + 1))
    lagging = peers("lagging", heights(BLOCK, BLOCK, BLOCK, BLOCK + 1))

    assert wait_for_peers([done.node, lagging.node], CHANNEL, BLOCK) == []
    assert (done.asked, lagging.asked) == (1, 4)


def test_peers_that_cannot_be_used_are_not_waited_for(
    peers: Callable[[str, Callable[[int], bytes]], FakePeer],
) -> None:
    with socket.socket() as unused:  # a port nobody listens on once closed
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]
    silent = NodeInfo("stopped", "Org1MSP", "peer", "", f"127.0.0.1:{closed}")
    other_channel = peers("not-joined", lambda n: b'{"channels": {"other": 3}}')
    behind = peers("voted-out", heights(BLOCK - 2))  # lacked an earlier block already
    hostile = peers("garbage", lambda n: b'{"channels": {"alliance": "many"}}')

    nodes = [silent, other_channel.node, behind.node, hostile.node]
    assert wait_for_peers(nodes, CHANNEL, BLOCK, timeout_s=5) == []
    assert (other_channel.asked, behind.asked, hostile.asked) == (1, 1, 1)


def test_a_stuck_peer_is_given_up_on_and_named(
    peers: Callable[[str, Callable[[int], bytes]], FakePeer],
) -> None:
    stuck = peers("stuck", heights(BLOCK))

    assert wait_for_peers([stuck.node], CHANNEL, BLOCK, stall_s=0.3) == ["stuck"]
    assert stuck.asked > 1


def test_a_peer_still_moving_at_the_deadline_is_given_up_on(
    peers: Callable[[str, Callable[[int], bytes]], FakePeer],
) -> None:
    # Height BLOCK at first (only the new block missing), then it moves but never past it:
    # a peer rewinding its answers, which a hostile operations endpoint could do.
    slow = peers("slow", lambda n: heights(BLOCK)(0) if n % 2 == 0 else heights(BLOCK - 1)(0))

    assert wait_for_peers([slow.node], CHANNEL, BLOCK, timeout_s=0.3, stall_s=10) == ["slow"]
