"""pass@k spectra with bootstrap intervals across problems and seeds.

Papers nsr, prorl, brorl and ace compare methods by the whole pass@k curve (k = 1 .. 256), not one k.
Given, for each seed s and problem p, n[s, p] samples of which c[s, p] are correct:

    pass@k[s, p] = 1 - C(n - c, k) / C(n, k)            (unbiased estimator, rlx.evaluation.passk)
    spectrum(k)  = (1 / (S P)) sum_{s, p} pass@k[s, p]

Interval (two-way bootstrap): each resample draws S seeds with replacement and, independently, P
problems with replacement (the same problem draw for every seed, since seeds are evaluated on the
same problem set), and recomputes spectrum(k) on the resampled grid; percentile interval per k.
With resample=("problems",) only problems are drawn (for one seed); ("seeds",) only seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlx.config import ConfigError
from rlx.evaluation.passk import pass_at_k_array, powers_of_two
from rlx.evaluation.stats import SeedLike, make_rng, percentile_interval

__all__ = ["PassKSpectrum", "passk_matrix", "passk_spectrum", "spectrum_from_indices"]

_CHUNK_ELEMS = 4_000_000


@dataclass(frozen=True)
class PassKSpectrum:
    ks: np.ndarray        # [K] int
    point: np.ndarray     # [K] mean pass@k over seeds and problems
    low: np.ndarray       # [K] lower bound of the percentile interval
    high: np.ndarray      # [K] upper bound
    per_seed: np.ndarray  # [S, K] mean pass@k over problems, per seed


def _counts(n, c) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(c)
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2 or c.size == 0:
        raise ConfigError(f"pass@k counts: expected c of shape [seeds, problems], got {np.shape(c)}")
    if not (np.ndim(n) == 0 or np.shape(n) == c.shape or (np.ndim(n) == 1 and c.shape[0] == 1
                                                             and np.shape(n) == c.shape[1:])):
        # a 1-D n per seed would broadcast along the problems axis: refuse it rather than guess
        raise ConfigError(f"pass@k counts: n has shape {np.shape(n)} but c has shape {c.shape} "
                          "(give n as a scalar or with c's shape)")
    n = np.broadcast_to(np.asarray(n), c.shape)
    if not (np.all(np.isfinite(c)) and np.all(c == np.round(c)) and np.all(np.isfinite(n)) and np.all(n == np.round(n))):
        raise ConfigError("pass@k counts: n and c must be whole numbers (samples drawn, samples correct); "
                          "1.7 used to be read as 1")
    if np.any(c < 0) or np.any(c > n):
        raise ConfigError("pass@k counts: need 0 <= c <= n for every problem")
    if np.any(n < 1):
        raise ConfigError("pass@k counts: every problem needs at least one sample (n >= 1)")
    return n.astype(np.int64), c.astype(np.int64)


def passk_matrix(n, c, ks: Sequence[int]) -> np.ndarray:
    """pass@k per seed, k and problem: [S, K, P] from n, c of shape [S, P] (n may be a scalar)."""
    n, c = _counts(n, c)
    if not len(ks) or any(int(k) != k for k in ks) or min(ks) < 1 or max(ks) > int(n.min()):
        raise ConfigError(f"pass@k: k must be in 1..{int(n.min())} (the fewest samples of any problem), got {list(ks)}")
    return np.stack([pass_at_k_array(n[s], c[s], list(ks)) for s in range(c.shape[0])])


def _resample_counts(idx: np.ndarray, size: int) -> np.ndarray:
    b = idx.shape[0]
    flat = (np.arange(b)[:, None] * size + idx).ravel()
    return np.bincount(flat, minlength=b * size).reshape(b, size).astype(np.float64)


def spectrum_from_indices(m: np.ndarray, seed_idx: np.ndarray, prob_idx: np.ndarray) -> np.ndarray:
    """Resampled spectra [B, K] from m [S, K, P], seed_idx [B, S'] and prob_idx [B, P'] (vectorised).

    Equals mean over (i, j) of m[seed_idx[b, i], :, prob_idx[b, j]], computed through resample counts:
    (seed counts [B, S]) @ m @ (problem counts [B, P]) / (S' P').
    """
    s, k, p = m.shape
    b = seed_idx.shape[0]
    ws = _resample_counts(seed_idx, s)  # [B, S]: how often each seed was drawn
    wp = _resample_counts(prob_idx, p)  # [B, P]
    over_seeds = (ws @ m.reshape(s, k * p)).reshape(b, k, p)  # [B, K, P]
    return np.einsum("bkp,bp->bk", over_seeds, wp) / (seed_idx.shape[1] * prob_idx.shape[1])


def passk_spectrum(
    n,
    c,
    ks: Sequence[int] | None = None,
    reps: int = 10_000,
    confidence: float = 0.95,
    seed: SeedLike = 0,
    resample: Sequence[str] = ("problems", "seeds"),
) -> PassKSpectrum:
    """The pass@k curve for k = 1, 2, 4, ... (default: powers of two up to min n) with intervals.

    n, c: [seeds, problems] sample and correct counts ([problems] for one seed; n may be a scalar).
    Paper: nsr, prorl, brorl, ace (curves); rliable (percentile bootstrap).
    """
    n, c = _counts(n, c)
    ks = list(ks) if ks is not None else powers_of_two(int(n.min()))
    unknown = set(resample) - {"problems", "seeds"}
    if unknown or not resample:
        raise ConfigError(f"resample = {list(resample)!r}: expected a non-empty subset of ('problems', 'seeds')")
    if not (isinstance(reps, (int, np.integer)) and reps >= 1) or not 0 < confidence < 1:
        raise ConfigError(f"reps = {reps!r}, confidence = {confidence!r}: expected reps >= 1 and 0 < confidence < 1")
    s, p = c.shape
    if "seeds" in resample and s < 2:
        raise ConfigError("pass@k spectrum: cannot resample seeds from a single seed; "
                          "run more seeds or pass resample=('problems',)")
    if "problems" in resample and p < 2:
        raise ConfigError("pass@k spectrum: cannot resample problems from a single problem")
    m = passk_matrix(n, c, ks)  # [S, K, P]
    rng = make_rng(seed)
    dist = []
    chunk = max(1, _CHUNK_ELEMS // (len(ks) * p + s))
    for start in range(0, reps, chunk):
        b = min(chunk, reps - start)
        si = rng.integers(0, s, size=(b, s)) if "seeds" in resample else np.broadcast_to(np.arange(s), (b, s))
        pi = rng.integers(0, p, size=(b, p)) if "problems" in resample else np.broadcast_to(np.arange(p), (b, p))
        dist.append(spectrum_from_indices(m, si, pi))
    low, high = percentile_interval(np.concatenate(dist), confidence)
    per_seed = m.mean(axis=2)
    return PassKSpectrum(np.asarray(ks), per_seed.mean(axis=0), low, high, per_seed)
