"""Answer delimiters: extract the final answer from a completion, and check the format.

Three formats (`answer_format` in task configs):
  plain  the completion is just the answer; extraction = stripped text up to the first newline
  boxed  the last balanced `\\boxed{...}`
  tags   the last `<answer>...</answer>`
All functions are total: any string in, no exception out.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["AnswerFormat", "extract_plain", "extract_boxed", "extract_tags", "extract", "format_ok", "wrap"]

AnswerFormat = Literal["plain", "boxed", "tags"]
_BOX = "\\boxed{"
_OPEN, _CLOSE = "<answer>", "</answer>"
MAX_SCAN = 100_000  # \\boxed{} is looked for in the last 100k characters of a completion


def extract_plain(text: str) -> str | None:
    if not isinstance(text, str):
        return None
    line = text.strip().split("\n", 1)[0].strip()
    return line or None


def _boxed_spans(text: str) -> list[str]:
    """Contents of the outermost balanced \\boxed{...} groups, in order; unterminated ones are
    skipped (a boxed nested in a closed boxed is part of the outer one). One linear pass over
    the last MAX_SCAN characters."""
    text = text[-MAX_SCAN:]
    first = text.find(_BOX)
    if first == -1:
        return []
    text = text[first:]
    openers = {m.end() - 1 for m in re.finditer(re.escape(_BOX), text)}  # index of each boxed "{"
    stack: list[int] = []
    closed: list[tuple[int, int]] = []
    for m in re.finditer(r"[{}]", text):
        i = m.start()
        if text[i] == "{":
            stack.append(i)
        elif stack:
            start = stack.pop()
            if start in openers:
                closed.append((start, i))
    closed.sort()
    out, end = [], -1
    for start, stop in closed:
        if start > end:  # not inside the previous outermost span
            out.append(text[start + 1 : stop])
            end = stop
    return out


def extract_boxed(text: str) -> str | None:
    if not isinstance(text, str):
        return None
    spans = [s.strip() for s in _boxed_spans(text)]
    return spans[-1] if spans and spans[-1] else None


def extract_tags(text: str) -> str | None:
    """Content between the last `<answer>` that is closed and the first `</answer>` after it."""
    if not isinstance(text, str):
        return None
    last_close = text.rfind(_CLOSE)
    start = text.rfind(_OPEN, 0, last_close) if last_close != -1 else -1
    if start == -1:
        return None
    end = text.find(_CLOSE, start + len(_OPEN))
    inner = text[start + len(_OPEN) : end].strip()
    return inner or None


def extract(text: str, fmt: AnswerFormat) -> str | None:
    if fmt == "plain":
        return extract_plain(text)
    if fmt == "boxed":
        return extract_boxed(text)
    return extract_tags(text)


def format_ok(text: str, fmt: AnswerFormat) -> bool:
    """Answer delimiters present and well-formed.

    plain: a non-empty first line. boxed: at least one balanced, non-empty \\boxed{}.
    tags: exactly one `<answer>` followed by exactly one `</answer>`, non-empty between them.
    """
    if not isinstance(text, str):
        return False
    if fmt == "tags":
        if text.count(_OPEN) != 1 or text.count(_CLOSE) != 1:
            return False
        start, end = text.find(_OPEN), text.find(_CLOSE)
        return start < end and bool(text[start + len(_OPEN) : end].strip())
    return extract(text, fmt) is not None


def wrap(answer: str, fmt: AnswerFormat) -> str:
    """A completion that states `answer` in format `fmt` (the inverse of `extract`)."""
    if fmt == "plain":
        return answer
    if fmt == "boxed":
        return f"The answer is \\boxed{{{answer}}}."
    return f"{_OPEN}{answer}{_CLOSE}"
