"""DR-RL rank selection for low-rank attention scores on the shipped arithmetic model (paper drrl), 3 seeds.

Claim (paper drrl): an RL agent choosing the attention rank per input and layer, rewarded by
attention fidelity minus compute, keeps accuracy while cutting FLOPs, and perturbation bounds let
ranks change without a new decomposition.

Setting: assets/arith-base (Llama-style, 4 layers x 4 heads, d_h = 32), 2-operand 2-digit problems
(`ArithmeticConfig()`), sequences of 6-14 tokens. Every head's score matrix S = Q K^T / sqrt(d_h) is
replaced by its rank-r truncated SVD (`rlx.quant.drrl`); greedy decoding recomputes the whole
sequence every step (no KV cache), so ranks are chosen per (step, sequence, layer).
Candidate ranks (1, 2, 3, 4, 5, 6, 8, 32); rank >= L is exact.

Per seed s (0, 1, 2): the policy is trained (`train_rank_policy`, 400 updates of 64 sequences) on
prefixes of 2000 training problems (prompt + reference answer + EOS), policy seed s; it is evaluated
on held-out problems [300 s, 300 s + 300). For each lambda in (0.1, 0.3):
    DR-RL         the trained policy, argmax rank
    bound-greedy  cheapest rank with head-mean KL bound <= eps, eps bisected to DR-RL's mean compute
    oracle        argmax of the true reward -KL - lambda' c, lambda' bisected to DR-RL's mean compute
Static ranks and the exact model are evaluated on the same problems.
Metrics: compute fraction c (kept share of the exact rank, mean over decisions); score-kernel FLOPs
over dense 2 L^2 d_h, without and with the factor cost; mean attention KL(full || low-rank) per
decision; greedy accuracy; agreement of the answer with the exact model's. Mean and 95% bootstrap
interval over the 3 seeds. Online check: on the exact model's decoding, the appended-token bound
tail_F(S_{t+1}, r) <= (tail_F(S_t, r)^2 + ||E||_F^2)^{1/2} per (step, layer, head, rank).

Run: python experiments/drrl/run.py   (about 10-15 min on one CPU core)
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from rlx.evaluation.stats import bootstrap_ci
from rlx.models import load_pretrained
from rlx.quant import drrl as D
from rlx.rewards.safe import safe_score
from rlx.tasks.config import ArithmeticConfig
from rlx.tasks.factory import make_task

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SEEDS = [0, 1, 2]
N_EVAL, N_TRAIN = 300, 2000
LAMS = [0.1, 0.3]
CFG = D.DrrlConfig()
BISECT = 10


def training_batches(task, tok, seed: int) -> list[torch.Tensor]:
    """Every prefix from the prompt to prompt + answer + EOS, grouped by length (one tensor each)."""
    groups: dict[int, list[list[int]]] = {}
    for p in task.train_problems(N_TRAIN, seed):
        prompt = task.prompt(p, tok)
        ids = tok(prompt + task.reference_completion(p))["input_ids"] + [tok.eos_token_id]
        for n in range(len(tok(prompt)["input_ids"]), len(ids) + 1):
            groups.setdefault(n, []).append(ids[:n])
    return [torch.tensor(v) for _, v in sorted(groups.items()) if len(v) >= CFG.batch_size]


def evaluate(model, tok, task, problems, select, reference: list[str] | None) -> dict[str, float]:
    texts, steps = D.greedy_generate(model, tok, [task.prompt(p, tok) for p in problems], select)
    out = {"accuracy": float(np.mean([safe_score(task.score, t, p)[0].correct for t, p in zip(texts, problems)])),
           "agreement": float(np.mean([a == b for a, b in zip(texts, reference)])) if reference else 1.0}
    if not steps:
        return out | {"compute": 1.0, "flops": 1.0, "flops_factors": 1.0, "kl": 0.0}
    d_h = model.config.head_dim
    dense = sum(D.score_flops(st.length, d_h, None) * len(st.ranks) for st in steps)
    out["flops"] = sum(D.score_flops(st.length, d_h, int(r)) for st in steps for r in st.ranks) / dense
    out["flops_factors"] = sum(D.score_flops(st.length, d_h, int(r), True) for st in steps for r in st.ranks) / dense
    out["compute"] = float(torch.cat([st.frac for st in steps]).mean())
    out["kl"] = float(torch.cat([st.kl for st in steps]).mean())
    return out


def matched(run, lo: float, hi: float, target: float) -> tuple[float, dict[str, float]]:
    """Log-bisect a knob whose compute falls as it grows until the compute is nearest `target`."""
    best = None
    for _ in range(BISECT):
        mid = math.sqrt(lo * hi)
        m = run(mid)
        if best is None or abs(m["compute"] - target) < abs(best[1]["compute"] - target):
            best = (mid, m)
        lo, hi = (mid, hi) if m["compute"] > target else (lo, mid)
    return best


def online_bound_check(model, tok, task, problems) -> dict[str, float]:
    """The appended-token bound on the exact model's decoding, every (step, layer, head, rank)."""
    seen: list[D.LayerScores] = []

    def capture(ls: D.LayerScores) -> torch.Tensor:
        seen.append(ls)
        return torch.full((ls.s.shape[0],), 10**6, dtype=torch.long)  # exact

    D.greedy_generate(model, tok, [task.prompt(p, tok) for p in problems], capture)
    n_layers = len(model.model.layers)
    held, ratios, block = [], [], []
    for old, new in zip(seen, seen[n_layers:]):
        L = old.s.shape[-1]
        if new.s.shape[-1] != L + 1 or new.s.shape[0] != old.s.shape[0] or new.layer != old.layer:
            continue
        block.append(float((new.scores[..., :L, :L] - old.scores).abs().max()))
        E = new.scores.clone()
        E[..., :L, :L] = 0
        e = E.norm(dim=(-2, -1))
        for r in range(1, L + 1):
            bound = D.appended_tail_bound(D.tail_error(old.s, r), e)
            true = D.tail_error(new.s, r)
            held.append((true <= bound * (1 + 1e-5) + 1e-5).float().flatten())
            ratios.append((bound / true.clamp_min(1e-12))[true > 1e-3].flatten())
    return {"cases": int(sum(len(h) for h in held)), "held": float(torch.cat(held).mean()),
            "bound_over_true_median": float(torch.cat(ratios).median()), "old_block_max_change": max(block)}


