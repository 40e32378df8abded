"""The `vllm` rollout engine: the same protocol on vLLM, colocated in the trainer's process (GPU).

    engine = VLLMEngine(model, tokenizer, gpu_memory_utilization=0.3)
    gen = engine.generate(prompts, SamplingParams(n=8, max_new_tokens=512), seed=step)
    ...optimizer.step()...
    engine.sync_weights(model)      # push the trainer's weights into vLLM before the next generate

How it maps onto vLLM (checked against the v1 engine API, vLLM >= 0.10.2):
- the engine core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0 unless the user set it),
  so `LLM.collective_rpc` calls a function on the worker directly, with the trainer's tensors by
  reference; that function hands `(name, tensor)` pairs to the vLLM model's `load_weights`, which
  maps Hugging Face parameter names (fused qkv, tied embeddings) itself. The prefix cache is reset
  after each sync, since cached prompt KV was computed with the old weights.
- prompts are tokenized by our tokenizer and passed as token ids, so both engines see identical ids.
- logprobs: `logprobs=0` returns the sampled token's logprob; the engine is built with
  `logprobs_mode="processed_logprobs"`, i.e. after temperature and top-k/top-p, the same
  semantics as the hf engine (see SamplingParams). Greedy requests are untempered.
- seeds: request i gets seed `step_seed(seed, i * n)` (vLLM gives its sample j seed + j), so all B x n samples
  get distinct seeds and a prompt's samples do not depend on the others.
- the initial weights are written once to a temporary Hugging Face directory that vLLM loads (so
  nothing is fetched from the hub and an in-memory model works); later updates go through
  `sync_weights`. A peft model must be merged before syncing (vLLM expects base parameter names).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch

from rlx.config import ConfigError
from rlx.models.tokenizer import encode_prompt
from rlx.rollout.hf import _eos_ids
from rlx.rollout.base import SamplingParams, step_seed
from rlx.types import Generation

__all__ = ["VLLMEngine", "MISSING_VLLM", "request_seeds"]

MISSING_VLLM = "vllm is not installed: pip install 'rlx[vllm]' (needs a CUDA GPU)"


def _load_weights_on_worker(worker: Any, weights: list[tuple[str, torch.Tensor]]) -> int:
    """Runs inside vLLM's worker (via collective_rpc): load HF-named tensors into the live model."""
    worker.model_runner.model.load_weights(weights=weights)
    return len(weights)


def request_seeds(seed: int, prompts: int, n: int) -> list[int]:
    """vLLM seeds sample j of a request with seed + j, so the requests' seeds are spaced n apart: every one
    of the prompts x n samples gets its own seed (consecutive seeds made prompt i+1's group a shifted
    copy of prompt i's). Kept below 2^31 - 1 - n so seed + j stays a valid 32-bit seed."""
    return [step_seed(seed, i * n) % (2**31 - 1 - n) for i in range(prompts)]


