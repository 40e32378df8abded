"""Continuous adversarial training (paper cadv) vs plain SFT on the arithmetic model, 3 seeds.

Claim (paper cadv): adversarial training against attacks in embedding space (C-AdvUL: CE toward the
safe completion + unlikelihood of the harmful one under attack + clean utility loss; C-AdvIPO: IPO
under attack) makes a model robust to such attacks and to discrete (GCG) attacks while keeping
its utility, at a fraction of the cost of discrete adversarial training.

Setting: recipes/arith_cadv.yaml from assets/arith-base, 150 steps. A behaviour is an arithmetic
prompt with the harmful completion "answer + 1" and the safe one "answer". Conditions:

    sft   train.cadv.mode off (with the same report): plain SFT at the same lr, steps and data
    ul    C-AdvUL (train eps 5% of the mean embedding norm, away 0.2, utility 4)
    ipo   C-AdvIPO (beta 0.5, same attack, utility 4)

Metrics: greedy held-out accuracy (500 problems) and attack success on 100 held-out behaviours
(lower is more robust): without attack, PGD (50 steps) at 5% (the training radius, measured on the
saved models after the runs), 10% and 20% of the embedding norm,
GCG with a 6-token prefix (20 steps, 16 candidates). The base model's report is in the first row.
Runs go to runs/cadv.

    python experiments/cadv/run.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, run_conditions  # noqa: E402

HERE = Path(__file__).resolve().parent
CONDITIONS = {"sft": ["train.cadv.mode=off", "train.cadv.report=true"], "ul": ["train.cadv.mode=ul"],
              "ipo": ["train.cadv.mode=ipo"]}
METRICS = ["eval/accuracy", "robust/asr_clean", "robust/asr_pgd", "robust/asr_pgd_2eps", "robust/asr_gcg"]


def base_report() -> dict[str, float]:
    import torch

    from rlx.config import build_config
    from rlx.models import load_pretrained
    from rlx.robust import cadv
    from rlx.tasks.arithmetic import ArithmeticTask
    from rlx.tasks.config import ArithmeticConfig
    from rlx.train import sft

    torch.set_num_threads(1)
    cfg = build_config(sft.Config, __import__("yaml").safe_load((ROOT / "recipes/arith_cadv.yaml").read_text()))
    model, tok = load_pretrained(str(ROOT / "assets/arith-base"))
    task = ArithmeticTask(ArithmeticConfig())
    beh = cadv.off_by_one_behaviours(task, task.heldout(cfg.eval.n)[: cfg.train.cadv.eval_n], tok)
    return cadv.robust_eval(model, tok, beh, cfg.train.cadv, cadv.embedding_scale(model), seed=0)


def pgd_at_train_radius(model_dir: Path) -> float:
    """Attack success of PGD at the training radius (5% of the initial model's embedding norm) on the
    report's 100 held-out behaviours, for a saved model."""
    import torch

    from rlx.config import build_config
    from rlx.models import load_pretrained
    from rlx.robust import cadv
    from rlx.tasks.arithmetic import ArithmeticTask
    from rlx.tasks.config import ArithmeticConfig
    from rlx.train import sft

    torch.set_num_threads(1)
    cfg = build_config(sft.Config, __import__("yaml").safe_load((ROOT / "recipes/arith_cadv.yaml").read_text()))
    c = cfg.train.cadv
    scale = cadv.embedding_scale(load_pretrained(str(ROOT / "assets/arith-base"))[0])
    model, tok = load_pretrained(str(model_dir))
    task = ArithmeticTask(ArithmeticConfig())
    beh = cadv.off_by_one_behaviours(task, task.heldout(cfg.eval.n)[: c.eval_n], tok)
    b = cadv.pair_batch(tok, beh)
    e = model.get_input_embeddings()(b.harm_ids).detach()
    eps = c.eps * scale
    d = cadv.pgd_attack(model, e, b.harm_mask, b.harm_labels, b.prompt_mask, eps, c.eval_attack_steps, c.step_size * eps)
    return float(cadv.attack_success(model, e + d, b.harm_mask, b.harm_labels).float().mean())


def main() -> int:
    out = ROOT / "runs" / "cadv"
    code = run_conditions(CONDITIONS, "recipes/arith_cadv.yaml", seeds=3, out=out, dest=HERE, metrics=METRICS)
    summaries = json.loads((HERE / "summaries.json").read_text())
    base = base_report()
    acc_before = [s["eval/accuracy_before"] for s in summaries["sft"].values()]
    lines = ["# Continuous adversarial training (paper cadv): results", "", __doc__.strip(), "",
             "Mean [95% bootstrap interval] over 3 seeds. Attack success: lower is more robust.", "",
             "| condition | accuracy | ASR no attack | ASR PGD 5% (train radius) | ASR PGD 10% | ASR PGD 20% | ASR GCG | "
             "train s |", "|---|---|---|---|---|---|---|---|",
             f"| base (no training) | {acc_before[0]:.4f} | {base['robust/asr_clean']:.2f} | "
             f"{pgd_at_train_radius(ROOT / 'assets/arith-base'):.2f} | {base['robust/asr_pgd']:.2f} | "
             f"{base['robust/asr_pgd_2eps']:.2f} | {base['robust/asr_gcg']:.2f} | |"]
    for name in CONDITIONS:
        runs = list(summaries[name].values())
        cells = [mean_ci([r[m] for r in runs]) for m in METRICS]
        train_radius = mean_ci([pgd_at_train_radius(p.parent / "model") for p in sorted((out / name).glob("seed_*/summary.json"))])
        cells.insert(2, train_radius)
        secs = sum(r["time/train_seconds"] for r in runs) / len(runs)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {secs:.0f} |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
