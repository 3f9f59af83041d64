"""The pseudonym service: the alliance's OPRF key evaluates blinded identifiers, for hospitals only.

`medalliance.Pseudonym/Evaluate` on the peer of the network's pseudonym regulator (docs/privacy.md
§4; `pseudonym_service` in network.yaml, by default the root regulator). JSON over gRPC:

- request `{request, signature}` (base64): `request` is the JSON `{identity, timestampMs,
  elements}` — the caller's serialized identity, the time, and up to `MAX_ELEMENTS` blinded
  ristretto255 elements — and `signature` the identity's signature over those exact bytes;
- answer `{evaluated}`: the evaluated elements, in order.

A call is answered only when the request is within the time window, the identity is valid in
the channel's MSPs (chain, validity period, revocation), the signature verifies, its
organisation is a hospital member of the channel, the organisation's token bucket holds one
token per element (else RESOURCE_EXHAUSTED), and the evaluation has been appended to the
evaluation log (org, identity, count, time — never an element). The service sees blinded
elements only, so neither it nor its log learns an identifier; whoever holds the log can see
how many pseudonyms each hospital asked for, and when.

`EvaluationLog` and `PseudonymEvaluator` do the work and are used in-process by the embedded
network; `PseudonymService` adds gRPC.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.x509.oid import NameOID

from medalliance.errors import InvalidArgument, MedallianceError, Overloaded, PermissionDenied
from medalliance.identity.msp import Identity
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.tx import SigningIdentity, outside_time_window
from medalliance.node.bootstrap import OPRF_KEY, NetworkLayout
from medalliance.node.config import HOSPITAL_TYPES
from medalliance.node.rate_limit import TokenBuckets
from medalliance.privacy import oprf
from medalliance.privacy.oprf import OprfKey
from medalliance.privacy.pseudonym import load_key

log = logging.getLogger(__name__)

SERVICE = "medalliance.Pseudonym"
MAX_ELEMENTS = 64  # one request; a batch import asks several times
MAX_REQUEST_BYTES = 64 * 1024  # far above MAX_ELEMENTS elements; refused before parsing
LOG_FILE = "evaluations.jsonl"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One answered request, as the log keeps it: who asked, how many, when."""

    time: str  # ISO 8601, UTC
    org: str
    identity: str  # the certificate's common name: a user of the hospital, never a patient
    count: int


class EvaluationLog:
    """An append-only JSON-lines file: each answered request is one line, written and synced
    before the answer leaves. Nothing here rewrites or deletes a line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()  # the embedded network may evaluate from several threads

    def append(self, entry: Evaluation) -> None:
        line = json.dumps(
            {"time": entry.time, "org": entry.org, "identity": entry.identity, "count": entry.count}
        )
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def entries(self) -> Iterator[Evaluation]:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            yield Evaluation(**json.loads(line))


class PseudonymEvaluator:
    """Authenticates, rate-limits, logs and evaluates one signed request (no gRPC here)."""

    def __init__(
        self,
        *,
        key: OprfKey,
        config: Callable[[], ChannelConfig],
        hospitals: Collection[str],
        buckets: TokenBuckets,
        evaluation_log: EvaluationLog,
        now: Callable[[], dt.datetime],
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = key
        self._config = config  # the channel whose MSPs and members decide who may ask
        self._hospitals = frozenset(hospitals)
        self._buckets = buckets
        self.log = evaluation_log
        self._now = now
        self._monotonic_s = monotonic_s
        self._lock = threading.Lock()

    def evaluate(self, message: bytes) -> bytes:
        """The JSON answer to a request; typed errors (nothing logged, no token taken) for a
        request that is malformed, unauthenticated, not a hospital's, or past the limit."""
        if len(message) > MAX_REQUEST_BYTES:
            raise InvalidArgument(
                f"a pseudonym request is at most {MAX_REQUEST_BYTES} bytes; "
                f"send at most {MAX_ELEMENTS} elements"
            )
        raw, signature = _signed_parts(message)
        identity, timestamp_ms, elements = _request_fields(raw)
        now = self._now()
        if outside_time_window(timestamp_ms, now):
            raise PermissionDenied(
                "request timestamp is more than 15 minutes from the service's clock; check your clock"
            )
        config = self._config()
        creator = config.msps.deserialize(identity, at=now)  # InvalidIdentity: chain, expiry
        if not creator.verify(signature, raw):
            raise PermissionDenied("the request signature does not verify")
        org = creator.msp_id
        if org not in self._hospitals or org not in config.application_msp_ids:
            raise PermissionDenied(
                f"{org} is not a hospital of channel {config.channel_id}; only hospitals "
                "register patients and ask for pseudonyms"
            )
        evaluated = [oprf.blind_evaluate(self._key, e) for e in elements]  # InvalidArgument
        with self._lock:  # take, log, answer: one request at a time per service
            refused = self._buckets.take(org, len(elements), self._monotonic_s())
            if refused is not None:
                wait = (
                    f"retry in {refused.retry_after_s:.0f} s"
                    if refused.retry_after_s is not None
                    else f"send fewer than {refused.count} elements per request"
                )
                log.warning("pseudonym rate limit reached", extra={"org": org})
                raise Overloaded(f"{org} is past its pseudonym evaluation limit; {wait}")
            self.log.append(Evaluation(now.isoformat(), org, _common_name(creator), len(elements)))
        log.info("pseudonyms evaluated", extra={"org": org, "count": len(elements)})
        return json.dumps({"evaluated": [base64.b64encode(e).decode() for e in evaluated]}).encode()


