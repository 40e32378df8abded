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

__all__ = ["TaskBase", "ArithmeticConfig", "CountdownConfig", "MathConfig", "SSLConfig", "StealthConfig", "VideoConfig", "RLPTConfig", "MixtureConfig", "CodeConfig", "TaskConfig",
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
        if self.train_pool is not None:  # a dataset task trains on its rows: a pool would be silently ignored
            raise ValueError("train_pool is for generator tasks (arithmetic, countdown, ...); a dataset task "
                             "trains on its rows: to train on a few, give a file with those rows")
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

    @model_validator(mode="after")
    def _unspaced(self) -> "SSLConfig":
        if self.source.spaced:
            raise ValueError("source.spaced must be false (the pretexts are built character by character from "
                             "unspaced equations)")
        return self


class VideoConfig(TaskBase):
    """Synthetic long-"video" QA: temporal questions over a seeded sequence of frames (paper longvideo)."""

    name: Literal["video"] = Field("video", description="task kind")
    frames: int = Field(16, ge=2, le=4096, description="frames per video (the video's length)")
    events: int = Field(4, ge=2, le=26, description="size of the event alphabet: each frame shows one of the "
                        "first `events` letters a, b, c, ...")
    frame_tokens: int = Field(1, ge=1, le=8, description="characters per frame: the event letter, then "
                              "frame_tokens - 1 scene digits that no question asks about")
    questions: list[Literal["count", "after", "order"]] = Field(
        default_factory=lambda: ["count", "after", "order"], min_length=1,
        description="question kinds, drawn uniformly: count (how often an event occurs), after (the event "
        "right after the first occurrence of one), order (which of two events occurs first)")
    cot: bool = Field(True, description="reference completions carry a short chain of thought before '=answer' "
                      "(the CoT-SFT stage); False: the bare answer")

    @field_validator("questions")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("must not repeat a question kind")
        return v


class RLPTConfig(TaskBase):
    """Next-segment reasoning on an unlabeled corpus of true equations (paper rlpt)."""

    name: Literal["rlpt"] = Field("rlpt", description="task kind")
    mode: Literal["asr", "msr"] = Field(
        "asr", description="asr: predict the next segment from the text before it; msr: predict a masked "
        "middle segment ('?') from the text before and after it")
    judge: Literal["exact", "consistent"] = Field(
        "exact", description="exact: the prediction is the true segment verbatim; consistent: put in its place "
        "it yields a true equation (stand-in for the paper's generative judge)")
    targets: Literal["any", "operands"] = Field(
        "any", description="segments that may be cut out: any number (operands and the value), or operands only")
    source: ArithmeticConfig = Field(default_factory=ArithmeticConfig, description="the generator of the corpus "
                                     "(its held-out problems never enter the corpus)")

    @model_validator(mode="after")
    def _cuttable(self) -> "RLPTConfig":
        if self.source.spaced:
            raise ValueError("source.spaced must be false (segments are cut from unspaced text)")
        if self.mode == "asr" and self.targets == "operands" and self.source.min_operands < 2:
            raise ValueError("asr with targets=operands needs source.min_operands >= 2 (a later operand to predict)")
        return self


class StealthConfig(TaskBase):
    """Paraphrase attacks on AI-text detectors (paper stealthrl): rewrite a machine-style statement of a
    true equation so that it keeps its meaning and evades an ensemble of detectors."""

    name: Literal["stealth"] = Field("stealth", description="task kind")
    min_value: int = Field(10, ge=0, le=10**6, description="smallest addend a, b of the stated relation a + b = c")
    max_value: int = Field(49, ge=0, le=10**6, description="largest addend a, b (49: every number has 2 digits)")
    human_space_prob: float = Field(0.8, ge=0, le=1, description="human style: chance of a space at each of the "
                                    "4 places beside the two symbols (forms uniform over the 8)")
    reference_space_prob: float = Field(0.1, ge=0, le=1, description="warm-start paraphrases (reference "
                                        "completions, the SFT stage): the same chance; forms uniform")
    train_detectors: list[Literal["classifier", "curvature", "binoculars"]] = Field(
        default_factory=lambda: ["classifier", "curvature"], min_length=1,
        description="detectors in the reward; the others are held out (evaluation only)")
    lm_texts: int = Field(2000, ge=10, le=10**6, description="corpus size of each scoring LM (the curvature "
                          "scorer = Binoculars observer, and the performer, trained on different draws)")
    lm_machine_share: float = Field(0.9, ge=0, le=1, description="share of machine-style texts in the scoring "
                                    "LMs' corpus (the rest human-style)")
    lm_order: int = Field(4, ge=1, le=12, description="order of the scoring LMs (char n-gram LMs: order-1 "
                          "characters of context)")
    fit_texts: int = Field(1000, ge=10, le=10**6, description="human and as many machine texts fit the classifier")
    calibration_texts: int = Field(1000, ge=10, le=10**6, description="fresh human texts: thresholds and the "
                                   "reference distribution of the evasion reward")
    target_fpr: float = Field(0.01, gt=0, lt=0.5, description="false-positive rate of the calibrated thresholds")
    detector_seed: int = Field(0, ge=0, description="seed of the detectors' training and calibration texts")
    ensemble: Literal["min", "mean"] = Field("min", description="evasion of the training ensemble: min (the "
                                             "least-evaded detector) or mean of the detectors' evasions")
    combine: Literal["gate", "weighted"] = Field("gate", description="gate: r = 1[preserved] * (w + (1 - w) * "
                                                 "evasion); weighted: r = w * 1[preserved] + (1 - w) * evasion")
    preserve_weight: float = Field(0.3, ge=0, le=1, description="w: the reward's weight on keeping the meaning")
    ngram: int = Field(3, ge=1, le=6, description="classifier: longest character n-gram")
    classifier_steps: int = Field(300, ge=1, le=100_000, description="classifier: full-batch Adam steps")

    @model_validator(mode="after")
    def _consistent(self) -> "StealthConfig":
        if self.min_value > self.max_value:
            raise ValueError(f"min_value ({self.min_value}) must be <= max_value ({self.max_value})")
        if len(set(self.train_detectors)) != len(self.train_detectors):
            raise ValueError("train_detectors must not repeat a detector")
        if self.answer_format != "plain":
            raise ValueError("answer_format must be plain (the whole completion is the paraphrase)")
        return self


LeafTaskConfig = Annotated[Union[ArithmeticConfig, CountdownConfig, MathConfig, CodeConfig, SSLConfig, VideoConfig, RLPTConfig, StealthConfig],
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

    @model_validator(mode="after")
    def _one_heldout_split(self) -> "MixtureConfig":
        """A task (or an ssl/rlpt task's source) drawing from the same problems as the target must hold out the
        same bucket: with another heldout_fraction it would train on the target's held-out problems."""
        def splits(t):  # (problem namespace, its held-out fraction, the field's path) a leaf draws from
            src = getattr(t, "source", None)
            return [(t.name, t.heldout_fraction, "heldout_fraction")] + \
                ([(src.name, src.heldout_fraction, "source.heldout_fraction")] if src is not None else [])
        target = {ns: f for ns, f, _ in splits(self.tasks[0])}
        for i, t in enumerate(self.tasks[1:], 1):
            for ns, f, path in splits(t):
                if ns in target and f != target[ns]:
                    raise ValueError(f"tasks[{i}].{path} = {f}, but the target (tasks[0]) holds out {target[ns]} of "
                                     f"the same {ns} problems: set them equal, or tasks[{i}] trains on held-out ones")
        return self


TaskConfig = Annotated[Union[ArithmeticConfig, CountdownConfig, MathConfig, CodeConfig, SSLConfig, VideoConfig, RLPTConfig, StealthConfig, MixtureConfig],
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
