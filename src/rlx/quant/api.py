"""`quantize(model, cfg)`: apply one method to the Linear layers of any HF causal LM; save/reload.

    from rlx.quant import QuantConfig, quantize, save_quantized
    result = quantize(model, QuantConfig(method="gptq", bits=4), tokenizer=tok)   # in place
    save_quantized(model, tok, result, "out/gptq4")      # HF dir + quant_codes.safetensors
    model2 = AutoModelForCausalLM.from_pretrained("out/gptq4")   # same logits as `model`

The method is picked once from `cfg.method` (a Literal) through `METHOD_FNS`. lm_head and
embeddings are left in full precision by default (`cfg.skip`; embeddings are not Linear layers).
A checkpoint stores the *dequantized* weights in the normal HF files (so `rlx eval DIR` and
`from_pretrained` work unchanged) and, alongside, the integer codes, scales and any transform or
low-rank factors (`quant_codes.safetensors`) plus `quant_config.json` (the config and per-layer
metadata), so `verify_checkpoint(DIR)` can rebuild every weight from its codes.
Activation quantization (QuEST act_bits, QLLM) lives only in the in-memory fake-quant modules;
the HF files carry the weights, and quant_config.json records the activation setting.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rlx.config import ConfigError
from rlx.quant.config import QuantConfig
from rlx.quant.layers import LayerQuant, find_linears, swap_module

__all__ = ["QuantResult", "quantize", "save_quantized", "load_codes", "verify_checkpoint", "METHOD_FNS"]

CODES_FILE = "quant_codes.safetensors"
CONFIG_FILE = "quant_config.json"


@dataclass
class QuantResult:
    layers: dict[str, LayerQuant]
    config: QuantConfig
    metrics: dict[str, float] = field(default_factory=dict)  # quant/seconds, quant/layers, quant/avg_bits


# method -> (module, function); imported once when a run picks its method
METHOD_FNS: dict[str, tuple[str, str]] = {
    "rtn": ("rlx.quant.rtn", "quantize_rtn"),
    "gptq": ("rlx.quant.gptq", "quantize_gptq"),
    "rsq": ("rlx.quant.rsq", "quantize_rsq"),
    "quest": ("rlx.quant.quest", "quantize_quest"),
    "lqlora": ("rlx.quant.lqlora", "quantize_lqlora"),
    "qllm": ("rlx.quant.qllm", "quantize_qllm"),
    "lrqat": ("rlx.quant.lrqat", "quantize_lrqat"),
    "quantlrm": ("rlx.quant.quantlrm", "quantize_quantlrm"),
}


def method_fn(method: str) -> Callable:
    module, name = METHOD_FNS[method]
    return getattr(importlib.import_module(module), name)


def quantize(model: nn.Module, cfg: QuantConfig, tokenizer=None,
             calib: tuple[torch.Tensor, ...] | torch.Tensor | None = None) -> QuantResult:
    """Quantize `model` in place. calib: ids [N, T], (ids, mask) or (ids, mask, loss_mask);
    None = draw from cfg.calib.task (prompt + reference completion; loss mask on the completion).

    Quantization runs on the CPU: a model on another device is moved to the CPU, quantized and moved
    back (the methods build their statistics, codes and adapters on the CPU)."""
    device = next(model.parameters()).device
    if device.type != "cpu":
        model.to("cpu")
        try:
            return quantize(model, cfg, tokenizer, calib.cpu() if isinstance(calib, torch.Tensor) else
                            tuple(c.cpu() for c in calib) if calib is not None else None)
        finally:
            model.to(device)
    linears = find_linears(model, cfg.skip)
    if not linears:
        raise ConfigError(f"config error: skip = {cfg.skip}: no Linear layers left to quantize")
    ragged = [(n, m.in_features) for n, m in linears.items()  # QuEST has one scale per row: no groups
              if cfg.method != "quest" and 0 < cfg.group_size < m.in_features and m.in_features % cfg.group_size]
    if ragged:  # checked before any layer changes: a half-quantized model is worse than none
        raise ConfigError(f"config error: group_size = {cfg.group_size} must divide the input width of every "
                          f"quantized layer; {ragged[0][0]} has {ragged[0][1]} (use a divisor, 0 for one scale "
                          f"per output channel, or skip the layer)")
    broken = [(n, int((~torch.isfinite(m.weight)).sum())) for n, m in linears.items()
              if not torch.isfinite(m.weight).all()]
    if broken:  # GPTQ would spread a NaN over its row, QuEST would zero the row: refuse before any change
        raise ConfigError(f"config error: the model has non-finite weights ({broken[0][1]} in {broken[0][0]}"
                          f"{f' and {len(broken) - 1} more layers' if len(broken) > 1 else ''}); "
                          "quantize a checkpoint whose weights are finite")
    _untie_quantized_head(model, linears)
    if calib is None:
        if tokenizer is None:
            raise ConfigError("config error: calib: give calibration ids or a tokenizer to draw them from calib.task")
        from rlx.quant.calib import calibration_from_task
        calib = calibration_from_task(cfg.calib, tokenizer)
    elif isinstance(calib, torch.Tensor):
        calib = (calib, torch.ones_like(calib))
    fn = method_fn(cfg.method)
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        layers = fn(model, linears, cfg, calib)
    seconds = time.perf_counter() - t0
    model.train(was_training)
    n_params = sum(lq.qt.codes.numel() for lq in layers.values())
    avg_bits = sum(lq.bits * lq.qt.codes.numel() for lq in layers.values()) / max(n_params, 1)
    metrics = {"quant/seconds": seconds, "quant/layers": float(len(layers)), "quant/avg_bits": avg_bits,
               "quant/bytes": float(quantized_bytes(layers))}
    return QuantResult(layers, cfg, metrics)


def _untie_quantized_head(model: nn.Module, linears: dict[str, nn.Linear]) -> None:
    """A quantized output layer whose weight is the input embedding table gets its own copy first: methods
    that quantize in place would otherwise change the embeddings too, and the saved checkpoint (which
    stores a tied weight once) would not reload the quantized head."""
    get_out, get_in = getattr(model, "get_output_embeddings", None), getattr(model, "get_input_embeddings", None)
    if get_out is None or get_in is None:
        return
    head, emb = get_out(), get_in()
    if head is None or emb is None or head.weight is not emb.weight or not any(m is head for m in linears.values()):
        return
    head.weight = nn.Parameter(head.weight.detach().clone(), requires_grad=head.weight.requires_grad)
    if getattr(model, "config", None) is not None:
        model.config.tie_word_embeddings = False
        text = getattr(model.config, "get_text_config", lambda: None)()
        if text is not None and text is not model.config:
            text.tie_word_embeddings = False


def quantized_bytes(layers: dict[str, LayerQuant]) -> int:
    """Deployed size of the quantized layers: b-bit codes + fp16 scale/zero per group + fp16 extras."""
    total = 0.0
    for lq in layers.values():
        total += lq.qt.codes.numel() * lq.bits / 8 + 2 * 2 * lq.qt.scale.numel()
        if lq.col_scale is not None:
            total += 2 * lq.col_scale.numel()
        if lq.lr_a is not None:
            total += 2 * (lq.lr_a.numel() + lq.lr_b.numel())
        if lq.in_proj is not None:  # QLLM channel map: fp16 nonzeros (folded into the previous op in the paper)
            total += 2 * int((lq.in_proj != 0).sum())
    return int(total)


def save_quantized(model, tokenizer, result: QuantResult, out: str | Path) -> Path:
    """Write an HF directory (dequantized weights) + quant_codes.safetensors + quant_config.json."""
    from rlx.models import save_model

    path = save_model(_plain(model), tokenizer, out)
    tensors: dict[str, torch.Tensor] = {}
    for name, lq in result.layers.items():
        tensors.update(lq.tensors(name))
    save_file(tensors, str(path / CODES_FILE))
    meta = {"config": result.config.model_dump(mode="json"), "metrics": result.metrics,
            "layers": {n: lq.meta() for n, lq in result.layers.items()},
            "format": "x_hat = scale * (codes - zero); W = hadamard?(x_hat) / col_scale + lr_b @ lr_a"}
    (path / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
    return path


def _plain(model):
    """A copy whose fake-quant Linear subclasses are plain nn.Linear (their `weight` is the effective one)."""
    import copy

    plain = copy.deepcopy(model)
    for name, m in list(plain.named_modules()):
        if isinstance(m, nn.Linear) and type(m) is not nn.Linear:
            lin = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=m.weight.dtype)
            with torch.no_grad():
                lin.weight.copy_(m.weight)
                if m.bias is not None:
                    lin.bias.copy_(m.bias)
            swap_module(plain, name, lin)
    return plain


def load_codes(path: str | Path) -> tuple[dict[str, LayerQuant], dict]:
    """Read the packed codes and quant_config.json of a quantized checkpoint."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise ConfigError(f"config error: {path}: not a quantized checkpoint (no {CONFIG_FILE})")
    meta = json.loads((path / CONFIG_FILE).read_text())
    t = load_file(str(path / CODES_FILE))
    return {n: LayerQuant.from_tensors(n, t, m) for n, m in meta["layers"].items()}, meta


def verify_checkpoint(path: str | Path) -> float:
    """Max |W_file - W_rebuilt_from_codes| over all quantized layers (0 up to float rounding)."""
    from safetensors import safe_open

    layers, _ = load_codes(path)
    worst = 0.0
    files = sorted(Path(path).glob("model*.safetensors"))
    weights = {}
    for f in files:
        with safe_open(str(f), "pt") as h:
            for k in h.keys():
                weights[k] = h.get_tensor(k)
    for name, lq in layers.items():
        w = weights[f"{name}.weight"].float()
        worst = max(worst, float((w - lq.weight()).abs().max()))
    return worst
