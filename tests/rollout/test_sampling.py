"""SamplingParams validation and the per-step sampling math (truncation, logprobs, frequencies)."""

from __future__ import annotations

import math

import pytest
import torch

from rlx.config import ConfigError, build_config
from rlx.rollout import SamplingParams, step_seed
from rlx.rollout.hf import sample_tokens, truncate_logits

LOGITS = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))  # probabilities 0.5, 0.3, 0.2


def test_params_validation_names_the_field():
    with pytest.raises(ConfigError, match="temperature"):
        build_config(SamplingParams, {"temperature": -1})
    with pytest.raises(ConfigError, match="top_p"):
        build_config(SamplingParams, {"top_p": 0})
    with pytest.raises(ConfigError, match="stop"):
        build_config(SamplingParams, {"stop": ["ok", ""]})
    with pytest.raises(ConfigError, match="unknown key 'seed'"):
        build_config(SamplingParams, {"seed": 3})
    assert SamplingParams(temperature=0).greedy and not SamplingParams().greedy


def test_step_seed():
    assert step_seed(0, 0) == 0
    assert step_seed(1, 2) == 1_000_005  # 1 * 1_000_003 + 2
    assert len({step_seed(s, k) for s in range(5) for k in range(100)}) == 500


def test_truncate_top_p_hand_computed():
    # sorted mass before each token: 0, 0.5, 0.8
    # top_p 0.6 keeps tokens with mass-before < 0.6 -> {0, 1}; top_p 0.5 -> {0}; top_p 0.81 -> all
    keep = lambda top_p: torch.isfinite(truncate_logits(LOGITS, 0, top_p))[0].tolist()
    assert keep(0.6) == [True, True, False]
    assert keep(0.5) == [True, False, False]
    assert keep(0.81) == [True, True, True]
    # order does not matter: the same distribution permuted
    perm = LOGITS[:, [2, 0, 1]]
    assert torch.isfinite(truncate_logits(perm, 0, 0.6))[0].tolist() == [False, True, True]


def test_truncate_top_k_hand_computed():
    assert torch.isfinite(truncate_logits(LOGITS, 1, 1.0))[0].tolist() == [True, False, False]
    assert torch.isfinite(truncate_logits(LOGITS, 2, 1.0))[0].tolist() == [True, True, False]
    assert torch.isfinite(truncate_logits(LOGITS, 3, 1.0))[0].tolist() == [True, True, True]
    # top_k 2 then top_p 0.6 of the renormalised {0.625, 0.375}: mass-before 0, 0.625 -> keep {0}
    assert torch.isfinite(truncate_logits(LOGITS, 2, 0.6))[0].tolist() == [True, False, False]


def test_logprobs_are_those_of_the_truncated_tempered_distribution():
    g = torch.Generator().manual_seed(0)
    logits = LOGITS.expand(4000, 3)
    # top_k 2: sampled from {0.5, 0.3} / 0.8 -> logprobs log(0.625) or log(0.375); token 2 never drawn
    tok, lp = sample_tokens(logits, SamplingParams(top_k=2), g)
    assert set(tok.tolist()) == {0, 1}
    expect = torch.where(tok == 0, math.log(0.625), math.log(0.375))
    assert torch.allclose(lp, expect, atol=1e-6)
    assert abs((tok == 0).float().mean().item() - 0.625) < 0.03  # 4000 draws: std 0.0077
    # temperature 2: p ~ sqrt(p) = [0.7071, 0.5477, 0.4472] / 1.7020 = [0.4155, 0.3218, 0.2628]
    tok, lp = sample_tokens(logits, SamplingParams(temperature=2.0), g)
    p = torch.tensor([0.5, 0.3, 0.2])
    tempered = (p.sqrt() / p.sqrt().sum()).log()
    assert torch.allclose(tempered.exp(), torch.tensor([0.4155, 0.3218, 0.2628]), atol=1e-4)  # the hand values
    assert torch.allclose(lp, tempered[tok], atol=1e-6)
    freq = torch.bincount(tok, minlength=3).float() / len(tok)
    assert torch.allclose(freq, tempered.exp(), atol=0.03)


def test_greedy_uses_untempered_logprobs():
    tok, lp = sample_tokens(LOGITS.expand(3, 3), SamplingParams(temperature=0), None)
    assert tok.tolist() == [0, 0, 0]
    assert torch.allclose(lp, torch.full((3,), math.log(0.5)), atol=1e-6)


def test_top_k_1_is_argmax_with_logprob_zero():
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(1))
    tok, lp = sample_tokens(logits, SamplingParams(top_k=1, temperature=1.3), torch.Generator().manual_seed(2))
    assert torch.equal(tok, logits.argmax(-1))
    assert torch.equal(lp, torch.zeros(64))  # the point mass has probability 1
