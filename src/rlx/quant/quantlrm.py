"""QuantLRM: channel importance from fine-tuning weight deltas, "protect both ends" (paper `quantlrm`).

Given the fine-tuned (e.g. RL-trained) weights W and the base weights W0, delta = W - W0. Per layer,
u = |delta| / max|delta| in [0, 1]; a restricted quadratic f(u) = (u - m)^2 with its vertex at the
median m of u scores both the smallest and the largest updates high (the two "ends"). Input
channel j's importance is

    I_j = mean_i f(u_ij) * (1 + #{i : delta_ij == 0})

(average quadratic value times the count of zero updates, +1 so channels without zeros still
rank). As in activation-aware scaling, columns are multiplied by s_j = (I_j / geomean I)^alpha
before quantizing and divided after (W_hat = Q(W diag s) diag s^-1); alpha in [0, 1] is chosen on
a grid to minimise the calibration output error tr(E H E^T) of RTN, and the scaled weight is then
quantized with GPTQ against the matching Hessian diag(1/s) H diag(1/s).
Without a base checkpoint the deltas come from pseudo fine-tuning: one gradient of the
next-token loss on the calibration data (delta = -grad).
Departure: the paper fits the quadratic's coefficients; here the vertex is the median and the
curvature is 1 (the scale cancels in the normalisation).
"""

from __future__ import annotations

import torch
from torch import nn

from rlx.config import ConfigError
from rlx.quant.config import QuantConfig
from rlx.quant.core import int_quantize
from rlx.quant.gptq import gptq_layers
from rlx.quant.layers import LayerQuant, lm_loss, spec_of

__all__ = ["channel_importance", "weight_deltas", "quantize_quantlrm"]


def channel_importance(delta: torch.Tensor) -> torch.Tensor:
    """I [in] from a weight delta [out, in] (protect both ends)."""
    a = delta.detach().float().abs()
    u = a / a.max().clamp_min(1e-30)
    m = u.median()
    f = (u - m) ** 2
    zeros = (delta == 0).sum(dim=0).float()
    return f.mean(dim=0) * (1 + zeros)


def weight_deltas(model: nn.Module, linears: dict[str, nn.Linear], cfg: QuantConfig, calib) -> dict[str, torch.Tensor]:
    if cfg.quantlrm.base is not None:
        from rlx.models import ModelConfig, load_policy

        base, _ = load_policy(ModelConfig(path=cfg.quantlrm.base))
        mods = dict(base.named_modules())
        out = {}
        for n, lin in linears.items():
            if n not in mods or mods[n].weight.shape != lin.weight.shape:
                raise ConfigError(f"config error: quantlrm.base = {cfg.quantlrm.base!r}: layer {n} missing or of another shape")
            out[n] = lin.weight.detach().float() - mods[n].weight.detach().float()
        return out
    ids, mask = calib[0], calib[1]
    model.zero_grad(set_to_none=True)
    n = min(cfg.calib.batch_size, ids.shape[0])
    flags = {name: lin.weight.requires_grad for name, lin in linears.items()}  # a model loaded for inference
    try:
        for lin in linears.values():
            lin.weight.requires_grad_(True)
        with torch.enable_grad():
            lm_loss(model, ids[:n], mask[:n], calib[2][:n] if len(calib) > 2 else None).backward()
        out = {name: -lin.weight.grad.detach().float().clone() for name, lin in linears.items()}
    finally:
        for name, lin in linears.items():
            lin.weight.requires_grad_(flags[name])
        model.zero_grad(set_to_none=True)
    return out


def _scales(imp: torch.Tensor, alpha: float) -> torch.Tensor:
    imp = imp.clamp_min(1e-12)
    s = (imp / imp.log().mean().exp()) ** alpha
    return s.clamp(1e-2, 1e2)


def quantize_quantlrm(model: nn.Module, linears: dict[str, nn.Linear], cfg: QuantConfig, calib) -> dict[str, LayerQuant]:
    deltas = weight_deltas(model, linears, cfg, calib)
    grid = torch.linspace(0, 1, cfg.quantlrm.alpha_grid).tolist()

    def scale_then(name, lin, H):
        W = lin.weight.detach().float()
        imp = channel_importance(deltas[name])
        spec = spec_of(cfg.bits, cfg.group_size, cfg.symmetric, lin.in_features)
        best = None
        for a in grid:
            s = _scales(imp, a)
            E = W - int_quantize(W * s, spec).dequantize() / s
            err = float(torch.trace(E @ H @ E.T))
            if best is None or err < best[0]:
                best = (err, s)
        s = best[1]
        Hs = H / s[:, None] / s[None, :]
        return W * s, Hs, lambda qt: LayerQuant(qt, cfg.bits, col_scale=s)

    return gptq_layers(model, linears, calib, cfg.bits, cfg.group_size, cfg.symmetric, cfg.gptq,
                       transform=scale_then, batch_size=cfg.calib.batch_size)
