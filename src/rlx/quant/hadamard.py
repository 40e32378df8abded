"""Orthonormal Walsh-Hadamard transforms (QuEST's "Hadamard normalization", RSQ's rotation).

`hadamard(x)` applies H_n / sqrt(n) along the last dimension, where n is the largest power of two
that divides the dimension d; a d that is not a power of two is handled block-diagonally
(d / n blocks of size n). The transform is orthogonal and symmetric: hadamard(hadamard(x)) == x.
Cost O(d log n) per row with the fast butterfly; no matrix is materialised.
"""

from __future__ import annotations

import torch

__all__ = ["hadamard", "hadamard_block", "hadamard_matrix"]


def hadamard_block(d: int) -> int:
    """Largest power of two dividing d (the block size of the block-diagonal transform)."""
    if d < 1:
        raise ValueError(f"dimension must be >= 1, got {d}")
    return d & (-d)


def hadamard(x: torch.Tensor) -> torch.Tensor:
    """x @ H where H = blockdiag(H_n / sqrt(n)) on the last dim (differentiable, orthonormal)."""
    d = x.shape[-1]
    n = hadamard_block(d)
    shape = x.shape
    y = x.reshape(-1, d // n, n)
    h = 1
    while h < n:
        y = y.reshape(-1, d // n, n // (2 * h), 2, h)
        a, b = y[..., 0, :], y[..., 1, :]
        y = torch.stack((a + b, a - b), dim=-2)
        h *= 2
    return y.reshape(shape) / (n ** 0.5)


def hadamard_matrix(d: int, dtype=torch.float32) -> torch.Tensor:
    """The dense [d, d] matrix of `hadamard` (for tests and small layers)."""
    return hadamard(torch.eye(d, dtype=dtype))
