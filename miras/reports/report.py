"""``write_report``: a sweep's report as Markdown, self-contained HTML, PNG figures, CSV and LaTeX tables,
logged back to the sweep's parent run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient

from ..analysis import Sweep, load_sweep
from .document import to_html, to_markdown
from .sections import Assets, build

ARTIFACT_PATH = "report"
"""Folder of the parent run's artifacts the report is logged under."""


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote."""

    folder: Path
    markdown: Path
    html: Path
    figures: list[Path]
    tables: list[Path]
    skipped: list[str]
    """Figures not drawn, each with the reason."""
    latex: list[Path] = field(default_factory=list)
    """The tables shown in the report, also as booktabs LaTeX (``tables/*.tex``)."""


def _clear(folder: Path, pattern: str) -> None:
    """Remove a previous report's files, so a rerun logs only what it wrote."""
    for path in folder.glob(pattern):
        path.unlink()


def render(sweep: Sweep, out_dir: str | Path) -> Report:
    """Write the report of an already loaded sweep into ``out_dir`` (nothing is logged)."""
    folder = Path(out_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    _clear(folder, "figures/*.png")
    _clear(folder, "tables/*.csv")
    _clear(folder, "tables/*.tex")
    assets = Assets(folder)
    blocks = build(sweep, assets)
    title = f"Sweep report: {sweep.name}"
    markdown, page = folder / "report.md", folder / "report.html"
    markdown.write_text(to_markdown(title, blocks))
    page.write_text(to_html(title, blocks, folder))
    return Report(
        folder,
        markdown,
        page,
        sorted((folder / "figures").glob("*.png")),
        sorted((folder / "tables").glob("*.csv")),
        assets.skipped,
        sorted((folder / "tables").glob("*.tex")),
    )


def write_report(sweep: str, tracking_uri: str, out_dir: str | Path, *, log: bool = True) -> Report:
    """Load ``sweep`` (a sweep name or its parent run id) from ``tracking_uri``, write its report into
    ``out_dir`` and, unless ``log=False``, log the folder as the ``report/`` artifacts of the parent run."""
    loaded = load_sweep(sweep, tracking_uri)
    report = render(loaded, out_dir)
    if log:
        client = MlflowClient(tracking_uri)
        for path in (report.markdown, report.html):
            client.log_artifact(loaded.parent_run_id, str(path), ARTIFACT_PATH)
        for folder in ("figures", "tables"):
            client.log_artifacts(loaded.parent_run_id, str(report.folder / folder), f"{ARTIFACT_PATH}/{folder}")
    return report
