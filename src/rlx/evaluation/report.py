"""The `rlx compare --out DIR` report: Markdown, PNG figures, one self-contained HTML page.

    DIR/
      report.md           tables (point estimates with intervals, P(A > B)), figures, method, notes
      report.html         the same page with every image embedded as a base64 data URI: it opens
                          in a browser from disk, with no server and no external resource
      results.json        every number of the tables, the raw scores, the settings
      intervals.png       point estimates and intervals (mean, IQM, median) per method
      profiles.png        performance profiles: fraction of runs with score > tau, with bands
      curves_<metric>.png learning curves from metrics.jsonl: mean over seeds with a band
      passk.png           pass@k against k with bands, when the runs report pass@k

Learning-curve and pass@k bands are pointwise percentile-bootstrap intervals of the mean over seeds
(2,000 resamples); with per-problem counts (`passk_counts.json` in each run: {"n": int or [P],
"c": [P]}) the pass@k band resamples problems and seeds (rlx.evaluation.spectrum).
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rlx.evaluation import plots, stats
from rlx.evaluation.compare import STATISTICS, Comparison, Sweep, curve_matrix, passk_matrix_from_summaries
from rlx.rundir import atomic_write_json, atomic_write_text

__all__ = ["write_report", "curve_bands", "passk_curves"]

BAND_REPS = 2_000


def _mean_band(values: np.ndarray, confidence: float, seed: int) -> tuple[np.ndarray, Any, Any]:
    """Mean over seeds (axis 0) of [seeds, L] with a pointwise bootstrap band (None for one seed)."""
    center = values.mean(axis=0)
    if values.shape[0] < 2:
        return center, None, None
    (dist,) = stats.bootstrap_distribution(values, [lambda x: x.mean(axis=-2)], BAND_REPS, stats.make_rng(seed))
    low, high = stats.percentile_interval(dist, confidence)
    return center, low, high


def curve_bands(sweeps: list[Sweep], key: str, confidence: float, seed: int) -> dict[str, tuple]:
    out = {}
    for s in sweeps:
        cm = curve_matrix(s, key)
        if cm is not None:
            steps, values = cm
            out[s.name] = (steps, *_mean_band(values, confidence, seed))
    return out


def _counts(run: Path) -> tuple[Any, np.ndarray] | None:
    p = run / "passk_counts.json"
    if not p.is_file():
        return None
    d = json.loads(p.read_text())
    return d["n"], np.asarray(d["c"])


def passk_curves(sweeps: list[Sweep], confidence: float, seed: int) -> tuple[dict[str, tuple], list[str]]:
    """{name: (ks, pass@k, low, high)} and notes saying how each band was made."""
    from rlx.config import ConfigError
    from rlx.evaluation.spectrum import passk_spectrum

    out, notes = {}, []
    for s in sweeps:
        counts = [_counts(r) for r in s.runs]
        if all(c is not None for c in counts) and len({c[1].shape for c in counts}) == 1:
            n = np.stack([np.broadcast_to(np.asarray(c[0]), c[1].shape) for c in counts])
            c = np.stack([c[1] for c in counts])
            resample = ("problems", "seeds") if len(counts) > 1 else ("problems",)
            try:
                sp = passk_spectrum(n, c, reps=BAND_REPS, confidence=confidence, seed=seed, resample=resample)
            except ConfigError as e:
                notes.append(f"{s.name}: pass@k counts unusable ({e})")
            else:
                out[s.name] = (sp.ks, sp.point, sp.low, sp.high)
                notes.append(f"{s.name}: pass@k band resamples {' and '.join(resample)} "
                             f"({c.shape[1]} problems, {c.shape[0]} seeds)")
                continue
        pk = passk_matrix_from_summaries(s)
        if pk is not None:
            ks, values = pk
            out[s.name] = (ks, *_mean_band(values, confidence, seed))
            how = "band resamples seeds" if len(s.runs) > 1 else "no band (1 seed)"
            notes.append(f"{s.name}: pass@k from summary.json eval/pass@k, {how}")
    return out, notes


def _cell(iv: stats.Interval) -> str:
    if math.isnan(iv.low):
        return f"{iv.point:.4f} (no interval: 1 seed)"
    return f"{iv.point:.4f} [{iv.low:.4f}, {iv.high:.4f}]"


def _figures(cmp: Comparison, out: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    figs: list[tuple[str, Path]] = []
    notes: list[str] = []
    figs.append(("Interval estimates", plots.plot_interval_estimates(
        {n: {m.upper() if m == "iqm" else m: iv for m, iv in e.items()} for n, e in cmp.estimates.items()},
        out / "intervals.png", title=", ".join(cmp.metrics))))
    all_scores = np.concatenate([v.ravel() for v in cmp.scores.values()])
    lo, hi = float(all_scores.min()), float(all_scores.max())
    pad = 0.05 * (hi - lo) if hi > lo else 0.05
    taus = np.linspace(lo - pad, hi + pad, 101)
    profiles = {}
    for s in cmp.sweeps:
        x = cmp.scores[s.name]
        if len(s.runs) >= 2:
            profiles[s.name] = stats.performance_profile_ci(x, taus, BAND_REPS, cmp.confidence, cmp.seed,
                                                            paired=True)  # as compare: metrics of one seed together
        else:
            profiles[s.name] = (stats.performance_profile(x, taus), None, None)
    figs.append(("Performance profiles", plots.plot_performance_profiles(
        profiles, taus, out / "profiles.png", xlabel=", ".join(cmp.metrics))))
    for m in cmp.metrics:
        curves = curve_bands(cmp.sweeps, m, cmp.confidence, cmp.seed)
        if curves:
            name = "curves_" + "".join(c if c.isalnum() else "_" for c in m) + ".png"
            figs.append((f"Learning curves: {m}", plots.plot_band_curves(curves, m, out / name)))
        else:
            notes.append(f"no learning curve for {m}: not logged in metrics.jsonl")
    pk, pk_notes = passk_curves(cmp.sweeps, cmp.confidence, cmp.seed)
    if pk:
        figs.append(("pass@k", plots.plot_passk_curves(pk, out / "passk.png")))
        notes += pk_notes
    return figs, notes


def _method_text(cmp: Comparison) -> str:
    return (
        f"Scores: the final value of {', '.join(cmp.metrics)} in each seed's summary.json "
        f"(a [seeds x {len(cmp.metrics)}] matrix per method). Intervals: {cmp.confidence:.0%} percentile "
        f"stratified bootstrap over seeds, {cmp.reps} resamples, seed {cmp.seed} (Agarwal et al. 2021). "
        "IQM: mean after dropping floor(N/4) of the N scores from each end (the middle 50% when N is a "
        "multiple of 4). Median: of the per-metric means (with one metric it equals the mean). "
        "P(A > B): Mann-Whitney probability that a run of A scores above a run of B (ties count half), "
        "averaged over metrics; A and B resampled independently, whole seeds (all metrics of a seed together)."
    )


def _markdown(cmp: Comparison, figs, notes) -> str:
    lines = [f"# rlx compare: {', '.join(cmp.metrics)}", "", "| method | directory | seeds | failed seeds |",
             "|---|---|---|---|"]
    for s in cmp.sweeps:
        lines.append(f"| {s.name} | `{s.path}` | {len(s.runs)} | {', '.join(s.failed) or '-'} |")
    lines += ["", f"## Interval estimates ({cmp.confidence:.0%})", "",
              "| method | " + " | ".join("IQM" if m == "iqm" else m for m in STATISTICS) + " |",
              "|---|" + "---|" * len(STATISTICS)]
    for s in cmp.sweeps:
        lines.append(f"| {s.name} | " + " | ".join(_cell(cmp.estimates[s.name][m]) for m in STATISTICS) + " |")
    if cmp.pairs:
        lines += ["", "## Probability of improvement", "", "| A | B | P(A > B) |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {_cell(p)} |" for a, b, p in cmp.pairs]
    lines += ["", "## Figures", ""]
    for title, path in figs:
        lines += [f"### {title}", "", f"![{title}]({path.name})", ""]
    lines += ["## Method", "", _method_text(cmp), ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:4px 10px}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}
code{background:#f6f6f6;padding:1px 4px}.note{color:#8a4b00}"""


