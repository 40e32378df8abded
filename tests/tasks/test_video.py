"""Synthetic long-video QA (paper longvideo): answers by hand, CoT references, scoring, held-out videos,
config errors, and the two recipes end to end on a tiny model."""

import json
import random

import pytest

from rlx.cli import main
from rlx.config import ConfigError
from rlx.tasks import VideoConfig, load_task_config, make_task
from rlx.tasks.heldout import is_heldout
from rlx.tasks.video import count_events, event_after_first, first_of, reasoning, video_text


def test_answers_by_hand():
    v = "abcab"  # frames: a b c a b
    assert count_events(v, "a") == 2  # frames 0 and 3
    assert count_events(v, "d") == 0
    assert event_after_first(v, "c") == "a"  # first c at 2, frame 3 is a
    assert event_after_first(v, "a") == "b"  # first a at 0 (not the one at 3), frame 1 is b
    assert first_of(v, "c", "b") == "b"  # b first at 1, c first at 2
    assert first_of(v, "c", "a") == "a"  # a at 0
    with pytest.raises(ValueError, match="last frame"):
        event_after_first("aab", "b")  # the only b is the last frame: nothing comes after it


def test_reasoning_and_rendering_by_hand():
    assert reasoning("count", "abcab", "#a") == "aa"  # one mark per a
    assert reasoning("count", "abcab", "#d") == ""  # no d: no marks, the completion is "=0"
    assert reasoning("after", "abcab", "c+") == "ca"  # the two frames that answer it
    assert reasoning("order", "abcab", "c,b") is None
    assert video_text("ab", ["3", "7"]) == "a3b7"
    assert video_text("ab", ["", ""]) == "ab"


def test_problems_are_consistent_and_their_references_score():
    task = make_task(VideoConfig(frames=12, events=3, frame_tokens=2))
    kinds = set()
    for p in task.train_problems(60, seed=1):
        ev, query, kind = p.meta["events"], p.meta["query"], p.meta["kind"]
        kinds.add(kind)
        video, _, q = p.question.rpartition("|")
        assert q == query and len(ev) == 12 and len(video) == 24 and video[::2] == ev  # letter, digit, ...
        assert set(video[1::2]) <= set("0123456789") and set(ev) <= set("abc")
        expected = {"count": lambda: str(ev.count(query[1])), "after": lambda: ev[ev.index(query[0]) + 1],
                    "order": lambda: min(query.split(","), key=ev.index)}[kind]()
        assert p.answer == expected
        assert task.prompt(p) == p.question + ">"
        ref = task.reference_completion(p)
        assert task.score(ref, p).correct and task.score(p.answer, p).correct  # CoT optional
        wrong = str(int(p.answer) + 1) if kind == "count" else next(c for c in "abc" if c != p.answer)
        assert not task.score(wrong, p).correct and task.score(wrong, p).parsed
    assert kinds == {"count", "after", "order"}


def test_reference_completion_shapes():
    task = make_task(VideoConfig(frames=8))
    p = next(p for p in task.train_problems(50, seed=0) if p.meta["kind"] == "count")
    n = int(p.answer)
    assert task.reference_completion(p) == p.meta["query"][1] * n + "=" + p.answer  # e.g. "aa=2"
    bare = make_task(VideoConfig(frames=8, cot=False))
    assert bare.reference_completion(p) == p.answer
    tags = make_task(VideoConfig(frames=8, answer_format="tags"))
    assert tags.reference_completion(p) == p.meta["query"][1] * n + f" <answer>{p.answer}</answer>"


def test_extraction_and_verification():
    task = make_task(VideoConfig(frames=8))
    count = next(p for p in task.train_problems(50, seed=0) if p.meta["kind"] == "count" and p.answer == "2")
    assert task.extract_answer("aa=2") == "2"
    assert task.extract_answer("=x=3\nmore") == "3"  # last '=' of the first line
    assert task.extract_answer("aa=") is None
    assert task.extract_answer("") is None
    s = task.score("aa=2", count)
    assert (s.correct, s.parsed, s.reward) == (True, True, 1.0)
    assert not task.score("aa=²", count).parsed  # a unicode digit is not an answer (and does not raise)
    letter = next(p for p in task.train_problems(50, seed=0) if p.meta["kind"] != "count")
    assert not task.score(letter.answer.upper(), letter).parsed  # letters are lower case
    assert not task.score("z", letter).parsed  # outside the 4-letter alphabet


def test_heldout_videos_never_appear_in_training():
    task = make_task(VideoConfig(frames=6, events=3))  # 3^6 = 729 videos: small enough to collide often
    held = task.heldout(40)
    assert len({p.id for p in held}) == 40 and all(is_heldout(p.id, 0.1) for p in held)
    held_videos = {p.question.rpartition("|")[0] for p in held}
    train_videos = {p.question.rpartition("|")[0] for p in task.train_problems(2000, seed=0)}
    assert len(train_videos) > 400 and not held_videos & train_videos
    assert [p.id for p in task.heldout(10)] == [p.id for p in held[:10]]  # a fixed prefix


def test_same_seed_same_problems():
    task = make_task(VideoConfig(frames=10))
    assert task.train_problems(5, seed=3) == task.train_problems(5, seed=3)
    assert task.train_problems(5, seed=3) != task.train_problems(5, seed=4)
    assert task._sample(random.Random(7)) == task._sample(random.Random(7))


@pytest.mark.parametrize("data, field", [({"frames": 1}, "frames"), ({"events": 27}, "events"),
                                         ({"questions": ["count", "count"]}, "questions"),
                                         ({"questions": ["jigsaw"]}, "questions"), ({"frame_tokens": 0}, "frame_tokens"),
                                         ({"fps": 2}, "fps")])
def test_bad_config_names_the_field(data, field):
    with pytest.raises(ConfigError, match=f"task.*{field}"):
        load_task_config({"name": "video", **data})


def test_sft_then_grpo_recipes_run(tmp_path):
    tiny = ["model.tiny.hidden_size=32", "model.tiny.num_layers=1", "model.tiny.intermediate_size=64",
            "task.frames=8"]
    assert main(["sft", "recipes/video_sft.yaml", *tiny, "train.steps=3", "eval.n=4", "eval.every=0",
                 "eval.max_new_tokens=12", "--out", str(tmp_path / "sft")]) == 0
    assert json.loads((tmp_path / "sft" / "summary.json").read_text())["train/steps"] == 3
    assert main(["train", "recipes/video_grpo.yaml", f"model.path={tmp_path / 'sft' / 'model'}", "task.frames=8",
                 "train.steps=2", "eval.n=4", "rollout.prompts_per_step=2", "rollout.group_size=4",
                 "rollout.max_new_tokens=12", "eval.max_new_tokens=12", "train.checkpoint_every=1",
                 "--out", str(tmp_path / "grpo")]) == 0
    summary = json.loads((tmp_path / "grpo" / "summary.json").read_text())
    assert {"eval/accuracy", "eval/accuracy_before"} <= summary.keys() and summary["train/steps"] == 2


def test_an_absurdly_long_count_is_wrong_not_an_error():
    """int() refuses more than 4300 digits: the video verifier raised (now that Task.score lets verifier
    errors through, that logged a traceback for a malformed answer)."""
    from rlx.tasks import VideoConfig, make_task

    task = make_task(VideoConfig())
    p = next(p for p in task.train_problems(64, seed=0) if p.meta["kind"] == "count")
    s = task.score(task.reference_completion(p).replace(p.answer, "9" * 5000), p)
    assert not s.correct and s.parsed
    assert task.score(task.reference_completion(p), p).correct
