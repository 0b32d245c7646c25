"""Fixtures of the config tests: write a YAML file, and run ``miras validate`` on it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from miras.cli import main


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    """Write (dedented) YAML text to a file in ``tmp_path`` and return its path."""

    def _write(text: str, name: str = "sweep.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return _write


@pytest.fixture
def validate(capsys: pytest.CaptureFixture[str]) -> Callable[[Path], tuple[int, str, list[str]]]:
    """Run ``miras validate PATH``: the exit code, stdout, and the problem lines of stderr."""

    def _validate(path: Path) -> tuple[int, str, list[str]]:
        code = main(["validate", str(path)])
        out, err = capsys.readouterr()
        lines = err.splitlines()
        if lines and lines[0] == f"{path}: invalid config":
            lines = lines[1:]
        return code, out, lines

    return _validate
