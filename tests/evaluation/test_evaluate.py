"""evaluate(): which sampling settings reach the engine, and how greedy and sampled verdicts are counted."""

import torch

from rlx.evaluation.config import EvalConfig
from rlx.evaluation.evaluate import evaluate
from rlx.tasks import make_task
from rlx.tasks.config import ArithmeticConfig
from rlx.train.rlvr import Config, eval_settings
from rlx.types import Generation


class Recording:
    """An engine that answers every prompt correctly on its first sample only, and records its params."""

    def __init__(self, task, problems):
        self.calls, self.answers = [], {task.prompt(p): p.answer for p in problems}

    def generate(self, prompts, params, seed):
        self.calls.append(params)
        texts = [self.answers[p] if j == 0 else "x" for p in prompts for j in range(params.n)]
        n = len(texts)
        z = torch.zeros(n, 1, dtype=torch.long)
        return Generation(z, z.bool(), z, z.bool(), z.float(), ("stop",) * n, tuple(texts))


def test_stop_top_p_top_k_reach_the_engine_and_counts_are_right():
    task = make_task(ArithmeticConfig())
    problems = task.heldout(6)
    engine = Recording(task, problems)
    cfg = EvalConfig(n=6, samples=4, temperature=0.7, top_p=0.9, top_k=5, stop=["\n\n"], batch_size=8)
    result = evaluate(engine, task, problems, cfg, tokenizer=None, seed=0)
    greedy, sampled = engine.calls[0], engine.calls[1]
    assert greedy.temperature == 0 and greedy.stop == ["\n\n"] and greedy.n == 1
    assert (sampled.temperature, sampled.top_p, sampled.top_k, sampled.stop, sampled.n) == (0.7, 0.9, 5, ["\n\n"], 4)
    assert result.metrics["eval/accuracy"] == 1.0
    assert result.sample_correct.tolist() == [1] * 6  # one correct of 4 each
    assert result.metrics["eval/pass@1"] == 0.25 and result.metrics["eval/pass@4"] == 1.0
    evaluate(engine, task, problems, EvalConfig(n=6), tokenizer=None)
    assert engine.calls[-1].stop == []  # unset outside training: no stop strings


def test_rlvr_evaluation_stops_where_the_rollouts_stop_unless_told_otherwise():
    base = {"kind": "rlvr", "model": {"path": "assets/arith-base"}, "task": {"name": "arithmetic"},
            "rollout": {"stop": ["</answer>"]}}
    assert eval_settings(Config.model_validate(base)).stop == ["</answer>"]
    assert eval_settings(Config.model_validate({**base, "eval": {"stop": []}})).stop == []
    assert eval_settings(Config.model_validate({**base, "eval": {"stop": ["\n"]}})).stop == ["\n"]


def test_rlx_eval_reports_the_problems_it_evaluated(tiny_model_dir, tmp_path, capsys):
    """The bundled math sample holds fewer held-out problems than --n asks for: the summary counts the
    problems evaluated (it used to echo --n)."""
    import json

    from rlx.cli import main
    from rlx.tasks import MathConfig

    have = len(make_task(MathConfig()).heldout(500))
    assert 0 < have < 500
    out = tmp_path / "ev"
    assert main(["eval", str(tiny_model_dir), "--task", "math", "--n", "500", "--samples", "0", "--max-new-tokens", "4",
                 "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["eval/problems"] == have
    assert f"({have} held-out problems)" in " ".join(capsys.readouterr().out.split())


def test_a_failing_verifier_is_counted_not_hidden_and_not_fatal(monkeypatch, caplog):
    """Task.score used to turn any verifier exception into a silent wrong answer (no traceback, not counted).
    Now it raises; evaluation and the RLVR loop score through safe_score, which counts and logs it once."""
    from rlx.rewards.safe import safe_score
    from rlx.tasks.arithmetic import ArithmeticTask

    task = make_task(ArithmeticConfig())
    problems = task.heldout(6)
    bad = problems[2].id
    real = ArithmeticTask._verify

    def flaky(self, answer, problem):
        if problem.id == bad:
            raise OSError(24, "Too many open files")
        return real(self, answer, problem)

    monkeypatch.setattr(ArithmeticTask, "_verify", flaky)
    score, err = safe_score(task.score, problems[2].answer, problems[2])
    assert not score.correct and "OSError: [Errno 24]" in err
    result = evaluate(Recording(task, problems), task, problems, EvalConfig(n=6), tokenizer=None)
    assert result.metrics["eval/verifier_errors"] == 1.0 and result.greedy_correct.tolist() == [1, 1, 0, 1, 1, 1]
    assert "Too many open files" in caplog.text


def test_no_problems_is_a_config_error_and_eval_cli_errors_read_right(tiny_model_dir, capsys):
    """An empty held-out set gave NaN metrics with exit code 0; an unknown task key printed
    'task.unknown key ...'; --temperature 0 was refused for a greedy-only run that does not use it."""
    import pytest

    from rlx.cli import main
    from rlx.config import ConfigError

    with pytest.raises(ConfigError, match="no held-out problems"):
        evaluate(Recording(make_task(ArithmeticConfig()), []), None, [], EvalConfig(n=4), tokenizer=None)
    base = ["eval", str(tiny_model_dir), "--n", "4"]
    assert main([*base, "--task", "math", "task.heldout_fraction=0.01", "--samples", "2"]) == 2
    assert "no held-out problems" in capsys.readouterr().err
    assert main([*base, "--task", "arithmetic", "task.bogus=1"]) == 2
    assert capsys.readouterr().err.startswith("config error: unknown key 'task.bogus'")
    assert main([*base, "--task", "arithmetic", "--samples", "0", "--temperature", "0"]) == 0
