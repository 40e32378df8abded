"""Adaptive defense with a finite set of non-dominated policies.  Paper: nondominated

A single minimax policy is tuned for the worst attack and gives up return when the attack is weak
or absent. The paper instead keeps a small finite class Pi of policies and, at test time, treats
"which policy to deploy in the next episode" as an adversarial bandit over Pi: the attacker may be
anything (none, weak, worst case, changing), and the regret against the best policy of Pi in
hindsight grows sublinearly in the number of episodes T (EXP3: O(sqrt(T K log K))).

Pi should be small (regret grows with K) and lose nothing: a policy that another policy matches or
beats under every attack and strictly beats under one is *dominated* and can be dropped
(`nondominated`, on a matrix of returns per policy and attack).

EXP3 (`Exp3`, rewards scaled to [0, 1]): with weights w_k (initially 1) and exploration gamma,

    p_k = (1 - gamma) w_k / sum_j w_j + gamma / K;     draw k ~ p, observe x in [0, 1];
    w_k <- w_k * exp(gamma * (x / p_k) / K)            (only the drawn arm)                     (1)

`adaptive_returns` runs it for T episodes against one attack, deploying the drawn policy for a whole
episode. Departures: the paper's training-time algorithm that iteratively discovers a near-optimal
non-dominated set is replaced by a fixed family (policies trained against pushing adversaries of
several strengths, rlx.robust.qarl) filtered with `nondominated`; attacks are pushes and physics
changes on CartPole rather than state perturbations on MuJoCo.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["nondominated", "Exp3", "adaptive_returns"]


def nondominated(returns: np.ndarray) -> list[int]:
    """Rows (policies) of `returns` [K, A] not dominated by another row: row j dominates row i when
    returns[j] >= returns[i] on every attack and > on at least one. Identical rows: the first is kept."""
    r = np.asarray(returns, dtype=float)
    keep = []
    for i in range(r.shape[0]):
        dominated = False
        for j in range(r.shape[0]):
            if j == i:
                continue
            ge, gt = bool((r[j] >= r[i]).all()), bool((r[j] > r[i]).any())
            if (ge and gt) or (j < i and bool((r[j] == r[i]).all())):
                dominated = True
                break
        if not dominated:
            keep.append(i)
    return keep


class Exp3:
    """Eq. (1), the adversarial bandit over K arms with rewards in [0, 1]."""

    def __init__(self, k: int, gamma: float, seed: int = 0):
        if k < 1 or not 0 < gamma <= 1:
            raise ValueError(f"Exp3 needs k >= 1 and 0 < gamma <= 1, got k={k}, gamma={gamma}")
        self.k, self.gamma = k, gamma
        self.log_w = np.zeros(k)
        self.rng = np.random.default_rng(seed)

    def probs(self) -> np.ndarray:
        w = np.exp(self.log_w - self.log_w.max())
        return (1 - self.gamma) * w / w.sum() + self.gamma / self.k

    def draw(self) -> int:
        return int(self.rng.choice(self.k, p=self.probs()))

    def update(self, arm: int, reward: float) -> None:
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"Exp3 rewards must lie in [0, 1], got {reward}")
        p = self.probs()[arm]
        self.log_w[arm] += self.gamma * (reward / p) / self.k


def exp3_gamma(k: int, horizon: int) -> float:
    """The standard tuning min(1, sqrt(K ln K / ((e - 1) T)))."""
    return min(1.0, math.sqrt(k * math.log(max(k, 2)) / ((math.e - 1) * horizon)))


def adaptive_returns(play: Callable[[int, int], float], k: int, horizon: int, max_return: float,
                     seed: int = 0, gamma: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Deploy EXP3's choice for `horizon` episodes; `play(arm, episode) -> return` runs one episode under the
    attack. Returns (chosen arms [T], returns [T])."""
    bandit = Exp3(k, gamma if gamma is not None else exp3_gamma(k, horizon), seed)
    arms, rets = np.zeros(horizon, dtype=int), np.zeros(horizon)
    for t in range(horizon):
        arm = bandit.draw()
        ret = float(play(arm, t))
        bandit.update(arm, min(1.0, max(0.0, ret / max_return)))
        arms[t], rets[t] = arm, ret
    return arms, rets
