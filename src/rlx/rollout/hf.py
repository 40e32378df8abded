"""Batched sampling with a KV cache over any Hugging Face causal LM, on CPU or CUDA.

Our own decode loop over the model's forward:

1. tokenize the B distinct prompts once (left-padded), prefill them once with their attention mask
   and position ids `cumsum(mask) - 1` (so left padding does not shift positions), keeping only the
   last position's logits;
2. repeat the KV cache and the last logits `n` times (rows of one prompt contiguous), so a group of
   G samples costs one prefill, not G;
3. one token per step: sample all N rows at once, feed the N new tokens with the cache; finished
   rows keep the batch shape (their tokens are padding, mask False, logprob 0) and the loop ends as
   soon as every row is finished;
4. decode the texts once at the end.

Online pruning (paper arrol, `rlx.sampling.prune`): `generate(..., prune=plan)` samples `params.n`
candidates per prompt, and after `plan.at_tokens` tokens hands each row's last hidden state and its
tokens so far to `plan.choose`, keeps the rows it returns (every tensor of the loop and the KV cache
are re-batched)
and decodes only those to the end; the Generation has only the kept rows.

The forward is either `rlx.rollout.fast.LeanDecoder` (Llama/Qwen2 up to 200M parameters with plain
Linear layers: the same arithmetic in fewer ops, preallocated cache) or, for anything else, the
model's own forward with a transformers DynamicCache; the choice is made once per call.

Logprobs are those of the distribution each token was sampled from (see `SamplingParams`): at
temperature 1 with no top-k/top-p they equal a teacher-forced forward pass of the same model to
float rounding (tests/rollout/test_hf.py and test_fast.py check 1e-5), which is what makes
rollout/trainer mismatch metrics meaningful.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from rlx.config import ConfigError
from rlx.models.tokenizer import encode_prompt, left_pad
from rlx.rollout.base import SamplingParams
from rlx.rollout.fast import LeanDecoder, fast_path_blocker
from rlx.types import Generation

__all__ = ["HFEngine", "decoder_for", "sample_tokens", "truncate_logits"]


def truncate_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Set to -inf every logit outside the top-k set, then outside the top-p nucleus.  [N, V] -> [N, V]

    top-k keeps tokens whose logit is >= the k-th largest (ties at the boundary are all kept).
    top-p keeps, in order of decreasing probability, each token whose preceding mass is < top_p,
    so the most likely token is always kept and the kept mass is >= top_p.
    """
    vocab = logits.shape[-1]
    if 0 < top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs  # mass strictly before each token in sorted order
        drop_sorted = before >= top_p
        drop = torch.empty_like(drop_sorted).scatter_(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_tokens(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row and its logprob under the sampling distribution.  [N, V] -> ([N] long, [N] f32)

    greedy (temperature 0): argmax, logprob from log_softmax(logits) (untempered).
    otherwise: x = truncate(logits / temperature); token ~ softmax(x); logprob = log_softmax(x)[token].
    """
    logits = logits.float()
    if params.greedy:
        logp = logits.log_softmax(-1)
        tok = logp.argmax(-1)
    else:
        if params.temperature != 1.0:
            logits = logits / params.temperature
        logits = truncate_logits(logits, params.top_k, params.top_p)
        logp = logits.log_softmax(-1)
        tok = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
    return tok, logp.gather(1, tok.unsqueeze(1)).squeeze(1)


class _StopStrings:
    """Incremental stop-string detection without a tokenizer call per step.

    Each token id maps to its own decoded string (a table built once per engine); a row's text is the
    concatenation. This equals the true decoding for character and byte-level-with-whole-characters
    tokens. A byte-level token holding part of a character decodes alone to U+FFFD: while a row's last
    character is incomplete, its text comes from `decode(row ids)` instead, so a stop string such as
    "→" (three byte tokens) is seen at the token that completes it (the table alone never saw it).
    Tokens that decode differently in context otherwise (SentencePiece's leading space) may make a stop
    string be seen one token late; the final texts always use the real decoder and are cut at the first
    stop string.
    """

    def __init__(self, table: list[str], stops: list[str], rows: int, decode: Callable[[list[int]], str]):
        self.table, self.stops, self.decode = table, stops, decode
        self.longest = max(len(s) for s in stops)
        self.texts = [""] * rows
        self.ids: list[list[int]] = [[] for _ in range(rows)]
        self.partial = [False] * rows  # the row's text ends inside a character

    def select(self, rows: list[int]) -> None:
        self.texts = [self.texts[i] for i in rows]
        self.ids = [self.ids[i] for i in rows]
        self.partial = [self.partial[i] for i in rows]

    def update(self, rows: list[int], toks: list[int]) -> list[int]:
        """Append one token to each active row; return the rows that now contain a stop string."""
        hit = []
        for i in rows:
            piece = self.table[toks[i]] if toks[i] < len(self.table) else ""
            self.ids[i].append(toks[i])
            if self.partial[i] or "\ufffd" in piece:  # bytes of a split character: the real decoder
                text = self.decode(self.ids[i])
                self.partial[i] = text.endswith("\ufffd")
                self.texts[i] = text
                if any(s in text for s in self.stops):
                    hit.append(i)
                continue
            text = self.texts[i] + piece
            self.texts[i] = text
            tail = text[-(len(piece) + self.longest - 1):] if piece else ""
            if tail and any(s in tail for s in self.stops):
                hit.append(i)
        return hit


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class HFEngine:
    """The `hf` rollout engine: shares the trainer's module, so `sync_weights` is a pointer swap."""

    def __init__(self, model: torch.nn.Module, tokenizer, eos_token_ids: list[int] | None = None,
                 fast: bool = True):
        self.model = model
        self.fast = fast  # use rlx.rollout.fast.LeanDecoder where it is exact (Llama/Qwen2, plain Linear)
        self.tokenizer = tokenizer
        if eos_token_ids is None:
            eos_token_ids = _eos_ids(model, tokenizer)
        if not eos_token_ids:
            raise ConfigError("config error: eos_token_ids: the tokenizer has no EOS token; pass eos_token_ids")
        self.eos_token_ids = sorted(set(eos_token_ids))
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else self.eos_token_ids[0])
        self._cache_kw = _cache_argument(model)
        self._token_strings: list[str] | None = None

    def sync_weights(self, model: torch.nn.Module) -> None:
        self.model = model

    def generate(self, prompts: list[str], params: SamplingParams, seed: int, prune=None) -> Generation:
        """See `RolloutEngine.generate`; `prune` (a `rlx.sampling.prune.PrunePlan`) keeps
        `prune.keep_per_group` of the `params.n` rows per prompt after `prune.at_tokens` tokens."""
        if not prompts:
            raise ConfigError("config error: prompts: need at least one prompt")
        return self.generate_ids([encode_prompt(self.tokenizer, p) for p in prompts], params, seed, prune)

    def generate_ids(self, prompts: list[list[int]], params: SamplingParams, seed: int, prune=None) -> Generation:
        """`generate` from prompt token ids, used as given (no re-encoding): a multi-turn rollout whose
        context is concatenated segments samples from exactly the tokens the trainer will read."""
        if not prompts:
            raise ConfigError("config error: prompts: need at least one prompt")
        device = next(self.model.parameters()).device
        ids, mask = left_pad([list(p) for p in prompts], self.pad_token_id)
        ids, mask = ids.to(device), mask.to(device)  # [B, P] each
        empty = (~mask.any(-1)).nonzero()
        if len(empty):
            raise ConfigError(f"config error: prompts[{int(empty[0])}] is empty after tokenization")
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and ids.shape[1] + params.max_new_tokens > limit:
            raise ConfigError(
                f"config error: max_new_tokens = {params.max_new_tokens}: prompt length {ids.shape[1]} + "
                f"max_new_tokens exceeds the model's max_position_embeddings {limit}"
            )
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        was_training = self.model.training
        if was_training:  # no dropout while sampling; .eval()/.train() walk every module, so only when needed
            self.model.eval()
        try:
            with torch.inference_mode():
                comp, comp_mask, logprobs, stopped = self._decode(ids, mask, params, generator, prune)
        finally:
            if was_training:
                self.model.train()
        n = params.n if prune is None else prune.keep_per_group
        prompt_ids = ids.repeat_interleave(n, 0)
        prompt_mask = mask.repeat_interleave(n, 0)
        texts, reasons = self._texts(comp, comp_mask, stopped, params.stop)
        return Generation(
            prompt_ids=prompt_ids,
            prompt_mask=prompt_mask,
            completion_ids=comp,
            completion_mask=comp_mask,
            logprobs=logprobs,
            finish_reasons=reasons,
            texts=texts,
        )

    # -- the decode loop -------------------------------------------------------------------------

    def _decode(self, ids, mask, params: SamplingParams, generator, prune=None):
        n, t_max = params.n, params.max_new_tokens
        b, p = ids.shape
        rows = b * n
        device = ids.device
        # pruning: the M candidates' KV cache only has to reach the prune point; `select` grows the survivors'
        fwd = self._forward(rows, p + t_max) if prune is None else \
            self._forward(rows, p + t_max, cache_len=p + min(prune.at_tokens, t_max))
        if prune is not None:
            if not 0 < prune.keep_per_group < n:
                raise ConfigError(f"config error: prune: keep {prune.keep_per_group} of n = {n} rows per prompt "
                                  "needs 0 < keep < n")
            if not hasattr(fwd, "select"):
                raise ConfigError(f"config error: prune: {type(self).__name__} cannot prune rollouts")
            fwd.keep_hidden = True
        feat = None  # [N, H] the final hidden state at each row's last generated token (pruning only)
        logits = fwd.prefill(ids, mask, n)  # [N, V]: one prefill per distinct prompt, shared by its group
        key_mask = torch.ones(rows, p + t_max, dtype=torch.bool, device=device)  # [N, P + T]
        key_mask[:, :p] = mask.repeat_interleave(n, 0)
        next_pos = mask.sum(-1, keepdim=True).repeat_interleave(n, 0)  # [N, 1] first completion position

        tokens = torch.full((rows, t_max), self.pad_token_id, dtype=torch.long, device=device)  # [N, T]
        logprobs = torch.zeros(rows, t_max, dtype=torch.float32, device=device)  # [N, T]
        live = torch.zeros(rows, t_max, dtype=torch.bool, device=device)  # [N, T] completion_mask
        done = torch.zeros(rows, dtype=torch.bool, device=device)  # [N]
        stopped = torch.zeros(rows, dtype=torch.bool, device=device)  # [N] by stop string
        eos = torch.tensor(self.eos_token_ids, device=device)
        pad = torch.full((rows,), self.pad_token_id, dtype=torch.long, device=device)
        stops = _StopStrings(self._table(), params.stop, rows,
                             lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True)) if params.stop else None
        active = list(range(rows))  # rows still generating (tracked in Python only with stop strings)
        eos_set = set(self.eos_token_ids)
        steps = 0
        for t in range(t_max):
            tok, lp = sample_tokens(logits, params, generator)
            tok = torch.where(done, pad, tok)
            tokens[:, t] = tok
            logprobs[:, t] = lp.masked_fill(done, 0.0)
            live[:, t] = ~done
            done = done | torch.isin(tok, eos)
            steps = t + 1
            if stops is not None:
                toks = tok.tolist()
                hit = stops.update(active, toks)
                if hit:
                    idx = torch.tensor(hit, device=device)
                    stopped[idx] = True
                    done[idx] = True
                hit_set = set(hit)
                active = [i for i in active if i not in hit_set and toks[i] not in eos_set]
            last = t == t_max - 1 or bool(done.all())
            if last and prune is None:
                break
            logits = fwd.step(tok, next_pos + t, key_mask[:, : p + t + 1], p + t)
            if prune is not None:  # paper arrol: track features, prune once, re-batch everything
                feat = fwd.hidden if feat is None else torch.where(live[:, t:t + 1], fwd.hidden, feat)
                if t + 1 == prune.at_tokens or last:
                    keep = _checked_rows(prune.choose(feat, tokens[:, :t + 1]), b, n, prune.keep_per_group)
                    fwd.select(keep)
                    tokens, logprobs, live, done, stopped = (x[keep] for x in (tokens, logprobs, live, done, stopped))
                    key_mask, next_pos, pad, logits = key_mask[keep], next_pos[keep], pad[keep], logits[keep]
                    if stops is not None:
                        stops.select(keep.tolist())
                        kept = {r: i for i, r in enumerate(keep.tolist())}
                        active = [kept[i] for i in active if i in kept]
                    fwd.keep_hidden, feat, prune = False, None, None
            if last:
                break
        return tokens[:, :steps], live[:, :steps], logprobs[:, :steps], stopped

    def _forward(self, rows: int, max_len: int, cache_len: int | None = None):
        """The object that runs the model for one `generate` call: `prefill(ids, mask, n) -> [N, V]` and
        `step(tokens, positions, key_mask, start) -> [N, V]` (next-token logits). Subclasses that
        decode from combined logits (`rlx.rollout.rast.RastEngine`) override this."""
        return decoder_for(self.model, rows, max_len, self.fast, self._cache_kw, cache_len)

    # -- texts -----------------------------------------------------------------------------------

    def _table(self) -> list[str]:
        """The text each token adds in the middle of a completion (for stop-string checks while decoding).

        Each token is decoded after an anchor token and the anchor's text is cut off: SentencePiece
        (Metaspace) decoders drop a token's leading space when it is decoded alone ("▁Q" -> "Q"), which
        hid stops like " Q" until the end of the row. Where that prefix trick does not apply, the token's
        own decode is used."""
        if self._token_strings is None:
            tok = self.tokenizer
            size = len(tok)
            alone = tok.batch_decode([[i] for i in range(size)], skip_special_tokens=True)
            special = set(tok.all_special_ids)
            anchor = next(([i] for text in ("a", "x", "0", "the") for i in tok.encode(text, add_special_tokens=False)[:1]
                           if i not in special and tok.decode([i], skip_special_tokens=True)), [])
            if anchor:
                head = tok.decode(anchor, skip_special_tokens=True)
                after = tok.batch_decode([anchor + [i] for i in range(size)], skip_special_tokens=True)
                alone = [a[len(head):] if head and a.startswith(head) else t for a, t in zip(after, alone)]
            self._token_strings = alone
        return self._token_strings

    def _texts(self, comp, comp_mask, stopped, stops: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        lengths = comp_mask.sum(-1).tolist()
        rows = [r[:k] for r, k in zip(comp.tolist(), lengths)]
        raw = self.tokenizer.batch_decode(rows, skip_special_tokens=True)
        eos_set = set(self.eos_token_ids)
        texts, reasons = [], []
        for r, text, by_stop in zip(rows, raw, stopped.tolist()):
            cut = False
            if stops:
                text, cut = _cut_at_stop(text, stops)
            ended = by_stop or cut or (len(r) > 0 and r[-1] in eos_set)
            texts.append(text)
            reasons.append("stop" if ended else "length")
        return tuple(texts), tuple(reasons)


def _checked_rows(keep: torch.Tensor, b: int, n: int, g: int) -> torch.Tensor:
    """A prune plan's kept rows must be g per prompt, in prompt order (rows of prompt i lie in [i*n, (i+1)*n))."""
    keep = keep.reshape(-1)
    ok = keep.numel() == b * g and bool((keep[1:] > keep[:-1]).all()) and \
        torch.equal((keep // n).cpu(), torch.arange(b).repeat_interleave(g))
    if not ok:
        raise ConfigError(f"config error: prune.choose returned rows {keep.tolist()[:12]}...; it must return {g} "
                          f"ascending rows of each prompt's {n} (row r belongs to prompt r // {n})")
    return keep


def decoder_for(model, rows: int, max_len: int, fast: bool, cache_kw: str, cache_len: int | None = None):
    """`LeanDecoder` where it is exact (and `fast`), else the model's own forward with a KV cache (which
    grows as needed, so `cache_len`, the positions to preallocate, matters only for LeanDecoder)."""
    if fast and fast_path_blocker(model) is None:
        return LeanDecoder(model, rows, max_len, cache_len)
    return _HFForward(model, cache_kw)


class _HFForward:
    """The generic path: the model's own forward with a transformers DynamicCache."""

    def __init__(self, model, cache_kw: str):
        from transformers import DynamicCache

        self.model, self.cache_kw = model, cache_kw
        self.cache = DynamicCache(config=model.config)
        self.keep_hidden = False  # pruning (paper arrol): keep the final hidden state of each step
        self.hidden: torch.Tensor | None = None  # [N, H]

    def select(self, rows: torch.Tensor) -> None:
        self.cache.batch_select_indices(rows)

    def prefill(self, ids: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
        positions = (mask.long().cumsum(-1) - 1).clamp_(min=0)  # left padding does not shift positions
        out = self.model(input_ids=ids, attention_mask=mask.long(), position_ids=positions, use_cache=True,
                         logits_to_keep=1, **{self.cache_kw: self.cache})
        logits = out.logits[:, -1]  # [B, V]
        if n > 1:
            self.cache.batch_repeat_interleave(n)
            logits = logits.repeat_interleave(n, 0)
        return logits

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, key_mask: torch.Tensor, start: int) -> torch.Tensor:
        out = self.model(input_ids=tokens.unsqueeze(1), attention_mask=key_mask.long(), position_ids=positions,
                         use_cache=True, output_hidden_states=self.keep_hidden, **{self.cache_kw: self.cache})
        if self.keep_hidden:
            self.hidden = out.hidden_states[-1][:, -1]  # after the final norm (what lm_head reads)
        return out.logits[:, -1]


def _cache_argument(model: torch.nn.Module) -> str:
    """Newer transformers name the KV-cache argument `cache`, older ones `past_key_values`. Read it off
    the first PreTrainedModel inside `model` (a peft wrapper's own forward takes **kwargs)."""
    from transformers import PreTrainedModel

    hf = next((m for m in model.modules() if isinstance(m, PreTrainedModel)), model)
    return "cache" if "cache" in inspect.signature(hf.forward).parameters else "past_key_values"


def _eos_ids(model, tokenizer) -> list[int]:
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    gen_cfg = getattr(model, "generation_config", None)
    extra = gen_cfg.eos_token_id if gen_cfg is not None else None
    if isinstance(extra, int):
        ids.append(extra)
    elif extra is not None:
        ids.extend(int(i) for i in extra)
    return ids
