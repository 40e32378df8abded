"""Multi-turn rollouts: tool outputs are context but not loss; behaviour log-probs match a full forward."""

import torch

import rlx.rollout.hf as hf
from rlx.agents.rollout import Segment, TurnConfig, layout, rollout
from rlx.agents.search_env import Question, SearchEnv, SearchEnvConfig
from rlx.models import ModelConfig, TinyModelConfig, load_policy
from rlx.models.tokenizer import char_tokenizer
from rlx.rollout.hf import HFEngine
from rlx.train.logprobs import sequence_logprobs
from rlx.types import Generation

Q = Question(start="kab", relations=("A",), kb=(("kab.A", "mot"), ("mot.A", "kab")), answer="mot")
ENV = SearchEnv(SearchEnvConfig(num_relations=1, min_hops=1, max_hops=1))


class ScriptedEngine:
    """Each generate call writes the next scripted turn for every row, with logprob -0.5 per token."""

    def __init__(self, tokenizer, turns):
        self.tok, self.turns, self.calls = tokenizer, list(turns), []

    def generate(self, prompts, params, seed):
        self.calls.append(list(prompts))
        ids = self.tok(self.turns.pop(0), add_special_tokens=False)["input_ids"]
        n, t = len(prompts), len(ids)
        p = self.tok(prompts, padding=True, return_tensors="pt", padding_side="left")
        return Generation(prompt_ids=p["input_ids"], prompt_mask=p["attention_mask"].bool(),
                          completion_ids=torch.tensor([ids] * n), completion_mask=torch.ones(n, t, dtype=torch.bool),
                          logprobs=torch.full((n, t), -0.5), finish_reasons=("stop",) * n, texts=("",) * n)

    def sync_weights(self, model):
        pass


def test_layout_masks_by_hand():
    # row 0: policy "ab" (lp -1, -2), tool "c", policy "d" (lp -3); row 1: policy "e" (lp -4)
    b = layout([[5, 6], [7]], [[Segment((10, 11), True, (-1.0, -2.0)), Segment((12,), False),
                                Segment((13,), True, (-3.0,))], [Segment((14,), True, (-4.0,))]],
               pad_id=0, rewards=[1.0, 0.0], correct=[True, False], group_size=1)
    assert b.prompt_ids.tolist() == [[5, 6], [0, 7]]  # left-padded
    assert b.completion_ids.tolist() == [[10, 11, 12, 13], [14, 0, 0, 0]]  # right-padded
    assert b.response_mask.tolist() == [[True, True, False, True], [True, False, False, False]]
    assert b.completion_mask.tolist() == [[True, True, True, True], [True, False, False, False]]
    assert b.rollout_logprobs.tolist() == [[-1.0, -2.0, 0.0, -3.0], [-4.0, 0.0, 0.0, 0.0]]


def test_loss_mask_covers_only_policy_tokens():
    tok = char_tokenizer()
    eng = ScriptedEngine(tok, ["[kab.A]", "{mot}"])
    traj = rollout(eng, tok, ENV, [Q], group_size=2, cfg=TurnConfig(max_turns=4), seed=0, max_len=64)
    b = traj.batch
    # completion "[kab.A]" (7 policy) + "=mot\n" (5 tool) + "{mot}" (5 policy) = 17 tokens
    assert tok.decode(b.completion_ids[0].tolist()) == "[kab.A]=mot\n{mot}"
    assert b.response_mask[0].tolist() == [True] * 7 + [False] * 5 + [True] * 5
    assert b.completion_mask[0].tolist() == [True] * 17
    assert b.rollout_logprobs[0].tolist() == [-0.5] * 7 + [0.0] * 5 + [-0.5] * 5
    assert b.rewards.tolist() == [1.0, 1.0] and b.group_index.tolist() == [0, 0]
    assert traj.turns.tolist() == [2, 2] and traj.searches.tolist() == [1, 1] and traj.answered.all()
    # the second turn sees the tool output in its context
    assert eng.calls[1] == ["kab.A?\n[kab.A]=mot\n"] * 2


def test_turn_limit_truncates_without_reward():
    tok = char_tokenizer()
    traj = rollout(ScriptedEngine(tok, ["[kab.A]", "[mot.A]"]), tok, ENV, [Q], group_size=1,
                   cfg=TurnConfig(max_turns=2), seed=0, max_len=64)
    # two searches, then the limit: no answer, reward 0; the last tool output is still context
    assert traj.truncated.tolist() == [True] and traj.batch.rewards.tolist() == [0.0]
    assert tok.decode(traj.batch.completion_ids[0].tolist()) == "[kab.A]=mot\n[mot.A]=kab\n"
    assert traj.batch.response_mask[0].sum() == 14 and traj.batch.finish_reasons == ("turn_limit",)


