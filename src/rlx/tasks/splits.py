"""Contamination-free evaluation sets: difficulty ladders and a three-level generalisation split.

Papers: `randcalc` (clean synthetic held-out sets at chosen difficulty), `seedbench` (three-level
hierarchy: in-distribution, out-of-distribution, new composition).

Every set here is the held-out side of the hash split (`rlx.tasks.heldout`) of some arithmetic
config, and the split depends only on the question, so no problem in any of these sets can ever
be drawn by `train_problems` of any arithmetic config with the same `heldout_fraction`. The sets
are fixed (drawn with the held-out seed) and are scored with the training task's `score` (the
verifier only needs `Problem.answer`).

    sets = evaluation_sets(train_cfg, n=200)          # {"in_distribution": [...], "harder": [...], ...}
    task = make_task(train_cfg)
    acc = {k: mean(task.score(gen(task.prompt(p)), p).correct for p in ps) for k, ps in sets.items()}
"""

from __future__ import annotations

from typing import Callable

from rlx.config import ConfigError
from rlx.tasks.arithmetic import ArithmeticTask
from rlx.tasks.config import ArithmeticConfig
from rlx.types import Problem

__all__ = ["heldout_set", "difficulty_levels", "generalization_split", "evaluation_sets", "unseen_composition"]


def heldout_set(cfg: ArithmeticConfig, n: int, keep: Callable[[Problem], bool] | None = None,
                allow_fewer: bool = False) -> list[Problem]:
    """`n` held-out problems of `cfg`, optionally only those for which `keep(problem)` is true.

    If fewer exist: all of them with `allow_fewer`, else a ConfigError.
    """
    task = ArithmeticTask(cfg)
    if keep is None:
        return task.heldout(n, allow_fewer=allow_fewer)
    out: list[Problem] = []
    m = n
    while len(out) < n:
        m *= 2
        pool = task.heldout(m, allow_fewer=True)  # extends the same fixed sequence
        out = [p for p in pool if keep(p)][:n]
        if len(pool) < m or m > 256 * n:  # space exhausted, or the filter almost never passes
            break
    if len(out) < n and not allow_fewer:
        raise ConfigError(f"config error: task: only {len(out)} of {n} held-out problems pass the filter "
                          "(raise digits or operands)")
    return out


def difficulty_levels(cfg: ArithmeticConfig, n: int, operands: tuple[int, ...] = (2, 3, 4),
                      digits: tuple[int, ...] = (1, 2, 3)) -> dict[str, list[Problem]]:
    """Held-out sets at each (operand count, digit count): keys like "ops3_dig2" (paper `randcalc`).

    Other knobs (operators, parentheses, answers) are taken from `cfg`. A level whose held-out space
    is smaller than `n` (e.g. 2 one-digit operands) holds all of its held-out problems.
    """
    out = {}
    for k in operands:
        for d in digits:
            level = cfg.model_copy(update=dict(min_operands=k, max_operands=k, min_digits=d, max_digits=d))
            out[f"ops{k}_dig{d}"] = heldout_set(ArithmeticConfig.model_validate(level.model_dump()), n, allow_fewer=True)
    return out


def unseen_composition(cfg: ArithmeticConfig) -> tuple[ArithmeticConfig, Callable[[Problem], bool], str]:
    """The config, filter and description of the "new composition" level for training config `cfg`.

    First choice: an operator missing from `cfg.operators` (in the order / - * +), and every problem
    must use it (for "/", answers may be fractions: exact integer quotients are too rare; "a/b" that
    is already reduced is left out, since its answer would copy the question). Else, if training had no parentheses: parenthesised expressions only. Else: a new
    surface format (spaces around operators).
    """
    base = cfg.model_dump()
    missing = [op for op in "/-*+" if op not in cfg.operators]
    if missing:
        op = missing[0]
        upd = {"operators": cfg.operators + op, "must_use": op, "min_operands": max(2, cfg.min_operands),
               "max_operands": max(2, cfg.max_operands)}
        if op == "/":  # exact integer quotients are too rare to fill a set; answers become fractions
            upd["integer_answers"] = False
        new = ArithmeticConfig.model_validate({**base, **upd})

        def keep(p: Problem) -> bool:  # uses the new operator, and the answer is not the question copied
            return p.answer != p.question.replace(" ", "")

        return new, keep, f"operator {op!r} unseen in training"
    if cfg.paren_prob == 0.0:
        new = ArithmeticConfig.model_validate({**base, "paren_prob": 1.0, "min_operands": max(3, cfg.min_operands),
                                               "max_operands": max(3, cfg.max_operands)})
        return new, (lambda p: "(" in p.question), "parentheses unseen in training"
    if not cfg.spaced:
        new = ArithmeticConfig.model_validate({**base, "spaced": True})
        return new, (lambda p: True), "spaced format unseen in training"
    raise ConfigError("config error: task: no unseen operator, parentheses or format is left for a "
                      "new-composition split (training already uses all of them)")


def generalization_split(cfg: ArithmeticConfig, n: int) -> dict[str, list[Problem]]:
    """Three levels (paper `seedbench`): in_distribution, harder, new_composition.

    in_distribution: `cfg`'s own held-out set. harder: one more operand and one more digit than the
    training maximum (every problem is longer than any training problem). new_composition: see
    `unseen_composition`; this level may hold fewer than `n` problems when its space is small
    (about 300 for the default config), so check the lengths.
    """
    k, d = cfg.max_operands + 1, min(cfg.max_digits + 1, 18)
    harder = ArithmeticConfig.model_validate({**cfg.model_dump(), "min_operands": k, "max_operands": k,
                                              "min_digits": d, "max_digits": d})
    new, keep, _ = unseen_composition(cfg)
    return {
        "in_distribution": heldout_set(cfg, n),
        "harder": heldout_set(harder, n),
        "new_composition": heldout_set(new, n, keep, allow_fewer=True),
    }


def evaluation_sets(cfg: ArithmeticConfig, n: int, levels: bool = False) -> dict[str, list[Problem]]:
    """Named problem lists for evaluation: the generalisation split, plus the difficulty ladder if asked."""
    out = generalization_split(cfg, n)
    if levels:
        out.update(difficulty_levels(cfg, n))
    return out
