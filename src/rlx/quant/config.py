"""Typed config of `rlx.quant.quantize` and `rlx quantize` (one Section per method's knobs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from rlx.config import Section

__all__ = ["QuantConfig", "CalibConfig", "GPTQConfig", "RSQConfig", "QuestConfig", "LQLoRAConfig",
           "QLLMConfig", "LRQATConfig", "QuantLRMConfig", "Method", "METHODS"]

Method = Literal["rtn", "gptq", "rsq", "quest", "lqlora", "qllm", "lrqat", "quantlrm"]
METHODS: tuple[str, ...] = ("rtn", "gptq", "rsq", "quest", "lqlora", "qllm", "lrqat", "quantlrm")


class CalibConfig(Section):
    """Calibration data: prompts + reference completions of an rlx task (or token ids given in code)."""

    task: str = Field("arithmetic", description="rlx task name whose training problems calibrate")
    n: int = Field(128, ge=1, le=100000, description="calibration sequences")
    seq_len: int = Field(64, ge=4, le=8192, description="tokens per calibration sequence (truncate/pad)")
    batch_size: int = Field(32, ge=1, le=4096, description="sequences per calibration forward pass")
    seed: int = Field(0, ge=0, description="seed for drawing calibration problems")


class GPTQConfig(Section):
    """GPTQ (Frantar et al. 2023) settings; also used by RSQ and QuantLRM."""

    damp: float = Field(0.01, gt=0, le=10, description="damping: lambda = damp * mean(diag H) added to H")
    act_order: bool = Field(False, description="quantize columns in order of decreasing diag(H)")
    block_size: int = Field(128, ge=1, le=8192, description="columns per lazy batch update")
    max_retries: int = Field(6, ge=0, le=20, description="on a non-PD Hessian multiply damping by 10 and retry")


class RSQConfig(Section):
    """RSQ: rotate, scale tokens by attention concentration, then GPTQ (paper rsq)."""

    rotate: bool = Field(True, description="quantize weights in the Hadamard-rotated input basis")
    min_weight: float = Field(0.1, gt=0, le=1, description="token weights are min_weight..1 (rescaled importance)")


class QuestConfig(Section):
    """QuEST: Hadamard + MSE-optimal Gaussian clipping + trust-gradient QAT (paper quest)."""

    act_bits: int | None = Field(None, ge=1, le=8, description="also quantize activations (None = weights only)")
    trust: float = Field(1.0, gt=0, le=4, description="trust radius in units of half a quantization step")
    qat_steps: int = Field(0, ge=0, le=100000, description="QAT steps on calibration data (0 = post-training only)")
    lr: float = Field(1e-4, gt=0, le=1, description="QAT Adam learning rate")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="learning rate over the QAT steps: constant, or cosine decay from lr towards 0")
    loss: Literal["lm", "distill"] = Field(
        "lm", description="QAT loss: lm = next-token CE on the calibration tokens; distill = KL from the "
        "frozen full-precision model's next-token distribution at the same positions")


class LQLoRAConfig(Section):
    """LQ-LoRA: W ~= Q + L1 L2 by alternating SVD and quantization; ILP bit allocation (paper lqlora)."""

    rank: int = Field(8, ge=1, le=4096, description="rank of the high-precision low-rank component")
    iters: int = Field(10, ge=1, le=1000, description="alternating decomposition iterations")
    budget_bits: float | None = Field(None, gt=0, le=16, description="average bits/param budget for the ILP (None = fixed bits)")
    candidate_bits: list[int] = Field(default_factory=lambda: [2, 3, 4, 8], min_length=1,
                                      description="bit widths the ILP may pick (each 1-8)")

    @field_validator("candidate_bits")
    @classmethod
    def _bits_in_range(cls, v: list[int]) -> list[int]:
        bad = [b for b in v if not 1 <= b <= 8]
        if bad:
            raise ValueError(f"bit widths must be in 1..8, got {bad}")
        return sorted(set(v))


class QLLMConfig(Section):
    """QLLM: channel disassembly/assembly for activation outliers, then low-rank tuning (paper qllm)."""

    act_bits: int = Field(8, ge=2, le=8, description="activation bits (per-token asymmetric)")
    outlier_ratio: float = Field(4.0, gt=1, description="a channel is an outlier if its max |x| > ratio * median channel max")
    max_split: int = Field(8, ge=1, le=64, description="most sub-channels one outlier channel is split into")
    rank: int = Field(4, ge=0, le=1024, description="low-rank tuning rank (0 = no tuning)")
    steps: int = Field(50, ge=0, le=100000, description="low-rank tuning steps per layer")
    lr: float = Field(1e-3, gt=0, le=1, description="low-rank tuning learning rate")


class LRQATConfig(Section):
    """LR-QAT: trainable low-rank adapters on frozen low-bit weights, STE through rounding (paper lrqat)."""

    rank: int = Field(8, ge=1, le=4096, description="adapter rank")
    steps: int = Field(100, ge=0, le=100000, description="training steps on calibration data")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="learning rate over the training steps: constant, or cosine decay from lr towards 0")
    loss: Literal["lm", "distill"] = Field(
        "lm", description="training loss: lm = next-token CE on the calibration tokens; distill = KL from "
        "the frozen full-precision model's next-token distribution at the same positions")


class QuantLRMConfig(Section):
    """QuantLRM: channel importance from fine-tuning deltas, protect both ends (paper quantlrm)."""

    base: str | None = Field(None, description="checkpoint before RL/SFT fine-tuning (None = pseudo fine-tuning deltas)")
    alpha_grid: int = Field(11, ge=2, le=101, description="grid points for the scaling exponent search in [0, 1]")


class QuantConfig(Section):
    """What `quantize(model, cfg)` does to the Linear layers of a causal LM."""

    method: Method = Field("gptq", description="quantization method")
    bits: int = Field(4, ge=1, le=8, description="weight bits")
    group_size: int = Field(128, ge=0, le=65536, description="columns per scale group (0 = one scale per output channel)")
    symmetric: bool = Field(False, description="symmetric grid (zero = (2^b-1)/2) instead of asymmetric")
    skip: list[str] = Field(default_factory=lambda: ["lm_head"], description="skip Linear layers whose name contains any of these")
    seed: int = Field(0, ge=0, description="seed for any randomness (calibration, QAT)")
    calib: CalibConfig = Field(default_factory=CalibConfig, description="calibration data")
    gptq: GPTQConfig = Field(default_factory=GPTQConfig, description="GPTQ settings")
    rsq: RSQConfig = Field(default_factory=RSQConfig, description="RSQ settings")
    quest: QuestConfig = Field(default_factory=QuestConfig, description="QuEST settings")
    lqlora: LQLoRAConfig = Field(default_factory=LQLoRAConfig, description="LQ-LoRA settings")
    qllm: QLLMConfig = Field(default_factory=QLLMConfig, description="QLLM settings")
    lrqat: LRQATConfig = Field(default_factory=LRQATConfig, description="LR-QAT settings")
    quantlrm: QuantLRMConfig = Field(default_factory=QuantLRMConfig, description="QuantLRM settings")
