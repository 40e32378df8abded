"""ObjectiveConfig presets: resolved values, user-set fields win, YAML round trip, clear errors."""

import pytest
import yaml

from rlx.config import ConfigError, Section, apply_overrides, build_config, dump_yaml
from rlx.objectives import PRESETS, ObjectiveConfig


class Recipe(Section):
    objective: ObjectiveConfig = ObjectiveConfig()


def test_dapo_resolves_as_documented():
    cfg = build_config(ObjectiveConfig, {"preset": "dapo"})
    assert (cfg.clip_eps_low, cfg.clip_eps_high) == (0.2, 0.28)
    assert cfg.aggregation == "token-mean" and cfg.dynamic_sampling is True
    assert cfg.overlong_buffer_frac == 0.2 and cfg.overlong_penalty == 1.0
    assert cfg.advantage == "grpo" and cfg.scale_by_std is True and cfg.kl_coef == 0.0


@pytest.mark.parametrize(
    "preset,expected",
    [
        ("grpo", {"advantage": "grpo", "scale_by_std": True, "aggregation": "seq-mean-token-mean"}),
        ("dr_grpo", {"advantage": "grpo", "scale_by_std": False, "aggregation": "seq-mean-token-sum-norm"}),
        ("rloo", {"advantage": "rloo", "aggregation": "seq-mean-token-sum"}),
        ("reinforce_pp", {"advantage": "reinforce_pp", "kl_placement": "reward", "aggregation": "token-mean"}),
        ("ppo", {"advantage": "gae", "lam": 0.95, "value_coef": 0.5, "aggregation": "token-mean"}),
        ("gspo", {"policy_loss": "gspo", "clip_eps_low": 3e-4, "clip_eps_high": 4e-4}),
        ("nsr", {"advantage": "w_reinforce", "positive_weight": 0.0}),
        ("w_reinforce", {"advantage": "w_reinforce", "positive_weight": 0.1}),
    ],
)
def test_presets(preset, expected):
    cfg = build_config(ObjectiveConfig, {"preset": preset})
    for k, v in expected.items():
        assert getattr(cfg, k) == v, k


def test_user_set_field_wins():
    cfg = build_config(ObjectiveConfig, {"preset": "dapo", "clip_eps_high": 0.3, "aggregation": "seq-mean-token-mean",
                                         "overlong_buffer_frac": None})
    assert cfg.clip_eps_high == 0.3 and cfg.aggregation == "seq-mean-token-mean"
    assert cfg.overlong_buffer_frac is None  # an explicit null also wins
    assert cfg.dynamic_sampling is True  # the rest still comes from the preset


def test_no_preset_equals_grpo():
    assert ObjectiveConfig().model_copy(update={"preset": "grpo"}) == build_config(ObjectiveConfig, {"preset": "grpo"})


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_dump_round_trip(preset):
    cfg = build_config(ObjectiveConfig, {"preset": preset, "kl_coef": 0.01})
    dumped = yaml.safe_load(dump_yaml(cfg))
    assert dumped["clip_eps_high"] == cfg.clip_eps_high  # resolved values are visible in the dump
    assert build_config(ObjectiveConfig, dumped) == cfg


def test_one_line_in_a_recipe_with_override():
    data = apply_overrides({"objective": {"preset": "dapo"}}, ["objective.clip_eps_low=0.1"])
    cfg = build_config(Recipe, data)
    assert cfg.objective.clip_eps_low == 0.1 and cfg.objective.clip_eps_high == 0.28


@pytest.mark.parametrize(
    "data,field",
    [
        ({"preset": "dapoo"}, "preset"),
        ({"clip_eps_low": 1.5}, "clip_eps_low"),
        ({"dual_clip": 0.5}, "dual_clip"),
        ({"aggregation": "mean"}, "aggregation"),
        ({"kl_estimator": "k4"}, "kl_estimator"),
        ({"preset": "dapo", "clip_eps_hgh": 0.3}, "clip_eps_hgh"),
    ],
)
def test_errors_name_the_field(data, field):
    with pytest.raises(ConfigError, match=field) as e:
        build_config(ObjectiveConfig, data)
    assert "\n" not in str(e.value)


def test_every_field_documented():
    for name, f in ObjectiveConfig.model_fields.items():
        assert f.description, name


@pytest.mark.parametrize("shaping, field", [({"overlong_buffer_frac": 0.2}, "overlong_buffer_frac"),
                                            ({"kl_coef": 0.1, "kl_placement": "reward"}, "kl_placement: reward")])
def test_w_reinforce_refuses_a_shaped_reward(shaping, field):
    """W-REINFORCE thresholds the reward to tell correct from incorrect: 1 - 0.7 overlong penalty = 0.3 < 0.5
    would push a correct answer down, so shaping the reward first is a config error naming the field."""
    with pytest.raises(ConfigError, match=field):
        build_config(ObjectiveConfig, {"preset": "nsr", **shaping})
    build_config(ObjectiveConfig, {"preset": "nsr", "kl_coef": 0.1})  # KL as a loss term leaves the reward alone


