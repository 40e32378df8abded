"""Difficulty-aligned training pools (papers simplerl, drive): pass rates, the band, the curated task."""

from types import SimpleNamespace

import pytest
import torch

from rlx.config import ConfigError, build_config
from rlx.rollout import SamplingParams
from rlx.sampling.difficulty import DifficultyConfig, DifficultyPool, curate, pass_rates, select_band, top_variance
from rlx.tasks import make_task
from rlx.tasks.config import ArithmeticConfig


def test_pass_rates_hand_values():
    correct = torch.tensor([1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1], dtype=torch.bool)
    assert pass_rates(correct, 4).tolist() == [0.75, 0.0, 1.0]
    with pytest.raises(ValueError, match="S=5"):
        pass_rates(correct, 5)


def test_select_band_is_inclusive():
    rates = torch.tensor([0.0, 0.25, 0.5, 1.0, 0.375])
    assert select_band(rates, 0.25, 0.5).tolist() == [1, 2, 4]
    assert select_band(rates, 0.0, 0.0).tolist() == [0]


def test_config_validation_names_the_field():
    from rlx.train.rlvr_config import Config

    base = {"kind": "rlvr", "model": {"path": "x"}, "task": {"name": "arithmetic"}}
    with pytest.raises(ConfigError, match="difficulty"):
        build_config(Config, {**base, "difficulty": {"candidates": 10, "min_pass": 0.8, "max_pass": 0.2}})
    with pytest.raises(ConfigError, match="difficulty.samples"):
        build_config(Config, {**base, "difficulty": {"candidates": 10, "samples": 0}})
    assert not build_config(Config, base).difficulty.enabled
    with pytest.raises(ConfigError, match="top_variance needs candidates > 0"):
        build_config(Config, {**base, "difficulty": {"top_variance": 1}})
    # off (candidates 0), a band or a retirement rule did nothing, silently
    with pytest.raises(ConfigError, match="difficulty.retire_above = 0.5 needs difficulty.candidates > 0"):
        build_config(Config, {**base, "difficulty": {"retire_above": 0.5}})
    with pytest.raises(ConfigError, match="min_pass = 0.2, difficulty.max_pass = 0.8 needs"):
        build_config(Config, {**base, "difficulty": {"min_pass": 0.2, "max_pass": 0.8}})
    base_rl = {**base, "task": {"name": "arithmetic", "reward": {"source": "self_consistency", "noise": "flip"}}}
    with pytest.raises(ConfigError, match="noise = 'flip' needs source: reference"):
        build_config(Config, base_rl)
    with pytest.raises(ConfigError, match="consistency_min_share needs source: self_consistency"):
        build_config(Config, {**base, "task": {"name": "arithmetic", "reward": {"consistency_min_share": 0.5}}})


class ScriptedEngine:
    """Sample j of a problem is correct iff j < k(problem), k = int(answer) mod (S + 1): known pass rates."""

    def __init__(self, task, problems, samples):
        self.answer = {task.prompt(p): p.answer for p in problems}
        self.samples = samples

    def k(self, answer) -> int:
        return int(answer) % (self.samples + 1)

    def generate(self, prompts, params, seed):
        assert params.n == self.samples
        texts = []
        for p in prompts:
            a = self.answer[p]
            texts += [a if j < self.k(a) else "-99999" for j in range(params.n)]
        return SimpleNamespace(texts=tuple(texts))


def test_curate_keeps_exactly_the_band_and_delegates():
    task = make_task(ArithmeticConfig())
    cfg = DifficultyConfig(candidates=60, samples=4, min_pass=0.25, max_pass=0.75, batch_size=20)
    candidates = task.train_problems(60, seed=-1)  # the draw curate uses for seed 0
    engine = ScriptedEngine(task, candidates, 4)
    pool = curate(task, engine, None, cfg, SamplingParams(), seed=0)
    want = [p for p in candidates if 1 <= engine.k(p.answer) <= 3]
    assert 0 < len(want) < 60 and pool.pool == want
    assert pool.pass_rates.tolist() == [engine.k(p.answer) / 4 for p in want]
    assert len(pool.candidate_rates) == 60 and pool.metrics()["difficulty/pool_size"] == len(want)
    draw = pool.train_problems(50, seed=3)
    assert all(p in want for p in draw) and draw == pool.train_problems(50, seed=3)
    assert draw != pool.train_problems(50, seed=4)
    assert pool.heldout(5) == task.heldout(5) and pool.prompt(want[0]) == task.prompt(want[0])
    assert pool.score(want[0].answer, want[0]).correct


