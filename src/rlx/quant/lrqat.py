"""LR-QAT: low-rank adapters in the integer domain of frozen low-bit weights (paper `lrqat`).

With per-group (scale s, zero z) fixed from round-to-nearest, the frozen weight is stored once as
W0' = W0 / s + z (the paper keeps it in low precision), and the layer computes

    W_hat = s * (clamp(round_ste(W0' + (alpha / r) B A), 0, 2^b - 1) - z)

training only A [r, in], B [out, r] with the straight-through estimator through round (clamp
passes no gradient where it saturates). After training the adapters are fused into the integer
codes: codes = clamp(round(W0' + (alpha/r) B A)) -- the result is an ordinary b-bit weight, no
extra inference cost. alpha / r = 1 here. B starts at zero so training starts from RTN.

Training loss (`lrqat.loss`): `lm` (default, the paper's next-token loss on the calibration
tokens) or `distill` (an option not in the paper: KL from the frozen full-precision model's
next-token distribution at the same positions, see `layers.distill_loss`), which makes LR-QAT
imitate the model it compresses instead of training further on the calibration task.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rlx.quant.config import QuantConfig
from rlx.quant.core import QTensor, int_quantize, ste_round
from rlx.quant.layers import LayerQuant, frozen_teacher, spec_of, swap_module, train_lm

__all__ = ["LRQATLinear", "quantize_lrqat"]


class LRQATLinear(nn.Linear):
    """Frozen integer-domain weight + trainable low-rank adapter, fake-quantized with STE."""

    def __init__(self, lin: nn.Linear, bits: int, group_size: int, symmetric: bool, rank: int):
        super().__init__(lin.in_features, lin.out_features, bias=lin.bias is not None,
                         device=lin.weight.device, dtype=lin.weight.dtype)
        spec = spec_of(bits, group_size, symmetric, lin.in_features)
        qt = int_quantize(lin.weight.detach(), spec)
        g_idx = torch.arange(lin.in_features) // qt.group_size
        self.register_buffer("s", qt.scale[:, g_idx].clone())
        self.register_buffer("z", qt.zero[:, g_idx].clone())
        self.register_buffer("w0", lin.weight.detach().float() / self.s + self.z)
        self.qmax = spec.qmax
        self.bits, self.group_size = bits, qt.group_size
        self._scale_g, self._zero_g = qt.scale, qt.zero
        with torch.no_grad():
            self.weight.copy_(lin.weight)
            if lin.bias is not None:
                self.bias.copy_(lin.bias)
        self.weight.requires_grad_(False)
        r = min(rank, lin.in_features, lin.out_features)
        self.lora_a = nn.Parameter(torch.randn(r, lin.in_features) / lin.in_features ** 0.5)
        self.lora_b = nn.Parameter(torch.zeros(lin.out_features, r))

    def q_float(self) -> torch.Tensor:
        return torch.clamp(ste_round(self.w0 + self.lora_b @ self.lora_a), 0, self.qmax)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.s * (self.q_float() - self.z)
        return F.linear(x, w.to(x.dtype), self.bias)

    @torch.no_grad()
    def fused(self) -> QTensor:
        return QTensor(self.q_float().to(torch.uint8), self._scale_g, self._zero_g, self.group_size)


def quantize_lrqat(model: nn.Module, linears: dict[str, nn.Linear], cfg: QuantConfig, calib) -> dict[str, LayerQuant]:
    q = cfg.lrqat
    teacher = frozen_teacher(model) if q.steps > 0 and q.loss == "distill" else None
    mods = {n: LRQATLinear(lin, cfg.bits, cfg.group_size, cfg.symmetric, q.rank) for n, lin in linears.items()}
    for n, m in mods.items():
        swap_module(model, n, m)
    params = [p for m in mods.values() for p in (m.lora_a, m.lora_b)]
    flags = {id(p): p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    try:
        train_lm(model, params, calib, q.steps, q.lr, cfg.calib.batch_size, cfg.seed, loss=q.loss, teacher=teacher,
                 schedule=q.lr_schedule)
    finally:
        for p in model.parameters():
            p.requires_grad_(flags.get(id(p), True))
    out = {}
    for n, m in mods.items():
        lq = LayerQuant(m.fused(), cfg.bits)
        lin = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=m.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(lq.weight().to(lin.weight.dtype))
            if m.bias is not None:
                lin.bias.copy_(m.bias)
        swap_module(model, n, lin)
        out[n] = lq
    return out
