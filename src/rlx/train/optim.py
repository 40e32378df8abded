"""Optimizer and learning-rate schedule shared by the trainers."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import Field

from rlx.config import Section

__all__ = ["OptimConfig", "make_optimizer"]


class OptimConfig(Section):
    """AdamW with linear warmup and constant or cosine decay."""

    lr: float = Field(1e-3, gt=0, le=1.0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="decoupled weight decay")
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = Field(
        (0.9, 0.95), description="Adam betas, each in [0, 1)")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon")
    warmup_steps: int = Field(0, ge=0, description="linear warmup steps")
    schedule: Literal["constant", "cosine"] = Field("constant", description="decay after warmup")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine floor as a fraction of lr")
    grad_clip: float = Field(1.0, ge=0, description="max global grad norm; 0 disables clipping")
    fused: bool = Field(True, description="fused AdamW kernel (faster; differs from the loop version at rounding level)")


def make_optimizer(params, cfg: OptimConfig, total_steps: int):
    """(optimizer, scheduler) for `total_steps` optimizer steps."""
    params = list(params)
    # fused AdamW: one kernel for all parameters (3x faster than the per-tensor loop on tiny models)
    fused = cfg.fused and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
                            fused=fused)

    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
