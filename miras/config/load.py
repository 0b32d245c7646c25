"""Read a sweep YAML file and validate all of it, collecting every problem before raising."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from .errors import ConfigError, Problem, pydantic_problems
from .schema import ModelConfig, Section, SpaceConfig, SweepConfig

S = TypeVar("S", bound=Section)


class _Loader(yaml.SafeLoader):
    """A safe loader that records duplicate keys (plain YAML keeps the last one silently)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

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


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate the sweep config at ``path``; raises :class:`ConfigError` listing every problem.

    Relative paths inside the file (a text source, a sqlite tracking URI) are made absolute
    against the file's folder.
    """
    path = Path(path)
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
    return validate_config(data, base_dir=path.parent, problems=problems)


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
    if mark is None:
        return f"not valid YAML: {problem}"
    return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


__all__ = ["load_config", "validate_config"]
