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


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny matmuls gain nothing from 2 threads and slow down ~1000x when another process holds a core
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
