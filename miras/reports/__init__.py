"""Figures and the Markdown/HTML report of a sweep, logged back to its MLflow parent run.

The report machinery (mlflow, matplotlib, seaborn) is imported on first use, so that importing
:mod:`miras.reports.command` to build the ``miras`` command line stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .report import ARTIFACT_PATH, Report, render, write_report

__all__ = ["ARTIFACT_PATH", "Report", "render", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
