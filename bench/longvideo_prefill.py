"""Seconds per RL step on long "videos" with and without sharing each video's prefill (paper longvideo).

    python bench/longvideo_prefill.py          # frames 64 128 256 512, 2 videos x 8 samples, 1 thread

MR-SP stage 1 caches each video's embeddings once and reuses them for all G rollouts and for the
update's prefill. Our models read the video as text tokens (no separate vision encoder: the
embedding is a table lookup, nothing worth caching), so the honest mapping is sharing the video's
*prefill* of the language model itself, which rlx already does:

    shared     the hf engine prefills each video once and repeats its KV cache to the G samples, and the
               update's forward runs each group's video once (`rlx.train.fast_logits`, group_size = G)
    rollout    the engine shares, the update does not (group_size = 1: every row runs its own video)
    none       neither: the engine is handed each video G times with n = 1, the update has group_size = 1

One RL step = `rlx.train.collect.collect` (generate, verify) + GRPO advantages + `rlx.train.update.update`
(forward, backward, AdamW step), the stages of `rlx.train.rlvr.run`. Model: the recipes' tiny Llama
(hidden 128, 4 layers, ~0.8M parameters, random init, so completions run to max_new_tokens). Task:
`video` with frame_tokens = 2, so a video of N frames is 2N prompt tokens. Per (frames, condition): one
warm-up step, then the median of --steps timed steps; conditions interleave. Times are CPU seconds of
this process (1 thread; robust to other processes on a shared machine), wall seconds beside them. Prints
the medians, the rollout and update parts, and the speed-up of `shared` over the others.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = ("shared", "rollout", "none")


class PerSampleEngine:
    """The engine without prompt sharing: each prompt is given G times with n = 1 (G prefills)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def generate(self, prompts, params, seed):
        n = params.n
        return self.inner.generate([p for p in prompts for _ in range(n)], params.model_copy(update={"n": 1}), seed)


def rl_step(model, engine, task, tok, objective, rcfg, ocfg, opt, sched, gen, seed, share_update):
    """One step; returns (CPU seconds, wall seconds, rollout CPU seconds, update CPU seconds)."""
    from rlx.rewards.safe import RewardErrors
    from rlx.train.collect import collect
    from rlx.train.update import Prepared, update

    w0, t0 = time.perf_counter(), time.process_time()
    model.eval()
    batch = collect(engine, task, tok, rcfg, ocfg, seed=seed, errors=RewardErrors()).batch
    t1 = time.process_time()
    adv, _ = objective.advantages(batch.rewards, batch.response_mask, batch.group_size)
    if not share_update:
        batch = replace(batch, group_size=1)  # the update's forward then runs every row's video
    model.train()
    update(model, objective, Prepared(batch, adv.advantages, None, None), opt, sched, epochs=1, minibatches=1,
           micro_batch_size=batch.num_sequences, grad_clip=1.0, generator=gen)
    t2 = time.process_time()
    return t2 - t0, time.perf_counter() - w0, t1 - t0, t2 - t1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--prompts", type=int, default=2, help="B: videos per step")
    ap.add_argument("--group", type=int, default=8, help="G: samples per video")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per (frames, condition)")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "bench" / "longvideo_prefill.txt"))
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT / "src"))
    from rlx.models import ModelConfig, TinyModelConfig, load_policy
    from rlx.objectives.build import build_objective
    from rlx.objectives.config import ObjectiveConfig
    from rlx.rollout import HFEngine
    from rlx.tasks import VideoConfig, make_task
    from rlx.train.optim import OptimConfig, make_optimizer
    from rlx.train.rlvr_config import RolloutConfig

    torch.set_num_threads(1)
    lines: list[str] = []

    def say(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    load = " ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    say(f"longvideo_prefill  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  load average {load}  "
        f"torch {torch.__version__}  1 thread  B={args.prompts} G={args.group} max_new_tokens={args.max_new_tokens}")
    tiny = TinyModelConfig(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=4, intermediate_size=512,
                           max_position=2 * max(args.frames) + args.max_new_tokens + 16)
    model, tok = load_policy(ModelConfig(tiny=tiny, threads=1), seed=0)
    ocfg = ObjectiveConfig(preset="grpo")
    objective = build_objective(ocfg, max_new_tokens=args.max_new_tokens)
    rcfg = RolloutConfig(prompts_per_step=args.prompts, group_size=args.group, max_new_tokens=args.max_new_tokens)
    opt, sched = make_optimizer(list(model.parameters()), OptimConfig(lr=1e-5, fused=False), 10_000)
    gen = torch.Generator().manual_seed(0)
    engines = {"shared": HFEngine(model, tok), "rollout": HFEngine(model, tok),
               "none": PerSampleEngine(HFEngine(model, tok))}
    say(f"{'frames':>6} {'prompt tok':>10} {'condition':>9} {'CPU s/step':>10} {'wall s':>8} {'rollout s':>9} "
        f"{'update s':>8}")
    table: dict[tuple[int, str], float] = {}
    wall: dict[tuple[int, str], float] = {}
    for frames in args.frames:
        task = make_task(VideoConfig(frames=frames, frame_tokens=2, questions=["count"]))
        prompt_len = len(task.prompt(task.train_problems(1, seed=0)[0]))
        times: dict[str, list[tuple[float, float, float, float]]] = {c: [] for c in CONDITIONS}
        order = list(CONDITIONS)
        for step in range(args.steps + 1):  # step 0: warm-up, not timed
            for cond in order:
                t = rl_step(model, engines[cond], task, tok, objective, rcfg, ocfg, opt, sched, gen,
                            seed=1000 * frames + step, share_update=cond == "shared")
                if step:
                    times[cond].append(t)
            order.reverse()  # a, b, c, c, b, a: drifting load hits every condition alike
        for cond in CONDITIONS:
            med = [statistics.median(x[i] for x in times[cond]) for i in range(4)]
            table[frames, cond], wall[frames, cond] = med[0], med[1]
            say(f"{frames:>6} {prompt_len:>10} {cond:>9} {med[0]:>10.3f} {med[1]:>8.3f} {med[2]:>9.3f} {med[3]:>8.3f}")
    say("speed-up of shared prefill (CPU s/step of the other condition / CPU s/step of shared; wall in brackets):")
    say(f"{'frames':>6} {'vs none':>16} {'vs rollout-only':>16}")
    for frames in args.frames:
        s, w = table[frames, "shared"], wall[frames, "shared"]
        say(f"{frames:>6} {table[frames, 'none'] / s:>7.2f}x [{wall[frames, 'none'] / w:.2f}x] "
            f"{table[frames, 'rollout'] / s:>7.2f}x [{wall[frames, 'rollout'] / w:.2f}x]")
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
