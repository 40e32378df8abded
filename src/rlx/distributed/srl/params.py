"""SRL's parameter service on one machine: the trainer pushes versioned weights, policy workers pull.

Paper: srl (the "parameter server" that pushes the trainer's new weights to policy workers).

The weights live in one flat float32 shared-memory array (`multiprocessing.RawArray`) next to a
shared version counter; a lock makes push and pull atomic, so a puller never sees half of version
v and half of v+1. Pulling is cheap when nothing changed: `pull` compares versions before it takes
the lock and copies anything. Only `parameters()` travel; buffers (e.g. histogram bin centres) are
constants fixed at construction.

Usage:
    service = ParameterService(num_params(q_net))      # create before starting workers
    v = service.push(q_net)                            # trainer, after an update: version v
    have = service.pull(local_net, have)               # policy worker: copies only if newer
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.context import BaseContext

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

__all__ = ["ParameterService", "num_params"]


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class ParameterService:
    def __init__(self, size: int, ctx: BaseContext | None = None):
        ctx = ctx or mp.get_context()
        self.size = size
        self._data = ctx.RawArray("f", size)
        self._version = ctx.RawValue("q", -1)  # -1: nothing pushed yet
        self._lock = ctx.Lock()

    @property
    def version(self) -> int:
        return int(self._version.value)

    def push(self, model: torch.nn.Module, version: int | None = None) -> int:
        """Publish `model`'s parameters as the next version (or as `version`, on resume). Returns it."""
        flat = parameters_to_vector([p.detach() for p in model.parameters()]).float().numpy()
        if flat.size != self.size:
            raise ValueError(f"model has {flat.size} parameters, the service holds {self.size}")
        with self._lock:
            np.frombuffer(self._data, dtype=np.float32)[:] = flat
            self._version.value = self.version + 1 if version is None else version
            return int(self._version.value)

    def pull(self, model: torch.nn.Module, have: int) -> int:
        """Copy the newest parameters into `model` if they are newer than version `have`; returns the
        version `model` now holds (`have` when nothing newer was published)."""
        if self.version <= have:
            return have
        with self._lock:
            flat = torch.from_numpy(np.frombuffer(self._data, dtype=np.float32).copy())
            version = int(self._version.value)
        with torch.no_grad():
            vector_to_parameters(flat, list(model.parameters()))
        return version
