"""pytest settings for the whole checkout: running the notebooks under nbval by hand.

``make test`` executes every notebook once, with papermill, in
``tests/test_notebooks.py``, and checks there both what the notebooks write and
the cells marked ``# NBVAL_CHECK_OUTPUT`` against the outputs stored in the
notebook files (nbval's lax comparison). nbval itself stays available::

    .venv/bin/python -m pytest --nbval-lax notebooks/            # all nine, smoke preset
    .venv/bin/python -m pytest --nbval-lax notebooks/01_*.ipynb  # one

(``--nbval-current-env`` is in ``pyproject.toml``'s addopts: the kernel is this
virtual environment's Python.) The notebook kernels inherit this process's
environment, which is how the notebooks learn where they are: unless already
set, ``COFEE_PRESET`` is ``smoke`` and ``COFEE_RESULTS_DIR``,
``COFEE_FIGURES_DIR`` and ``COFEE_WORK_DIR`` point into a temporary folder
removed at the end of the session, so a run never writes into the
repository's ``results/``, ``figures/`` or ``work/`` (see
:func:`cofee_lib.notebook.setup`). The notebooks read the real data sources,
so their cells are marked ``slow`` and ``notebooks``.

The shared fixtures and the other markers are in ``tests/conftest.py``.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_NOTEBOOK_ENV = {"COFEE_PRESET": "smoke"}
_TMP = None


def _notebook_environment() -> None:
    """Point the notebook kernels at the smoke preset and a temporary output folder (unless set)."""
    global _TMP
    _TMP = tempfile.mkdtemp(prefix="cofee-nbval-")
    folders = {"COFEE_RESULTS_DIR": "results", "COFEE_FIGURES_DIR": "figures", "COFEE_WORK_DIR": "work"}
    for name, value in {**_NOTEBOOK_ENV, **{k: os.path.join(_TMP, v) for k, v in folders.items()}}.items():
        os.environ.setdefault(name, value)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    notebook_cells = [item for item in items if str(item.path).endswith(".ipynb")]
    for item in notebook_cells:
        item.add_marker(pytest.mark.slow)
        item.add_marker(pytest.mark.notebooks)
    if notebook_cells and _TMP is None:
        _notebook_environment()


def pytest_sessionfinish(session, exitstatus):
    if _TMP is not None:
        shutil.rmtree(_TMP, ignore_errors=True)
