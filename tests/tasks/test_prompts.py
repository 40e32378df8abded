"""Prompt formats, chat templates, reference completions and scoring across answer formats."""

import pytest
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from rlx.config import ConfigError
from rlx.rewards import RewardConfig
from rlx.tasks import ArithmeticConfig, CountdownConfig, MathConfig, Task, make_task
from rlx.types import Problem

P = Problem(id="0" * 16, question="12+34", answer="46")
CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def tokenizer(chat_template):
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")),
                                  unk_token="<unk>")
    tok.chat_template = chat_template
    return tok


def test_tasks_satisfy_protocol():
    for cfg in (ArithmeticConfig(), CountdownConfig(), MathConfig()):
        assert isinstance(make_task(cfg), Task)


def test_plain_prompt_and_completion():
    t = make_task(ArithmeticConfig())
    assert t.prompt(P) == "12+34="
    assert t.prompt(P, tokenizer(CHAT)) == "12+34="  # plain never uses the chat template
    assert t.reference_completion(P) == "46"
    assert t.extract_answer(" 46 \nmore text") == "46"
    s = t.score("46\n12+34=46", P)
    assert (s.reward, s.correct, s.parsed) == (1.0, True, True)


def test_chat_template_used_for_boxed_and_tags_only_when_present():
    for fmt in ("boxed", "tags"):
        t = make_task(ArithmeticConfig(answer_format=fmt))
        plain = t.prompt(P)
        assert plain.startswith("Compute 12+34.")
        assert t.prompt(P, tokenizer(None)) == plain
        assert t.prompt(P, tokenizer(CHAT)) == f"<|user|>{plain}\n<|assistant|>"


def test_boxed_and_tags_round_trip():
    b = make_task(ArithmeticConfig(answer_format="boxed"))
    assert b.reference_completion(P) == "The answer is \\boxed{46}."
    assert b.score(b.reference_completion(P), P).correct
    assert b.extract_answer("\\boxed{1} then \\boxed{46.0}") == "46.0"
    g = make_task(ArithmeticConfig(answer_format="tags"))
    assert g.reference_completion(P) == "<answer>46</answer>"
    assert g.score("think... <answer> 46 </answer>", P).correct
    assert not g.score("46", P).parsed


def test_custom_template_and_bad_template():
    t = make_task(ArithmeticConfig(template="Q: {question} A:"))
    assert t.prompt(P) == "Q: 12+34 A:"
    with pytest.raises(ConfigError, match="task.template"):
        make_task(ArithmeticConfig(template="{question} {nope}"))
    c = make_task(CountdownConfig(template="{question} | {numbers} | {target}"))
    p = c.train_problems(1, seed=0)[0]
    assert c.prompt(p) == f"{p.question} | {', '.join(map(str, p.meta['numbers']))} | {p.meta['target']}"


def test_reward_weights_and_format_part():
    t = make_task(ArithmeticConfig(answer_format="tags", reward=RewardConfig(correct=1.0, format=0.25)))
    # correct and well-formed: 1.0*1 + 0.25*1 = 1.25; wrong but well-formed: 0.25; no tags: 0
    assert t.score("<answer>46</answer>", P).reward == 1.25
    wrong = t.score("<answer>45</answer>", P)
    assert (wrong.reward, wrong.correct, wrong.parsed, wrong.parts) == (0.25, False, True, {"correct": 0.0, "format": 1.0})
    assert t.score("46", P).reward == 0.0


def test_wrong_and_garbage_answers():
    t = make_task(ArithmeticConfig())
    for text, parsed in [("45", True), ("46.5", True), ("forty-six", False), ("", False), ("\n\n", False)]:
        s = t.score(text, P)
        assert not s.correct and s.parsed == parsed and s.reward == 0.0, text
    for text in ("46.0", "+46", " 46", "92/2", "46.000"):
        assert t.score(text, P).correct, text
