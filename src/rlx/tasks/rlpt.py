"""Reinforcement learning on pre-training data (paper rlpt): next-segment reasoning on unlabeled text.

RLPT derives the reward from raw text instead of labels: a document is cut at a segment boundary,
the policy predicts the missing segment, and a judge compares the prediction with the text that was
really there. The paper has two tasks,

    asr  (autoregressive segment reasoning) the prompt is the text before the cut; predict the next
         segment:                       "12+34="   -> "46",   "12+" -> "34"
    msr  (middle segment reasoning) the prompt shows the text before and after a masked span ('?'):
                                        "12+?=46>" -> "34",   "?+34=46>" -> "12"

Corpus and segments at this repo's scale: the "pre-training data" is an unlabeled stream of true
equations written out as text, `a op b=c` (drawn by the arithmetic generator of `source`). A segment
is one number of the text: each operand on the left of '=' (a digit run) and the whole right-hand
side (the value, with its sign or fraction bar). A cut is drawn uniformly among the document's
segments (asr: those with a non-empty text before them; `targets: operands` leaves out the value).
The task only cuts the text; the reference answer is the segment that was cut out.

Judges (`judge` in RLPTConfig), pure functions of (prediction, cut):

    exact       the prediction is the true segment, character for character
    consistent  the prediction, put in place of the true segment, yields a true equation in the
                corpus's grammar (an expression of + - * / and parentheses '=' one number):
                "12+?=46" accepts "34" and also "30+4" or "17*2". This is our stand-in for the
                paper's generative reward model, which judges whether the predicted segment is
                semantically consistent with the reference (not verbatim); with text whose meaning
                is checkable, "semantically valid in context" is decided exactly instead of by an
                LLM. The value segment must stay one number (the grammar's right-hand side), so a
                value cannot be "predicted" by copying the expression. Like a lenient judge, it can
                be satisfied without computing (msr "12+?=46" accepts "46-12"); exact cannot.

Splits: source equations that are held out by the arithmetic task itself (`is_heldout` of the
arithmetic problem id under `source.heldout_fraction`) never enter this corpus, so RLPT never sees
the problems `rlx eval --task arithmetic` scores. RLPT's own held-out bucket is decided by the
equation, not the cut, so no held-out equation is ever trained on under another cut: a problem id
is the equation's hash (8 hex digits, which `is_heldout` reads) followed by the question's hash.

Departures: the paper's documents are web text and its segments sentences, its reward an LLM judge
(with a prefix-style rule: a prediction that matches the beginning of the continuation counts); here
documents are single equations, segments numbers and the judge exact arithmetic, so "semantically
consistent" is checked without a model. Here the policy is trained with GRPO straight from the
arithmetic base checkpoint, with no cold-start stage that teaches it the msr format first.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable

from rlx.rewards.numeric import parse_number
from rlx.tasks.arithmetic import ArithmeticTask, evaluate_tokens
from rlx.tasks.common import VerifiableTask
from rlx.tasks.config import RLPTConfig
from rlx.tasks.heldout import is_heldout, problem_id
from rlx.types import Problem

__all__ = ["RLPTTask", "Cut", "segment_spans", "true_equation", "exact_judge", "consistent_judge", "JUDGES"]

_TOKEN = re.compile(r"\d+|[-+*/()]")
_DRAWS = 1000


@dataclass(frozen=True)
class Cut:
    """A document cut around one segment: text == before + segment + after."""

    before: str  # text before the segment ("12+")
    segment: str  # the true segment ("34"): the reference answer
    after: str  # text after the segment ("=46"); msr shows it, asr hides it (the judge reads it)


def segment_spans(equation: str) -> list[tuple[int, int]]:
    """[start, end) of each segment of 'lhs=rhs': every digit run of lhs, then the whole rhs.

    "12+34=46" -> [(0, 2), (3, 5), (6, 8)];  "7-9=-2" -> [(0, 1), (2, 3), (4, 6)].
    """
    eq = equation.index("=")
    spans = [(m.start(), m.end()) for m in re.finditer(r"\d+", equation[:eq])]
    return [*spans, (eq + 1, len(equation))]


def _number_ok(tok: str) -> bool:
    return tok == "0" or not tok.startswith("0")  # no leading zeros: the corpus never writes "07"


def _expression_tokens(text: str) -> list[str] | None:
    """Tokens of a well-formed expression (numbers, + - * /, balanced parentheses), else None."""
    tokens = _TOKEN.findall(text)
    if "".join(tokens) != text or not tokens:
        return None
    depth, want_operand = 0, True
    for t in tokens:
        if want_operand:
            if t == "(":
                depth += 1
            elif t.isdigit() and _number_ok(t):
                want_operand = False
            else:
                return None
        elif t == ")" and depth > 0:
            depth -= 1
        elif t in "+-*/":
            want_operand = True
        else:
            return None
    return tokens if depth == 0 and not want_operand else None


def true_equation(text: str) -> bool:
    """Whether `text` is 'expression=number' and both sides have the same exact value. Total.

    "12+30+4=46" -> True (46 = 46);  "12+34=47" -> False;  "12+34=12+34" -> False (rhs is not a
    number);  "5/0=1" -> False (division by zero);  "07+1=8" -> False (leading zero).
    """
    if not isinstance(text, str) or text.count("=") != 1:
        return False
    lhs, rhs = text.split("=")
    tokens = _expression_tokens(lhs)
    digits = rhs[1:] if rhs.startswith("-") else rhs
    parts = digits.split("/")
    if tokens is None or len(parts) > 2 or not all(p.isdigit() and _number_ok(p) for p in parts):
        return False
    left, right = evaluate_tokens(tokens), parse_number(rhs)
    return left is not None and right is not None and left == right


def exact_judge(prediction: str, cut: Cut) -> bool:
    """r = 1[prediction = segment] (verbatim). Paper: rlpt (the strict end of its judge)."""
    return prediction == cut.segment


def consistent_judge(prediction: str, cut: Cut) -> bool:
    """r = 1[before + prediction + after is a true equation]. Paper: rlpt (stand-in for its
    generative judge of semantic consistency). Every exact prediction is consistent, since it
    restores the true document; "12+" "30+4" "=46" is consistent but not exact."""
    return true_equation(cut.before + prediction + cut.after)


JUDGES: dict[str, Callable[[str, Cut], bool]] = {"exact": exact_judge, "consistent": consistent_judge}


class RLPTTask(VerifiableTask):
    name = "rlpt"
    _templates = {
        "asr": {"plain": "{question}",
                "boxed": "Continue the text with its next number: {question} Put the number in \\boxed{{}}.",
                "tags": "Continue the text with its next number: {question} "
                        "Put the number between <answer> and </answer>."},
        "msr": {"plain": "{question}>",
                "boxed": "Find the number hidden by '?': {question} Put it in \\boxed{{}}.",
                "tags": "Find the number hidden by '?': {question} Put it between <answer> and </answer>."},
    }

    def __init__(self, cfg: RLPTConfig) -> None:
        self.default_templates = self._templates[cfg.mode]
        super().__init__(cfg)
        self.cfg: RLPTConfig = cfg
        self.source = ArithmeticTask(cfg.source)
        self.judge = JUDGES[cfg.judge]  # chosen once
        self.check_template(self._sample(random.Random(0)))

    def document(self, rng: random.Random) -> str:
        """One document of the unlabeled corpus: a true equation whose arithmetic problem is not held out."""
        for _ in range(_DRAWS):
            p = self.source._sample(rng)
            if not is_heldout(p.id, self.cfg.source.heldout_fraction):
                return f"{p.question}={p.answer}"
        raise RuntimeError(f"no training equation in {_DRAWS} draws")  # pragma: no cover - 90% are training

    def _sample(self, rng: random.Random) -> Problem:
        text = self.document(rng).replace(" ", "")
        spans = segment_spans(text)
        if self.cfg.targets == "operands":
            spans = spans[:-1]
        if self.cfg.mode == "asr":
            spans = [s for s in spans if s[0] > 0]  # a prediction needs some context
        start, end = spans[rng.randrange(len(spans))]
        cut = Cut(before=text[:start], segment=text[start:end], after=text[end:])
        question = cut.before if self.cfg.mode == "asr" else f"{cut.before}?{cut.after}"
        pid = problem_id("rlpt", text)[:8] + problem_id(f"rlpt-{self.cfg.mode}", question)[:8]
        meta = {"mode": self.cfg.mode, "before": cut.before, "after": cut.after, "equation": text}
        return Problem(id=pid, question=question, answer=cut.segment, meta=meta)

    def _verify(self, answer: str, problem: Problem) -> tuple[bool, bool]:
        cut = Cut(before=problem.meta["before"], segment=problem.answer, after=problem.meta["after"])
        return self.judge(answer, cut), True
