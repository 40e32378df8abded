"""What a method produces for one Linear layer, and the hook plumbing methods share.

A `LayerQuant` is enough to rebuild the layer's effective weight from integer codes:

    W_hat = (hadamard?( dequant(codes) ) / col_scale[None, :] + B @ A) @ in_proj^T

i.e. codes are of the transformed weight T(W) = (W * col_scale) @ H (H orthonormal Hadamard,
symmetric, so H^T = H), plus an optional high-precision low-rank part B @ A (LQ-LoRA, LR-QAT,
QLLM). Every piece is saved in `quant_codes.safetensors`, so a checkpoint can be verified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from rlx.quant.core import IntSpec, QTensor
from rlx.quant.hadamard import hadamard

__all__ = ["LayerQuant", "find_linears", "group_by_block", "run_hooked", "spec_of", "swap_module", "lm_loss",
           "distill_kl", "distill_loss", "frozen_teacher", "train_lm", "QAT_LOSSES", "LR_SCHEDULES"]

QAT_LOSSES = ("lm", "distill")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class LayerQuant:
    qt: QTensor
    bits: int
    col_scale: torch.Tensor | None = None  # [in] weights were multiplied by this before quantizing
    hadamard: bool = False  # codes live in the Hadamard-rotated input basis
    lr_a: torch.Tensor | None = None  # [r, in] low-rank factor
    lr_b: torch.Tensor | None = None  # [out, r]
    in_proj: torch.Tensor | None = None  # [in, in'] codes act on x @ in_proj (QLLM channel disassembly/assembly)

    def weight(self) -> torch.Tensor:
        """The effective float weight [out, in] this layer computes with."""
        w = self.qt.dequantize()
        if self.hadamard:
            w = hadamard(w)
        if self.col_scale is not None:
            w = w / self.col_scale[None, :]
        if self.lr_a is not None:
            w = w + self.lr_b.float() @ self.lr_a.float()
        if self.in_proj is not None:
            w = w @ self.in_proj.float().T
        return w

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        out = {f"{name}.codes": self.qt.codes.contiguous(), f"{name}.scale": self.qt.scale.contiguous(),
               f"{name}.zero": self.qt.zero.contiguous()}
        if self.qt.g_idx is not None:
            out[f"{name}.g_idx"] = self.qt.g_idx.contiguous()
        if self.col_scale is not None:
            out[f"{name}.col_scale"] = self.col_scale.float().contiguous()
        if self.lr_a is not None:
            out[f"{name}.lr_a"] = self.lr_a.float().contiguous()
            out[f"{name}.lr_b"] = self.lr_b.float().contiguous()
        if self.in_proj is not None:
            out[f"{name}.in_proj"] = self.in_proj.float().contiguous()
        return out

    def meta(self) -> dict:
        return {"bits": self.bits, "group_size": self.qt.group_size, "hadamard": self.hadamard}

    @classmethod
    def from_tensors(cls, name: str, t: dict[str, torch.Tensor], meta: dict) -> "LayerQuant":
        qt = QTensor(t[f"{name}.codes"], t[f"{name}.scale"], t[f"{name}.zero"], meta["group_size"],
                     t.get(f"{name}.g_idx"))
        return cls(qt, meta["bits"], t.get(f"{name}.col_scale"), meta["hadamard"],
                   t.get(f"{name}.lr_a"), t.get(f"{name}.lr_b"), t.get(f"{name}.in_proj"))


def spec_of(bits: int, group_size: int, symmetric: bool, in_features: int) -> IntSpec:
    """IntSpec for a layer: group_size 0 or >= in_features means one scale per output channel."""
    if group_size == 0 or group_size >= in_features:
        return IntSpec(bits=bits, symmetric=symmetric, granularity="channel")
    return IntSpec(bits=bits, symmetric=symmetric, granularity="group", group_size=group_size)


def find_linears(model: nn.Module, skip: list[str]) -> dict[str, nn.Linear]:
    """Every nn.Linear in forward order of registration, minus names containing a `skip` entry."""
    return {n: m for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and not any(s in n for s in skip)}


_BLOCK = re.compile(r"^(.*?\.layers\.\d+)\.")


def group_by_block(names: list[str]) -> list[list[str]]:
    """Group layer names by decoder block (`...layers.N.`), keeping order; others stand alone."""
    groups: list[list[str]] = []
    last = None
    for n in names:
        m = _BLOCK.match(n)
        key = m.group(1) if m else n
        if key != last:
            groups.append([])
            last = key
        groups[-1].append(n)
    return groups


class _StopForward(Exception):
    """Raised by a hook once every observed module has seen its input (ends the forward early)."""


@torch.no_grad()
def run_hooked(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, modules: dict[str, nn.Module],
               fn: Callable[[str, torch.Tensor, int, int], None], batch_size: int = 32,
               stop_early: bool = True) -> None:
    """Forward the calibration set and call fn(name, input [B, T, in], batch_start, batch_end) per module.

    ids, mask: [N, T]. Padding positions are zeroed in the input given to fn (they add nothing to
    second-order statistics); fn gets the batch slice so it can look up per-token weights.
    """
    state: dict[str, tuple[int, int]] = {}
    current_mask: dict[str, torch.Tensor] = {}

    def make_hook(name):
        def hook(mod, inputs):
            x = inputs[0].detach().float()
            m = current_mask["m"].to(x.dtype)
            fn(name, x * m[..., None], *state["b"])
        return hook

    handles = [m.register_forward_pre_hook(make_hook(n)) for n, m in modules.items()]
    called: set[int] = set()
    if stop_early:  # once every observed module has run, the rest of the forward is not needed
        def mark(mod, inputs):
            called.add(id(mod))

        def stop(mod, inputs, output):
            if len(called) == len(modules):
                raise _StopForward

        handles += [m.register_forward_pre_hook(mark) for m in modules.values()]
        handles += [m.register_forward_hook(stop) for m in modules.values()]
    try:
        for s in range(0, ids.shape[0], batch_size):
            e = min(s + batch_size, ids.shape[0])
            state["b"] = (s, e)
            current_mask["m"] = mask[s:e]
            called.clear()
            try:
                model(input_ids=ids[s:e], attention_mask=mask[s:e])
            except _StopForward:
                pass
    finally:
        for h in handles:
            h.remove()


def swap_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the submodule at dotted `name` with `new`."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def lm_loss(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor,
            loss_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over target tokens with loss_mask = 1 (default: every real token)."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    tgt = ids[:, 1:]
    m = (loss_mask if loss_mask is not None else mask)[:, 1:].float()
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none")
    return (ce * m.reshape(-1)).sum() / m.sum().clamp_min(1)


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum_i w_i KL(p_teacher,i || p_student,i) / sum_i w_i over positions i (logits [..., V], weight [...]).

    KL(p || q) = sum_v p_v (log p_v - log q_v), p = softmax(teacher), q = softmax(student); its
    gradient w.r.t. the student logits at position i is w_i (q_i - p_i) / sum w. The teacher is a
    constant (no gradient flows into it).
    """
    dt = torch.promote_types(student_logits.dtype, torch.float32)  # at least fp32 (float64 stays float64)
    log_q = torch.log_softmax(student_logits.to(dt), dim=-1)
    log_p = torch.log_softmax(teacher_logits.detach().to(dt), dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    w = weight.to(dt)
    return (kl * w).sum() / w.sum().clamp_min(1)


def distill_loss(model: nn.Module, teacher: nn.Module, ids: torch.Tensor, mask: torch.Tensor,
                 loss_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean per-token KL(teacher || model) of the next-token distributions, on the same positions
    `lm_loss` scores (the prediction at t of token t+1, where loss_mask (default mask) [t+1] = 1)."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    with torch.no_grad():
        t_logits = teacher(input_ids=ids, attention_mask=mask).logits[:, :-1]
    m = (loss_mask if loss_mask is not None else mask)[:, 1:]
    return distill_kl(logits, t_logits, m)


def frozen_teacher(model: nn.Module) -> nn.Module:
    """A frozen eval-mode copy of `model` (the full-precision teacher for `loss: distill`)."""
    import copy

    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def train_lm(model: nn.Module, params: list[torch.nn.Parameter], calib, steps: int, lr: float,
             batch_size: int, seed: int, loss: str = "lm", teacher: nn.Module | None = None,
             schedule: str = "constant") -> list[float]:
    """A few Adam steps on calibration sequences (QAT / adapter training). Returns the losses.

    calib = (ids, mask) or (ids, mask, loss_mask); with a loss mask (task calibration marks the
    completion tokens) only those tokens are trained on, as in SFT.
    loss = "lm": next-token cross-entropy against the calibration tokens (learns the data);
    loss = "distill": KL(teacher || model) of the next-token distributions at the same positions,
    teacher = the frozen full-precision model, evaluated on the fly (learns to imitate the FP model;
    the calibration tokens are only inputs, their labels are never used).
    schedule = "constant": Adam at `lr` throughout; "cosine": step t (0-based) of T uses
    lr_t = lr * (1 + cos(pi * t / T)) / 2, decaying from lr towards 0 (the usual QAT schedule).
    """
    ids, mask = calib[0], calib[1]
    loss_mask = calib[2] if len(calib) > 2 else None
    if loss not in QAT_LOSSES:
        raise ValueError(f"loss = {loss!r}: expected one of {QAT_LOSSES}")
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"schedule = {schedule!r}: expected one of {LR_SCHEDULES}")
    if loss == "distill" and teacher is None:
        raise ValueError("loss = 'distill' needs a teacher model")
    if steps == 0 or not params:
        return []
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if schedule == "cosine" else None
    g = torch.Generator().manual_seed(seed)
    losses = []
    was = model.training
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, ids.shape[0], (min(batch_size, ids.shape[0]),), generator=g)
        lmask = loss_mask[idx] if loss_mask is not None else None
        if loss == "distill":
            value = distill_loss(model, teacher, ids[idx], mask[idx], lmask)
        else:
            value = lm_loss(model, ids[idx], mask[idx], lmask)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(float(value.detach()))
    model.train(was)
    return losses
