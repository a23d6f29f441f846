"""The tutorial notebook runs top to bottom in quick mode, and is committed without outputs.

The kernel is this interpreter (the project's venv): a kernel spec pointing at
`sys.executable` is written into a temporary Jupyter path, so a `python3` spec
installed elsewhere on the machine can never be picked up instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "tutorial.ipynb"
KERNEL = "digitrec-test"  # the name of the temporary kernel spec


def read_notebook():
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(NOTEBOOK, as_version=4)


def test_committed_notebook_has_no_outputs():
    nb = read_notebook()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the tutorial has no code cells"
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], f"code cell {i} has outputs: strip them before committing"
        assert cell.get("execution_count") is None, f"code cell {i} has an execution count"


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch) -> str:
    """A kernel spec for this interpreter, found first on JUPYTER_PATH."""
    pytest.importorskip("nbclient")
    kernelspec = pytest.importorskip("ipykernel.kernelspec")
    prefix = tmp_path / "jupyter-prefix"
    kernelspec.install(kernel_name=KERNEL, prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    return KERNEL


def test_tutorial_runs_top_to_bottom(venv_kernel, mnist_dir, tmp_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    assert KernelSpecManager().get_kernel_spec(venv_kernel).argv[0] == sys.executable
    monkeypatch.setenv("DIGITREC_DATA", str(mnist_dir))
    monkeypatch.setenv("DIGITREC_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    # the kernel starts in another folder: a relative PYTHONPATH (`PYTHONPATH=src pytest`) must still
    # point it at this checkout's code, not at whatever digitrec the venv has installed
    paths = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if paths:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    nb = read_notebook()
    client = NotebookClient(nb, kernel_name=venv_kernel, timeout=300,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell raises

    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "quick mode" in outputs
    assert "same probabilities on 1,000 test digits: True" in outputs
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 8, f"expected the figures inline, got {len(images)} images"
    out = tmp_path / "tutorial-output"
    assert (out / "run" / "model.safetensors").is_file() and (out / "my_model.safetensors").is_file()
    assert "after fine-tuning:" in outputs and (out / "finetune" / "model.safetensors").is_file()
