"""Rollout stage: reward failures are scored 0 and logged once; dynamic sampling's guarantees."""

import dataclasses
import logging

import torch

from rlx.objectives.config import ObjectiveConfig
from rlx.rewards.safe import RewardErrors
from rlx.tasks import ArithmeticConfig, make_task
from rlx.train.collect import collect
from rlx.train.rlvr_config import RolloutConfig
from rlx.models import char_tokenizer
from rlx.types import Generation

TOK = char_tokenizer()


class ScriptedEngine:
    """Returns, for each prompt's G rows, answers from a script: 'right', 'wrong' or 'mixed'."""

    def __init__(self, task, script):
        self.task, self.script, self.calls, self.count = task, script, 0, 0

    def generate(self, prompts, params, seed):
        texts = []
        for i, _ in enumerate(prompts):
            kind = self.script[self.count % len(self.script)]
            self.count += 1
            for j in range(params.n):
                right = kind == "right" or (kind == "mixed" and j % 2 == 0)
                texts.append("RIGHT" if right else "WRONG")
        self.calls += 1
        n = len(texts)
        return Generation(torch.ones(n, 2, dtype=torch.long), torch.ones(n, 2, dtype=torch.bool),
                          torch.ones(n, 3, dtype=torch.long), torch.ones(n, 3, dtype=torch.bool),
                          torch.zeros(n, 3), ("stop",) * n, tuple(texts))

    def sync_weights(self, model):
        pass


class OracleTask:
    """Arithmetic problems; 'RIGHT' scores 1, 'WRONG' scores 0, and one chosen call raises."""

    def __init__(self, raise_on_call=None):
        self.inner = make_task(ArithmeticConfig())
        self.raise_on_call, self.calls = raise_on_call, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def score(self, completion, problem):
        self.calls += 1
        if self.calls == self.raise_on_call:
            raise ZeroDivisionError("user reward bug")
        s = self.inner.score(problem.answer if completion == "RIGHT" else "x", problem)
        return s


def test_reward_function_that_raises_scores_zero_and_is_logged_once(caplog):
    task = OracleTask(raise_on_call=3)
    engine = ScriptedEngine(task, ["right"])
    errors = RewardErrors()
    with caplog.at_level(logging.WARNING, logger="rlx.rlvr"):
        out = collect(engine, task, TOK, RolloutConfig(prompts_per_step=2, group_size=4), ObjectiveConfig(), 0, errors)
    assert out.batch.rewards.tolist() == [1, 1, 0, 1, 1, 1, 1, 1]  # the 3rd sample failed -> 0
    assert out.metrics["rollout/reward_errors"] == 1.0
    assert out.metrics["rollout/part/correct"] == 7 / 8  # the failed sample has no parts: it counts 0
    assert len(caplog.records) == 1 and "ZeroDivisionError: user reward bug" in caplog.records[0].getMessage()
    # a second failure of the same kind is counted but not logged again
    task.calls, task.raise_on_call = 0, 1
    with caplog.at_level(logging.WARNING, logger="rlx.rlvr"):
        out = collect(engine, task, TOK, RolloutConfig(prompts_per_step=2, group_size=4), ObjectiveConfig(), 1, errors)
    assert out.metrics["rollout/reward_errors"] == 2.0 and len(caplog.records) == 1


def test_tied_groups_are_counted_without_dynamic_sampling():
    task = OracleTask()
    engine = ScriptedEngine(task, ["right", "mixed", "wrong"])
    out = collect(engine, task, TOK, RolloutConfig(prompts_per_step=3, group_size=4), ObjectiveConfig(), 0,
                  RewardErrors())
    assert out.batch.num_sequences == 12  # nothing dropped
    assert out.metrics["rollout/zero_variance_groups"] == 2 and out.metrics["rollout/groups_generated"] == 3


def test_dynamic_sampling_drops_tied_groups_and_refills():
    task = OracleTask()
    # round 1: right, wrong, mixed, mixed -> 2 kept; round 2 (2 prompts): right, wrong -> 0 kept;
    # round 3: mixed, mixed -> the batch is full
    engine = ScriptedEngine(task, ["right", "wrong", "mixed", "mixed"])
    ocfg = ObjectiveConfig(dynamic_sampling=True, dynamic_sampling_max_rounds=3)
    out = collect(engine, task, TOK, RolloutConfig(prompts_per_step=4, group_size=4), ocfg, 0, RewardErrors())
    groups = out.batch.rewards.view(-1, 4)
    assert groups.shape[0] == 4
    assert bool((groups.max(1).values > groups.min(1).values).all())  # never a zero-variance group
    assert out.metrics["rollout/zero_variance_groups"] == 4 and engine.calls == 3


def test_dynamic_sampling_respects_its_budget():
    task = OracleTask()
    engine = ScriptedEngine(task, ["right"])  # every group ties: nothing can be kept
    ocfg = ObjectiveConfig(dynamic_sampling=True, dynamic_sampling_max_rounds=2)
    out = collect(engine, task, TOK, RolloutConfig(prompts_per_step=3, group_size=2), ocfg, 0, RewardErrors())
    assert out.batch is None and engine.calls == 3  # 1 round + 2 refill rounds, then it stops
    assert out.metrics["rollout/groups_kept"] == 0.0


def test_non_binary_rewards_with_small_spread_are_kept():
    ocfg = ObjectiveConfig(dynamic_sampling=True, zero_var_tol=1e-6)
    rewards = torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5001, 0.5]])
    keep = (rewards.max(1).values - rewards.min(1).values) > ocfg.zero_var_tol
    assert keep.tolist() == [False, True]


