"""Rollout/trainer mismatch (paper jetrl) as `rlx.objectives.mismatch_metrics` sees it.

A tiny random Llama (initializer_range 0.1 so that next-token distributions are peaked) samples
completions with its weights in a lower precision (the "rollout engine"); the fp32 model scores the
same tokens (the "trainer"). We print mismatch/kl_k3, mismatch/ratio_max and the fraction of tokens a
TIS cap of 2 would truncate, for bf16 rollouts, fp8-e4m3 (per-tensor scaled weights) rollouts, and the
unified flow (trainer and rollout both fp8), which is jetrl's point: zero mismatch by construction.

Run: python experiments/objectives_toy/mismatch_precision.py   (about 30 s on one CPU core)
"""

from __future__ import annotations

import copy

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rlx.objectives import mismatch_metrics, tis_weights


def fp8_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Round every 2-D weight through float8_e4m3fn with a per-tensor scale (amax / 448)."""
    q = copy.deepcopy(model)
    with torch.no_grad():
        for p in q.parameters():
            if p.dim() == 2:
                scale = p.abs().amax().clamp_min(1e-12) / 448.0
                p.copy_((p / scale).to(torch.float8_e4m3fn).to(torch.float32) * scale)
    return q


def bf16_weights(model: torch.nn.Module) -> torch.nn.Module:
    q = copy.deepcopy(model)
    with torch.no_grad():
        for p in q.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    return q


@torch.no_grad()
def sample(model, prompts: torch.Tensor, steps: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    ids, logps = prompts, []
    for _ in range(steps):
        logits = model(ids).logits[:, -1].float()
        lp = torch.log_softmax(logits, -1)
        tok = torch.multinomial(lp.exp(), 1, generator=gen)
        logps.append(lp.gather(-1, tok))
        ids = torch.cat([ids, tok], dim=1)
    return ids[:, prompts.shape[1]:], torch.cat(logps, dim=1)


@torch.no_grad()
def score(model, prompts: torch.Tensor, completion: torch.Tensor) -> torch.Tensor:
    ids = torch.cat([prompts, completion], dim=1)
    lp = torch.log_softmax(model(ids).logits[:, prompts.shape[1] - 1 : -1].float(), -1)
    return lp.gather(-1, completion[..., None]).squeeze(-1)


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=4, intermediate_size=256, max_position_embeddings=128,
                      initializer_range=0.1, tie_word_embeddings=True)
    trainer = LlamaForCausalLM(cfg).eval()
    prompts = torch.randint(4, 100, (32, 8), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(32, 32, dtype=torch.bool)
    fp8 = fp8_weights(trainer)
    setups = {
        "same weights, fp32 both": (trainer, trainer),
        "bf16 rollout, fp32 trainer": (bf16_weights(trainer), trainer),
        "fp8 rollout, fp32 trainer": (fp8, trainer),
        "fp8 rollout, fp8 trainer (unified)": (fp8, fp8),
    }
    print("| setup | mismatch/kl_k3 | mismatch/kl_k1 | mismatch/ratio_max | TIS(C=2) capped frac |")
    print("|---|---|---|---|---|")
    for name, (rollout, train) in setups.items():
        completion, roll_lp = sample(rollout, prompts, 32, torch.Generator().manual_seed(2))
        old_lp = score(train, prompts, completion)
        m = mismatch_metrics(old_lp, roll_lp, mask)
        _, t = tis_weights(old_lp, roll_lp, mask, cap=2.0)
        print(f"| {name} | {m['mismatch/kl_k3']:.2e} | {m['mismatch/kl_k1']:.2e} | {m['mismatch/ratio_max']:.3f} "
              f"| {t['tis/capped_frac']:.4f} |")


if __name__ == "__main__":
    main()
