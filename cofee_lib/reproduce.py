"""Run the numbered notebooks headlessly with papermill: the batch reproduction.

``run_notebooks(preset="default")`` executes ``notebooks/NN_*.ipynb`` in order.
Every notebook has one cell tagged ``parameters``; the runner passes
``preset``, ``results_dir``, ``figures_dir`` and ``work_dir`` plus any
overrides (papermill's ``-p name value`` semantics). Executed copies are
saved under ``<results_dir>/notebooks/``; wall time per notebook goes to
``<results_dir>/timings.json``. A failing cell stops the batch with the
notebook and the cell named.

The executed copies are tidied before they are kept (:func:`tidy_notebook`): each
progress bar, as carriage-return text or as a Jupyter widget, is reduced to its final
line, tqdm's "IProgress not found" warning is dropped, and the absolute paths of the
checkout, the output folders and temporary folders become repository-relative ones, in
the outputs and in the parameters papermill injected: nothing in them names the machine.

Where things go, by preset:

* ``default``: ``results/`` and ``figures/`` (what the repository ships),
  intermediate files (corpora, checkpoints) in ``work/default/``.
* any other preset: ``results/<preset>/``, ``figures/<preset>/``,
  ``work/<preset>/``.
"""
from __future__ import annotations

import html
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

from .errors import CofeeError, atomic_open
from .experiments import override_args
from .paths import base_dir, output_dirs, repo_root  # noqa: F401  (re-exported: the reproduce command uses them)

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