class AnswerEngine(ScriptedEngine):
    """Prompt 0's G rows: right, right, right + 1, nothing; prompt 1's: right + 1, right + 1, right, nothing."""

    def generate(self, prompts, params, seed):
        out = super().generate(prompts, params, seed)
        texts = []
        for i, p in enumerate(prompts):
            q = next(x for x in self.problems if self.task.prompt(x, TOK) == p)
            right, wrong = q.answer, str(int(q.answer) + 1)
            row = [right, right, wrong, "?"] if i % 2 == 0 else [wrong, wrong, right, "?"]
            texts += [row[j % 4] for j in range(params.n)]
        return dataclasses.replace(out, texts=tuple(texts))


def test_self_consistency_rewards_never_read_the_reference():
    task = make_task(ArithmeticConfig(reward={"source": "self_consistency", "format": 0.5}))
    engine = AnswerEngine(task, ["right"])
    engine.problems = task.train_problems(2, seed=0)
    out = collect(engine, task, TOK, RolloutConfig(prompts_per_step=2, group_size=4), ObjectiveConfig(), 0,
                  RewardErrors())
    # the majority answer scores 1 + 0.5 format, right or wrong; the minority 0.5; "?" (unparsed) only the format
    # term, which pays a well-formed plain answer line as on the reference path (`combine`), not "parsed"
    assert out.batch.rewards.tolist() == [1.5, 1.5, 0.5, 0.5] * 2
    assert out.metrics["rollout/accuracy"] == 3 / 8  # the verifier still measures
    assert out.metrics["rollout/pseudo_label_agreement"] == 5 / 8  # prompt 1's wrong majority disagrees
    assert out.metrics["rollout/majority_share"] == 0.5


class FirstProblemBug(OracleTask):
    """Raises on every right answer to the first problem it ever scores (deterministic under threads)."""

    def score(self, completion, problem):
        if completion == "RIGHT" and problem.id == self.bad_id:
            raise ZeroDivisionError("user reward bug")
        return super().score(completion, problem)


def test_reward_workers_give_the_same_batch_and_count_failures():
    outs = []
    for workers in (1, 4):
        task = FirstProblemBug()
        task.bad_id = task.train_problems(1, seed=0)[0].id  # collect draws with seed * 101 + round = 0
        errors = RewardErrors()
        out = collect(ScriptedEngine(task, ["mixed"]), task, TOK,
                      RolloutConfig(prompts_per_step=2, group_size=4, reward_workers=workers), ObjectiveConfig(), 0,
                      errors)
        outs.append((out.batch.rewards.tolist(), out.metrics["rollout/reward_errors"]))
    assert outs[0] == outs[1] == ([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0], 2.0)


def test_under_self_consistency_the_outcomes_training_reads_are_pseudo_labels():
    """The difficulty pool, the mixture weights and the pruner read `attempts` / verdicts: with
    reward.source self_consistency those are the pseudo-labels, never the verifier's verdicts."""
    task = make_task(ArithmeticConfig(reward={"source": "self_consistency"}))
    engine = AnswerEngine(task, ["right"])
    engine.problems = task.train_problems(2, seed=0)
    out = collect(engine, task, TOK, RolloutConfig(prompts_per_step=2, group_size=4), ObjectiveConfig(), 0,
                  RewardErrors())
    # each group: two samples agree with the majority answer (right for prompt 0, wrong for prompt 1)
    assert [c for _, c, _ in out.attempts] == [2, 2]
    assert out.metrics["rollout/accuracy"] == 3 / 8  # the verifier's verdicts are still reported


def test_a_mixture_reads_each_tasks_own_reward_source():
    """reward.source set on the second task of a mixture used to be ignored (collect read the mixture's)."""
    from rlx.tasks.config import MixtureConfig

    mix = make_task(MixtureConfig(tasks=[ArithmeticConfig(), ArithmeticConfig(reward={"source": "self_consistency"})],
                                  weights=[0.0, 1.0]))
    engine = AnswerEngine(mix, ["right"])
    engine.problems = mix.train_problems(2, seed=0)
    out = collect(engine, mix, TOK, RolloutConfig(prompts_per_step=2, group_size=4), ObjectiveConfig(), 0,
                  RewardErrors())
    assert out.batch.rewards.tolist() == [1.0, 1.0, 0.0, 0.0] * 2  # majority answer, right or wrong
    assert "rollout/pseudo_label_agreement" in out.metrics


class TagsEngine(ScriptedEngine):
    """Every row answers the right number, once well formed and three times with two answer tags."""

    def generate(self, prompts, params, seed):
        out = super().generate(prompts, params, seed)
        texts = []
        for p in prompts:
            a = next(x for x in self.problems if self.task.prompt(x, TOK) == p).answer
            twice = f"<answer>{a}</answer> and again <answer>{a}</answer>"
            texts += [f"<answer>{a}</answer>" if j == 0 else twice for j in range(params.n)]
        return dataclasses.replace(out, texts=tuple(texts))


def test_self_consistency_pays_the_format_term_as_the_reference_path_does():
    """Two answer tags parse (the first is read) but are malformed: the reference path pays no format for them,
    the self-consistency path paid reward.format for anything parsed."""
    task = make_task(ArithmeticConfig(answer_format="tags", reward={"source": "self_consistency", "format": 0.5}))
    engine = TagsEngine(task, ["right"])
    engine.problems = task.train_problems(1, seed=0)
    out = collect(engine, task, TOK, RolloutConfig(prompts_per_step=1, group_size=4), ObjectiveConfig(), 0,
                  RewardErrors())
    assert out.batch.rewards.tolist() == [1.5, 1.0, 1.0, 1.0]
