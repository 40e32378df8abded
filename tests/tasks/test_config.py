"""Task configs: a discriminated union usable as a trainer field; one-line errors."""

import pytest
import yaml
from pydantic import Field

from rlx.config import ConfigError, Section, build_config, dump_yaml
from rlx.tasks import ArithmeticConfig, CountdownConfig, MathConfig, TaskConfig


class Recipe(Section):
    task: TaskConfig = Field(default_factory=ArithmeticConfig)


def test_union_dispatch_and_round_trip():
    assert isinstance(build_config(Recipe, {}).task, ArithmeticConfig)
    assert isinstance(build_config(Recipe, {"task": {"name": "countdown"}}).task, CountdownConfig)
    cfg = build_config(Recipe, {"task": {"name": "math", "answer_format": "boxed", "reward": {"format": 0.1}}})
    assert isinstance(cfg.task, MathConfig) and cfg.task.reward.format == 0.1
    assert build_config(Recipe, yaml.safe_load(dump_yaml(cfg))) == cfg


@pytest.mark.parametrize("task,needle", [
    ({"name": "arithmetic", "operators": "+^"}, "operators"),
    ({"name": "arithmetic", "operators": "++"}, "operators"),
    ({"name": "arithmetic", "min_operands": 3}, "min_operands (3) must be <= max_operands (2)"),
    ({"name": "arithmetic", "max_digits": 19}, "max_digits"),
    ({"name": "arithmetic", "must_use": "/"}, "must_use"),
    ({"name": "arithmetic", "template": "no placeholder"}, "template"),
    ({"name": "arithmetic", "answer_format": "xml"}, "answer_format"),
    ({"name": "countdown", "min_value": 50, "max_value": 10}, "min_value"),
    ({"name": "countdown", "num_numbers": 1}, "num_numbers"),
    ({"name": "arithmetic", "reward": {"noise_p": 1.5}}, "noise_p"),
    ({"name": "arithmetic", "reward": {"noise": "gaussian"}}, "noise"),
    ({"name": "arithmetic", "heldout_fraction": 0.0}, "heldout_fraction"),
    ({"name": "arithmetic", "opertors": "+"}, "unknown key"),
    ({"name": "sudoku"}, "sudoku"),
])
def test_bad_values_give_one_line_naming_the_field(task, needle):
    with pytest.raises(ConfigError) as e:
        build_config(Recipe, {"task": task})
    msg = str(e.value)
    assert needle in msg and "\n" not in msg and msg.startswith("config error:") and "task" in msg


def test_load_task_config_from_name_or_dict():
    from rlx.tasks import load_task_config

    assert load_task_config("countdown") == CountdownConfig()
    assert load_task_config({"name": "arithmetic", "max_operands": 3}).max_operands == 3
    with pytest.raises(ConfigError, match="sudoku"):
        load_task_config("sudoku")


def test_train_pool_on_a_dataset_task_and_attribute_templates_are_config_errors():
    """train_pool on a math task was silently ignored; a template with an attribute lookup crashed with a raw
    AttributeError."""
    from rlx.config import ConfigError
    from rlx.tasks import make_task
    from rlx.tasks.config import load_task_config

    with pytest.raises(ConfigError, match="train_pool is for generator tasks"):
        load_task_config({"name": "math", "train_pool": 1})
    with pytest.raises(ConfigError, match=r"task\.template = .*cannot be filled \(AttributeError"):
        make_task(load_task_config({"name": "arithmetic", "template": "{question} {question.real.x}"}))
