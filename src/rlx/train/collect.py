"""Rollout stage of the RLVR loop: sample prompts, generate G completions each, verify, select.

With dynamic sampling (paper dapo) groups whose rewards all tie carry no group-relative signal;
they are dropped and new prompts are drawn, up to `dynamic_sampling_max_rounds` extra generation rounds.
The result is a `RolloutBatch` of at most B groups (fewer if the budget ran out).
With a `Pruner` (paper arrol) each prompt starts M > G candidates and keeps G after a few tokens.
"""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass, field

import torch

from rlx.rewards.combine import part_means
from rlx.rewards.consistency import self_consistency_rewards
from rlx.rewards.safe import RewardErrors, safe_score
from rlx.rollout.base import SamplingParams
from rlx.sampling.batch import concat_rollouts, take_rows
from rlx.sampling.dynamic import group_rows, informative_groups
from rlx.objectives.config import ObjectiveConfig
from rlx.train.rlvr_config import RolloutConfig
from rlx.types import RolloutBatch

__all__ = ["collect", "Collected", "sampling_params", "score_all"]

log = logging.getLogger("rlx.rlvr")


@dataclass(frozen=True)
class Collected:
    batch: RolloutBatch | None  # None when no group survived selection
    metrics: dict[str, float]
    attempts: list = field(default_factory=list)  # (problem, correct samples, samples) per generated group
    behaviour_logprobs: torch.Tensor | None = None  # [N, T] set when sampled off-policy (rlx.train.ahead)


def score_all(task, texts, problems, workers: int = 1) -> list:
    """[(Score, traceback | None)] for every completion; with workers > 1 the (stateless) verifier runs
    on a thread pool, so slow rewards (sandboxed programs, remote reward models) overlap (paper rollart)."""
    if workers <= 1:
        return [safe_score(task.score, t, p) for t, p in zip(texts, problems)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda tp: safe_score(task.score, *tp), zip(texts, problems)))


def sampling_params(rcfg: RolloutConfig, n: int = 1) -> SamplingParams:
    """The recipe's rollout sampling settings with `n` samples per prompt."""
    return SamplingParams(temperature=rcfg.temperature, top_p=rcfg.top_p, top_k=rcfg.top_k,
                          max_new_tokens=rcfg.max_new_tokens, stop=list(rcfg.stop), n=n)


