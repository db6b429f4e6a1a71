"""Fixtures for the validator-core unit tests."""

from __future__ import annotations

import pytest

from tests.unit.validator_support import funded_engine
from validator.engine import Engine


@pytest.fixture
def engine() -> Engine:
    """An engine with PUT, CALL and ETH_PUT listed and alice, bob, carol funded."""
    return funded_engine()
