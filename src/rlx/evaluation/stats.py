"""Aggregate metrics and stratified-bootstrap interval estimates on `runs x tasks` score arrays.

Paper: rliable (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice").

Definitions (scores s[r, t], R runs, T tasks, N = R*T):
    mean(s)            = (1/T) sum_t (1/R) sum_r s[r, t]
    median(s)          = median over t of the per-task means (1/R) sum_r s[r, t]
    iqm(s)             = 25%-trimmed mean of all N scores: sort them, drop floor(N/4) from each end,
                         average the rest (scipy.stats.trim_mean(s, 0.25, axis=None))
    optimality_gap(s)  = gamma - (1/N) sum_{r,t} min(s[r, t], gamma)
    profile(s, tau)    = (1/N) sum_{r,t} 1[s[r, t] > tau]            (run-score distribution)
                         or (1/T) sum_t 1[mean_r s[r, t] > tau]      (average-score distribution)
    P(X > Y)           = (1/T) sum_t (1/(R_x R_y)) sum_{i,j} (1[x_it > y_jt] + 0.5 * 1[x_it = y_jt])
                         (the Mann-Whitney U statistic of task t over R_x R_y, averaged over tasks)

Stratified bootstrap: each resample draws, for every task independently, R runs with replacement
from that task's runs (optionally also T tasks with replacement). Intervals use the percentile
method: the (1-c)/2 and (1+c)/2 quantiles (linear interpolation) of the resampled statistic.

Every aggregate works on `[..., R, T]` arrays (leading axes are a batch of resamples), so the point
estimate and the bootstrap use one definition. All resample indices of a call are drawn from one
`numpy.random.Generator`; a seed gives the same intervals every time. Intervals from one run are
refused: with R = 1 every resample equals the data and the interval would be a single point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rlx.config import ConfigError

__all__ = [
    "MetricName",
    "METRICS",
    "Interval",
    "mean",
    "median",
    "iqm",
    "optimality_gap",
    "as_score_matrix",
    "make_rng",
    "resample_indices",
    "percentile_interval",
    "bootstrap_distribution",
    "bootstrap_ci",
    "interval_estimates",
    "performance_profile",
    "performance_profile_ci",
    "probability_of_improvement",
    "probability_of_improvement_ci",
]

MetricName = Literal["mean", "median", "iqm", "optimality_gap"]
SeedLike = int | np.random.Generator | None
Statistic = MetricName | Callable[[np.ndarray], np.ndarray]

# resamples are processed in chunks of at most this many gathered scores (memory bound only;
# indices are drawn chunk by chunk from one generator stream, so results do not depend on it)
_CHUNK_ELEMS = 4_000_000


# ---------------------------------------------------------------------------------------------
# aggregates: [..., R, T] -> [...]
# ---------------------------------------------------------------------------------------------
def mean(scores: np.ndarray) -> np.ndarray:
    """Mean of per-task means: (1/T) sum_t (1/R) sum_r s[r, t]. Paper: rliable."""
    return np.asarray(scores).mean(axis=-2).mean(axis=-1)


def median(scores: np.ndarray) -> np.ndarray:
    """Median over tasks of the per-task mean scores. Paper: rliable."""
    task_means = np.sort(np.asarray(scores, dtype=np.float64).mean(axis=-2), axis=-1)
    t = task_means.shape[-1]
    if t % 2:
        return task_means[..., t // 2]
    return 0.5 * (task_means[..., t // 2 - 1] + task_means[..., t // 2])


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean: drop floor(N/4) lowest and highest of the N = R*T scores, average the rest.

    Equals scipy.stats.trim_mean(scores, 0.25, axis=None). Paper: rliable. A NaN score gives NaN (the sort
    put it last, where the trim dropped it), as in mean, median and optimality_gap.
    """
    s = np.asarray(scores, dtype=np.float64)
    flat = s.reshape(*s.shape[:-2], -1)
    n = flat.shape[-1]
    cut = int(0.25 * n)
    if cut == 0:
        return flat.mean(axis=-1)
    # a full sort of short rows is faster than np.partition with two pivots (numpy's SIMD sort)
    ordered = np.sort(flat, axis=-1)
    out = ordered[..., cut : n - cut].mean(axis=-1)
    return np.where(np.isnan(ordered[..., -1]), np.nan, out)  # NaNs sort last


def optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """gamma - mean(min(s, gamma)): how far runs fall short of the target gamma. Paper: rliable."""
    s = np.asarray(scores, dtype=np.float64)
    return gamma - np.minimum(s, gamma).mean(axis=(-2, -1))


METRICS: dict[str, Callable[..., np.ndarray]] = {
    "mean": mean,
    "median": median,
    "iqm": iqm,
    "optimality_gap": optimality_gap,
}


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile-bootstrap confidence interval."""

    point: float
    low: float
    high: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.point, self.low, self.high)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def make_rng(seed: SeedLike) -> np.random.Generator:
    """An int (or None) seeds a fresh PCG64 generator; a Generator is used as is (and advanced)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def as_score_matrix(scores: np.ndarray | Sequence, name: str = "scores") -> np.ndarray:
    """[R] -> [R, 1]; [R, T] kept. Checks for finite values and at least one run."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2:
        raise ConfigError(f"{name}: expected a [runs] or [runs, tasks] array, got shape {s.shape}")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ConfigError(f"{name}: empty score array of shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ConfigError(f"{name}: scores contain NaN or inf")
    return s


def _need_runs(s: np.ndarray, name: str) -> None:
    if s.shape[0] < 2:
        raise ConfigError(
            f"{name}: cannot compute a confidence interval from a single run (runs=1); "
            "run more seeds (e.g. rlx sweep --seeds 5)"
        )


def _check(reps: int, confidence: float) -> None:
    if not (isinstance(reps, (int, np.integer)) and reps >= 1):
        raise ConfigError(f"reps = {reps!r}: expected a positive integer")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence = {confidence!r}: expected a value in (0, 1)")


def resample_indices(
    rng: np.random.Generator, n_runs: int, n_tasks: int, reps: int, task_bootstrap: bool = False,
    paired: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified bootstrap indices. Returns (run_idx [reps, R, T], task_idx [reps, T]).

    Resample b is `scores[run_idx[b], task_idx[b][None, :]]`: column j holds task task_idx[b, j]
    (j itself unless task_bootstrap) and its R runs drawn with replacement from that task's runs.
    paired: the T columns are measurements of the same R runs (several metrics of one seed, as in
    `rlx compare`), so whole runs are drawn: one run index per row, shared by every column. With
    independent columns (rliable's tasks, trained separately) each column draws its own.
    With T = 1 both draw the same indices from the same generator state.
    """
    if paired:
        run_idx = np.broadcast_to(rng.integers(0, n_runs, size=(reps, n_runs, 1), dtype=np.int32),
                                  (reps, n_runs, n_tasks))
    else:
        run_idx = rng.integers(0, n_runs, size=(reps, n_runs, n_tasks), dtype=np.int32)
    if task_bootstrap:
        task_idx = rng.integers(0, n_tasks, size=(reps, n_tasks), dtype=np.int32)
    else:
        task_idx = np.broadcast_to(np.arange(n_tasks, dtype=np.int32), (reps, n_tasks))
    return run_idx, task_idx


