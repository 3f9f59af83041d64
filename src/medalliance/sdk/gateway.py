"""Connecting to a gateway peer: one gRPC channel, one identity, a default deadline.

Speaks only Fabric's standard Gateway and Deliver services, so it works against our peers and
against a Fabric 2.4+ peer alike. Unlike the Node client, `connect` can make the gRPC channel
itself (plaintext, server TLS or mutual TLS), and then `close()` closes it; a channel passed in
stays the caller's to close.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

import grpc
from fabric_protos.gateway import gateway_pb2_grpc
from fabric_protos.peer import events_pb2_grpc

from medalliance.errors import InvalidArgument
from medalliance.ledger.tx import SigningIdentity
from medalliance.sdk.client import Client
from medalliance.sdk.identity import tls_certificate_hash
from medalliance.sdk.network import Network

DEFAULT_TIMEOUT_SECONDS = 30.0
# Blocks can be large; keepalive every 120 s even when idle, which Fabric peers allow (they
# accept a ping per 60 s) and which keeps NATs from dropping a quiet event stream (§9.4).
MAX_MESSAGE_BYTES = 100 * 1024 * 1024
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 120_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


class Gateway:
    """A connection to one gateway peer as one identity; use it in a `with` block."""

    def __init__(self, client: Client, channel: grpc.Channel, *, owns_channel: bool) -> None:
        self._client = client
        self._channel = channel
        self._owns_channel = owns_channel

    def __repr__(self) -> str:
        return f"Gateway(timeout_seconds={self._client.timeout_seconds})"

    @property
    def signer(self) -> SigningIdentity:
        """The identity that signs every request of this gateway."""
        return self._client.signer

    def get_network(self, channel_id: str) -> Network:
        """The channel `channel_id`; no call is made until a transaction or stream needs it."""
        return Network(self._client, channel_id)

    def close(self) -> None:
        """Close the gRPC channel if `connect` made it; open event streams end with it."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def connect(
    endpoint: str | None = None,
    *,
    signer: SigningIdentity,
    tls_root_cert: bytes | None = None,
    server_name: str | None = None,
    tls_client_cert: bytes | None = None,
    tls_client_key: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    channel: grpc.Channel | None = None,
    options: Sequence[tuple[str, str | int]] = (),
) -> Gateway:
    """A gateway at `endpoint` ("host:port"), or over an existing gRPC `channel`.

    Plaintext when `tls_root_cert` is None, else TLS trusting that PEM CA; `server_name` is the
    name the peer's certificate carries when it differs from the host ("ssl target name
    override"). `tls_client_cert`/`tls_client_key` add mutual TLS. `timeout` (seconds) is the
    deadline of every unary call that does not pass its own. Connecting is lazy: an unreachable
    peer shows as a `GatewayError` (UNAVAILABLE) on the first call. Raises `InvalidArgument`
    for inconsistent options.
    """
    if timeout <= 0:
        raise InvalidArgument(f"timeout must be a positive number of seconds, not {timeout}")
    if (tls_client_cert is None) != (tls_client_key is None):
        raise InvalidArgument("mutual TLS needs both tls_client_cert and tls_client_key")
    if tls_client_cert is not None and tls_root_cert is None:
        raise InvalidArgument("mutual TLS needs tls_root_cert, the peer's TLS CA certificate")
    if (endpoint is None) == (channel is None):
        raise InvalidArgument("give connect() either an endpoint or a grpc channel, not both")
    owns_channel = channel is None
    if channel is None:
        channel = _new_channel(
            str(endpoint), tls_root_cert, server_name, tls_client_cert, tls_client_key, options
        )
    client = Client(
        gateway=gateway_pb2_grpc.GatewayStub(channel),
        deliver=events_pb2_grpc.DeliverStub(channel),
        signer=signer,
        timeout_seconds=timeout,
        tls_cert_hash=tls_certificate_hash(tls_client_cert) if tls_client_cert else b"",
    )
    return Gateway(client, channel, owns_channel=owns_channel)


def _new_channel(
    endpoint: str,
    tls_root_cert: bytes | None,
    server_name: str | None,
    tls_client_cert: bytes | None,
    tls_client_key: bytes | None,
    options: Sequence[tuple[str, str | int]],
) -> grpc.Channel:
    channel_options: list[tuple[str, str | int]] = [*CHANNEL_OPTIONS, *options]
    if tls_root_cert is None:
        return grpc.insecure_channel(endpoint, options=channel_options)
    if server_name:
        channel_options.append(("grpc.ssl_target_name_override", server_name))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls_root_cert,
        private_key=tls_client_key,
        certificate_chain=tls_client_cert,
    )
    return grpc.secure_channel(endpoint, credentials, options=channel_options)
