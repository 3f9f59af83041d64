"""The validator set of one height: who votes, how many make a quorum, who proposes.

Pure arithmetic over an ordered tuple of node ids (consensus-design §2.1). The order is the
config's order and must be the same on every node: it decides the proposer rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

from medalliance.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """V(h): `n` ordered, distinct validator ids; tolerates `f` Byzantine, decides with `quorum`."""

    ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.ids:
            raise InvalidArgument("a validator set needs at least one validator")
        if len(set(self.ids)) != len(self.ids):
            raise InvalidArgument(f"validator ids must be distinct, got {list(self.ids)}")

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def quorum(self) -> int:
        """q = ⌈(n+f+1)/2⌉: two quorums share a correct node, and n − f ≥ q correct can decide."""
        return (self.n + self.f + 2) // 2

    @property
    def weak(self) -> int:
        """f+1: enough distinct senders that at least one of them is correct."""
        return self.f + 1

    def proposer(self, height: int, round: int) -> str:
        return self.ids[(height + round) % self.n]

    def contains(self, node_id: str) -> bool:
        return node_id in self.ids

    def index(self, node_id: str) -> int:
        return self.ids.index(node_id)
