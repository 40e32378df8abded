"""Detector families (paper stealthrl): n-gram classifier, curvature, Binoculars, scoring LMs, by hand."""

import math

import numpy as np
import pytest
import torch

from rlx.rewards.detectors import (BinocularsDetector, CurvatureDetector, NGramClassifier, binoculars, curvature,
                                   ngram_counts)
from rlx.rewards.scoring_lm import ALPHABET, CharNGramLM, HFScorer

BOS, EOS = "\x02", "\x03"


def test_ngram_counts():
    assert ngram_counts("ab", 2) == {BOS: 1, "a": 1, "b": 1, EOS: 1, BOS + "a": 1, "ab": 1, "b" + EOS: 1}
    assert ngram_counts("aa", 1) == {BOS: 1, "a": 2, EOS: 1}


def test_classifier_score_by_hand():
    clf = NGramClassifier(["a", "b"], torch.tensor([1.0, -2.0]), 0.5, n_max=1)
    # "aab": a twice, b once: 0.5 + log(3) * 1 + log(2) * (-2) = 0.5 + 1.098612 - 1.386294 = 0.212318
    # "c": no n-gram in the vocabulary -> the bias 0.5
    np.testing.assert_allclose(clf.scores(["aab", "c"]), [0.5 + math.log(3) - 2 * math.log(2), 0.5], atol=1e-6)


def test_classifier_learns_the_style():
    human = ["12 + 34 = 46", "46 = 12 + 34", "7 + 8 = 15", "15 - 8 = 7"] * 5
    machine = ["12+34=46", "51+22=73", "7+8=15", "10+90=100"] * 5
    clf = NGramClassifier.fit(human + machine, [0] * 20 + [1] * 20, n_max=2, steps=100)
    s = clf.scores(["33+44=77", "33 + 44 = 77"])
    assert s[0] > 0 > s[1]


def _lp(p):  # [N, T, V] log-probs from probabilities
    return torch.tensor(p, dtype=torch.float64).log()


def test_curvature_by_hand():
    # q = (0.8, 0.2): mu = 0.8 ln .8 + .2 ln .2 = -0.500402, sigma^2 = 0.307490, sigma = 0.4 ln 4 = 0.554518
    # target 0: (ln .8 - mu) / sigma = 0.2 ln 4 / (0.4 ln 4) = 0.5; target 1: -0.8 ln 4 / (0.4 ln 4) = -2
    logp = _lp([[[0.8, 0.2]], [[0.8, 0.2]]])
    d = curvature(logp, torch.tensor([[0], [1]]), torch.ones(2, 1, dtype=torch.bool))
    torch.testing.assert_close(d, torch.tensor([0.5, -2.0], dtype=torch.float32), rtol=0, atol=1e-6)
    # two positions, targets (0, 1): (0.2 ln 4 - 0.8 ln 4) / sqrt(2 * 0.16 ln^2 4) = -0.6 / (0.4 sqrt 2) = -1.06066;
    # a third, masked position changes nothing
    logp = _lp([[[0.8, 0.2], [0.8, 0.2], [0.01, 0.99]]])
    d = curvature(logp, torch.tensor([[0, 1, 0]]), torch.tensor([[True, True, False]]))
    torch.testing.assert_close(d, torch.tensor([-0.6 / (0.4 * math.sqrt(2))], dtype=torch.float32), rtol=0, atol=1e-6)


def test_binoculars_by_hand():
    # observer (0.8, 0.2), performer (0.5, 0.5), target 0: log PPL = -ln .8 = 0.223144;
    # log X-PPL = -(0.8 ln .5 + 0.2 ln .5) = ln 2 = 0.693147; B = 0.321928 (= log2 1.25)
    b = binoculars(_lp([[[0.8, 0.2]]]), _lp([[[0.5, 0.5]]]), torch.tensor([[0]]), torch.ones(1, 1, dtype=torch.bool))
    torch.testing.assert_close(b, torch.tensor([math.log2(1.25)], dtype=torch.float32), rtol=0, atol=1e-6)


def test_char_ngram_lm_by_hand():
    v = len(ALPHABET) + 2  # 16: the alphabet, EOS, UNK
    lm = CharNGramLM.fit(["1"], order=1, beta=1.0)
    # unigram counts: '1' 1, EOS 1 (total 2); q('1') = (1 + 1/16) / (2 + 1) = 17/48; q(other) = (1/16) / 3 = 1/48
    q = lm.distribution("")
    assert float(q[ALPHABET.index("1")]) == pytest.approx(17 / 48, abs=1e-12)
    assert float(q[ALPHABET.index("2")]) == pytest.approx(1 / 48, abs=1e-12) and float(q.sum()) == pytest.approx(1.0)
    assert lm.log_likelihood("1") == pytest.approx(2 * math.log(17 / 48), abs=1e-6)  # '1' then EOS
    lm2 = CharNGramLM.fit(["12"], order=2, beta=1.0)
    # q_1('2') = (1 + 1/16) / (3 + 1) = 17/64 (unigrams '1', '2', EOS); q_2('2' | '1') = (1 + 17/64) / (1 + 1) = 81/128
    assert float(lm2.distribution("1")[ALPHABET.index("2")]) == pytest.approx(81 / 128, abs=1e-12)
    lp, targets, mask = lm2.next_logprobs(["12", "1"])
    assert lp.shape == (2, 3, v) and mask.tolist() == [[True] * 3, [True, True, False]]
    assert targets[0].tolist() == [ALPHABET.index("1"), ALPHABET.index("2"), len(ALPHABET)]


def test_likelihood_detectors_rank_the_mode_as_machine():
    corpus = ["1+2=3"] * 90 + ["3 = 1 + 2", "3 - 1 = 2", "2 + 1 = 3"] * 10
    a, b = CharNGramLM.fit(corpus, order=3), CharNGramLM.fit(corpus[::-1][:100], order=3)
    texts = ["1+2=3", "3 - 1 = 2"]
    for det in (CurvatureDetector(a), BinocularsDetector(a, b)):
        s = det.scores(texts)
        assert s.shape == (2,) and s[0] > s[1], det.name


def test_hf_scorer_layout(tiny_model_dir):
    from rlx.models import ModelConfig, load_policy

    model, tok = load_policy(ModelConfig(path=str(tiny_model_dir)))
    lp, targets, mask = HFScorer(model, tok).next_logprobs(["12+3", "1"])
    # BOS + 4 chars + EOS -> 5 predicted positions; the second row has 2 (its char and EOS)
    assert lp.shape[:2] == (2, 5) and mask.sum(1).tolist() == [5, 2]
    assert targets[1, 1].item() == tok.eos_token_id
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(2, 5), rtol=0, atol=1e-5)
    assert CurvatureDetector(HFScorer(model, tok)).scores(["12+3", "1"]).shape == (2,)
