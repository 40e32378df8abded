"""Paraphrase attacks on AI-text detectors as an RL task (paper stealthrl), in a toy world of equations.

A "text" states a true relation a + b = c. Machine text is what the arithmetic models write, the
canonical "a+b=c". Human text picks one of the eight forms of the same relation uniformly
(a+b=c, b+a=c, c=a+b, c=b+a, c-a=b, c-b=a, b=c-a, a=c-b) and puts a space at each of the 4 places
beside the two symbols with probability `human_space_prob`. Meaning is exact (`rlx.rewards.stealth`):
a paraphrase must state the same relation among the same numbers, so a policy can evade only by
changing style (form, spacing), never meaning.

    prompt      "12+34=46>"                       (a machine text, then '>')
    completion  "46 = 34 + 12"                    (the paraphrase)
    reward      gate:     1[preserved] (w + (1-w) E)     E = min (or mean) over training detectors of
                weighted: w 1[preserved] + (1-w) E     log_evasion(s_d): 0 if flagged at target_fpr, 1 at
                                                       the median human; s_d = share of calibration
                                                       humans scoring as machine-like or more
    correct     attack success: preserved and flagged by no training detector at the calibrated
                `target_fpr` threshold (so eval/accuracy is the attack success rate)

Detectors (`rlx.rewards.detectors`) are fit at construction from seeded texts, then calibrated on
fresh human texts: a char n-gram classifier; Fast-DetectGPT curvature under a scoring LM; Binoculars
with that LM as observer and a second one as performer (char n-gram LMs fit on two seeded corpora,
`lm_machine_share` machine texts, standing in for pretrained LLMs whose mode is machine style).
Detectors not in `train_detectors` never enter the reward (held out for the transfer test).
Reference completions (the SFT warm start) are a paraphrase in a form and spacing drawn from the
problem's hash, with `reference_space_prob`. Departures: texts are equations, not prose; the
detectors are small stand-ins for RoBERTa, Fast-DetectGPT and Binoculars; the evasion term is a
rank statistic against calibration humans, not a detector probability.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlx.rewards.detection_metrics import auroc, calibrate_threshold, flagged, human_survival
from rlx.rewards.detectors import BinocularsDetector, CurvatureDetector, Detector, NGramClassifier
from rlx.rewards.scoring_lm import CharNGramLM
from rlx.rewards.stealth import (bottleneck_evasion, ensemble_evasion, gated_reward, log_evasion, preserves,
                                relation, weighted_reward)
from rlx.tasks.base import Score
from rlx.tasks.common import VerifiableTask
from rlx.tasks.config import StealthConfig
from rlx.tasks.heldout import problem_id
from rlx.types import Problem

__all__ = ["FORMS", "DETECTORS", "render", "machine_text", "styled_text", "Calibrated", "fit_detectors",
           "StealthTask", "attack_report"]

FORMS = ("a+b=c", "b+a=c", "c=a+b", "c=b+a", "c-a=b", "c-b=a", "b=c-a", "a=c-b")
DETECTORS = ("classifier", "curvature", "binoculars")
_CACHE = 200_000  # memoised detector scores of single texts (rollouts repeat themselves)


def render(form: str, a: int, b: int, spaces: Sequence[bool] = (False,) * 4) -> str:
    """The relation a + b = c written in `form` (letters a b c, two symbols), spaces[k] before/after
    symbol 1, before/after symbol 2: render("c-a=b", 12, 34, (1, 1, 0, 0)) = "46 - 12=34"."""
    v = {"a": str(a), "b": str(b), "c": str(a + b)}
    sp = [" " if s else "" for s in spaces]
    return f"{v[form[0]]}{sp[0]}{form[1]}{sp[1]}{v[form[2]]}{sp[2]}{form[3]}{sp[3]}{v[form[4]]}"


def machine_text(a: int, b: int) -> str:
    """Machine style: the canonical 'a+b=c' the arithmetic models write."""
    return render(FORMS[0], a, b)


def styled_text(rng: random.Random, a: int, b: int, space_prob: float) -> str:
    """Human style (and the warm-start paraphrases): a uniform form, each of 4 spaces w.p. space_prob."""
    form = FORMS[rng.randrange(len(FORMS))]
    return render(form, a, b, [rng.random() < space_prob for _ in range(4)])


@dataclass(frozen=True)
class Calibrated:
    """A detector with its human calibration scores (sorted) and its threshold at the target FPR."""

    detector: Detector
    human_scores: np.ndarray  # [n_cal] float64, ascending
    threshold: float

    @classmethod
    def on(cls, detector: Detector, humans: Sequence[str], fpr: float) -> "Calibrated":
        h = np.sort(detector.scores(humans))
        return cls(detector, h, calibrate_threshold(h, fpr))


def _pairs(rng: random.Random, n: int, lo: int, hi: int) -> list[tuple[int, int]]:
    return [(rng.randint(lo, hi), rng.randint(lo, hi)) for _ in range(n)]


def _corpus(rng: random.Random, cfg: StealthConfig) -> list[str]:
    """The scoring LMs' corpus: machine texts with share lm_machine_share, human-style texts otherwise."""
    return [machine_text(a, b) if rng.random() < cfg.lm_machine_share else styled_text(rng, a, b, cfg.human_space_prob)
            for a, b in _pairs(rng, cfg.lm_texts, cfg.min_value, cfg.max_value)]


