"""TLS material of a node and the gRPC credentials and options made from it.

Every node listens with the certificate its organisation's TLS CA issued (`tls/server.crt`).
Nodes call each other with mutual TLS: the caller presents the same certificate as a client
certificate and trusts only the TLS CA of the organisation it calls. Peers also serve
applications, which (like Fabric's SDKs and Caliper) use server-side TLS only, so a peer asks
for a client certificate but does not require one; ordering nodes require it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from medalliance.errors import NotFound, Unavailable

# Fabric's SDKs and Caliper ping every 120 s even when idle; allow it instead of answering
# GOAWAY "too_many_pings" (protocol doc §9.4). Message limits match Fabric's 100 MiB default,
# except what a peer receives (`server_options`).
MAX_MESSAGE_BYTES = 100 * 1024 * 1024
# gRPC sets SO_REUSEPORT by default, which lets a second node silently share a busy port.
SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 60_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.keepalive_time_ms", 120_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)
# A node that was down comes back within seconds (`network up`); keep reconnect back-off short so
# calls do not fail fast for a minute after a neighbour restarts.
CLIENT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 120_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
)


def server_options(max_receive_bytes: int) -> tuple[tuple[str, int], ...]:
    """`SERVER_OPTIONS` with a smaller receive limit: gRPC refuses a larger message from its
    length prefix, before reading it into memory (a refusal after decoding cost ~9× its size)."""
    return tuple(
        (name, max_receive_bytes if name == "grpc.max_receive_message_length" else value)
        for name, value in SERVER_OPTIONS
    )


@dataclass(frozen=True)
class NodeTls:
    """A node's TLS key pair (PEM) and the TLS CA certificates it trusts, by MSP id."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    trusted: dict[str, bytes]

    @classmethod
    def load(cls, tls_dir: Path, trusted: dict[str, bytes]) -> NodeTls:
        """Read `server.crt` and `server.key` from a node's `tls/` folder."""
        cert, key = tls_dir / "server.crt", tls_dir / "server.key"
        if not cert.is_file() or not key.is_file():
            raise NotFound(f"{tls_dir} holds no server.crt and server.key; run `network init`")
        return cls(cert.read_bytes(), key.read_bytes(), trusted)

    def server_credentials(self, *, require_client_auth: bool) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=bundle(self.trusted.values()),
            require_client_auth=require_client_auth,
        )

    def channel(self, endpoint: str, server_name: str, msp_id: str) -> grpc.aio.Channel:
        """A mutual-TLS channel to a node of organisation `msp_id`, checking its host name."""
        if msp_id not in self.trusted:
            raise NotFound(f"no TLS CA certificate known for {msp_id}")
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.trusted[msp_id],
            private_key=self.key_pem,
            certificate_chain=self.cert_pem,
        )
        options = (*CLIENT_OPTIONS, ("grpc.ssl_target_name_override", server_name))
        return grpc.aio.secure_channel(endpoint, credentials, options=options)


def bundle(pems: Iterable[bytes]) -> bytes:
    """Concatenate PEM certificates into one trust bundle."""
    return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in pems)


def bind(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials) -> None:
    """Listen on `address`; a busy or foreign address is a clear error, not a shared port."""
    try:
        server.add_secure_port(address, credentials)
    except RuntimeError:
        raise Unavailable(
            f"cannot listen on {address}: the address is in use or not on this machine; "
            "stop what uses it or change the port in the network config"
        ) from None
