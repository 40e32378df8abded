"""Programming problems verified by execution in the sandbox (`task: {name: code}`).

Rows (a local .jsonl/.parquet file, a Hugging Face dataset, or the 16-problem sample shipped in
`rlx/data/code_sample.jsonl`) hold a question and tests, in either form:

    [[stdin, expected stdout], ...]      the program reads stdin and prints (APPS / CodeContests style)
    ["assert f(2) == 4", ...]            statements run after the program's definitions (MBPP style)

The completion's program is the text before the closing fence (the prompt opens a ```python block),
or the last fenced block for the boxed/tags formats. It is correct when every test passes in
`rlx.rewards.sandbox` (separate process, limits, no network; see docs/tasks.md); a program that
does not compile is "unparsed". Everything else (loading, held-out split, sampling) is MathTask's.
"""

from __future__ import annotations

import json
import math
import secrets
from pathlib import Path
from typing import Any

from rlx.config import ConfigError
from rlx.rewards.code import execution_reward, fenced_code
from rlx.rewards.sandbox import SandboxLimits, run_python
from rlx.tasks.config import CodeConfig
from rlx.tasks.mathdata import MathTask
from rlx.types import Problem

__all__ = ["CodeTask", "CODE_SAMPLE_PATH", "program_passes"]

CODE_SAMPLE_PATH = Path(__file__).resolve().parent.parent / "data" / "code_sample.jsonl"


def program_passes(program: str, tests: list, limits: SandboxLimits) -> bool:
    """All tests pass: stdin/stdout pairs through `execution_reward`, asserts appended to the program.

    Assert tests end by printing a fresh random token, and the run passes only if that token is the last
    line of its output: a program that exits early (`sys.exit(0)`, `raise SystemExit`, `os._exit(0)`)
    skips the asserts and fails instead of passing. (A program that reads its own file to find the
    token is a deliberate cheat this does not stop.)
    """
    if all(isinstance(t, str) for t in tests):
        token = f"rlx-tests-done-{secrets.token_hex(8)}"
        r = run_python(program + "\n\n" + "\n".join(tests) + f"\nprint({token!r})\n", limits=limits)
        lines = r.stdout.splitlines()
        return r.ok and bool(lines) and lines[-1] == token
    return execution_reward(program, [(str(i), str(o)) for i, o in tests], limits) == 1.0


class CodeTask(MathTask):
    name = "code"
    sample_path = CODE_SAMPLE_PATH
    default_templates = {
        "plain": "{question}\n```python\n",
        "boxed": "{question}\nWrite the program in one ```python block.",
        "tags": "{question}\nWrite the program in one ```python block.",
    }

    def __init__(self, cfg: CodeConfig) -> None:
        super().__init__(cfg)
        self.cfg: CodeConfig = cfg
        # CPU seconds follow the wall-clock limit (they were fixed at 2 whatever timeout_seconds said)
        self.limits = SandboxLimits(wall_seconds=cfg.timeout_seconds, cpu_seconds=max(1, math.ceil(cfg.timeout_seconds)),
                                    memory_mb=cfg.memory_mb)

    def _answer(self, value: Any, row: int, where: str) -> str:
        try:
            tests = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            tests = None
        ok = isinstance(tests, list) and tests and (
            all(isinstance(t, str) for t in tests)
            or all(isinstance(t, (list, tuple)) and len(t) == 2 for t in tests))
        if not ok:
            raise ConfigError(f"config error: task.answer_field = {self.cfg.answer_field!r}: row {row} of the {where} "
                              "needs a non-empty list of [stdin, stdout] pairs or of assert statements")
        return json.dumps([t if isinstance(t, str) else [str(t[0]), str(t[1])] for t in tests])

    def extract_answer(self, completion: str) -> str | None:
        code = completion.split("```")[0] if self.cfg.answer_format == "plain" else fenced_code(completion)
        return code if code.strip() else None

    def reference_completion(self, problem: Problem) -> str:
        raise ConfigError("config error: task.name = 'code' has no reference programs (tests only): it is for RL, "
                          "not SFT")

    def _verify(self, answer: str, problem: Problem) -> tuple[bool, bool]:
        try:
            compile(answer, "<completion>", "exec")
        except (SyntaxError, ValueError):
            return False, False
        return program_passes(answer, json.loads(problem.answer), self.limits), True
