"""Integer quantizers and fake-quant with a straight-through estimator.

ONE scale convention for every integer format in rlx.quant:

    x_hat = scale * (q - zero),    q in {0, 1, ..., 2^b - 1} (unsigned integer codes)

* asymmetric: scale = (max - min) / (2^b - 1), zero = round(-min / scale) (an integer), so the
  grid contains 0 exactly and spans [min, max] of the group (min <= 0 <= max is enforced).
* symmetric:  scale = 2 * amax / (2^b - 1), zero = (2^b - 1) / 2 (a half-integer for every b), so
  the grid is symmetric about 0 with extremes +-amax ("mid-rise": 1 bit gives {-amax, +amax},
  2 bits {-amax, -amax/3, amax/3, amax}). This is the grid QuEST fits to a Gaussian.

Inside the range of a group, |x - x_hat| <= scale / 2. Values outside saturate to the end codes.
Granularity: "tensor" (one scale), "channel" (one per output row, dim 0 of a [out, in] weight),
"group" (one per row and per `group_size` consecutive input columns). `clip` in (0, 1] shrinks the
range (amax, or min/max) before the scale is computed (clipping search uses it).

Non-finite inputs: the range statistics ignore NaN/inf; NaN stays NaN after fake-quant, +-inf
saturate to the end codes. Codes of NaN entries are stored as 0 (they carry no value).

An all-zero group gets the smallest normal float32 as its scale (`ZERO_GROUP_SCALE`): on the
asymmetric grid any scale is exact, but the symmetric grid has no 0 (its zero point is a
half-integer), so a scale of 1 would turn a pruned row into +-0.5; with the tiny scale it stays 0
to within 6e-39.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["IntSpec", "QTensor", "int_params", "int_quantize", "int_dequantize", "fake_int", "ste_round",
           "ZERO_GROUP_SCALE"]

ZERO_GROUP_SCALE = torch.finfo(torch.float32).tiny  # the scale of an all-zero group (module docstring)

Granularity = Literal["tensor", "channel", "group"]


@dataclass(frozen=True)
class IntSpec:
    """How to quantize one tensor to integers."""

    bits: int = 4  # 1..8
    symmetric: bool = False
    granularity: Granularity = "group"
    group_size: int = 128  # columns per group (granularity="group"); clipped to the row length
    clip: float = 1.0  # range shrink factor in (0, 1]

    def __post_init__(self):
        if not 1 <= self.bits <= 8:
            raise ValueError(f"bits = {self.bits}: expected 1..8")
        if not 0 < self.clip <= 1:
            raise ValueError(f"clip = {self.clip}: expected (0, 1]")
        if self.group_size < 1:
            raise ValueError(f"group_size = {self.group_size}: expected >= 1")

    @property
    def qmax(self) -> int:
        return 2**self.bits - 1


@dataclass
class QTensor:
    """Packed integer codes of a 2-D weight and the parameters that dequantize them."""

    codes: torch.Tensor  # [out, in] uint8
    scale: torch.Tensor  # [out, n_groups] float32 (n_groups = 1 for tensor/channel)
    zero: torch.Tensor  # [out, n_groups] float32 (integer or half-integer)
    group_size: int  # columns per group (= in for tensor/channel)
    g_idx: torch.Tensor | None = None  # [in] int64 column -> group (GPTQ act-order), None = col // group_size

    def dequantize(self) -> torch.Tensor:
        return int_dequantize(self)


def _groups(x: torch.Tensor, spec: IntSpec) -> tuple[torch.Tensor, int]:
    """View a 2-D tensor as [rows, n_groups, group] for the spec's granularity."""
    if x.dim() != 2:
        x = x.reshape(x.shape[0] if x.dim() > 1 else 1, -1)
    rows, cols = x.shape
    if spec.granularity == "tensor":
        return x.reshape(1, 1, rows * cols), cols
    if spec.granularity == "channel":
        return x.reshape(rows, 1, cols), cols
    g = min(spec.group_size, cols)
    if cols % g:
        raise ValueError(f"group_size = {g} must divide the input dimension {cols}")
    return x.reshape(rows, cols // g, g), g


def int_params(x: torch.Tensor, spec: IntSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero) for each group of `x` (last dim reduced); x shaped [..., group].

    Statistics ignore non-finite values. A group that is all zero gets `ZERO_GROUP_SCALE`.
    """
    finite = torch.isfinite(x)
    xf = torch.where(finite, x, torch.zeros_like(x)).float()
    if spec.symmetric:
        amax = xf.abs().amax(dim=-1) * spec.clip
        scale = 2 * amax / spec.qmax
        zero = torch.full_like(scale, spec.qmax / 2)
    else:
        lo = xf.amin(dim=-1).clamp(max=0) * spec.clip
        hi = xf.amax(dim=-1).clamp(min=0) * spec.clip
        scale = (hi - lo) / spec.qmax
        scale = torch.where(scale > 0, scale, torch.full_like(scale, ZERO_GROUP_SCALE))
        zero = torch.round(-lo / scale)
    scale = torch.where(scale > 0, scale, torch.full_like(scale, ZERO_GROUP_SCALE))
    return scale, zero


def _codes(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, qmax: int) -> torch.Tensor:
    # q = clamp(round(x / scale + zero), 0, qmax); with half-integer zero round() lands on integers
    # because x/scale + zero is rounded as a whole.
    q = torch.round(x / scale + zero)
    q = torch.nan_to_num(q, nan=0.0)  # NaN entries: code value irrelevant
    return q.clamp(0, qmax)


def int_quantize(w: torch.Tensor, spec: IntSpec) -> QTensor:
    """Quantize a 2-D weight [out, in] into codes + (scale, zero) per group."""
    if w.dim() != 2:
        raise ValueError(f"int_quantize expects a 2-D weight, got shape {tuple(w.shape)}")
    grouped, g = _groups(w.detach().float(), spec)
    scale, zero = int_params(grouped, spec)
    q = _codes(grouped, scale[..., None], zero[..., None], spec.qmax)
    rows, cols = w.shape
    if spec.granularity == "tensor":
        scale, zero = scale.expand(rows, 1).contiguous(), zero.expand(rows, 1).contiguous()
        g = cols
    return QTensor(q.reshape(rows, cols).to(torch.uint8), scale, zero, g)


def int_dequantize(qt: QTensor) -> torch.Tensor:
    """x_hat = scale * (q - zero) for every entry, using the column's group."""
    rows, cols = qt.codes.shape
    g_idx = qt.g_idx if qt.g_idx is not None else torch.arange(cols) // qt.group_size
    s = qt.scale[:, g_idx]
    z = qt.zero[:, g_idx]
    return s * (qt.codes.float() - z)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity backward (straight-through estimator)."""
    return _RoundSTE.apply(x)


def fake_int(x: torch.Tensor, spec: IntSpec, scale: torch.Tensor | None = None,
             zero: torch.Tensor | None = None) -> torch.Tensor:
    """Quantize-dequantize `x` (same shape) with the STE: d x_hat / d x = 1 inside the range, 0 outside.

    For activations ([..., features]) use granularity "tensor" or "channel" (one scale per row of the
    flattened [-1, features] view, i.e. per token). Scales are treated as constants (no gradient).
    """
    shape = x.shape
    x2 = x.reshape(-1, shape[-1]) if x.dim() != 2 else x
    grouped, _ = _groups(x2, spec)
    if scale is None:
        with torch.no_grad():
            scale, zero = int_params(grouped.detach(), spec)
    s, z = scale[..., None], zero[..., None]
    q = ste_round(grouped / s + z)
    # clamp passes gradient only inside [0, qmax]: saturated entries get zero gradient
    q = torch.clamp(q, 0, spec.qmax)
    return (s * (q - z)).reshape(shape).to(x.dtype)
