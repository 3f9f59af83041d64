"""The tests' TCP proxy on loopback: bytes pass intact and in order through delays and stalls,
a cut refuses and drops connections until healed, and a reset chance ends connections."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tests.hosts.tcp_proxy import Faults, RelaySet


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture(scope="module")
def relays() -> Iterator[RelaySet]:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo) as echo:
        echo.daemon_threads = True
        threading.Thread(target=echo.serve_forever, daemon=True).start()
        with RelaySet(seed=7).running() as running:
            host, port = echo.server_address[:2]
            running.add("echo", ("127.0.0.1", 0), (str(host), int(port)))
            yield running
        echo.shutdown()


def connect(relays: RelaySet) -> socket.socket:
    return socket.create_connection(relays.relays["echo"].listen, timeout=30)


def echo(conn: socket.socket, payload: bytes) -> bytes:
    conn.sendall(payload)
    received = b""
    while len(received) < len(payload) and (data := conn.recv(65536)):
        received += data
    return received


def test_bytes_pass_intact_and_in_order_through_delays_and_stalls(relays: RelaySet) -> None:
    relays.set_faults("echo", up=Faults(delay_s=0.01, stall_chance=0.3, stall_s=0.02))
    try:
        with connect(relays) as conn:
            chunks = [bytes([i]) * 1000 for i in range(40)]
            assert [echo(conn, chunk) for chunk in chunks] == chunks
    finally:
        relays.set_faults("echo")


def test_a_cut_drops_open_connections_and_refuses_new_ones_until_healed(relays: RelaySet) -> None:
    with connect(relays) as before:
        assert echo(before, b"ping") == b"ping"
        relays.set_faults("echo", cut=True)
        try:
            assert _closed(before)
            with connect(relays) as during:
                assert _closed(during)
        finally:
            relays.set_faults("echo")
    with connect(relays) as after:
        assert echo(after, b"pong") == b"pong"


def test_a_reset_chance_of_one_ends_every_connection_at_its_first_bytes(relays: RelaySet) -> None:
    resets = relays.relays["echo"].resets
    relays.set_faults("echo", up=Faults(reset_chance=1.0))
    try:
        with connect(relays) as conn:
            assert _closed(conn, send=b"lost")
    finally:
        relays.set_faults("echo")
    assert relays.relays["echo"].resets == resets + 1


def _closed(conn: socket.socket, send: bytes = b"") -> bool:
    """The relay ended the connection: the peer sees EOF or a reset."""
    try:
        if send:
            conn.sendall(send)
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True
