"""Per-group advantage scales (papers qhawkeye, puzzlecraft) by hand, and through the Objective."""

import math

import pytest
import torch
from pydantic import ValidationError

from rlx.objectives import group_weights as gw
from rlx.objectives.build import build_objective
from rlx.objectives.config import ObjectiveConfig


def test_answer_values_parse_numbers_and_mark_failures():
    v = gw.answer_values(["3", "-1.5", None, "x", "7/2"])
    assert v[:2].tolist() == [3.0, -1.5] and v[4].item() == 3.5
    assert math.isnan(v[2]) and math.isnan(v[3])


def test_uncertainty_scale_hand_values():
    # group 1: scores 1, 5 on [1, 5] -> population var 4 = the maximum -> u = 1 -> exp(-0.2)
    # group 2: 3, 3 -> var 0 -> 1;  group 3: 2, NaN -> one parsed -> 1;  group 4: 1, 9 -> clamped to 1, 5 -> u = 1
    v = torch.tensor([1.0, 5.0, 3.0, 3.0, 2.0, math.nan, 1.0, 9.0])
    s = gw.uncertainty_scale(v, 2, 1.0, 5.0, alpha=0.2)
    torch.testing.assert_close(s, torch.tensor([math.exp(-0.2), 1.0, 1.0, math.exp(-0.2)]))
    # 2, 4 on [1, 5]: var 1 -> u = 1/4
    torch.testing.assert_close(gw.uncertainty_scale(torch.tensor([2.0, 4.0]), 2, 1, 5, 1.0),
                               torch.tensor([math.exp(-0.25)]))
    with pytest.raises(ValueError, match="empty"):
        gw.uncertainty_scale(v, 2, 5.0, 1.0, 0.2)


def test_dispersion_hand_values():
    answers = ["1", "1", "1", "1", "1", "2", "3", "4", "1", "1", "2", "2", None, None, None, "5"]
    d = gw.answer_dispersion(answers, 4)
    # collapsed -> 0; four distinct -> 1; two and two -> log 2 / log 4 = 0.5; None x3 + one -> H(3/4, 1/4)/log 4
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(4)
    torch.testing.assert_close(d, torch.tensor([0.0, 1.0, 0.5, h]))
    torch.testing.assert_close(gw.dispersion_scale(d, 0.5), torch.tensor([0.5, 1.0, 0.75, 0.5 + 0.5 * h]))
    with pytest.raises(ValueError, match="floor"):
        gw.dispersion_scale(d, 1.5)


def test_objective_group_scale_combines_both_and_is_off_by_default():
    answers = ["1", "5", "3", "3"]
    assert not build_objective(ObjectiveConfig()).needs_answers
    off, m = build_objective(ObjectiveConfig()).group_scale(answers, 2)
    assert off.tolist() == [1.0, 1.0] and m == {}
    obj = build_objective(ObjectiveConfig(uncertainty_alpha=0.2, dispersion_floor=0.5))
    assert obj.needs_answers
    s, m = obj.group_scale(answers, 2)
    # group 1: u = 1 and D = 1 -> exp(-0.2) * 1; group 2: u = 0 and D = 0 -> 1 * 0.5
    torch.testing.assert_close(s, torch.tensor([math.exp(-0.2), 0.5]))
    assert set(m) == {"uncertainty_scale_mean", "dispersion_mean"}
    with pytest.raises(ValueError, match="whole groups"):
        obj.group_scale(answers[:3], 2)
    with pytest.raises(ValueError, match="whole groups"):
        obj.group_scale([], 2)


def test_uncertainty_range_validated_at_load():
    assert ObjectiveConfig(uncertainty_range=[-100, 100]).uncertainty_range == (-100.0, 100.0)
    with pytest.raises(ValidationError, match="uncertainty_range"):
        ObjectiveConfig(uncertainty_range=[3, 3])
