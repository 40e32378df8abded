"""Quantization for RL-trained models: integer/FP8 fake quant, RTN, GPTQ, RSQ, QuEST, LQ-LoRA,
QLLM, LR-QAT, QuantLRM, and the FP8 precision flow for RL rollouts/training (Jet-RL).

See docs/quant.md. Entry points: `quantize(model, QuantConfig(...))`, `save_quantized`,
`verify_checkpoint`, `fp8_precision(model, mode)`, and `rlx quantize` on the command line.
"""

from rlx.quant.api import QuantResult, load_codes, quantize, save_quantized, verify_checkpoint
from rlx.quant.config import QuantConfig
from rlx.quant.core import IntSpec, QTensor, fake_int, int_dequantize, int_quantize
from rlx.quant.fp8 import FP8Spec, fake_fp8, fp8_dequantize, fp8_quantize
from rlx.quant.fp8_flow import FP8Flow, fp8_precision

__all__ = ["QuantConfig", "QuantResult", "quantize", "save_quantized", "load_codes", "verify_checkpoint",
           "IntSpec", "QTensor", "fake_int", "int_quantize", "int_dequantize", "FP8Spec", "fake_fp8",
           "fp8_quantize", "fp8_dequantize", "FP8Flow", "fp8_precision"]
