"""Fixtures of the contract tests: a dict-backed committed state."""

from __future__ import annotations

import pytest
from tests.unit.contracts.fakes import DictState


@pytest.fixture
def state() -> DictState:
    return DictState()
