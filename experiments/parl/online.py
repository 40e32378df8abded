"""PA-RL online fine-tuning vs offline only on Pendulum-v1 medium-expert (paper parl), 3 seeds.

Claim (paper parl): after offline PA-RL, fine-tuning online with the same recipe (act with the
critic-optimised policy samples, keep training the critic, distil the optimised actions into the
policy) improves the policy with few environment steps.

Setting: recipes/parl_pendulum.yaml (Pendulum-v1 medium-expert, 20k transitions built in memory; IQL
critic, 16 policy samples, top 4 refined by 5 gradient steps, MLPs 2x64, batch 256), then
online: 1500 env steps (7.5 episodes) in the real gymnasium env, 1 update per env step after 200
steps, minibatches half offline / half online, exploration noise 0.1 half-ranges. Two hand-over
points:
  A. the usual 5000 offline steps (PA-RL already at the expert's level);
  B. 1000 offline steps (PA-RL far below BC there, results.md), compared with offline-only
     training for the same 2500 updates (1000 + 1500).
Metric: D4RL-normalised greedy score (10 episodes); online curve every 500 env steps.
Run: python experiments/parl/online.py   (about 8 minutes on 2 cores, ~16 CPU-minutes; 1 torch thread per run)
"""

import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control"))
from _common import CI_METHOD, ci, fmt, write  # noqa: E402

SEEDS = [0, 1, 2]
ONLINE = 1500
ONLINE_CFG = {"steps": ONLINE, "learning_starts": 200, "eval_every": 500, "online_fraction": 0.5, "noise": 0.1}
JOBS = {  # name: (offline steps, online config or None)
    "A: 5000 offline + online": (5000, ONLINE_CFG),
    "B: 1000 offline + online": (1000, ONLINE_CFG),
    "B: offline only, 2500 updates": (2500, None),
}


def job(args):
    import yaml

    from rlx.config import build_config
    from rlx.control import parl
    from rlx.rundir import RunDir

    name, seed = args
    steps, online = JOBS[name]
    data = yaml.safe_load(Path("recipes/parl_pendulum.yaml").read_text())
    data.update(seed=seed)
    data["train"].update(steps=steps, eval_every=min(steps, 1000), threads=1)
    if online is not None:
        data["online"] = online
    cfg = build_config(parl.Config, data)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        out = parl.run(cfg, RunDir(Path(d) / "run", ""))
        rows = [json.loads(x) for x in (Path(d) / "run" / "metrics.jsonl").read_text().splitlines()]
    curve = {r["step"] - steps: r["eval/normalized_score"] for r in rows
             if "eval/normalized_score" in r and r["step"] > steps}
    print(f"  {name} seed {seed}: {out['eval/normalized_score']:.1f} ({time.perf_counter() - t0:.0f} s)",
          file=sys.stderr, flush=True)
    return name, seed, out, curve


def main() -> None:
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        res = list(pool.map(job, [(n, s) for n in JOBS for s in SEEDS]))
    by = {n: [r for r in res if r[0] == n] for n in JOBS}
    score = {n: [r[2]["eval/normalized_score"] for r in by[n]] for n in JOBS}
    lines = ["# PA-RL online fine-tuning vs offline only, Pendulum medium-expert (paper parl)", "", __doc__.strip(), "",
             f"Intervals: 95% CI of the mean over {len(SEEDS)} seeds, {CI_METHOD}. "
             f"Wall time {time.perf_counter() - t0:.0f} s on 2 processes.", "",
             "| run | offline score at hand-over | online 500 | online 1000 | online 1500 (final) | "
             "online episode return (mean of episodes) |", "|---|---|---|---|---|---|"]
    for n in JOBS:
        if JOBS[n][1] is None:
            lines.append(f"| {n} | - | - | - | {fmt(score[n])} | - |")
            continue
        off = [r[2]["offline/normalized_score"] for r in by[n]]
        cols = [fmt([r[3][k] for r in by[n]]) for k in (500, 1000)]
        rets = [r[2]["online/return_mean"] for r in by[n]]
        lines.append(f"| {n} | {fmt(off)} | {cols[0]} | {cols[1]} | {fmt(score[n])} | {fmt(rets, 0)} |")
    lines += ["", "Per seed (final): " + "; ".join(f"{n}: {', '.join(f'{v:.1f}' for v in score[n])}" for n in JOBS), ""]
    for n in ("A: 5000 offline + online", "B: 1000 offline + online"):
        d = [r[2]["eval/normalized_score"] - r[2]["offline/normalized_score"] for r in by[n]]
        m, lo, hi = ci(d)
        lines.append(f"- {n}: final minus hand-over, paired by seed: {m:+.1f} [{lo:+.1f}, {hi:+.1f}].")
    m, lo, hi = ci([a - b for a, b in zip(score["B: 1000 offline + online"], score["B: offline only, 2500 updates"])])
    lines.append(f"- B: online minus offline-only at equal updates (2500), paired by seed: {m:+.1f} [{lo:+.1f}, {hi:+.1f}].")
    write(Path(__file__).with_name("online.md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
