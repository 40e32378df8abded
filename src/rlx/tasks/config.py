"""Typed task configs, a discriminated union on `name` (use `TaskConfig` as a trainer field).

    class Config(Section):
        task: TaskConfig = ArithmeticConfig()

    # recipe.yaml
    task: {name: arithmetic, max_operands: 3, operators: "+-*/"}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from rlx.config import Section, build_config
from rlx.rewards.config import RewardConfig

__all__ = ["TaskBase", "ArithmeticConfig", "CountdownConfig", "MathConfig", "SSLConfig", "MixtureConfig", "CodeConfig", "TaskConfig",
           "load_task_config"]

_OPS = "+-*/"


def _check_ops(v: str) -> str:
    bad = [c for c in v if c not in _OPS]
    if not v or bad or len(set(v)) != len(v):
        raise ValueError(f"must be a non-empty subset of {_OPS!r} without repeats")
    return v


class TaskBase(Section):
    """Settings every task shares: prompt format, held-out split, reward weights."""

    name: str = Field(description="which task: arithmetic, countdown or math (each subclass fixes it)")
    answer_format: Literal["plain", "boxed", "tags"] = Field(
        "plain", description="plain: completion is the bare answer; boxed: \\boxed{...}; tags: <answer>...</answer>")
    template: str | None = Field(
        None, description="prompt template with {question} (and task fields); None = the task's default for answer_format")
    heldout_fraction: float = Field(
        0.1, gt=0.0, lt=1.0, description="share of the problem space (by question hash) reserved for held-out evaluation")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="reward weights and noise")
    train_pool: int | None = Field(
        None, ge=1, description="train on a fixed pool of this many problems (drawn once with pool_seed; "
        "1 = one-shot RLVR, paper oneshot; generator tasks only); None = a fresh draw every step")
    pool_seed: int = Field(0, ge=0, description="seed of the fixed training pool")

    @field_validator("template")
    @classmethod
    def _template_has_question(cls, v: str | None) -> str | None:
        if v is not None and "{question}" not in v:
            raise ValueError("must contain the placeholder {question}")
        return v


class ArithmeticConfig(TaskBase):
    """Random arithmetic expressions with exact answers (paper `randcalc`)."""

    name: Literal["arithmetic"] = Field("arithmetic", description="task kind")
    min_operands: int = Field(2, ge=1, le=32, description="fewest operands in an expression")
    max_operands: int = Field(2, ge=1, le=32, description="most operands in an expression")
    min_digits: int = Field(2, ge=1, le=18, description="fewest digits per operand")
    max_digits: int = Field(2, ge=1, le=18, description="most digits per operand")
    operators: str = Field("+-*", description="operators to use, a subset of '+-*/'")
    paren_prob: float = Field(0.0, ge=0.0, le=1.0, description="probability of opening a parenthesised group at each operand")
    integer_answers: bool = Field(True, description="only keep expressions whose value is an integer (no fractions)")
    spaced: bool = Field(False, description="write spaces around operators ('12 + 34' instead of '12+34')")
    must_use: str = Field("", description="operators every expression must contain (e.g. '/' for a new-composition eval set)")

    _ops = field_validator("operators")(classmethod(lambda cls, v: _check_ops(v)))

    @model_validator(mode="after")
    def _ranges(self) -> "ArithmeticConfig":
        if any(c not in self.operators for c in self.must_use) or len(set(self.must_use)) != len(self.must_use):
            raise ValueError(f"must_use ({self.must_use!r}) must be a subset of operators ({self.operators!r})")
        if len(self.must_use) >= self.max_operands:
            raise ValueError(f"must_use ({self.must_use!r}) needs max_operands > {len(self.must_use)}")
        if self.min_operands > self.max_operands:
            raise ValueError(f"min_operands ({self.min_operands}) must be <= max_operands ({self.max_operands})")
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) must be <= max_digits ({self.max_digits})")
        return self


class CountdownConfig(TaskBase):
    """Reach a target from given numbers with + - * / (each number at most once)."""

    name: Literal["countdown"] = Field("countdown", description="task kind")
    num_numbers: int = Field(4, ge=2, le=8, description="how many numbers are given")
    min_value: int = Field(1, ge=1, le=10_000, description="smallest given number")
    max_value: int = Field(100, ge=1, le=10_000, description="largest given number")
    max_target: int = Field(1000, ge=1, le=10**9, description="largest target (targets are positive integers)")
    operators: str = Field("+-*/", description="operators allowed, a subset of '+-*/'")
    use_all: bool = Field(False, description="the generated solution uses every number (answers may still use fewer)")

    _ops = field_validator("operators")(classmethod(lambda cls, v: _check_ops(v)))

    @model_validator(mode="after")
    def _ranges(self) -> "CountdownConfig":
        if self.min_value > self.max_value:
            raise ValueError(f"min_value ({self.min_value}) must be <= max_value ({self.max_value})")
        return self


class MathConfig(TaskBase):
    """Problems with reference answers from a local JSONL/Parquet file or a Hugging Face dataset.

    With neither `path` nor `dataset`, the small sample shipped with rlx is used (for tests).
    """

    name: Literal["math"] = Field("math", description="task kind")
    path: str | None = Field(None, description="local .jsonl or .parquet file with one problem per row")
    dataset: str | None = Field(None, description="Hugging Face datasets name (or local dataset dir) instead of path")
    dataset_config: str | None = Field(None, description="dataset configuration name, if the dataset has several")
    split: str = Field("train", description="dataset split to read")
    heldout_split: str | None = Field(None, description="dataset split used as held-out set instead of a hash bucket")
    question_field: str = Field("question", min_length=1, description="field holding the problem text")
    answer_field: str = Field("answer", min_length=1, description="field holding the reference answer")
    verifier: Literal["math_verify", "numeric"] = Field("math_verify", description="answer equivalence check")

    @field_validator("path")
    @classmethod
    def _path_exists(cls, v: str | None) -> str | None:
        if v is None:
            return v
        p = Path(v)
        if not p.is_file():
            raise ValueError(f"file not found: {v}")
        if p.suffix not in (".jsonl", ".parquet"):
            raise ValueError("must be a .jsonl or .parquet file")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "MathConfig":
        if self.path is not None and self.dataset is not None:
            raise ValueError("set either path or dataset, not both")
        if self.heldout_split is not None and self.dataset is None:
            raise ValueError("heldout_split needs dataset")
        return self


class CodeConfig(MathConfig):
    """Programming problems verified by running the program in the sandbox against tests."""

    name: Literal["code"] = Field("code", description="task kind")  # type: ignore[assignment]
    answer_field: str = Field("tests", min_length=1, description="field holding the tests: [stdin, stdout] pairs "
                              "(the program reads stdin) or assert statements (run after the program)")
    timeout_seconds: float = Field(5.0, gt=0, le=600, description="wall-clock limit of one sandboxed test run")
    memory_mb: int = Field(512, ge=16, le=65536, description="address-space limit of one sandboxed test run")


class SSLConfig(TaskBase):
    """Self-supervised pretext tasks made from unlabeled arithmetic equations (paper ssl4rl)."""

    name: Literal["ssl"] = Field("ssl", description="task kind")
    pretext: Literal["masked_digit", "reversed"] = Field(
        "masked_digit", description="masked_digit: recover the digit hidden by '?' in 'a op b=c'; "
        "reversed: say whether the equation text is written backwards (1) or not (0)")
    source: ArithmeticConfig = Field(default_factory=ArithmeticConfig, description="the equations the pretexts are made from")


LeafTaskConfig = Annotated[Union[ArithmeticConfig, CountdownConfig, MathConfig, CodeConfig, SSLConfig],
                          Field(discriminator="name")]


class MixtureConfig(TaskBase):
    """Several tasks trained together; each step's prompts are split among them by weights that are
    fixed or adapted online (paper recap). Held-out evaluation uses the first task (the target)."""

    name: Literal["mixture"] = Field("mixture", description="task kind")
    tasks: list[LeafTaskConfig] = Field(min_length=2, description="the tasks; the first is the evaluation target")
    weights: list[float] | None = Field(None, description="initial sampling weights (None: equal)")
    reweight: Literal["fixed", "recap"] = Field(
        "fixed", description="fixed: keep the weights; recap: move weight to objectives whose recent reward is "
        "low or volatile, away from saturated ones (rlx.tasks.mixture.recap_weights)")
    window: int = Field(10, ge=2, description="recap: steps of reward history per task")
    temperature: float = Field(0.5, gt=0, description="recap: softmax temperature of the task scores")
    floor: float = Field(0.1, ge=0, lt=1, description="recap: share mixed in uniformly so no task starves")

    @model_validator(mode="after")
    def _weights(self) -> "MixtureConfig":
        if self.weights is not None and (len(self.weights) != len(self.tasks) or min(self.weights) < 0
                                         or sum(self.weights) <= 0):
            raise ValueError(f"weights must be {len(self.tasks)} non-negative numbers with a positive sum")
        return self


TaskConfig = Annotated[Union[ArithmeticConfig, CountdownConfig, MathConfig, CodeConfig, SSLConfig, MixtureConfig],
                       Field(discriminator="name")]


class _TaskSection(Section):
    task: TaskConfig


def load_task_config(data: str | dict[str, Any]) -> TaskBase:
    """A task config from a bare name (`"countdown"`, e.g. `rlx eval --task countdown`) or a dict.

    Errors are one-line ConfigErrors naming the field (`task.<name>.<field>`).
    """
    if isinstance(data, str):
        data = {"name": data}
    return build_config(_TaskSection, {"task": data}).task
