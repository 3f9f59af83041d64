"""Token buckets per caller: how many evaluations an organisation may ask for, and when.

Each key (an MSP id) has a bucket of `burst` tokens that refills at `per_minute` tokens a
minute; a request for n evaluations takes n tokens or is refused whole, taking nothing. Pure:
time arrives as an argument (seconds on any monotonic clock), no clock or I/O inside.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Refused:
    """Not enough tokens: `retry_after_s` until `count` tokens will be there (None: never,
    the request is larger than the bucket)."""

    count: int
    retry_after_s: float | None


class TokenBuckets:
    """One bucket per key, full at first sight of a key."""

    def __init__(self, *, burst: int, per_minute: float) -> None:
        assert burst >= 1, "a bucket holds at least one token"
        assert per_minute > 0, "a bucket refills"
        self._burst = burst
        self._rate_per_s = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at_s)

    def take(self, key: str, count: int, now_s: float) -> Refused | None:
        """Take `count` tokens from `key`'s bucket at time `now_s`; None when taken, `Refused`
        (and nothing taken) when the bucket holds fewer."""
        assert count >= 1, "a request takes at least one token"
        tokens = self.available(key, now_s)
        if count > tokens:
            wait = None if count > self._burst else (count - tokens) / self._rate_per_s
            return Refused(count, wait)
        self._buckets[key] = (tokens - count, now_s)
        return None

    def available(self, key: str, now_s: float) -> float:
        """The tokens `key` could take at `now_s` (a clock that steps back refills nothing)."""
        tokens, at_s = self._buckets.get(key, (float(self._burst), now_s))
        elapsed = max(0.0, now_s - at_s)
        return min(float(self._burst), tokens + elapsed * self._rate_per_s)
