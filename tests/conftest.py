"""Shared fixtures: a tiny random model on disk, and the shipped base checkpoint."""

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "assets" / "arith-base"


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from rlx.models import ModelConfig, TinyModelConfig, load_policy, save_model

    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=4,
                                           intermediate_size=64, max_position=512))
    model, tok = load_policy(cfg, seed=0)
    return save_model(model, tok, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def base_model_dir() -> Path:
    assert (BASE / "model.safetensors").is_file(), "the shipped base checkpoint assets/arith-base is missing"
    return BASE


@pytest.fixture
def kill_on_call(monkeypatch):
    """kill_on_call(cls, name, n): make `cls.name` raise KeyboardInterrupt (a kill mid-run) on its n-th
    call; returns a function that restores the real method (for the resumed run)."""

    def arm(cls, name: str, n: int):
        real = getattr(cls, name)
        calls = {"n": 0}

        def wrapped(self, *a, **k):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return real(self, *a, **k)

        monkeypatch.setattr(cls, name, wrapped)
        return lambda: monkeypatch.setattr(cls, name, real)

    return arm
