"""Semantic preservation and the composite evasion reward of a paraphrase attack (paper stealthrl).

The "texts" are statements of a true addition relation a + b = c, written in one of eight forms
(a+b=c, b+a=c, c=a+b, c=b+a, c-a=b, c-b=a, b=c-a, a=c-b) with or without a space on either side of
each symbol. Two texts mean the same thing iff they state the same relation among the same numbers,
`relation(text)` = (min(a, b), max(a, b), c), which is checked exactly. Style (form and spacing)
is free; meaning is not.

    key = relation("46 = 34 + 12")              # (12, 34, 46)
    p = preserves("46 = 34 + 12", "12+34=46")   # True
    r = gated_reward(p, evasion, w)             # or weighted_reward(p, evasion, w)
"""

from __future__ import annotations

import math
import re

__all__ = ["relation", "preserves", "ensemble_evasion", "bottleneck_evasion", "log_evasion", "gated_reward",
           "weighted_reward"]

# number, symbol, number, symbol, number; at most one space on each side of a symbol; no leading zeros
_STATEMENT = re.compile(r"(0|[1-9]\d{0,8}) ?([+=-]) ?(0|[1-9]\d{0,8}) ?([+=-]) ?(0|[1-9]\d{0,8})")


def relation(text: str) -> tuple[int, int, int] | None:
    """The addition relation a text states, as (min(a, b), max(a, b), c) with a + b = c, or None
    when it is not a true single-operator statement of the forms above. Total: never raises.

    "12+34=46" -> (12, 34, 46); "46-34=12" (46 = 34 + 12) -> (12, 34, 46); "12=46-34" -> (12, 34, 46);
    "12+34=47" -> None (false); "12 +34=46" -> (12, 34, 46); "12  +34=46" -> None (two spaces).
    """
    if not isinstance(text, str):
        return None
    m = _STATEMENT.fullmatch(text)
    if m is None:
        return None
    x, s1, y, s2, z = int(m[1]), m[2], int(m[3]), m[4], int(m[5])
    if (s1 == "=") == (s2 == "="):  # exactly one '=' and one operator
        return None
    if s1 == "=":  # "z = x op y" -> "x op y = z"
        x, s1, y, z = y, s2, z, x
    if s1 == "+":
        a, b, c = x, y, z  # x + y = z
    else:
        a, b, c = y, z, x  # x - y = z  <=>  y + z = x
    if a + b != c:
        return None
    return (min(a, b), max(a, b), c)


def preserves(paraphrase: str, source: str) -> bool:
    """Semantic preservation: the paraphrase states the same true relation as the source."""
    key = relation(paraphrase)
    return key is not None and key == relation(source)


def ensemble_evasion(evasions: list[float]) -> float:
    """E = (1/K) sum_k e_k: mean evasion over the K training detectors (each e_k in [0, 1])."""
    if not evasions:
        raise ValueError("needs at least one training detector")
    return sum(evasions) / len(evasions)


def bottleneck_evasion(evasions: list[float]) -> float:
    """E = min_k e_k: the least-evaded training detector. An attack succeeds only if no detector flags
    it, so this E is zero until every detector is evaded a little (a mean can be maximised by fully
    evading some detectors while another still flags every text)."""
    if not evasions:
        raise ValueError("needs at least one training detector")
    return min(evasions)


def log_evasion(survival: float, fpr: float) -> float:
    """E_d = clip(log(s / alpha) / log(0.5 / alpha), 0, 1), s the human survival of the text's score
    (`rlx.rewards.detection_metrics.human_survival`), alpha the target FPR. Paper: stealthrl.

    0 when the detector flags the text at the alpha operating point (s <= alpha), 1 once the text looks
    as human as the median human (s >= 0.5), log-linear in between: s = 0.05, alpha = 0.01 -> ln 5 / ln 50.
    """
    if not 0.0 < fpr < 0.5:
        raise ValueError(f"fpr must be in (0, 0.5), got {fpr}")
    if survival <= fpr:
        return 0.0
    return min(1.0, math.log(survival / fpr) / math.log(0.5 / fpr))


def gated_reward(preserved: bool, evasion: float, preserve_weight: float = 0.0) -> float:
    """r = 1[preserved] * (w + (1 - w) * E): nothing unless the meaning is kept; then a floor w for
    keeping it and the rest for evading. w = 0: the pure gate. Paper: stealthrl (composite reward)."""
    return preserve_weight + (1.0 - preserve_weight) * float(evasion) if preserved else 0.0


def weighted_reward(preserved: bool, evasion: float, preserve_weight: float) -> float:
    """r = w * 1[preserved] + (1 - w) * E: a trade-off; with w < 1 a meaning-breaking text can still
    earn (1 - w) * E. Paper: stealthrl (composite reward)."""
    return preserve_weight * float(preserved) + (1.0 - preserve_weight) * float(evasion)
