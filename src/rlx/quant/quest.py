"""QuEST: Hadamard normalization, MSE-optimal Gaussian fitting, trust gradient estimator (paper `quest`).

For a row x (a weight row or a token's activations), QuEST quantizes in the Hadamard domain,
where entries are close to Gaussian:

    x' = x H,  sigma = rms(x'),  amax = alpha_b * sigma,  x_hat' = Q_sym(x'; amax),  x_hat = x_hat' H

with alpha_b the clip that minimises E[(z - Q_sym(z; alpha))^2] for z ~ N(0, 1) on the symmetric
(mid-rise) grid of 2^b levels (`gaussian_mse_alpha`; b = 1 gives alpha = sqrt(2/pi)). Because H is
orthonormal, (x H)(W H)^T = x W^T, so a Linear layer computes Q(x H) Q(W H)^T.

Trust gradient estimator: the backward pass keeps the gradient of an entry only where the
quantization error is small, M = 1[|x' - x_hat'| <= trust * scale / 2], and sends dL/dx' * M back
through H (for trust = 1 this drops exactly the entries clipped by more than half a step).

QAT (`quest.qat_steps` > 0) trains the model through these quantizers (weights, and activations
when `quest.act_bits` is set) on the calibration sequences; the weights are then frozen to their
codes. Departure: the paper trains from scratch; here QAT fine-tunes a trained checkpoint.

QAT loss (`quest.loss`), an option that is not in the paper (which pre-trains, so its loss is the
next-token loss):
  * `lm` (default): next-token cross-entropy on the calibration tokens (the completion tokens when
    the calibration comes from a task). On task data this is also extra task training, so a
    QAT model can end up *better* than the full-precision one it compresses.
  * `distill`: KL(p_FP || p_QAT) of the next-token distributions at the same positions, teacher =
    a frozen copy of the full-precision model taken before quantization, run on the fly
    (`layers.distill_loss`). The calibration labels are never used: QAT learns to imitate the
    model it compresses, which makes it a like-for-like comparison with post-training methods
    that only see the same calibration inputs. Activation quantization stays in memory (QuestLinear); saved HF files carry
the quantized weights only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

import torch
import torch.nn.functional as F
from torch import nn

from rlx.quant.config import QuantConfig
from rlx.quant.core import ZERO_GROUP_SCALE, QTensor
from rlx.quant.hadamard import hadamard
from rlx.quant.layers import LayerQuant, frozen_teacher, swap_module, train_lm

__all__ = ["gaussian_mse_alpha", "quest_fake", "quest_codes", "QuestLinear", "quantize_quest"]


def _gaussian_grid_mse(alpha: float, bits: int) -> float:
    """E[(z - Q(z))^2], z ~ N(0,1), symmetric mid-rise grid of 2^b levels with extremes +-alpha.

    Closed form per cell [a, b] with level c: int (z - c)^2 phi = [Phi - z phi]_a^b + 2c [phi]_a^b + c^2 [Phi]_a^b.
    """
    from scipy.special import ndtr

    n = 2**bits
    c = np.linspace(-alpha, alpha, n)
    edges = np.concatenate([[-np.inf], (c[:-1] + c[1:]) / 2, [np.inf]])
    finite = np.isfinite(edges)
    e = np.where(finite, edges, 0.0)
    phi = np.where(finite, np.exp(-0.5 * e**2) / np.sqrt(2 * np.pi), 0.0)  # phi(+-inf) = 0
    Phi = ndtr(edges)
    zphi = e * phi  # z phi(z) -> 0 at +-inf
    a, b = slice(0, n), slice(1, n + 1)
    total = (Phi[b] - zphi[b]) - (Phi[a] - zphi[a]) + 2 * c * (phi[b] - phi[a]) + c**2 * (Phi[b] - Phi[a])
    return float(total.sum())


@lru_cache(maxsize=None)
def gaussian_mse_alpha(bits: int) -> float:
    """MSE-optimal clip alpha_b (in units of sigma) for a Gaussian on the b-bit symmetric grid."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda a: _gaussian_grid_mse(a, bits), bounds=(0.1, 12.0), method="bounded",
                          options={"xatol": 1e-7})
    return float(res.x)


class _QuestFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bits: int, trust: float):
        x_hat, mask = _quest_forward(x, bits, trust)
        ctx.save_for_backward(mask)
        return x_hat

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask, None, None


