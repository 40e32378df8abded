"""Scoring language models for likelihood-based AI-text detectors (paper stealthrl).

A scoring LM gives, for each text, its next-token distributions at every position of
BOS + text + EOS, in one padded tensor layout that `rlx.rewards.detectors` consumes:

    lp, targets, mask = lm.next_logprobs(["12+34=46", "46 = 34 + 12"])
    # lp [N, T, V] log q(v | x_<t); targets [N, T] the actual next tokens (text, then EOS); mask [N, T]

Two implementations:
    CharNGramLM   an interpolated character n-gram LM fit by counting (milliseconds); the stand-in for a
                  pretrained LLM on this repo's equation texts (training a neural LM per run is too slow
                  on the shared CPUs, and the shipped arith-base never learned to model prompts)
    HFScorer      any Hugging Face causal LM + tokenizer (for real detectors on real text)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

__all__ = ["ScoringLM", "ALPHABET", "CharNGramLM", "HFScorer"]

ALPHABET = "0123456789+-= "  # the characters of equation texts; EOS and UNK follow
_EOS, _UNK = len(ALPHABET), len(ALPHABET) + 1
_BOS = "^"  # context padding only (never predicted)


class ScoringLM(Protocol):
    def next_logprobs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logprobs [N, T, V] float32, targets [N, T] long, mask [N, T] bool), right-padded."""
        ...


def _ids(text: str) -> list[int]:
    return [ALPHABET.index(ch) if ch in ALPHABET else _UNK for ch in text] + [_EOS]


class CharNGramLM:
    """Character n-gram LM with hierarchical Dirichlet-prior interpolation (orders 0..n-1 of context):

        q_0(v)          = 1 / V
        q_k(v | h_k)    = (c(h_k, v) + beta * q_{k-1}(v | h_{k-1})) / (c(h_k) + beta),

    h_k the last k characters (BOS-padded), c counts over the corpus. V = len(ALPHABET) + 2 (EOS, UNK).
    """

    def __init__(self, order: int, beta: float, counts: list[dict[str, list[int]]]) -> None:
        self.order, self.beta, self.counts = order, beta, counts  # counts[k][h] = [V] next-token counts
        self.vocab = len(ALPHABET) + 2
        self._memo: dict[str, torch.Tensor] = {}

    @classmethod
    def fit(cls, texts: Sequence[str], order: int = 4, beta: float = 1.0) -> "CharNGramLM":
        if order < 1 or beta <= 0:
            raise ValueError(f"order must be >= 1 and beta > 0, got {order}, {beta}")
        v = len(ALPHABET) + 2
        counts: list[dict[str, list[int]]] = [{} for _ in range(order)]
        for t in texts:
            ctx, ids = _BOS * (order - 1) + t, _ids(t)
            for i, tok in enumerate(ids):
                hist = ctx[i:i + order - 1]  # the order-1 characters before position i
                for k in range(order):
                    row = counts[k].setdefault(hist[len(hist) - k:] if k else "", [0] * v)
                    row[tok] += 1
        return cls(order, beta, counts)

    def distribution(self, history: str) -> torch.Tensor:
        """q(. | history) as [V] probabilities (history: the last order-1 characters, BOS-padded)."""
        hit = self._memo.get(history)
        if hit is not None:
            return hit
        q = [1.0 / self.vocab] * self.vocab
        for k in range(self.order):
            row = self.counts[k].get(history[len(history) - k:] if k else "")
            if row is not None:
                total = sum(row)
                q = [(c + self.beta * p) / (total + self.beta) for c, p in zip(row, q)]
        out = torch.tensor(q, dtype=torch.float64)
        self._memo[history] = out
        return out

    def next_logprobs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = [_ids(t) for t in texts]
        width = max(len(r) for r in rows)
        lp = torch.zeros(len(rows), width, self.vocab, dtype=torch.float64)
        targets = torch.full((len(rows), width), _EOS, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for n, (t, ids) in enumerate(zip(texts, rows)):
            ctx = _BOS * (self.order - 1) + t
            for i in range(len(ids)):
                lp[n, i] = self.distribution(ctx[i:i + self.order - 1]).log()
            targets[n, :len(ids)], mask[n, :len(ids)] = torch.tensor(ids), True
        return lp.float(), targets, mask

    def log_likelihood(self, text: str) -> float:
        """log q(text + EOS) = sum_t log q(x_t | x_<t) (for tests and inspection)."""
        lp, targets, _ = self.next_logprobs([text])
        return float(lp[0].double().gather(-1, targets[0].unsqueeze(-1)).sum())


class HFScorer:
    """A Hugging Face causal LM as a scoring LM: log-softmax of its logits on BOS + text + EOS."""

    def __init__(self, model, tokenizer) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer

    @torch.no_grad()
    def next_logprobs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tok = self.tokenizer
        rows = [[tok.bos_token_id] + tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)], attn[i, :len(r)] = torch.tensor(r), 1
        dev = next(self.model.parameters()).device  # the detector model may be on a GPU; results come back on the CPU
        logits = self.model(input_ids=ids.to(dev), attention_mask=attn.to(dev)).logits[:, :-1].float().cpu()
        return logits.log_softmax(-1), ids[:, 1:], attn[:, 1:].bool()
