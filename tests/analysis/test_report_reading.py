"""The report as a researcher reads it: a header that states the setting, tables that scroll and format each
column one way, links to the table files, interaction tables that keep both axes, LaTeX tables, and a Pareto
front that is drawn as its legend shows it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sweep_store import ABLATION, SCALING

from miras.analysis import Sweep
from miras.reports import Report, write_report
from miras.reports.document import STYLE, format_column, to_latex
from miras.reports.figures import front_path, frontier_figure
from miras.reports.sections import search_lines
from miras.reports.style import combination_styles


@pytest.fixture(scope="module")
def report(store: str, tmp_path_factory: pytest.TempPathFactory) -> Report:
    return write_report(ABLATION, store, tmp_path_factory.mktemp("reading") / "report", log=False)


def _header(markdown: str) -> str:
    return markdown.split("## Ranking")[0]


def test_the_header_states_the_setting(report: Report, store: str, tmp_path: Path) -> None:
    header = _header(report.markdown.read_text())
    assert "task: mqar (as the trials ran: num_kv_pairs 4, seq_len 64, vocab_size 256)" in header
    assert "model (as the trials ran): d_model 32, n_heads 2, n_layers 2" in header
    assert "training (as the trials ran): batch_size 8, steps 100" in header
    assert "size: 10,000 (lin-l2-none-gd) to 20,000 (mlp-l2-none-gd) parameters" in header
    assert "learning rates searched (`search.lr`): 1e-3, 3e-3, each tried for every cell and seed" in header
    scaling = _header(write_report(SCALING, store, tmp_path / "scaling", log=False).markdown.read_text())
    assert "learning rate: 1e-3 (`training.lr`), not searched" in scaling
    assert "size: 12,288 (deltanet, d_model 32) to 196,608 (deltanet, d_model 128) parameters" in scaling


def _searched(config: dict, lrs: list[float]) -> Sweep:
    trials = pd.DataFrame({"combination": "moneta", "seed": 0, "lr": lrs, "status": "finished"})
    empty = pd.DataFrame(columns=["run_id", "combination", "seed", "lr", "metric", "step", "value"])
    return Sweep("s", "p", "0", "sqlite://", "val_loss", "min", trials, empty, config)


def test_the_header_gives_a_searched_range_and_what_was_tried() -> None:
    search = {
        "lr": {"low": 1e-4, "high": 1e-2},
        "params": {"bias.p": {"low": 1, "high": 4}, "retention.q": [2, 4]},
        "trials_per_combination": 3,
        "scheduler": "asha",
    }
    lines = search_lines(_searched({"search": search}, [1.2e-4, 5e-4, 9e-3]))
    assert lines == [
        "learning rates searched (`search.lr`): log-uniform over [1e-4, 1e-2]; tried 3 values, 1.2e-4 to 9e-3; "
        "the best is kept per cell and seed (best-of-LR)",
        "also searched (`search.params`): bias.p uniform over [1, 4]; retention.q 2, 4",
        "search: 3 trials per cell and seed (Optuna TPE); ASHA stops poor trials early",
    ]
    # search.params without search.lr: the learning rate is not searched
    only_params = search_lines(_searched({"search": {"params": {"retention.q": [2, 4]}}}, [2e-3, 2e-3]))
    assert only_params[0] == "learning rate: 2e-3 (`training.lr`), not searched"


class Tables(HTMLParser):
    """Each table's enclosing element classes, and the links."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.parents: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "table":
            self.parents.append(self.stack[-1] if self.stack else "")
        if tag == "a":
            self.links.append(values.get("href") or "")
        if tag == "div":
            self.stack.append(values.get("class") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self.stack.pop()


def test_wide_tables_scroll_and_table_files_are_links(report: Report) -> None:
    page = Tables()
    page.feed(report.html.read_text())
    assert page.parents and set(page.parents) == {"scroll"}
    assert re.search(r"\.scroll \{[^}]*overflow-x: auto", STYLE)
    for name in ("summary.csv", "summary.tex", "effects.csv", "health.csv", "trials.csv"):
        assert f"tables/{name}" in page.links
    markdown = report.markdown.read_text()
    assert "`tables/" not in markdown  # never as code: every mention is a link
    for mention in re.findall(r"tables/[\w.]+\.(?:csv|tex)", markdown):
        assert f"[{mention}]({mention})" in markdown


def test_a_column_has_one_number_format() -> None:
    # the columns: 1 beside 0.9975, 7.589e+04 beside 1047
    assert format_column(pd.Series([1.0, 0.9975, 0.8164])) == ["1.0000", "0.9975", "0.8164"]
    assert format_column(pd.Series([75893.2, 1047.4])) == ["75,893", "1,047"]
    assert format_column(pd.Series([41152.0, 57704.0, np.nan])) == ["41,152", "57,704", ""]
    assert format_column(pd.Series([0.5, 0.51, 0.25])) == ["0.50", "0.51", "0.25"]
    assert format_column(pd.Series([1e-4, 3e-4])) == ["1e-04", "3e-04"]
    assert format_column(pd.Series(["a", 1.5])) == ["a", "1.5"]


def _table(markdown: str, heading: str) -> list[list[str]]:
    """The first table after ``heading``: its header and rows, cell by cell."""
    lines = markdown.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[start:end] if not line.startswith("|---")]