def _quest_forward(x: torch.Tensor, bits: int, trust: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_hat, trust mask) for rows of x (last dim), already in the Hadamard domain."""
    xf = x.float()
    sigma = xf.pow(2).mean(dim=-1, keepdim=True).sqrt()
    qmax = 2**bits - 1
    amax = gaussian_mse_alpha(bits) * sigma
    scale = torch.where(amax > 0, 2 * amax / qmax, torch.full_like(amax, ZERO_GROUP_SCALE))  # core.py docstring
    q = torch.clamp(torch.round(xf / scale + qmax / 2), 0, qmax)
    x_hat = scale * (q - qmax / 2)
    mask = ((xf - x_hat).abs() <= trust * scale / 2).to(x.dtype)
    return x_hat.to(x.dtype), mask


def quest_fake(x: torch.Tensor, bits: int, trust: float = 1.0) -> torch.Tensor:
    """Quantize rows of x (already Hadamard-rotated) with Gaussian MSE clipping; trust-masked STE backward."""
    return _QuestFn.apply(x, bits, trust)


@torch.no_grad()
def quest_codes(w: torch.Tensor, bits: int) -> QTensor:
    """Integer codes of hadamard(w) with the per-row Gaussian MSE fit (codes in the rotated basis)."""
    if not torch.isfinite(w).all():  # a NaN row would get a NaN sigma and silently become all-zero codes
        raise ValueError(f"quest_codes: the weight {tuple(w.shape)} has {int((~torch.isfinite(w)).sum())} "
                         "non-finite values")
    wh = hadamard(w.detach().float())
    sigma = wh.pow(2).mean(dim=-1, keepdim=True).sqrt()
    qmax = 2**bits - 1
    amax = gaussian_mse_alpha(bits) * sigma
    scale = torch.where(amax > 0, 2 * amax / qmax, torch.full_like(amax, ZERO_GROUP_SCALE))  # core.py docstring
    q = torch.clamp(torch.round(wh / scale + qmax / 2), 0, qmax)
    return QTensor(q.to(torch.uint8), scale, torch.full_like(scale, qmax / 2), w.shape[1])


class QuestLinear(nn.Linear):
    """y = Q_a(x H) Q_w(W H)^T + b. Same parameter names as nn.Linear (checkpoints stay HF-loadable).

    A float16 layer trains float32 master weights (Adam's eps = 1e-8 and small squared gradients underflow
    in float16, turning weights into NaN); `model_dtype` is the dtype it goes back to after QAT."""

    def __init__(self, lin: nn.Linear, w_bits: int | None, a_bits: int | None, trust: float):
        self.model_dtype = lin.weight.dtype
        master = torch.float32 if lin.weight.dtype == torch.float16 else lin.weight.dtype
        super().__init__(lin.in_features, lin.out_features, bias=lin.bias is not None,
                         device=lin.weight.device, dtype=master)
        with torch.no_grad():
            self.weight.copy_(lin.weight)
            if lin.bias is not None:
                self.bias.copy_(lin.bias)
        self.w_bits, self.a_bits, self.trust = w_bits, a_bits, trust

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.w_bits is None and self.a_bits is None:
            return F.linear(x.to(self.weight.dtype), self.weight, self.bias).to(x.dtype)
        xh = hadamard(x.to(self.weight.dtype))
        wh = hadamard(self.weight)
        if self.a_bits is not None:
            xh = quest_fake(xh, self.a_bits, self.trust)
        if self.w_bits is not None:
            wh = quest_fake(wh, self.w_bits, self.trust)
        return F.linear(xh, wh, self.bias).to(x.dtype)


def quantize_quest(model: nn.Module, linears: dict[str, nn.Linear], cfg: QuantConfig, calib) -> dict[str, LayerQuant]:
    q = cfg.quest
    teacher = frozen_teacher(model) if q.qat_steps > 0 and q.loss == "distill" else None
    mods = {}
    for name, lin in linears.items():
        mods[name] = QuestLinear(lin, cfg.bits, q.act_bits, q.trust)
        swap_module(model, name, mods[name])
    if q.qat_steps > 0:
        params = [p for m in mods.values() for p in m.parameters()]
        frozen = [p for p in model.parameters() if all(p is not x for x in params)]
        flags = [p.requires_grad for p in frozen]
        for p in frozen:
            p.requires_grad_(False)
        try:
            train_lm(model, params, calib, q.qat_steps, q.lr, cfg.calib.batch_size, cfg.seed,
                     loss=q.loss, teacher=teacher, schedule=q.lr_schedule)
        finally:
            for p, f in zip(frozen, flags):
                p.requires_grad_(f)
        del teacher
    out = {}
    for name, m in mods.items():
        lq = LayerQuant(quest_codes(m.weight, cfg.bits), cfg.bits, hadamard=True)
        with torch.no_grad():
            m.weight.copy_(lq.weight().to(m.weight.dtype))
        m.w_bits = None  # weights now hold their dequantized codes; activations stay fake-quantized
        m.to(m.model_dtype)
        if q.act_bits is None:
            swap_module(model, name, _plain_linear(m))
        out[name] = lq
    return out


def _plain_linear(m: nn.Linear) -> nn.Linear:
    lin = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, device=m.weight.device, dtype=m.weight.dtype)
    with torch.no_grad():
        lin.weight.copy_(m.weight)
        if m.bias is not None:
            lin.bias.copy_(m.bias)
    return lin
