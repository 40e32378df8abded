"""GPTQ: layer-wise quantization with second-order error compensation (Frantar et al., 2023).

For a Linear layer with inputs X [N, in], minimise ||W X^T - W_hat X^T||^2 column by column:
with H = 2/N X^T X + lambda I (lambda = damp * mean diag H) and U = chol(H^-1) (upper),

    q_j = quant(w_j),    e_j = (w_j - q_j) / U_jj,    w_{j+1:} -= e_j U_{j, j+1:}

applied lazily in blocks of `block_size` columns (the error of a block is pushed to the remaining
columns with one matmul). Groups take their (scale, zero) from the already-updated weights when
the group's first column is reached. `act_order` visits columns by decreasing diag(H); codes are
returned in the original column order with `g_idx` mapping each column to its group.

Non-positive-definite Hessian (e.g. rank-deficient with too little damping): documented fallback:
multiply the damping by 10 and retry, up to `max_retries` times; then raise `GPTQError`.
Dead inputs (diag H == 0) get H_jj = 1 and w_j = 0 (they never contribute to the output).
Also the quantizer behind RSQ and QuantLRM (which change H or W before calling it).
"""

from __future__ import annotations

import torch
from torch import nn

from rlx.quant.config import GPTQConfig, QuantConfig
from rlx.quant.core import IntSpec, QTensor, int_params
from rlx.quant.layers import LayerQuant, group_by_block, run_hooked, spec_of

__all__ = ["GPTQError", "HessianAccumulator", "gptq_weight", "quantize_gptq", "gptq_layers"]


class GPTQError(RuntimeError):
    """The Hessian stayed non-positive-definite after every damping retry."""


class HessianAccumulator:
    """Running H = 2/W sum_t w_t x_t x_t^T over calibration tokens (w_t = 1 unless token weights given)."""

    def __init__(self, d: int):
        self.H = torch.zeros(d, d, dtype=torch.float64)
        self.total = 0.0

    def add(self, x: torch.Tensor, weights: torch.Tensor | None = None, count: torch.Tensor | None = None) -> None:
        """x [..., d]; weights [...] per-token weights; count: how many rows are real (default all)."""
        x2 = x.reshape(-1, x.shape[-1]).double()
        if weights is not None:
            w = weights.reshape(-1).double()
            self.H += (x2 * w[:, None]).T @ x2
            self.total += float(w.sum())
        else:
            self.H += x2.T @ x2
            self.total += float(count) if count is not None else x2.shape[0]

    def hessian(self) -> torch.Tensor:
        return (2.0 * self.H / max(self.total, 1.0)).float()


def _inverse_cholesky(H: torch.Tensor, cfg: GPTQConfig) -> tuple[torch.Tensor, float]:
    """Upper Cholesky factor of (H + lambda I)^-1, increasing lambda on failure. Returns (U, lambda)."""
    d = H.shape[0]
    lam = cfg.damp * float(torch.diag(H).mean())
    if lam <= 0:
        lam = cfg.damp
    eye = torch.eye(d, dtype=torch.float64)
    H64 = H.double()
    for _ in range(cfg.max_retries + 1):
        L, info = torch.linalg.cholesky_ex(H64 + lam * eye)
        if int(info) == 0:
            Hinv = torch.cholesky_inverse(L)
            U, info2 = torch.linalg.cholesky_ex(Hinv, upper=True)
            if int(info2) == 0:
                return U.float(), lam
        lam *= 10.0
    raise GPTQError(f"GPTQ: Hessian not positive definite even with damping {lam / 10:.3g} "
                    f"after {cfg.max_retries} retries; use more calibration data or a larger gptq.damp")


