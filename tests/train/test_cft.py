"""Critique fine-tuning (paper cft): critique rows by hand, the SFT switch, exact resume, bad combos."""


import torch

from rlx.cli import main
from rlx.models import char_tokenizer
from rlx.rundir import read_metrics
from rlx.tasks import ArithmeticConfig, make_task
from rlx.train.cft import SEPARATOR, CFTConfig, build_critiques, critique_text
from rlx.types import Generation

TOK = char_tokenizer()


class FixedEngine:
    """Every prompt's n samples: the right answer, then a wrong one, alternating."""

    def __init__(self, task, problems):
        self.task, self.problems = task, problems

    def generate(self, prompts, params, seed):
        texts = []
        for p in prompts:
            q = next(x for x in self.problems if self.task.prompt(x, TOK) == p)
            texts += [q.answer if j % 2 == 0 else str(int(q.answer) + 1) for j in range(params.n)]
        n = len(texts)
        return Generation(torch.ones(n, 1, dtype=torch.long), torch.ones(n, 1, dtype=torch.bool),
                          torch.ones(n, 1, dtype=torch.long), torch.ones(n, 1, dtype=torch.bool),
                          torch.zeros(n, 1), ("stop",) * n, tuple(texts))


def test_critique_text():
    assert critique_text(True, "46") == "ok"
    assert critique_text(False, "46") == "no 46"


def test_build_critiques_by_hand():
    task = make_task(ArithmeticConfig())
    cfg = CFTConfig(problems=1, samples=4)
    problem = task.train_problems(1, seed=1_000_000)[0]
    rows, stats = build_critiques(FixedEngine(task, [problem]), task, TOK, cfg, seed=0)
    prompt, wrong = task.prompt(problem), str(int(problem.answer) + 1)
    assert rows == [(prompt + problem.answer + SEPARATOR, "ok"), (prompt + wrong + SEPARATOR, f"no {problem.answer}")] * 2
    assert stats == {"cft/candidates": 4.0, "cft/candidates_correct": 0.5, "cft/distinct_candidates": 2.0}


SFT = ["model.tiny.hidden_size=32", "model.tiny.num_layers=2", "model.tiny.intermediate_size=64",
       "train.steps=6", "train.checkpoint_every=2", "train.log_every=1", "eval.n=8", "eval.every=0",
       "train.cft.problems=1", "train.cft.samples=8", "train.batch_size=4"]


def _rows(path):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_metrics(path / "metrics.jsonl")]


def test_cft_run_resumes_exactly(tmp_path, kill_on_call):
    assert main(["sft", "recipes/arith_sft.yaml", *SFT, "--out", str(tmp_path / "a")]) == 0
    rows = _rows(tmp_path / "a")
    assert rows[1]["cft/candidates"] == 8.0 and [r["step"] for r in rows if "train/loss" in r] == [1, 2, 3, 4, 5, 6]

    import rlx.train.sft as sft

    restore = kill_on_call(torch.optim.AdamW, "step", 5)  # in step 5 (checkpoint at 4)
    assert main(["sft", "recipes/arith_sft.yaml", *SFT, "--out", str(tmp_path / "b")]) == 130
    restore()
    calls = {"n": 0}
    real = sft.build_critiques

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    sft.build_critiques = counting
    try:
        assert main(["sft", "recipes/arith_sft.yaml", *SFT, "--out", str(tmp_path / "b"), "--resume"]) == 0
    finally:
        sft.build_critiques = real
    assert calls["n"] == 0  # the critiques come from the checkpoint, not from the trained model
    assert _rows(tmp_path / "b") == rows


def test_cft_with_pear_is_a_clear_error(tmp_path, capsys):
    assert main(["sft", "recipes/arith_sft.yaml", *SFT, "train.pear.level=sequence", "--out", str(tmp_path / "c")]) == 2
    assert "train.cft" in capsys.readouterr().err
