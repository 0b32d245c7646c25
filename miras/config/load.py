"""Read a sweep YAML file and validate all of it, collecting every problem before raising."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from .errors import ConfigError, Problem, pydantic_problems
from .schema import ModelConfig, Section, SpaceConfig, SweepConfig
from .searched import search_problems

S = TypeVar("S", bound=Section)


MAX_DEPTH = 32
"""Deepest nesting of mappings and lists a config may have."""
MAX_NODES = 100_000
"""Most values a config may hold once its aliases are expanded (a "billion laughs" file of 1 KB
expands to 10^10)."""


class _Refused(yaml.composer.ComposerError):
    """Valid YAML this loader will not build (too deep, too large once expanded)."""


class _Loader(yaml.SafeLoader):
    """A safe loader that records duplicate keys (plain YAML keeps the last one silently) and refuses
    nesting deeper than :data:`MAX_DEPTH` or aliases that expand past :data:`MAX_NODES` values."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise _Refused(None, None, f"its aliases expand to more than {MAX_NODES:,} values", node.start_mark)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class reports unhashable keys
            if key in seen:
                self.duplicates.append(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values under ``node`` with every alias expanded, counted without expanding (an alias is the
    anchored node itself, so each distinct node is sized once); stops early past :data:`MAX_NODES`."""
    if id(node) not in sizes:
        children = node.value if isinstance(node, yaml.SequenceNode) else []
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        total = 1
        for child in children:
            total += _expanded_size(child, sizes)
            if total > MAX_NODES:
                break
        sizes[id(node)] = total
    return sizes[id(node)]


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> SweepConfig:
    """Read and validate the sweep config at ``path``; raises :class:`ConfigError` listing every problem.

    ``overrides``: ``key=value`` strings applied to the file's data before validation
    (:func:`apply_overrides`). Relative paths inside the file (a text source, a sqlite tracking
    URI) are made absolute against the file's folder.
    """
    data, problems = _read(Path(path), overrides)
    return validate_config(data, base_dir=Path(path).parent, problems=problems)


def resolved_text(path: str | Path, overrides: Sequence[str] = ()) -> str:
    """The config as a run records it: the file as written, or with ``overrides`` its data with
    them applied, as YAML headed by the command line's overrides. Call after :func:`load_config`."""
    text = Path(path).read_text(encoding="utf-8")
    if not overrides:
        return text
    data, _ = _read(Path(path), overrides)
    header = f"# {path} with overrides: {' '.join(overrides)}\n"
    return header + yaml.safe_dump(data, sort_keys=False)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> list[Problem]:
    """Set each ``key=value`` of ``overrides`` in ``data``, in order: ``key`` a dotted path
    (``training.steps``; missing mappings are created; under ``search.params`` the rest of the path
    is one key, a searched setting: ``search.params.bias.p=[2,3]``), ``value`` parsed as YAML
    (``100``, ``[titans, yaad]``, ``null``). Returns the problems of malformed overrides; the values
    are validated with the rest of the config."""
    problems: list[Problem] = []
    for text in overrides:
        key, sep, raw = text.partition("=")
        parts = key.strip().split(".")
        if parts[:2] == ["search", "params"] and len(parts) > 3:
            parts = [*parts[:2], ".".join(parts[2:])]
        if not sep or not all(parts):
            problems.append((text, "an override is key=value with a dotted key, e.g. training.steps=100"))
            continue
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            problems.append((key, f"override value {raw!r}: {_yaml_message(error)}"))
            continue
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                problems.append((where, f"holds {child!r}, not a mapping: cannot set {key}"))
                break
            node = child
        else:
            node[parts[-1]] = value
    return problems


def _read(path: Path, overrides: Sequence[str]) -> tuple[dict[str, Any], list[Problem]]:
    """The file's data with ``overrides`` applied, and the problems found so far; raises
    :class:`ConfigError` when there is no mapping to validate."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([(where, f"cannot read the file: {getattr(error, 'strerror', None) or error}")]) from None
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as error:
        raise ConfigError([(where, _yaml_message(error))]) from None
    finally:
        loader.dispose()
    problems: list[Problem] = [(where, message) for message in loader.duplicates]
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        problems.append((where, f"expected a mapping of sections (name, task, space, ...), found {found}"))
        raise ConfigError(problems)
    return data, problems + apply_overrides(data, overrides)


def validate_config(data: dict[str, Any], base_dir: str | Path = ".", problems: Sequence[Problem] = ()) -> SweepConfig:
    """Validate an already-parsed config; raises :class:`ConfigError` with ``problems`` plus every new one.

    Sections are checked by pydantic; the space is also checked against the registries and presets
    whenever it is well-formed, even if other sections are not.
    """
    found = list(problems)
    try:
        config = SweepConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as error:
        found += pydantic_problems(error, SweepConfig)
        space, model = _valid(SpaceConfig, data.get("space")), _valid(ModelConfig, data.get("model", {}))
        if space is not None:
            found += space.problems(model.swa_window if model is not None else None)
        raise ConfigError(found) from None
    found += config.problems()
    if not found and config.search is not None:  # searched settings are checked against valid combinations
        architectures = [architecture for _, architecture in config.combinations()]
        found += search_problems(config.search, architectures, {"model": config.model, "training": config.training})
    if found:
        raise ConfigError(found)
    return config


def _valid(section: type[S], data: Any) -> S | None:
    try:
        return section.model_validate(data)
    except ValidationError:
        return None


def _yaml_message(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    what = "refused" if isinstance(error, _Refused) else "not valid YAML"
    if mark is None:
        return f"{what}: {problem}"
    return f"{what} at line {mark.line + 1}, column {mark.column + 1}: {problem}"


__all__ = ["apply_overrides", "load_config", "resolved_text", "validate_config"]
