"""One simulation run's parameters, and the command line that replays it exactly."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

BEHAVIOURS = (
    "equivocate",
    "silent",
    "bad-signature",
    "replay",
    "invalid-value",
    "amnesia",
    "forged-status",
    "outsider-status",
    "swapped-body",
    "split",
)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that determines a run besides the code: same config, same run."""

    seed: int
    n: int = 4
    byzantine: int = 0
    behaviour: str = "equivocate"
    heights: int = 8  # every correct node must decide this many blocks
    drop: float = 0.0  # probability a message is lost (before GST)
    duplicate: float = 0.0  # probability a message is delivered twice
    delay_max_ticks: int = 10  # one-way delay is uniform in 1..delay_max_ticks
    partitions: bool = False  # random splits of the network that heal, before GST
    crashes: bool = False  # crash-restarts, also in the middle of a Ready, before GST
    gst_ticks: int = 0  # global stabilisation: faults stop here (except Byzantine nodes)
    liveness_ticks: int = 20_000  # after GST every correct node reaches `heights` within this
    reconfigure: bool = (
        False  # config blocks vote a spare node in (height 3), a correct one out (6)
    )

    def __post_init__(self) -> None:
        assert self.n >= 1
        assert self.heights >= 1
        assert 0 <= self.byzantine <= self.n
        assert self.behaviour in BEHAVIOURS, f"behaviour must be one of {BEHAVIOURS}"

    @classmethod
    def swarm(cls, seed: int, n: int, heights: int = 8) -> SimConfig:
        """Swarm testing: the seed also picks which fault families are on (design §5.2)."""
        rng = random.Random(f"{seed}:swarm")
        faulty = rng.random() < 0.8
        f = (n - 1) // 3
        return cls(
            seed=seed,
            n=n,
            byzantine=rng.randint(0, f),
            behaviour=rng.choice(BEHAVIOURS[:-1]),  # "split" needs f+1 nodes: a checker test
            heights=heights,
            drop=rng.choice((0.0, 0.05, 0.2)) if faulty else 0.0,
            duplicate=rng.choice((0.0, 0.1)) if faulty else 0.0,
            delay_max_ticks=rng.choice((5, 10, 40)),
            partitions=faulty and rng.random() < 0.5,
            crashes=faulty and rng.random() < 0.5,
            gst_ticks=rng.choice((0, 1000, 3000)) if faulty else 0,
            reconfigure=rng.random() < 0.3,  # drawn last: the other choices stay as they were
        )

    def replay_command(self) -> str:
        flags = [f"--seed {self.seed}"]
        for name, value in asdict(self).items():
            if name == "seed":
                continue
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                flags.append(flag if value else "")
            else:
                flags.append(f"{flag} {value}")
        if self.byzantine > (self.n - 1) // 3:
            flags.append("--beyond-f")
        return "python -m tests.simulation " + " ".join(f for f in flags if f)
