"""Without an optional extra, the rest of miras imports and the commands that need it name it."""

from __future__ import annotations

import importlib
import sys

import pytest

from miras.cli import main


def _without(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make ``module`` unimportable and forget every miras module that imported it."""
    monkeypatch.setitem(sys.modules, module, None)
    for name in [name for name in sys.modules if name.startswith(("miras.hf", "miras.evaluation.harness"))]:
        monkeypatch.delitem(sys.modules, name)


def test_without_transformers_the_hf_package_and_both_commands_name_the_extra(tmp_path, monkeypatch, capsys):
    _without(monkeypatch, "transformers")
    with pytest.raises(ImportError, match=r"pip install 'miras\[hf\]'"):
        importlib.import_module("miras.hf")
    importlib.import_module("miras.models")
    importlib.import_module("miras.evaluation.cloze")
    assert main(["export", "some-sweep", "some-trial", "--out", str(tmp_path / "x")]) == 2
    assert "pip install 'miras[hf]'" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--tasks", "miras_shakespeare_cloze"]) == 2
    assert "'miras[hf]'" in capsys.readouterr().err


def test_without_lm_eval_miras_eval_names_its_extra(tmp_path, monkeypatch, capsys):
    _without(monkeypatch, "lm_eval")
    assert main(["eval", str(tmp_path), "--tasks", "miras_shakespeare_cloze"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'miras[eval]'" in err and "miras[hf]" not in err
