"""Behaviour cloning baseline for the offline experiments: fit pi(a | s) to every dataset action.

The reference point of the IQL paper (paper: iql): on mixed-quality data BC copies the average
behaviour, while IQL's advantage weights pick out the better actions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlx.config import Section
from rlx.control.offline import BCUpdate, CorruptionConfig, DatasetConfig, OfflineLoop, prepare_data, train_offline
from rlx.rundir import RunDir
from rlx.runtime import seed_everything, set_threads

__all__ = ["Config", "run"]


class Config(Section):
    kind: Literal["bc"] = Field("bc", description="trainer: behaviour cloning")
    seed: int = Field(0, ge=0, description="random seed")
    dataset: DatasetConfig = Field(DatasetConfig(), description="offline data")
    corruption: CorruptionConfig = Field(CorruptionConfig(), description="optional data corruption")
    train: OfflineLoop = Field(OfflineLoop(), description="optimisation and evaluation")


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.train.threads)
    data = prepare_data(cfg.dataset, cfg.corruption, normalize_obs=False, reward_scale=1.0, corruption_seed=cfg.seed)
    learner = BCUpdate(data.spec, cfg.train.hidden, cfg.train.lr)
    return train_offline("bc", cfg.train, learner, data, cfg.dataset.env, cfg.seed, run)
