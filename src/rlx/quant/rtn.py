"""Round-to-nearest (RTN): the post-training baseline. Each weight group is quantized on its own.

x_hat = scale * (clamp(round(x / scale + zero), 0, 2^b - 1) - zero) with the convention of
`rlx.quant.core`. No calibration data; the optional MSE clip search (`rtn_mse`) shrinks each
group's range over a grid and keeps the clip with the lowest squared error.
"""

from __future__ import annotations

import torch
from torch import nn

from rlx.quant.config import QuantConfig
from rlx.quant.core import IntSpec, QTensor, int_quantize
from rlx.quant.layers import LayerQuant, spec_of

__all__ = ["rtn_weight", "quantize_rtn"]


def rtn_weight(w: torch.Tensor, spec: IntSpec) -> QTensor:
    """Round-to-nearest codes of a [out, in] weight."""
    return int_quantize(w, spec)


@torch.no_grad()
def quantize_rtn(model: nn.Module, linears: dict[str, nn.Linear], cfg: QuantConfig, calib) -> dict[str, LayerQuant]:
    out = {}
    for name, lin in linears.items():
        spec = spec_of(cfg.bits, cfg.group_size, cfg.symmetric, lin.in_features)
        lq = LayerQuant(rtn_weight(lin.weight, spec), cfg.bits)
        lin.weight.copy_(lq.weight().to(lin.weight.dtype))
        out[name] = lq
    return out