class PseudonymService:
    """`medalliance.Pseudonym` over gRPC, around a `PseudonymEvaluator`."""

    def __init__(self, evaluator: PseudonymEvaluator) -> None:
        self.evaluator = evaluator

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(
            self._evaluate_rpc, request_deserializer=_raw, response_serializer=_raw
        )
        return grpc.method_handlers_generic_handler(SERVICE, {"Evaluate": method})

    async def _evaluate_rpc(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            return self.evaluator.evaluate(data)
        except MedallianceError as exc:
            await context.abort(grpc.StatusCode[exc.status.grpc], str(exc))
            raise  # unreachable: abort raises


def evaluator_for(
    layout: NetworkLayout,
    msp_id: str,
    data_dir: Path,
    channel_config: Callable[[str], ChannelConfig],
    channel_ids: Collection[str],
    now: Callable[[], dt.datetime],
) -> PseudonymEvaluator | None:
    """The evaluator a peer of `msp_id` runs, or None: only the pseudonym regulator's peers
    run one, and only where `network init` left its OPRF key. Its log is in the peer's folder;
    callers are authenticated against the first channel the peer serves that has hospitals."""
    config = layout.config
    service = config.pseudonym_regulator()
    if service is None or service.msp_id != msp_id:
        return None
    key_path = layout.org_dir(msp_id) / OPRF_KEY
    if not key_path.exists():
        log.warning("no OPRF key: the pseudonym service is off", extra={"org": msp_id})
        return None
    hospitals = {o.msp_id for o in config.organizations if o.type in HOSPITAL_TYPES}
    channel = next(
        (
            c.name
            for c in config.channels
            if c.name in channel_ids and any(o.msp_id in hospitals for o in config.members(c))
        ),
        None,
    )
    if channel is None:
        return None
    rate = config.pseudonym_rate
    return PseudonymEvaluator(
        key=load_key(key_path),
        config=lambda: channel_config(channel),
        hospitals=hospitals,
        buckets=TokenBuckets(burst=rate.burst, per_minute=rate.per_minute),
        evaluation_log=EvaluationLog(data_dir / "pseudonym" / LOG_FILE),
        now=now,
    )


def evaluate_request(signer: SigningIdentity, elements: list[bytes], now: dt.datetime) -> bytes:
    """A signed `Evaluate` request for `elements` (blinded, so it holds no identifier)."""
    raw = json.dumps(
        {
            "identity": base64.b64encode(signer.serialized_identity).decode(),
            "timestampMs": int(now.timestamp() * 1000),
            "elements": [base64.b64encode(e).decode() for e in elements],
        },
        sort_keys=True,
    ).encode()
    return json.dumps(
        {
            "request": base64.b64encode(raw).decode(),
            "signature": base64.b64encode(signer.sign(raw)).decode(),
        }
    ).encode()


def evaluated_elements(answer: bytes, expected: int) -> list[bytes]:
    """The evaluated elements of an `Evaluate` answer; `InvalidArgument` if it holds a
    different number than asked for or is not an answer."""
    try:
        parsed = json.loads(answer)
        out = [base64.b64decode(e, validate=True) for e in parsed["evaluated"]]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("the pseudonym service's answer is malformed") from None
    if len(out) != expected:
        raise InvalidArgument("the pseudonym service answered a different number of elements")
    return out


def _signed_parts(message: bytes) -> tuple[bytes, bytes]:
    try:
        outer = json.loads(message)
        return (
            base64.b64decode(outer["request"], validate=True),
            base64.b64decode(outer["signature"], validate=True),
        )
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(
            "an unsigned or malformed pseudonym request: send {request, signature}, the "
            "request signed by an identity of your hospital"
        ) from None


def _request_fields(raw: bytes) -> tuple[bytes, int, list[bytes]]:
    try:
        request: dict[str, Any] = json.loads(raw)
        identity = base64.b64decode(request["identity"], validate=True)
        timestamp_ms = int(request["timestampMs"])
        elements = [base64.b64decode(e, validate=True) for e in request["elements"]]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(
            "malformed pseudonym request: it needs identity, timestampMs and elements"
        ) from None
    if not 1 <= len(elements) <= MAX_ELEMENTS:
        raise InvalidArgument(f"send 1 to {MAX_ELEMENTS} blinded elements per request")
    return identity, timestamp_ms, elements


def _common_name(creator: Identity) -> str:
    names = creator.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else creator.msp_id


def _raw(data: bytes) -> bytes:
    return data