@torch.no_grad()
def gptq_weight(W: torch.Tensor, H: torch.Tensor, spec: IntSpec, cfg: GPTQConfig = GPTQConfig()
                ) -> tuple[QTensor, dict[str, float]]:
    """Quantize W [out, in] against Hessian H [in, in]. Returns (codes in original order, info).

    Non-finite W or H is an error: the error feedback would spread one NaN over the rest of its row."""
    for name, t in (("weight", W), ("Hessian", H)):
        if not torch.isfinite(t).all():
            raise GPTQError(f"GPTQ: the {name} {tuple(t.shape)} has {int((~torch.isfinite(t)).sum())} non-finite "
                            "values (non-finite weights or calibration activations)")
    W = W.detach().float().clone()
    H = H.detach().float().clone()
    rows, cols = W.shape
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    perm = torch.argsort(torch.diag(H), descending=True) if cfg.act_order else torch.arange(cols)
    W, H = W[:, perm], H[perm][:, perm]
    U, lam = _inverse_cholesky(H, cfg)

    G = cols if spec.granularity != "group" else min(spec.group_size, cols)
    n_groups = cols // G
    scales = torch.zeros(rows, n_groups)
    zeros = torch.zeros(rows, n_groups)
    if spec.granularity != "group":  # one (scale, zero) for the whole row (or tensor), from the start
        s, z = int_params(W.reshape(1, 1, -1) if spec.granularity == "tensor" else W[:, None, :], spec)
        scales[:], zeros[:] = s.reshape(-1, 1).expand(rows, 1), z.reshape(-1, 1).expand(rows, 1)
    codes = torch.zeros(rows, cols)
    qmax = spec.qmax
    B = cfg.block_size
    for i1 in range(0, cols, B):
        i2 = min(i1 + B, cols)
        W1 = W[:, i1:i2].clone()
        Err1 = torch.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if spec.granularity == "group" and col % G == 0:
                grp = torch.cat([W1[:, i:], W[:, i2:]], dim=1)[:, :G]
                s, z = int_params(grp[:, None, :], spec)
                scales[:, col // G], zeros[:, col // G] = s[:, 0], z[:, 0]
            g = col // G
            s, z = scales[:, g], zeros[:, g]
            w = W1[:, i]
            q = torch.clamp(torch.round(w / s + z), 0, qmax)
            codes[:, col] = q
            err = (w - s * (q - z)) / U1[i, i]
            W1[:, i:] -= err[:, None] * U1[i, i:][None, :]
            Err1[:, i] = err
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    inv = torch.argsort(perm)
    g_idx = (torch.arange(cols) // G)[inv] if cfg.act_order else None
    qt = QTensor(codes[:, inv].to(torch.uint8), scales, zeros, G, g_idx)
    return qt, {"damp_lambda": lam}


def gptq_layers(model: nn.Module, linears: dict[str, nn.Linear], calib, bits: int, group_size: int,
                symmetric: bool, gcfg: GPTQConfig, token_weights: torch.Tensor | None = None,
                transform=None, batch_size: int = 32) -> dict[str, LayerQuant]:
    """Sequential GPTQ block by block: Hessians from the *already quantized* earlier blocks' outputs.

    token_weights [N, T] scale each token's contribution to H (RSQ). `transform(name, lin, H)` may
    return (W_to_quantize, H_to_use, make_layerquant) to rotate/scale first (RSQ, QuantLRM).
    """
    ids, mask = calib[0], calib[1]
    out: dict[str, LayerQuant] = {}
    for group in group_by_block(list(linears)):
        mods = {n: linears[n] for n in group}
        acc = {n: HessianAccumulator(m.in_features) for n, m in mods.items()}

        def collect(name, x, s, e):
            w = (token_weights[s:e] * mask[s:e]) if token_weights is not None else None
            acc[name].add(x, w, count=mask[s:e].sum())

        run_hooked(model, ids, mask, mods, collect, batch_size)
        for n, lin in mods.items():
            H = acc[n].hessian()
            spec = spec_of(bits, group_size, symmetric, lin.in_features)
            try:
                if transform is None:
                    qt, _ = gptq_weight(lin.weight, H, spec, gcfg)
                    lq = LayerQuant(qt, bits)
                else:
                    W, Ht, make = transform(n, lin, H)
                    qt, _ = gptq_weight(W, Ht, spec, gcfg)
                    lq = make(qt)
            except GPTQError as e:
                raise GPTQError(f"layer {n}: {e}") from None
            with torch.no_grad():
                lin.weight.copy_(lq.weight().to(lin.weight.dtype))
            out[n] = lq
    return out


def quantize_gptq(model: nn.Module, linears: dict[str, nn.Linear], cfg: QuantConfig, calib) -> dict[str, LayerQuant]:
    return gptq_layers(model, linears, calib, cfg.bits, cfg.group_size, cfg.symmetric, cfg.gptq,
                       batch_size=cfg.calib.batch_size)