def fit_detectors(cfg: StealthConfig) -> dict[str, Calibrated]:
    """All three detector families, fit and calibrated on texts drawn with `detector_seed`."""
    rng = random.Random(f"stealth-detectors:{cfg.detector_seed}")
    lo, hi = cfg.min_value, cfg.max_value
    humans = [styled_text(rng, a, b, cfg.human_space_prob) for a, b in _pairs(rng, cfg.fit_texts, lo, hi)]
    machines = [machine_text(a, b) for a, b in _pairs(rng, cfg.fit_texts, lo, hi)]
    calibration = [styled_text(rng, a, b, cfg.human_space_prob) for a, b in _pairs(rng, cfg.calibration_texts, lo, hi)]
    clf = NGramClassifier.fit(humans + machines, [0] * len(humans) + [1] * len(machines), n_max=cfg.ngram,
                              steps=cfg.classifier_steps)
    scorer = CharNGramLM.fit(_corpus(rng, cfg), order=cfg.lm_order)
    performer = CharNGramLM.fit(_corpus(rng, cfg), order=cfg.lm_order)  # a sibling LM: another corpus draw
    dets: list[Detector] = [clf, CurvatureDetector(scorer), BinocularsDetector(scorer, performer)]
    return {d.name: Calibrated.on(d, calibration, cfg.target_fpr) for d in dets}


