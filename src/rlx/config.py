"""Typed, validated configs: YAML <-> config one to one, dotted overrides on the command line.

Every config is a tree of `Section`s (pydantic models that forbid unknown keys). A recipe is a
YAML file whose top-level `kind` names the trainer (`sft`, `rlvr`, `pqn`, ...); the rest maps one
to one onto that trainer's config class. Errors are one line that names the field, the value and
what was expected:

    config error: train.optim.lr = -1: Input should be greater than 0

Usage:
    from rlx.train.rlvr_config import Config
    cfg = load_config("recipes/arith_grpo.yaml", ["train.optim.lr=3e-5"], Config)
    text = dump_yaml(cfg)            # fully resolved; load_config of it gives cfg back
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "Section",
    "ConfigError",
    "read_yaml",
    "apply_overrides",
    "build_config",
    "load_config",
    "dump_yaml",
    "recipe_kind",
]


class Section(BaseModel):
    """Base of every config section: unknown keys fail, values are validated on construction."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), validate_default=True)


class ConfigError(ValueError):
    """A bad recipe or override. The message is one line meant for the user."""


C = TypeVar("C", bound=BaseModel)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false (any case) are bools, so `level: off` or
    `mode: no` stay strings, as recipe authors mean them (YAML 1.1 reads on/off/yes/no as bools).
    A key given twice in one mapping is an error (YAML loaders silently keep the last one)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: merged keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (lines {seen[key] + 1} and "
                    f"{key_node.start_mark.line + 1}); the first would be ignored", key_node.start_mark)
            if isinstance(key, str):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
                                   for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a recipe file into a dict; a missing or malformed file is a ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config error: recipe file not found: {p}")
    try:
        data = _load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config error: {p} is not valid YAML{where}: {what}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config error: {p} must hold a mapping at the top level, got {type(data).__name__}")
    return data


def _parse_value(text: str) -> Any:
    """YAML scalar, except that numbers YAML 1.1 misses (`3e-5`) are floats, as users mean them.
    A quoted value stays a string (`model.path="7"` is the directory 7, not the number)."""
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        try:
            value = _load(stripped)
        except yaml.YAMLError:
            return stripped[1:-1]
        return value if isinstance(value, str) else stripped[1:-1]
    if _PLAIN_NUMBER.fullmatch(stripped):  # decimal as written: YAML 1.1 reads 010 as 8 and 1:20 as 80
        return int(stripped) if _PLAIN_INT.fullmatch(stripped) else float(stripped)
    try:
        value = _load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, (list, dict)) and not stripped.startswith(("[", "{")):
        return text  # `-` is not a one-item list of null: the user wrote a string
    if value is None and stripped not in ("", "~", "null", "Null", "NULL"):
        return text  # `#a` is not a YAML comment here
    if isinstance(value, int) and not isinstance(value, bool) and not _PLAIN_INT.fullmatch(stripped):
        return text  # 0o10, 1:20, 1_000, 0x1F: YAML 1.1 integer forms nobody means on a command line
    return value


