"""Code tasks (verified by running programs in the sandbox): right, wrong, unparsed, both test styles."""

import json

import pytest

from rlx.config import ConfigError
from rlx.tasks import CodeConfig, make_task


def _find(task, text):
    return next(p for p in task._train + task._heldout if text in p.question)


def test_stdin_stdout_problem():
    task = make_task(CodeConfig())
    p = _find(task, "n squared")
    assert task.prompt(p).endswith("```python\n")
    assert task.score("n = int(input())\nprint(n * n)\n```\nmore text", p).correct
    assert not task.score("print(int(input()) * 2)\n", p).correct  # 3 -> 6, not 9
    s = task.score("def f(:\n", p)
    assert not s.correct and not s.parsed
    assert not task.score("", p).parsed


def test_assert_style_problem_and_sandbox_refusals():
    task = make_task(CodeConfig())
    p = _find(task, "add(a, b)")
    assert task.score("def add(a, b):\n    return a + b\n", p).correct
    assert not task.score("def add(a, b):\n    return a - b\n", p).correct
    assert not task.score("import socket\nsocket.socket()\ndef add(a, b):\n    return a + b\n", p).correct
    assert not task.score("while True:\n    pass\n", p).correct


@pytest.mark.parametrize("exit_early", ["raise SystemExit", "import sys\nsys.exit(0)", "import os\nos._exit(0)",
                                        "quit()"])
def test_exiting_before_the_asserts_does_not_pass(exit_early):
    """The asserts are appended after the program: leaving early used to skip them and pass."""
    task = make_task(CodeConfig())
    p = _find(task, "add(a, b)")
    assert not task.score(f"def add(a, b):\n    return 0\n{exit_early}\n", p).correct
    assert task.score("def add(a, b):\n    return a + b\nprint('chatty')\n", p).correct  # output of its own is fine


def test_rows_from_a_file_and_bad_tests(tmp_path):
    good = tmp_path / "c.jsonl"
    good.write_text("\n".join(json.dumps({"question": f"print {i}", "tests": [["", str(i)]]}) for i in range(20)))
    task = make_task(CodeConfig(path=str(good)))
    p = task.train_problems(1, seed=0)[0]
    assert task.score(f"print({p.answer and json.loads(p.answer)[0][1]})", p).correct
    bad = tmp_path / "b.jsonl"
    bad.write_text(json.dumps({"question": "x", "tests": "nope"}) + "\n")
    with pytest.raises(ConfigError, match="answer_field"):
        make_task(CodeConfig(path=str(bad)))
    with pytest.raises(ConfigError, match="no reference programs"):
        task.reference_completion(p)
