"""Training-state checkpoints: weights, optimizer, scheduler, RNG, step, loop extras.

A checkpoint directory (written atomically by `RunDir.save_checkpoint`) holds
    model/               a Hugging Face directory (`AutoModelForCausalLM.from_pretrained` loads it;
                         for LoRA runs, the peft adapter directory)
    weights.safetensors  the exact trainable module state (what resume loads)
    trainer_state.pt     optimizer, scheduler, RNG states, step and loop extras
Resuming restores every piece, so the next losses match an uninterrupted run bitwise on CPU.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from rlx.config import ConfigError
from rlx.runtime import rng_state, set_rng_state

__all__ = ["write_training_state", "read_training_state", "RunClock"]


class RunClock:
    """Training seconds over every invocation of a run: a resumed run continues from the seconds its checkpoint
    holds (`extra["train_seconds"]`), so its `time/train_seconds` is the whole run's, as in the control loops.
    The time between the last checkpoint and a kill is lost with the work it did."""

    def __init__(self, before: float = 0.0):
        self.before, self._t0 = float(before), time.perf_counter()

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self._t0


def write_training_state(d: Path, model, tokenizer, optimizer, scheduler, step: int, extra: dict[str, Any]) -> None:
    model.save_pretrained(d / "model", safe_serialization=True)
    tokenizer.save_pretrained(d / "model")
    save_model(model, str(d / "weights.safetensors"))
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "rng": rng_state(),
            "extra": extra,
        },
        d / "trainer_state.pt",
    )


def read_training_state(d: Path, model, optimizer, scheduler) -> tuple[int, dict[str, Any]]:
    """Load weights into `model` and state into optimizer/scheduler/RNG; returns (step, extra)."""
    try:
        missing, unexpected = load_model(model, str(d / "weights.safetensors"), strict=False)
        # onto the CPU first: GPU tensors saved on another machine (or cuda:N absent here) would not load, and the
        # optimizer / modules / batches move what they restore to their own device
        state = torch.load(d / "trainer_state.pt", weights_only=False, map_location="cpu")
    except Exception as e:
        raise ConfigError(f"error: checkpoint {d} is unreadable ({type(e).__name__}); delete it to resume "
                          "from the one before") from None
    if missing or unexpected:
        raise ConfigError(f"error: checkpoint {d} does not match the model (missing {list(missing)[:3]}, "
                          f"unexpected {list(unexpected)[:3]})")
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return int(state["step"]), state["extra"]
