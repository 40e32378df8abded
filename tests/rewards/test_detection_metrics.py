"""Detector operating points and metrics (paper stealthrl), by hand."""

import numpy as np
import pytest

from rlx.rewards.detection_metrics import auroc, calibrate_threshold, flagged, human_survival, tpr_at_fpr

HUMAN = [0.1 * i for i in range(1, 11)]  # 0.1 .. 1.0


def test_threshold_keeps_fpr_at_most_target():
    # n = 10: fpr 0.1 -> k = 1 -> tau = 2nd largest = 0.9 (only 1.0 is above: FPR 0.1)
    assert calibrate_threshold(HUMAN, 0.1) == pytest.approx(0.9, abs=1e-12)
    # fpr 0.01 -> k = floor(0.1) = 0 -> tau = max = 1.0 (no human flagged)
    assert calibrate_threshold(HUMAN, 0.01) == pytest.approx(1.0, abs=1e-12)
    # fpr 0.25 -> k = 2 -> tau = 0.8
    assert calibrate_threshold(HUMAN, 0.25) == pytest.approx(0.8, abs=1e-12)
    # ties: [1, 1, 1, 0], fpr 0.5 -> k = 2 -> tau = 1 -> no human is strictly above: FPR 0 <= 0.5
    assert calibrate_threshold([1, 1, 1, 0], 0.5) == 1.0
    assert not flagged([1, 1, 1, 0], 1.0).any()
    # 0.01 * 300 is 2.9999999999999996 in floats; k must still be 3 -> tau = 4th largest of 300..1 = 297
    assert calibrate_threshold(list(range(1, 301)), 0.01) == 297


def test_tpr_at_fpr_by_hand():
    # tau = 0.9; AI scores above it: 0.95 and 1.2 -> TPR 2/4; humans above: 1.0 -> FPR 1/10
    tpr, m = tpr_at_fpr(HUMAN, [0.95, 0.85, 0.5, 1.2], 0.1)
    assert tpr == 0.5
    assert m["fpr"] == pytest.approx(0.1, abs=1e-12) and m["threshold"] == pytest.approx(0.9, abs=1e-12)


def test_auroc_by_hand():
    # ai 2 vs humans 1, 2, 3: 1 + 0.5 + 0 = 1.5; ai 4: 3 -> 4.5 / (3 * 2) = 0.75
    assert auroc([1, 2, 3], [2, 4])[0] == 0.75
    assert auroc([1, 2], [3, 4])[0] == 1.0 and auroc([3, 4], [1, 2])[0] == 0.0
    assert auroc([1, 1], [1])[0] == 0.5  # all ties
    with pytest.raises(ValueError):
        auroc([], [1.0])


def test_human_survival_by_hand():
    # humans 1..4: s = 2 -> 2 above (3, 4) + 0.5 * 1 tie -> 2.5 / 4; s = 5 -> 0; s = 0 -> 1
    np.testing.assert_allclose(human_survival([2, 5, 0], [4, 1, 3, 2]), [0.625, 0.0, 1.0], rtol=0, atol=1e-12)


def test_non_finite_scores_are_refused():
    """A NaN human score was counted as not flagged and shifted the threshold; a NaN machine score out-ranked
    every human score in AUROC (0.75 with h = [.1, .2, .3, nan])."""
    with pytest.raises(ValueError, match="finite"):
        auroc([0.1, 0.2, 0.3, np.nan], [0.5, 0.6])
    with pytest.raises(ValueError, match="finite"):
        calibrate_threshold([0.1, np.inf], 0.01)
