"""Online rollout pruning (paper arrol): generate more candidates than needed, prune them mid-generation.

For each prompt the engine samples M = `candidates` completions. After `at_tokens` tokens it stops,
asks a quality head for each partial rollout's probability of ending correct,

    p_i = sigmoid(w . h_i + b)        h_i: the policy's final (normed) hidden state at the rollout's
                                      last token so far (its EOS, if it already ended)

keeps G = `group_size` of the M per prompt, and decodes only the survivors to the end. A group that is
half right, half wrong has the largest reward variance, which is what a group-relative advantage learns
from, so the survivors are steered towards a predicted success rate of `target`. Two rules (`rule`):

- `diverse` (default, `diverse_keep`): candidates with the same tokens so far will mostly end the
  same way, so they form one cluster. Survivors are picked one at a time, at most one per cluster per
  round: the first from the likeliest cluster, then from the likeliest unused cluster while the
  picked ones' mean p is below `target`, else from the least likely one.
- `extremes` (`balanced_keep`): among the subsets made of the k likeliest candidates plus the G - k
  least likely (k = 0..G), the one whose mean p is closest to `target`. It ignores duplicates: when
  the head ranks a prompt's candidates poorly, it keeps one cluster of identical rollouts and the group
  ties more often than a random choice would (measured: experiments/arrol/results.md).

The head is logistic regression, trained online: after each generation round's survivors are
verified, one Adam step on the binary cross-entropy between p_i and their correctness (one round per RL
step unless dynamic sampling refills). During the first
`warmup_steps` steps the survivors are a uniform random G of M (plain GRPO with G samples, while the
head learns). Pruned rollouts never finish, so the head only ever sees survivors' outcomes.

    cfg = PruneConfig(candidates=16, at_tokens=2)
    pruner = Pruner(cfg, hidden_size=128, group_size=8)
    gen = engine.generate(prompts, params.model_copy(update={"n": 16}), seed=s, prune=pruner.plan(step, seed=s))
    pruner.observe(correct)          # [B*G] verdicts of the survivors, in gen's row order

At test time `top_plan()` keeps the candidates the head rates likeliest, and `kept_p` can weigh their
votes (`rlx.evaluation.vote.weighted_vote`; experiments/arrol/testtime.py).

Departures from the paper: the head reads the last hidden state only (no per-layer features).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from typing import Literal

from pydantic import Field

from rlx.config import Section

__all__ = ["PruneConfig", "balanced_keep", "diverse_keep", "prefix_clusters", "PrunePlan", "Pruner"]


class PruneConfig(Section):
    """Off unless `candidates` > 0: then each prompt starts `candidates` rollouts and keeps group_size."""

    candidates: int = Field(0, ge=0, le=100_000, description="M: rollouts started per prompt (0: off; > group_size)")
    at_tokens: int = Field(2, ge=1, description="prune after this many generated tokens")
    target: float = Field(0.5, ge=0, le=1, description="aim for this predicted success rate among the survivors")
    warmup_steps: int = Field(20, ge=0, description="steps that keep a random G of M while the head learns")
    head_lr: float = Field(1e-2, gt=0, le=10, description="Adam learning rate of the quality head")
    rule: Literal["diverse", "extremes"] = Field("diverse", description="how survivors are chosen (module docstring)")

    @property
    def enabled(self) -> bool:
        return self.candidates > 0


def balanced_keep(p: torch.Tensor, keep: int, target: float = 0.5) -> torch.Tensor:
    """Which `keep` of each row's M candidates survive.  p [B, M] success probabilities -> [B, keep] long.

    For k = 0..keep, S_k = the k largest p plus the keep - k smallest; returns the S_k whose mean p is
    closest to `target` (ties: the smallest k), indices sorted ascending. Example, keep 2, target 0.5:
    p = [0.9, 0.8, 0.1, 0.2] -> k=1: {0.9, 0.1}, mean 0.5 -> [0, 2].
    """
    b, m = p.shape
    if not 0 < keep <= m:
        raise ValueError(f"keep ({keep}) must be in 1..{m}")
    order = p.argsort(dim=1, descending=True, stable=True)  # [B, M] likeliest first
    ps = p.gather(1, order)
    top = torch.cat([ps.new_zeros(b, 1), ps.cumsum(1)], 1)  # [B, M+1] sum of the k largest
    bottom = torch.cat([ps.new_zeros(b, 1), ps.flip(1).cumsum(1)], 1)  # [B, M+1] sum of the j smallest
    k = torch.arange(keep + 1, device=p.device)
    means = (top[:, k] + bottom[:, keep - k]) / keep  # [B, keep+1]
    best = (means - target).abs().argmin(dim=1)  # first minimum: the smallest k
    pos = torch.arange(keep, device=p.device).expand(b, keep)  # [B, keep]: positions in likeliest-first order
    pos = torch.where(pos < best[:, None], pos, pos - keep + m)  # the k first, then the keep - k last
    return order.gather(1, pos).sort(dim=1).values


def diverse_keep(p: torch.Tensor, clusters: torch.Tensor, keep: int, target: float = 0.5) -> torch.Tensor:
    """Which `keep` of each row's M candidates survive, one cluster at a time.  p, clusters [B, M] -> [B, keep]

    Round-robin over the clusters (ids in `clusters`, e.g. identical prefixes) that still have members:
    the first pick is the likeliest cluster; afterwards, while the mean p of the picks is below
    `target` the next pick is the likeliest cluster not used in this round, else the least likely one.
    Within a cluster the lowest index goes first; indices are returned ascending. Example, keep 4:
    p [0.9, 0.9, 0.8, 0.1, 0.1, 0.2], clusters [0, 0, 1, 2, 2, 3] -> picks 0 (c0), 3 (c2: mean 0.9),
    5 (c3: mean 0.5 is not below), 2 (c1: mean 0.4) -> [0, 2, 3, 5].
    """
    b, m = p.shape
    if not 0 < keep <= m:
        raise ValueError(f"keep ({keep}) must be in 1..{m}")
    out = []
    for row_p, row_c in zip(p.tolist(), clusters.tolist()):
        members: dict[int, list[int]] = {}
        for i, c in enumerate(row_c):
            members.setdefault(c, []).append(i)
        cp = {c: sum(row_p[i] for i in idx) / len(idx) for c, idx in members.items()}
        picked: list[int] = []
        total = 0.0
        while len(picked) < keep:
            left = sorted((c for c in members if members[c]), key=lambda c: (-cp[c], c))  # one round, likeliest first
            while left and len(picked) < keep:
                c = left.pop(0) if not picked or total / len(picked) < target else left.pop()
                i = members[c].pop(0)
                picked.append(i)
                total += row_p[i]
        out.append(sorted(picked))
    return torch.tensor(out, dtype=torch.long, device=p.device)


def prefix_clusters(prefixes: torch.Tensor) -> torch.Tensor:
    """Cluster ids per group: rows of one group with identical token prefixes share an id.  [B, M, L] -> [B, M]"""
    return torch.stack([torch.unique(g, dim=0, return_inverse=True)[1] for g in prefixes])


def _group_rows(idx: torch.Tensor, m: int) -> torch.Tensor:
    """Per-group candidate indices [B, G] -> rows of the generation [B*G] (group b's rows start at b*m)."""
    return (idx + torch.arange(idx.shape[0])[:, None] * m).reshape(-1)


@dataclass
class PrunePlan:
    """What `HFEngine.generate(..., prune=plan)` needs: when to prune and which rows to keep.

    `choose(features, prefixes)` gets [B*M, H] features and the [B*M, L] tokens generated so far
    (padding after a row's end; row order of the generation) and returns the [B*G] rows to keep,
    ascending."""

    at_tokens: int
    keep_per_group: int
    choose: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Pruner:
    """The quality head, its optimizer and the features of the last step's survivors."""

    def __init__(self, cfg: PruneConfig, hidden_size: int, group_size: int):
        self.cfg, self.group_size = cfg, group_size
        self.head = torch.nn.Linear(hidden_size, 1)  # zero init: p = 0.5 for everything until it learns
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        self.opt = torch.optim.Adam(self.head.parameters(), lr=cfg.head_lr)
        self._kept_features: torch.Tensor | None = None  # [B*G, H] of the last plan's survivors
        self._kept_p: torch.Tensor | None = None

    def plan(self, step: int, seed: int) -> PrunePlan:
        """The pruning decision for one generate call at RL step `step` (random during warm-up)."""
        m, g = self.cfg.candidates, self.group_size
        warm = step <= self.cfg.warmup_steps

        def choose(features: torch.Tensor, prefixes: torch.Tensor) -> torch.Tensor:
            feats, p = self._score(features)
            b = feats.shape[0] // m
            if warm:
                gen = torch.Generator().manual_seed((seed * 1_000_003 + 0x5EED) % 2**63)  # not the sampler's stream
                idx = torch.rand(b, m, generator=gen).argsort(1)[:, :g].sort(1).values
            elif self.cfg.rule == "extremes":
                idx = balanced_keep(p.view(b, m), g, self.cfg.target)
            else:
                idx = diverse_keep(p.view(b, m), prefix_clusters(prefixes.cpu().view(b, m, -1)), g, self.cfg.target)
            rows = _group_rows(idx, m)
            self._kept_features, self._kept_p = feats[rows], p[rows]
            return rows.to(features.device)

        return PrunePlan(at_tokens=self.cfg.at_tokens, keep_per_group=g, choose=choose)

    def top_plan(self) -> PrunePlan:
        """Test time (paper arrol): keep each prompt's G candidates the head rates likeliest to succeed;
        `kept_p` then holds their predicted success probabilities (e.g. as vote weights)."""
        m, g = self.cfg.candidates, self.group_size

        def choose(features: torch.Tensor, prefixes: torch.Tensor) -> torch.Tensor:
            _, p = self._score(features)
            idx = p.view(-1, m).argsort(dim=1, descending=True, stable=True)[:, :g].sort(dim=1).values
            rows = _group_rows(idx, m)
            self._kept_features, self._kept_p = None, p[rows]
            return rows.to(features.device)

        return PrunePlan(at_tokens=self.cfg.at_tokens, keep_per_group=g, choose=choose)

    @torch.no_grad()
    def _score(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features as float32 on the CPU [B*M, H], the head's success probabilities [B*M])."""
        feats = features.detach().float().cpu()
        return feats, torch.sigmoid(self.head(feats)).squeeze(-1)

    @property
    def kept_p(self) -> torch.Tensor | None:
        """[B*G] predicted success of the rows the last plan kept."""
        return self._kept_p

    def observe(self, correct: torch.Tensor) -> dict[str, float]:
        """One BCE step of the head on the survivors' verdicts [B*G] (bool); returns metrics."""
        if self._kept_features is None:
            return {}
        y = correct.float().cpu()
        if y.shape[0] != self._kept_features.shape[0]:
            raise ValueError(f"observe: {y.shape[0]} verdicts for {self._kept_features.shape[0]} survivors")
        p_before = self._kept_p
        feats = self._kept_features.clone()  # made under the engine's inference_mode; a clone can enter autograd
        logits = self.head(feats).squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self._kept_features = self._kept_p = None
        brier = float(((p_before - y) ** 2).mean())
        return {"prune/head_loss": float(loss.detach()), "prune/head_brier": brier,
                "prune/predicted_success": float(p_before.mean()), "prune/survivor_accuracy": float(y.mean())}

    def state_dict(self) -> dict:
        return {"head": self.head.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.head.load_state_dict(state["head"])
        self.opt.load_state_dict(state["opt"])
