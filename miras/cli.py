"""The ``miras`` command line: ``list``, ``validate``, ``train``, ``sweep``, ``report``, ``bench``,
``export`` and ``eval``.

Exit codes: 0 success, 2 user error (bad arguments, invalid config), 1 unexpected failure.

Building the parser imports no torch (``miras --help`` and every subcommand's ``--help`` start in a
fraction of a second): :mod:`miras.space`, the configs, the models and the benchmark load inside
the command that needs them. ``tests/test_cli_imports.py`` keeps it so.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bench.command import register as register_bench
from .eval_command import register as register_eval
from .export_command import register as register_export
from .reports.command import register as register_report
from .search.command import OVERRIDES_HELP, parse_with_overrides
from .search.command import register as register_sweep

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from .space import Option

AXES = ("memory", "bias", "retention", "algorithm")
""":data:`miras.space.AXES`, spelled out so that the parser is built without importing miras.space
(whose option modules import torch); a test checks that the two agree."""
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
    from .space import REGISTRIES

    options = list(REGISTRIES[axis])
    lines = [f"{axis} ({len(options)} options)"]
    for option in options:
        lines += _format_option(option)
    return lines


def _format_presets() -> list[str]:
    from .space import BASELINES, PRESETS

    lines = [f"presets ({len(PRESETS)} Miras models, {len(BASELINES)} attention baselines)"]
    for preset in PRESETS.values():
        hybrid = f" + SWA({preset.swa_window})" if preset.hybrid else ""
        gates = ", ".join(f"{name}={kind}" for name, kind in preset.gates.items())
        lines.append(f"  {preset.name:<18} {preset.spec.shorthand()}{hybrid}  gates: {gates or 'data'}")
        lines.append(f"      {preset.description}")
    for name, description in BASELINES.items():
        lines.append(f"  {name:<18} baseline\n      {description}")
    return lines


def cmd_list(args: argparse.Namespace) -> int:
    from .space import PLUGIN_FAILURES

    sections = [args.axis] if args.axis else list(LISTABLE)
    blocks = [_format_presets() if s == "presets" else _format_axis(s) for s in sections]
    print("\n\n".join("\n".join(block) for block in blocks))
    for failure in PLUGIN_FAILURES.values():
        print(f"warning: {failure}", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .config import ConfigError, format_problems, load_config

    paths = [a for a in args.config if "=" not in a or Path(a).exists()]
    overrides = [a for a in args.config if a not in paths]
    status = 0
    for path in paths:
        from .search.plan import Plan

        try:
            config = load_config(path, overrides)
            plan = Plan(config)
        except ConfigError as error:
            print(f"{path}: invalid config\n{format_problems(error.problems)}", file=sys.stderr)
            status = 2
            continue
        print(f"OK {path}: {plan.describe()}")
        print("  combinations (miras train --combination): " + _combination_listing(config))
    return status


class UsageError(Exception):
    """A command-line choice that does not fit the config (exit code 2)."""


def _pick_combination(config: Any, wanted: str | None) -> tuple[str, Any]:
    combinations = config.combinations()
    if wanted is None:
        return combinations[0]
    for index, (label, model) in enumerate(combinations):
        if wanted in (label, str(index)):
            return label, model
    raise UsageError(f"no combination {wanted!r} in this config; choose one of: {_combination_listing(config)}")


def _combination_listing(config: Any) -> str:
    """``0=transformer, 1=lin-dot-none-gd``: the index and label of every combination."""
    return ", ".join(f"{i}={label}" for i, (label, _) in enumerate(config.combinations()))


def cmd_train(args: argparse.Namespace) -> int:
    import json

    from .config import ConfigError, format_problems, load_config
    from .runners.trial import run_trial
    from .search.plan import Cell, Plan

    try:
        config = load_config(args.config, args.overrides)
        plan = Plan(config)
    except ConfigError as error:
        print(f"{args.config}: invalid config\n{format_problems(error.problems)}", file=sys.stderr)
        return 2
    label, model = _pick_combination(config, args.combination)
    seed = config.seeds[0] if args.seed is None else args.seed
    widths = [plan.matched[label].d_model] if plan.matched else config.model.widths
    width = widths[0] if args.d_model is None else args.d_model
    if width not in widths:
        what = f"the width model.match chose for {label}" if plan.matched else "this config's model.d_model"
        raise UsageError(f"--d-model {width} is not in {what} {widths}")
    lr = config.training.lr if args.lr is None else args.lr
    trial = plan.settings(Cell(label, model, width, seed), lr, {}).trial_config(
        config.task,
        seed=seed,
        workdir=args.workdir,
        device=args.device,
        **({"cache_dir": args.cache_dir} if args.cache_dir else {}),
    )
    print(f"training {label} (seed {seed}) on {config.task.name}", file=sys.stderr)

    def report(step: int, metrics: dict[str, float]) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        print(f"step {step}: {shown}", file=sys.stderr)

    try:
        result = run_trial(trial, on_eval=report)
    except KeyboardInterrupt:
        every = config.training.checkpoint_every
        if args.workdir is None or every is None:
            saved = "nothing was saved (give --workdir, and training.checkpoint_every, to resume a trial)"
        else:
            saved = f"checkpoints every {every} steps are in {args.workdir}: rerun the same command to resume"
        print(f"interrupted: {saved}", file=sys.stderr)
        return 130
    summary = {k: v for k, v in result.to_dict().items() if k not in ("losses", "history")}
    summary["final"] = result.final
    print(json.dumps(summary, indent=2, default=str))
    return 0 if result.status == "finished" else 1


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
    p_validate.add_argument(
        "config",
        nargs="+",
        metavar="CONFIG_OR_KEY=VALUE",
        help="sweep YAML file(s), then overrides applied to each: " + OVERRIDES_HELP,
    )
    p_validate.set_defaults(func=cmd_validate)

    p_train = sub.add_parser(
        "train",
        help="train one combination of a sweep config (no Ray), printing metrics at every evaluation",
        description="Run one trial of a sweep config: one combination, one seed. Checkpoints go to --workdir, "
        "and rerunning with the same --workdir resumes. Prints a JSON summary; exit code 1 if the trial "
        "did not finish (diverged, oom, failed), 2 for an invalid config.",
    )
    p_train.add_argument("config", help="sweep YAML file")
    p_train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    p_train.add_argument("--combination", help="label (as `miras validate` lists) or index; default: the first")
    p_train.add_argument("--seed", type=int, help="default: the config's first seed")
    p_train.add_argument("--d-model", type=int, help="one width of a model.d_model ladder; default: the first")
    p_train.add_argument("--lr", type=float, help="peak learning rate; default: training.lr")
    p_train.add_argument("--workdir", type=Path, help="checkpoint folder (resumes from it)")
    p_train.add_argument("--cache-dir", type=Path, help="data and tokenizer caches; default: ~/.cache/miras")
    p_train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    p_train.set_defaults(func=cmd_train)

    register_sweep(sub)
    register_report(sub)
    register_bench(sub)
    register_export(sub)
    register_eval(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``miras`` console script; returns the exit code."""
    parser = build_parser()
    args = parse_with_overrides(parser, argv)
    try:
        return args.func(args)
    except Exception as error:  # a RegistryError (e.g. a broken plugin), a combination not in the config
        if not _user_error(error):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


def _user_error(error: Exception) -> bool:
    """A :class:`UsageError`, or a :class:`miras.space.RegistryError`: one can only have been raised
    once its module was imported, so it is looked up in ``sys.modules`` instead of imported here."""
    registry = sys.modules.get("miras.space.registry")
    return isinstance(error, UsageError) or (registry is not None and isinstance(error, registry.RegistryError))


if __name__ == "__main__":
    sys.exit(main())
