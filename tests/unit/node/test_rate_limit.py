"""Token buckets: a burst, then the refill rate; refusals take nothing; keys are independent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.node.rate_limit import Refused, TokenBuckets


def test_a_full_bucket_gives_its_burst_then_refuses() -> None:
    buckets = TokenBuckets(burst=3, per_minute=60)
    assert [buckets.take("A", 1, 0.0) for _ in range(3)] == [None, None, None]
    assert buckets.take("A", 1, 0.0) == Refused(1, 1.0)


def test_tokens_come_back_at_the_refill_rate_up_to_the_burst() -> None:
    buckets = TokenBuckets(burst=2, per_minute=60)  # one token a second
    assert buckets.take("A", 2, 0.0) is None
    assert buckets.take("A", 1, 0.5) == Refused(1, 0.5)
    assert buckets.take("A", 1, 1.0) is None
    assert buckets.available("A", 100.0) == 2.0  # never more than the burst


def test_a_refused_request_takes_nothing() -> None:
    buckets = TokenBuckets(burst=5, per_minute=60)
    assert buckets.take("A", 4, 0.0) is None
    assert buckets.take("A", 3, 0.0) == Refused(3, 2.0)
    assert buckets.take("A", 1, 0.0) is None


def test_a_request_larger_than_the_bucket_can_never_pass() -> None:
    assert TokenBuckets(burst=5, per_minute=60).take("A", 6, 0.0) == Refused(6, None)


def test_organisations_have_their_own_buckets() -> None:
    buckets = TokenBuckets(burst=1, per_minute=1)
    assert buckets.take("A", 1, 0.0) is None
    assert buckets.take("B", 1, 0.0) is None
    assert isinstance(buckets.take("A", 1, 0.0), Refused)


def test_a_clock_stepping_back_refills_nothing() -> None:
    buckets = TokenBuckets(burst=1, per_minute=60)
    assert buckets.take("A", 1, 10.0) is None
    assert isinstance(buckets.take("A", 1, 5.0), Refused)


@pytest.mark.parametrize("burst", [1, 7])
@given(st.lists(st.tuples(st.integers(1, 3), st.floats(0, 5)), max_size=40))
def test_no_more_than_burst_plus_refill_is_ever_granted(
    burst: int, requests: list[tuple[int, float]]
) -> None:
    buckets, now, granted = TokenBuckets(burst=burst, per_minute=60), 0.0, 0
    for count, gap in requests:
        now += gap
        if buckets.take("A", count, now) is None:
            granted += count
    assert granted <= burst + now * 1.0 + 1e-9
