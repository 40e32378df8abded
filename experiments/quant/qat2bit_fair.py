"""2-bit goal "QuEST QAT beats every post-training method", measured like-for-like.

Every method quantizes the same checkpoint at 2 bits with the SAME calibration set (prompt +
reference completion of `--calib-n` training-split arithmetic problems); QuEST QAT (and LR-QAT)
train with `loss: distill` (KL from the frozen full-precision model's next-token distribution on
those sequences; the labels are never used), so QAT learns to imitate the FP model, like the
post-training methods, instead of doing extra task training. Evaluation: greedy accuracy and
answer perplexity on `--eval-n` held-out problems; 95% percentile-bootstrap intervals over
problems (rlx.evaluation.stats.bootstrap_ci, 10k resamples), and paired bootstrap intervals of
the per-problem accuracy difference QuEST QAT - each PTQ method (QAT seeds averaged per problem).

    python experiments/quant/qat2bit_fair.py                       # resumes from qat2bit_fair.json
    python experiments/quant/qat2bit_fair.py --only gptq rtn       # run (or re-run) some rows only

Rows are appended to the json after each method, so the run can be split into chunks.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from quant_table import greedy_correct, load, perplexity  # noqa: E402

from rlx.evaluation.stats import bootstrap_ci  # noqa: E402
from rlx.quant import QuantConfig, quantize  # noqa: E402
from rlx.quant.layers import LR_SCHEDULES  # noqa: E402
from rlx.quant.calib import calibration_from_texts, heldout_ids, task_texts  # noqa: E402


def row_configs(args) -> dict[str, QuantConfig]:
    base = dict(bits=2, group_size=args.group, calib={"n": args.calib_n, "seq_len": 64, "batch_size": 32})
    rows = {
        "rtn": QuantConfig(method="rtn", **base),
        "gptq": QuantConfig(method="gptq", **base),
        "rsq": QuantConfig(method="rsq", **base),
        "quantlrm": QuantConfig(method="quantlrm", **base),
        "lqlora r8": QuantConfig(method="lqlora", lqlora={"rank": 8, "iters": 5}, **base),
        "quest (PTQ)": QuantConfig(method="quest", **base),
        "qllm (A8)": QuantConfig(method="qllm", qllm={"act_bits": 8, "steps": 50}, **base),
    }
    for seed in args.qat_seeds:
        rows[f"quest QAT distill s{seed}"] = QuantConfig(
            method="quest", seed=seed, quest={"qat_steps": args.qat_steps, "lr": args.qat_lr, "loss": "distill"}, **base)
    for seed in args.lrqat_seeds:
        rows[f"lrqat distill s{seed}"] = QuantConfig(
            method="lrqat", seed=seed, lrqat={"steps": args.qat_steps, "lr": 10 * args.qat_lr, "loss": "distill"}, **base)
    for seed in args.lm_seeds:
        rows[f"quest QAT lm s{seed}"] = QuantConfig(
            method="quest", seed=seed, quest={"qat_steps": args.qat_steps, "lr": args.qat_lr, "loss": "lm"}, **base)
    for setting in args.tuned:
        for seed in args.tuned_seeds:
            rows[f"{tuned_name(setting)} s{seed}"] = tuned_config(setting, seed, base)
    return rows


def parse_setting(setting: str) -> tuple[float, int, str, str]:
    """'lr,steps,positions[,schedule]' -> (lr, steps, 'answer' | 'all', 'constant' | 'cosine')."""
    parts = setting.split(",")
    if len(parts) == 3:
        parts.append("constant")
    if len(parts) != 4 or parts[2] not in ("answer", "all") or parts[3] not in LR_SCHEDULES:
        raise SystemExit(f"setting {setting!r}: expected lr,steps,answer|all[,constant|cosine]")
    return float(parts[0]), int(parts[1]), parts[2], parts[3]


def tuned_config(setting: str, seed: int, base: dict) -> QuantConfig:
    lr, steps, _, schedule = parse_setting(setting)
    return QuantConfig(method="quest", seed=seed, quest={"qat_steps": steps, "lr": lr, "loss": "distill",
                                                          "lr_schedule": schedule}, **base)


def tuned_name(setting: str) -> str:
    lr, steps, positions, schedule = parse_setting(setting)
    return f"quest QAT distill ({schedule} lr {lr:g}, {steps} steps, KL at {positions} positions)"


def calib_for(name: str, calib: tuple) -> tuple:
    """KL at every real position = the calibration without its answer mask (labels stay unused)."""
    return calib[:2] if "KL at all positions" in name else calib


@torch.no_grad()
def answer_kl(model, fp_model, data) -> list[float]:
    """Per held-out problem: mean over its answer tokens (+ EOS) of KL(p_FP || p_model) of the
    next-token distribution -- how far the quantized model's answer distribution is from the FP one."""
    ids, mask, loss_mask = data
    out = []
    for s in range(0, ids.shape[0], 128):
        i, m, lm = ids[s:s + 128], mask[s:s + 128], loss_mask[s:s + 128, 1:].double()
        lq = torch.log_softmax(model(input_ids=i, attention_mask=m).logits[:, :-1].double(), -1)
        lp = torch.log_softmax(fp_model(input_ids=i, attention_mask=m).logits[:, :-1].double(), -1)
        kl = (lp.exp() * (lp - lq)).sum(-1)
        out += [round(v, 7) for v in ((kl * lm).sum(1) / lm.sum(1).clamp_min(1)).tolist()]
    return out


