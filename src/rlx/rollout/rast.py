"""RAST (paper `rast`): decode a large base model with the logit shift that RL gave a small model.

At every decoding step, with y_<t the tokens so far (prompt + completion) and z(.) next-token logits,

    z_t = z_L(y_<t) + alpha * (z_S^RL(y_<t) - z_S^base(y_<t))                      [N, V]

where L is the large base model, S^base a small base model and S^RL the same small model after RL.
Sampling (temperature, top-k, top-p) and the reported logprobs then apply to z_t exactly as for a
single model (`rlx.rollout.hf.sample_tokens`). alpha = 0 is the large base alone; with L = S^base
and alpha = 1 it is the small RL model. The three models must share the tokenizer; where their
vocabularies differ only by padding rows (as across sizes of one family), the shift applies to the
ids both have and the large model's extra ids get none.

The paper's supporting measurement is the path coverage rate (PCR): teacher-force a model on the
RL model's own greedy completions and count how often its argmax is the token the RL model chose
(`path_coverage`); a high PCR means RL changed the choice at few positions.

    engine = RastEngine(large, tokenizer, small_rl=rl, small_base=base, alpha=1.0)
    gen = engine.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=8), seed=0)

From the command line: `rlx eval LARGE --task arithmetic --rast-rl SMALL_RL --rast-base SMALL_BASE`.
Departure from the paper: nothing is distributed here; the three forwards run one after the other
in one process (each with its own KV cache, `LeanDecoder` where it is exact).
"""

from __future__ import annotations

import torch
from pydantic import Field

from rlx.config import ConfigError, Section
from rlx.rollout.hf import HFEngine, _cache_argument, decoder_for
from rlx.types import Generation

__all__ = ["RastConfig", "RastEngine", "rast_logits", "path_coverage"]


class RastConfig(Section):
    """The small model pair whose RL logit shift is added to the evaluated (large) model."""

    rl: str = Field(description="the small model after RL: HF directory or hub id")
    base: str = Field(description="the same small model before RL: HF directory or hub id")
    alpha: float = Field(1.0, ge=0, le=10, description="strength of the shift (0: the large model alone)")


def rast_logits(large: torch.Tensor, small_rl: torch.Tensor, small_base: torch.Tensor, alpha: float) -> torch.Tensor:
    """z_L + alpha * (z_RL - z_base), in float32.  [N, V_L], [N, V_S], [N, V_S] -> [N, V_L]

    Only the ids all three models have are shifted (vocabularies padded to different sizes; every model
    covers the tokenizer, `RastEngine` checks that).
    """
    out = large.float().clone()
    v = min(large.shape[-1], small_rl.shape[-1], small_base.shape[-1])
    out[..., :v] += alpha * (small_rl[..., :v].float() - small_base[..., :v].float())
    return out


class _RastForward:
    """Three decoders (large, small RL, small base) behind the one-decoder interface HFEngine uses."""

    def __init__(self, large, small_rl, small_base, alpha: float):
        self.parts, self.alpha = (large, small_rl, small_base), alpha

    def prefill(self, ids: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
        return rast_logits(*(d.prefill(ids, mask, n) for d in self.parts), self.alpha)

    def step(self, tokens, positions, key_mask, start: int) -> torch.Tensor:
        return rast_logits(*(d.step(tokens, positions, key_mask, start) for d in self.parts), self.alpha)


class RastEngine(HFEngine):
    """The hf engine decoding from `rast_logits`; `sync_weights` replaces the large model only."""

    def __init__(self, model: torch.nn.Module, tokenizer, *, small_rl: torch.nn.Module, small_base: torch.nn.Module,
                 alpha: float = 1.0, eos_token_ids: list[int] | None = None, fast: bool = True):
        super().__init__(model, tokenizer, eos_token_ids=eos_token_ids, fast=fast)
        if not 0 <= alpha <= 10:
            raise ConfigError(f"config error: rast.alpha = {alpha}: expected a number in [0, 10]")
        need = len(tokenizer)
        for name, m in (("model", model), ("rast.rl", small_rl), ("rast.base", small_base)):
            vocab = m.get_output_embeddings().weight.shape[0]
            if vocab < need:
                raise ConfigError(f"config error: {name}: vocabulary of {vocab} ids is smaller than the tokenizer's "
                                  f"{need}; RAST needs three models that share one tokenizer")
        device = next(model.parameters()).device
        self.small_rl = small_rl.to(device).eval().requires_grad_(False)
        self.small_base = small_base.to(device).eval().requires_grad_(False)
        self.alpha = float(alpha)

    def _forward(self, rows: int, max_len: int, cache_len: int | None = None) -> _RastForward:
        def one(m):
            return decoder_for(m, rows, max_len, self.fast, _cache_argument(m))

        if self.alpha == 0:  # z_L exactly: the small models need not run
            return one(self.model)
        for name, m in (("rast.rl", self.small_rl), ("rast.base", self.small_base)):
            limit = getattr(m.config, "max_position_embeddings", None)
            if limit is not None and max_len > limit:
                raise ConfigError(f"config error: max_new_tokens: prompt + max_new_tokens = {max_len} exceeds {name}'s "
                                  f"max_position_embeddings {limit}")
        return _RastForward(one(self.model), one(self.small_rl), one(self.small_base), self.alpha)


@torch.no_grad()
def path_coverage(model: torch.nn.Module, gen: Generation) -> float:
    """PCR: the fraction of completion tokens of `gen` (e.g. an RL model's greedy outputs) that are
    `model`'s argmax given the same prefix.  Teacher-forced, positions = cumsum(mask) - 1."""
    was_training = model.training
    model.eval()  # no dropout in the argmax
    ids = torch.cat([gen.prompt_ids, gen.completion_ids], dim=1)
    mask = torch.cat([gen.prompt_mask, gen.completion_mask], dim=1).long()
    positions = (mask.cumsum(1) - 1).clamp_min(0)
    t = gen.completion_ids.shape[1]
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=t + 1).logits
    model.train(was_training)
    choice = logits[:, :-1].argmax(-1)  # [N, T]: the position before each completion token predicts it
    hit = (choice == gen.completion_ids) & gen.completion_mask
    return float(hit.sum()) / max(1, int(gen.completion_mask.sum()))
