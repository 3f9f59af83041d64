"""The peer's gRPC link to one external chaincode server (chaincode as a service).

One link per installed ccaas package: the peer dials the address of the package's
connection.json (TLS and client certificate when it asks for them), opens
`protos.Chaincode/Connect`, and expects the chaincode to REGISTER under the package id. The link
then carries invocations one at a time (`execute`), each bounded by `execute_timeout_s` so a
stuck chaincode cannot hold the peer. A broken stream is re-dialled on the next invocation; a
failed dial waits a growing back-off (up to `MAX_BACKOFF_S`) before the next one, and meanwhile
invocations fail at once with "chaincode <id> is not reachable at <address>".

What the messages mean is `contracts.shim_handler`'s business; this module only moves them.
A background thread reads the stream (gRPC's synchronous API), so the endorsement, which runs on
the peer's event loop like every simulation, waits on a queue with a deadline.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator

import grpc
from fabric_protos.peer import chaincode_shim_pb2_grpc

from medalliance.contracts.ccaas_package import CcaasPackage
from medalliance.contracts.external import ExternalContract
from medalliance.contracts.shim_handler import (
    Invocation,
    Msg,
    Outcome,
    ShimProtocolError,
    registration_replies,
)

log = logging.getLogger(__name__)

DEFAULT_EXECUTE_TIMEOUT_S = 30.0  # Fabric's chaincode.executetimeout
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 10.0
_CLOSED = None  # put on the incoming queue when the stream ends


class _Stream:
    """One open Connect stream: a queue out, a reader thread filling a queue in."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.outgoing: queue.Queue[Msg | None] = queue.Queue()
        self.incoming: queue.Queue[Msg | None] = queue.Queue()
        self.closed = threading.Event()
        stub = chaincode_shim_pb2_grpc.ChaincodeStub(channel)
        self._call = stub.Connect(self._requests())
        self._reader = threading.Thread(target=self._read, name="chaincode-link", daemon=True)
        self._reader.start()

    def _requests(self) -> Iterator[Msg]:
        while True:
            message = self.outgoing.get()
            if message is None:
                return
            yield message

    def _read(self) -> None:
        try:
            for message in self._call:
                self.incoming.put(message)
        except grpc.RpcError:
            pass  # the chaincode went away or sent what is not a ChaincodeMessage
        finally:
            self.closed.set()
            self.incoming.put(_CLOSED)

    def send(self, message: Msg) -> None:
        self.outgoing.put(message)

    def close(self) -> None:
        self.outgoing.put(None)
        self._call.cancel()
        self.channel.close()