class NoisyEngine(ScriptedEngine):
    """Each prompt's sample j is correct iff j < a count that changes with every call (noisy pass rates)."""

    calls = 0

    def generate(self, prompts, params, seed):
        texts = []
        for p in prompts:
            NoisyEngine.calls += 1
            a = self.answer[p]
            texts += [a if j < NoisyEngine.calls % (params.n + 1) else "-99999" for j in range(params.n)]
        return SimpleNamespace(texts=tuple(texts))


def test_curate_scores_each_problem_of_a_fixed_pool_once():
    """A fixed pool (task.train_pool, or a dataset smaller than `candidates`) repeats problems in the draw.
    Each copy got its own noisy pass rate, so top_variance kept the same problem twice and the band counted
    copies as problems."""
    task = make_task(ArithmeticConfig(train_pool=3))
    problems = task.train_problems(12, seed=-1)
    assert len({p.question for p in problems}) == 3
    engine = NoisyEngine(task, problems, 4)
    pool = curate(task, engine, None, DifficultyConfig(candidates=12, samples=4, top_variance=3), SamplingParams(),
                  seed=0)
    assert len(pool.pool) == len({p.question for p in pool.pool})
    band = curate(task, engine, None, DifficultyConfig(candidates=12, samples=4), SamplingParams(), seed=0)
    assert sorted(p.question for p in band.pool) == sorted({p.question for p in problems})
    assert len(band.candidate_rates) == 3


def test_top_variance_hand_values():
    rates = torch.tensor([0.5, 0.25, 1.0, 0.75, 0.5])  # variances .25 .1875 0 .1875 .25
    everyone = torch.arange(5)
    assert top_variance(rates, everyone, 2).tolist() == [0, 4]
    assert top_variance(rates, everyone, 3).tolist() == [0, 1, 4]  # tie .1875: the earlier candidate
    assert top_variance(rates, torch.tensor([1, 2, 3]), 1).tolist() == [1]  # only within the band
    assert top_variance(rates, everyone, 9).tolist() == [0, 1, 2, 3, 4]
    # p and 1 - p tie exactly although 0.6 * 0.4 and 0.4 * 0.6 differ in float32: the earlier one wins
    assert top_variance(torch.tensor([0.6, 0.4]), torch.arange(2), 1).tolist() == [0]
    assert top_variance(torch.tensor([0.4, 0.6]), torch.arange(2), 1).tolist() == [0]


def test_curate_one_shot_keeps_the_most_uncertain_problem():
    """Paper oneshot: top_variance 1 leaves the single candidate whose pass rate is nearest 1/2."""
    task = make_task(ArithmeticConfig())
    candidates = task.train_problems(60, seed=-1)
    engine = ScriptedEngine(task, candidates, 4)
    pool = curate(task, engine, None, DifficultyConfig(candidates=60, samples=4, top_variance=1, batch_size=20),
                  SamplingParams(), seed=0)
    first_half = next(p for p in candidates if engine.k(p.answer) == 2)  # rate 0.5, the earliest one
    assert pool.pool == [first_half] and pool.pass_rates.tolist() == [0.5]
    assert set(pool.train_problems(8, seed=1)) == {first_half}


def test_curate_empty_band_is_a_clear_error():
    task = make_task(ArithmeticConfig())
    candidates = task.train_problems(10, seed=-1)
    engine = ScriptedEngine(task, candidates, 2)
    engine.k = lambda answer: 0  # nothing is ever solved
    cfg = DifficultyConfig(candidates=10, samples=2, min_pass=0.5)
    with pytest.raises(ConfigError, match=r"difficulty: no candidate .* \[10, 0, 0\]"):
        curate(task, engine, None, cfg, SamplingParams(), seed=0)


def test_pool_is_a_task_wrapper():
    task = make_task(ArithmeticConfig())
    probs = task.train_problems(3, seed=0)
    pool = DifficultyPool(task, probs, torch.ones(3), torch.ones(5))
    assert pool.name == task.name and set(map(id, pool.train_problems(20, seed=0))) <= set(map(id, probs))