class StealthTask(VerifiableTask):
    name = "stealth"
    default_templates = {"plain": "{question}>"}

    def __init__(self, cfg: StealthConfig, detectors: dict[str, Calibrated] | None = None) -> None:
        super().__init__(cfg)
        self.cfg: StealthConfig = cfg
        self.detectors = detectors if detectors is not None else fit_detectors(cfg)
        self.train_names = list(cfg.train_detectors)
        self.heldout_names = [n for n in DETECTORS if n not in cfg.train_detectors]
        self._memo: dict[str, dict[str, float]] = {}
        self._ensemble = bottleneck_evasion if cfg.ensemble == "min" else ensemble_evasion
        self.check_template(self._sample(random.Random(0)))

    def _sample(self, rng: random.Random) -> Problem:
        a, b = rng.randint(self.cfg.min_value, self.cfg.max_value), rng.randint(self.cfg.min_value, self.cfg.max_value)
        text = machine_text(a, b)
        # the split follows the meaning (a+b and b+a are one relation with the same valid paraphrases); the
        # id's second half keeps the two orders distinct problems
        pid = problem_id(self.name, str(relation(text)))[:8] + problem_id(self.name, text)[:8]
        return Problem(id=pid, question=text, answer=text, meta={"a": a, "b": b})

    def human_texts(self, n: int, seed: int) -> list[str]:
        """`n` fresh human texts (for evaluation; disjoint seeds from the detectors' own texts)."""
        rng = random.Random(f"stealth-humans:{seed}")
        return [styled_text(rng, a, b, self.cfg.human_space_prob)
                for a, b in _pairs(rng, n, self.cfg.min_value, self.cfg.max_value)]

    def reference_completion(self, problem: Problem) -> str:
        rng = random.Random(f"stealth-reference:{problem.id}")
        return styled_text(rng, problem.meta["a"], problem.meta["b"], self.cfg.reference_space_prob)

    def extract_answer(self, completion: str) -> str | None:
        return completion if isinstance(completion, str) and relation(completion) is not None else None

    def _verify(self, answer: str, problem: Problem) -> tuple[bool, bool]:
        return preserves(answer, problem.question), relation(answer) is not None

    # -- detectors -----------------------------------------------------------------------------------
    def detector_scores(self, texts: Sequence[str], names: Sequence[str] = DETECTORS) -> dict[str, np.ndarray]:
        """{name: [N] scores} of the named detectors (higher = more machine-like)."""
        return {n: self.detectors[n].detector.scores(list(texts)) for n in names}

    def _train_scores(self, text: str) -> dict[str, float]:
        hit = self._memo.get(text)
        if hit is None:
            if len(self._memo) >= _CACHE:
                self._memo.clear()
            hit = {n: float(s[0]) for n, s in self.detector_scores([text], self.train_names).items()}
            self._memo[text] = hit
        return hit

    def score(self, completion: str, problem: Problem) -> Score:
        """Composite reward of one paraphrase; total (any string in, a Score out)."""
        text = completion if isinstance(completion, str) else ""
        parsed = relation(text) is not None
        kept = parsed and preserves(text, problem.question)
        scores = self._train_scores(text)
        ev = {n: log_evasion(float(human_survival([s], self.detectors[n].human_scores)[0]), self.cfg.target_fpr)
              for n, s in scores.items()}
        caught = any(s > self.detectors[n].threshold for n, s in scores.items())
        e = self._ensemble(list(ev.values()))
        reward = (gated_reward(kept, e, self.cfg.preserve_weight) if self.cfg.combine == "gate"
                  else weighted_reward(kept, e, self.cfg.preserve_weight))
        parts = {"preserve": float(kept), "evasion": e, "detected": float(caught),
                 **{f"evade/{n}": v for n, v in ev.items()}}
        return Score(reward=reward, correct=kept and not caught, parsed=parsed, parts=parts)


def attack_report(task: StealthTask, sources: Sequence[str], texts: Sequence[str],
                  humans: Sequence[str]) -> dict[str, float]:
    """Detection of `texts` (paraphrases of `sources`, or the sources themselves) against `humans`.

    Per detector d: `auroc/d` (humans vs texts) and `tpr/d` (share of texts above d's calibrated
    threshold, i.e. TPR at the target FPR); `fpr/d` (share of `humans` above it); `preserve` (share of
    texts keeping the source's meaning); `asr` (preserved and flagged by no training detector) and
    `asr_heldout` (preserved and flagged by no held-out detector). Paper: stealthrl.
    """
    out: dict[str, float] = {}
    t_scores, h_scores = task.detector_scores(texts), task.detector_scores(humans)
    kept = np.array([preserves(t, s) for t, s in zip(texts, sources)])
    caught_train = np.zeros(len(texts), dtype=bool)
    caught_held = np.zeros(len(texts), dtype=bool)
    for n in DETECTORS:
        tau = task.detectors[n].threshold
        hit = flagged(t_scores[n], tau)
        out[f"auroc/{n}"] = auroc(h_scores[n], t_scores[n])[0]
        out[f"tpr/{n}"] = float(hit.mean())
        out[f"fpr/{n}"] = float(flagged(h_scores[n], tau).mean())
        if n in task.train_names:
            caught_train |= hit
        else:
            caught_held |= hit
    out["preserve"] = float(kept.mean())
    out["asr"] = float((kept & ~caught_train).mean())
    out["asr_heldout"] = float((kept & ~caught_held).mean()) if task.heldout_names else float("nan")
    return out
