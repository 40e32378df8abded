"""LoRA adapters through peft, checked against the model before anything trains."""

from __future__ import annotations

from torch import nn

from rlx.config import ConfigError
from rlx.models.config import LoraConfig

__all__ = ["wrap_lora"]


def wrap_lora(model: nn.Module, lc: LoraConfig):
    """`model` with trainable LoRA adapters on `lc.target_modules` (every other weight frozen); export the trained
    model with `merge_and_unload()`.

    Refused, naming `model.lora.target_modules`: a name that matches no module (peft's own error came mid-run),
    and the output or input embedding of a model whose two are tied: merging the head's delta writes it into the
    shared table, so the saved model differed from the trained one (max logit difference 6.05 on a tiny model).
    """
    from peft import LoraConfig as PeftLora, get_peft_model

    names = [n for n, _ in model.named_modules()]
    missing = [t for t in lc.target_modules if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ConfigError(f"config error: model.lora.target_modules: {missing} match no module of the model "
                          f"(its Linear layers are named {linear})")
    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    if out is not None and inp is not None and out.weight is inp.weight:
        tied = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if m is out or m is inp}
        hit = sorted(tied & set(lc.target_modules))
        if hit:
            raise ConfigError(f"config error: model.lora.target_modules: {hit} share the tied embedding table; "
                              "merging their adapters would change the other one too (adapt other layers, or use "
                              "a model with untied embeddings)")
    return get_peft_model(model, PeftLora(r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout,
                                          target_modules=list(lc.target_modules), task_type="CAUSAL_LM"))
