"""One short IQL run per dataset kind on InvertedPendulum-v5 (MuJoCo), through recipes/iql_cartpole.yaml
with dotted overrides only (no separate recipe): dataset built in memory, 20k transitions, seed 0;
3000 gradient steps; evaluation = 10 episodes of the deterministic policy at steps 1500 and 3000,
normalised with REF_SCORES (random 5.02, expert 1000).
Run: python experiments/control/datasets/iql_inverted_pendulum.py   (about 80 s per kind on 2 CPU cores)
"""

import json
import tempfile
from pathlib import Path

from rlx.cli import main as cli_main

KINDS = ("medium-expert", "medium")
overrides = ["dataset.env=InvertedPendulum-v5", "dataset.transitions=20000", "train.steps=3000",
             "train.eval_every=1500", "train.eval_episodes=10"]
lines = ["# IQL on InvertedPendulum-v5 offline datasets", "", __doc__.strip(), "",
         "Command per kind: `rlx train recipes/iql_cartpole.yaml " + " ".join(overrides) + " dataset.kind=KIND`", "",
         "| dataset kind | step | eval return (mean ± std, 10 ep.) | normalised score |", "|---|---|---|---|"]
for kind in KINDS:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        assert cli_main(["train", "recipes/iql_cartpole.yaml", "--out", str(out), *overrides, f"dataset.kind={kind}"]) == 0
        for line in (out / "metrics.jsonl").read_text().splitlines():
            m = json.loads(line)
            if "eval/return_mean" in m:
                lines.append(f"| {kind} | {m['step']} | {m['eval/return_mean']:.1f} ± {m['eval/return_std']:.1f} | "
                             f"{m['eval/normalized_score']:.1f} |")
text = "\n".join(lines) + "\n"
Path(__file__).with_name("iql_inverted_pendulum.md").write_text(text)
print(text)
