"""``write_report`` and ``miras report``: valid HTML with embedded PNGs, CSV tables, artifacts in MLflow."""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from sweep_store import ABLATION, BROKEN, SCALING

from miras.analysis import Sweep, default_tracking_uri
from miras.reports import write_report
from miras.reports.command import register
from miras.reports.sections import interval_notes
from miras.reports.style import combination_styles

PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Collects the image sources and checks that every opened tag of a few kinds is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        elif tag in ("html", "body", "table", "figure", "ul"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("html", "body", "table", "figure", "ul"):
            assert self.open.pop() == tag


def _rows(path: Path) -> int:
    return len(pd.read_csv(path))


def test_ablation_report(store: str, ablation: Sweep, out_dir: Path) -> None:
    report = write_report(ABLATION, store, out_dir)
    page = Page()
    page.feed(report.html.read_text())
    page.close()
    assert not page.open
    assert len(page.images) == len(report.figures) >= 6
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    for figure in report.figures:
        data = figure.read_bytes()
        assert data.startswith(PNG) and len(data) > 1000
    names = {p.name for p in report.figures}
    assert {"summary.png", "effects.png", "curves.png", "frontier_state_size.png", "pareto_throughput.png"} <= names
    assert "scaling_params.png" not in names
    assert any("parameters" in note for note in report.skipped)  # skipped, and said so

    tables = report.folder / "tables"
    assert _rows(tables / "ranking.csv") == 9 and _rows(tables / "summary.csv") == 9
    assert _rows(tables / "effects.csv") == 3 and _rows(tables / "failures.csv") == 3
    assert _rows(tables / "trials.csv") == len(ablation.trials)
    assert _rows(tables / "interaction_memory_retention.csv") == 2
    markdown = report.markdown.read_text()
    assert "CUDA out of memory" in markdown and "No paper setting is reproduced" in markdown
    assert "## Figures not drawn" in markdown

    client = MlflowClient(store)
    logged = {a.path for a in client.list_artifacts(ablation.parent_run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/figures", "report/tables"} <= logged
    assert len(client.list_artifacts(ablation.parent_run_id, "report/figures")) == len(report.figures)


def test_report_of_a_sweep_where_everything_failed(store: str, out_dir: Path) -> None:
    report = write_report(BROKEN, store, out_dir, log=False)
    assert _rows(report.folder / "tables" / "failures.csv") == 2
    assert pd.read_csv(report.folder / "tables" / "ranking.csv")["n"].tolist() == [0]
    assert report.figures == [] and "ValueError: x" in report.markdown.read_text()


def test_styles_are_stable_and_distinct() -> None:
    styles = combination_styles(["zeta-grid", "moneta", "transformer", "deltanet"])
    assert styles == combination_styles(["deltanet", "transformer", "moneta", "zeta-grid"])
    assert len({s.color for s in styles.values()}) == 4
    many = combination_styles([f"c{i}" for i in range(12)])
    assert len({(s.color, s.marker) for s in many.values()}) == 12


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="miras")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *argv])
    return args.func(args)


def test_cli_and_scaling_report(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert _cli("nope") == 2
    assert "pass --tracking-uri. There is no sweep in runs/." in capsys.readouterr().err
    assert _cli("nope", "--tracking-uri", store, "--no-log") == 2
    assert "no sweep named 'nope'" in capsys.readouterr().err

    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "runs" / "demo" / "mlflow.db").touch()
    assert default_tracking_uri("demo") == f"sqlite:///{tmp_path / 'runs' / 'demo' / 'mlflow.db'}"
    assert _cli("nope") == 2
    assert "Sweeps in runs/: demo" in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    assert default_tracking_uri(SCALING) == store
    assert _cli(SCALING, "--no-log") == 0
    assert "wrote" in capsys.readouterr().out
    folder = tmp_path / "reports" / SCALING
    assert {"scaling_d_model.png", "scaling_params.png", "scaling_flops.png"} <= {
        p.name for p in (folder / "figures").iterdir()
    }
    assert _rows(folder / "tables" / "scaling_params.csv") == 2
    assert not (folder / "tables" / "effects.csv").exists()
    assert "Every trial finished" in (folder / "report.md").read_text()


def test_registering_the_command_stays_light() -> None:
    code = "import sys, miras.reports.command; print(sorted({'mlflow', 'matplotlib'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_report_says_why_an_interval_is_missing_or_cut() -> None:
    summary = pd.DataFrame(
        {
            "combination": ["a", "b", "c", "d"],
            "n": [3, 3, 2, 3],
            "ci_note": ["high clipped at 1", "", "too few seeds (n = 2)", "all seeds equal"],
        }
    )
    (note,) = interval_notes(summary, summary["combination"], "best_test_accuracy", "seeds")
    assert "The intervals of `a` are cut at the range of best test accuracy (fraction correct), [0, 1]" in note.text
    assert "resolved with n = 3 seeds" in note.text
    assert "No interval for `c`: fewer than 3 seeds" in note.text
    assert "No interval for `d`: all seeds gave the same value" in note.text and "not certainty" in note.text
    assert interval_notes(summary.iloc[1:2], summary["combination"].iloc[1:2], "best_test_accuracy", "seeds") == []
