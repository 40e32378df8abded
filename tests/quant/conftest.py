"""Shared fixture: a one-layer tiny Llama with the char tokenizer (eval mode)."""

import pytest

from rlx.models import TinyModelConfig, build_tiny_model, char_tokenizer


@pytest.fixture(scope="module")
def tiny():
    tok = char_tokenizer()
    model = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2,
                                             intermediate_size=64), tok, seed=0)
    return model.eval(), tok
