"""Config problems as ``(field path, message)`` pairs, and their conversion from pydantic errors.

Paths are written as a user reads the YAML: ``space.grid.bias[2]``, ``training.lr``,
``task.num_kv_pairs`` (the tag of a tagged union, such as the task's name, is not a path part).
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError

from ..space.registry import suggest

Problem = tuple[str, str]


class ConfigError(ValueError):
    """An invalid sweep config. ``problems`` holds every ``(field path, message)`` found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(format_problems(problems))


def format_problems(problems: Iterable[Problem]) -> str:
    """One ``path: message`` line per problem (a message never spans lines)."""
    lines = ((path, " ".join(message.split())) for path, message in problems)
    return "\n".join(f"{path}: {message}" if path else message for path, message in lines)


def _join(prefix: str, parts: Iterable[str | int]) -> str:
    """``_join("space", ["grid", "bias", 2])`` -> ``space.grid.bias[2]``."""
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def pydantic_problems(error: ValidationError, root: type[BaseModel], prefix: str = "") -> list[Problem]:
    """Every error of ``error`` (raised while validating ``root``) as a readable problem."""
    return [_problem(item, root, prefix) for item in error.errors()]


def _problem(item: Any, root: type[BaseModel], prefix: str) -> Problem:
    loc = item["loc"]
    kind = item["type"]
    if kind == "extra_forbidden":
        parts, parent = _walk(root, loc[:-1])
        key = str(loc[-1])
        allowed = list(parent.model_fields) if _is_model(parent) else []
        message = f"unknown key {key!r}; allowed keys here: {', '.join(allowed)}{suggest(key, allowed)}"
        return _join(prefix, [*parts, loc[-1]]), message
    parts, here = _walk(root, loc)
    path = _join(prefix, parts)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = [tag for member in _members(here) if (tag := _tag(member)) is not None]
        path += "." + item["ctx"]["discriminator"].strip("'")
        if kind == "union_tag_not_found":
            return path, f"required field missing (one of: {', '.join(tags)})"
        tag = item["ctx"]["tag"]
        return path, f"unknown {loc[-1]} {tag!r}; known: {', '.join(tags)}{suggest(tag, tags)}"
    if kind == "missing":
        return path, "required field missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return path, f"expected a mapping, got {_type_of(item['input'])}"
    if kind == "value_error":
        return path, str(item["ctx"]["error"])
    return path, f"{item['msg']} (got {_show(item['input'])})"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_of(value: Any) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list"}
    return "nothing" if value is None else names.get(type(value), type(value).__name__)


def _walk(root: type[BaseModel], loc: Iterable[str | int]) -> tuple[list[str | int], Any]:
    """The path parts a user sees for ``loc`` (union tags dropped), and the type found there."""
    parts: list[str | int] = []
    here: Any = root
    for part in loc:
        members = [m for m in _members(here) if m is not type(None)]
        if len(members) > 1:  # a tagged union: this part names the member
            here = next((m for m in members if _tag(m) == part), None)
            continue
        here = _unwrap(members[0]) if members else None
        parts.append(part)
        if _is_model(here):
            field = here.model_fields.get(str(part))
            here = field.annotation if field else None
        elif get_origin(here) in (list, tuple, set, frozenset):
            here = get_args(here)[0]
        elif get_origin(here) is dict:
            here = get_args(here)[1]
        else:
            here = None
    return parts, here


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _members(tp: Any) -> list[Any]:
    tp = _unwrap(tp)
    return list(get_args(tp)) if get_origin(tp) in (Union, types.UnionType) else [tp]


def _tag(member: Any) -> str | None:
    """The tag of a union member: an ``Annotated[..., Tag(t)]`` or a model with ``name: Literal[t]``."""
    if get_origin(member) is Annotated:
        for meta in get_args(member)[1:]:
            if isinstance(meta, Tag):
                return meta.tag
    model = _unwrap(member)
    field = model.model_fields.get("name") if _is_model(model) else None
    if field is not None and get_origin(field.annotation) is Literal and len(get_args(field.annotation)) == 1:
        return get_args(field.annotation)[0]
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


__all__ = ["ConfigError", "Problem", "format_problems", "pydantic_problems"]
