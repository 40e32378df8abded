"""The rollout protocol: prompts + sampling params in, a `Generation` out; weights pushed in.

Usage (what the RLVR loop does each step):

    engine = make_engine("hf", model, tokenizer)          # or "vllm" on a GPU
    params = SamplingParams(temperature=1.0, max_new_tokens=8, n=8)
    for step in range(num_steps):
        prompts = [task.prompt(p) for p in task.train_problems(B, seed=step)]
        gen = engine.generate(prompts, params, seed=step_seed(cfg.seed, step))   # N = B * n rows
        ...score gen.texts, compute losses from gen.completion_ids / gen.logprobs, optimizer.step()...
        engine.sync_weights(model)                        # no-op for hf sharing the trainer's module

Seeds: `generate` takes the seed explicitly (never the global RNG), so a resumed run that asks for
step k's rollouts with step k's seed gets the same completions. The same seed, prompts, params
and weights give the same output on the same device.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from pydantic import Field, field_validator

from rlx.config import Section
from rlx.types import Generation

__all__ = ["SamplingParams", "RolloutEngine", "step_seed"]


class SamplingParams(Section):
    """How to sample completions. Logprobs semantics are in docs/rollout.md.

    - temperature 0 is greedy decoding (argmax); its logprobs come from the untempered softmax.
    - temperature > 0 samples from softmax(logits / temperature), truncated by top_k then top_p and
      renormalised; the reported logprob of a sampled token is its log-probability under exactly
      that (truncated, renormalised) distribution. With top_k = 0 and top_p = 1 it is
      log_softmax(logits / temperature), which a trainer recomputes exactly by teacher forcing.
    """

    temperature: float = Field(1.0, ge=0, le=100, description="softmax temperature; 0 = greedy (argmax)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling: keep the smallest set of tokens with mass >= top_p")
    top_k: int = Field(0, ge=0, description="keep only the k most likely tokens; 0 = off")
    max_new_tokens: int = Field(64, ge=1, le=1_000_000, description="most tokens generated per completion")
    stop: list[str] = Field(default_factory=list, description="stop strings: generation ends once one appears")
    n: int = Field(1, ge=1, le=100_000, description="samples per prompt (G); rows of one prompt are contiguous")

    @field_validator("stop")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if any(s == "" for s in v):
            raise ValueError("stop strings must be non-empty")
        return v

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@runtime_checkable
class RolloutEngine(Protocol):
    """Anything that samples completions and can be given new weights."""

    def generate(self, prompts: list[str], params: SamplingParams, seed: int) -> Generation:
        """Each prompt repeated `params.n` times (rows of one prompt contiguous): N = len(prompts) * n.

        Left-padded prompt ids, right-padded completion ids, completion_mask True up to and
        including EOS, logprobs of the sampled tokens (0 on padding), finish reasons, texts.
        """
        ...

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Make the next `generate` use `model`'s current weights."""
        ...


def step_seed(base_seed: int, step: int) -> int:
    """A per-step rollout seed that differs across steps and base seeds (fits in 63 bits).

    step_seed(0, 0) = 0; step_seed(1, 2) = 1 * 1_000_003 + 2 = 1_000_005.
    """
    return (base_seed * 1_000_003 + step) % (2**63 - 1)
