"""Byzantine nodes: an honest state machine whose outgoing messages an adversary rewrites.

The adversary signs with its own key only (it cannot forge others: hosts verify against the key
table). Behaviours (consensus-design §5.3):
- equivocate: its proposals go in two valid versions to two halves; its votes conflict per half;
- silent: withholds everything, also block sync;
- bad-signature: sends only corrupted signatures and votes forged in other validators' names;
- replay: also re-sends old messages (earlier heights and rounds, others' votes) and its votes
  signed for another channel;
- invalid-value: proposes values that valid(v) rejects;
- amnesia: forgets locks: proposes a fresh value every round and votes for each round's proposal;
- forged-status: with each STATUS, STATUS messages far ahead in round (issue 11, item 7):
  unsigned in its own name, in every other validator's name, and signed in its own;
- outsider-status: STATUS messages far ahead from a non-consenter, over its own link and over
  the Byzantine node's;
- swapped-body: DECISIONs with a genuine certificate beside another body (issue 11, item 8),
  instead of its honest relays and with each STATUS;
- split: colluding nodes show one value to half of the correct nodes and another to the rest;
  with f+1 of them agreement must break, which is what the checker test relies on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from medalliance.consensus.messages import (
    Decision,
    Kind,
    Message,
    Proposal,
    Status,
    Value,
    Vote,
)
from tests.simulation.fakes import CHANNEL, OUTSIDER, FakeSigner, make_value, with_config
from tests.simulation.host import Host

if TYPE_CHECKING:
    from tests.simulation.simulator import Simulation

_M = TypeVar("_M", Proposal, Vote, Status)

ARCHIVE_MAX = 200
ROUND_INFLATION = 1000  # how far ahead forged STATUS messages claim to be


class ByzantineHost(Host):
    def __init__(self, sim: Simulation, node_id: str, behaviour: str) -> None:
        super().__init__(sim, node_id)
        self.behaviour = behaviour
        self._archive: list[Message] = []
        self._proposed: dict[tuple[int, int], bytes] = {}  # (h, r) -> first proposal's value id

    def propose_value(self, height: int, round: int) -> Value:
        if self.behaviour == "invalid-value":
            return make_value(b"invalid-%d-%s" % (height, self.node_id.encode()))
        return super().propose_value(height, round)

    def on_verified(self, message: Message) -> None:
        if isinstance(message, Proposal):
            self._proposed.setdefault((message.height, message.round), message.value.value_id)
        if len(self._archive) < ARCHIVE_MAX:
            self._archive.append(message)
        super().on_verified(message)

    @property
    def serves_sync(self) -> bool:
        return self.behaviour != "silent"

    def send(self, message: Message, to: str | None) -> None:
        targets = self.peers() if to is None else (to,)
        rng = self.sim.rng("adversary")
        match self.behaviour:
            case "silent":
                return
            case "equivocate" if isinstance(message, Proposal | Vote) and self._is_mine(message):
                half = len(targets) // 2
                self._to(targets[:half], message)
                self._to(targets[half:], self._twin(message))
            case "bad-signature":
                self._to(targets, _corrupt(message))
                if isinstance(message, Vote):
                    victim = rng.choice(self.sim.validators.ids)
                    forged = self._sign(replace(message, voter=victim))
                    self._to(targets, forged)
            case "replay":
                self._to(targets, message)
                if self._archive:
                    self._to((rng.choice(targets),), rng.choice(self._archive))
                if isinstance(message, Vote) and self._is_mine(message):
                    self._to(targets, self._sign(replace(message, channel="another-channel")))
            case "amnesia" if isinstance(message, Proposal | Vote) and self._is_mine(message):
                self._to(targets, self._forget_lock(message))
            case "split" if isinstance(message, Proposal | Vote) and self._is_mine(message):
                self._split(message, targets)
            case "forged-status" if isinstance(message, Status):
                self._to(targets, message)
                ahead = replace(message, round=message.round + ROUND_INFLATION, signature=b"")
                for name in self.sim.validators.ids:
                    self._to(targets, replace(ahead, sender=name))
                self._to(targets, self._sign(ahead))  # genuine, but one sender is not f+1
            case "outsider-status" if isinstance(message, Status):
                self._to(targets, message)
                outsider = FakeSigner.for_node(OUTSIDER)
                ahead = replace(message, sender=OUTSIDER, round=message.round + ROUND_INFLATION)
                ahead = replace(ahead, signature=outsider.sign(ahead.signed_bytes()))
                self._to(targets, ahead)
                for peer in targets:
                    self.sim.transmit(OUTSIDER, peer, ahead)
            case "swapped-body" if isinstance(message, Decision):
                self._to(targets, replace(message, value=_swapped(message.value)))
            case "swapped-body" if isinstance(message, Status):
                self._to(targets, message)
                ledger = self.storage.ledger_durable
                if ledger:
                    last = ledger[-1]
                    forged = Decision(
                        CHANNEL, last.height, _swapped(last.value), last.certificate, self.node_id
                    )
                    self._to(targets, forged)
            case _:
                self._to(targets, message)

    # --- helpers --------------------------------------------------------------------------------

    def _to(self, targets: tuple[str, ...], message: Message) -> None:
        for peer in targets:
            self.sim.transmit(self.node_id, peer, message)

    def _is_mine(self, message: Proposal | Vote) -> bool:
        return message.signer == self.node_id

    def _sign(self, message: _M) -> _M:
        return replace(message, signature=self.signer.sign(message.signed_bytes()))

    def _twin(self, message: Proposal | Vote) -> Proposal | Vote:
        """A conflicting message for the same (h, r, kind)."""
        twin_body = b"block-%d-%s-twin" % (message.height, self.node_id.encode())
        twin_value = make_value(with_config(twin_body, self.sim.plan.get(message.height)))
        if isinstance(message, Proposal):
            if message.valid_round >= 0:
                return message  # a re-proposal must carry a POL; no twin has one
            return self._sign(replace(message, value=twin_value))
        alternative = twin_value.value_id if message.value_id is None else None
        return self._sign(replace(message, value_id=alternative))

    def _forget_lock(self, message: Proposal | Vote) -> Proposal | Vote:
        h, r = message.height, message.round
        if isinstance(message, Proposal):
            body = b"block-%d-%s-round-%d" % (h, self.node_id.encode(), r)
            fresh = make_value(with_config(body, self.sim.plan.get(h)))
            return self._sign(replace(message, value=fresh, valid_round=-1, pol=()))
        proposed = self._proposed.get((h, r))
        return message if proposed is None else self._sign(replace(message, value_id=proposed))

    def _split(self, message: Proposal | Vote, targets: tuple[str, ...]) -> None:
        """Show value A to the lower half of the correct nodes and the coalition, B to the rest."""
        correct = self.sim.correct
        group_b = correct[len(correct) // 2 :]
        group_a = tuple(peer for peer in targets if peer not in group_b)
        group_b = tuple(peer for peer in targets if peer in group_b)
        h, r = message.height, message.round
        if self.sim.validators_at(h).proposer(h, r) not in self.sim.byzantine:
            self._to(targets, message)
            return
        config = self.sim.plan.get(h)
        values = tuple(
            make_value(with_config(b"block-%d-split-%s" % (h, side), config))
            for side in (b"a", b"b")
        )
        for group, value in zip((group_a, group_b), values, strict=True):
            if isinstance(message, Proposal):
                self._to(group, self._sign(replace(message, value=value, valid_round=-1, pol=())))
            elif message.kind is Kind.PREVOTE:  # the coalition's precommits go with its prevotes
                for kind in (Kind.PREVOTE, Kind.PRECOMMIT):
                    vote = replace(message, kind=kind, value_id=value.value_id)
                    self._to(group, self._sign(vote))


def _swapped(value: Value) -> Value:
    """The same id (so the same certificate) beside a body that is not the one decided."""
    return Value(value.value_id, value.body + b"-swapped")


def _corrupt(message: Message) -> Message:
    if isinstance(message, Proposal | Vote):
        flipped = bytes([message.signature[0] ^ 1]) + message.signature[1:]
        return replace(message, signature=flipped)
    return message
