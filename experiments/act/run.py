"""Adversarial Cheap Talk on CartPole (paper act): can messages alone change how a PQN victim learns?

Claim (paper act): an adversary that only appends deterministic messages f(s) to the victim's
observation, meta-learned with ES over whole victim trainings, significantly lowers the victim's
training performance (and an ally raises it).

Setting: recipes/act_cartpole.yaml. Victims: PQN, 64 envs, 150k env steps each. Messages:
k = 2, tanh(W s + b). ES: 10 generations x 8 victim trainings, sigma 0.5, Adam lr 0.2; fitness =
(minus, for the adversary) the area under the victim's learning curve (mean over updates of the
mean return of the episodes that ended in the update). Two ES runs (seeds 0, 1) per
mode. Evaluation: fresh victims with seeds 100-104 (never seen by ES) train with the final messages;
"random" uses each ES run's initial phi (no ES), "none" shows no messages. Metrics: the victims'
training return (that area under the learning curve, what ES optimises) and their final
greedy return (20 episodes, messages on).
Run: python experiments/act/run.py   (about 30 minutes on 2 cores; runs go to runs/act)
"""

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci  # noqa: E402

HERE = Path(__file__).resolve().parent
ES_SEEDS = [0, 1]
VICTIMS = [100, 101, 102, 103, 104]


def es_job(args):
    mode, seed = args
    out = ROOT / "runs" / "act" / f"{mode}_{seed}"
    if not (out / "summary.json").exists():
        from rlx.cli import main

        main(["train", str(ROOT / "recipes/act_cartpole.yaml"), f"seed={seed}", f"act.mode={mode}", "--out", str(out)])
    s = json.loads((out / "summary.json").read_text())
    return mode, seed, [s[f"act/train_return_seed{v}"] for v in VICTIMS], [s[f"act/final_return_seed{v}"] for v in VICTIMS]


def plain_job(args):
    kind, seed = args
    import torch

    from rlx.config import build_config, read_yaml
    from rlx.robust import act

    cfg = build_config(act.Config, read_yaml(str(ROOT / "recipes/act_cartpole.yaml")))
    phi = None
    if kind == "random":
        phi = torch.as_tensor(np.random.default_rng(seed).normal(0.0, cfg.act.init_scale, cfg.act.messages * 5))
    r = act.evaluate_messages(cfg, phi, VICTIMS)
    return kind, seed, r["train_return"], r["final_return"]


def main() -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:
        es = list(pool.map(es_job, [(m, s) for m in ("adversary", "ally") for s in ES_SEEDS]))
        plain = list(pool.map(plain_job, [("none", 0)] + [("random", s) for s in ES_SEEDS]))
    rows: dict[str, list[tuple[list[float], list[float]]]] = {}
    for kind, _, tr, fr in plain + es:
        rows.setdefault(kind, []).append((tr, fr))
    (HERE / "results.json").write_text(json.dumps(rows, indent=1) + "\n")

    def per_victim(kind, i):  # mean over ES runs, per victim seed
        return np.mean([r[i] for r in rows[kind]], axis=0)

    lines = ["# Adversarial Cheap Talk on CartPole (paper act)", "", __doc__.strip(), "",
             "Mean [95% bootstrap interval] over victims (5 victim seeds; for random/adversary/ally also over the",
             "2 ES runs, 10 victims); differences are paired by victim seed (ES runs averaged).", "",
             "| messages | victims | mean training return | final greedy return | training return - none |",
             "|---|---|---|---|---|"]
    none_tr = per_victim("none", 0)
    for kind in ("none", "random", "adversary", "ally"):
        tr = [x for r in rows[kind] for x in r[0]]
        fr = [x for r in rows[kind] for x in r[1]]
        diff = mean_ci(per_victim(kind, 0) - none_tr) if kind != "none" else ""
        lines.append(f"| {kind} | {len(tr)} | {mean_ci(tr)} | {mean_ci(fr)} | {diff} |")
    text = "\n".join(lines) + "\n"
    (HERE / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