def _chunks(reps: int, per_rep: int):
    size = max(1, _CHUNK_ELEMS // max(1, per_rep))
    for start in range(0, reps, size):
        yield min(size, reps - start)


def _resolve(statistic: Statistic, gamma: float) -> Callable[[np.ndarray], np.ndarray]:
    if callable(statistic):
        return statistic
    if statistic not in METRICS:
        raise ConfigError(f"statistic = {statistic!r}: expected one of {sorted(METRICS)} or a callable")
    if statistic == "optimality_gap":
        return lambda s: optimality_gap(s, gamma)
    return METRICS[statistic]


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-method interval over axis 0 of bootstrap samples: ((1-c)/2, (1+c)/2) quantiles."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail], axis=0)
    return low, high


def bootstrap_distribution(
    scores: np.ndarray,
    statistics: Sequence[Callable[[np.ndarray], np.ndarray]],
    reps: int,
    rng: np.random.Generator,
    task_bootstrap: bool = False,
    paired: bool = False,
) -> list[np.ndarray]:
    """Apply each statistic to the same `reps` stratified resamples of `scores` [R, T] (`paired`: see
    `resample_indices`).

    Returns one array [reps, ...] per statistic. Fully vectorised: each chunk of resamples is one
    fancy-indexing gather `scores[run_idx, task_idx]` -> [chunk, R, T] and one batched reduction.
    """
    r, t = scores.shape
    out: list[list[np.ndarray]] = [[] for _ in statistics]
    for n in _chunks(reps, r * t):
        run_idx, task_idx = resample_indices(rng, r, t, n, task_bootstrap, paired)
        flat_idx = run_idx * t + task_idx[:, None, :]  # index into scores.ravel() (row-major [R, T])
        sample = np.take(scores.ravel(), flat_idx)  # [n, R, T] == scores[run_idx, task_idx[:, None, :]]
        for acc, f in zip(out, statistics):
            acc.append(np.asarray(f(sample)))
    return [np.concatenate(acc, axis=0) for acc in out]


# ---------------------------------------------------------------------------------------------
# interval estimates
# ---------------------------------------------------------------------------------------------
def bootstrap_ci(
    scores: np.ndarray | Sequence,
    statistic: Statistic = "iqm",
    reps: int = 10_000,
    confidence: float = 0.95,
    seed: SeedLike = 0,
    task_bootstrap: bool = False,
    gamma: float = 1.0,
) -> tuple[float, float, float]:
    """(point, low, high) of one statistic of a [runs] or [runs, tasks] score array.

    statistic: "mean" | "median" | "iqm" | "optimality_gap" (at `gamma`) or a function of
    [..., R, T] -> [...]. Percentile stratified bootstrap with `reps` resamples.
    Raises ConfigError for a single run.
    """
    _check(reps, confidence)
    s = as_score_matrix(scores)
    _need_runs(s, "bootstrap_ci")
    f = _resolve(statistic, gamma)
    (dist,) = bootstrap_distribution(s, [f], reps, make_rng(seed), task_bootstrap)
    low, high = percentile_interval(dist, confidence)
    return float(f(s)), float(low), float(high)


def interval_estimates(
    score_dict: Mapping[str, np.ndarray],
    metrics: Iterable[MetricName] = ("median", "iqm", "mean", "optimality_gap"),
    reps: int = 10_000,
    seed: SeedLike = 0,
    confidence: float = 0.95,
    task_bootstrap: bool = False,
    gamma: float = 1.0,
    paired: bool = False,
) -> dict[str, dict[str, Interval]]:
    """{algorithm: {metric: Interval}} for each [R, T] score matrix in `score_dict`.

    All metrics of one algorithm share its resamples; algorithms are resampled in dict order from
    one generator. Like rliable.library.get_interval_estimates, but reproducible from `seed`.
    `paired`: the tasks are several measurements of the same runs (see `resample_indices`).
    """
    _check(reps, confidence)
    metrics = list(metrics)
    fns = [_resolve(m, gamma) for m in metrics]
    rng = make_rng(seed)
    out: dict[str, dict[str, Interval]] = {}
    for name, scores in score_dict.items():
        s = as_score_matrix(scores, name=str(name))
        _need_runs(s, str(name))
        dists = bootstrap_distribution(s, fns, reps, rng, task_bootstrap, paired)
        row = {}
        for m, f, d in zip(metrics, fns, dists):
            low, high = percentile_interval(d, confidence)
            row[m] = Interval(float(f(s)), float(low), float(high))
        out[name] = row
    return out


# ---------------------------------------------------------------------------------------------
# performance profiles
# ---------------------------------------------------------------------------------------------
def performance_profile(
    scores: np.ndarray, taus: np.ndarray | Sequence[float], kind: Literal["run", "mean"] = "run"
) -> np.ndarray:
    """Fraction of scores above each tau. [..., R, T] -> [..., len(taus)].

    kind="run": over all R*T run scores (rliable's score distribution, the default);
    kind="mean": over the T per-task mean scores (average-score distribution). Paper: rliable.
    """
    s = np.asarray(scores, dtype=np.float64)
    taus = np.asarray(taus, dtype=np.float64)
    if kind == "run":
        flat = s.reshape(*s.shape[:-2], -1)
    elif kind == "mean":
        flat = s.mean(axis=-2)
    else:
        raise ConfigError(f"kind = {kind!r}: expected 'run' or 'mean'")
    # one comparison pass per tau keeps memory at the size of `flat`
    out = np.stack([(flat > tau).mean(axis=-1) for tau in taus], axis=-1)
    return np.where(np.isnan(flat).any(axis=-1)[..., None], np.nan, out)  # a NaN is not "below tau": NaN


def performance_profile_ci(
    scores: np.ndarray | Sequence,
    taus: np.ndarray | Sequence[float],
    reps: int = 2_000,
    confidence: float = 0.95,
    seed: SeedLike = 0,
    kind: Literal["run", "mean"] = "run",
    task_bootstrap: bool = False,
    paired: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(profile, low, high), each [len(taus)]: the profile and its pointwise bootstrap band (`paired`: the
    columns are measurements of the same runs and are resampled together, see `resample_indices`)."""
    _check(reps, confidence)
    s = as_score_matrix(scores)
    _need_runs(s, "performance_profile_ci")
    taus = np.asarray(taus, dtype=np.float64)
    (dist,) = bootstrap_distribution(
        s, [lambda x: performance_profile(x, taus, kind)], reps, make_rng(seed), task_bootstrap, paired
    )
    low, high = percentile_interval(dist, confidence)
    return performance_profile(s, taus, kind), low, high


# ---------------------------------------------------------------------------------------------
# probability of improvement
# ---------------------------------------------------------------------------------------------
def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> np.ndarray:
    """P(X > Y): per task, U / (R_x R_y) with ties counted half; averaged over tasks. Paper: rliable.

    scores_x [..., R_x, T], scores_y [..., R_y, T] -> [...].
    """
    x = np.asarray(scores_x, dtype=np.float64)[..., :, None, :]  # [..., R_x, 1, T]
    y = np.asarray(scores_y, dtype=np.float64)[..., None, :, :]  # [..., 1, R_y, T]
    wins = (x > y).mean(axis=(-3, -2)) + 0.5 * (x == y).mean(axis=(-3, -2))  # [..., T]
    bad = np.isnan(x).any(axis=(-3, -2, -1)) | np.isnan(y).any(axis=(-3, -2, -1))  # a NaN is no loss: NaN
    return np.where(bad, np.nan, wins.mean(axis=-1))


def probability_of_improvement_ci(
    scores_x: np.ndarray | Sequence,
    scores_y: np.ndarray | Sequence,
    reps: int = 10_000,
    confidence: float = 0.95,
    seed: SeedLike = 0,
    paired: bool = False,
) -> tuple[float, float, float]:
    """(point, low, high) of P(X > Y); X and Y are resampled independently, runs within each task
    (`paired`: whole runs, when the tasks are several measurements of the same runs)."""
    _check(reps, confidence)
    x = as_score_matrix(scores_x, "scores_x")
    y = as_score_matrix(scores_y, "scores_y")
    if x.shape[1] != y.shape[1]:
        raise ConfigError(f"probability_of_improvement: X has {x.shape[1]} tasks but Y has {y.shape[1]}")
    _need_runs(x, "scores_x")
    _need_runs(y, "scores_y")
    rng = make_rng(seed)
    t = x.shape[1]
    dist = []
    for n in _chunks(reps, x.shape[0] * y.shape[0] * t):
        ix, _ = resample_indices(rng, x.shape[0], t, n, paired=paired)
        iy, _ = resample_indices(rng, y.shape[0], t, n, paired=paired)
        cols = np.arange(t)
        dist.append(probability_of_improvement(x[ix, cols], y[iy, cols]))
    low, high = percentile_interval(np.concatenate(dist), confidence)
    return float(probability_of_improvement(x, y)), float(low), float(high)
