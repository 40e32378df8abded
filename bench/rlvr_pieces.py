"""The CPU time of each piece of one rlx RLVR step (`python bench/rlvr_vs_trl.py --pieces`).

Split out of bench/rlvr_vs_trl.py, whose settings, model and optimizer constants it reuses.
"""

from __future__ import annotations

import statistics
import time

import torch

from rlvr_vs_trl import BETAS, CLIP, EPS, LR, Setting, suppress_eos


def cpu_ms(f, n: int = 5) -> float:
    """Median CPU milliseconds of f() over n calls, after one warm-up call."""
    f()
    ts = []
    for _ in range(n):
        c = time.process_time()
        f()
        ts.append(time.process_time() - c)
    return 1000 * statistics.median(ts)


def pieces(s: Setting, threads: int, log) -> None:
    """CPU time of each piece of one rlx step on the bench's batch (the numbers in docs/bench_rlvr.md)."""
    import dataclasses

    import torch.nn.functional as F

    from rlx.models import load_pretrained
    from rlx.rollout import HFEngine, SamplingParams
    from rlx.train.logprobs import sequence_logprobs

    torch.set_num_threads(threads)
    model, tok = load_pretrained(s.model_dir)
    if s.no_eos:
        suppress_eos(model, tok.eos_token_id)
    eng = HFEngine(model, tok)
    prompts = ["12+34=", "71*96=", "19+29=", "89-63="][: s.prompts]
    params = SamplingParams(temperature=1.0, max_new_tokens=s.max_new, n=s.group)
    g = eng.generate(prompts, params, seed=0)
    g = type(g)(**{f.name: (v.clone() if torch.is_tensor(v) else v)
                   for f in dataclasses.fields(g) for v in [getattr(g, f.name)]})  # out of inference mode

    def fwdbwd(b, lean=True, group=s.group):
        lp, _, _ = sequence_logprobs(model, b.prompt_ids, b.prompt_mask, b.completion_ids, b.completion_mask,
                                     with_entropy=True, group_size=group, lean=lean)
        lp.sum().backward()

    def fwd():
        with torch.no_grad():
            sequence_logprobs(model, g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask,
                              with_entropy=True, group_size=s.group)

    single = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    fused = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS, fused=True)
    fwdbwd(g)
    log(f"\n== pieces of one rlx step, setting {s.name}: {int(g.completion_mask.sum())} generated tokens, "
        f"completions padded to {g.completion_ids.shape[1]}; CPU ms, median of 5")
    for name, f in (("rollout HFEngine.generate", lambda: eng.generate(prompts, params, seed=1)),
                    ("update forward (no grad)", fwd),
                    ("update forward + backward", lambda: fwdbwd(g)),
                    ("  same, HF forward, shared prompts", lambda: fwdbwd(g, lean=False)),
                    ("  same, HF forward, full rows", lambda: fwdbwd(g, lean=False, group=1)),
                    ("clip_grad_norm_", lambda: torch.nn.utils.clip_grad_norm_(list(model.parameters()), CLIP)),
                    ("AdamW step, single-tensor", single.step),
                    ("AdamW step, fused (rlx, TRL)", fused.step)):
        log(f"  {name:34s} {cpu_ms(f):9.2f}")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        eng.generate(prompts, params, seed=2)
    log("  torch.profiler, one generate call (wall-clock op times; shares are what matter):")
    log(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10, max_name_column_width=45))
    cfg = model.config
    hd = cfg.hidden_size // cfg.num_attention_heads
    L = 6 + s.max_new
    q = torch.randn(s.rows, cfg.num_attention_heads, 1, hd)
    k, v = torch.randn(s.rows, cfg.num_attention_heads, L, hd), torch.randn(s.rows, cfg.num_attention_heads, L, hd)
    kb, vb = (torch.randn(s.rows, cfg.num_attention_heads, 4 * L, hd) for _ in range(2))
    m = torch.ones(s.rows, 1, 1, L, dtype=torch.bool)
    log(f"  one decode-step SDPA over {L} keys, us CPU: bool mask "
        f"{1000 * cpu_ms(lambda: [F.scaled_dot_product_attention(q, k, v, attn_mask=m) for _ in range(20)]) / 20:.0f}"
        f", no mask {1000 * cpu_ms(lambda: [F.scaled_dot_product_attention(q, k, v) for _ in range(20)]) / 20:.0f}"
        f", bool mask on a slice of a {4 * L}-long buffer "
        f"{1000 * cpu_ms(lambda: [F.scaled_dot_product_attention(q, kb[:, :, :L], vb[:, :, :L], attn_mask=m) for _ in range(20)]) / 20:.0f}")
