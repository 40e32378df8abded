"""Normalised-score references and dataset statistics for the locally built offline datasets.

Measures the mean return of the uniform-random policy and of the scripted expert over 100 episodes
(seed 0) on each task (the numbers stored in rlx.control.datasets.REF_SCORES), and the size,
episode count and mean return of each dataset kind at 20k transitions (seed 0). A reference is the
plain mean of the 100 episode returns, each episode run to termination or the time limit
(InvertedPendulum-v5: MuJoCo, gymnasium 1.4 + mujoco 4.0, 1000-step limit, reward 1 per step
with the pole up, so an expert mean of 1000.00 means all 100 episodes reached the limit).
The IQL check on InvertedPendulum is in iql_inverted_pendulum.py / .md.
Run: python experiments/control/datasets/run.py
"""

import json
from pathlib import Path

from rlx.control.datasets import ENVS, REF_SCORES, build_dataset, reference_scores

lines = ["# Offline datasets: reference scores and statistics", "", __doc__.strip(), "",
         "| task | random (measured) | expert (measured) | stored in REF_SCORES |", "|---|---|---|---|"]
for env in ENVS:
    ref = reference_scores(env, 100)
    lines.append(f"| {env} | {ref['random']:.2f} | {ref['expert']:.2f} | {REF_SCORES[env]} |")
lines += ["", "| task | kind | transitions | episodes | mean return | normalised |", "|---|---|---|---|---|---|"]
for env in ENVS:
    for kind in ("random", "medium", "expert", "medium-expert", "medium-replay"):
        m = json.loads(str(build_dataset(env, kind, 20_000, 0)["meta"]))
        lines.append(f"| {env} | {kind} | {m['transitions']} | {m['episodes']} | {m['return_mean']:.1f} | "
                     f"{m['normalized_score_mean']:.1f} |")
text = "\n".join(lines) + "\n"
Path(__file__).with_name("results.md").write_text(text)
print(text)
