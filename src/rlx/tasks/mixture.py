"""Training on several tasks at once, with fixed or online-adapted shares (paper recap).

`MixtureTask` splits each step's n training prompts among K tasks by a multinomial draw with the
current weights w (seeded by the step, so resume is exact), tags every problem with its task, and
dispatches prompting and scoring to that task. Held-out evaluation is the first task's.

**RECAP reweighting** (`recap_weights`). RLVR on one task erodes others; replaying general data
helps only if each objective gets the right share. RECAP moves the share online with short-horizon
signals: saturated objectives (high, flat reward) lose weight, underperforming or volatile ones
gain it. With r_k(t) the fraction of task k's samples at step t judged correct (the verifier's verdict,
or the pseudo-label under `reward.source: self_consistency`; not the shaped reward, so format or
partial-credit terms do not enter), over the last `window` steps (r_bar_k its mean, sigma_k its
standard deviation),

    score_k = (1 - r_bar_k) + sigma_k                 (underperformance + instability)
    w_k     = (1 - floor) softmax(score / T)_k + floor / K

Departure: the paper's exact signals and update rule are not public (we have its abstract); this form
is ours. Tasks never drawn in the window keep a neutral score (r_bar = 0.5, sigma = 0).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from rlx.tasks.base import Score
from rlx.tasks.config import MixtureConfig
from rlx.types import Problem

__all__ = ["MixtureTask", "recap_weights"]


def recap_weights(history: list[list[float | None]], temperature: float, floor: float) -> torch.Tensor:
    """[K] weights from per-step mean rewards history[t][k] (None: task k had no samples at step t)."""
    k = len(history[0])
    scores = []
    for j in range(k):
        xs = torch.tensor([h[j] for h in history if h[j] is not None], dtype=torch.float64)
        if xs.numel() == 0:
            scores.append(0.5)
            continue
        sigma = xs.std(unbiased=False) if xs.numel() > 1 else torch.tensor(0.0, dtype=torch.float64)
        scores.append(float(1 - xs.mean() + sigma))
    soft = torch.softmax(torch.tensor(scores, dtype=torch.float64) / temperature, 0)
    return ((1 - floor) * soft + floor / k).float()


class MixtureTask:
    """The Task protocol over K tasks; problems carry meta['mixture_task'] = their task's index."""

    def __init__(self, cfg: MixtureConfig, tasks: list) -> None:
        self.cfg, self.tasks = cfg, tasks
        self.name = "mixture(" + ",".join(t.name for t in tasks) + ")"
        w = torch.tensor(cfg.weights if cfg.weights is not None else [1.0] * len(tasks), dtype=torch.float32)
        self.weights = w / w.sum()
        self.history: list[list[float | None]] = []
        self._step_rewards: list[list[float]] = [[] for _ in tasks]

    def _of(self, problem: Problem):
        return self.tasks[problem.meta["mixture_task"]]

    def train_problems(self, n: int, seed: int) -> list[Problem]:
        g = torch.Generator().manual_seed(seed)
        counts = torch.bincount(torch.multinomial(self.weights, n, replacement=True, generator=g),
                                minlength=len(self.tasks))
        out = []
        for k, (task, c) in enumerate(zip(self.tasks, counts.tolist())):
            if c:  # each task draws with its own seed, so the tasks' streams are independent
                out += [replace(p, meta={**p.meta, "mixture_task": k})
                        for p in task.train_problems(c, seed=seed * 1009 + k)]
        return out

    def heldout(self, n: int, allow_fewer: bool | None = None) -> list[Problem]:
        """The target's held-out problems, with the target's own default for `allow_fewer` (a dataset task
        gives what its split has)."""
        target = self.tasks[0]
        problems = target.heldout(n) if allow_fewer is None else target.heldout(n, allow_fewer)
        return [replace(p, meta={**p.meta, "mixture_task": 0}) for p in problems]

    def prompt(self, problem: Problem, tokenizer: Any | None = None) -> str:
        return self._of(problem).prompt(problem, tokenizer)

    def reference_completion(self, problem: Problem) -> str:
        return self._of(problem).reference_completion(problem)

    def extract_answer(self, completion: str) -> str | None:
        """The target task's extraction (the protocol gives no problem); `leaf(problem)` gives the task a
        problem came from, with its own answer format and reward settings."""
        return self.tasks[0].extract_answer(completion)

    def leaf(self, problem: Problem):
        """The mixed task `problem` was drawn from."""
        return self._of(problem)

    def score(self, completion: str, problem: Problem) -> Score:
        return self._of(problem).score(completion, problem)

    # -- the step observer protocol of the RLVR loop (like rlx.sampling.difficulty.DifficultyPool) ---
    def observe(self, attempts: list[tuple[Problem, int, int]]) -> None:
        """Record (problem, correct samples, samples) of every group generated this step."""
        for problem, wins, tries in attempts:
            self._step_rewards[problem.meta["mixture_task"]].append(wins / max(tries, 1))

    def end_step(self, step: int) -> dict[str, float]:
        row = [sum(r) / len(r) if r else None for r in self._step_rewards]
        self._step_rewards = [[] for _ in self.tasks]
        self.history = (self.history + [row])[-self.cfg.window:]
        if self.cfg.reweight == "recap":
            self.weights = recap_weights(self.history, self.cfg.temperature, self.cfg.floor)
        out = {f"mixture/weight_{k}": float(w) for k, w in enumerate(self.weights)}
        out.update({f"mixture/accuracy_{k}": v for k, v in enumerate(row) if v is not None})
        return out

    def state_dict(self) -> dict:
        return {"weights": self.weights.clone(), "history": [list(h) for h in self.history]}

    def load_state_dict(self, state: dict) -> None:
        self.weights, self.history = state["weights"].clone(), [list(h) for h in state["history"]]
