"""Figures and the Markdown/HTML report of a sweep, logged back to its MLflow parent run."""

from .report import ARTIFACT_PATH, Report, render, write_report

__all__ = ["ARTIFACT_PATH", "Report", "render", "write_report"]
