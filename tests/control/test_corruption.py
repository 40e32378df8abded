"""Corruption hits exactly the requested fraction of rows, and only the requested element."""

import numpy as np
import pytest
import torch

from rlx.control.corruption import corrupt

N = 1000


def _data(discrete: bool):
    rng = np.random.default_rng(0)
    return {
        "observations": rng.normal(size=(N, 3)).astype(np.float32),
        "actions": rng.integers(0, 3, size=N) if discrete else rng.uniform(-1, 1, size=(N, 2)).astype(np.float32),
        "rewards": rng.normal(size=N).astype(np.float32) + 5.0,
        "next_observations": rng.normal(size=(N, 3)).astype(np.float32),
        "terminals": np.zeros(N, bool),
        "timeouts": np.zeros(N, bool),
    }


KEY = {"states": "observations", "actions": "actions", "rewards": "rewards", "dynamics": "next_observations"}


def _changed(a, b):
    return np.nonzero((a != b).reshape(len(a), -1).any(1))[0]


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("kind", ["states", "actions", "rewards", "dynamics"])
@pytest.mark.parametrize("mode", ["random", "adversarial"])
def test_exact_fraction_and_only_that_element(kind, mode, discrete):
    data = _data(discrete)
    w = torch.tensor([1.0, -2.0, 0.5])
    # a linear critic so adversarial attacks have a gradient: Q(s, a) = s.w + a-term
    q_fn = (lambda s: torch.stack([s @ w, s @ w + 1.0, s @ w - 1.0], 1)) if discrete else \
        (lambda s, a: s @ w + a.sum(-1))
    out, rows = corrupt(data, kind, mode, fraction=0.3, scale=1.0, seed=1, q_fn=q_fn,
                        num_actions=3 if discrete else 0)
    assert len(rows) == 300 and len(np.unique(rows)) == 300  # round(0.3 * 1000) distinct rows
    changed = _changed(out[KEY[kind]], data[KEY[kind]])
    if kind == "actions" and discrete and mode == "adversarial":
        # argmin_a Q = action 2 everywhere; rows that already held action 2 keep it
        assert set(changed) <= set(rows) and (out["actions"][rows] == 2).all()
    else:
        np.testing.assert_array_equal(changed, rows)  # exactly the chosen rows changed
    for key in KEY.values():  # nothing else was touched
        if key != KEY[kind]:
            np.testing.assert_array_equal(out[key], data[key])
    np.testing.assert_array_equal(data["rewards"], _data(discrete)["rewards"])  # input not mutated


def test_random_values_and_adversarial_direction():
    data = _data(False)
    out, rows = corrupt(data, "rewards", "random", 0.5, 0.1, seed=0)
    assert np.abs(out["rewards"][rows]).max() <= 3.0  # U[-30*0.1, 30*0.1]
    out, rows = corrupt(data, "rewards", "adversarial", 0.5, 0.1, seed=0)
    np.testing.assert_allclose(out["rewards"][rows], -0.1 * data["rewards"][rows], rtol=1e-6)
    out, rows = corrupt(data, "states", "random", 1.0, 0.5, seed=0)
    std = data["observations"].std(0)
    assert (np.abs(out["observations"] - data["observations"]) <= 0.5 * std + 1e-6).all()
    # adversarial states lower Q(s, a) = s.w + sum(a): each coordinate moves by the full radius against w
    w = torch.tensor([1.0, -2.0, 0.5])
    out, rows = corrupt(data, "states", "adversarial", 1.0, 0.5, seed=0, q_fn=lambda s, a: s @ w + a.sum(-1))
    delta = out["observations"] - data["observations"]
    np.testing.assert_allclose(delta, -np.sign(w.numpy()) * 0.5 * std * np.ones((N, 1)), rtol=1e-4, atol=1e-5)


def test_bad_fraction():
    with pytest.raises(ValueError, match="fraction"):
        corrupt(_data(True), "rewards", "random", 1.5, 1.0)
