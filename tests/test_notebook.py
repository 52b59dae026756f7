"""The demo notebook, run top to bottom as a reader runs it (a fresh kernel, on the shipped model):
every cell executes without an error, and what it prints says the demo did what it claims."""

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "demo.ipynb"


def _text(cell) -> str:
    return "".join(out.get("text", "") + "".join(out.get("data", {}).get("text/plain", ""))
                   for out in cell.get("outputs", []))


@pytest.mark.slow
def test_the_demo_notebook_runs_top_to_bottom(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "the repository keeps the notebook's outputs stripped"
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    # One torch thread: beside the suite's other worker, more threads than free cores slow every one.
    client.execute(env={**os.environ, "OMP_NUM_THREADS": "1"})
    printed = "\n".join(_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert "InterpModel(LlamaForCausalLM" in printed
    assert "anchors removed (sink kept)" in printed and "top-layer emulation" in printed
    assert "Spearman over the 10 heads" in printed
    assert "page:" in printed and "accuracy" in printed
    # The figures display inline: plotly's own output type.
    kinds = {kind for cell in notebook.cells for out in cell.get("outputs", []) for kind in out.get("data", {})}
    assert "application/vnd.plotly.v1+json" in kinds or "text/html" in kinds
