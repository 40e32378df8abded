"""Adaptive defense over non-dominated policies (paper nondominated) on CartPole, 3 seeds.

Claim (paper nondominated): instead of one worst-case (minimax) policy, keep a small set of
non-dominated policies and pick among them at test time with an adversarial bandit; this keeps
near-best return under every attack, including weak or no attack where the minimax policy loses.

Setting, per seed:
1. Policy family: recipes/qarl_cartpole.yaml with adversary.mode=rarl and pushes of 0 (plain PQN),
   2.5, 5 and 7.5 N (300k env steps each).
2. Attacks: none; random +-5 N pushes; a constant 3 N push; a heavy short pole (mass 1.0,
   half-length 0.25); a constant 3 N push on the heavy short pole.
3. Matrix A: greedy return of each policy under each attack (20 episodes, evaluation seeds A);
   Pi = rlx.robust.adaptive.nondominated(A); the minimax policy = argmax_k min_attack A.
4. Test: for each attack, T = 200 episodes (fresh seeds B) of every policy; EXP3 over Pi
   (gamma tuned for K and T), against always deploying the minimax policy, plain PQN, and the best
   single policy of Pi in hindsight (its mean over the same 200 episodes).
Run: python experiments/nondominated/run.py   (about 10 minutes on 2 cores, mostly training; runs go to runs/nondominated)
"""

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT  # noqa: E402

HERE = Path(__file__).resolve().parent
SEEDS = [0, 1, 2]
FORCES = [0.0, 2.5, 5.0, 7.5]
ATTACKS = {"none": {}, "random push 5N": {"random": 5.0}, "constant push 3N": {"constant": 3.0},
           "heavy short pole": {"masspole": 1.0, "length": 0.25},
           "heavy short pole + 3N": {"masspole": 1.0, "length": 0.25, "constant": 3.0}}
T = 200


def train(args):
    force, seed = args
    out = ROOT / "runs" / "nondominated" / f"f{force}_s{seed}"
    if not (out / "summary.json").exists():
        from rlx.cli import main

        mode = "none" if force == 0 else "rarl"
        main(["train", str(ROOT / "recipes/qarl_cartpole.yaml"), f"seed={seed}", f"adversary.mode={mode}",
              f"adversary.force={force or 5.0}", "robust.best_response_steps=0", "--out", str(out)])
    return str(out)


def policy(out: str):
    from rlx.config import build_config, read_yaml
    from rlx.control import pqn
    from rlx.control.common import load_torch_state
    from rlx.robust import qarl

    cfg = build_config(qarl.Config, read_yaml(str(Path(out) / "config.yaml")))
    net = pqn.build_q_network(4, 2, cfg.net)
    ckpt = Path(out) / "checkpoints" / (Path(out) / "checkpoints" / "LATEST").read_text().strip()
    net.load_state_dict(load_torch_state(ckpt)["prot"])
    return lambda o: net.q(o).argmax(1)


def play(act, attack: dict, episodes: int, seed: int) -> np.ndarray:
    import torch

    from rlx.robust.qarl import greedy_returns

    g = torch.Generator().manual_seed(seed)
    push = None
    if "random" in attack:
        push = lambda o: (torch.randint(0, 2, (o.shape[0],), generator=g) * 2 - 1) * attack["random"]  # noqa: E731
    elif "constant" in attack:
        push = lambda o: torch.full((o.shape[0],), attack["constant"])  # noqa: E731
    return greedy_returns(act, episodes, seed, masspole=attack.get("masspole", 0.1), length=attack.get("length", 0.5),
                          push=push)


def evaluate_seed(seed: int) -> dict:
    import torch

    from rlx.robust.adaptive import adaptive_returns, nondominated

    torch.set_num_threads(1)
    acts = [policy(train((f, seed))) for f in FORCES]
    a = np.array([[play(act, atk, 20, 1000 + seed).mean() for atk in ATTACKS.values()] for act in acts])
    keep = nondominated(a)
    minimax = int(np.argmax(a.min(1)))
    out = {"matrix": a.tolist(), "nondominated": keep, "minimax": minimax, "attacks": {}}
    for j, (name, atk) in enumerate(ATTACKS.items()):
        # episode t of policy k = copy t of one batched run (seeds B); the bandit then sees them in order
        per_policy = np.array([play(acts[k], atk, T, 50_000 + 1000 * seed) for k in range(len(acts))])
        arms, rets = adaptive_returns(lambda arm, t: per_policy[keep[arm], t], len(keep), T, 500.0, seed=seed)
        out["attacks"][name] = {"exp3": float(rets.mean()), "exp3_last100": float(rets[-100:].mean()),
                                "best_in_pi": float(per_policy[keep].mean(1).max()),
                                "minimax": float(per_policy[minimax].mean()), "pqn": float(per_policy[0].mean()),
                                "arms": np.bincount(arms, minlength=len(keep)).tolist()}
    return out


def ci0(x) -> str:
    from rlx.evaluation.stats import bootstrap_ci

    m, lo, hi = bootstrap_ci(np.asarray(x, dtype=float), statistic="mean", reps=10_000, seed=0)
    return f"{m:.0f} [{lo:.0f}, {hi:.0f}]"


def main() -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(train, [(f, s) for s in SEEDS for f in FORCES]))
        res = dict(zip(SEEDS, pool.map(evaluate_seed, SEEDS)))
    (HERE / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = ["# Adaptive defense over non-dominated policies (paper nondominated)", "", __doc__.strip(), "",
             "Mean [95% bootstrap interval] over 3 seeds of the mean return over T = 200 test episodes.", "",
             "Non-dominated sets (indices into pushes " + str(FORCES) + "): "
             + "; ".join(f"seed {s}: {res[s]['nondominated']} (minimax {res[s]['minimax']})" for s in SEEDS), "",
             "| attack | EXP3 over Pi | EXP3, last 100 episodes | best policy of Pi in hindsight | minimax policy | plain PQN |",
             "|---|---|---|---|---|---|"]
    for name in ATTACKS:
        cells = [ci0([res[s]["attacks"][name][k] for s in SEEDS]) for k in ("exp3", "exp3_last100", "best_in_pi", "minimax", "pqn")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    def avg(k, s):
        return np.mean([res[s]["attacks"][n][k] for n in ATTACKS])

    means = {k: ci0([avg(k, s) for s in SEEDS]) for k in ("exp3", "minimax", "pqn", "best_in_pi")}
    lines += ["", f"Averaged over the attacks: EXP3 {means['exp3']}, best in hindsight {means['best_in_pi']}, "
              f"minimax {means['minimax']}, plain PQN {means['pqn']}. Paired by seed: EXP3 - minimax "
              f"{ci0([avg('exp3', s) - avg('minimax', s) for s in SEEDS])}, EXP3 - PQN "
              f"{ci0([avg('exp3', s) - avg('pqn', s) for s in SEEDS])}, best in hindsight - EXP3 (the regret per episode) "
              f"{ci0([avg('best_in_pi', s) - avg('exp3', s) for s in SEEDS])}."]
    text = "\n".join(lines) + "\n"
    (HERE / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
