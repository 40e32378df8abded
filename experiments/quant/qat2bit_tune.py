"""Choose QuEST QAT's training settings at 2 bits on a validation split, never on the held-out set.

`qat2bit_fair.py` ran QuEST QAT (distill) with one untuned setting (300 steps, lr 3e-4, KL on the
answer tokens only). This script compares settings by the answer KL to the full-precision model on
VALIDATION problems: training-split problems drawn with another seed, minus any that are also in the
calibration set. The held-out problems are not touched here; the chosen setting is then evaluated
once on them by `qat2bit_fair.py --tuned SETTING`. RSQ (the best post-training method at 2 bits) is
measured on the same validation problems for reference.

    python experiments/quant/qat2bit_tune.py --group 0 --out experiments/quant/qat2bit_tune.json

Each setting is "lr,steps,positions[,schedule]": positions = answer (KL on the completion tokens,
as in qat2bit_fair.py) or all (KL at every real position, prompt included: more teacher signal from
the same calibration inputs; the labels are still never used); schedule = constant (default) or
cosine (`quest.lr_schedule`). Seed 0. Rows accumulate in the json.
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
sys.path.insert(0, str(HERE))

from qat2bit_fair import answer_kl, calib_for, tuned_config, tuned_name  # noqa: E402
from quant_table import load  # noqa: E402

from rlx.quant import QuantConfig, quantize  # noqa: E402
from rlx.quant.calib import calibration_from_texts, task_texts  # noqa: E402


def validation(calib_texts: list[str], n: int, tok) -> tuple[torch.Tensor, ...]:
    """Training-split problems (seed 1) that are not calibration problems -> ids, mask, answer mask."""
    texts, prompts = task_texts("arithmetic", 4 * n, 1, tok)
    seen = set(calib_texts)
    keep = [(t, p) for t, p in zip(texts, prompts) if t not in seen]
    uniq = list(dict.fromkeys(keep))[:n]
    if len(uniq) < n:
        raise SystemExit(f"only {len(uniq)} validation problems outside the calibration set (asked {n})")
    return calibration_from_texts([t for t, _ in uniq], tok, 64, [p for _, p in uniq])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(ROOT / "assets" / "arith-base"))
    p.add_argument("--calib-n", type=int, default=512)
    p.add_argument("--val-n", type=int, default=1000)
    p.add_argument("--group", type=int, default=0)
    p.add_argument("--settings", nargs="+", default=[
        "3e-4,300,answer", "1e-3,300,answer", "1e-4,300,answer", "3e-4,300,all", "3e-4,1000,answer",
        "3e-4,300,answer,cosine", "1e-3,300,answer,cosine", "3e-4,1000,answer,cosine"])
    p.add_argument("--out", default=str(HERE / "qat2bit_tune.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model, tok = load(args.checkpoint)
    texts, prompts = task_texts("arithmetic", args.calib_n, 0, tok)
    calib = calibration_from_texts(texts, tok, 64, prompts)
    val = validation(texts, args.val_n, tok)
    out = Path(args.out)
    res = json.loads(out.read_text()) if out.is_file() else {"group": args.group, "calib_n": args.calib_n,
                                                              "val_n": args.val_n, "rows": {}}
    base = dict(bits=2, group_size=args.group, calib={"n": args.calib_n, "seq_len": 64, "batch_size": 32})
    todo = {"rsq": (QuantConfig(method="rsq", **base), calib)}
    for s in args.settings:
        name = tuned_name(s)
        todo[name] = (tuned_config(s, 0, base), calib_for(name, calib))
    for name, (cfg, data) in todo.items():
        if name in res["rows"]:
            continue
        m = copy.deepcopy(model)
        t = time.perf_counter()
        quantize(m, cfg, tokenizer=tok, calib=data)
        m.eval()
        kl = np.array(answer_kl(m, model, val))
        res["rows"][name] = {"val_kl": float(kl.mean()), "val_kl_per_problem": kl.tolist(),
                             "seconds": time.perf_counter() - t}
        out.write_text(json.dumps(res))
        print(f"{name:50s} validation answer KL {kl.mean():.4f} ({time.perf_counter() - t:.0f} s)", flush=True)
    lines = [f"Validation answer KL to FP (n = {args.val_n} training-split problems outside the calibration set; "
             f"2 bits, group {args.group}, calibration n = {args.calib_n}). Produced by "
             f"`python experiments/quant/qat2bit_tune.py {' '.join(argv if argv is not None else sys.argv[1:])}`.", "",
             "| setting | validation answer KL | seconds |", "| --- | --- | --- |"]
    for name, r in sorted(res["rows"].items(), key=lambda kv: kv[1]["val_kl"]):
        lines.append(f"| {name} | {r['val_kl']:.4f} | {r['seconds']:.0f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
