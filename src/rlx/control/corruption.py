"""Data corruption for offline RL datasets, as in the RIQL study.  Paper: riql

A fraction `fraction` of the transitions (chosen uniformly without replacement: exactly
round(fraction * N) rows) has one element corrupted at scale `scale` (epsilon in the paper):

    random
      states      s  <- s  + lam * std(s),   lam ~ U[-scale, scale]^D
      actions     a  <- a  + lam * std(a) clipped to the action box (continuous);
                  a uniformly random *other* action (discrete)
      rewards     r  <- U[-30 scale, 30 scale]
      dynamics    s' <- s' + lam * std(s')
    adversarial (needs a critic `q_fn(obs) -> Q [B, A]` (discrete) / `q_fn(obs, act) -> [B]`)
      states      s  <- argmin over the L_inf ball of radius scale * std(s) of Q(s, a)   (projected gradient)
      actions     a  <- argmin_a Q(s, a) (discrete) / projected gradient in the ball (continuous)
      rewards     r  <- -scale * r
      dynamics    s' <- argmin over the ball around s' of V(s') = max_a Q(s', a) (discrete) / Q(s', a)

Usage:
    data2, rows = corrupt(data, "dynamics", "random", fraction=0.3, scale=1.0, seed=0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

__all__ = ["CorruptionKind", "CorruptionMode", "corrupt", "pick_rows"]

CorruptionKind = Literal["states", "actions", "rewards", "dynamics"]
CorruptionMode = Literal["random", "adversarial"]


def pick_rows(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Exactly round(fraction * n) distinct row indices, sorted."""
    return np.sort(rng.choice(n, size=int(round(fraction * n)), replace=False))


def _ball_descent(x: torch.Tensor, radius: torch.Tensor, objective: Callable[[torch.Tensor], torch.Tensor],
                  steps: int = 10) -> torch.Tensor:
    """Minimise objective(x') summed over rows for x' in the L_inf ball |x' - x| <= radius (signed-gradient PGD)."""
    x0 = x.detach()
    xa = x0.clone()
    step = radius / max(1, steps // 2)
    for _ in range(steps):
        xa.requires_grad_(True)
        (g,) = torch.autograd.grad(objective(xa).sum(), xa)
        xa = (xa.detach() - step * g.sign()).clamp(x0 - radius, x0 + radius)
    return xa.detach()


def corrupt(data: dict[str, np.ndarray], kind: CorruptionKind, mode: CorruptionMode, fraction: float, scale: float,
            seed: int = 0, q_fn: Callable | None = None, num_actions: int = 0,
            action_low: float = -1.0, action_high: float = 1.0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Return a corrupted copy of `data` (D4RL keys) and the corrupted row indices.

    `num_actions > 0` marks a discrete dataset. Adversarial states/actions/dynamics need `q_fn`."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction = {fraction}: must be in [0, 1]")
    if scale < 0:
        raise ValueError(f"scale = {scale}: must be >= 0")
    rng = np.random.default_rng(seed)
    out = {k: v.copy() for k, v in data.items()}
    n = len(data["rewards"])
    rows = pick_rows(n, fraction, rng)
    discrete = num_actions > 0
    if mode == "adversarial" and kind != "rewards" and q_fn is None:
        raise ValueError(f"adversarial {kind} corruption needs q_fn")

    def noise_like(x: np.ndarray) -> np.ndarray:
        std = x.std(0, keepdims=True)
        return rng.uniform(-scale, scale, size=(len(rows),) + x.shape[1:]) * std

    def v_of(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return q_fn(obs).max(1).values if discrete else q_fn(obs, act)

    if kind == "rewards":
        if mode == "random":
            out["rewards"][rows] = rng.uniform(-30 * scale, 30 * scale, size=len(rows))
        else:
            out["rewards"][rows] = -scale * data["rewards"][rows]
    elif kind == "actions" and discrete:
        a = data["actions"][rows]
        if mode == "random":
            shift = rng.integers(1, num_actions, size=len(rows))  # never 0: always another action
            out["actions"][rows] = (a + shift) % num_actions
        else:
            with torch.no_grad():
                q = q_fn(torch.as_tensor(data["observations"][rows]))
            out["actions"][rows] = q.argmin(1).numpy()
    elif kind == "actions":
        a = data["actions"][rows]
        if mode == "random":
            new = a + noise_like(data["actions"])
        else:
            radius = torch.as_tensor(scale * data["actions"].std(0, keepdims=True), dtype=torch.float32)
            obs = torch.as_tensor(data["observations"][rows])
            new = _ball_descent(torch.as_tensor(a), radius, lambda x: q_fn(obs, x)).numpy()
        out["actions"][rows] = np.clip(new, action_low, action_high).astype(data["actions"].dtype)
    else:
        key = "observations" if kind == "states" else "next_observations"
        x = data[key]
        if mode == "random":
            out[key][rows] = (x[rows] + noise_like(x)).astype(x.dtype)
        else:
            radius = torch.as_tensor(scale * x.std(0, keepdims=True), dtype=torch.float32)
            act = torch.as_tensor(data["actions"][rows])
            if kind == "states" and discrete:
                idx = act.long().unsqueeze(1)
                objective = lambda s: q_fn(s).gather(1, idx).squeeze(1)  # noqa: E731
            else:
                objective = lambda s: v_of(s, act)  # noqa: E731
            out[key][rows] = _ball_descent(torch.as_tensor(x[rows]), radius, objective).numpy().astype(x.dtype)
    return out, rows
