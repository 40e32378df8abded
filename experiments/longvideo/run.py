"""LongVILA-R1's two-stage pipeline (paper longvideo) at toy scale: CoT-SFT, then GRPO, vs CoT-SFT alone,
on synthetic long-"video" QA (rlx.tasks.video) at several frame counts.

For each frame count F (default 16, 32, 64 frames, 1 token per frame, 4 events):

    sft    `rlx sft recipes/video_sft.yaml` from a random tiny Llama (0.8M parameters), --sft-steps steps,
           trained once (seed 0): the CoT-SFT base, and the "SFT alone" condition
    grpo   `rlx sweep recipes/video_grpo.yaml` from that base, --rl-steps GRPO steps, lr --lr, 3 seeds

Every model is scored greedily on the same 300 held-out problems of its F (held-out videos never
appear in training), overall and per question kind (count / after / order). The RL gain is
grpo - sft per seed, with a 95% bootstrap interval over the seeds (the SFT base is one model, so
its own accuracy has no interval). Runs go to runs/longvideo (not committed).

    python experiments/longvideo/run.py
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, rlx  # noqa: E402

HERE = Path(__file__).resolve().parent
KINDS = ("count", "after", "order")


def max_tokens(frames: int) -> int:
    """Completion budget: a count's chain of thought has one mark per occurrence (~F/4 for 4 events)."""
    return min(48, frames // 2 + 16)


def per_kind(model_dir: Path, frames: int, n: int) -> dict[str, float]:
    """Greedy held-out accuracy of one model, overall and per question kind (cached next to the model)."""
    path = model_dir.parent / "per_kind.json"
    if path.exists():
        return json.loads(path.read_text())
    import torch

    from rlx.models import ModelConfig, load_policy
    from rlx.rewards.safe import safe_score
    from rlx.rollout import HFEngine, SamplingParams
    from rlx.tasks import VideoConfig, make_task

    torch.set_num_threads(1)
    model, tok = load_policy(ModelConfig(path=str(model_dir)))
    model.eval()
    task = make_task(VideoConfig(frames=frames))
    held = task.heldout(n)
    gen = HFEngine(model, tok).generate([task.prompt(p) for p in held],
                                        SamplingParams(temperature=0, max_new_tokens=max_tokens(frames)), seed=0)
    hits: dict[str, list[bool]] = defaultdict(list)
    for text, p in zip(gen.texts, held):
        ok = safe_score(task.score, text, p)[0].correct
        hits[p.meta["kind"]].append(ok)
        hits["all"].append(ok)
    out = {k: sum(v) / len(v) for k, v in hits.items()}
    path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sft-steps", type=int, default=300)
    ap.add_argument("--rl-steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--n", type=int, default=300, help="held-out problems per frame count")
    ap.add_argument("--out", default="runs/longvideo")
    args = ap.parse_args()
    out = ROOT / args.out
    rows, data = [], {}
    for frames in args.frames:
        m = max_tokens(frames)
        sft = out / f"sft_f{frames}"
        if not (sft / "summary.json").exists():
            rlx("sft", "recipes/video_sft.yaml", f"task.frames={frames}", f"train.steps={args.sft_steps}",
                "train.checkpoint_every=0", "eval.every=0", f"eval.n={args.n}", f"eval.max_new_tokens={m}",
                "--out", str(sft))
        grpo = out / f"grpo_f{frames}"
        rlx("sweep", "recipes/video_grpo.yaml", f"model.path={sft / 'model'}", f"task.frames={frames}",
            f"train.steps={args.rl_steps}", f"train.optim.lr={args.lr}", "train.checkpoint_every=0",
            f"eval.n={args.n}", f"rollout.max_new_tokens={m}", f"eval.max_new_tokens={m}",
            "--seeds", str(args.seeds), "--out", str(grpo), "--parallel", "1", "--skip-done")
        base = per_kind(sft / "model", frames, args.n)
        seeds = {d.name: per_kind(d / "model", frames, args.n) for d in sorted(grpo.glob("seed_*"))}
        data[frames] = {"sft": base, "grpo": seeds,
                        "summaries": {d.name: json.loads((d / "summary.json").read_text())
                                      for d in sorted(grpo.glob("seed_*"))}}
        for kind in ("all", *KINDS):
            after = [s[kind] for s in seeds.values()]
            rows.append(f"| {frames} | {kind} | {base[kind]:.3f} | {mean_ci(after, 3)} | "
                        f"{mean_ci([a - base[kind] for a in after], 3)} |")
    (HERE / "summaries.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    head = ["| frames | questions | CoT-SFT alone | CoT-SFT + GRPO | RL gain |", "|---|---|---|---|---|"]
    (HERE / "results.md").write_text(
        f"Produced by `python experiments/longvideo/run.py` ({args.sft_steps} CoT-SFT steps once per frame count, "
        f"then {args.rl_steps} GRPO steps at lr {args.lr} with {args.seeds} seeds; greedy accuracy on {args.n} "
        "held-out problems per frame count; mean [95% bootstrap interval] over seeds).\n\n"
        + "\n".join(head + rows) + "\n")
    print((HERE / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
