"""FP8 precision flow for RL: rollout-only FP8 vs a unified FP8 flow (paper `jetrl`).

    flow = fp8_precision(model, mode="unified")     # swaps the Linear layers once (in place)
    with flow.rollout():  ...generate...             # FP8 weights and activations
    with flow.train():    ...logprobs, loss.backward()...
    flow.remove()                                    # back to plain nn.Linear

Modes:
* "rollout_only": rollouts run FP8 fake-quant (weights per 128x128 block, activations per token,
  e4m3); the training forward runs in high precision. This is the common setup whose
  rollout/trainer numerical mismatch makes the RL update off-policy (Jet-RL's failure case).
* "unified": the training forward uses exactly the same FP8 quantization as the rollout, with a
  straight-through backward (gradients flow as if the rounding were the identity), so the policy
  that is trained is the policy that sampled.
* "off": both high precision (control).

Backends: "fake" (default; CPU or GPU, quantize-dequantize through torch's float8 dtypes) and
"scaled_mm" (CUDA only, compute capability >= 8.9: the matmul itself runs in FP8 through
`torch._scaled_mm` with per-token x per-row scales, e4m3 only; its backward uses the high-precision x and
W, while the fake backend's differentiates through the quantized ones). `torchao` is
imported lazily by `torchao_convert` for users who want its training kernels.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from rlx.quant.fp8 import FP8Spec, fake_fp8, fp8_quantize
from rlx.quant.layers import swap_module

__all__ = ["FP8Linear", "FP8Flow", "fp8_precision", "torchao_convert"]

Mode = Literal["rollout_only", "unified", "off"]


class FP8Linear(nn.Linear):
    """nn.Linear whose forward quantizes W and x to FP8 while `active` (same parameter names)."""

    def __init__(self, lin: nn.Linear, w_spec: FP8Spec, a_spec: FP8Spec, backend: str):
        super().__init__(lin.in_features, lin.out_features, bias=lin.bias is not None,
                         device=lin.weight.device, dtype=lin.weight.dtype)
        self.weight = lin.weight  # share the parameters: the optimizer keeps working
        self.bias = lin.bias
        self.w_spec, self.a_spec, self.backend = w_spec, a_spec, backend
        self.active = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return F.linear(x, self.weight, self.bias)
        if self.backend == "scaled_mm" and x.is_cuda:
            return _ScaledMM.apply(x, self.weight, self.bias)
        return F.linear(fake_fp8(x, self.a_spec), fake_fp8(self.weight, self.w_spec), self.bias)


class _ScaledMM(torch.autograd.Function):
    """FP8 GEMM on CUDA (per-token x per-output-row scales, e4m3); backward in high precision (STE)."""

    @staticmethod
    def forward(ctx, x, w, bias):
        ctx.save_for_backward(x, w)
        ctx.has_bias = bias is not None
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        row = FP8Spec("e4m3", "row")
        xq, xs = fp8_quantize(x2, row)  # xs [M, 1]
        wq, ws = fp8_quantize(w, row)  # ws [N, 1]
        y = torch._scaled_mm(xq, wq.t(), scale_a=xs.float(), scale_b=ws.float().t(), out_dtype=torch.bfloat16)
        y = y.to(x.dtype)
        if bias is not None:
            y = y + bias
        return y.reshape(*shape[:-1], w.shape[0])

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        gx = g @ w.to(g.dtype)
        gw = g.reshape(-1, g.shape[-1]).T @ x.reshape(-1, x.shape[-1]).to(g.dtype)
        gb = g.reshape(-1, g.shape[-1]).sum(0) if ctx.has_bias else None
        return gx, gw, gb


@dataclass
class FP8Flow:
    model: nn.Module
    mode: Mode
    layers: dict[str, FP8Linear]
    originals: dict[str, nn.Linear]

    def _set(self, on: bool) -> None:
        for m in self.layers.values():
            m.active = on

    @contextlib.contextmanager
    def rollout(self):
        """Generation: FP8 unless mode is "off"."""
        self._set(self.mode != "off")
        try:
            yield
        finally:
            self._set(False)

    @contextlib.contextmanager
    def train(self):
        """Training forward/backward: FP8 only in the unified flow."""
        self._set(self.mode == "unified")
        try:
            yield
        finally:
            self._set(False)

    def remove(self) -> None:
        for name, lin in self.originals.items():
            swap_module(self.model, name, lin)


def fp8_precision(model: nn.Module, mode: Mode = "unified", fmt: Literal["e4m3", "e5m2"] = "e4m3",
                  weight_granularity: Literal["tensor", "row", "block"] = "block",
                  backend: Literal["fake", "scaled_mm"] = "fake", skip: tuple[str, ...] = ("lm_head",)) -> FP8Flow:
    """Swap every Linear (not in `skip`) for an FP8Linear sharing its parameters. Paper: jetrl."""
    if mode not in ("rollout_only", "unified", "off"):
        raise ValueError(f"mode = {mode!r}: expected rollout_only, unified or off")
    if backend == "scaled_mm" and (fmt, weight_granularity) != ("e4m3", "row"):
        raise ValueError(f"backend = scaled_mm runs e4m3 with one scale per weight row; fmt = {fmt!r}, "
                         f"weight_granularity = {weight_granularity!r} would be silently ignored: pass "
                         "fmt='e4m3', weight_granularity='row', or use backend='fake'")
    w_spec = FP8Spec(fmt, weight_granularity)
    a_spec = FP8Spec(fmt, "row")
    layers, originals = {}, {}
    for name, m in list(model.named_modules()):
        if type(m) is nn.Linear and not any(s in name for s in skip):
            originals[name] = m
            layers[name] = FP8Linear(m, w_spec, a_spec, backend)
            swap_module(model, name, layers[name])
    return FP8Flow(model, mode, layers, originals)


def torchao_convert(model: nn.Module) -> nn.Module:  # pragma: no cover - GPU extra
    """Real FP8 training kernels from torchao (GPU; optional dependency, imported lazily)."""
    try:
        from torchao.float8 import convert_to_float8_training
    except ImportError as e:
        raise ImportError("torchao is needed for torchao_convert: pip install torchao") from e
    return convert_to_float8_training(model, module_filter_fn=lambda m, n: "lm_head" not in n)