def test_the_reports_columns_are_formatted_alike(report: Report) -> None:
    header, *rows = _table(report.markdown.read_text(), "## Combinations")
    for i, name in enumerate(header):
        cells = [row[i] for row in rows if row[i]]
        if all(re.fullmatch(r"-?[\d,]+(\.\d+)?", c) for c in cells):
            decimals = {len(c.split(".")[1]) if "." in c else 0 for c in cells}
            assert len(decimals) == 1, (name, cells)
    # mean and its bounds are one quantity: the same decimals in all three columns
    means = [row[header.index(c)] for row in rows for c in ("mean", "ci_low", "ci_high") if row[header.index(c)]]
    assert {len(c.split(".")[1]) for c in means} == {4}


def test_interaction_tables_keep_both_axis_names(report: Report) -> None:
    table = pd.read_csv(report.folder / "tables" / "interaction_memory_retention.csv")
    assert table.columns.tolist() == ["memory", "retention=l2", "retention=none"]
    assert sorted(table["memory"]) == ["linear", "mlp"]


def test_shown_tables_are_also_latex(report: Report) -> None:
    tables = report.folder / "tables"
    shown = {p.stem for p in tables.glob("*.csv")} - {"trials", "health"}  # data files, not shown as tables
    assert {p.stem for p in report.latex} == shown and "summary" in shown
    latex = (tables / "summary.tex").read_text()
    frame = pd.read_csv(tables / "summary.csv")
    lines = latex.splitlines()
    assert lines[0].startswith("% tables/summary.csv") and lines[1].startswith(r"\begin{tabular}{l")
    assert [lines[2], lines[4], lines[-2], lines[-1]] == [r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}"]
    assert r"ci\_low" in lines[3] and len(lines) == 7 + len(frame)
    assert all(line.endswith(r" \\") for line in lines[3:-2] if line != r"\midrule")
    small = to_latex(pd.DataFrame({"name": ["a_b & 5%"], "effect": [-0.25]}))
    assert r"a\_b \& 5\%" in small and "$-$0.25" in small and r"\begin{tabular}{lr}" in small


def test_a_pareto_staircase_reaches_the_axes() -> None:
    # state size (smaller is better) against accuracy: two points, a corner between them, out to both edges
    path = front_path(np.array([10.0, 2.0]), np.array([1.0, 0.9]), "min", "max", x_edge=100.0, y_edge=0.0)
    assert path == [(2.0, 0.0), (2.0, 0.9), (10.0, 0.9), (10.0, 1.0), (100.0, 1.0)]
    # one point, throughput (larger is better): an L from the left edge, down to the bottom
    assert front_path(np.array([5.0]), np.array([0.8]), "max", "max", 1.0, 0.0) == [(1.0, 0.8), (5.0, 0.8), (5.0, 0.0)]


def test_the_pareto_legend_entry_is_a_line_the_figure_draws() -> None:
    values = {"transformer": (0.99, 8e4), "dot": (0.92, 4e4), "l2": (0.69, 3e4)}  # one cell beats both
    rows = [
        {"combination": c, "seed": s, "lr": 1e-2, "status": "finished", "best_test_accuracy": a, "tokens_per_second": t}
        for c, (a, t) in values.items()
        for s in range(3)
    ]
    trials = pd.DataFrame(rows).assign(run_id=[f"r{i}" for i in range(len(rows))])
    empty = pd.DataFrame(columns=["run_id", "combination", "seed", "lr", "metric", "step", "value"])
    sweep = Sweep("s", "p", "0", "sqlite://", "test_accuracy", "max", trials, empty, {})
    figure = frontier_figure(sweep, "tokens_per_second", "max", combination_styles(values))
    (ax,) = figure.axes
    (front,) = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    xs, ys = (np.asarray(v, dtype=float) for v in front.get_data())
    assert len(set(zip(xs, ys, strict=True))) >= 3 and front.get_linestyle() == "--"  # a drawn L, not one point
    handles, labels = ax.get_legend_handles_labels()
    assert labels[-1] == "Pareto front" and handles[-1].get_linestyle() == "--"
    lone = [h for h, label in zip(handles, labels, strict=True) if label in values]
    assert lone and all(h.get_linestyle() == "None" for h in lone)  # a lone cell is a point, not a line
