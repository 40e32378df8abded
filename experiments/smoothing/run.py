"""Policy smoothing (paper smoothing) on CartPole: certified vs measured reward under an adaptive attack.

For each of SEEDS PQN policies (recipes/pqn_cartpole.yaml, seed k):

1. M clean episodes of the smoothed policy (Gaussian noise sigma on every observation) give the
   certified expected total reward and certified median under any adaptive attack with total l2
   budget B over the episode (`rlx.robust.smoothing`, eq. 2 and the quantile form, alpha = 0.05);
2. M episodes under two concrete adaptive attacks of the same budget measure what an attacker
   actually achieves against the smoothed policy and against the undefended greedy policy
   (sigma = 0): `flip_attack` (the budget goes to the cheapest action flips, linearised) and
   `l2_attack` ("step": a gradient step against the greedy action's Q-margin, B / sqrt(500) per
   step, so the total stays <= B).

The certificate must lie below every measured attacked reward of the smoothed policy. Runs go to
runs/smoothing; writes experiments/smoothing/results.md and results.json.

    python experiments/smoothing/run.py          # ~5 min on one core
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, rlx  # noqa: E402

HERE = Path(__file__).resolve().parent
MAX_STEPS = 500


def load_policy(run: Path):
    import yaml

    from rlx.config import build_config
    from rlx.control import pqn
    from rlx.control.common import load_torch_state

    cfg = build_config(pqn.Config, yaml.safe_load((run / "config.yaml").read_text()))
    net = pqn.build_q_network(4, 2, cfg.net)
    ckpt = sorted(p for p in (run / "checkpoints").glob("step_*") if p.is_dir())[-1]
    net.load_state_dict(load_torch_state(ckpt)["q_net"])
    return net.eval()


def episodes(q_net, m: int, sigma: float, budget: float, seed: int, attack: str = "flip") -> np.ndarray:
    """Total rewards of m parallel CartPole episodes (one each) of the smoothed (sigma > 0) or greedy policy,
    under an attack with total l2 budget `budget`: "step" (`l2_attack`, B / sqrt(500) every step) or
    "flip" (`flip_attack`, budget spent on the cheapest action flips)."""
    from rlx.control.envs import TorchCartPole
    from rlx.robust.smoothing import flip_attack, l2_attack, smoothed_actions

    env = TorchCartPole(m, seed=seed, max_episode_steps=MAX_STEPS)
    obs = env.reset(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    step_budget = budget / math.sqrt(MAX_STEPS)
    returns = torch.zeros(m)
    alive = torch.ones(m, dtype=torch.bool)
    remaining = torch.full((m,), budget ** 2)
    with torch.no_grad():
        for _ in range(MAX_STEPS):
            if budget == 0:
                seen = obs
            elif attack == "step":
                seen = obs + l2_attack(q_net.q, obs, step_budget)
            else:
                delta, remaining = flip_attack(q_net.q, obs, remaining)
                seen = obs + delta
            act = smoothed_actions(q_net.q, seen, sigma, gen) if sigma > 0 else q_net.q(seen).argmax(1)
            out = env.step(act)
            returns += alive.float()
            alive &= ~(out.terminated | out.truncated)
            obs = out.obs
            if not alive.any():
                break
    return returns.numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2, 0.4])
    ap.add_argument("--out", default="runs/smoothing")
    args = ap.parse_args()
    from rlx.robust.smoothing import certified_expected_reward, certified_quantile

    torch.set_num_threads(1)
    out = ROOT / args.out
    res: dict = {"episodes": args.episodes, "budgets": args.budgets, "sigmas": args.sigmas, "seeds": {}}
    for k in range(args.seeds):
        run = out / f"pqn_seed{k}"
        if not (run / "summary.json").exists():
            rlx("train", "recipes/pqn_cartpole.yaml", f"seed={k}", "--out", str(run))
        q_net = load_policy(run)
        row: dict = {"train_summary": json.loads((run / "summary.json").read_text()),
                     "undefended": {f"{b:g}": float(episodes(q_net, args.episodes, 0.0, b, 100 + k).mean())
                                    for b in args.budgets},
                     "undefended_step": {f"{b:g}": float(episodes(q_net, args.episodes, 0.0, b, 100 + k, "step").mean())
                                         for b in args.budgets}}
        for s in args.sigmas:
            clean = episodes(q_net, args.episodes, s, 0.0, 200 + k)
            row[f"sigma_{s:g}"] = {
                "clean_mean": float(clean.mean()),
                "certified_mean": {f"{b:g}": certified_expected_reward(clean, s, b, 0.0, MAX_STEPS) for b in args.budgets},
                "certified_median": {f"{b:g}": certified_quantile(clean, s, b, 0.5, low=0.0) for b in args.budgets},
                "attacked_mean": {f"{b:g}": float(episodes(q_net, args.episodes, s, b, 300 + k).mean())
                                  for b in args.budgets},
                "attacked_step_mean": {f"{b:g}": float(episodes(q_net, args.episodes, s, b, 300 + k, "step").mean())
                                       for b in args.budgets},
            }
        res["seeds"][str(k)] = row
        print(json.dumps({"seed": k, **{key: v for key, v in row.items() if key != "train_summary"}}), flush=True)
    (HERE / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (HERE / "results.md").write_text(table(res))
    print(table(res))
    return 0


def table(res: dict) -> str:
    seeds = list(res["seeds"].values())

    def avg(get) -> str:
        xs = [get(s) for s in seeds]
        return f"{np.mean(xs):.1f}" + (f" ({min(xs):.0f}-{max(xs):.0f})" if len(xs) > 1 else "")

    lines = ["Produced by `python " + " ".join(["experiments/smoothing/run.py", *sys.argv[1:]]) + "`.", "",
             f"CartPole-v1 (500 steps max), {res['episodes']} episodes per cell, mean over {len(seeds)} PQN policies "
             "(min-max over policies in brackets). B = total l2 budget of the observation attack over an episode; "
             "certificates at 95% confidence.", "",
             "| policy | B | certified mean | certified median | measured, flip attack | measured, step attack | clean |",
             "|---|---|---|---|---|---|---|"]
    for b in res["budgets"]:
        key = f"{b:g}"
        lines.append(f"| undefended (greedy) | {key} | - | - | {avg(lambda s: s['undefended'][key])} | "
                     f"{avg(lambda s: s['undefended_step'][key])} | {avg(lambda s: s['undefended']['0'])} |")
    for sig in res["sigmas"]:
        sk = f"sigma_{sig:g}"
        for b in res["budgets"]:
            key = f"{b:g}"
            lines.append(f"| smoothed sigma {sig:g} | {key} | {avg(lambda s: s[sk]['certified_mean'][key])} | "
                         f"{avg(lambda s: s[sk]['certified_median'][key])} | {avg(lambda s: s[sk]['attacked_mean'][key])} | "
                         f"{avg(lambda s: s[sk]['attacked_step_mean'][key])} | {avg(lambda s: s[sk]['clean_mean'])} |")
    held = all(s[f"sigma_{sig:g}"]["certified_mean"][f"{b:g}"] <= min(s[f"sigma_{sig:g}"]["attacked_mean"][f"{b:g}"],
                                                                        s[f"sigma_{sig:g}"]["attacked_step_mean"][f"{b:g}"])
               for s in seeds for sig in res["sigmas"] for b in res["budgets"])
    lines += ["", f"Certified mean <= measured attacked mean in every cell: {held}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
