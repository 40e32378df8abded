"""Rollout engines behind one small protocol (`RolloutEngine`): hf (CPU/GPU) and vllm (GPU, lazy).

    engine = make_engine("hf", model, tokenizer)
    gen = engine.generate(["12+34="], SamplingParams(n=8, max_new_tokens=8), seed=0)
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from rlx.config import ConfigError
from rlx.rollout.base import RolloutEngine, SamplingParams, step_seed
from rlx.rollout.hf import HFEngine
from rlx.rollout.rast import RastConfig, RastEngine

__all__ = ["RolloutEngine", "SamplingParams", "HFEngine", "RastConfig", "RastEngine", "make_engine", "step_seed"]


def make_engine(name: Literal["hf", "vllm"], model: torch.nn.Module, tokenizer, **kwargs: Any) -> RolloutEngine:
    """Build a rollout engine. `kwargs` go to the engine (HFEngine: eos_token_ids; VLLMEngine:
    gpu_memory_utilization, dtype, max_model_len, enforce_eager, ...)."""
    if name == "hf":
        return HFEngine(model, tokenizer, **kwargs)
    if name == "vllm":
        from rlx.rollout.vllm import VLLMEngine

        return VLLMEngine(model, tokenizer, **kwargs)
    raise ConfigError(f"config error: rollout.engine = {name!r}: expected one of 'hf', 'vllm'")