def test_malformed_turn_ends_the_episode():
    tok = char_tokenizer()
    traj = rollout(ScriptedEngine(tok, ["kab"]), tok, ENV, [Q], group_size=1, cfg=TurnConfig(max_turns=4),
                   seed=0, max_len=64)
    assert traj.batch.finish_reasons == ("invalid",) and traj.turns.tolist() == [1] and not traj.truncated.any()


def test_behaviour_logprobs_match_a_full_forward(monkeypatch):
    """Force a correct 2-hop episode through the real HF engine (the sampler picks scripted tokens and
    reports their log-prob under the model's softmax); a teacher-forced forward over the packed
    trajectory (tool outputs in context) must give the same log-probs on every policy token."""
    torch.manual_seed(0)
    model, tok = load_policy(ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4,
                                                              num_kv_heads=4, intermediate_size=64,
                                                              max_position=96)), seed=0)
    model.eval()
    env = SearchEnv(SearchEnvConfig(num_relations=2, min_hops=2, max_hops=2))
    q = env.questions(1, seed=5)[0]
    script = {"turns": [t for t, policy in env.trace(q) if policy], "chars": []}

    def scripted_sample(logits, params, generator):
        if not script["chars"]:
            script["chars"] = list(script["turns"].pop(0))
        tid = tok.convert_tokens_to_ids(script["chars"].pop(0))
        tokens = torch.full((logits.shape[0],), tid, dtype=torch.long)
        return tokens, logits.float().log_softmax(-1)[:, tid]

    monkeypatch.setattr(hf, "sample_tokens", scripted_sample)
    traj = rollout(HFEngine(model, tok), tok, env, [q], group_size=2, cfg=TurnConfig(max_turns=5), seed=0,
                   max_len=96)
    b = traj.batch
    assert b.rewards.tolist() == [1.0, 1.0] and traj.searches.tolist() == [2, 2]
    # reference: one plain forward over prompt + completion, no padding (both rows are identical)
    ids = torch.cat([b.prompt_ids[0], b.completion_ids[0]])[None]
    with torch.no_grad():
        logp = model(input_ids=ids).logits.float().log_softmax(-1)[0]
    p = b.prompt_ids.shape[1]
    ref = logp[p - 1:-1].gather(-1, b.completion_ids[0][:, None]).squeeze(-1)  # position p-1+j predicts token j
    m = b.response_mask[0]
    assert int(m.sum()) == 7 + 7 + 5 and int((~m & b.completion_mask[0]).sum()) == 10
    assert torch.allclose(b.rollout_logprobs[0][m], ref[m], atol=1e-5)
    # the trainer's scorer (used by the update) agrees too, on policy tokens of both rows
    with torch.no_grad():
        lp, _, _ = sequence_logprobs(model, b.prompt_ids, b.prompt_mask, b.completion_ids, b.attention_mask,
                                     group_size=2)
    assert torch.allclose(lp[b.response_mask], b.rollout_logprobs[b.response_mask], atol=1e-5)


def test_tool_latency_is_paid_once_per_turn_with_searches(monkeypatch):
    import rlx.agents.rollout as ro

    slept = []
    monkeypatch.setattr(ro.time, "sleep", slept.append)
    tok = char_tokenizer()
    traj = rollout(ScriptedEngine(tok, ["[kab.A]", "{mot}"]), tok, ENV, [Q], group_size=4,
                   cfg=TurnConfig(max_turns=4, tool_latency_s=0.2), seed=0, max_len=64)
    # one turn of 4 parallel searches waits 0.2 s once; the answer turn calls no tool
    assert traj.batch.rewards.tolist() == [1.0] * 4 and slept == [0.2]


def test_a_tool_output_that_would_overflow_the_context_ends_the_episode():
    """Prompt 7 + call 7 = 14 tokens; the tool's 5 would make 19 > max_len 18: the episode ends with
    context_limit before it, so no trajectory is longer than the model's context."""
    tok = char_tokenizer()
    traj = rollout(ScriptedEngine(tok, ["[kab.A]", "{mot}"]), tok, ENV, [Q], group_size=1,
                   cfg=TurnConfig(max_turns=4, turn_tokens=4), seed=0, max_len=18)
    b = traj.batch
    assert b.finish_reasons == ("context_limit",) and b.rewards.tolist() == [0.0]
    assert int(b.prompt_mask.sum() + b.completion_mask.sum()) == 14


def test_prompt_ids_start_with_the_bos_the_engine_adds():
    """A Llama-style tokenizer adds BOS when the engine encodes a context; the trainer's layout must hold the
    same ids, or the behaviour log-probs belong to another sequence."""
    from tokenizers import processors

    tok = char_tokenizer()
    tok._tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    traj = rollout(ScriptedEngine(tok, ["{mot}"]), tok, ENV, [Q], group_size=1, cfg=TurnConfig(max_turns=2),
                   seed=0, max_len=64)
    ids = traj.batch.prompt_ids[0][traj.batch.prompt_mask[0]].tolist()
    assert ids == tok(Q.text)["input_ids"] and ids[0] == 1 and ids[1] != 1
