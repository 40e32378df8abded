"""FP8 quantization (e4m3, e5m2) with per-tensor, per-row or 128x128-block scales.

Scale convention (the same direction as the integer one: value = scale * stored):

    x_hat = scale * fp8(x / scale),    scale = amax / FP8_MAX[fmt]   (amax over the block)

so the largest finite magnitude of a block maps to the format's largest finite value
(448 for e4m3, 57344 for e5m2). Rounding to the 8-bit grid uses torch's `float8_e4m3fn` /
`float8_e5m2` dtypes (round-to-nearest-even; they exist on CPU in torch >= 2.1). Before the cast
values are clamped to +-FP8_MAX, so the cast always SATURATES (never overflows to NaN or inf).

Non-finite values: `amax` ignores NaN and +-inf (one bad entry does not poison its block's scale);
NaN stays NaN after fake-quant; +-inf saturate to +-FP8_MAX * scale. A block of zeros gets scale 1.

Granularity: "tensor" (one scale), "row" (one per row of the [-1, last] view: per token for
activations, per output channel for weights), "block" (one per `block` x `block` tile of a 2-D
tensor; DeepSeek-V3 style 128x128 weight blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["FP8_MAX", "FP8_DTYPE", "FP8Spec", "fp8_scale", "fp8_quantize", "fp8_dequantize", "fake_fp8"]

FP8_DTYPE = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}
FP8_MAX = {"e4m3": 448.0, "e5m2": 57344.0}


@dataclass(frozen=True)
class FP8Spec:
    fmt: Literal["e4m3", "e5m2"] = "e4m3"
    granularity: Literal["tensor", "row", "block"] = "tensor"
    block: int = 128


def _finite_abs(x: torch.Tensor) -> torch.Tensor:
    a = x.detach().float().abs()
    return torch.where(torch.isfinite(a), a, torch.zeros_like(a))


def _block_view(x: torch.Tensor, b: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad a 2-D tensor to multiples of b and view it as [R/b, b, C/b, b]."""
    rows, cols = x.shape
    pr, pc = (-rows) % b, (-cols) % b
    xp = torch.nn.functional.pad(x, (0, pc, 0, pr)) if (pr or pc) else x
    return xp.reshape(xp.shape[0] // b, b, xp.shape[1] // b, b), (rows, cols)


def fp8_scale(x: torch.Tensor, spec: FP8Spec) -> torch.Tensor:
    """Scale broadcastable to `x` (2-D view [-1, last] for row/block) with scale = amax / FP8_MAX."""
    a = _finite_abs(x)
    fmax = FP8_MAX[spec.fmt]
    if spec.granularity == "tensor":
        amax = a.amax()
    elif spec.granularity == "row":
        amax = a.reshape(-1, x.shape[-1]).amax(dim=-1, keepdim=True)
    else:
        if x.dim() != 2:
            raise ValueError(f"block scaling needs a 2-D tensor, got shape {tuple(x.shape)}")
        blocks, _ = _block_view(a, spec.block)
        amax = blocks.amax(dim=(1, 3))  # [R/b, C/b]
    # a tensor divisor: CUDA divides by a Python scalar as a multiply by its reciprocal, which is not correctly
    # rounded and moved some scales by one ulp (so fake_fp8 on CPU and on CUDA differed)
    scale = amax / torch.full_like(amax, fmax)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _expand(scale: torch.Tensor, x: torch.Tensor, spec: FP8Spec) -> torch.Tensor:
    if spec.granularity == "tensor":
        return scale
    if spec.granularity == "row":
        return scale.reshape(*x.shape[:-1], 1)
    b = spec.block
    full = scale.repeat_interleave(b, 0).repeat_interleave(b, 1)
    return full[: x.shape[0], : x.shape[1]]


def _round_fp8(y: torch.Tensor, fmt: str) -> torch.Tensor:
    """Saturating cast of y (already divided by the scale) to the fp8 dtype; NaN passes through."""
    fmax = FP8_MAX[fmt]
    return y.float().clamp(-fmax, fmax).to(FP8_DTYPE[fmt])


def fp8_quantize(x: torch.Tensor, spec: FP8Spec = FP8Spec()) -> tuple[torch.Tensor, torch.Tensor]:
    """(values in the fp8 dtype, scale) with x ~= values.float() * scale (scale per tensor/row/block)."""
    scale = fp8_scale(x, spec)
    values = _round_fp8(x.float() / _expand(scale, x, spec), spec.fmt)
    return values, scale


def fp8_dequantize(values: torch.Tensor, scale: torch.Tensor, spec: FP8Spec = FP8Spec()) -> torch.Tensor:
    return values.float() * _expand(scale, values, spec)


class _FakeFP8(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, spec):
        values, scale = fp8_quantize(x, spec)
        return fp8_dequantize(values, scale, spec).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        return g, None  # straight-through (FP8 has no clipping inside the scaled range)


def fake_fp8(x: torch.Tensor, spec: FP8Spec = FP8Spec()) -> torch.Tensor:
    """Quantize-dequantize through FP8 with a straight-through (identity) backward."""
    return _FakeFP8.apply(x, spec)