def executed_name(name: str, overrides: dict | None) -> str:
    """File name of a notebook's executed copy: a run with ``-p`` overrides (a part of the notebook)
    is kept beside the whole run's copy, never over it (``06_x.ipynb`` -> ``06_x.rows-in-domain.ipynb``)."""
    if not overrides:
        return name
    slug = re.sub(r"[^A-Za-z0-9]+", "-", "_".join(f"{k}-{v}" for k, v in sorted(overrides.items()))).strip("-")
    return f"{Path(name).stem}.{slug[:80].rstrip('-')}.ipynb"


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
            executed = executed_dir / executed_name(book.name, overrides)
            try:
                pm.execute_notebook(str(book), str(executed), parameters=params,
                                    cwd=str(book.parent), kernel_name=kernel_name, progress_bar=True,
                                    log_output=log_output)
            except PapermillExecutionError as exc:
                raise CofeeError(f"notebook {book.name} failed in cell {exc.exec_count} "
                                 f"({exc.ename}: {exc.evalue}); executed copy: {executed}") from None
            finally:
                if executed.is_file():
                    tidy_file(executed, path_replacements(dirs, root, preset))
            seconds = time.perf_counter() - start
            ran[book.name] = round(seconds, 1)
            # a run with -p overrides (a part of a notebook, e.g. rows="in-domain") keeps the whole run's time
            key = " ".join([book.name, *override_args(overrides or {})])
            timings[key] = {"seconds": round(seconds, 1), "preset": preset,
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


# --------------------------------------------------------------------------- tidying executed notebooks

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# tqdm.auto's warning when ipywidgets is missing: the warning line and the source line Python shows under it
_IPROGRESS_WARNING = re.compile(r"^[^\n]*TqdmWarning: IProgress not found[^\n]*\n(?:[ \t]+[^\n]*\n)?", re.MULTILINE)
# a tqdm status line: "desc: " then a percentage ("  5%|") or a count and unit ("12step ["); the desc names the bar
_BAR_DESC = re.compile(r"^\s*(.*?):\s+\d+(?:\.\d+)?(?:%\||[^\s\[\]|]*\s\[)")


def _bar_desc(line: str) -> str | None:
    m = _BAR_DESC.match(line)
    return m.group(1) if m else None


def collapse_progress(text: str) -> str:
    r"""Stream text as it reads once every carriage return is done, each progress bar on one line.

    A bar redraws itself after ``\r`` (tqdm); only its last state is kept. A bar that clears
    itself at the end (``leave=False``: ``\r`` and spaces) keeps its last state too, and a bar
    interrupted by messages (``tqdm.write``: the bar is cleared, the message printed, the bar
    drawn again) leaves the messages, in order, and then its own last state. Bars are told
    apart by their description (``train: ...``). Text without ``\r`` is returned as it is.
    """
    if "\r" not in text:
        return text
    tokens = re.split(r"(\r\n|\r|\n)", text)
    out: list[str] = []
    live: list | None = None  # [line, desc, position in out]: the bar state on screen, not ended by a newline

    def settle() -> None:
        nonlocal live
        if live is not None:
            out.insert(live[2], live[0] + "\n")
            live = None

    for i in range(0, len(tokens), 2):
        line = tokens[i].rstrip()
        end = tokens[i + 1] if i + 1 < len(tokens) else ""
        blank = not line.strip()
        if end in ("\r", ""):  # a state that is drawn over later (or the text's last, unfinished line)
            if blank:
                continue  # an empty redraw, or a bar clearing itself: its last state stays live
            desc = _bar_desc(line)
            if live is not None and live[1] != desc:
                settle()  # another bar (or text) takes the line: the previous bar ended here
            live = [line, desc, len(out)]
        elif blank:
            if live is not None:
                settle()  # the bar's line ends here
            else:
                out.append("\n")  # an empty line of the text itself
        else:
            desc = _bar_desc(line)
            if live is not None and desc is not None and live[1] == desc:
                live = None  # the bar's final state, ended by its own newline (leave=True)
            out.append(line + "\n")
    settle()
    return "".join(out)


def _widget_line(view: dict, state: dict) -> str | None:
    """The final text of a tqdm widget bar (an HBox of label, progress, label) from the saved widget state."""
    def model(ref):
        entry = state.get(str(ref).removeprefix("IPY_MODEL_"))
        return (entry or {}).get("state", {})

    box = model(view.get("model_id"))
    children = [model(c) for c in box.get("children", [])]
    if len(children) != 3:
        return None
    left, _, right = (html.unescape(str(c.get("value", ""))).replace("\u2007", " ") for c in children)
    try:
        filled = round(10 * float(children[1].get("value", 0)) / float(children[1].get("max", 0) or 1))
    except (TypeError, ValueError):
        filled = 0
    filled = max(0, min(10, filled))
    return (f"{left}|{'█' * filled}{' ' * (10 - filled)}|{right}" if left else right).rstrip()


def _replace_paths(text: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in replacements:
        if old in text:
            text = re.sub(re.escape(old) + r"(/|(?![\w.-]))", lambda m: (new + "/" if new else "")
                          if m.group(1) == "/" else (new or "."), text)
    return text


def path_replacements(dirs: dict | None = None, root: Path | None = None, preset: str | None = None) -> list:
    """``[(absolute path, what it becomes), ...]``, longest first, for :func:`tidy_notebook`.

    The output folders become their repository-relative names (``results/smoke``); folders
    outside the checkout become the names the preset would use by default. Then the checkout
    itself becomes ``""`` (so ``<checkout>/notebooks`` reads ``notebooks``), the Python
    environment outside it ``<python>``, any other temporary folder ``<tmp>``, the home folder ``~``.
    """
    root = Path(root or base_dir()).resolve()
    defaults = output_dirs(preset, root) if preset else {}
    pairs = {}
    for key, value in (dirs or {}).items():
        folder = Path(value).resolve()
        try:
            name = folder.relative_to(root).as_posix()
        except ValueError:
            default = defaults.get(key)
            name = Path(default).relative_to(root).as_posix() if default else f"<{key}>"
        pairs[str(folder)] = pairs[str(Path(value).absolute())] = name
    pairs[str(root)] = ""
    prefix = Path(sys.prefix).resolve()
    if not prefix.is_relative_to(root):
        pairs[str(prefix)] = "<python>"
    for tmp in {tempfile.gettempdir(), str(Path(tempfile.gettempdir()).resolve())}:
        if not root.is_relative_to(tmp):
            pairs.setdefault(tmp, "<tmp>")
    home = str(Path.home())
    if home not in ("/", "") and not root.is_relative_to(home):
        pairs.setdefault(home, "~")
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def _temp_folders(text: str) -> str:
    """``<tmp>/name/...`` -> ``<tmp>/...``: a temporary folder's own (random) name says nothing."""
    return re.sub(r"<tmp>/[^/\s'\"]+", "<tmp>", text) if "<tmp>/" in text else text


def tidy_notebook(nb, replacements: list[tuple[str, str]]) -> None:
    """Make an executed notebook fit to keep: bars on one line, no warning about widgets, no machine paths.

    In every code cell: tqdm widget outputs become their final line of text (from the widget
    state nbclient saved) and the widget state is dropped; consecutive outputs of one stream are
    joined and :func:`collapse_progress` reduces every bar to its final line; tqdm's
    "IProgress not found" warning is removed; every absolute path in ``replacements``
    (:func:`path_replacements`) is replaced, in the text outputs, in the source of the
    parameters cell papermill injected and in papermill's metadata. Other outputs (tables,
    figures, results) are left as they are.
    """
    import nbformat

    widgets = nb.metadata.pop("widgets", None) or {}
    state = widgets.get(WIDGET_STATE, {}).get("state", {})

    def fix(text: str) -> str:
        return _temp_folders(_replace_paths(text, replacements))

    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = fix(cell.source)
        outputs = []
        for out in cell.outputs:
            data = out.get("data", {})
            if out.get("output_type") in ("display_data", "execute_result") and WIDGET_VIEW in data:
                line = _widget_line(data[WIDGET_VIEW], state) or str(data.get("text/plain", "")).strip()
                out = {"output_type": "stream", "name": "stderr", "text": line + "\n" if line else ""}
            if out.get("output_type") == "stream":
                text = _IPROGRESS_WARNING.sub("", out["text"] if isinstance(out["text"], str) else "".join(out["text"]))
                if outputs and outputs[-1].get("output_type") == "stream" and outputs[-1]["name"] == out["name"]:
                    outputs[-1]["text"] += text
                else:
                    outputs.append({"output_type": "stream", "name": out["name"], "text": text})
                continue
            outputs.append(out)
        for out in outputs:
            if out.get("output_type") == "stream":
                out["text"] = fix(collapse_progress(out["text"]))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, (str, list)):
                    out["data"][mime] = fix(value if isinstance(value, str) else "".join(value))
        cell.outputs = [nbformat.from_dict(o) for o in outputs if o.get("output_type") != "stream" or o["text"]]
    if "papermill" in nb.metadata:
        nb.metadata["papermill"] = _fix_json(nb.metadata["papermill"], fix)


def _fix_json(node, fix):
    if isinstance(node, str):
        return fix(node)
    if isinstance(node, dict):
        return type(node)((k, _fix_json(v, fix)) for k, v in node.items())
    if isinstance(node, list):
        return [_fix_json(v, fix) for v in node]
    return node


def recorded_replacements(nb) -> list[tuple[str, str]]:
    """:func:`path_replacements` for a notebook papermill executed, from what papermill recorded in it.

    The checkout is the folder above ``notebooks/`` of the recorded input path and the output
    folders are the recorded parameters, so a copy executed in another checkout is tidied too."""
    meta = nb.metadata.get("papermill", {})
    params = meta.get("parameters", {})
    source = Path(meta["input_path"]) if meta.get("input_path") else None
    root = source.parent.parent if source is not None and source.parent.name == "notebooks" else None
    dirs = {k: params[k] for k in ("results_dir", "figures_dir", "work_dir") if isinstance(params.get(k), str)
            and Path(params[k]).is_absolute()}
    return path_replacements(dirs, root, params.get("preset"))


def tidy_file(path, replacements: list[tuple[str, str]] | None = None) -> None:
    """:func:`tidy_notebook` on a notebook file, in place (atomic); ``replacements`` default to
    :func:`recorded_replacements`."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    tidy_notebook(nb, recorded_replacements(nb) if replacements is None else replacements)
    with atomic_open(path) as fh:
        nbformat.write(nb, fh)


def _strip_for_storage(nb, replacements: list | None = None) -> None:
    """Drop what must not be committed: stderr streams and widgets (progress bars, cache paths), timings;
    replace absolute paths (:func:`path_replacements`) in the rest."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                            and WIDGET_VIEW not in o.get("data", {})]
    nb.metadata.pop("papermill", None)
    if replacements:
        tidy_notebook(nb, replacements)


def store_outputs(only: list[str] | None = None, preset: str = "smoke", timeout: int = 1200) -> list[Path]:
    """Run notebooks in place at ``preset`` and keep their outputs in ``notebooks/`` (nbval's reference).

    nbval (``make test``) re-runs every notebook at the smoke preset and
    compares the cells marked ``# NBVAL_CHECK_OUTPUT`` with the outputs stored
    in the notebook file, so those outputs must come from a smoke run. This
    executes each notebook with its own parameters (no papermill cell is
    injected), writes everything the notebook produces into a temporary folder
    (``COFEE_RESULTS_DIR`` etc.; nothing lands in ``results/`` or ``figures/``),
    drops stderr streams, progress widgets and timing metadata, makes the paths
    left in other outputs repository-relative (:func:`tidy_notebook`), and saves
    the notebook file.
    """
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
        folders = {"results_dir": "COFEE_RESULTS_DIR", "figures_dir": "COFEE_FIGURES_DIR", "work_dir": "COFEE_WORK_DIR"}
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
                _strip_for_storage(nb, path_replacements({k: os.environ[v] for k, v in folders.items()}, root, preset))
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
