"""Retransmission and catch-up bookkeeping (consensus-design §2.10, §2.11): our substitute for
the gossip layer the paper assumes.

Pure. Keeps the last decision (relayed to peers one height behind), a bounded buffer of messages
for the next height, and a once-per-resend-period limit on what each peer is sent or asked, so a
chatty or Byzantine peer cannot make the node flood the network.
"""

from __future__ import annotations

from medalliance.consensus.messages import Decision, Message, Proposal, Vote
from medalliance.consensus.ready import Commit, NeedSync, ReadyBuilder

FUTURE_MESSAGES_PER_SENDER = 8


class CatchUp:
    def __init__(self, channel: str, me: str, last_decision: Commit | None) -> None:
        self._channel = channel
        self._me = me
        self.last_decision = last_decision
        self._future: dict[str, list[Message]] = {}
        self._answered: set[tuple[str, str]] = set()  # (what, peer) in this resend period

    def new_period(self) -> None:
        self._answered.clear()

    def on_ahead(self, message: Message, sender: str, height: int, out: ReadyBuilder) -> None:
        """A message above our height: keep a little of H+1 for after our decision (peers that
        decided H answer us with DECISION(H)); anything further ahead means block sync."""
        if message.height == height + 1:
            pending = self._future.setdefault(sender, [])
            if len(pending) < FUTURE_MESSAGES_PER_SENDER:
                pending.append(message)
        else:
            self.ask_sync(sender, height, message.height - 1, out)

    def take_buffered(self, height: int) -> list[Message]:
        buffered, self._future = self._future, {}
        return [m for messages in buffered.values() for m in messages if m.height == height]

    def answer_laggard(self, peer: str, peer_height: int, out: ReadyBuilder) -> None:
        """A peer one height behind gets our last decision with its certificate (rule D)."""
        decided = self.last_decision
        if decided is None or peer_height != decided.height or self._once(("decision", peer)):
            return
        relay = Decision(
            self._channel, decided.height, decided.value, decided.certificate, self._me
        )
        out.send(relay, to=peer)

    def help_lagging_round(
        self,
        peer: str,
        proposal: Proposal | None,
        votes: tuple[Vote, ...],
        out: ReadyBuilder,
    ) -> None:
        """A peer in an earlier round of our height gets that round's proposal and votes, and the
        q precommits with which we left our previous round. The first correct node to reach a
        round got there by timeout with such a proof (rule K needs a correct node already there),
        so the proof lets the others skip up (rule K) and time out of that round too (T2)."""
        if self._once(("round", peer)):
            return
        if proposal is not None:
            out.send(proposal, to=peer)
        for vote in votes:
            out.send(vote, to=peer)

    def ask_sync(self, peer: str, height: int, to_height: int, out: ReadyBuilder) -> None:
        if not self._once(("sync", peer)):
            out.request(NeedSync(height, to_height, peer))

    def _once(self, key: tuple[str, str]) -> bool:
        """True if `key` was already served in this period; marks it served."""
        if key in self._answered:
            return True
        self._answered.add(key)
        return False
