"""The ``miras`` command line: ``miras list`` and ``miras validate``.

Exit codes: 0 success, 2 user error (bad arguments, invalid config), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from pydantic.fields import FieldInfo

from .space import AXES, BASELINES, PRESETS, REGISTRIES, Option, RegistryError

LISTABLE = (*AXES, "presets")


def _type_name(field: FieldInfo) -> str:
    annotation = field.annotation
    args = getattr(annotation, "__args__", None)
    if getattr(annotation, "__origin__", None) is not None and args and all(isinstance(a, str) for a in args):
        return "|".join(args)  # Literal[...]
    return getattr(annotation, "__name__", str(annotation))


def _format_option(option: Option) -> list[str]:
    lines = [f"  {option.name:<16} {option.shorthand:<6} [{option.origin}]  {option.description}"]
    for name, field in option.params.model_fields.items():
        default: Any = field.default
        lines.append(f"      {name}: {_type_name(field)} = {default!r}  {field.description or ''}".rstrip())
    return lines


def _format_axis(axis: str) -> list[str]:
    options = list(REGISTRIES[axis])
    lines = [f"{axis} ({len(options)} options)"]
    for option in options:
        lines += _format_option(option)
    return lines


def _format_presets() -> list[str]:
    lines = [f"presets ({len(PRESETS)} Miras models, {len(BASELINES)} attention baselines)"]
    for preset in PRESETS.values():
        hybrid = f" + SWA({preset.swa_window})" if preset.hybrid else ""
        lines.append(f"  {preset.name:<18} {preset.spec.shorthand()}{hybrid}")
        lines.append(f"      {preset.description}")
    for name, description in BASELINES.items():
        lines.append(f"  {name:<18} baseline\n      {description}")
    return lines


def cmd_list(args: argparse.Namespace) -> int:
    sections = [args.axis] if args.axis else list(LISTABLE)
    blocks = [_format_presets() if s == "presets" else _format_axis(s) for s in sections]
    print("\n\n".join("\n".join(block) for block in blocks))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .config import ConfigError, format_problems, load_config

    status = 0
    for path in args.config:
        try:
            config = load_config(path)
        except ConfigError as error:
            print(f"{path}: invalid config\n{format_problems(error.problems)}", file=sys.stderr)
            status = 2
            continue
        combinations = config.combinations()
        print(f"OK {path}: {len(combinations)} combinations x {len(config.seeds)} seeds")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="miras",
        description="Explore the Miras design space: memory x attentional bias x retention x algorithm.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_list = sub.add_parser(
        "list",
        help="list the registered options of each axis (with parameters and origin) and the presets",
        description="List every registered option of an axis with its parameters, defaults and origin "
        "(built-in or the plugin distribution that registered it), or the presets.",
    )
    p_list.add_argument("axis", nargs="?", choices=LISTABLE, help="one axis, or 'presets' (default: all)")
    p_list.set_defaults(func=cmd_list)

    p_validate = sub.add_parser(
        "validate",
        help="check sweep config files without running anything",
        description="Validate sweep YAML files: every problem is printed, one per line, with its field path; "
        "exit code 2 if any file is invalid. Nothing is written.",
    )
    p_validate.add_argument("config", nargs="+", help="sweep YAML file(s)")
    p_validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``miras`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RegistryError as error:  # e.g. a broken plugin
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