class VLLMEngine:
    """vLLM behind the RolloutEngine protocol. Extra kwargs go to `vllm.LLM` (e.g. max_model_len)."""

    def __init__(self, model: torch.nn.Module, tokenizer, gpu_memory_utilization: float = 0.3,
                 dtype: str = "auto", enforce_eager: bool = False, workdir: str | None = None,
                 eos_token_ids: list[int] | None = None, **llm_kwargs: Any):
        """`eos_token_ids`: tokens that end a completion (default, as in the hf engine: the tokenizer's EOS
        plus the model's generation_config EOS ids); passed to every request as `stop_token_ids`."""
        try:
            import vllm
        except ImportError:
            raise ConfigError(MISSING_VLLM) from None
        self.eos_token_ids = sorted(set(eos_token_ids if eos_token_ids is not None else _eos_ids(model, tokenizer)))
        if not self.eos_token_ids:
            raise ConfigError("config error: eos_token_ids: the tokenizer has no EOS token; pass eos_token_ids")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from rlx.models import save_model

        self._vllm = vllm
        self.tokenizer = tokenizer
        self._dir = tempfile.TemporaryDirectory(prefix="rlx-vllm-", dir=workdir)
        path = save_model(model, tokenizer, os.path.join(self._dir.name, "model"))
        if dtype == "auto":  # the trainer's dtype: vLLM's "auto" serves a float32 checkpoint in float16
            dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        self.llm = vllm.LLM(
            model=str(path), tokenizer=str(path), dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=enforce_eager, logprobs_mode="processed_logprobs", seed=0, **llm_kwargs,
        )
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else self.eos_token_ids[0])

    def sync_weights(self, model: torch.nn.Module) -> None:
        weights = [(name, t.detach()) for name, t in model.state_dict().items()]
        self.llm.collective_rpc(_load_weights_on_worker, args=(weights,))
        self.llm.reset_prefix_cache()

    def generate(self, prompts: list[str], params: SamplingParams, seed: int) -> Generation:
        if not prompts:
            raise ConfigError("config error: prompts: need at least one prompt")
        ids = [encode_prompt(self.tokenizer, p) for p in prompts]
        for i, row in enumerate(ids):
            if not row:
                raise ConfigError(f"config error: prompts[{i}] is empty after tokenization")
        requests = [
            self._vllm.SamplingParams(
                n=params.n, temperature=params.temperature, top_p=params.top_p,
                top_k=params.top_k if params.top_k > 0 else -1, max_tokens=params.max_new_tokens,
                stop=list(params.stop) or None, stop_token_ids=list(self.eos_token_ids), logprobs=0, seed=request_seeds(seed, len(prompts), params.n)[i],
                skip_special_tokens=True, include_stop_str_in_output=False,
            )
            for i in range(len(prompts))
        ]
        outs = self.llm.generate([{"prompt_token_ids": r} for r in ids], requests, use_tqdm=False)
        rows_prompt, rows_comp, rows_lp, reasons, texts = [], [], [], [], []
        for prompt_ids, out in zip(ids, outs):
            for c in out.outputs:  # n completions, in order
                toks = list(c.token_ids)
                rows_prompt.append(prompt_ids)
                rows_comp.append(toks)
                rows_lp.append([float(c.logprobs[j][t].logprob) for j, t in enumerate(toks)])
                reasons.append("length" if c.finish_reason == "length" else "stop")
                texts.append(c.text)
        return _to_generation(rows_prompt, rows_comp, rows_lp, reasons, texts, self.pad_token_id)


def _to_generation(rows_prompt, rows_comp, rows_lp, reasons, texts, pad: int) -> Generation:
    """Left-pad prompts, right-pad completions and logprobs into a Generation (on CPU)."""
    n = len(rows_prompt)
    p = max(len(r) for r in rows_prompt)
    t = max(1, max(len(r) for r in rows_comp))
    prompt_ids = torch.full((n, p), pad, dtype=torch.long)
    prompt_mask = torch.zeros(n, p, dtype=torch.bool)
    comp = torch.full((n, t), pad, dtype=torch.long)
    comp_mask = torch.zeros(n, t, dtype=torch.bool)
    logprobs = torch.zeros(n, t, dtype=torch.float32)
    for i, (pr, cr, lr) in enumerate(zip(rows_prompt, rows_comp, rows_lp)):
        if pr:
            prompt_ids[i, p - len(pr):] = torch.tensor(pr)
            prompt_mask[i, p - len(pr):] = True
        if cr:
            comp[i, : len(cr)] = torch.tensor(cr)
            comp_mask[i, : len(cr)] = True
            logprobs[i, : len(cr)] = torch.tensor(lr)
    return Generation(prompt_ids=prompt_ids, prompt_mask=prompt_mask, completion_ids=comp,
                      completion_mask=comp_mask, logprobs=logprobs, finish_reasons=tuple(reasons), texts=tuple(texts))
