"""LQ-LoRA: low-rank plus quantized decomposition, ILP bit allocation (paper `lqlora`).

Each weight is split W ~= Q + L1 L2 (Q quantized, L1 L2 rank r in high precision) by alternating

    Q_k = quant(W - L_{k-1}),     L_k = SVD_r(W - deq(Q_k))        (L_0 = 0)

keeping the iterate with the lowest ||W - deq(Q) - L||_F (the sequence is not guaranteed to be
monotone; the paper stops when it rises, here the best iterate is kept). During fine-tuning Q stays
frozen and only L1, L2 train; as a compressor the checkpoint stores deq(Q) + L1 L2.

Bit allocation: with candidate configs c (bit widths) the error e_ic = ||W_i - deq(Q_ic) - L_ic||_F^2
and memory m_ic = numel_i * bits_c + 32 * groups_ic (fp16 scale + zero per group), choose one c per
matrix i minimising sum e_ic subject to sum m_ic <= budget_bits * sum numel_i: a 0/1 integer
linear program solved exactly with `scipy.optimize.milp`.
Departure: the data-aware (Fisher-weighted) variant is not implemented; decomposition is data-free.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rlx.config import ConfigError
from rlx.quant.config import QuantConfig
from rlx.quant.core import IntSpec, QTensor, int_quantize
from rlx.quant.layers import LayerQuant, spec_of

__all__ = ["lq_decompose", "allocate_bits", "quantize_lqlora"]


@torch.no_grad()
def lq_decompose(W: torch.Tensor, rank: int, spec: IntSpec, iters: int
                 ) -> tuple[QTensor, torch.Tensor, torch.Tensor, list[float]]:
    """(Q codes, A [r, in], B [out, r], errors per iteration); returns the best iterate."""
    W = W.detach().float()
    r = min(rank, *W.shape)
    L = torch.zeros_like(W)
    best = None
    errors = []
    for _ in range(iters):
        qt = int_quantize(W - L, spec)
        R = W - qt.dequantize()
        U, S, Vh = torch.linalg.svd(R, full_matrices=False)
        B = U[:, :r] * S[:r]
        A = Vh[:r]
        L = B @ A
        err = float(torch.linalg.matrix_norm(W - qt.dequantize() - L))
        errors.append(err)
        if best is None or err < best[0]:
            best = (err, qt, A.clone(), B.clone())
    return best[1], best[2], best[3], errors


def allocate_bits(errors: np.ndarray, costs: np.ndarray, budget: float) -> np.ndarray:
    """argmin sum_i errors[i, c_i] s.t. sum_i costs[i, c_i] <= budget (one choice per row). Returns c [M].

    Solved as a binary ILP with scipy.optimize.milp; raises ConfigError when no choice fits the budget.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    M, C = errors.shape
    c = errors.reshape(-1).astype(float)
    one_each = np.zeros((M, M * C))
    for i in range(M):
        one_each[i, i * C:(i + 1) * C] = 1
    cons = [LinearConstraint(one_each, 1, 1), LinearConstraint(costs.reshape(1, -1).astype(float), -np.inf, budget)]
    res = milp(c, constraints=cons, integrality=np.ones(M * C), bounds=Bounds(0, 1))
    if res.x is None:
        raise ConfigError(f"config error: lqlora.budget_bits: no bit allocation fits the budget "
                          f"({budget:.0f} bits; smallest possible {costs.min(axis=1).sum():.0f})")
    return np.round(res.x).reshape(M, C).argmax(axis=1)


def _memory_bits(numel: int, qt: QTensor, bits: int) -> float:
    return numel * bits + 32 * qt.scale.numel()


def quantize_lqlora(model: nn.Module, linears: dict[str, nn.Linear], cfg: QuantConfig, calib) -> dict[str, LayerQuant]:
    q = cfg.lqlora
    cands = sorted(set(q.candidate_bits)) if q.budget_bits is not None else [cfg.bits]
    names = list(linears)
    decomp = {}
    errs = np.zeros((len(names), len(cands)))
    costs = np.zeros((len(names), len(cands)))
    for i, n in enumerate(names):
        lin = linears[n]
        for j, b in enumerate(cands):
            spec = spec_of(b, cfg.group_size, cfg.symmetric, lin.in_features)
            qt, A, B, e = lq_decompose(lin.weight, q.rank, spec, q.iters)
            decomp[n, b] = (qt, A, B)
            errs[i, j] = min(e) ** 2
            costs[i, j] = _memory_bits(lin.weight.numel(), qt, b)
    if q.budget_bits is None:
        choice = np.zeros(len(names), dtype=int)
    else:
        budget = q.budget_bits * sum(linears[n].weight.numel() for n in names)
        choice = allocate_bits(errs, costs, budget)
    out = {}
    for i, n in enumerate(names):
        b = cands[choice[i]]
        qt, A, B = decomp[n, b]
        lq = LayerQuant(qt, b, lr_a=A, lr_b=B)
        with torch.no_grad():
            linears[n].weight.copy_(lq.weight().to(linears[n].weight.dtype))
        out[n] = lq
    return out
