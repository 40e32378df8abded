"""Fixtures: tiny random models (see rollout_helpers.py)."""

import pytest

from rollout_helpers import tiny_model


@pytest.fixture(scope="module")
def plain():
    return tiny_model()


@pytest.fixture(scope="module")
def eosy():
    # bias 3.0: EOS gets e^3 / (e^3 + ~99) ~ 17% per step, so rows end at varied lengths
    return tiny_model(eos_bias=3.0, seed=1)
