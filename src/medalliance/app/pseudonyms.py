"""A hospital's one way to a patient's pseudonym: ask the pseudonym service, remember the answer.

Every place that needs a patient reference (admission, the referral demo, the connector's check
of an incoming package, the CLI) calls `PseudonymClient.pseudonym(id_type, id_number)`. The
identifier is blinded here, evaluated by the pseudonym regulator's node (node/
pseudonym_service.py: signed by the calling user, rate-limited and logged there), and finished
here (privacy/pseudonym.py). No key that would let the hospital compute a pseudonym alone
exists at the hospital. Answers are cached in the hospital's own clinical store (application
records `pseudonym.cache`, next to the patients it already holds, on SQLite or PostgreSQL), so a
known patient costs no evaluation and no share of the hospital's rate limit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol

import grpc

from medalliance.app.session import own_peer, user_signer
from medalliance.errors import Unavailable
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.pseudonym_service import SERVICE, evaluate_request, evaluated_elements
from medalliance.privacy.pseudonym import blind_identifier, normalise
from medalliance.sdk.errors import gateway_error

# The service evaluates blinded elements in batches; larger lists are split.
BATCH = 64

Evaluate = Callable[[list[bytes]], list[bytes]]


class PseudonymCache:
    """Normalised identifier → pseudonym, as records of the hospital's store (which deletes
    securely on SQLite: an identity deleted there does not linger). The store is the caller's."""

    KIND = "pseudonym.cache"

    def __init__(self, store: ClinicalStore) -> None:
        self._store = store

    def get(self, id_type: str, value: str) -> str | None:
        found = self._store.get_record(self.KIND, f"{id_type}:{value}")
        return None if found is None else str(found["patientRef"])

    def put(self, id_type: str, value: str, patient_ref: str) -> None:
        self._store.set_record(self.KIND, f"{id_type}:{value}", {"patientRef": patient_ref})

    def close(self) -> None:
        """Nothing to close: the store belongs to the caller."""


class PseudonymClient:
    """Pseudonyms for one hospital user, through `evaluate` (the service, over gRPC or
    in-process), cached in `cache` when given."""

    def __init__(self, evaluate: Evaluate, cache: PseudonymCache | None = None) -> None:
        self._evaluate = evaluate
        self._cache = cache
        self.evaluations = 0  # identifiers sent to the service by this client

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    def pseudonym(self, id_type: str, id_number: str) -> str:
        """The patient's alliance-wide pseudonym (32 lower-case hex). Raises `InvalidArgument`
        for a malformed identifier (never quoting it), `PermissionDenied`/`Overloaded`/
        `Unavailable` as the service answers."""
        return self.pseudonyms([(id_type, id_number)])[0]

    def pseudonyms(self, identifiers: Sequence[tuple[str, str]]) -> list[str]:
        """Pseudonyms of several identifiers, asking the service only for uncached ones."""
        keys = [(id_type, normalise(id_type, number)) for id_type, number in identifiers]
        found: dict[tuple[str, str], str] = {}
        if self._cache is not None:
            for key in keys:
                cached = self._cache.get(*key)
                if cached is not None:
                    found[key] = cached
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        for start in range(0, len(missing), BATCH):
            batch = missing[start : start + BATCH]
            pending = [blind_identifier(id_type, value) for id_type, value in batch]
            answers = self._evaluate([p.element for p in pending])
            self.evaluations += len(batch)
            for key, waiting, answer in zip(batch, pending, answers, strict=True):
                found[key] = waiting.finish(answer)
                if self._cache is not None:
                    self._cache.put(*key, found[key])
        return [found[key] for key in keys]


class EvaluatesPseudonyms(Protocol):
    """What a client needs of a network (`AllianceNetwork.evaluate_pseudonyms`)."""

    def evaluate_pseudonyms(self, org: str, user: str, elements: list[bytes]) -> list[bytes]: ...


def pseudonym_client(
    network: EvaluatesPseudonyms, org: str, user: str, cache: ClinicalStore | None = None
) -> PseudonymClient:
    """A client for `user` of `org` on `network`, caching in the hospital's store `cache`."""

    def evaluate(elements: list[bytes]) -> list[bytes]:
        return network.evaluate_pseudonyms(org, user, elements)

    return PseudonymClient(evaluate, PseudonymCache(cache) if cache is not None else None)


def evaluate_over_grpc(
    layout: NetworkLayout, org: str, user: str, elements: list[bytes]
) -> list[bytes]:
    """Ask the pseudonym regulator's peer (TLS, its organisation's TLS CA) to evaluate blinded
    elements, the request signed by `user` of `org`."""
    regulator = layout.config.pseudonym_regulator()
    if regulator is None:
        raise Unavailable("this network has no regulator to run the pseudonym service")
    endpoint, tls_ca, server_name = own_peer(layout, regulator.name)
    request = evaluate_request(user_signer(layout, org, user), elements, dt.datetime.now(dt.UTC))
    with grpc.secure_channel(
        endpoint,
        grpc.ssl_channel_credentials(tls_ca),
        options=[("grpc.ssl_target_name_override", server_name)],
    ) as channel:
        call = channel.unary_unary(
            f"/{SERVICE}/Evaluate", request_serializer=None, response_deserializer=None
        )
        try:
            answer: bytes = call(request, timeout=30)
        except grpc.RpcError as exc:
            raise gateway_error(exc) from None
    return evaluated_elements(answer, len(elements))
