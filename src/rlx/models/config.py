"""Model configs: load any Hugging Face causal LM by name/path, or build a tiny one from a config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlx.config import Section

__all__ = ["TinyModelConfig", "ModelConfig"]


class TinyModelConfig(Section):
    """A small Llama- or Qwen2-style decoder built from scratch (random init) with the char tokenizer."""

    arch: Literal["llama", "qwen2"] = Field("llama", description="architecture family")
    hidden_size: int = Field(128, ge=8, le=8192, description="model width")
    num_layers: int = Field(4, ge=1, le=128, description="decoder layers")
    num_heads: int = Field(4, ge=1, le=128, description="attention heads")
    num_kv_heads: int = Field(4, ge=1, le=128, description="key/value heads (GQA when < num_heads)")
    intermediate_size: int = Field(256, ge=8, description="MLP width")
    max_position: int = Field(256, ge=16, description="longest sequence (prompt + completion)")
    tie_embeddings: bool = Field(True, description="share input and output embeddings")

    @model_validator(mode="after")
    def _heads_divide(self) -> "TinyModelConfig":
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} must be divisible by num_kv_heads {self.num_kv_heads}")
        if (self.hidden_size // self.num_heads) % 2:  # rotary embeddings rotate pairs of dimensions
            raise ValueError(f"hidden_size / num_heads = {self.hidden_size // self.num_heads} must be even "
                             "(rotary position embeddings rotate pairs of dimensions)")
        return self


class ModelConfig(Section):
    """Where the policy comes from: exactly one of `path` (HF hub id or local dir) or `tiny`."""

    path: str | None = Field(None, description="HF hub id (e.g. Qwen/Qwen2.5-0.5B-Instruct) or a local directory")
    tiny: TinyModelConfig | None = Field(None, description="build a tiny model from scratch instead of loading")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="parameter dtype")
    device: str = Field("auto", description="'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...")
    threads: int = Field(0, ge=0, le=256, description="torch CPU threads; 0 = 1 (best for small models)")
    trust_remote_code: bool = Field(False, description="passed to from_pretrained for custom architectures")
    lora: "LoraConfig | None" = Field(None, description="train LoRA adapters through peft instead of all weights")

    @model_validator(mode="after")
    def _one_source(self) -> "ModelConfig":
        if (self.path is None) == (self.tiny is None):
            raise ValueError("set exactly one of model.path or model.tiny")
        return self


class LoraConfig(Section):
    """peft LoRA settings."""

    r: int = Field(8, ge=1, le=1024, description="adapter rank")
    alpha: float = Field(16.0, gt=0, description="scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter input")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], description="module names to adapt"
    )


ModelConfig.model_rebuild()
