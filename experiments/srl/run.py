"""SRL (paper srl): PQN under SRL's dataflow vs the same PQN in one process, CartPole-v1, SEEDS seeds.

Conditions (both: 64 gymnasium CartPole-v1 copies, 16-step rollouts / segments, 2x64 LayerNorm MLP,
PQN's hyperparameters from recipes/pqn_cartpole.yaml except a TOTAL = 100k frame budget with epsilon
decaying over its first 40% (40k frames, as the recipe's 200k x 0.2), greedy evaluation of 10 episodes
at the first update boundary after every EVERY frames, no early stop, 1 torch thread per process):

    srl        recipes/srl_cartpole.yaml: 2 actor processes x 2 env groups x 16 envs, 1 policy worker,
               the trainer in the main process; max_staleness 4
    one_proc   recipes/pqn_cartpole.yaml with env.backend=gymnasium (the same envs, stepped in turn
               with the network call and the update in one process)

Learning curves: greedy return vs env frames and vs training wall-clock (evaluation excluded), mean
with a 95% bootstrap interval over seeds. Runs go to runs/srl (not committed); the per-seed
summaries and curves are copied next to this script.

    python experiments/srl/run.py [--seeds 3]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, rlx, sweep_args  # noqa: E402

HERE = Path(__file__).resolve().parent
TOTAL, EVERY = 100_000, 10_000
COMMON = [f"total_steps={TOTAL}", "exploration_fraction=0.4", f"eval.every_steps={EVERY}", "eval.episodes=10", "eval.stop_at_return=null",
          "eval.backend=gymnasium", "threads=1"]
CONDITIONS = {"srl": ("recipes/srl_cartpole.yaml", COMMON),
              "one_proc": ("recipes/pqn_cartpole.yaml", [*COMMON, "env.backend=gymnasium", "env.num_envs=64",
                                                         "num_steps=16"])}
WALL_POINTS = [10, 20, 30, 45, 60, 90]  # seconds of training


def curves(run: Path) -> tuple[list[int], list[float], list[float]]:
    """(eval steps, greedy returns, training seconds at those evaluations) of one run."""
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    ev = [r for r in rows if "eval/return_mean" in r]
    return [r["step"] for r in ev], [r["eval/return_mean"] for r in ev], [r["time/train_seconds"] for r in ev]


def return_at_time(steps_ret_sec: tuple, t: float) -> float:
    """The last greedy return evaluated at or before t training seconds (0 before the first)."""
    _, ret, sec = steps_ret_sec
    done = [r for r, s in zip(ret, sec) if s <= t]
    return done[-1] if done else 0.0


def main() -> int:
    args = sweep_args(__doc__, "runs/srl")
    args.parallel = 1  # an SRL run already uses several processes; never two runs at once on 2 cores
    out = ROOT / args.out
    code = 0
    for name, (recipe, overrides) in CONDITIONS.items():
        code |= rlx("sweep", recipe, *overrides, "--seeds", str(args.seeds), "--out", str(out / name),
                    "--parallel", "1", "--skip-done")
    data = {n: {p.name: curves(p) for p in sorted((out / n).glob("seed_*"))} for n in CONDITIONS}
    summaries = {n: {p.parent.name: json.loads(p.read_text()) for p in sorted((out / n).glob("seed_*/summary.json"))}
                 for n in CONDITIONS}
    (HERE / "summaries.json").write_text(json.dumps(summaries, indent=2, sort_keys=True) + "\n")
    (HERE / "curves.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    names = list(CONDITIONS)
    lines = [f"Produced by `python experiments/srl/run.py --seeds {args.seeds}` (load average at the end "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs shared with other jobs). Mean [95% bootstrap "
             f"interval] over {args.seeds} seeds; greedy return of 10 gymnasium episodes.", "",
             "Greedy return vs env frames:", "",
             "| frames | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    steps = next(iter(data[names[0]].values()))[0]
    for i, s in enumerate(steps):
        lines.append(f"| {s} | " + " | ".join(mean_ci([c[1][i] for c in data[n].values()], 1) for n in names) + " |")
    lines += ["", "Training seconds (evaluation excluded) at those frames:", "",
              "| frames | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for i, s in enumerate(steps):
        lines.append(f"| {s} | " + " | ".join(mean_ci([c[2][i] for c in data[n].values()], 1) for n in names) + " |")
    lines += ["", "Greedy return vs training wall-clock (last evaluation at or before t; 0 before the first):", "",
              "| seconds | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for t in WALL_POINTS:
        lines.append(f"| {t} | " + " | ".join(mean_ci([return_at_time(c, t) for c in data[n].values()], 1)
                                               for n in names) + " |")
    fps = {n: [s["env/steps"] / s["time/train_seconds"] for s in summaries[n].values()] for n in names}
    lines += ["", "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names),
              "| env frames / training second | " + " | ".join(mean_ci(fps[n], 0) for n in names) + " |",
              "| mean greedy return over the evaluations (area under the curve) | "
              + " | ".join(mean_ci([float(np.mean(c[1])) for c in data[n].values()], 1) for n in names) + " |",
              "| final greedy return | " + " | ".join(mean_ci([s["eval/return_mean"] for s in summaries[n].values()], 1)
                                                   for n in names) + " |"]
    srl = summaries["srl"].values()
    lines.append(f"\nsrl: dropped segments (staleness > 4) per seed {[int(s['srl/dropped_segments']) for s in srl]}, "
                 f"final parameter version {[int(s['srl/version']) for s in srl]}.")
    ratio = np.array(fps["srl"]) / np.array(fps["one_proc"])
    lines.append(f"srl / one_proc frames per second, per seed: {[round(float(r), 2) for r in ratio]}.")
    auc = {n: [float(np.mean(c[1])) for c in data[n].values()] for n in names}
    lines += ["", f"Reading: per env frame the two learn alike (area under the curve srl {mean_ci(auc['srl'], 1)} vs "
              f"one_proc {mean_ci(auc['one_proc'], 1)}; asynchronous, up to {4} versions stale data costs PQN nothing "
              f"visible here). Per second SRL-mode is {'faster' if ratio.mean() > 1 else 'slower'}: "
              f"{ratio.mean():.2f}x the single process's frames per second. The paper's throughput claim is "
              f"{'reproduced' if ratio.min() > 1 else 'not reproduced'} at this scale (2 shared cores, a 2x64 MLP, "
              "CartPole): see bench/srl_throughput.txt for where the time goes."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print((HERE / "results.md").read_text())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
