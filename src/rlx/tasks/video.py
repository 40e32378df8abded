"""Synthetic long-"video" question answering (paper longvideo, LongVILA-R1), for the char-level models.

A video is a seeded sequence of `frames` frames. Each frame shows one event, a letter from the first
`events` letters of the alphabet, followed by `frame_tokens - 1` scene digits that no question asks
about (visual detail the model has to look past). The question follows the video after '|':

    count  "#x"   how many frames show event x                   "abcab|#a"  -> "2"
    after  "x+"   the event in the frame right after the first x  "abcab|c+"  -> "a"
    order  "x,y"  which of x and y occurs first (both occur)      "abcab|c,b" -> "b"

Each question needs the whole video: a count over every frame, or a search for a first occurrence.
Prompt (plain): "{question}>", i.e. "abcab|#a>". With `cot` the reference completion reasons first,
then gives the answer after '=' (the CoT-SFT stage of the paper's two-stage pipeline):

    count  one mark per occurrence, then the total      "aa=2"
    after  the two frames that answer it                 "ca=a"
    order  no reasoning step (the answer is one lookup)  "b"

Scoring reads the text after the last '=' of the first line (or the whole line when there is no '='),
so a bare answer is also accepted: the reward is for the answer, not for the reasoning.

Held-out videos are disjoint from training videos: the first 8 hex digits of a problem's id (the
digits `rlx.tasks.heldout.is_heldout` reads) hash the video alone, so a video is held out with every
question about it, or never. Departures from the paper: text tokens stand in for a VLM's frame
embeddings, and a longer video here has more events rather than denser samples of the same events.
"""

from __future__ import annotations

import random
import string

from rlx.rewards.delimiters import extract, wrap
from rlx.tasks.common import VerifiableTask
from rlx.tasks.config import VideoConfig
from rlx.tasks.heldout import problem_id
from rlx.types import Problem

__all__ = ["VideoTask", "count_events", "event_after_first", "first_of", "reasoning", "video_text"]

_MAX_REDRAWS = 1000


def count_events(events: str, x: str) -> int:
    """How many frames show event x: |{t : e_t = x}|."""
    return events.count(x)


def event_after_first(events: str, x: str) -> str:
    """e_{t+1} for the first t with e_t = x (x must occur before the last frame)."""
    t = events.index(x)
    if t + 1 >= len(events):
        raise ValueError(f"the first {x!r} is the last frame")
    return events[t + 1]


def first_of(events: str, x: str, y: str) -> str:
    """Whichever of x and y occurs first (both must occur)."""
    return x if events.index(x) < events.index(y) else y


def reasoning(kind: str, events: str, query: str) -> str | None:
    """The chain of thought of the reference completion; None for kinds without one (order)."""
    if kind == "count":
        return query[1] * count_events(events, query[1])
    if kind == "after":
        return query[0] + event_after_first(events, query[0])
    return None


def video_text(events: str, scenes: list[str]) -> str:
    """Frames as text: each event letter followed by its scene digits ("a3b7" for events "ab")."""
    return "".join(e + s for e, s in zip(events, scenes))


class VideoTask(VerifiableTask):
    name = "video"
    default_templates = {"plain": "{question}>",
                         "boxed": "{question}> Put the answer in \\boxed{{}}.",
                         "tags": "{question}> Put the answer between <answer> and </answer>."}

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        self.cfg: VideoConfig = cfg
        self.letters = string.ascii_lowercase[:cfg.events]
        self.check_template(self._sample(random.Random(0)))

    def _sample(self, rng: random.Random) -> Problem:
        cfg = self.cfg
        for _ in range(_MAX_REDRAWS):
            events = "".join(rng.choice(self.letters) for _ in range(cfg.frames))
            scenes = ["".join(rng.choice(string.digits) for _ in range(cfg.frame_tokens - 1))
                      for _ in range(cfg.frames)]
            kind = rng.choice(cfg.questions)
            if kind == "count":
                query, answer = "#" + (x := rng.choice(self.letters)), str(count_events(events, x))
            elif kind == "after":  # events[0] occurs before the last frame, so there is always a candidate
                x = rng.choice(sorted({e for e in events[:-1]}))
                query, answer = x + "+", event_after_first(events, x)
            else:
                present = sorted(set(events))
                if len(present) < 2:
                    continue
                x, y = rng.sample(present, 2)
                query, answer = f"{x},{y}", first_of(events, x, y)
            video = video_text(events, scenes)
            question = f"{video}|{query}"
            pid = problem_id(self.name, video)[:8] + problem_id(self.name, question)[8:]
            return Problem(id=pid, question=question, answer=answer,
                           meta={"kind": kind, "events": events, "query": query, "frames": cfg.frames})
        raise RuntimeError(f"no video with two distinct events in {_MAX_REDRAWS} draws")  # pragma: no cover

    def _fields(self, problem: Problem) -> dict[str, str]:
        video, _, query = problem.question.rpartition("|")
        return {"question": problem.question, "video": video, "query": query}

    def reference_completion(self, problem: Problem) -> str:
        answer = wrap(problem.answer, self.cfg.answer_format)
        cot = reasoning(problem.meta["kind"], problem.meta["events"], problem.meta["query"]) if self.cfg.cot else None
        if cot is None:
            return answer
        return f"{cot}={answer}" if self.cfg.answer_format == "plain" else f"{cot} {answer}"

    def extract_answer(self, completion: str) -> str | None:
        text = extract(completion, self.cfg.answer_format)
        if text is None or self.cfg.answer_format != "plain":
            return text
        return text.rpartition("=")[2].strip() or None

    def _verify(self, answer: str, problem: Problem) -> tuple[bool, bool]:
        if problem.meta["kind"] == "count":
            parsed = answer.isascii() and answer.isdigit()
            # compared as digit strings: int() refuses over 4300 digits, and no count has leading zeros to keep
            return parsed and answer.lstrip("0") == problem.answer.lstrip("0"), parsed
        parsed = len(answer) == 1 and answer in self.letters
        return parsed and answer == problem.answer, parsed
