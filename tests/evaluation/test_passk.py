from itertools import combinations

import numpy as np
import pytest

from rlx.evaluation.passk import pass_at_k, pass_at_k_array, powers_of_two


def brute_force(n: int, c: int, k: int) -> float:
    """Fraction of k-subsets of n samples (c correct) that contain a correct one."""
    samples = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_matches_enumeration_over_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12)


def test_hand_values():
    # n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5, abs=1e-15)
    # pass@1 is the fraction correct: 3/10
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3, abs=1e-15)
    assert pass_at_k(10, 0, 10) == 0.0 and pass_at_k(10, 1, 10) == 1.0


def test_large_n_is_stable():
    # n=1024, c=1: pass@k = k/n exactly
    assert pass_at_k(1024, 1, 256) == pytest.approx(256 / 1024, abs=1e-12)


def test_array_and_bad_input():
    out = pass_at_k_array(4, np.array([0, 1, 4]), [1, 2])
    assert np.allclose(out, [[0, 0.25, 1], [0, 0.5, 1]], atol=1e-12)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    assert powers_of_two(8) == [1, 2, 4, 8] and powers_of_two(6) == [1, 2, 4, 6]