_PLAIN_INT = re.compile(r"[+-]?\d+")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `data` with `a.b.c=value` overrides applied (values parsed as YAML).

    Unknown keys are not caught here but by validation, so the error names the full dotted path.
    """
    out = _deep_copy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"config error: override {item!r} must look like section.field=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"config error: override key {key!r} is not a dotted field name")
        node = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):  # `task.tasks.0.max_value=5`: an index into a list
                if not re.fullmatch(r"-?\d+", part) or not -len(node) <= int(part) < len(node):
                    raise ConfigError(f"config error: {key}: {'.'.join(parts[:i]) or part} is a list of "
                                      f"{len(node)}; {part!r} is not an index of it")
                part = int(part)
            elif not isinstance(node, dict):
                raise ConfigError(f"config error: {key}: {parts[i - 1]} is a value, not a section")
            if last:
                node[part] = _parse_value(value)
            else:
                child = node[part] if isinstance(node, list) else node.get(part)
                if child is None:
                    child = {}
                    node[part] = child
                node = child
    return out


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def _lookup(data: Any, loc: tuple) -> Any:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return "<missing>"
    return node


def _clean_loc(data: Any, loc: tuple) -> tuple:
    """Drop the parts pydantic adds that are not keys (union tags like 'arithmetic', validator names)."""
    out, node = [], data
    for part in loc:
        if isinstance(part, str) and part.startswith("function-"):
            continue
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and part in (node.get("name"), node.get("kind")):
            continue  # discriminated-union tag
        else:
            out.append(part)
            node = None
    return tuple(out)


def _format_errors(err: ValidationError, data: dict[str, Any], suggest=lambda loc: "") -> str:
    lines = []
    for e in err.errors():
        loc = _clean_loc(data, tuple(e["loc"]))
        field = ".".join(str(p) for p in loc) or "<root>"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "value_error" and loc and isinstance(_lookup(data, loc), dict):
            lines.append(f"config error: {field}: {msg}")
        elif not loc:
            lines.append(f"config error: {msg}")
        elif e["type"] == "extra_forbidden":
            lines.append(f"config error: unknown key {field!r}{suggest(loc) or ' (check the spelling; see the recipe docs)'}")
        elif e["type"] == "missing":
            lines.append(f"config error: {field} is required")
        else:
            value = _lookup(data, loc)
            lines.append(f"config error: {field} = {value!r}: {msg}")
    return "\n".join(lines)


def build_config(cls: type[C], data: dict[str, Any]) -> C:
    """Validate `data` into `cls`; a failure is a ConfigError naming each bad field."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, data, lambda loc, err=e: _suggest(cls, data, err, loc))) from None


def _suggest(cls: type[BaseModel], data: dict[str, Any], err: ValidationError, loc: tuple) -> str:
    """' (did you mean 'train.optim.lr'?)' for an unknown key: the closest field paths of the config that
    validates once the unknown keys are dropped ('' when it does not validate or nothing is close)."""
    import difflib

    unknown = [_clean_loc(data, tuple(x["loc"])) for x in err.errors() if x["type"] == "extra_forbidden"]
    trimmed = _deep_copy(data)
    for path in unknown:
        node = trimmed
        for part in path[:-1]:
            node = node[part] if isinstance(node, (dict, list)) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    try:
        fields = list(flatten(cls.model_validate(trimmed).model_dump(mode="json")))
    except ValidationError:
        return ""
    key = ".".join(str(p) for p in loc)
    parent, _, name = key.rpartition(".")
    siblings = {f.rpartition(".")[2]: f for f in fields if f.rpartition(".")[0] == parent}
    close = [siblings[n] for n in difflib.get_close_matches(name, list(siblings), n=1, cutoff=0.75)]  # a typo
    close += [f for f in fields if f.rpartition(".")[2] == name]  # the right name in another section
    close = close or difflib.get_close_matches(key, fields, n=1, cutoff=0.8)
    close = list(dict.fromkeys(close))[:2]
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b': 1, 'a.c.0.d': 2}: sections and lists of sections (a mixture's `task.tasks.0.x`) spelled out,
    so a field added inside a list item is compared on its own; lists of plain values stay whole."""
    if isinstance(d, list) and d and all(isinstance(x, dict) for x in d):
        d = {str(i): x for i, x in enumerate(d)}
    if not isinstance(d, dict) or not d:
        return {prefix[:-1]: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}."))
    return out


def recipe_kind(data: dict[str, Any], path: str | Path = "recipe") -> str:
    kind = data.get("kind")
    if not isinstance(kind, str):
        if "method" in data:  # a quantization config (recipes/quant_*.yaml)
            raise ConfigError(f"config error: {path} is a quantization config (it has `method`, no `kind`): run "
                              f"`rlx quantize CHECKPOINT --config {path} --out DIR`")
        raise ConfigError(f"config error: {path} needs a top-level `kind` (e.g. kind: rlvr)")
    return kind


def load_config(path: str | Path, overrides: list[str], cls: type[C]) -> C:
    """Read a YAML recipe, apply dotted overrides and validate into `cls`."""
    return build_config(cls, apply_overrides(read_yaml(path), overrides))


def dump_yaml(cfg: BaseModel) -> str:
    """The fully resolved config as YAML; `build_config(type(cfg), yaml.safe_load(text)) == cfg`."""
    buf = io.StringIO()
    yaml.safe_dump(cfg.model_dump(mode="json"), buf, sort_keys=False)
    return buf.getvalue()