def ci(x: np.ndarray) -> list[float]:
    return list(bootstrap_ci(x.astype(float), "mean", reps=10_000, seed=0))


def group_of(name: str) -> str:
    """Seeds of one method form one group ('quest QAT distill s1' -> 'quest QAT distill')."""
    head, _, tail = name.rpartition(" s")
    return head if tail.isdigit() else name


def summarize(res: dict) -> tuple[str, dict]:
    fp = np.array(res["fp"]["correct"])
    rows = res["rows"]
    groups: dict[str, list[dict]] = {}
    for name, r in rows.items():
        groups.setdefault(group_of(name), []).append(r)
    summary = {}
    for g, rs in groups.items():
        per_problem = np.mean([r["correct"] for r in rs], axis=0)  # seeds averaged per problem
        kl = np.mean([r["kl"] for r in rs], axis=0)
        summary[g] = {"seeds": len(rs), "acc_ci": ci(per_problem), "kl_ci": ci(kl), "per_problem_kl": kl,
                      "acc_seeds": [float(np.mean(r["correct"])) for r in rs],
                      "ppl": float(np.mean([r["ppl"] for r in rs])), "ppl_seeds": [r["ppl"] for r in rs],
                      "seconds": float(np.mean([r["seconds"] for r in rs])), "kib": rs[0]["bytes"] / 1024,
                      "per_problem": per_problem}
    lines = [f"FP: accuracy {fp.mean():.3f} [{ci(fp)[1]:.3f}, {ci(fp)[2]:.3f}], answer ppl {res['fp']['ppl']:.4f} "
             f"(n = {len(fp)} held-out problems, calibration n = {res['calib_n']}, group size {res['group']}, "
             f"QAT {res['qat_steps']} steps lr {res['qat_lr']} batch 32)", "",
             "| method (2 bits) | seeds | accuracy [95% CI] | per seed | answer KL to FP [95% CI] | answer ppl | quantize s | size KiB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for g, s in summary.items():
        a = s["acc_ci"]
        k = s["kl_ci"]
        lines.append(f"| {g} | {s['seeds']} | {a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}] | "
                     f"{', '.join(f'{x:.3f}' for x in s['acc_seeds'])} | {k[0]:.4f} [{k[1]:.4f}, {k[2]:.4f}] | {s['ppl']:.4f} | {s['seconds']:.1f} | {s['kib']:.1f} |")
    verdict = {}
    ptq = [g for g in summary if "QAT" not in g and "lrqat" not in g]
    for qat in [g for g in summary if g.startswith("quest QAT distill")]:
        lines += ["", f"Paired differences {qat} - method, per problem (QAT seeds averaged per problem; 95% "
                  "bootstrap over problems). Accuracy: higher is better; answer KL to FP: lower is better.", "",
                  "| method | accuracy difference [95% CI] | QAT more accurate? | KL difference [95% CI] | QAT closer to FP? |",
                  "| --- | --- | --- | --- | --- |"]
        verdict[qat] = {}
        for g in ptq + ["full precision"]:
            other = fp.astype(float) if g == "full precision" else summary[g]["per_problem"]
            d = ci(summary[qat]["per_problem"] - other)
            word = "yes" if d[1] > 0 else ("no (worse)" if d[2] < 0 else "not resolved")
            if g == "full precision":
                kd, kword = [float("nan")] * 3, "-"
            else:
                kd = ci(summary[qat]["per_problem_kl"] - summary[g]["per_problem_kl"])
                kword = "yes" if kd[2] < 0 else ("no (farther)" if kd[1] > 0 else "not resolved")
            verdict[qat][g] = {"acc_diff_ci": d, "more_accurate": word, "kl_diff_ci": kd, "closer_to_fp": kword}
            kcell = "-" if g == "full precision" else f"{kd[0]:+.4f} [{kd[1]:+.4f}, {kd[2]:+.4f}]"
            lines.append(f"| {g} | {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] | {word} | {kcell} | {kword} |")
    for s in summary.values():
        del s["per_problem"], s["per_problem_kl"]
    return "\n".join(lines) + "\n", {"summary": summary, "paired_vs_qat": verdict}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(ROOT / "assets" / "arith-base"))
    p.add_argument("--calib-n", type=int, default=512)
    p.add_argument("--eval-n", type=int, default=2430, help="2430 = the whole held-out space of the arithmetic task")
    p.add_argument("--group", type=int, default=64)
    p.add_argument("--qat-steps", type=int, default=300)
    p.add_argument("--qat-lr", type=float, default=3e-4)
    p.add_argument("--qat-seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--lrqat-seeds", type=int, nargs="*", default=[0])
    p.add_argument("--lm-seeds", type=int, nargs="*", default=[0])
    p.add_argument("--tuned", nargs="*", default=[], help="extra QuEST QAT distill settings 'lr,steps,positions[,schedule]' "
                   "chosen on validation problems by qat2bit_tune.py")
    p.add_argument("--tuned-seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--only", nargs="*", default=None, help="row names (or prefixes) to run; default: all not yet in the json")
    p.add_argument("--out", default=str(HERE / "qat2bit_fair.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    model, tok = load(args.checkpoint)
    from rlx.tasks import ArithmeticConfig, make_task

    task = make_task(ArithmeticConfig())
    texts, prompts = task_texts("arithmetic", args.calib_n, 0, tok)
    calib = calibration_from_texts(texts, tok, 64, prompts)
    held, held_ids = heldout_ids(task, args.eval_n, tok, 64)
    res = json.loads(out.read_text()) if out.is_file() else {}
    settings = {"checkpoint": Path(args.checkpoint).name, "calib_n": args.calib_n, "eval_n": args.eval_n,
                "group": args.group, "qat_steps": args.qat_steps, "qat_lr": args.qat_lr}
    if any(res.get(k) != v for k, v in settings.items()):
        res = {**settings, "rows": {}}
    if "fp" not in res:
        res["fp"] = {"ppl": perplexity(model, held_ids), "correct": greedy_correct(model, tok, task, held, 8)}
    print(f"FP acc {np.mean(res['fp']['correct']):.3f} ppl {res['fp']['ppl']:.4f}", flush=True)
    for name, cfg in row_configs(args).items():
        if args.only is not None:
            if not any(name.startswith(o) for o in args.only):
                continue
        elif name in res["rows"] and "kl" in res["rows"][name]:
            continue
        m = copy.deepcopy(model)
        t = time.perf_counter()
        qr = quantize(m, cfg, tokenizer=tok, calib=calib_for(name, calib))
        m.eval()
        row = {"ppl": perplexity(m, held_ids), "correct": greedy_correct(m, tok, task, held, 8),
               "kl": answer_kl(m, model, held_ids),
               "seconds": qr.metrics["quant/seconds"], "bytes": qr.metrics["quant/bytes"],
               "config": cfg.model_dump(mode="json")}
        res["rows"][name] = row
        out.write_text(json.dumps(res))
        print(f"{name:26s} acc {np.mean(row['correct']):.3f} ppl {row['ppl']:.4f} {row['seconds']:.1f}s "
              f"(total {time.perf_counter() - t:.1f}s)", flush=True)
        del m
    md, stats = summarize(res)
    out.with_suffix(".md").write_text(
        "Produced by `python experiments/quant/qat2bit_fair.py` on assets/arith-base (CPU, one torch thread), run "
        "in chunks with `--only ROW_PREFIX ...`; rows accumulate in " + out.name + ", this table is rebuilt from "
        "all of them. Answer KL to FP = per-problem mean over answer tokens of KL(p_FP || p_quantized).\n\n" + md)
    out.with_name(out.stem + ".stats.json").write_text(json.dumps(stats, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
