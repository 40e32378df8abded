"""One-step off-policy rollouts (`rollout.staleness: 1`): sample the next step's batch while this one trains.

    main thread:   | update on B_t: θ_t -> θ_{t+1}   | wait | sync: behaviour <- θ_{t+1} |
    rollout thread:| sample B_{t+1} with behaviour = θ_t  |

Generation and the update are both single-threaded on a small model, so on a machine with two cores
they run side by side and a step costs about max(rollout, update) instead of their sum
(`bench/rlvr_vs_trl.py --overlap`). The price is one step of staleness: B_{t+1} is sampled by θ_t but
trains θ_{t+1}, so π_old in the clipped ratio π_θ / π_old is the *sampling* policy, the usual PPO
treatment of off-policy data (the search-agent trainer's async mode also offers a decoupled, proximal
π_old; here the plain one). The first step of a run is sampled on-policy in the foreground.

The sampling weights live in a copy of the policy (`behaviour`) that only the rollout thread reads
while a batch is in flight; the trainer copies its weights into it between batches, never during one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import torch

from rlx.train.collect import Collected
from rlx.train.logprobs import sequence_logprobs
from rlx.train.rlvr_config import RolloutConfig
from rlx.types import RolloutBatch

__all__ = ["RolloutAhead", "behaviour_logprobs", "copy_weights", "engine_logprobs_exact"]


@torch.no_grad()
def copy_weights(dst: torch.nn.Module, src: torch.nn.Module) -> None:
    """dst's parameters and buffers <- src's (same architecture, e.g. a deepcopy)."""
    for get in (lambda m: list(m.parameters()), lambda m: list(m.buffers())):
        d, s = get(dst), get(src)
        if len(d) != len(s):
            raise ValueError(f"copy_weights: {len(d)} tensors in the copy, {len(s)} in the source")
        if d:
            torch._foreach_copy_(d, s)  # one call for all tensors


def engine_logprobs_exact(rcfg: RolloutConfig, dtype: torch.dtype = torch.float32) -> bool:
    """True when the engine's log-probs of the sampled tokens are what the trainer computes (log_softmax of
    logits / temperature): no top-k / top-p truncation, and float32 weights (the hf engine's then equal a
    teacher-forced forward at the same temperature to ~4e-6, tests/rollout/test_hf.py; in bf16 the decode
    and the batched forward round differently, 0.03-0.04 per token)."""
    return rcfg.top_p == 1.0 and rcfg.top_k == 0 and dtype == torch.float32


def behaviour_logprobs(model: torch.nn.Module, batch: RolloutBatch, forward: bool,
                       temperature: float = 1.0) -> torch.Tensor:
    """log π_behaviour(token) for every completion token, as the trainer computes log-probs.  -> [N, T]

    forward=False takes the engine's own log-probs (exact when `engine_logprobs_exact`); forward=True runs
    one no-grad trainer forward of the sampling weights at `temperature`: needed when the engine's are
    truncated, and whenever the engine-vs-trainer mismatch must stay measurable (TIS, mismatch metrics).
    """
    if not forward:
        return batch.rollout_logprobs.clone()  # a normal tensor (the engine's are inference-mode tensors)
    with torch.no_grad():
        return sequence_logprobs(model, batch.prompt_ids, batch.prompt_mask, batch.completion_ids,
                                 batch.attention_mask, group_size=batch.group_size, temperature=temperature)[0]


class RolloutAhead:
    """A single background thread that produces step t+1's `Collected` from the `behaviour` weights."""

    def __init__(self, model: torch.nn.Module, forward: bool, temperature: float = 1.0):
        """forward: compute π_old with a trainer forward of the sampling weights at `temperature`
        (see `behaviour_logprobs`)."""
        self.behaviour = copy.deepcopy(model).eval().requires_grad_(False)
        self.forward, self.temperature = forward, temperature
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlx-rollout")
        self._future: Future | None = None

    def submit(self, produce: Callable[[int], Collected], step: int) -> None:
        """Start sampling step `step`'s batch with the current behaviour weights."""
        if self._future is not None:
            raise RuntimeError("RolloutAhead.submit: the previous batch was not collected")
        self._future = self._pool.submit(self._produce, produce, step)

    def _produce(self, produce: Callable[[int], Collected], step: int) -> Collected:
        t0 = time.perf_counter()
        collected = produce(step)
        if collected.batch is not None:
            collected = replace(collected,
                                behaviour_logprobs=behaviour_logprobs(self.behaviour, collected.batch, self.forward,
                                                                     self.temperature))
        return replace(collected, metrics={**collected.metrics, "time/rollout_background": time.perf_counter() - t0})

    def result(self) -> Collected:
        """The submitted batch (re-raises whatever the rollout thread raised)."""
        future, self._future = self._future, None
        if future is None:
            raise RuntimeError("RolloutAhead.result: nothing was submitted")
        return future.result()

    def sync(self, model: torch.nn.Module) -> None:
        """behaviour <- model; only between batches (the rollout thread reads the weights while sampling)."""
        if self._future is not None:
            raise RuntimeError("RolloutAhead.sync: a batch is in flight")
        copy_weights(self.behaviour, model)

    def close(self) -> None:
        """Wait for a batch in flight (a thread cannot be killed) and stop the thread."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._future = None
