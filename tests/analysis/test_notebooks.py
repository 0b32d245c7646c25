"""Both analysis notebooks execute without error on the synthetic store (read through MIRAS_* variables)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_store import ABLATION, SCALING

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.parametrize(("notebook", "sweep"), [("ablation.ipynb", ABLATION), ("scaling.ipynb", SCALING)])
def test_notebook_runs(notebook: str, sweep: str, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRAS_SWEEP", sweep)
    monkeypatch.setenv("MIRAS_TRACKING_URI", store)
    book = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [output for cell in book.cells if cell.cell_type == "code" for output in cell.outputs]
    assert any("image/png" in output.get("data", {}) for output in outputs)  # a figure was drawn
    assert all(
        cell.outputs == [] for cell in nbformat.read(NOTEBOOKS / notebook, as_version=4).cells if "outputs" in cell
    )
