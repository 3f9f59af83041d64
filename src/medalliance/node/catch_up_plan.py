"""When an ordering node pulls blocks from the others: the pure decisions of catch-up on demand.

A consenter decides blocks itself; it pulls only while behind. The replica says so with
`NeedSync` (a signed message from two or more heights ahead; one height behind is covered by the
DECISION relay). Besides, a node that hears nothing (cut off, then every other node idle) asks
the others once after `idle_s` without a new block. A retired node follows the chain all the
time and needs no plan (node/block_sync.py).

Heights here are store heights: the number of blocks held, i.e. the next block's number.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CatchUpPlan:
    """Start, extend and end one channel's catch-up; one pull at a time.

    `target` is the store height the running pull works towards (None: as far as the others
    have, for the idle check); a request during a pull only raises it.
    """

    idle_s: float
    running: bool = False
    target: int | None = 0
    prefer: str | None = None  # the node that said it is ahead: asked first
    runs: int = 0  # pulls started
    _seen_height: int = field(default=-1, repr=False)
    _seen_at: float = field(default=0.0, repr=False)

    def request(self, height: int, to_height: int, peer: str) -> bool:
        """Blocks up to `to_height` are wanted (from `peer`); True: start a pull now."""
        target = to_height + 1
        if target <= height:
            return False  # decided or pulled meanwhile
        if self.running:
            if self.target is not None and target > self.target:
                self.target = target  # the running pull reads it before each fetch
            return False
        self.target, self.prefer = target, peer
        return self._start()

    def idle_check(self, height: int, now: float) -> bool:
        """Called now and then; True: no block for `idle_s`, ask the others what they have."""
        if height != self._seen_height:
            self._seen_height, self._seen_at = height, now
            return False
        if self.running or now - self._seen_at < self.idle_s:
            return False
        self._seen_at = now  # the next check after another quiet `idle_s`
        self.target, self.prefer = None, None
        return self._start()

    def ended(self) -> None:
        """The pull ended (target reached, or no source had more): the next request starts one."""
        self.running = False

    def _start(self) -> bool:
        self.running = True
        self.runs += 1
        return True
