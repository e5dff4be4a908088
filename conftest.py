"""pytest settings for the whole checkout: how ``make test`` runs the notebooks with nbval.

``pyproject.toml`` collects ``notebooks/`` beside ``tests/`` and runs nbval in
lax mode (``--nbval-lax``): every cell of every notebook must run, and the
cells marked ``# NBVAL_CHECK_OUTPUT`` must reproduce the outputs stored in
the notebook file (stored from a smoke run by ``cofee reproduce
--store-outputs``).

The notebook kernels inherit this process's environment, which is how the
notebooks learn where they are: unless already set, ``COFEE_PRESET`` is
``smoke`` and ``COFEE_RESULTS_DIR``, ``COFEE_FIGURES_DIR`` and
``COFEE_WORK_DIR`` point into a temporary folder removed at the end of the
session, so a test run never writes into the repository's ``results/``,
``figures/`` or ``work/`` (see :func:`cofee_lib.notebook.setup`). The
notebooks read the real data sources, so their cells are marked ``slow``
(``make test-fast`` skips them).

Tests marked ``bf16`` exercise bfloat16 autocast; they are skipped, with the
reason, on CPUs without native bf16 (where bf16 is emulated and ~10x slower).
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


def _skip_bf16_without_hardware(items) -> None:
    marked = [item for item in items if item.get_closest_marker("bf16")]
    if not marked:
        return
    from cofee_lib.hardware import choose_precision

    choice = choose_precision("auto")
    if choice.precision != "bf16":
        skip = pytest.mark.skip(reason=f"no native bf16 on this machine ({choice.hardware}): {choice.reason}")
        for item in marked:
            item.add_marker(skip)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    _skip_bf16_without_hardware(items)
    notebook_cells = [item for item in items if str(item.path).endswith(".ipynb")]
    for item in notebook_cells:
        item.add_marker(pytest.mark.slow)
    if notebook_cells and _TMP is None:
        _notebook_environment()


def pytest_sessionfinish(session, exitstatus):
    if _TMP is not None:
        shutil.rmtree(_TMP, ignore_errors=True)
