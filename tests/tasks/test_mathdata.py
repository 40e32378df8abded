"""Math task: shipped sample, local JSONL/Parquet, datasets directories, clear errors."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import Field

from rlx.config import ConfigError, Section, build_config
from rlx.tasks import MathConfig, TaskConfig, make_task
from rlx.tasks.mathdata import SAMPLE_PATH


class Recipe(Section):
    task: TaskConfig = Field(default_factory=MathConfig)


def test_shipped_sample_has_30_unique_problems_split_without_overlap():
    rows = [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines()]
    assert len(rows) == 30 and len({r["question"] for r in rows}) == 30
    task = make_task(MathConfig())
    held = task.heldout(30)
    train = {p.id for p in task.train_problems(200, seed=0)}
    assert 1 <= len(held) < 30 and len(train) == 30 - len(held)
    assert not train & {p.id for p in held}


def test_every_sample_reference_scores_correct_in_every_format():
    for fmt in ("plain", "boxed", "tags"):
        task = make_task(MathConfig(answer_format=fmt))
        for p in task.train_problems(30, seed=0)[:30] + task.heldout(30):
            assert task.score(task.reference_completion(p), p).correct, (fmt, p.question)


def test_math_verify_equivalence_in_scoring():
    task = make_task(MathConfig(answer_format="boxed"))
    frac = next(p for p in task.train_problems(60, seed=0) + task.heldout(30) if p.answer == "\\frac{5}{6}")
    assert task.score("so \\boxed{10/12}", frac).correct
    assert not task.score("so \\boxed{5/7}", frac).correct


def _write(tmp_path, rows):
    path = tmp_path / "probs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_and_parquet_with_custom_fields(tmp_path):
    rows = [{"problem": f"What is {i} + {i}?", "solution": 2 * i} for i in range(40)]
    path = _write(tmp_path, rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "probs.parquet")
    for p in (path, tmp_path / "probs.parquet"):
        task = make_task(MathConfig(path=str(p), question_field="problem", answer_field="solution", verifier="numeric"))
        got = task.train_problems(10, seed=0) + task.heldout(40)
        assert all(int(x.answer) == 2 * int(x.question.split()[2]) for x in got)
        assert len(task.heldout(40)) + len({x.id for x in task.train_problems(400, seed=1)}) == 40


def test_rows_with_a_null_or_empty_field_are_skipped_not_read_as_none(tmp_path, caplog):
    """A null answer used to become the string "None" (so `\\boxed{None}` scored correct) and a null question
    the prompt "None"."""
    rows = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(40)]
    rows[3]["answer"], rows[7]["question"], rows[9]["answer"] = None, None, "  "
    task = make_task(MathConfig(path=str(_write(tmp_path, rows))))
    got = task.train_problems(400, seed=0) + task.heldout(40)
    assert len({p.id for p in got}) == 37 and not any(p.answer == "None" or p.question == "None" for p in got)
    assert "skipped 3 row(s)" in caplog.text and "first: row 3" in caplog.text


def test_hf_datasets_directory_and_heldout_split(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    (d / "train.jsonl").write_text("".join(json.dumps({"question": f"{i}*2?", "answer": str(2 * i)}) + "\n" for i in range(20)))
    (d / "test.jsonl").write_text("".join(json.dumps({"question": f"{i}*2?", "answer": str(2 * i)}) + "\n" for i in range(15, 25)))
    task = make_task(MathConfig(dataset=str(d), split="train", heldout_split="test"))
    assert [p.question for p in task.heldout(100)] == [f"{i}*2?" for i in range(15, 25)]
    assert {p.question for p in task.train_problems(100, seed=0)} == {f"{i}*2?" for i in range(15)}


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"path.*file not found: nope.jsonl"):
        build_config(Recipe, {"task": {"name": "math", "path": "nope.jsonl"}})
    with pytest.raises(ConfigError, match="either path or dataset"):
        build_config(Recipe, {"task": {"name": "math", "path": str(SAMPLE_PATH), "dataset": "x"}})
    path = _write(tmp_path, [{"q": "1+1", "a": "2"}])
    with pytest.raises(ConfigError, match="task.question_field = 'question'"):
        make_task(MathConfig(path=str(path)))
    path.write_text('{"question": "1"}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2 is not JSON"):
        make_task(MathConfig(path=str(path)))
    with pytest.raises(ConfigError, match="task.dataset"):
        make_task(MathConfig(dataset=str(tmp_path / "missing_dir")))


def test_gsm8k_style_answers_keep_the_final_number():
    from rlx.tasks.mathdata import final_answer

    assert final_answer("She has 3 + 4 = 7 apples.\n#### 7") == "7"
    assert final_answer("Total 1,234 dollars\n#### 1,234") == "1234"
    assert final_answer("  \\frac{1}{2} ") == "\\frac{1}{2}"
