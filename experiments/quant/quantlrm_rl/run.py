"""QuantLRM on a real RL-trained checkpoint and its base (paper `quantlrm`).

The RL checkpoint `assets/arith-grpo` is the final model of the README's default recipe
(`rlx train recipes/arith_grpo.yaml train.steps=150 --out /tmp/q_rl`, GRPO from assets/arith-base, 150 steps;
copied from /tmp/q_rl/model). If it is missing, this script regenerates it with that command.
At 4/3/2 bits (group 64, the same 512 calibration problems for every method) it compares:
rtn, gptq, quantlrm with `quantlrm.base = assets/arith-base` (real RL deltas W_RL - W_base) and
quantlrm without a base (pseudo deltas from one calibration gradient). Evaluation on the whole
held-out space of the arithmetic task (2430 problems): greedy accuracy with a 95% percentile
bootstrap interval over problems, answer KL to the full-precision RL model, answer perplexity;
paired bootstrap intervals of QuantLRM(real) - GPTQ and QuantLRM(real) - QuantLRM(pseudo).

    python experiments/quant/quantlrm_rl/run.py        # -> results.md, results.json next to it
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(HERE.parent))

from quant_table import greedy_correct, load, perplexity  # noqa: E402
from qat2bit_fair import answer_kl, ci  # noqa: E402

from rlx.quant import QuantConfig, quantize  # noqa: E402
from rlx.quant.calib import calibration_from_texts, heldout_ids, task_texts  # noqa: E402

BASE = ROOT / "assets" / "arith-base"
RL = ROOT / "assets" / "arith-grpo"


def ensure_rl_checkpoint() -> Path:
    if (RL / "model.safetensors").is_file():
        return RL
    run = Path("/tmp/quantlrm_rl_run")
    subprocess.run([sys.executable, "-m", "rlx.cli", "train", str(ROOT / "recipes" / "arith_grpo.yaml"), "train.steps=150",
                    "--out", str(run)],
                   check=True, cwd=ROOT)
    return run / "model"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", type=int, nargs="+", default=[4, 3, 2])
    p.add_argument("--calib-n", type=int, default=512)
    p.add_argument("--eval-n", type=int, default=2430)
    p.add_argument("--group", type=int, default=64)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rl_dir = ensure_rl_checkpoint()
    model, tok = load(str(rl_dir))
    base_model, _ = load(str(BASE))
    from rlx.tasks import ArithmeticConfig, make_task

    task = make_task(ArithmeticConfig())
    texts, prompts = task_texts("arithmetic", args.calib_n, 0, tok)
    calib = calibration_from_texts(texts, tok, 64, prompts)
    held, held_ids = heldout_ids(task, args.eval_n, tok, 64)

    # how large the real RL update is, relative to the weights, over the quantized layers
    num = den = 0.0
    bm = dict(base_model.named_modules())
    for n, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and "lm_head" not in n:
            d = m.weight.detach() - bm[n].weight.detach()
            num += float(d.pow(2).sum())
            den += float(m.weight.detach().pow(2).sum())
    res = {"rl_checkpoint": str(rl_dir.relative_to(ROOT)) if rl_dir.is_relative_to(ROOT) else str(rl_dir),
           "base": "assets/arith-base", "calib_n": args.calib_n, "eval_n": len(held), "group": args.group,
           "rel_delta_norm": (num / den) ** 0.5,
           "fp_rl": {"ppl": perplexity(model, held_ids), "correct": greedy_correct(model, tok, task, held, 8)},
           "fp_base": {"ppl": perplexity(base_model, held_ids), "correct": greedy_correct(base_model, tok, task, held, 8)},
           "rows": []}
    print(f"RL {np.mean(res['fp_rl']['correct']):.3f} base {np.mean(res['fp_base']['correct']):.3f} "
          f"|dW|/|W| {res['rel_delta_norm']:.2e}", flush=True)
    base_cfg = dict(group_size=args.group, calib={"n": args.calib_n, "seq_len": 64, "batch_size": 32})
    for bits in args.bits:
        for name, cfg in [("rtn", QuantConfig(method="rtn", bits=bits, **base_cfg)),
                          ("gptq", QuantConfig(method="gptq", bits=bits, **base_cfg)),
                          ("quantlrm (real deltas)", QuantConfig(method="quantlrm", bits=bits, quantlrm={"base": str(BASE)}, **base_cfg)),
                          ("quantlrm (pseudo deltas)", QuantConfig(method="quantlrm", bits=bits, **base_cfg))]:
            m = copy.deepcopy(model)
            t = time.perf_counter()
            qr = quantize(m, cfg, tokenizer=tok, calib=calib)
            m.eval()
            scaled = sum(1 for lq in qr.layers.values() if lq.col_scale is not None and
                         float((lq.col_scale - 1).abs().max()) > 1e-6)
            row = {"method": name, "bits": bits, "ppl": perplexity(m, held_ids),
                   "correct": greedy_correct(m, tok, task, held, 8), "kl": answer_kl(m, model, held_ids),
                   "seconds": qr.metrics["quant/seconds"], "bytes": qr.metrics["quant/bytes"],
                   "layers_scaled": scaled, "layers": len(qr.layers)}
            res["rows"].append(row)
            print(f"{bits}b {name:26s} acc {np.mean(row['correct']):.3f} ppl {row['ppl']:.4f} "
                  f"kl {np.mean(row['kl']):.4f} scaled {scaled}/{len(qr.layers)} ({time.perf_counter() - t:.1f}s)", flush=True)
            del m
    (HERE / "results.json").write_text(json.dumps(res))
    (HERE / "results.md").write_text(markdown(res))
    print(markdown(res))
    return 0


def markdown(res: dict) -> str:
    rl, bs = np.array(res["fp_rl"]["correct"], float), np.array(res["fp_base"]["correct"], float)
    a, b = ci(rl), ci(bs)
    d = ci(rl - bs)
    out = ["Produced by `python experiments/quant/quantlrm_rl/run.py` (CPU, one torch thread).", "",
           f"RL checkpoint `{res['rl_checkpoint']}` (GRPO, `rlx train recipes/arith_grpo.yaml train.steps=150`), base `{res['base']}`; "
           f"relative update size ||W_RL - W_base|| / ||W_RL|| over the quantized layers = {res['rel_delta_norm']:.2e}. "
           f"n = {res['eval_n']} held-out problems (the whole held-out space), calibration n = {res['calib_n']}, "
           f"group size {res['group']}. Intervals: 95% percentile bootstrap over problems (10k resamples).", "",
           f"Full precision: RL model accuracy {a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}], answer ppl {res['fp_rl']['ppl']:.4f}; "
           f"base {b[0]:.3f} [{b[1]:.3f}, {b[2]:.3f}], ppl {res['fp_base']['ppl']:.4f}; RL - base (paired) "
           f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}].", "",
           "| bits | method | accuracy [95% CI] | acc / FP(RL) | answer KL to FP(RL) [95% CI] | answer ppl | layers column-scaled | quantize s | size KiB |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    by = {}
    for r in res["rows"]:
        c = np.array(r["correct"], float)
        k = np.array(r["kl"], float)
        by[(r["bits"], r["method"])] = (c, k)
        x, y = ci(c), ci(k)
        out.append(f"| {r['bits']} | {r['method']} | {x[0]:.3f} [{x[1]:.3f}, {x[2]:.3f}] | {x[0] / rl.mean():.2f} | "
                   f"{y[0]:.4f} [{y[1]:.4f}, {y[2]:.4f}] | {r['ppl']:.4f} | {r['layers_scaled']}/{r['layers']} | "
                   f"{r['seconds']:.1f} | {r['bytes'] / 1024:.1f} |")
    out += ["", "Paired differences (per problem, 95% bootstrap over problems): QuantLRM with real RL deltas minus the other method.", "",
            "| bits | vs | accuracy difference [95% CI] | KL difference [95% CI] (negative = real deltas closer to FP) |",
            "| --- | --- | --- | --- |"]
    for bits in sorted({r["bits"] for r in res["rows"]}, reverse=True):
        real = by[(bits, "quantlrm (real deltas)")]
        for other in ("gptq", "quantlrm (pseudo deltas)"):
            o = by[(bits, other)]
            x, y = ci(real[0] - o[0]), ci(real[1] - o[1])
            out.append(f"| {bits} | {other} | {x[0]:+.3f} [{x[1]:+.3f}, {x[2]:+.3f}] | {y[0]:+.4f} [{y[1]:+.4f}, {y[2]:+.4f}] |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