def collect(engine, task, tokenizer, rcfg: RolloutConfig, ocfg: ObjectiveConfig, seed: int,
            errors: RewardErrors, pruner=None, step: int = 0) -> Collected:
    """One step's rollouts: generate, score (never raising), select; `seed` fixes everything."""
    g = rcfg.group_size
    params = sampling_params(rcfg, n=g if pruner is None else pruner.cfg.candidates)
    prune_metrics: dict[str, float] = {}
    rounds = 1 + (ocfg.dynamic_sampling_max_rounds if ocfg.dynamic_sampling else 0)
    kept: list[RolloutBatch] = []
    all_rewards, all_correct, all_parsed, lengths, truncated = [], [], [], [], []
    all_scores: list = []
    pseudo_correct: list[bool] = []  # self-consistency reward agrees with the verifier (paper spark)
    shares: list[torch.Tensor] = []
    n_groups = zero_var = 0
    attempts: list = []
    for r in range(rounds):
        need = rcfg.prompts_per_step - sum(x.num_sequences for x in kept) // g
        if need <= 0:
            break
        problems = task.train_problems(rcfg.prompts_per_step if r == 0 else need, seed=seed * 101 + r)
        prompts = [task.prompt(p, tokenizer) for p in problems]
        if pruner is None:
            gen = engine.generate(prompts, params, seed=seed * 101 + r)
        else:
            gen = engine.generate(prompts, params, seed=seed * 101 + r, prune=pruner.plan(step, seed=seed * 101 + r))
        scores = []
        for s, err in score_all(task, gen.texts, [problems[i // g] for i in range(len(gen.texts))],
                                rcfg.reward_workers):
            if err is not None and errors.record(err):
                log.warning("reward function failed; the sample scores 0 (logged once per kind):\n%s", err)
            scores.append(s)
        all_scores += scores
        rewards = torch.tensor([s.reward for s in scores], dtype=torch.float32)
        correct = torch.tensor([s.correct for s in scores], dtype=torch.bool)
        parsed = torch.tensor([s.parsed for s in scores], dtype=torch.bool)
        # paper spark: groups whose task rewards self-consistency read no reference; their pseudo-labels also
        # stand in for the verdicts wherever training reads outcomes (pruner, difficulty pool, mixture weights)
        verdict = correct.clone()
        for k, problem in enumerate(problems):
            leaf = task.leaf(problem) if hasattr(task, "leaf") else task
            reward_cfg = getattr(getattr(leaf, "cfg", None), "reward", None)
            if reward_cfg is None or reward_cfg.source != "self_consistency":
                continue
            rows = slice(k * g, (k + 1) * g)
            same = getattr(leaf, "same_answer", operator.eq)  # "46" and "46.0" are one vote
            sc, share = self_consistency_rewards([leaf.extract_answer(t) for t in gen.texts[rows]], g,
                                                 reward_cfg.consistency_min_share, same)
            fmt = torch.tensor([s.parts.get("format", float(s.parsed)) for s in scores[rows]])  # as `combine` pays it
            rewards[rows] = reward_cfg.correct * sc + reward_cfg.format * fmt
            verdict[rows] = sc.bool()
            pseudo_correct += (sc.bool() == correct[rows]).tolist()
            shares.append(share)
        if pruner is not None:  # paper arrol: the head learns from the survivors' verdicts
            prune_metrics = pruner.observe(verdict)
        attempts += [(p, int(c), g) for p, c in zip(problems, verdict.view(-1, g).sum(1).tolist())]
        all_rewards.append(rewards), all_correct.append(correct), all_parsed.append(parsed)
        lengths.append(gen.completion_mask.sum(1).float())
        truncated.append(torch.tensor([f == "length" for f in gen.finish_reasons], dtype=torch.float32))
        groups = rewards.view(-1, g)
        n_groups += groups.shape[0]
        keep = informative_groups(rewards, g, ocfg.zero_var_tol)
        zero_var += groups.shape[0] - keep.numel()  # tied groups (no group-relative signal), with or without dapo
        if ocfg.dynamic_sampling:
            rows = group_rows(keep[:need], g)
        else:
            rows = torch.arange(rewards.shape[0])
        if rows.numel():
            n = rewards.shape[0]
            batch = RolloutBatch(
                prompt_ids=gen.prompt_ids, prompt_mask=gen.prompt_mask, completion_ids=gen.completion_ids,
                response_mask=gen.completion_mask, rollout_logprobs=gen.logprobs, rewards=rewards, correct=correct,
                group_index=torch.arange(n) // g, group_size=g, texts=gen.texts, finish_reasons=gen.finish_reasons)
            kept.append(batch if rows.numel() == n else take_rows(batch, rows))

    all_r = torch.cat(all_rewards)
    metrics = {
        "rollout/reward_mean": all_r.mean().item(),
        "rollout/accuracy": torch.cat(all_correct).float().mean().item(),
        "rollout/format_rate": torch.cat(all_parsed).float().mean().item(),
        "rollout/response_len": torch.cat(lengths).mean().item(),
        "rollout/truncated_frac": torch.cat(truncated).mean().item(),
        "rollout/groups_generated": float(n_groups),
        "rollout/zero_variance_groups": float(zero_var),
        **part_means(all_scores),
        **errors.metrics(),
        **prune_metrics,
    }
    if pseudo_correct:
        metrics["rollout/pseudo_label_agreement"] = sum(pseudo_correct) / len(pseudo_correct)
        metrics["rollout/majority_share"] = torch.cat(shares).mean().item()
    if not kept:
        metrics["rollout/groups_kept"] = 0.0
        return Collected(None, metrics, attempts)
    batch = concat_rollouts(kept, tokenizer.pad_token_id) if len(kept) > 1 else kept[0]
    metrics["rollout/groups_kept"] = float(batch.num_sequences // g)
    return Collected(batch, metrics, attempts)
