"""The discrete-event loop: one heap keyed by (virtual time, sequence number), one thread.

All non-determinism comes from `random.Random` instances derived from the seed, one per
subsystem (network, faults, storage, workload, adversary), so turning one fault knob does not
reshuffle the others (consensus-design §5.1). A failure raises `SimulationFailure` naming the
seed, the config and the command that replays it.

With `reconfigure`, the plan adds config blocks: block 3 votes in a spare node (which followed
the chain until then) and block 6 votes out a correct validator (which then follows). The
replicas reconfigure themselves; the checker verifies each certificate against the set in force.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from medalliance.consensus.hard_state import ConsensusHalted
from medalliance.consensus.ready import Evidence
from medalliance.consensus.replica import Event as Input
from medalliance.consensus.validators import ValidatorSet
from tests.simulation.byzantine import ByzantineHost
from tests.simulation.checker import Checker, InvariantViolated
from tests.simulation.config import SimConfig
from tests.simulation.fakes import KeyTable
from tests.simulation.host import Host, Payload

CRASH_IN_READY_PROBABILITY = 0.01


class SimulationFailure(AssertionError):
    def __init__(self, config: SimConfig, now: int, cause: BaseException) -> None:
        super().__init__(
            f"simulation failed at tick {now}: {type(cause).__name__}: {cause}\n"
            f"  seed: {config.seed}\n  config: {config}\n"
            f"  replay: {config.replay_command()}"
        )
        self.config = config
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Outcome:
    config: SimConfig
    ticks: int
    events: int
    heights: dict[str, int]  # durable ledger height per node
    rounds_max: int  # the highest round any correct node reached
    byzantine: tuple[str, ...]
    culprits: tuple[str, ...]  # validators blamed by equivocation evidence
    rejected: int  # messages hosts refused before the core (bad signature, forged, ...)
    retired: tuple[str, ...]  # nodes whose replica is not a validator at the end
    decided: dict[int, bytes] = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Deliver:
    to: str
    sender: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class _Input:
    node: str
    incarnation: int
    event: Input


@dataclass(frozen=True, slots=True)
class _Crash:
    node: str


@dataclass(frozen=True, slots=True)
class _Restart:
    node: str


@dataclass(frozen=True, slots=True)
class _Follow:
    node: str
    incarnation: int


@dataclass(frozen=True, slots=True)
class _Partition:
    groups: tuple[tuple[str, ...], ...] | None  # None: healed


_Event = _Deliver | _Input | _Crash | _Restart | _Partition | _Follow

FOLLOW_TICKS = 30  # a retired node asks for the blocks it lacks this often
VOTED_IN_AT, VOTED_OUT_AT = 3, 6  # the heights of the plan's config blocks


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._rngs: dict[str, random.Random] = {}
        ids = tuple(f"node{i}" for i in range(config.n))
        self.validators = ValidatorSet(ids)  # the first set; `validators_at` for later ones
        chosen = self.rng("adversary").sample(ids, config.byzantine)
        self.plan: dict[int, tuple[str, ...]] = {}  # config block height -> validators it names
        if config.reconfigure:
            leaving = self.rng("adversary").choice([i for i in ids if i not in chosen])
            ids = (*ids, f"node{config.n}")  # the spare: a correct node, following at first
            self.plan = {VOTED_IN_AT: ids, VOTED_OUT_AT: tuple(i for i in ids if i != leaving)}
        self.ids = ids
        self.byzantine = tuple(i for i in ids if i in chosen)
        self.correct = tuple(i for i in ids if i not in chosen)
        self.keys = KeyTable(ids)
        self.checker = Checker(self.validators_at, self.correct, self.keys)
        self.hosts: dict[str, Host] = {
            i: ByzantineHost(self, i, config.behaviour) if i in chosen else Host(self, i)
            for i in ids
        }
        self.evidence: list[tuple[str, Evidence]] = []
        self.rejected = 0
        self.now = 0
        self._events = 0
        self._seq = 0
        self._heap: list[tuple[int, int, _Event]] = []
        self._group_of: dict[str, int] | None = None
        self._rounds_max = 0

    def rng(self, subsystem: str) -> random.Random:
        if subsystem not in self._rngs:  # str seeds hash with SHA-512: no PYTHONHASHSEED effect
            self._rngs[subsystem] = random.Random(f"{self.config.seed}:{subsystem}")
        return self._rngs[subsystem]

    # --- services for hosts ---------------------------------------------------------------------

    def transmit(self, sender: str, to: str, payload: Payload) -> None:
        """The network: delay, loss, duplication and partitions until GST, then only delay."""
        rng, config = self.rng("network"), self.config
        unstable = self.now < config.gst_ticks
        group_of = self._group_of
        if unstable and group_of is not None and group_of.get(sender) != group_of.get(to):
            return
        if unstable and rng.random() < config.drop:
            return
        copies = 2 if rng.random() < config.duplicate else 1
        for _ in range(copies):
            self._schedule(rng.randint(1, config.delay_max_ticks), _Deliver(to, sender, payload))

    def input_later(self, host: Host, ticks: int, event: Input) -> None:
        self._schedule(ticks, _Input(host.node_id, host.incarnation, event))

    def follow_later(self, host: Host) -> None:
        self._schedule(FOLLOW_TICKS, _Follow(host.node_id, host.incarnation))

    def validators_at(self, height: int) -> ValidatorSet:
        """The set in force at `height`: named by the latest config block below it."""
        below = [h for h in self.plan if h < height]
        return ValidatorSet(self.plan[max(below)]) if below else self.validators

    def crash_stage(self, node: str, stage_count: int) -> int | None:
        """Maybe crash `node` in the middle of executing a Ready: before stage k."""
        if not self._may_crash(node):
            return None
        rng = self.rng("faults")
        if rng.random() >= CRASH_IN_READY_PROBABILITY:
            return None
        return rng.randrange(stage_count)

    def crash(self, node: str) -> None:
        host = self.hosts[node]
        host.crash()
        durable = host.storage.hard_state_durable
        self.checker.on_crash(node, durable, host.durable_height)
        self._schedule(self.rng("faults").randint(20, 400), _Restart(node))

    # --- the loop -------------------------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            return self._run()
        except (InvariantViolated, ConsensusHalted, AssertionError) as exc:
            raise SimulationFailure(self.config, self.now, exc) from exc

    def _run(self) -> Outcome:
        config = self.config
        self._plan_faults()
        for node in self.ids:
            self.hosts[node].boot()
        deadline = config.gst_ticks + config.liveness_ticks
        while not self._done():
            if not self._heap or self._heap[0][0] > deadline:
                heights = {n: self.hosts[n].durable_height for n in self.correct}
                self.checker.fail(
                    f"liveness: correct nodes did not all reach height {config.heights} "
                    f"by tick {deadline} (GST {config.gst_ticks}); durable heights {heights}"
                )
            self.now, _, event = heapq.heappop(self._heap)
            self._events += 1
            self._dispatch(event)
        return Outcome(
            config=config,
            ticks=self.now,
            events=self._events,
            heights={n: h.durable_height for n, h in self.hosts.items()},
            rounds_max=self._rounds_max,
            byzantine=self.byzantine,
            culprits=tuple(sorted({ev.culprit for _, ev in self.evidence})),
            rejected=self.rejected,
            retired=tuple(n for n, h in self.hosts.items() if h.replica.retired),
            decided=dict(self.checker.decided),
        )

    def _done(self) -> bool:
        return all(self.hosts[n].durable_height >= self.config.heights for n in self.correct)

    def _dispatch(self, event: _Event) -> None:
        match event:
            case _Deliver(to, sender, payload):
                self.hosts[to].receive(payload, sender)
            case _Input(node, incarnation, input_event):
                host = self.hosts[node]
                if host.up and host.incarnation == incarnation:
                    host.feed(input_event)
                    if node in self.correct:
                        self._rounds_max = max(self._rounds_max, host.machine.round)
            case _Crash(node):
                if self.hosts[node].up and self._may_crash(node):
                    self.crash(node)
            case _Restart(node):
                if not self.hosts[node].up:
                    self.hosts[node].boot()
            case _Follow(node, incarnation):
                host = self.hosts[node]
                if host.up and host.incarnation == incarnation:
                    host.follow()
            case _Partition(groups):
                self._group_of = None
                if groups is not None and self.now < self.config.gst_ticks:
                    self._group_of = {n: i for i, group in enumerate(groups) for n in group}

    def _may_crash(self, node: str) -> bool:
        return self.config.crashes and self.now < self.config.gst_ticks and node in self.correct

    def _plan_faults(self) -> None:
        """Crash and partition times are drawn up front, from their own generator."""
        config, rng = self.config, self.rng("faults")
        ids = self.ids
        if config.crashes:
            at = rng.randint(50, 400)
            while at < config.gst_ticks:
                self._schedule(at, _Crash(rng.choice(self.correct)))
                at += rng.randint(100, 800)
        if config.partitions and config.n > 1:
            at = rng.randint(0, 200)
            while at < config.gst_ticks:
                shuffled = list(ids)
                rng.shuffle(shuffled)
                cut = rng.randint(1, config.n - 1)
                split = (tuple(shuffled[:cut]), tuple(shuffled[cut:]))
                self._schedule(at, _Partition(None if rng.random() < 0.3 else split))
                at += rng.randint(100, 600)
            self._schedule(config.gst_ticks, _Partition(None))

    def _schedule(self, delay: int, event: _Event) -> None:
        assert delay >= 0
        self._seq += 1
        heapq.heappush(self._heap, (self.now + delay, self._seq, event))


def simulate(config: SimConfig) -> Outcome:
    """Run one configuration to the target height; raise `SimulationFailure` on any violation."""
    return Simulation(config).run()
