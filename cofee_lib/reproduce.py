"""Run the numbered notebooks headlessly with papermill: the batch reproduction.

``run_notebooks(preset="default")`` executes ``notebooks/NN_*.ipynb`` in order.
Every notebook has one cell tagged ``parameters``; the runner passes
``preset``, ``results_dir``, ``figures_dir`` and ``work_dir`` plus any
overrides (papermill's ``-p name value`` semantics). Executed copies are
saved under ``<results_dir>/notebooks/``; wall time per notebook goes to
``<results_dir>/timings.json``. A failing cell stops the batch with the
notebook and the cell named.

Where things go, by preset:

* ``default``: ``results/`` and ``figures/`` (what the repository ships),
  intermediate files (corpora, checkpoints) in ``work/default/``.
* any other preset: ``results/<preset>/``, ``figures/<preset>/``,
  ``work/<preset>/``.
"""
from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from pathlib import Path

from .errors import CofeeError, atomic_open
from .paths import output_dirs, repo_root  # noqa: F401  (re-exported: the reproduce command uses them)

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_.+\.ipynb$")


def list_notebooks(root: Path | None = None, only: list[str] | None = None) -> list[Path]:
    """Numbered notebooks in order; ``only`` keeps those whose number or name matches."""
    root = root or repo_root()
    books = sorted(p for p in (root / "notebooks").iterdir() if NOTEBOOK_PATTERN.match(p.name))
    if only:
        wanted = [str(o) for o in only]
        books = [p for p in books if any(p.name.startswith(w.zfill(2) + "_") or p.stem == w or p.name == w for w in wanted)]
        if not books:
            raise CofeeError(f"no notebook matches {' '.join(wanted)} (have: {', '.join(p.name for p in list_notebooks(root))})")
    return books


def parse_overrides(pairs: list[list[str]] | None) -> dict:
    """``[["name", "value"], ...]`` -> dict; values are parsed as JSON when they parse (numbers, lists)."""
    out = {}
    for name, value in pairs or []:
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def run_notebooks(preset: str = "default", only: list[str] | None = None, overrides: dict | None = None,
                  dirs: dict | None = None, kernel_name: str | None = None, log_output: bool = False) -> dict:
    """Execute the notebooks in order; return ``{notebook: seconds}``.

    Raises :class:`CofeeError` naming the notebook and the failing cell.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    root = repo_root()
    dirs = dict(dirs or output_dirs(preset, root))
    for d in dirs.values():
        Path(d).mkdir(parents=True, exist_ok=True)
    executed_dir = Path(dirs["results_dir"]) / "notebooks"
    executed_dir.mkdir(parents=True, exist_ok=True)
    timings_path = Path(dirs["results_dir"]) / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    params = {"preset": preset, **dirs, **(overrides or {})}
    env_before = os.environ.get("COFEE_PRESET")
    os.environ["COFEE_PRESET"] = preset
    ran = {}
    try:
        for book in list_notebooks(root, only):
            print(f"[cofee reproduce] {book.name} (preset {preset})", file=sys.stderr, flush=True)
            start = time.perf_counter()
            try:
                pm.execute_notebook(str(book), str(executed_dir / book.name), parameters=params,
                                    cwd=str(book.parent), kernel_name=kernel_name, progress_bar=True,
                                    log_output=log_output)
            except PapermillExecutionError as exc:
                raise CofeeError(f"notebook {book.name} failed in cell {exc.exec_count} "
                                 f"({exc.ename}: {exc.evalue}); executed copy: {executed_dir / book.name}") from None
            seconds = time.perf_counter() - start
            ran[book.name] = round(seconds, 1)
            timings[book.name] = {"seconds": round(seconds, 1), "preset": preset,
                                  "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                                  "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}"}
            with atomic_open(timings_path) as fh:
                json.dump(timings, fh, indent=2)
    finally:
        if env_before is None:
            os.environ.pop("COFEE_PRESET", None)
        else:
            os.environ["COFEE_PRESET"] = env_before
    return ran


def _strip_for_storage(nb) -> None:
    """Drop what must not be committed: stderr streams (progress bars, cache paths) and timings."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    nb.metadata.pop("papermill", None)


def store_outputs(only: list[str] | None = None, preset: str = "smoke", timeout: int = 1200) -> list[Path]:
    """Run notebooks in place at ``preset`` and keep their outputs in ``notebooks/`` (nbval's reference).

    nbval (``make test``) re-runs every notebook at the smoke preset and
    compares the cells marked ``# NBVAL_CHECK_OUTPUT`` with the outputs stored
    in the notebook file, so those outputs must come from a smoke run. This
    executes each notebook with its own parameters (no papermill cell is
    injected), writes everything the notebook produces into a temporary folder
    (``COFEE_RESULTS_DIR`` etc.; nothing lands in ``results/`` or ``figures/``),
    drops stderr streams and timing metadata, and saves the notebook file.
    """
    import tempfile

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    root = repo_root()
    names = ("COFEE_PRESET", "COFEE_RESULTS_DIR", "COFEE_FIGURES_DIR", "COFEE_WORK_DIR")
    saved = {k: os.environ.get(k) for k in names}
    stored = []
    with tempfile.TemporaryDirectory(prefix="cofee-store-") as tmp:
        os.environ.update({"COFEE_PRESET": preset, "COFEE_RESULTS_DIR": str(Path(tmp) / "results"),
                           "COFEE_FIGURES_DIR": str(Path(tmp) / "figures"), "COFEE_WORK_DIR": str(Path(tmp) / "work")})
        try:
            for book in list_notebooks(root, only):
                print(f"[cofee reproduce] storing the {preset} outputs of {book.name}", file=sys.stderr, flush=True)
                nb = nbformat.read(book, as_version=4)
                client = NotebookClient(nb, timeout=timeout, record_timing=False,
                                        resources={"metadata": {"path": str(book.parent)}})
                try:
                    client.execute()
                except CellExecutionError as exc:
                    raise CofeeError(f"notebook {book.name} failed; nothing stored: {str(exc).splitlines()[-1]}") from None
                _strip_for_storage(nb)
                with atomic_open(book) as fh:
                    nbformat.write(nb, fh)
                stored.append(book)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return stored
