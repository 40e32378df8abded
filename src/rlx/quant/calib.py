"""Calibration data: token ids [N, T] + attention mask from an rlx task or from given ids/texts.

Each calibration sequence is a task prompt followed by its reference completion (what the policy
sees and produces), tokenized, truncated to `seq_len` and right-padded. Nothing is downloaded.
"""

from __future__ import annotations

import torch

from rlx.config import ConfigError
from rlx.quant.config import CalibConfig

__all__ = ["calibration_from_texts", "calibration_from_task", "task_texts"]


def calibration_from_texts(texts: list[str], tokenizer, seq_len: int, prompts: list[str] | None = None
                           ) -> tuple[torch.Tensor, ...]:
    """Tokenize texts -> (ids [N, T], mask [N, T]); T = min(seq_len, longest).

    Like rlx SFT data and rollouts: the prompt encoded as the engines encode it (`encode_prompt`: the
    tokenizer's BOS, once), the completion's tokens, then EOS (right padding). With `prompts` (each a prefix
    of its text) a third tensor loss_mask [N, T] marks the completion tokens + EOS; without, a whole text is
    encoded like a prompt, plus EOS.
    """
    from rlx.models.tokenizer import encode_prompt

    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if prompts is None:
        full, starts = [encode_prompt(tokenizer, t) + eos for t in texts], [0] * len(texts)
    else:
        if len(prompts) != len(texts):
            raise ValueError(f"calibration_from_texts: {len(prompts)} prompts for {len(texts)} texts")
        if bad := [i for i, (t, q) in enumerate(zip(texts, prompts)) if not t.startswith(q)]:
            raise ValueError(f"calibration_from_texts: prompt {bad[0]} is not a prefix of its text")
        heads = [encode_prompt(tokenizer, q) for q in prompts]
        full = [h + tokenizer(t[len(q):], add_special_tokens=False)["input_ids"] + eos
                for h, t, q in zip(heads, texts, prompts)]
        starts = [len(h) for h in heads]
    rows = [r[:seq_len] for r in full]
    T = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    if prompts is None:
        return ids, mask
    loss_mask = mask.clone()
    for i, s in enumerate(starts):
        loss_mask[i, :s] = 0
    return ids, mask, loss_mask


def _make_task(name: str):
    try:
        from rlx.tasks import make_task
        from rlx.tasks.config import TaskConfig  # noqa: F401  (discriminated union on name)
        from pydantic import TypeAdapter
    except ImportError as e:  # the tasks module is optional for quantizing from given ids
        raise ConfigError(f"config error: calib.task = {name!r}: rlx.tasks is not available ({e})") from None
    try:
        cfg = TypeAdapter(TaskConfig).validate_python({"name": name})
    except Exception:
        raise ConfigError(f"config error: calib.task = {name!r}: unknown task") from None
    return make_task(cfg)


def task_texts(name: str, n: int, seed: int, tokenizer=None, heldout: bool = False) -> tuple[list[str], list[str]]:
    """(prompt + reference completion texts, prompts) of `n` problems (training split, or held out)."""
    task = _make_task(name)
    problems = task.heldout(n) if heldout else task.train_problems(n, seed=seed)
    prompts = [task.prompt(p, tokenizer) for p in problems]
    return [q + task.reference_completion(p) for q, p in zip(prompts, problems)], prompts


def calibration_from_task(cfg: CalibConfig, tokenizer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, mask, loss_mask): the loss mask marks completion tokens (used by QAT methods)."""
    texts, prompts = task_texts(cfg.task, cfg.n, cfg.seed, tokenizer)
    return calibration_from_texts(texts, tokenizer, cfg.seq_len, prompts)


def heldout_ids(task, n: int, tokenizer, seq_len: int) -> tuple[list, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(the first `n` held-out problems of `task`, their prompt + reference ids / mask / completion mask)."""
    problems = task.heldout(n)
    prompts = [task.prompt(p, tokenizer) for p in problems]
    texts = [q + task.reference_completion(p) for q, p in zip(prompts, problems)]
    return problems, calibration_from_texts(texts, tokenizer, seq_len, prompts)
