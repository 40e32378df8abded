"""The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

With n samples of which c are correct, pass@k = E[1 - C(n-c, k) / C(n, k)]: the chance that at
least one of k samples drawn without replacement from the n is correct. Computed as the stable
product 1 - prod_{i=n-c+1}^{n} (1 - k/i), never through large binomials.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pass_at_k", "pass_at_k_array", "powers_of_two"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem: n samples, c correct, 1 <= k <= n."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def pass_at_k_array(n: np.ndarray | int, c: np.ndarray, ks: list[int] | np.ndarray) -> np.ndarray:
    """pass@k for many problems at once: returns [len(ks), problems] (mean over axis 1 for the score)."""
    c = np.asarray(c, dtype=np.int64)
    n_arr = np.broadcast_to(np.asarray(n, dtype=np.int64), c.shape)
    out = np.empty((len(ks), c.size), dtype=np.float64)
    for j, k in enumerate(ks):
        out[j] = [pass_at_k(int(ni), int(ci), int(k)) for ni, ci in zip(n_arr.ravel(), c.ravel())]
    return out


def powers_of_two(n: int) -> list[int]:
    """k = 1, 2, 4, ... up to n (and n itself if it is not a power of two); [] when n < 1."""
    if n < 1:
        return []
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks[-1] != n:
        ks.append(n)
    return ks