def test_k1_in_the_loss_is_refused():
    """The gradient of log(pi/pi_ref) is zero in expectation under pi: as a loss term it never pulls toward
    the reference. In the reward (REINFORCE++ / PPO presets) k1 is right."""
    with pytest.raises(ConfigError, match="kl_estimator = k1 with kl_placement = loss"):
        build_config(ObjectiveConfig, {"kl_estimator": "k1", "kl_coef": 0.1})
    build_config(ObjectiveConfig, {"preset": "reinforce_pp", "kl_coef": 0.1})
    build_config(ObjectiveConfig, {"kl_estimator": "k2", "kl_coef": 0.1})


@pytest.mark.parametrize("field", [{"dual_clip": 3.0}, {"clip_eps_high": 0.28}, {"preset": "grpo", "dual_clip": 3.0}])
def test_reinforce_refuses_clip_settings_it_would_ignore(field):
    with pytest.raises(ConfigError, match="policy_loss = reinforce has no ratio to clip"):
        build_config(ObjectiveConfig, {**field, "policy_loss": "reinforce"})
    build_config(ObjectiveConfig, {"policy_loss": "reinforce"})


@pytest.mark.parametrize("extra, named", [({"train": {"epochs": 2}}, "train.epochs: 2"),
                                          ({"train": {"minibatches": 2}}, "train.minibatches: 2"),
                                          ({"rollout": {"staleness": 1}}, "rollout.staleness: 1")])
def test_reinforce_is_refused_where_samples_come_from_an_older_policy(extra, named):
    from rlx.train.rlvr_config import Config

    base = {"kind": "rlvr", "model": {"path": "assets/arith-base"}, "task": {"name": "arithmetic"},
            "objective": {"policy_loss": "reinforce"}}
    with pytest.raises(ConfigError, match=named):
        build_config(Config, {**base, **extra})
    build_config(Config, base)
    build_config(Config, {**base, **extra, "objective": {"policy_loss": "ppo_clip"}})


def test_difficulty_with_a_mixture_fails_at_load_not_after_curation():
    from rlx.train.rlvr_config import Config

    with pytest.raises(ConfigError, match="difficulty with task.name = 'mixture'"):
        build_config(Config, {"kind": "rlvr", "model": {"path": "assets/arith-base"}, "difficulty": {"candidates": 8},
                              "task": {"name": "mixture", "tasks": [{"name": "arithmetic"}, {"name": "arithmetic"}]}})


@pytest.mark.parametrize("reward, ok", [({}, True), ({"correct": 0.5}, False), ({"format": 0.6}, False), ({"format": 0.5}, True),
                                        ({"format": 0.2}, True), ({"correct": 1.0, "format": -0.6}, False)])
def test_w_reinforce_needs_rewards_on_either_side_of_its_threshold(reward, ok):
    """W-REINFORCE splits samples by reward > 0.5: a correct answer worth 0.5, or a wrong but well-formatted
    one worth 0.5, would land on the wrong side and be pushed the wrong way."""
    from rlx.train.rlvr_config import Config

    data = {"kind": "rlvr", "model": {"path": "assets/arith-base"}, "objective": {"preset": "nsr"},
            "task": {"name": "arithmetic", "reward": reward}}
    if ok:
        build_config(Config, data)
    else:
        with pytest.raises(ConfigError, match="counts a sample as correct when its reward > correct_threshold"):
            build_config(Config, data)


def test_answer_reading_objectives_need_one_answer_format_in_a_mixture():
    from rlx.train.rlvr_config import Config

    base = {"kind": "rlvr", "model": {"path": "assets/arith-base"}, "objective": {"dispersion_floor": 0.5}}
    mixed = {"name": "mixture", "tasks": [{"name": "arithmetic"}, {"name": "countdown", "answer_format": "tags"}]}
    with pytest.raises(ConfigError, match="differ in"):
        build_config(Config, {**base, "task": mixed})
    build_config(Config, {**base, "task": {"name": "mixture", "tasks": [{"name": "arithmetic"}, {"name": "arithmetic"}]}})


def test_ssl_pretexts_refuse_spaced_equations():
    with pytest.raises(ConfigError, match="source.spaced must be false"):
        from rlx.tasks import TaskConfig

        class R(Section):
            task: TaskConfig

        build_config(R, {"task": {"name": "ssl", "source": {"spaced": True}}})


def test_reinforce_with_a_preset_is_accepted_when_the_user_set_no_clip():
    """Presets carry clip values; only values that differ from the preset's (or the default) are the user's."""
    for preset in ("grpo", "reinforce_pp", "w_reinforce"):
        build_config(ObjectiveConfig, {"preset": preset, "policy_loss": "reinforce"})
    with pytest.raises(ConfigError, match="clip_eps_high"):
        build_config(ObjectiveConfig, {"preset": "grpo", "policy_loss": "reinforce", "clip_eps_high": 0.28})


def test_difficulty_with_self_consistency_is_refused():
    from rlx.train.rlvr_config import Config

    with pytest.raises(ConfigError, match="self_consistency"):
        build_config(Config, {"kind": "rlvr", "model": {"path": "assets/arith-base"}, "difficulty": {"candidates": 8},
                              "task": {"name": "arithmetic", "reward": {"source": "self_consistency"}}})
