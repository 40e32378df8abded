"""Rollout stage of the RLVR loop: sample prompts, generate G completions each, verify, select.

With dynamic sampling (paper dapo) groups whose rewards all tie carry no group-relative signal;
they are dropped and new prompts are drawn, up to `dynamic_sampling_max_rounds` extra generation rounds.
The result is a `RolloutBatch` of at most B groups (fewer if the budget ran out).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from rlx.rewards.safe import RewardErrors, safe_score
from rlx.rollout.base import SamplingParams
from rlx.sampling.dynamic import group_rows, informative_groups
from rlx.objectives.config import ObjectiveConfig
from rlx.train.rlvr_config import RolloutConfig
from rlx.types import Generation, RolloutBatch

__all__ = ["collect", "concat_generations", "Collected"]

log = logging.getLogger("rlx.rlvr")


@dataclass(frozen=True)
class Collected:
    batch: RolloutBatch | None  # None when no group survived selection
    metrics: dict[str, float]


def _pad_cat(tensors: list[torch.Tensor], value, left: bool) -> torch.Tensor:
    width = max(t.shape[1] for t in tensors)
    out = []
    for t in tensors:
        pad = width - t.shape[1]
        if pad:
            fill = torch.full((t.shape[0], pad), value, dtype=t.dtype, device=t.device)
            t = torch.cat([fill, t] if left else [t, fill], dim=1)
        out.append(t)
    return torch.cat(out, dim=0)


def concat_generations(gens: list[Generation], pad_id: int) -> Generation:
    """Stack generations of different widths (prompts left-padded, completions right-padded)."""
    if len(gens) == 1:
        return gens[0]
    return Generation(
        prompt_ids=_pad_cat([g.prompt_ids for g in gens], pad_id, left=True),
        prompt_mask=_pad_cat([g.prompt_mask for g in gens], False, left=True),
        completion_ids=_pad_cat([g.completion_ids for g in gens], pad_id, left=False),
        completion_mask=_pad_cat([g.completion_mask for g in gens], False, left=False),
        logprobs=_pad_cat([g.logprobs for g in gens], 0.0, left=False),
        finish_reasons=sum((g.finish_reasons for g in gens), ()),
        texts=sum((g.texts for g in gens), ()),
    )


def _rows(gen: Generation, idx: torch.Tensor) -> Generation:
    sel = idx.tolist()
    return Generation(gen.prompt_ids[idx], gen.prompt_mask[idx], gen.completion_ids[idx], gen.completion_mask[idx],
                      gen.logprobs[idx], tuple(gen.finish_reasons[i] for i in sel), tuple(gen.texts[i] for i in sel))


def collect(engine, task, tokenizer, rcfg: RolloutConfig, ocfg: ObjectiveConfig, seed: int,
            errors: RewardErrors) -> Collected:
    """One step's rollouts: generate, score (never raising), select; `seed` fixes everything."""
    g = rcfg.group_size
    params = SamplingParams(temperature=rcfg.temperature, top_p=rcfg.top_p, top_k=rcfg.top_k,
                            max_new_tokens=rcfg.max_new_tokens, stop=list(rcfg.stop), n=g)
    rounds = 1 + (ocfg.dynamic_sampling_max_rounds if ocfg.dynamic_sampling else 0)
    kept_gens, kept_rewards, kept_correct, kept_parsed = [], [], [], []
    all_rewards, all_correct, all_parsed, lengths, truncated = [], [], [], [], []
    n_groups = zero_var = 0
    for r in range(rounds):
        need = rcfg.prompts_per_step - sum(x.shape[0] for x in kept_rewards) // g
        if need <= 0:
            break
        problems = task.train_problems(rcfg.prompts_per_step if r == 0 else need, seed=seed * 101 + r)
        gen = engine.generate([task.prompt(p, tokenizer) for p in problems], params, seed=seed * 101 + r)
        scores = []
        for i, text in enumerate(gen.texts):
            s, err = safe_score(task.score, text, problems[i // g])
            if err is not None and errors.record(err):
                log.warning("reward function failed; the sample scores 0 (logged once per kind):\n%s", err)
            scores.append(s)
        rewards = torch.tensor([s.reward for s in scores], dtype=torch.float32)
        correct = torch.tensor([s.correct for s in scores], dtype=torch.bool)
        parsed = torch.tensor([s.parsed for s in scores], dtype=torch.bool)
        all_rewards.append(rewards), all_correct.append(correct), all_parsed.append(parsed)
        lengths.append(gen.completion_mask.sum(1).float())
        truncated.append(torch.tensor([f == "length" for f in gen.finish_reasons], dtype=torch.float32))
        groups = rewards.view(-1, g)
        n_groups += groups.shape[0]
        if ocfg.dynamic_sampling:
            keep = informative_groups(rewards, g, ocfg.zero_var_tol)
            zero_var += groups.shape[0] - keep.numel()
            rows = group_rows(keep[:need], g)
        else:
            rows = torch.arange(rewards.shape[0])
        if rows.numel():
            kept_gens.append(_rows(gen, rows))
            kept_rewards.append(rewards[rows]), kept_correct.append(correct[rows]), kept_parsed.append(parsed[rows])

    all_r = torch.cat(all_rewards)
    metrics = {
        "rollout/reward_mean": all_r.mean().item(),
        "rollout/accuracy": torch.cat(all_correct).float().mean().item(),
        "rollout/format_rate": torch.cat(all_parsed).float().mean().item(),
        "rollout/response_len": torch.cat(lengths).mean().item(),
        "rollout/truncated_frac": torch.cat(truncated).mean().item(),
        "rollout/groups_generated": float(n_groups),
        "rollout/zero_variance_groups": float(zero_var),
        **errors.metrics(),
    }
    if not kept_gens:
        metrics["rollout/groups_kept"] = 0.0
        return Collected(None, metrics)
    gen = concat_generations(kept_gens, tokenizer.pad_token_id)
    n = gen.completion_ids.shape[0]
    metrics["rollout/groups_kept"] = float(n // g)
    batch = RolloutBatch(
        prompt_ids=gen.prompt_ids, prompt_mask=gen.prompt_mask, completion_ids=gen.completion_ids,
        response_mask=gen.completion_mask, rollout_logprobs=gen.logprobs, rewards=torch.cat(kept_rewards),
        correct=torch.cat(kept_correct), group_index=torch.arange(n) // g, group_size=g,
        texts=gen.texts, finish_reasons=gen.finish_reasons,
    )
    return Collected(batch, metrics)
