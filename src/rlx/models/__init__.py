"""Policies and tokenizers: tiny models from configs, any HF causal LM by name or path."""

from rlx.models.config import LoraConfig, ModelConfig, TinyModelConfig
from rlx.models.load import build_tiny_model, count_parameters, load_policy, load_pretrained, save_model
from rlx.models.tokenizer import char_tokenizer

__all__ = [
    "LoraConfig", "ModelConfig", "TinyModelConfig", "build_tiny_model", "count_parameters",
    "load_policy", "load_pretrained", "save_model", "char_tokenizer",
]
