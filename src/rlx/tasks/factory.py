"""make_task: build the task a config names (the one place that maps config -> task class)."""

from __future__ import annotations

from rlx.tasks.arithmetic import ArithmeticTask
from rlx.tasks.common import VerifiableTask
from rlx.tasks.config import (ArithmeticConfig, CodeConfig, CountdownConfig, MathConfig, MixtureConfig, SSLConfig,
                              TaskBase, VideoConfig)
from rlx.tasks.config import RLPTConfig
from rlx.tasks.config import StealthConfig
from rlx.tasks.countdown import CountdownTask
from rlx.tasks.mathdata import MathTask

__all__ = ["make_task"]


def make_task(cfg: TaskBase) -> VerifiableTask:
    """The task for `cfg`; raises ConfigError for unusable settings (missing data, bad template)."""
    if isinstance(cfg, ArithmeticConfig):
        return ArithmeticTask(cfg)
    if isinstance(cfg, CountdownConfig):
        return CountdownTask(cfg)
    if isinstance(cfg, CodeConfig):  # before MathConfig: a CodeConfig is one
        from rlx.tasks.code import CodeTask

        return CodeTask(cfg)
    if isinstance(cfg, MathConfig):
        return MathTask(cfg)
    if isinstance(cfg, MixtureConfig):
        from rlx.tasks.mixture import MixtureTask

        return MixtureTask(cfg, [make_task(c) for c in cfg.tasks])
    if isinstance(cfg, SSLConfig):
        from rlx.tasks.ssl import SSLTask

        return SSLTask(cfg)
    if isinstance(cfg, StealthConfig):
        from rlx.tasks.stealth import StealthTask

        return StealthTask(cfg)
    if isinstance(cfg, VideoConfig):
        from rlx.tasks.video import VideoTask

        return VideoTask(cfg)
    if isinstance(cfg, RLPTConfig):
        from rlx.tasks.rlpt import RLPTTask

        return RLPTTask(cfg)
    raise TypeError(f"no task for config type {type(cfg).__name__}")
