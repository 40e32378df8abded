"""Evaluate a policy on held-out problems: greedy accuracy and unbiased pass@k.

    result = evaluate(engine, task, problems, EvalConfig(n=500, samples=8), tokenizer, seed=0)
    result.metrics  # {"eval/accuracy": 0.41, "eval/pass@1": ..., "eval/pass@8": ...}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from rlx.config import ConfigError
from rlx.evaluation.config import EvalConfig
from rlx.evaluation.passk import pass_at_k_array, powers_of_two
from rlx.rewards.safe import RewardErrors, safe_score
from rlx.rollout.base import SamplingParams
from rlx.types import Problem

log = logging.getLogger(__name__)

__all__ = ["EvalResult", "evaluate", "write_passk_counts"]


@dataclass(frozen=True)
class EvalResult:
    metrics: dict[str, float]  # eval/accuracy, eval/format_rate, eval/pass@k ...
    greedy_correct: np.ndarray  # [problems] bool
    sample_correct: np.ndarray | None  # [problems] int, correct samples out of cfg.samples
    completions: list[str]  # greedy completions, for inspection


def _generate_scored(engine, task, tokenizer, problems: list[Problem], params: SamplingParams, seed: int,
                     batch_size: int, errors: RewardErrors):
    correct, parsed, texts = [], [], []
    prompts = [task.prompt(p, tokenizer) for p in problems]
    for start in range(0, len(problems), batch_size):
        gen = engine.generate(prompts[start:start + batch_size], params, seed=seed + start)
        batch = problems[start:start + batch_size]
        for i, text in enumerate(gen.texts):
            s, err = safe_score(task.score, text, batch[i // params.n])
            if err is not None and errors.record(err):
                log.warning("verifier failed during evaluation; the sample counts as wrong (logged once per "
                            "kind):\n%s", err)
            correct.append(s.correct)
            parsed.append(s.parsed)
            texts.append(text)
    return np.array(correct, dtype=bool), np.array(parsed, dtype=bool), texts


def evaluate(engine, task, problems: list[Problem], cfg: EvalConfig, tokenizer, seed: int = 0) -> EvalResult:
    if not problems:  # means of nothing were NaN metrics with exit code 0
        raise ConfigError("config error: task: no held-out problems to evaluate (the source holds none: raise "
                          "task.heldout_fraction, or give the dataset a task.heldout_split)")
    stop = list(cfg.stop or [])
    greedy = SamplingParams(temperature=0.0, max_new_tokens=cfg.max_new_tokens, n=1, stop=stop)
    errors = RewardErrors()
    correct, parsed, texts = _generate_scored(engine, task, tokenizer, problems, greedy, seed, cfg.batch_size, errors)
    metrics = {"eval/accuracy": float(correct.mean()), "eval/format_rate": float(parsed.mean())}
    counts = None
    if cfg.samples > 0:
        params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                                max_new_tokens=cfg.max_new_tokens, n=cfg.samples, stop=stop)
        per_call = max(1, cfg.batch_size // cfg.samples)
        s_correct, _, _ = _generate_scored(engine, task, tokenizer, problems, params, seed + 1, per_call, errors)
        counts = s_correct.reshape(len(problems), cfg.samples).sum(axis=1)
        ks = powers_of_two(cfg.samples)
        scores = pass_at_k_array(cfg.samples, counts, ks).mean(axis=1)
        metrics.update({f"eval/pass@{k}": float(v) for k, v in zip(ks, scores)})
    if errors.count:
        metrics["eval/verifier_errors"] = float(errors.count)
    return EvalResult(metrics, correct, counts, texts)


def write_passk_counts(result: EvalResult, samples: int, path) -> None:
    """Per-problem correct counts for pass@k intervals over problems (`rlx compare` reads them)."""
    if result.sample_correct is None:
        return
    from rlx.rundir import atomic_write_json

    atomic_write_json(path, {"n": int(samples), "c": [int(c) for c in result.sample_correct]})
