"""The ``miras`` command line starts without torch: importing :mod:`miras.cli` and every ``--help``."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

import miras.cli
from miras.cli import build_parser, main

HEAVY = ("torch", "mlflow", "ray", "matplotlib")
"""Modules that take a second or more to import; none is needed to build the parser."""

# Runs the CLI's main() with the given arguments and prints the heavy modules it imported (argparse
# exits through SystemExit after --help).
WRAPPER = f"""
import sys
from miras.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""


def _subcommands() -> list[str]:
    (sub,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_importing_the_cli_does_not_import_torch() -> None:
    code = "import miras.cli, sys; assert 'torch' not in sys.modules, 'miras.cli imported torch'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_subcommand_is_covered() -> None:
    assert {"list", "validate", "train", "sweep", "report", "bench"} <= set(_subcommands())


@pytest.mark.parametrize("command", [[], *([c] for c in _subcommands())], ids=lambda c: " ".join(c) or "miras")
def test_help_does_not_import_torch(command: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command, "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    *help_text, imported = done.stdout.strip().splitlines()
    assert help_text and "usage: miras" in help_text[0]
    assert imported == "[]", f"miras {' '.join(command)} --help imported {imported}"


def test_spelled_out_names_match_their_sources() -> None:
    from miras.bench import grid
    from miras.bench.command import IMPL_CHOICES
    from miras.space import AXES

    assert miras.cli.AXES == AXES
    assert IMPL_CHOICES == grid.IMPL_CHOICES


def test_bench_presets_are_checked_when_given(capsys: pytest.CaptureFixture[str]) -> None:
    from miras.space import PRESETS

    args = build_parser().parse_args(["bench", "--presets", "titans", "yaad"])
    assert args.presets == ["titans", "yaad"]
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["bench", "--presets", "titans", "nope"])
    assert exit_info.value.code == 2
    choices = ", ".join(map(repr, sorted(PRESETS)))
    assert f"argument --presets: invalid choice: 'nope' (choose from {choices})" in capsys.readouterr().err


def test_registry_errors_are_user_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from miras.space import RegistryError

    def broken(args: argparse.Namespace) -> int:
        raise RegistryError("unknown bias option 'hubr'")

    monkeypatch.setattr(miras.cli, "cmd_list", broken)
    assert main(["list"]) == 2
    assert capsys.readouterr().err == "error: unknown bias option 'hubr'\n"

    def failing(args: argparse.Namespace) -> int:
        raise ValueError("a bug")

    monkeypatch.setattr(miras.cli, "cmd_list", failing)
    with pytest.raises(ValueError, match="a bug"):
        main(["list"])
