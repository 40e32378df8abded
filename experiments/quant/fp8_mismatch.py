"""Rollout/trainer mismatch under the two FP8 precision flows (paper `jetrl`), 5 seeds.

For held-out arithmetic prompts, sample completions with the FP8 rollout policy, then score the
same tokens with the trainer's forward in each flow:

* rollout_only: trainer forward in full precision  -> the update is off-policy by the FP8 error
* unified:      trainer forward in the same FP8    -> trainer and sampler agree exactly

Reported per seed: mean k3 KL(rollout || trainer) per token, max importance ratio
pi_train / pi_rollout over tokens, and the greedy accuracy of the FP8 policy vs full precision.
The RL stability comparison (training curves over seeds) belongs to the RLVR loop
(`train.precision_flow`), which calls `rlx.quant.fp8_flow.fp8_precision`.

    python experiments/quant/fp8_mismatch.py [--checkpoint assets/arith-base] [--fmt e4m3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


@torch.no_grad()
def token_logprobs(model, ids, mask, start):
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
    m = mask[:, 1:].clone()
    m[:, : start - 1] = 0  # only completion tokens
    return lp, m


def run(checkpoint: str, fmt: str, seeds: list[int], n: int, max_new: int) -> dict:
    from rlx.models import ModelConfig, load_policy
    from rlx.quant.fp8_flow import fp8_precision
    from rlx.tasks import ArithmeticConfig, make_task

    task = make_task(ArithmeticConfig())
    problems = task.heldout(n)
    rows = []
    for mode in ("rollout_only", "unified"):
        for seed in seeds:
            model, tok = load_policy(ModelConfig(path=checkpoint))
            model.eval()
            flow = fp8_precision(model, mode, fmt=fmt)
            tok.padding_side = "left"
            enc = tok([task.prompt(p, tok) for p in problems], return_tensors="pt", padding=True, add_special_tokens=False)
            torch.manual_seed(seed)
            with flow.rollout():
                out = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=max_new,
                                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            start = enc["input_ids"].shape[1]
            mask = torch.cat([enc["attention_mask"], (out[:, start:] != tok.pad_token_id).long()], 1)
            with flow.rollout():
                lp_roll, m = token_logprobs(model, out, mask, start)
            with flow.train():
                lp_train, _ = token_logprobs(model, out, mask, start)
            logr = (lp_train - lp_roll) * m  # log pi_train / pi_rollout on sampled tokens
            k3 = ((logr.exp() - 1) - logr) * m  # k3 estimator of KL(rollout || train)
            rows.append({"mode": mode, "seed": seed, "kl_k3": float(k3.sum() / m.sum()),
                         "max_ratio": float(logr.exp().max()), "tokens": int(m.sum())})
            print(rows[-1], flush=True)
    return {"checkpoint": checkpoint, "fmt": fmt, "n_prompts": n, "rows": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default=str(ROOT / "assets" / "arith-base"))
    p.add_argument("--fmt", default="e4m3", choices=["e4m3", "e5m2"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--max-new", type=int, default=8)
    p.add_argument("--out", default=str(Path(__file__).with_name("fp8_mismatch.json")))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    res = run(args.checkpoint, args.fmt, args.seeds, args.n, args.max_new)
    Path(args.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
