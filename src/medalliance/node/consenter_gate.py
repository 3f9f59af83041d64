"""Who may send on an ordering node's consensus streams (`Step`, `Forward`, `Messages`), and what
is refused.

Mutual TLS proves only that a caller holds a certificate of some organisation's TLS CA, so each
stream and each message is checked (`consenter_auth.py` for the comparison):

- a stream without a client certificate came through the client port: PERMISSION_DENIED;
- a certificate that is no consenter of any of the node's channels: PERMISSION_DENIED, before
  anything is read;
- a consenter already holding `STREAMS_PER_CALLER_MAX` open streams: RESOURCE_EXHAUSTED;
- each message: its channel must exist here and the certificate be one of that channel's
  consenter set in force when the message is handled (a consenter voted out mid-stream is
  refused from then on), else PERMISSION_DENIED; its batch body must decode strictly
  (`consenter_batches.decode`; on `Messages` each item of a known kind), else
  INVALID_ARGUMENT, counted per caller.

Any refusal ends the stream. Refusals are logged sparingly (`RefusalLog`), without payload.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import NoReturn

import grpc

from medalliance.node.bft_channel import BftChannel
from medalliance.node.consensus_inbox import RefusalLog
from medalliance.node.consenter_auth import consenter_of, msp_of
from medalliance.node.consenter_batches import KINDS, MIXED, MalformedBatch, decode
from medalliance.node.consenter_streams import STREAMS_PER_CALLER_MAX

log = logging.getLogger(__name__)


class ConsenterGate:
    """The checks of `service`'s streams against `channels` (by id, as the node holds them);
    `trusted`: the TLS CA certificates by MSP id, to name a refused caller's organisation."""

    def __init__(
        self, service: str, channels: Mapping[str, BftChannel], trusted: Mapping[str, bytes]
    ) -> None:
        self._service = service
        self._channels = channels
        self._trusted = trusted
        self.malformed: Counter[str] = Counter()  # malformed batch bodies, by caller
        self.open_streams: Counter[str] = Counter()  # streams being served, by caller
        self._refusals = RefusalLog()  # refused callers, logged sparingly

    def closed(self, caller: str) -> None:
        """One of `caller`'s streams ended."""
        self.open_streams[caller] -= 1
        if not self.open_streams[caller]:
            del self.open_streams[caller]

    async def batch(
        self, method: str, data: bytes, pem: bytes, context: grpc.aio.ServicerContext
    ) -> tuple[BftChannel, str, list[bytes]]:
        """The channel, the consenter sending and the items of one message's batch; aborts
        with INVALID_ARGUMENT (counted) for a malformed body."""
        channel_id, _, body = data.partition(b"\x00")
        channel, caller = await self._consenter_call(method, channel_id, pem, context)
        try:
            return channel, caller, decode(body, KINDS if method == MIXED else b"")
        except MalformedBatch as exc:  # a consenter's bug (or worse): refused, counted
            self.malformed[caller] += 1
            count = self._refusals.note(caller, method, "malformed")
            if count is not None:
                log.warning(
                    "consensus call refused: malformed body",
                    extra={"method": method, "peer": caller, "reason": str(exc), "count": count},
                )
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"{self._service}/{method}: {exc}"
            )
            raise AssertionError("abort returns only by raising") from None  # pragma: no cover

    async def client_certificate(self, method: str, context: grpc.aio.ServicerContext) -> bytes:
        """The caller's client TLS certificate (PEM); aborts with PERMISSION_DENIED without one."""
        pems = context.auth_context().get("x509_pem_cert")
        if pems:
            return bytes(pems[0])
        # The client port asks for no certificate: refused before any lookup.
        count = self._refusals.note("", method)
        if count is not None:
            log.warning(
                "consensus call refused: no client certificate (client port)",
                extra={"method": method, "count": count},
            )
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{self._service}/{method} is served on the ordering node's cluster port "
            "with mutual TLS; this call came without a client TLS certificate (the client "
            "port): dial the cluster port the channel's consenter mapping names",
        )
        raise AssertionError("abort returns only by raising")  # pragma: no cover

    async def stream_caller(
        self, method: str, pem: bytes, context: grpc.aio.ServicerContext
    ) -> str:
        """The consenter opening a stream, by its name in some channel's consenter set; aborts
        with PERMISSION_DENIED for anyone else, RESOURCE_EXHAUSTED beyond its open streams."""
        found = (consenter_of(c.config.consenter_set, pem) for c in self._channels.values())
        consenter = next((c for c in found if c is not None), None)
        if consenter is None:
            await self._refuse(method, "", pem, context)
        name = consenter.name
        if self.open_streams[name] >= STREAMS_PER_CALLER_MAX:
            count = self._refusals.note(name, method, "streams")
            if count is not None:
                log.warning(
                    "consensus stream refused: too many open",
                    extra={"method": method, "peer": name, "count": count},
                )
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"consenter {name[:64]!r} already holds {STREAMS_PER_CALLER_MAX} open streams "
                f"to {self._service} on this ordering node; end one before opening another",
            )
        return name

    async def _consenter_call(
        self, method: str, channel_id: bytes, pem: bytes, context: grpc.aio.ServicerContext
    ) -> tuple[BftChannel, str]:
        """The channel and the consenter sending; aborts with PERMISSION_DENIED unless the
        caller's client TLS certificate is one of the channel's consenter set in force."""
        name = channel_id.decode("utf-8", "replace")
        channel = self._channels.get(name)
        consenter = None if channel is None else consenter_of(channel.config.consenter_set, pem)
        if channel is None or consenter is None:
            await self._refuse(method, name, pem, context)
        return channel, consenter.name

    async def _refuse(
        self, method: str, channel: str, pem: bytes, context: grpc.aio.ServicerContext
    ) -> NoReturn:
        """PERMISSION_DENIED for a certificate that is no consenter of `channel` ("": of any
        channel of this node), logged sparingly."""
        msp_id = msp_of(pem, self._trusted)
        count = self._refusals.note(msp_id, method)
        if count is not None:
            log.warning(
                "consensus call refused: not a consenter",
                extra={"method": method, "channel": channel[:64], "msp_id": msp_id, "count": count},
            )
        whose, mapping = (
            (f"channel {channel[:64]!r}", "the channel's") if channel else ("a channel", "any")
        )
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"only the consenters of {whose} on this ordering node may call "
            f"{self._service}/{method}; the client TLS certificate presented (issued to "
            f"{msp_id}) is not in {mapping} consenter mapping",
        )
        raise AssertionError("abort returns only by raising")  # pragma: no cover
