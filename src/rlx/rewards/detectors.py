"""Three families of AI-text detectors, small enough for the equation texts of rlx.tasks.stealth
(paper stealthrl: RoBERTa classifier, Fast-DetectGPT, Binoculars).

    clf = NGramClassifier.fit(texts, labels)                # (i) trained classifier (label 1 = AI)
    cur = CurvatureDetector(scorer)                         # (ii) likelihood curvature, Fast-DetectGPT
    bino = BinocularsDetector(observer, performer)          # (iii) perplexity / cross-perplexity
    s = det.scores(["12+34=46", "46 = 34 + 12"])            # np.ndarray, higher = more machine-like

The math lives in pure functions (`ngram_counts`, `curvature`, `binoculars`) on tensors; the
classes only hold fitted weights or models. Departures: the classifier is a logistic regression on
character n-grams instead of a fine-tuned RoBERTa; the scoring LMs (`rlx.rewards.scoring_lm`) are
character n-gram LMs fit on a seeded corpus instead of pretrained LLMs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from rlx.rewards.scoring_lm import ScoringLM

__all__ = ["Detector", "ngram_counts", "NGramClassifier", "curvature", "binoculars", "CurvatureDetector",
           "BinocularsDetector"]

_BOS, _EOS = "\x02", "\x03"  # boundary marks of the n-grams (never in the texts)


class Detector(Protocol):
    name: str

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """[N] float64, higher = more likely machine-written."""
        ...


# -- (i) a trained classifier ----------------------------------------------------------------------
def ngram_counts(text: str, n_max: int) -> dict[str, int]:
    """Counts of the character n-grams (1 <= n <= n_max) of BOS + text + EOS.

    "ab", n_max=2 -> {BOS:1, a:1, b:1, EOS:1, BOS a:1, ab:1, b EOS:1}.
    """
    s = _BOS + text + _EOS
    out: dict[str, int] = {}
    for n in range(1, n_max + 1):
        for i in range(len(s) - n + 1):
            g = s[i:i + n]
            out[g] = out.get(g, 0) + 1
    return out


class NGramClassifier:
    """Logistic regression on log(1 + count) of character n-grams (stand-in for a fine-tuned RoBERTa).

    p(AI | x) = sigmoid(w . phi(x) + b), fit by full-batch Adam on the mean binary cross-entropy plus
    l2 * |w|^2, from zero weights (deterministic). score(x) = w . phi(x) + b (the logit).
    """

    name = "classifier"

    def __init__(self, vocab: list[str], weight: torch.Tensor, bias: float, n_max: int) -> None:
        self.vocab, self.index = vocab, {g: i for i, g in enumerate(vocab)}
        self.weight, self.bias, self.n_max = weight, bias, n_max  # weight [V]

    def features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sparse phi(x) as (ids [M], offsets [N], values [M]): the vocabulary ids of each text's
        n-grams and log(1 + count); n-grams outside the vocabulary are dropped."""
        ids, offsets, vals = [], [], []
        for t in texts:
            offsets.append(len(ids))
            for g, c in ngram_counts(t, self.n_max).items():
                j = self.index.get(g)
                if j is not None:
                    ids.append(j), vals.append(c)
        return (torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long),
                torch.tensor(vals, dtype=torch.float32).log1p())

    @staticmethod
    def _logits(feats: tuple[torch.Tensor, torch.Tensor, torch.Tensor], w: torch.Tensor, b) -> torch.Tensor:
        """w . phi(x) + b for every text: [N]."""
        ids, offsets, vals = feats
        return torch.nn.functional.embedding_bag(ids, w.unsqueeze(1), offsets, mode="sum",
                                                 per_sample_weights=vals).squeeze(1) + b

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[int], n_max: int = 3, steps: int = 300,
            lr: float = 0.1, l2: float = 1e-3) -> "NGramClassifier":
        vocab = sorted({g for t in texts for g in ngram_counts(t, n_max)})
        model = cls(vocab, torch.zeros(len(vocab)), 0.0, n_max)
        feats, y = model.features(texts), torch.tensor(labels, dtype=torch.float32)  # y [N]
        w = torch.zeros(len(vocab), requires_grad=True)
        b = torch.zeros((), requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=lr)
        for _ in range(steps):
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(cls._logits(feats, w, b), y)
                    + l2 * w.pow(2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.weight, model.bias = w.detach(), float(b.detach())
        return model

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        with torch.no_grad():
            return self._logits(self.features(texts), self.weight, self.bias).double().numpy()


# -- likelihood detectors (scoring LMs: rlx.rewards.scoring_lm) -------------------------------------
def curvature(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Analytic conditional probability curvature (Fast-DetectGPT, sampling = scoring model):

        d(x) = sum_t (log q(x_t) - mu_t) / sqrt(sum_t sigma_t^2),
        mu_t = sum_v q(v) log q(v),  sigma_t^2 = sum_v q(v) log^2 q(v) - mu_t^2,

    q = q(. | x_<t), sums over unmasked t. Shapes: logits [N, T, V], targets/mask [N, T] -> [N].
    High d: the text's tokens are more likely than the model's own samples would be (machine-like).
    Paper: stealthrl (detector family 2).
    """
    lp = logits.float().log_softmax(-1)
    p = lp.exp()
    ll = lp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [N, T]
    mu = (p * lp).sum(-1)
    var = (p * lp.pow(2)).sum(-1) - mu.pow(2)
    m = mask.float()
    return ((ll - mu) * m).sum(-1) / ((var * m).sum(-1)).clamp_min(1e-12).sqrt()


def binoculars(observer_logits: torch.Tensor, performer_logits: torch.Tensor, targets: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
    """Binoculars score B = log PPL_M1(x) / log X-PPL_{M1,M2}(x) (M1 observer, M2 performer):

        log PPL_M1    = -(1/T) sum_t log M1(x_t | x_<t)
        log X-PPL     = -(1/T) sum_t sum_v M1(v | x_<t) log M2(v | x_<t)

    Shapes: logits [N, T, V], targets/mask [N, T] -> [N]. Low B: the text is about as surprising as
    the models find each other (machine-like). Paper: stealthrl (detector family 3).
    """
    m = mask.float()
    n = m.sum(-1).clamp_min(1.0)
    lp1 = observer_logits.float().log_softmax(-1)
    ll = lp1.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [N, T]
    log_ppl = -(ll * m).sum(-1) / n
    x = -(lp1.exp() * performer_logits.float().log_softmax(-1)).sum(-1)  # [N, T]
    log_xppl = (x * m).sum(-1) / n
    return log_ppl / log_xppl.clamp_min(1e-12)


def _batched(texts: Sequence[str], size: int = 256):
    for i in range(0, len(texts), size):
        yield list(texts[i:i + size])


class CurvatureDetector:
    """Fast-DetectGPT with one scoring LM; score = curvature (higher = machine-like)."""

    name = "curvature"

    def __init__(self, scorer: ScoringLM) -> None:
        self.scorer = scorer

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return torch.cat([curvature(*self.scorer.next_logprobs(b)) for b in _batched(texts)]).double().numpy()


class BinocularsDetector:
    """Binoculars with an observer and a performer LM (same vocabulary); score = -B (higher = machine-like)."""

    name = "binoculars"

    def __init__(self, observer: ScoringLM, performer: ScoringLM) -> None:
        self.observer, self.performer = observer, performer

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for b in _batched(texts):
            lo, targets, mask = self.observer.next_logprobs(b)
            lq, _, _ = self.performer.next_logprobs(b)
            out.append(-binoculars(lo, lq, targets, mask))
        return torch.cat(out).double().numpy()
