"""Every tutorial notebook runs from top to bottom (with small settings)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "tutorials").glob("*.ipynb"))

#: What a machine path looks like in an output (a warning names the file that raised it).
MACHINE_PATH = re.compile(r"(/root/|/home/[^/\s]+/|/work/|/tmp/|site-packages|[A-Z]:\\Users)")


def _output_texts(notebook) -> list[str]:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if "text" in output:
                texts.append("".join(output["text"]))
            for key, value in output.get("data", {}).items():
                if key.startswith("text/"):
                    texts.append("".join(value))
            texts.extend(output.get("traceback", []))
    return texts


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.stem)
def test_stored_outputs_contain_no_machine_path(path):
    for text in _output_texts(nbformat.read(path, as_version=4)):
        assert not MACHINE_PATH.search(text), text[:300]


def test_there_are_tutorials():
    assert TUTORIALS


def _figures(notebook) -> int:
    """The number of images a notebook's outputs hold."""
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.stem)
def test_every_tutorial_declares_its_figures_and_the_stored_run_has_them(path):
    notebook = nbformat.read(path, as_version=4)
    expected = notebook.metadata.get("pyro_ar", {}).get("figures")
    assert isinstance(expected, int), "set metadata.pyro_ar.figures to the figures it draws"
    assert _figures(notebook) == expected


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.stem)
def test_tutorial_runs(path, monkeypatch, tmp_path):
    monkeypatch.setenv("PYRO_AR_TUTORIAL_FAST", "1")
    # the inline backend is not interactive either, but it puts every figure into the
    # outputs, so that a figure that silently fails to appear is caught
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    for text in _output_texts(notebook):  # outputs of this run too (warnings name files)
        assert not MACHINE_PATH.search(text), text[:300]
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    assert _figures(notebook) == notebook.metadata["pyro_ar"]["figures"]