class ChaincodeLink:
    """The connection to one external chaincode; `execute` is an `Executor`."""

    def __init__(
        self,
        package_id: str,
        package: CcaasPackage,
        *,
        execute_timeout_s: float = DEFAULT_EXECUTE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.package_id = package_id
        self.connection = package.connection
        self.execute_timeout_s = execute_timeout_s
        self._clock = clock
        self._lock = threading.Lock()  # one invocation at a time on this link
        self._stream: _Stream | None = None
        self._retry_at = 0.0
        self._backoff = FIRST_BACKOFF_S
        self._reason = "it has not been dialled yet"

    @property
    def unreachable(self) -> str:
        return (
            f"chaincode {self.package_id} is not reachable at {self.connection.address} "
            f"({self._reason})"
        )

    def execute(self, invocation: Invocation, first: Msg) -> Outcome:
        with self._lock:
            stream = self._connected()
            if stream is None:
                invocation.fail(self.unreachable)
                return _outcome(invocation, 503)
            stream.send(first)
            deadline = self._clock() + self.execute_timeout_s
            while invocation.outcome is None:
                remaining = deadline - self._clock()
                try:
                    message = stream.incoming.get(timeout=max(remaining, 0.0))
                except queue.Empty:
                    invocation.fail(
                        f"chaincode {self.package_id} did not complete the transaction within "
                        f"{self.execute_timeout_s:g} s"
                    )
                    return _outcome(invocation, 504)
                if message is _CLOSED:
                    self._drop(stream)
                    invocation.fail(
                        f"chaincode {self.package_id} at {self.connection.address} closed the "
                        "connection during the transaction"
                    )
                    return _outcome(invocation, 503)
                for reply in invocation.receive(message):
                    stream.send(reply)
            return _outcome(invocation, 500)

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._drop(self._stream)

    # --- connecting ------------------------------------------------------------------------------

    def _connected(self) -> _Stream | None:
        if self._stream is not None and not self._stream.closed.is_set():
            return self._stream
        if self._stream is not None:
            self._drop(self._stream)
        if self._clock() < self._retry_at:
            return None
        try:
            self._stream = self._dial()
        except (_DialFailed, grpc.RpcError, ShimProtocolError, queue.Empty) as exc:
            self._reason = (
                str(exc)
                if isinstance(exc, ShimProtocolError | _DialFailed)
                else "it did not register within the dial timeout"
                if isinstance(exc, queue.Empty)
                else "the connection failed"
            )
            log.warning(
                "chaincode not reachable",
                extra={
                    "package_id": self.package_id,
                    "address": self.connection.address,
                    "reason": self._reason,
                    "retry_in_s": self._backoff,
                },
            )
            self._retry_at = self._clock() + self._backoff
            self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
            return None
        self._backoff = FIRST_BACKOFF_S
        log.info(
            "chaincode registered",
            extra={"package_id": self.package_id, "address": self.connection.address},
        )
        return self._stream

    def _dial(self) -> _Stream:
        connection = self.connection
        if connection.tls_required:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=connection.root_cert,
                private_key=connection.client_key or None,
                certificate_chain=connection.client_cert or None,
            )
            channel = grpc.secure_channel(connection.address, credentials)
        else:
            channel = grpc.insecure_channel(connection.address)
        try:
            _wait_ready(channel, connection.dial_timeout_s)
            stream = _Stream(channel)
        except BaseException:
            channel.close()
            raise
        try:
            first = stream.incoming.get(timeout=connection.dial_timeout_s)
            if first is _CLOSED:
                raise ShimProtocolError("it closed the stream before registering")
            for reply in registration_replies(first, self.package_id):
                stream.send(reply)
        except BaseException:
            stream.close()
            raise
        return stream

    def _drop(self, stream: _Stream) -> None:
        stream.close()
        if self._stream is stream:
            self._stream = None


def _wait_ready(channel: grpc.Channel, timeout_s: float) -> None:
    """Until the channel is connected; `grpc.FutureTimeoutError` at the dial timeout, and
    at once when the first attempt fails (a refused connection: nobody listens there), so a
    chaincode that is down holds the endorsement a moment, not the whole dial timeout."""
    settled = threading.Event()
    states: list[grpc.ChannelConnectivity] = []

    def seen(state: grpc.ChannelConnectivity) -> None:
        states.append(state)
        if state in (
            grpc.ChannelConnectivity.READY,
            grpc.ChannelConnectivity.TRANSIENT_FAILURE,
            grpc.ChannelConnectivity.SHUTDOWN,
        ):
            settled.set()

    channel.subscribe(seen, try_to_connect=True)
    try:
        answered = settled.wait(timeout_s)
    finally:
        channel.unsubscribe(seen)
    if not answered:
        raise _DialFailed("no answer within the dial timeout")
    if states[-1] != grpc.ChannelConnectivity.READY:
        raise _DialFailed("the connection was refused or failed")


class _DialFailed(Exception):
    """The chaincode server could not be connected to; the message says how."""


def _outcome(invocation: Invocation, status: int) -> Outcome:
    outcome = invocation.outcome
    assert outcome is not None
    if outcome.status == 500 and status != 500:
        return Outcome(status, outcome.message, b"")
    return outcome


class ExternalChaincodes:
    """A peer's links, one per ccaas package id, and the contracts that use them."""

    def __init__(self, *, execute_timeout_s: float = DEFAULT_EXECUTE_TIMEOUT_S) -> None:
        self.execute_timeout_s = execute_timeout_s
        self._links: dict[str, ChaincodeLink] = {}

    def contract(self, package_id: str, package: CcaasPackage) -> ExternalContract:
        link = self._links.get(package_id)
        if link is None:
            link = self._links[package_id] = ChaincodeLink(
                package_id, package, execute_timeout_s=self.execute_timeout_s
            )
        return ExternalContract(package_id, link)

    def close(self) -> None:
        for link in self._links.values():
            link.close()
        self._links.clear()
