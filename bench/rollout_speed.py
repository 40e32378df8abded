"""Rollout throughput: rlx's hf engine beside transformers' `model.generate`, same model, same batch.

    python bench/rollout_speed.py                   # both settings, 1 thread
    python bench/rollout_speed.py --reps 50 --threads 1

Settings (random-init Llama, char tokenizer, arithmetic prompts, temperature 1, top_p 1):
  tiny:    4 layers x 128 wide (~0.67M params), 4 prompts x 8 samples = 32 sequences, 8 new tokens
           (the RLVR default: per-step overhead dominates)
  compute: 4 layers x 256 wide (~2.4M params), 4 prompts x 8 samples = 32 sequences, 64 new tokens

The anchor is what TRL's GRPOTrainer does on CPU: `model.generate(do_sample=True,
output_scores=True, return_dict_in_generate=True)` on the prompts already repeated G times, then a
log-softmax of the scores for the sampled tokens' logprobs. EOS is masked out of both (a -inf
bias on its logit) so every row generates exactly max_new_tokens and the token counts are equal.
Timings alternate rlx / HF call by call in one process (the machine is shared), median of `reps`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rlx.models import TinyModelConfig, build_tiny_model, char_tokenizer, count_parameters
from rlx.rollout import HFEngine, SamplingParams

PROMPTS = ["12+34=", "7*8=", "95-17=", "3+4*5="]


class _NoEos(torch.nn.Module):
    """lm_head wrapper that sets the EOS logit to -inf (both engines see the same model)."""

    def __init__(self, head: torch.nn.Module, eos: int):
        super().__init__()
        self.head, self.eos = head, eos

    def forward(self, x):
        out = self.head(x)
        out[..., self.eos] = float("-inf")
        return out


def build(width: int, layers: int):
    tok = char_tokenizer()
    cfg = TinyModelConfig(hidden_size=width, num_layers=layers, num_heads=4, num_kv_heads=4,
                          intermediate_size=2 * width, max_position=256)
    model = build_tiny_model(cfg, tok, seed=0).eval()
    model.lm_head = _NoEos(model.lm_head, tok.eos_token_id)
    return model, tok


def hf_generate(model, tok, prompts, g, t):
    """TRL-style: repeat prompts, sample with scores, logprobs of the sampled tokens."""
    enc = tok([p for p in prompts for _ in range(g)], padding=True, return_tensors="pt", padding_side="left")
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=t,
                             output_scores=True, return_dict_in_generate=True, pad_token_id=tok.pad_token_id)
        comp = out.sequences[:, enc["input_ids"].shape[1]:]
        lp = torch.stack(out.scores, 1).float().log_softmax(-1).gather(2, comp.unsqueeze(2)).squeeze(2)
    tok.batch_decode(comp, skip_special_tokens=True)
    return comp.numel(), lp


def run_setting(name: str, width: int, layers: int, g: int, t: int, reps: int) -> float:
    model, tok = build(width, layers)
    lean = HFEngine(model, tok)  # LeanDecoder path (Llama/Qwen2)
    generic = HFEngine(model, tok, fast=False)  # same loop over the model's own forward + DynamicCache
    params = SamplingParams(temperature=1.0, max_new_tokens=t, n=g)
    times: dict[str, list[float]] = {"lean": [], "generic": [], "hf": []}
    tokens = {}
    for i in range(reps + 2):  # 2 warm-up rounds; the three alternate call by call
        for key in times:
            t0 = time.perf_counter()
            if key == "hf":
                tokens[key], _ = hf_generate(model, tok, PROMPTS, g, t)
            else:
                gen = (lean if key == "lean" else generic).generate(PROMPTS, params, seed=i)
                tokens[key] = int(gen.completion_mask.sum())
            if i >= 2:
                times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    n = len(PROMPTS) * g
    print(f"[{name}] {layers} layers x {width} wide, {count_parameters(model) / 1e6:.2f}M params, "
          f"{n} sequences x {t} new tokens, {torch.get_num_threads()} thread(s), median of {reps}")
    labels = {"lean": "rlx hf engine (lean path)", "generic": "rlx hf engine (HF forward)", "hf": "HF model.generate"}
    for k, label in labels.items():
        print(f"  {label:27s} {med[k] * 1e3:8.2f} ms/call  {tokens[k] / med[k]:9.0f} tokens/s  "
              f"{med['hf'] / med[k]:5.2f}x")
    return med["hf"] / med["lean"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30, help="timed calls per engine and setting")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    compute = run_setting("compute", 256, 4, g=8, t=64, reps=max(3, args.reps // 5))
    tiny = run_setting("tiny", 128, 4, g=8, t=8, reps=args.reps)
    print(f"compute-bound ratio: {compute:.2f}")
    print(f"ratio: {tiny:.2f}")


if __name__ == "__main__":
    main()