def _html(cmp: Comparison, figs, notes) -> str:
    e = html.escape

    def row(cells, num_from=1, tag="td"):
        return "<tr>" + "".join(
            f"<{tag}{' class=num' if (i >= num_from and tag == 'td') else ''}>{e(str(c))}</{tag}>"
            for i, c in enumerate(cells)) + "</tr>"

    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>rlx compare: {e(', '.join(cmp.metrics))}"
             f"</title><style>{_CSS}</style></head><body>", f"<h1>rlx compare: {e(', '.join(cmp.metrics))}</h1>",
             "<table>", row(["method", "directory", "seeds", "failed seeds"], tag="th")]
    parts += [row([s.name, str(s.path), len(s.runs), ", ".join(s.failed) or "-"], num_from=2) for s in cmp.sweeps]
    parts += ["</table>", f"<h2>Interval estimates ({cmp.confidence:.0%})</h2><table>",
              row(["method", *("IQM" if m == "iqm" else m for m in STATISTICS)], tag="th")]
    parts += [row([s.name, *(_cell(cmp.estimates[s.name][m]) for m in STATISTICS)]) for s in cmp.sweeps]
    parts.append("</table>")
    if cmp.pairs:
        parts += ["<h2>Probability of improvement</h2><table>", row(["A", "B", "P(A > B)"], tag="th")]
        parts += [row([a, b, _cell(p)], num_from=2) for a, b, p in cmp.pairs]
        parts.append("</table>")
    parts.append("<h2>Figures</h2>")
    for title, path in figs:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f"<h3>{e(title)}</h3><img alt='{e(title)}' src='data:image/png;base64,{data}'>")
    parts += ["<h2>Method</h2>", f"<p>{e(_method_text(cmp))}</p>"]
    if notes:
        parts += ["<h2>Notes</h2><ul>"] + [f"<li class=note>{e(n)}</li>" for n in notes] + ["</ul>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(cmp: Comparison, out: Path) -> dict[str, Any]:
    """Write the report into `out`; returns {"markdown", "html", "json": Path, "png": [Path]}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figs, fig_notes = _figures(cmp, out)
    notes = cmp.notes + fig_notes
    atomic_write_text(out / "report.md", _markdown(cmp, figs, notes))
    atomic_write_text(out / "report.html", _html(cmp, figs, notes))
    atomic_write_json(out / "results.json", {**cmp.to_json(), "notes": notes})
    return {"markdown": out / "report.md", "html": out / "report.html", "json": out / "results.json",
            "png": [p for _, p in figs]}
