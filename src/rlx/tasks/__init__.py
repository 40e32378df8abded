"""Verifiable tasks: seeded problem sources with difficulty knobs, prompts, answer extraction, scoring.

    from rlx.tasks import ArithmeticConfig, make_task
    task = make_task(ArithmeticConfig(max_operands=3))
    problems = task.train_problems(64, seed=0)      # never overlaps task.heldout(n)

Names are imported lazily so that `rlx.rewards` (which needs `rlx.tasks.base.Score`) and
`rlx.tasks` (which needs the verifiers) can import each other's submodules in any order.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Task": "rlx.tasks.base", "Score": "rlx.tasks.base",
    "TaskBase": "rlx.tasks.config", "ArithmeticConfig": "rlx.tasks.config", "CountdownConfig": "rlx.tasks.config",
    "MathConfig": "rlx.tasks.config", "SSLConfig": "rlx.tasks.config", "CodeConfig": "rlx.tasks.config", "CodeTask": "rlx.tasks.code", "MixtureConfig": "rlx.tasks.config", "MixtureTask": "rlx.tasks.mixture", "SSLTask": "rlx.tasks.ssl", "StealthConfig": "rlx.tasks.config", "StealthTask": "rlx.tasks.stealth", "VideoConfig": "rlx.tasks.config", "VideoTask": "rlx.tasks.video", "TaskConfig": "rlx.tasks.config", "load_task_config": "rlx.tasks.config",
    "RLPTConfig": "rlx.tasks.config", "RLPTTask": "rlx.tasks.rlpt",
    "make_task": "rlx.tasks.factory", "VerifiableTask": "rlx.tasks.common",
    "ArithmeticTask": "rlx.tasks.arithmetic", "CountdownTask": "rlx.tasks.countdown", "MathTask": "rlx.tasks.mathdata",
    "problem_id": "rlx.tasks.heldout", "is_heldout": "rlx.tasks.heldout",
    "generalization_split": "rlx.tasks.splits", "difficulty_levels": "rlx.tasks.splits",
    "evaluation_sets": "rlx.tasks.splits",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rlx.tasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
