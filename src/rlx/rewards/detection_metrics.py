"""Operating points and metrics of AI-text detectors (paper stealthrl).

Convention: a detector's score is higher for text it believes machine-written; a text is flagged
when its score is strictly above a threshold calibrated on human-written text.

    tau = calibrate_threshold(human_scores, fpr=0.01)     # FPR on these humans <= 1%
    tpr, _ = tpr_at_fpr(human_scores, ai_scores, 0.01)    # share of AI texts flagged at that tau
    auc, _ = auroc(human_scores, ai_scores)               # P(ai > human) + 0.5 P(tie)
    e = human_survival(ai_scores, human_scores)          # how human-like each text looks, in [0, 1]

All functions are pure (numpy in, `(value, metrics)` out where there is more than one number).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["calibrate_threshold", "flagged", "tpr_at_fpr", "auroc", "human_survival"]


def _as_1d(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError("needs at least one score")
    if not np.all(np.isfinite(a)):  # a NaN human score moved the threshold; a NaN AI score out-ranked every human
        raise ValueError(f"detector scores must be finite; got {int((~np.isfinite(a)).sum())} non-finite")
    return a


def calibrate_threshold(human_scores, fpr: float) -> float:
    """tau = h_(k+1), the (k+1)-th largest human score, k = floor(fpr * n). Paper: stealthrl.

    Flagging `score > tau` then flags at most k of the n human texts (fewer when scores tie at
    tau), so the false-positive rate on the calibration humans is <= fpr.
    """
    if not 0.0 <= fpr < 1.0:
        raise ValueError(f"fpr must be in [0, 1), got {fpr}")
    h = np.sort(_as_1d(human_scores))[::-1]
    k = math.floor(fpr * h.size + 1e-9)  # 1e-9: 0.01 * 300 is 2.9999999999999996 in floats
    return float(h[k])


def flagged(scores, threshold: float) -> np.ndarray:
    """1[score > tau] per text (bool array)."""
    return _as_1d(scores) > threshold


def tpr_at_fpr(human_scores, ai_scores, fpr: float) -> tuple[float, dict[str, float]]:
    """TPR at the threshold calibrated on `human_scores` at `fpr`: (1/m) sum_j 1[a_j > tau].

    Returns (tpr, {"threshold": tau, "fpr": realised FPR on the same humans}).
    """
    tau = calibrate_threshold(human_scores, fpr)
    tpr = float(flagged(ai_scores, tau).mean())
    return tpr, {"threshold": tau, "fpr": float(flagged(human_scores, tau).mean())}


def auroc(human_scores, ai_scores) -> tuple[float, dict[str, float]]:
    """AUROC = (1/(n m)) sum_{i,j} (1[a_j > h_i] + 0.5 * 1[a_j = h_i]) (Mann-Whitney U / (n m)).

    1.0: every AI text scores above every human text; 0.5: chance; 0.0: every AI text looks more
    human than every human text. Computed by ranks in O((n + m) log(n + m)).
    """
    h, a = _as_1d(human_scores), _as_1d(ai_scores)
    below = np.searchsorted(np.sort(h), a, side="left")  # humans strictly below each a_j
    ties = np.searchsorted(np.sort(h), a, side="right") - below
    u = below.sum() + 0.5 * ties.sum()
    return float(u / (h.size * a.size)), {"n_human": float(h.size), "n_ai": float(a.size)}


def human_survival(scores, human_scores) -> np.ndarray:
    """e(s) = (1/n) sum_i (1[h_i > s] + 0.5 * 1[h_i = s]): the share of human texts scoring as
    machine-like as s or more. Paper: stealthrl (evasion term of the reward, scale-free across
    detector families).

    A text flagged at the 1%-FPR threshold has e <= 0.01 (a text exactly at the threshold is not flagged and
    can still get e = 0.01 or less when fpr * n is not an integer); a typical human text has e ~ 0.5; a text
    more human-like than every calibration human has e = 1.
    """
    h = np.sort(_as_1d(human_scores))
    s = _as_1d(scores)
    above = h.size - np.searchsorted(h, s, side="right")
    ties = np.searchsorted(h, s, side="right") - np.searchsorted(h, s, side="left")
    return (above + 0.5 * ties) / h.size
