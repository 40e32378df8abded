"""Critique fine-tuning on one problem (paper cft): learn to judge solutions instead of imitating them.

CFT builds its data from a single problem: the model samples many diverse solutions, a teacher
critiques each one, and the model is fine-tuned to produce the critique given (problem, solution).
Nothing in the loss asks it to solve anything; the claim is that judging solutions of one problem
"unleashes" the solving ability a pretrained model already has, on par with one-shot RL for a
fraction of the compute.

Here (`train.cft` of an SFT recipe):

    candidates  `samples` completions of each of `problems` training problems (the task's training draw:
                with `task.train_pool: 1` the same problem one-shot SFT and RL use), sampled at
                `temperature` from the starting model; duplicates kept (their frequency is the
                model's own distribution)
    teacher     the task's verifier: the critique of candidate c is `critique_text`:
                "{VERDICT_RIGHT}" if c is correct, else "{VERDICT_WRONG} <reference answer>"
    input       prompt(problem) + c + SEPARATOR        target: the critique (+ EOS)

Departure: the paper's teacher is a strong LLM writing step-by-step critiques; ours only states the
verdict and the right answer, and our models are 1M-parameter arithmetic models with no latent
reasoning to unleash. The dataset is built once from the starting model and kept in the
checkpoint, so a resumed run trains on exactly the same critiques.
"""

from __future__ import annotations

import torch
from pydantic import Field

from rlx.config import Section
from rlx.rewards.safe import safe_score
from rlx.rollout.base import SamplingParams
from rlx.types import Problem

__all__ = ["CFTConfig", "critique_text", "build_critiques", "SEPARATOR"]

SEPARATOR = "|"
VERDICT_RIGHT = "ok"
VERDICT_WRONG = "no"


class CFTConfig(Section):
    problems: int = Field(0, ge=0, description="paper cft: problems whose sampled solutions are critiqued (0 = off)")
    samples: int = Field(64, ge=1, le=4096, description="candidate solutions sampled per problem")
    temperature: float = Field(1.0, gt=0, le=10, description="sampling temperature of the candidates")
    max_new_tokens: int = Field(8, ge=1, description="candidate length limit")

    @property
    def enabled(self) -> bool:
        return self.problems > 0


def critique_text(correct: bool, reference: str) -> str:
    """The teacher's critique of one candidate: the verdict, and the right answer when it is wrong."""
    return VERDICT_RIGHT if correct else f"{VERDICT_WRONG} {reference}"


@torch.no_grad()
def build_critiques(engine, task, tokenizer, cfg: CFTConfig, seed: int) -> tuple[list[tuple[str, str]], dict]:
    """[(critique prompt, critique)] for every sampled candidate, and statistics of the candidates."""
    problems: list[Problem] = task.train_problems(cfg.problems, seed=1_000_000)
    prompts = [task.prompt(p, tokenizer) for p in problems]
    params = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, n=cfg.samples)
    gen = engine.generate(prompts, params, seed=seed)
    rows, right, distinct = [], 0, set()
    for i, text in enumerate(gen.texts):
        p = problems[i // cfg.samples]
        correct = safe_score(task.score, text, p)[0].correct  # a failing verifier: a wrong candidate
        right += correct
        distinct.add((i // cfg.samples, text))
        rows.append((prompts[i // cfg.samples] + text + SEPARATOR, critique_text(correct, task.reference_completion(p))))
    stats = {"cft/candidates": float(len(rows)), "cft/candidates_correct": right / len(rows),
             "cft/distinct_candidates": float(len(distinct))}
    return rows, stats