def ci(x, d=4) -> str:
    m, lo, hi = bootstrap_ci(np.asarray(x, dtype=float), statistic="mean", reps=10_000, seed=0)
    return f"{m:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"


def main() -> None:
    torch.set_num_threads(1)
    t0 = time.time()
    model, tok = load_pretrained(str(ROOT / "assets/arith-base"))
    model.eval()
    task = make_task(ArithmeticConfig())
    pool = task.heldout(N_EVAL * len(SEEDS))
    res: dict[str, dict[str, list[float]]] = {}
    extra: dict[str, list] = {"knobs": [], "train_reward": []}

    def put(name, m):
        for k, v in m.items():
            res.setdefault(name, {}).setdefault(k, []).append(v)

    for seed in SEEDS:
        problems = pool[seed * N_EVAL:(seed + 1) * N_EVAL]
        full_texts, _ = D.greedy_generate(model, tok, [task.prompt(p, tok) for p in problems], None)
        put("exact", evaluate(model, tok, task, problems, None, full_texts))
        for r in CFG.ranks[:-1]:
            put(f"static r={r}", evaluate(model, tok, task, problems, D.static(r), full_texts))
        batches = training_batches(task, tok, seed)
        for lam in LAMS:
            cfg = CFG.model_copy(update={"lam": lam, "seed": seed})
            policy, hist = D.train_rank_policy(model, batches, cfg)
            extra["train_reward"].append({"seed": seed, "lam": lam, "first50": float(np.mean(hist[:50])),
                                          "last50": float(np.mean(hist[-50:]))})
            rl = evaluate(model, tok, task, problems, D.PolicySelector(policy, CFG.ranks, sample=False), full_texts)
            put(f"DR-RL lam={lam}", rl)
            eps, g = matched(lambda e: evaluate(model, tok, task, problems, D.bound_greedy(CFG.ranks, e), full_texts),
                             1e-3, 1e3, rl["compute"])
            put(f"bound-greedy @ DR-RL lam={lam}", g)
            lam_o, o = matched(lambda x: evaluate(model, tok, task, problems, D.oracle(CFG.ranks, x), full_texts),
                               1e-4, 10.0, rl["compute"])
            put(f"oracle @ DR-RL lam={lam}", o)
            extra["knobs"].append({"seed": seed, "lam": lam, "greedy_eps": eps, "oracle_lam": lam_o})
            print(f"seed {seed} lam {lam}: rl {rl} greedy {g} oracle {o} ({time.time() - t0:.0f}s)", flush=True)
    online = online_bound_check(model, tok, task, pool[:N_EVAL])
    minutes = (time.time() - t0) / 60

    cols = [("compute", "compute c"), ("flops", "score FLOPs / dense"), ("flops_factors", "with factors / dense"),
            ("kl", "attention KL"), ("accuracy", "accuracy"), ("agreement", "agrees with exact")]
    lines = ["# DR-RL: RL-chosen ranks for low-rank attention scores (paper drrl)", "",
             "Command: `python experiments/drrl/run.py` (assets/arith-base, 3 seeds x 300 held-out problems, "
             f"{minutes:.1f} min on one CPU core). Mean [95% bootstrap interval] over seeds.", "",
             "| method | " + " | ".join(c for _, c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in res.items():
        lines.append(f"| {name} | " + " | ".join(ci(m[k], 3 if k != "kl" else 4) for k, _ in cols) + " |")
    lines += ["", "Paired differences at matched compute (other - DR-RL; negative KL = better than DR-RL):", "",
              "| lambda | comparison | d compute | d attention KL | d accuracy | d agreement |", "|---|---|---|---|---|---|"]
    for lam in LAMS:
        base = res[f"DR-RL lam={lam}"]
        for other in (f"bound-greedy @ DR-RL lam={lam}", f"oracle @ DR-RL lam={lam}"):
            o = res[other]
            diff = {k: np.array(o[k]) - np.array(base[k]) for k in ("compute", "kl", "accuracy", "agreement")}
            lines.append(f"| {lam} | {other.split(' @')[0]} | {ci(diff['compute'], 3)} | {ci(diff['kl'])} | "
                         f"{ci(diff['accuracy'], 3)} | {ci(diff['agreement'], 3)} |")
    lines += ["", f"Online appended-token bound on the exact model's decoding ({online['cases']} (step, layer, head, "
              f"rank) cases): held in {online['held']:.4f} of them; median bound / true tail "
              f"{online['bound_over_true_median']:.2f}; largest change of the old score block "
              f"{online['old_block_max_change']:.1e} (causal: the old block is fixed).", "",
              "Training reward (mean of first / last 50 updates): " + "; ".join(
                  f"seed {t['seed']} lam {t['lam']}: {t['first50']:.3f} -> {t['last50']:.3f}" for t in extra["train_reward"])]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    (HERE / "results.json").write_text(json.dumps({"config": CFG.model_dump(), "seeds": SEEDS, "n_eval": N_EVAL,
                                                   "lams": LAMS, "results": res, "online_bound": online, **extra,
                                                   "minutes": minutes}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
