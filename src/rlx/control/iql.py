"""IQL: implicit Q-learning (expectile value, twin Q with Polyak targets, AWR policy).  Paper: iql

Never queries Q at actions outside the dataset: V(s) fits an upper expectile (tau) of
min(Q1, Q2)_target(s, a) over dataset actions, Q fits r + gamma (1 - terminated) V(s'), and the
policy is extracted by advantage-weighted regression, weights exp(beta (Q - V)) clipped at 100.
Works on discrete (categorical policy) and continuous (Gaussian policy) gymnasium tasks; data
comes from `rlx make-dataset` or is built in memory (`dataset.path: null`).
Departures: no reward normalisation by default (`reward_scale`), no cosine policy-lr schedule.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlx.config import Section
from rlx.control.offline import CorruptionConfig, DatasetConfig, IQLUpdate, OfflineLoop, prepare_data, train_offline
from rlx.rundir import RunDir
from rlx.runtime import seed_everything, set_threads

__all__ = ["Config", "run"]


class Config(Section):
    kind: Literal["iql"] = Field("iql", description="trainer: IQL")
    seed: int = Field(0, ge=0, description="random seed (networks, minibatches, evaluation)")
    dataset: DatasetConfig = Field(DatasetConfig(), description="offline data")
    corruption: CorruptionConfig = Field(CorruptionConfig(), description="optional data corruption (paper: riql)")
    train: OfflineLoop = Field(OfflineLoop(), description="optimisation and evaluation")
    expectile: float = Field(0.7, gt=0, lt=1, description="expectile tau of the value loss")
    beta: float = Field(3.0, ge=0, description="inverse temperature of the advantage weights")
    gamma: float = Field(0.99, ge=0, le=1, description="discount")
    polyak: float = Field(0.005, gt=0, le=1, description="target-network Polyak rate")
    reward_scale: float = Field(1.0, gt=0, description="multiply rewards by this")


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.train.threads)
    data = prepare_data(cfg.dataset, cfg.corruption, normalize_obs=False, reward_scale=cfg.reward_scale,
                        corruption_seed=cfg.seed)
    learner = IQLUpdate(data.spec, cfg.train.hidden, num_q=2, target_reduce="min", quantile=0.0, q_loss="mse",
                        huber_delta=1.0, expectile=cfg.expectile, beta=cfg.beta, gamma=cfg.gamma,
                        polyak=cfg.polyak, lr=cfg.train.lr)
    return train_offline("iql", cfg.train, learner, data, cfg.dataset.env, cfg.seed, run)
