"""Fixtures of the test suite (the helpers that tests share are in tests/support/)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)
