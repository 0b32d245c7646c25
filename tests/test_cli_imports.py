"""The ``miras`` command line starts without torch: importing :mod:`miras.cli`, every ``--help`` and
``miras validate`` (which loads torch only to size models for ``model.match``)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import miras.cli
from miras.cli import build_parser, main

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
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


def test_list_does_not_import_torch() -> None:
    done = subprocess.run([sys.executable, "-c", WRAPPER, "list"], capture_output=True, text=True)
    *listing, imported = done.stdout.strip().splitlines()
    assert any(line.startswith("presets (") for line in listing), done.stderr
    assert imported == "[]", f"miras list imported {imported}"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_validate_imports_torch_only_to_match_widths(config: Path) -> None:
    done = subprocess.run([sys.executable, "-c", WRAPPER, "validate", str(config)], capture_output=True, text=True)
    *listing, imported = done.stdout.strip().splitlines()
    assert listing and listing[0].startswith(f"OK {config}"), done.stderr
    matches = "match" in (yaml.safe_load(config.read_text()).get("model") or {})
    assert imported == ("['torch']" if matches else "[]"), f"miras validate {config.name} imported {imported}"


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
