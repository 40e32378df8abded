"""results.md for experiments/recap from its saved per-seed numbers (summaries.json, general.json):
the per-condition table and the paired (same seed) differences the docs cite.

    python experiments/recap/report.py      # no training; run.py calls it at its end
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import mean_ci  # noqa: E402

HERE = Path(__file__).resolve().parent


def write_report() -> str:
    summaries = json.loads((HERE / "summaries.json").read_text())
    general = json.loads((HERE / "general.json").read_text())
    base_general = general["base"]
    base_target = next(iter(summaries["recap"].values()))["eval/accuracy_before"]
    target = {name: {k: s["eval/accuracy"] for k, s in seeds.items()} for name, seeds in summaries.items()}
    n = len(next(iter(summaries.values())))
    lines = ["| condition | '*' accuracy (target) | '+-' accuracy (kept skill) | mean of the two |", "|---|---|---|---|",
             f"| before RL | {base_target:.4f} | {base_general:.4f} | {(base_target + base_general) / 2:.4f} |"]
    for name, seeds in target.items():
        t, g = [seeds[k] for k in seeds], [general[name][k] for k in seeds]
        lines.append(f"| {name} | {mean_ci(t)} | {mean_ci(g)} | {mean_ci([(a + b) / 2 for a, b in zip(t, g)])} |")

    def diff(a: dict, b: dict | float) -> str:  # paired by seed; b may be the (single) base score
        return mean_ci([a[k] - (b[k] if isinstance(b, dict) else b) for k in a], digits=3)

    lines += ["", "Paired differences (same seed; mean [95% bootstrap interval]):", "",
              "| difference | '*' (target) | '+-' (kept skill) |", "|---|---|---|",
              f"| target_only minus before RL | {diff(target['target_only'], base_target)} | "
              f"{diff(general['target_only'], base_general)} |",
              f"| recap minus fixed | {diff(target['recap'], target['fixed'])} | "
              f"{diff(general['recap'], general['fixed'])} |",
              f"| fixed minus target_only | {diff(target['fixed'], target['target_only'])} | "
              f"{diff(general['fixed'], general['target_only'])} |"]
    text = ("Produced by `python experiments/recap/run.py` (800 held-out '*' and 1000 '+-' problems; "
            f"mean [95% bootstrap interval] over {n} seeds).\n\n" + "\n".join(lines) + "\n")
    (HERE / "results.md").write_text(text)
    return text


if __name__ == "__main__":
    print(write_report())
