"""Online pruning inside the hf engine (paper arrol): re-batching keeps every tensor and the cache consistent."""

from __future__ import annotations

import pytest
import torch
from rollout_helpers import PROMPTS, teacher_forced_logprobs, tiny_model

from rlx.config import ConfigError
from rlx.rollout import HFEngine, SamplingParams
from rlx.sampling.prune import PrunePlan


def _plan(at, keep_rows, log):
    """A plan that records the features it is shown and keeps fixed rows."""
    def choose(feat, prefixes):
        log.append((feat.clone(), prefixes.clone()))
        return torch.tensor(keep_rows)
    return PrunePlan(at_tokens=at, keep_per_group=len(keep_rows) // len(PROMPTS), choose=choose)


# rows of 4 prompts x 4 candidates; keep 2 per prompt, not the first two, so re-batching must move rows
KEEP = [1, 3, 4, 6, 9, 10, 12, 15]


@pytest.mark.parametrize("fast", [True, False])
def test_pruned_rows_are_exact_continuations(fast):
    model, tok = tiny_model(eos_bias=3.0, seed=1)
    eng = HFEngine(model, tok, fast=fast)
    full = eng.generate(PROMPTS, SamplingParams(n=4, max_new_tokens=10), seed=7)
    log = []
    gen = eng.generate(PROMPTS, SamplingParams(n=4, max_new_tokens=10), seed=7, prune=_plan(3, KEEP, log))
    assert gen.completion_ids.shape[0] == 8 and len(gen.texts) == 8
    assert torch.equal(gen.prompt_ids, full.prompt_ids[KEEP])
    # the first 3 tokens were sampled before pruning: identical to the unpruned run's rows
    assert torch.equal(gen.completion_ids[:, :3], full.completion_ids[KEEP, :3])
    assert torch.equal(gen.completion_mask[:, :3], full.completion_mask[KEEP, :3])
    # after pruning, the re-batched KV cache still gives the model's own logprobs for every token
    assert gen.completion_mask[:, 3:].any()
    assert (gen.logprobs - teacher_forced_logprobs(model, gen)).abs().max().item() < 1e-5


@pytest.mark.parametrize("fast", [True, False])
def test_stop_string_across_the_prune_point(fast):
    """A stop string whose first character came before pruning and second after still stops its row:
    the per-row stop-string buffers move with their rows."""
    model, tok = tiny_model(eos_bias=1.0, seed=1)
    eng = HFEngine(model, tok, fast=fast)
    params = SamplingParams(n=4, max_new_tokens=10)
    base = eng.generate(PROMPTS, params, seed=3, prune=_plan(4, KEEP, []))
    ch = [[tok.decode([t]) for t in row] for row in base.completion_ids.tolist()]
    row = next(j for j in range(8) if base.completion_mask[j, :6].all() and ch[j][3] + ch[j][4] not in "".join(ch[j][:4]))
    stop = ch[row][3] + ch[row][4]
    gen = eng.generate(PROMPTS, params.model_copy(update={"stop": [stop]}), seed=3, prune=_plan(4, KEEP, []))
    assert int(gen.completion_mask[row].sum()) == 5 and gen.finish_reasons[row] == "stop"
    assert gen.texts[row] == "".join(ch[row][:3])


@pytest.mark.parametrize("fast", [True, False])
def test_features_are_the_hidden_state_at_each_rows_last_token(fast):
    model, tok = tiny_model(eos_bias=3.0, seed=1)
    eng = HFEngine(model, tok, fast=fast)
    log = []
    gen = eng.generate(PROMPTS, SamplingParams(n=4, max_new_tokens=10), seed=7, prune=_plan(4, KEEP, log))
    full = eng.generate(PROMPTS, SamplingParams(n=4, max_new_tokens=10), seed=7)
    feat, prefixes = log[0]  # [16, H], [16, 4]
    assert torch.equal(prefixes, full.completion_ids[:, :4])
    assert feat.shape == (16, model.config.hidden_size)
    # recompute: the final normed hidden state at each row's last generated token among the first 4
    ids = torch.cat([full.prompt_ids, full.completion_ids[:, :4]], 1)
    mask = torch.cat([full.prompt_mask, full.completion_mask[:, :4]], 1).long()
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        hs = model(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True).hidden_states[-1]
    last = full.prompt_ids.shape[1] + full.completion_mask[:, :4].sum(1) - 1
    want = hs[torch.arange(16), last]
    assert (feat - want).abs().max().item() < 1e-4
    assert gen.completion_ids.shape[0] == 8


def test_prunes_even_when_every_row_ends_first():
    model, tok = tiny_model(eos_bias=30.0, seed=1)  # EOS almost surely first: every row ends at t = 0
    log = []
    gen = HFEngine(model, tok).generate(PROMPTS, SamplingParams(n=4, max_new_tokens=10), seed=0,
                                        prune=_plan(5, KEEP, log))
    assert len(log) == 1 and gen.completion_ids.shape == (8, 1)


def test_bad_plans():
    model, tok = tiny_model()
    with pytest.raises(ConfigError, match="0 < keep < n"):
        HFEngine(model, tok).generate(PROMPTS, SamplingParams(n=2, max_new_tokens=4), seed=0,
                                      prune=PrunePlan(at_tokens=1, keep_per_group=2, choose=lambda f, t: f))


@pytest.mark.parametrize("rows", [[0, 1, 2, 4, 8, 9, 12, 13],   # right count, but 3 rows of prompt 0
                                  [1, 0, 4, 6, 9, 10, 12, 15],   # not ascending
                                  [1, 3, 4, 6, 9, 10, 12]])      # one row short
def test_a_plan_returning_rows_of_the_wrong_prompts_is_refused(rows):
    model, tok = tiny_model(eos_bias=1.0, seed=1)
    with pytest.raises(ConfigError, match="prune.choose returned rows"):
        HFEngine(model, tok).generate(PROMPTS, SamplingParams(n=4, max_new_tokens=6), seed=0,
                                      prune=_plan(2, rows, []) if len(rows) == 8 else
                                      PrunePlan(at_tokens=2, keep_per_group=2, choose=lambda f, t: torch.tensor(rows)))


def test_rast_engine_cannot_prune():
    from rlx.rollout.rast import RastEngine

    model, tok = tiny_model(seed=1)
    small, _ = tiny_model(seed=2)
    eng = RastEngine(model, tok, small_rl=small, small_base=small, alpha=1.0)
    with pytest.raises(ConfigError, match="RastEngine cannot prune"):
        eng.generate(PROMPTS, SamplingParams(n=4, max_new_tokens=6), seed=0, prune=_plan(2, KEEP, []))


def test_candidates_cache_reaches_only_the_prune_point():
    """The M candidates' KV cache holds prompt + at_tokens positions; the survivors' grows to the full length."""
    model, tok = tiny_model(eos_bias=-5.0, seed=1)  # EOS rare: rows keep generating after the prune point
    eng = HFEngine(model, tok, fast=True)
    seen = {}
    real = eng._forward

    def spy(*a, **k):
        seen["fwd"] = real(*a, **k)
        return seen["fwd"]

    eng._forward = spy

    def choose(feat, prefixes):
        seen["before"] = (seen["fwd"].k[0].shape[0], seen["fwd"].k[0].shape[2])
        return torch.tensor(KEEP)

    gen = eng.generate(PROMPTS, SamplingParams(n=4, max_new_tokens=10), seed=5,
                       prune=PrunePlan(at_tokens=3, keep_per_group=2, choose=choose))
    p = gen.prompt_ids.shape[1]
    assert seen["before"] == (16, p + 3) and tuple(seen["fwd"].k[0].shape[::2]) == (8, p + 10)
    assert gen.completion_ids.shape[1] == 10  # decoding went on well past the prune point
    assert (gen.logprobs - teacher_forced_logprobs(model, gen)).abs().max().item() < 1e-5
