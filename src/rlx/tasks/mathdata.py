"""Math problems with reference answers from a file or a Hugging Face dataset.

Sources: a local `.jsonl` (one JSON object per line) or `.parquet` file (`path`), a `datasets`
dataset by name or local directory (`dataset`, `dataset_config`, `split`), or, with neither, the
30-problem sample shipped in `rlx/data/math_sample.jsonl`. Questions are deduplicated by id (hash
of the whitespace-normalised question). Held-out problems are a hash bucket of the source, or the
`heldout_split` of the dataset (training then drops any question that also appears there).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

from rlx.config import ConfigError
from rlx.rewards.mathverify import math_equal
from rlx.rewards.numeric import numeric_equal, parse_number
from rlx.tasks.common import VerifiableTask
from rlx.tasks.config import MathConfig
from rlx.tasks.heldout import is_heldout, problem_id
from rlx.types import Problem

__all__ = ["MathTask", "SAMPLE_PATH", "load_rows"]

log = logging.getLogger(__name__)

SAMPLE_PATH = Path(__file__).resolve().parent.parent / "data" / "math_sample.jsonl"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"config error: task.path = {str(path)!r}: line {i} is not JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"config error: task.path = {str(path)!r}: line {i} is not a JSON object")
            rows.append(row)
    return rows


def load_rows(cfg: MathConfig, split: str | None = None, sample: Path = SAMPLE_PATH) -> list[dict[str, Any]]:
    """The raw rows of the configured source (`split` overrides cfg.split for datasets; `sample` is the
    file used when neither path nor dataset is set)."""
    if cfg.dataset is None:
        path = Path(cfg.path) if cfg.path is not None else sample
        if path.suffix == ".parquet":
            try:
                import pyarrow.parquet as pq

                return pq.read_table(path).to_pylist()
            except Exception as e:
                raise ConfigError(f"config error: task.path = {str(path)!r}: cannot read parquet ({type(e).__name__})") from None
        return _read_jsonl(path)
    try:
        import datasets

        ds = datasets.load_dataset(cfg.dataset, cfg.dataset_config, split=split or cfg.split)
    except Exception as e:
        msg = (str(e).splitlines() or [""])[0][:200]
        raise ConfigError(f"config error: task.dataset = {cfg.dataset!r}: cannot load ({type(e).__name__}: {msg})") from None
    return [dict(r) for r in ds]


class MathTask(VerifiableTask):
    name = "math"
    sample_path = SAMPLE_PATH
    default_templates = {
        "plain": "{question}\nAnswer: ",
        "boxed": "{question}\nPut your final answer within \\boxed{{}}.",
        "tags": "{question}\nGive your final answer between <answer> and </answer>.",
    }

    def __init__(self, cfg: MathConfig) -> None:
        super().__init__(cfg)
        self.cfg: MathConfig = cfg
        problems = self._problems(load_rows(cfg, sample=self.sample_path), "split")
        if cfg.heldout_split is not None:
            held = self._problems(load_rows(cfg, cfg.heldout_split, self.sample_path), "heldout_split")
            ids = {p.id for p in held}
            self._train = [p for p in problems if p.id not in ids]
            self._heldout = held
        else:
            self._train = [p for p in problems if not is_heldout(p.id, cfg.heldout_fraction)]
            self._heldout = [p for p in problems if is_heldout(p.id, cfg.heldout_fraction)]
        if not self._train:
            raise ConfigError("config error: task: the source has no training problems after removing held-out ones")
        self.check_template(self._train[0])

    def _problems(self, rows: list[dict[str, Any]], where: str) -> list[Problem]:
        q, a = self.cfg.question_field, self.cfg.answer_field
        out, seen, empty = [], set(), []
        for i, row in enumerate(rows):
            for field_name, key in (("question_field", q), ("answer_field", a)):
                if key not in row:
                    raise ConfigError(f"config error: task.{field_name} = {key!r}: not a field of row {i} "
                                      f"of the {where} (fields: {sorted(row)[:10]})")
            if any(row[k] is None or not str(row[k]).strip() for k in (q, a)):  # null used to become "None"
                empty.append(i)
                continue
            question, answer = str(row[q]).strip(), self._answer(row[a], i, where)
            pid = problem_id(self.name, " ".join(question.split()))
            if pid in seen:
                continue
            seen.add(pid)
            out.append(Problem(id=pid, question=question, answer=answer, meta={"row": i}))
        if empty:
            log.warning("task: skipped %d row(s) of the %s with an empty or null %r or %r (first: row %d)",
                        len(empty), where, q, a, empty[0])
        return out

    def _answer(self, value: Any, row: int, where: str) -> str:
        """The reference answer of one row (GSM8K's `#### 42` reduced to `42`)."""
        return final_answer(str(value))

    def train_problems(self, n: int, seed: int) -> list[Problem]:
        """`n` problems sampled without replacement per pass over the training pool."""
        rng = random.Random(f"train:{seed}")
        out: list[Problem] = []
        while len(out) < n:
            out += rng.sample(self._train, min(len(self._train), n - len(out)))
        return out

    def heldout(self, n: int, allow_fewer: bool = True) -> list[Problem]:
        """The first `n` held-out problems in source order (all of them if the source has fewer)."""
        if len(self._heldout) < n and not allow_fewer:
            raise ConfigError(f"config error: task: the source has only {len(self._heldout)} held-out problems, {n} requested")
        return list(self._heldout[:n])

    def same_answer(self, a: str, b: str) -> bool:
        if self.cfg.verifier == "numeric":
            return a == b or (parse_number(a) is not None and numeric_equal(a, b))
        return math_equal(a, b)

    def _verify(self, answer: str, problem: Problem) -> tuple[bool, bool]:
        if self.cfg.verifier == "numeric":
            parsed = parse_number(answer) is not None
            return parsed and numeric_equal(answer, problem.answer), parsed
        return math_equal(answer, problem.answer), True


def final_answer(text: str) -> str:
    """The reference answer of a dataset row: GSM8K writes its solution then `#### 42`; keep `42`."""
    if "####" in text:
        text = text.rsplit("####", 1)[1]
        return text.strip().replace(",", "")
    return text.strip()
