"""RIQL: robust IQL for corrupted offline data.  Paper: riql

IQL plus the paper's three changes: observations normalised by the dataset's mean and std; a
K-member Q ensemble whose alpha-quantile (not the min) is the value target and the advantage's Q;
the Huber loss (delta) for Q regression against heavy-tailed targets from corrupted dynamics.
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
    kind: Literal["riql"] = Field("riql", description="trainer: RIQL")
    seed: int = Field(0, ge=0, description="random seed")
    dataset: DatasetConfig = Field(DatasetConfig(), description="offline data")
    corruption: CorruptionConfig = Field(CorruptionConfig(), description="optional data corruption")
    train: OfflineLoop = Field(OfflineLoop(), description="optimisation and evaluation")
    num_q: int = Field(5, ge=2, le=50, description="Q ensemble size K")
    quantile: float = Field(0.25, ge=0, le=1, description="alpha: quantile of the ensemble used as Q target")
    huber_delta: float = Field(1.0, gt=0, description="Huber loss threshold delta of the Q loss")
    normalize_obs: bool = Field(True, description="normalise observations by the dataset mean and std")
    expectile: float = Field(0.7, gt=0, lt=1, description="expectile tau of the value loss")
    beta: float = Field(3.0, ge=0, description="inverse temperature of the advantage weights")
    gamma: float = Field(0.99, ge=0, le=1, description="discount")
    polyak: float = Field(0.005, gt=0, le=1, description="target-network Polyak rate")
    reward_scale: float = Field(1.0, gt=0, description="multiply rewards by this")


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.train.threads)
    data = prepare_data(cfg.dataset, cfg.corruption, normalize_obs=cfg.normalize_obs, reward_scale=cfg.reward_scale,
                        corruption_seed=cfg.seed)
    learner = IQLUpdate(data.spec, cfg.train.hidden, num_q=cfg.num_q, target_reduce="quantile", quantile=cfg.quantile,
                        q_loss="huber", huber_delta=cfg.huber_delta, expectile=cfg.expectile, beta=cfg.beta,
                        gamma=cfg.gamma, polyak=cfg.polyak, lr=cfg.train.lr)
    return train_offline("riql", cfg.train, learner, data, cfg.dataset.env, cfg.seed, run)
