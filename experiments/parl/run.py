"""PA-RL vs IQL vs BC on Pendulum-v1 medium-expert data (paper parl), 5 seeds.

Claim (paper parl): improving a policy by (1) sampling actions from it, (2) picking and refining
them with a learned critic, (3) imitating the result, works for any policy class and beats the
class-specific extraction (here IQL's advantage-weighted regression) offline.

Setting: recipes/parl_pendulum.yaml. Data: Pendulum-v1 medium-expert, 20k transitions built in
memory (half the episodes from the scripted expert, half with 60% random actions). All methods:
5000 gradient steps, batch 256, MLPs 2x64, lr 3e-4; IQL and PA-RL share the critic (expectile 0.7,
rewards x 0.1). IQL: beta 3. PA-RL: 500 BC updates, then 16 policy samples per state, the best by
min Q (global) and, in "global + local", the top 4 refined by 5 gradient steps on Q (step 0.05).
Metric: D4RL-normalised greedy score (10 episodes) at the end, and at 1000 steps.
Run: python experiments/parl/run.py   (about 10 minutes on 2 cores)
"""

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control"))
from _common import CI_METHOD, ci, fmt, write  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
BASE = {"dataset": {"env": "Pendulum-v1", "kind": "medium-expert", "transitions": 20_000, "seed": 0},
        "train": {"steps": 5000, "hidden": [64, 64], "eval_every": 1000, "eval_episodes": 10}}
CONDITIONS = {
    "BC": ("bc", {"kind": "bc"}),
    "IQL (AWR)": ("iql", {"kind": "iql", "reward_scale": 0.1, "beta": 3.0}),
    "PA-RL global": ("parl", {"kind": "parl", "reward_scale": 0.1, "grad_steps": 0}),
    "PA-RL global + local": ("parl", {"kind": "parl", "reward_scale": 0.1, "grad_steps": 5}),
}


def job(args):
    import importlib
    import time

    from rlx.config import build_config
    from rlx.rundir import RunDir

    name, seed = args
    mod_name, extra = CONDITIONS[name]
    mod = importlib.import_module(f"rlx.control.{mod_name}")
    cfg = build_config(mod.Config, {**BASE, **extra, "seed": seed})
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        run = RunDir(Path(d) / "run", "")
        t0 = time.perf_counter()
        out = mod.run(cfg, run)
        rows = [__import__("json").loads(x) for x in (Path(d) / "run" / "metrics.jsonl").read_text().splitlines()]
    early = next(r["eval/normalized_score"] for r in rows if r.get("step") == 1000 and "eval/normalized_score" in r)
    print(f"  {name} seed {seed}: {out['eval/normalized_score']:.1f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr,
          flush=True)
    return name, seed, out["eval/normalized_score"], early


def main() -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:
        res = list(pool.map(job, [(n, s) for s in SEEDS for n in CONDITIONS]))
    final = {n: [r[2] for r in res if r[0] == n] for n in CONDITIONS}
    early = {n: [r[3] for r in res if r[0] == n] for n in CONDITIONS}
    lines = ["# PA-RL vs IQL vs BC on Pendulum medium-expert (paper parl)", "", __doc__.strip(), "",
             f"Intervals: 95% CI of the mean over {len(SEEDS)} seeds, {CI_METHOD}.", "",
             "| method | normalised score, 5000 steps | at 1000 steps | per-seed (5000) |", "|---|---|---|---|"]
    for n in CONDITIONS:
        lines.append(f"| {n} | {fmt(final[n])} | {fmt(early[n])} | {', '.join(f'{v:.0f}' for v in final[n])} |")
    m, lo, hi = ci([a - b for a, b in zip(final["PA-RL global"], final["IQL (AWR)"])])
    lines += ["", f"PA-RL global - IQL, paired by seed: {m:+.1f} [{lo:+.1f}, {hi:+.1f}]."]
    write(Path(__file__).with_name("results.md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
