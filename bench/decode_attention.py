"""Decode attention variants inside a real `generate` (docs/bench_rlvr.md, session 10).

Runs rlx's hf engine on the bench's two settings and swaps, in `rlx.rollout.fast`, the attention call of
every decode step for: PyTorch SDPA with the boolean key mask (what rlx runs), SDPA without the mask when
every key is valid, and a hand-written matmul -> masked softmax -> matmul. Prints the median CPU ms per
`generate` (interleaved calls) and checks the sampled tokens are identical.

    python bench/decode_attention.py            # settings a and b, 1 thread
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rlvr_vs_trl import make_b_model, suppress_eos  # noqa: E402

import rlx.rollout.fast as fast  # noqa: E402
from rlx.models import load_pretrained  # noqa: E402
from rlx.rollout import HFEngine, SamplingParams  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SDPA = F.scaled_dot_product_attention


def manual(q, k, v, attn_mask=None, scale=None, enable_gqa=False):
    if q.shape[2] != 1:  # prefill: unchanged
        return SDPA(q, k, v, attn_mask=attn_mask, scale=scale, enable_gqa=enable_gqa)
    s = torch.matmul(q, k.transpose(-1, -2)).mul_(scale)
    if attn_mask is not None:
        s = s.masked_fill_(~attn_mask, float("-inf"))
    return torch.matmul(torch.softmax(s, -1), v)


def no_mask(q, k, v, attn_mask=None, scale=None, enable_gqa=False):
    if q.shape[2] == 1 and attn_mask is not None and bool(attn_mask.all()):
        attn_mask = None
    return SDPA(q, k, v, attn_mask=attn_mask, scale=scale, enable_gqa=enable_gqa)


class _F:
    """`rlx.rollout.fast.F` with one attention function swapped."""

    def __init__(self, attention):
        self.scaled_dot_product_attention = attention

    def __getattr__(self, name):
        return getattr(F, name)


def main() -> None:
    torch.set_num_threads(1)
    variants = {"sdpa + mask (rlx)": SDPA, "sdpa, no mask": no_mask, "matmul-softmax-matmul": manual}
    prompts = ["12+34=", "71*96=", "19+29=", "89-63="]
    with tempfile.TemporaryDirectory() as tmp:
        settings = (("a", str(ROOT / "assets" / "arith-base"), 8, 30, False),
                    ("b", make_b_model(Path(tmp) / "b"), 64, 5, True))
        for name, path, max_new, reps, no_eos in settings:
            model, tok = load_pretrained(path)
            if no_eos:
                suppress_eos(model, tok.eos_token_id)
            eng = HFEngine(model, tok)
            params = SamplingParams(temperature=1.0, max_new_tokens=max_new, n=8)
            times: dict[str, list[float]] = {k: [] for k in variants}
            for attention in variants.values():  # warm-up
                fast.F = _F(attention)
                eng.generate(prompts, params, seed=0)
            for r in range(reps):
                for key, attention in variants.items():
                    fast.F = _F(attention)
                    c = time.process_time()
                    eng.generate(prompts, params, seed=r % 5)
                    times[key].append(time.process_time() - c)
            outs = {}
            for key, attention in variants.items():
                fast.F = _F(attention)
                outs[key] = eng.generate(prompts, params, seed=77).completion_ids
            fast.F = F
            print(f"setting {name}: CPU ms per generate, median of {reps} interleaved calls")
            for key in variants:
                same = torch.equal(outs[key], outs["sdpa + mask (rlx)"])
                print(f"  {key:24s} {1000 * statistics.median(times[key]):8.2f}   same tokens: {same}")


if __name__ == "__main__":
    main()