def _pool(n=6, **cfg):
    task = make_task(ArithmeticConfig())
    probs = task.train_problems(n, seed=11)
    return DifficultyPool(task, probs, torch.full((n,), 0.5), torch.full((n,), 0.5), DifficultyConfig(**cfg)), probs


def test_hard_focus_retires_the_easiest_first_and_keeps_min_pool():
    pool, p = _pool(retire_above=0.5, retire_every=2, min_pool=4)
    pool.observe([(p[0], 8, 8), (p[1], 6, 8), (p[2], 4, 8), (p[3], 7, 8)])  # rates 1.0, .75, .5, .875
    assert pool.end_step(1) == {"difficulty/active_pool": 6.0}  # not a check step: nothing happens
    pool.observe([(p[1], 2, 8)])  # p1 now 8 / 16 = 0.5: no longer above 0.5
    out = pool.end_step(2)
    # above 0.5: p0 (1.0) and p3 (0.875); room = 6 - 4 = 2 -> both retire, p0 first
    assert out == {"difficulty/active_pool": 4.0} and pool.active.tolist() == [False, True, True, False, True, True]
    assert float(pool.tries.sum()) == 0.0  # counts restart after a check
    assert all(q in (p[1], p[2], p[4], p[5]) for q in pool.train_problems(40, seed=0))
    pool.observe([(p[1], 8, 8), (p[2], 8, 8)])
    assert pool.end_step(4) == {"difficulty/active_pool": 4.0}  # min_pool reached: nothing more retires


def test_hard_focus_respects_room_and_state_round_trip():
    pool, p = _pool(retire_above=0.0, retire_every=1, min_pool=5)
    pool.observe([(p[0], 1, 8), (p[1], 3, 8)])  # both above 0; room for one: the easier (p1) goes
    pool.end_step(1)
    assert pool.active.tolist() == [True, False, True, True, True, True]
    pool.observe([(p[2], 1, 4)])
    twin, _ = _pool(retire_above=0.0, retire_every=1, min_pool=5)
    twin.load_state_dict(pool.state_dict())
    assert twin.train_problems(30, seed=5) == pool.train_problems(30, seed=5)
    assert torch.equal(twin.wins, pool.wins) and torch.equal(twin.tries, pool.tries)


def test_static_pool_never_retires():
    pool, p = _pool()
    pool.observe([(q, 8, 8) for q in p])
    assert pool.end_step(50) == {"difficulty/active_pool": 6.0}


def test_state_from_another_pool_is_refused():
    pool, _ = _pool(retire_above=0.5)
    other, _ = _pool(n=5, retire_above=0.5)
    with pytest.raises(ConfigError, match="differs from the checkpoint"):
        other.load_state_dict(pool.state_dict())


def test_curation_scores_through_safe_score_like_training(caplog):
    """A verifier that raises (or calls sys.exit) on some samples: curation goes on, those samples count as
    wrong, the failures are counted in the run's RewardErrors and each kind's traceback is logged once."""
    import logging
    import sys

    from rlx.rewards.safe import RewardErrors

    task = make_task(ArithmeticConfig())
    candidates = task.train_problems(20, seed=-1)
    engine = ScriptedEngine(task, candidates, 4)
    real = task.score

    def flaky(text, problem):
        if text == "-99999":
            raise ValueError("verifier bug")
        if int(problem.answer) % 7 == 0:
            sys.exit(3)
        return real(text, problem)

    task.score = flaky
    errors = RewardErrors()
    with caplog.at_level(logging.WARNING):
        pool = curate(task, engine, None, DifficultyConfig(candidates=20, samples=4, min_pass=0.0, max_pass=1.0,
                                                           batch_size=20), SamplingParams(), seed=0, errors=errors)
    wrong = sum(4 - engine.k(p.answer) for p in candidates)  # every "-99999" raises first
    exits = sum(engine.k(p.answer) for p in candidates if int(p.answer) % 7 == 0)
    assert exits > 0 and errors.count == wrong + exits and len(errors.seen) == 2
    assert sum("verifier bug" in r.getMessage() for r in caplog.records) == 1
    rates = {id(p): r for p, r in zip(pool.pool, pool.pass_rates.tolist())}
    for p in pool.pool:
        want = 0.0 if int(p.answer) % 7 == 0 else engine.k(p.answer) / 4
        assert rates[id(p)] == want
