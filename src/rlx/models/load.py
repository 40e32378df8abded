"""Build or load a policy and its tokenizer; save in Hugging Face format (safetensors).

One code path for everything: a tiny model from a config, a shipped checkpoint directory, and a
hub id all end up as a `PreTrainedModel` + tokenizer; `save_model` writes a directory that
`AutoModelForCausalLM.from_pretrained(dir)` loads.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.utils import logging as transformers_logging

from rlx.config import ConfigError
from rlx.models.config import ModelConfig, TinyModelConfig
from rlx.models.tokenizer import char_tokenizer
from rlx.rundir import atomic_dir

__all__ = ["build_tiny_model", "load_policy", "load_pretrained", "save_model", "count_parameters"]

transformers_logging.disable_progress_bar()

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_tiny_model(cfg: TinyModelConfig, tokenizer, seed: int = 0) -> PreTrainedModel:
    """A randomly initialised Llama/Qwen2 decoder sized by `cfg`, vocab from `tokenizer`."""
    from transformers import LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position,
        tie_word_embeddings=cfg.tie_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    hf_cfg = LlamaConfig(**common) if cfg.arch == "llama" else Qwen2Config(**common)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(hf_cfg)
    return model


_REPO = Path(__file__).resolve().parents[3]  # a source checkout: recipes name assets/... relative to it


def resolve_model_path(path: str | Path) -> str:
    """`~` expanded; a relative path that does not exist from the current directory but names a directory
    of this checkout (the recipes' `assets/arith-base`) is taken from there, so a recipe run from another
    directory loads the shipped checkpoint instead of asking the Hugging Face hub for a repo of that name."""
    path = str(Path(path).expanduser()) if str(path).startswith("~") else str(path)
    if not Path(path).is_absolute() and not Path(path).exists() and (_REPO / path / "config.json").is_file():
        return str(_REPO / path)
    return path


def load_pretrained(path: str | Path, dtype: str = "float32", trust_remote_code: bool = False):
    """Load (model, tokenizer) from a hub id or local directory, failing with one clear line."""
    path = resolve_model_path(path)
    local = Path(path)
    looks_local = path.startswith((".", "/", "~")) or local.exists()
    if looks_local and not (local / "config.json").is_file():
        raise ConfigError(f"config error: model.path = {path!r}: no Hugging Face checkpoint (config.json) there")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=_DTYPES[dtype], trust_remote_code=trust_remote_code
        )
    except OSError as e:
        raise ConfigError(f"config error: model.path = {path!r}: cannot load ({str(e).splitlines()[0]})") from None
    except Exception as e:  # corrupt safetensors, bad config.json, ...
        raise ConfigError(f"config error: model.path = {path!r}: checkpoint is unreadable ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


def load_policy(cfg: ModelConfig, seed: int = 0):
    """(model, tokenizer) on CPU in cfg.dtype; the caller moves it to its device."""
    if cfg.tiny is not None:
        tokenizer = char_tokenizer()
        model = build_tiny_model(cfg.tiny, tokenizer, seed=seed).to(_DTYPES[cfg.dtype])
    else:
        model, tokenizer = load_pretrained(cfg.path, cfg.dtype, cfg.trust_remote_code)
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save_model(model: PreTrainedModel, tokenizer, out: str | Path) -> Path:
    """Atomically write a Hugging Face directory (config.json, model.safetensors, tokenizer files)."""

    def write(d: Path) -> None:
        model.save_pretrained(d, safe_serialization=True)
        tokenizer.save_pretrained(d)

    return atomic_dir(out, write)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
