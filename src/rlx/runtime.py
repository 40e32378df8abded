"""Process-level settings every trainer needs: seeds, thread count, device, RNG snapshots."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["seed_everything", "set_threads", "pick_device", "rng_state", "set_rng_state"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_threads(n: int) -> None:
    """Torch intra-op threads. 0 means 1: the small models rlx trains on CPU gain little from more,
    and a second thread makes every small matmul wait badly when another process holds a core
    (measured: 31 ms instead of 20 us). Set it higher for large models on an idle machine."""
    if n <= 0:
        n = 1
    torch.set_num_threads(n)


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda if available else cpu; anything else is passed to torch.device.
    An unknown or unavailable device is a ConfigError (one line, exit 2, no run directory left behind)."""
    from rlx.config import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"config error: model.device = {name!r}: not a torch device (cpu, cuda, cuda:1, auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"config error: model.device = {name!r} asked for but CUDA is not available; "
                          "use device: cpu or auto")
    return dev


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
