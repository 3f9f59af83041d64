"""The cycle collector is held off during a commit and always comes back as it was."""

from __future__ import annotations

import gc

import pytest

from medalliance.node.collector import collector_paused


def test_the_collector_is_off_during_and_back_after_even_when_the_commit_raises() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError, match="refused"), collector_paused():
        raise ValueError("block refused")
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_commits_leave_the_collector_on() -> None:
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert gc.isenabled()
