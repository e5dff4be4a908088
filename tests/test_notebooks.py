"""The numbered notebooks: well-formed (fast), executed once at the smoke preset and checked (slow).

Fast tests read every ``notebooks/NN_*.ipynb`` as JSON: a markdown cell first,
exactly one cell tagged ``parameters`` that holds ``preset``, ``results_dir``,
``figures_dir`` and ``work_dir`` (all ``None``), stored outputs (from a smoke
run) for every cell the output check compares, no stderr stored, and no long
function defined in a notebook (logic lives in ``cofee_lib``).

Slow tests execute all nine notebooks once, in order, with papermill through
the kit's runner (:func:`cofee_lib.reproduce.run_notebooks`) at the smoke
preset into a temporary folder, and check two things of that one run:

* what the notebooks wrote: ``corpus.json``, ``matching.json``, ``esi.json``
  ... ``figure3.json``, ``tables.md``, the figures and the corpora in the
  work folder;
* what nbval's lax mode (``pytest --nbval-lax notebooks/``) checks: every cell
  runs without an error, and each cell marked ``# NBVAL_CHECK_OUTPUT`` (or
  tagged ``nbval-check-output``) reproduces the outputs stored in the notebook
  file, compared as nbval 0.11 compares them (:func:`output_difference`).

``make test`` no longer runs nbval itself (the notebooks used to run twice);
:func:`test_output_check_agrees_with_nbval` runs nbval and this check side by
side on a small notebook with deliberate perturbations, so the two stay the
same check.
"""
from __future__ import annotations

import ast
import json
import re
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import (coalesce_streams, find_comment_markers, find_metadata_tags, get_sanitize_patterns,
                          transform_streams_for_comparison)

from cofee_lib.reference import ROW_NAME
from cofee_lib.reproduce import list_notebooks, output_dirs, repo_root, run_notebooks

ROOT = repo_root()
NOTEBOOKS = list_notebooks(ROOT)
CHECK = "# NBVAL_CHECK_OUTPUT"
REQUIRED_PARAMETERS = ("preset", "results_dir", "figures_dir", "work_dir")
MAX_FUNCTION_LINES = 5


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


# --------------------------------------------------------------------------- nbval's lax output check

# nbval 0.11, IPyNbFile.skip_compare (without --nbdime): output keys and MIME types it never compares.
NBVAL_SKIP_COMPARE = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                      "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")
# nbval options a papermill run cannot honour (it runs every cell and stops at the first error)
NOT_HONOURED = ("skip", "check_exception")


def nbval_options(cell) -> dict:
    """nbval's options for a code cell: its metadata tags, then its comment markers (which win)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbval warns about conflicting markers when it collects
        options = dict(find_metadata_tags(cell.metadata))
        options.update(find_comment_markers(cell.source))
    return options


def _flatten(outputs, sanitize) -> dict:
    """nbval's view of a cell's outputs: {key or MIME type: [values in order]}, streams merged first."""
    flat: dict[str, list] = {}
    nodes = coalesce_streams([nbformat.from_dict(o) for o in outputs])  # from_dict: copies, never the notebook's
    for output in transform_streams_for_comparison(nodes):
        for key, value in output.items():
            if key in NBVAL_SKIP_COMPARE:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in NBVAL_SKIP_COMPARE:
                        flat.setdefault(mime, []).append(sanitize(data))
            else:
                flat.setdefault(key, []).append(sanitize(value))  # "stdout"/"stderr" text, "ename", "evalue"
    return flat


def output_difference(stored, executed, patterns=()) -> str | None:
    """Why ``executed`` outputs fail nbval's comparison with the ``stored`` ones, or None when they pass.

    As nbval's ``IPyNbCell.compare_outputs``: the same output fields (stream names, MIME types other than
    PNG/JPEG, error name and value) on both sides, the same number of values for each, each value equal
    after the sanitize patterns (regex, replacement)."""
    def sanitize(value):
        if isinstance(value, str):
            for regex, replace in patterns:
                value = re.sub(regex, replace, value)
        return value

    ref, run = _flatten(stored, sanitize), _flatten(executed, sanitize)
    if set(ref) - set(run):
        return f"missing output fields from running code: {sorted(set(ref) - set(run))}"
    if set(run) - set(ref):
        return f"unexpected output fields from running code: {sorted(set(run) - set(ref))}"
    for key, values in ref.items():
        if len(values) != len(run[key]):
            return f"{key}: {len(values)} stored outputs, {len(run[key])} from the run"
        for want, got in zip(values, run[key]):
            if want != got:
                return f"{key} differs:\n  stored: {str(want)[:800]!r}\n  run:    {str(got)[:800]!r}"
    return None


def cell_problems(stored_nb, executed_nb, patterns=()) -> dict[int, str]:
    """{code cell number (nbval's "Cell N"): what nbval --nbval-lax would fail it for}; {} when all pass.

    ``executed_nb`` is papermill's copy of ``stored_nb``: its injected-parameters cell is left out."""
    stored = _code_cells(stored_nb)
    executed = [c for c in _code_cells(executed_nb) if "injected-parameters" not in c.metadata.get("tags", [])]
    if len(stored) != len(executed):
        return {-1: f"the notebook has {len(stored)} code cells, its executed copy {len(executed)}"}
    problems = {}
    for number, (ref, run) in enumerate(zip(stored, executed)):
        options = nbval_options(ref)
        if options.get("skip"):
            continue
        if ref.source != run.source:
            problems[number] = "the cell changed since the run (edited while the tests ran?)"
            continue
        errors = [o for o in run.outputs if o.get("output_type") == "error"]
        if errors and not options.get("check_exception"):
            problems[number] = f"cell execution caused an exception: {errors[0].get('ename')}: {errors[0].get('evalue')}"
            continue
        unrun = ref.get("execution_count") is None
        if unrun and ref.outputs:
            problems[number] = "unrun reference cell has outputs"
        elif options.get("check", False) and not unrun:  # lax: only the marked cells are compared
            difference = output_difference(ref.outputs, run.outputs, patterns)
            if difference:
                problems[number] = difference
    return problems


def sanitize_patterns(config) -> list:
    """The regex/replace pairs of ``--nbval-sanitize-with FILE`` if given (the repository configures none)."""
    path = config.getoption("nbval_sanitize_with", default=None)
    return get_sanitize_patterns(Path(path).read_text()) if path else []


def _describe(problems: dict, name: str) -> str:
    return "\n".join(f"{name} Cell {n}: {why}" for n, why in sorted(problems.items()))


def test_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert [n[:2] for n in names] == [f"{i:02d}" for i in range(1, 11)], names
    assert "01_corpus_construction.ipynb" in names
    assert "02_gazetteers_and_matching.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_valid_and_opens_with_prose(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown", "a notebook opens with a markdown cell saying what it does"
    assert nb.cells[0].source.lstrip().startswith("# "), "the first cell starts with the notebook's title"
    assert "Sec." in nb.cells[0].source, "the first cell says where the notebook sits in the paper"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_with_the_output_folders(path):
    cells = [c for c in _code_cells(_read(path)) if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell is tagged 'parameters' (papermill injects after it)"
    tree = ast.parse(cells[0].source)
    values = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign), "the parameters cell holds plain assignments only"
        for target in node.targets:
            values[target.id] = ast.literal_eval(node.value)
    for name in REQUIRED_PARAMETERS:
        assert name in values and values[name] is None, f"{name} = None (the preset's default) is a parameter"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_checked_cells_have_stored_smoke_outputs(path):
    cells = _code_cells(_read(path))
    checked = [c for c in cells if CHECK in c.source]
    assert checked, "at least one cell is marked # NBVAL_CHECK_OUTPUT"
    for cell in checked:
        assert cell.outputs, f"checked cell without stored output (run `cofee reproduce --store-outputs`):\n{cell.source[:200]}"
        assert not any(o.get("name") == "stderr" for o in cell.outputs), "a checked cell must not write to stderr"
        assert "Traceback" not in json.dumps(cell.outputs)
    for cell in cells:
        assert not any(o.get("output_type") == "error" for o in cell.outputs), "a stored output is an error"
        assert not any(o.get("name") == "stderr" for o in cell.outputs), "stderr (progress bars, paths) is not stored"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_long_functions_in_notebooks(path):
    for cell in _code_cells(_read(path)):
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= MAX_FUNCTION_LINES, f"{node.name} is {length} lines: put it in cofee_lib"


def test_stored_outputs_say_smoke():
    """The stored settings table names the smoke preset, so the output check compares like with like."""
    nb = _read(ROOT / "notebooks" / "01_corpus_construction.ipynb")
    texts = [o.get("data", {}).get("text/plain", "") for c in _code_cells(nb) if CHECK in c.source for o in c.outputs]
    assert any("preset smoke" in t for t in texts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_use_only_nbval_options_a_papermill_run_honours(path):
    """One papermill run replaces nbval: it executes every cell and stops at an error, so no NBVAL_SKIP
    or NBVAL_RAISES_EXCEPTION (nor their tags), and no unrun cell with outputs (nbval fails those)."""
    for number, cell in enumerate(_code_cells(_read(path))):
        options = nbval_options(cell)
        assert not any(options.get(o) for o in NOT_HONOURED), f"Cell {number}: {options} (not checked by make test)"
        assert cell.execution_count is not None or not cell.outputs, f"Cell {number}: unrun cell with stored outputs"


def test_setup_takes_explicit_folders_then_the_environment(tmp_path, monkeypatch):
    """The two ways notebooks learn where they are: papermill parameters (make reproduce, make test) and
    COFEE_* variables (nbval by hand, `cofee reproduce --store-outputs`)."""
    from cofee_lib.notebook import setup

    env = {"COFEE_PRESET": "smoke", **{f"COFEE_{k.upper()}_DIR": str(tmp_path / f"env-{k}")
                                      for k in ("results", "figures", "work")}}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run = setup(style=False)
    assert run.preset == "smoke"
    assert (run.results_dir, run.figures_dir, run.work_dir) == tuple(
        (tmp_path / f"env-{k}").resolve() for k in ("results", "figures", "work"))
    run = setup(preset="smoke", results_dir=str(tmp_path / "given"), style=False)
    assert run.results_dir == (tmp_path / "given").resolve() and run.work_dir == (tmp_path / "env-work").resolve()


def _as_papermill_copy(nb):
    """``nb`` as papermill saves it: a cell tagged injected-parameters after the parameters cell."""
    executed = nbformat.reads(nbformat.writes(nb), as_version=4)
    at = next(i for i, c in enumerate(executed.cells) if "parameters" in c.metadata.get("tags", [])) + 1
    executed.cells.insert(at, nbformat.v4.new_code_cell('preset = "smoke"\n', metadata={"tags": ["injected-parameters"]}))
    return executed


def _first_checked_text(nb):
    """(code cell number, output) of the first compared cell with a text output (text/plain or a stream)."""
    for number, cell in enumerate(_code_cells(nb)):
        if nbval_options(cell).get("check") and cell.execution_count is not None:
            for output in cell.outputs:
                if "text/plain" in output.get("data", {}) or output.get("output_type") == "stream":
                    return number, output
    raise AssertionError("no checked cell with a text output")


def _perturb(output) -> None:
    if output.get("output_type") == "stream":
        output["text"] += "perturbed\n"
    else:
        output["data"]["text/plain"] += " (perturbed)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_output_check_passes_the_stored_outputs_and_fails_a_perturbed_copy(path, tmp_path):
    """Against its own stored outputs a notebook passes; a temp copy with one checked output changed fails
    at that cell and only there; a stderr line written by a checked cell fails it as well."""
    stored = _read(path)
    assert cell_problems(stored, _as_papermill_copy(stored)) == {}
    copy = tmp_path / path.name
    perturbed = _read(path)
    number, output = _first_checked_text(perturbed)
    _perturb(output)
    nbformat.write(perturbed, copy)
    problems = cell_problems(_read(copy), _as_papermill_copy(stored))
    assert list(problems) == [number] and "differs" in problems[number]
    noisy = _as_papermill_copy(stored)
    run_cells = [c for c in _code_cells(noisy) if "injected-parameters" not in c.metadata.get("tags", [])]
    run_cells[number].outputs.append(nbformat.v4.new_output("stream", name="stderr", text="a warning\n"))
    assert "unexpected output fields" in cell_problems(stored, noisy)[number]


# nbval against this check: (cell source, metadata tags, what to do to the stored copy, does nbval fail it?)
def _set(key, value):
    def change(cell):
        cell[key] = value
    return change


def _edit_output(i, edit):
    def change(cell):
        edit(cell.outputs[i])
    return change


AGREEMENT_CASES = [
    ("# NBVAL_CHECK_OUTPUT\nprint('alpha')", [], None, False),
    ("# NBVAL_CHECK_OUTPUT\nprint('beta')", [], _edit_output(0, lambda o: o.update(text="BETA\n")), True),
    ("# NBVAL_CHECK_OUTPUT\n40 + 2", [], _set("execution_count", 99), False),
    ("# NBVAL_CHECK_OUTPUT\n40 + 2", [], _edit_output(0, lambda o: o["data"].update({"text/plain": "41"})), True),
    ("print('gamma')", [], _edit_output(0, lambda o: o.update(text="other\n")), False),
    ("# NBVAL_IGNORE_OUTPUT\nprint('delta')", [], _edit_output(0, lambda o: o.update(text="other\n")), False),
    ("print('tagged')", ["nbval-check-output"], _edit_output(0, lambda o: o.update(text="other\n")), True),
    ("# NBVAL_CHECK_OUTPUT\nimport sys\nprint('out')\nprint('err', file=sys.stderr)", [],
     lambda c: setattr(c, "outputs", [o for o in c.outputs if o.get("name") != "stderr"]), True),
    ("# NBVAL_CHECK_OUTPUT\nfrom IPython.display import display\n"
     "display({'text/plain': 'img', 'image/png': 'iVBORw0KGgo='}, raw=True)", [],
     _edit_output(0, lambda o: o["data"].update({"image/png": "R0lGODlh"})), False),
    ("# NBVAL_CHECK_OUTPUT\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>x</b>'))", [],
     _edit_output(0, lambda o: o["data"].update({"text/html": "<b>y</b>"})), True),
    ("# NBVAL_CHECK_OUTPUT\nprint('alpha')\nprint('beta')", [],
     lambda c: setattr(c, "outputs", [nbformat.v4.new_output("stream", name="stdout", text="alpha\n"),
                                      nbformat.v4.new_output("stream", name="stdout", text="beta\n")]), False),
    ("# NBVAL_CHECK_OUTPUT\nprint('10%\\r100%')", [], _edit_output(0, lambda o: o.update(text="100%\n")), False),
    ("# NBVAL_CHECK_OUTPUT\nprint('epsilon')", [], _set("outputs", []), True),
    ("# NBVAL_CHECK_OUTPUT\nprint('zeta')", [],
     lambda c: c.outputs.append(nbformat.v4.new_output("display_data", data={"text/plain": "extra"})), True),
    ("# NBVAL_CHECK_OUTPUT\nprint('eta')", [], lambda c: (_set("execution_count", None)(c), _set("outputs", [])(c)), False),
    ("print('theta')", [], _set("execution_count", None), True),
]


@pytest.mark.notebooks
def test_output_check_agrees_with_nbval(tmp_path):
    """A small notebook is run by papermill; a copy of it with deliberate changes to its stored outputs is
    then both checked here and run by nbval --nbval-lax: the same cells fail, for each kind of change."""
    import papermill as pm

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells.append(nbformat.v4.new_code_cell("x = 0", metadata={"tags": ["parameters"]}))
    for source, tags, _, _ in AGREEMENT_CASES:
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags} if tags else {}))
    nbformat.write(nb, tmp_path / "source.ipynb")
    pm.execute_notebook(str(tmp_path / "source.ipynb"), str(tmp_path / "executed.ipynb"), parameters={"x": 1},
                        kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    executed = _read(tmp_path / "executed.ipynb")

    stored = nbformat.reads(nbformat.writes(executed), as_version=4)
    stored.cells = [c for c in stored.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell in stored.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    for cell, (_, _, change, _) in zip(_code_cells(stored)[1:], AGREEMENT_CASES):
        if change:
            change(cell)
    (tmp_path / "nbval").mkdir()
    case = tmp_path / "nbval" / "case.ipynb"
    nbformat.write(stored, case)
    (tmp_path / "nbval" / "pytest.ini").write_text("[pytest]\n")

    expected = {n + 1 for n, (_, _, _, fails) in enumerate(AGREEMENT_CASES) if fails}
    mine = cell_problems(_read(case), executed)
    assert set(mine) == expected, mine

    import subprocess

    report = tmp_path / "nbval.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval-lax",
                           "--nbval-current-env", f"--junitxml={report}", str(case)],
                          cwd=tmp_path / "nbval", capture_output=True, text=True, timeout=600)
    cases = ET.parse(report).getroot().iter("testcase")
    nbval_failed = {int(c.get("name").split()[-1]) for c in cases if c.find("failure") is not None
                    or c.find("error") is not None}
    assert nbval_failed == expected, proc.stdout[-4000:]


# --------------------------------------------------------------------------- execution (slow)

@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Notebooks 01 and 02 run once, in order, by the kit's papermill runner at the smoke preset."""
    root = tmp_path_factory.mktemp("notebooks")
    before = _snapshot()
    dirs = {"results_dir": str(root / "results"), "figures_dir": str(root / "figures"), "work_dir": str(root / "work")}
    ran = run_notebooks("smoke", only=["01", "02"], dirs=dirs)
    return {"ran": ran, "before": before, **{k: Path(v) for k, v in dirs.items()}}


def _snapshot() -> dict:
    """Files (and their mtimes) under the repository's results/, figures/ and work/ folders for smoke."""
    found = {}
    for folder in output_dirs("smoke", ROOT).values():
        for path in Path(folder).rglob("*") if Path(folder).is_dir() else ():
            found[str(path)] = path.stat().st_mtime
    return found


@pytest.mark.slow
@pytest.mark.notebooks
def test_runner_executes_both_and_records_timings(smoke_run):
    assert set(smoke_run["ran"]) == {"01_corpus_construction.ipynb", "02_gazetteers_and_matching.ipynb"}
    timings = json.loads((smoke_run["results_dir"] / "timings.json").read_text())
    assert all(timings[name]["preset"] == "smoke" and timings[name]["seconds"] > 0 for name in smoke_run["ran"])
    for name in smoke_run["ran"]:
        executed = _read(smoke_run["results_dir"] / "notebooks" / name)
        assert not any(o.get("output_type") == "error" for c in _code_cells(executed) for o in c.outputs)


@pytest.mark.slow
@pytest.mark.notebooks
def test_corpus_notebook_wrote_d_g_and_its_numbers(smoke_run):
    corpus = json.loads((smoke_run["results_dir"] / "corpus.json").read_text())
    counts = corpus["counts"]
    assert corpus["preset"] == "smoke"
    assert counts["pages"] > 0 and counts["articles"] > 0 and counts["redirects"] > 0
    assert 0 < counts["sentences_kept"] < counts["sentences_seen"]
    assert counts["anchors_kept"] >= corpus["settings"]["min_anchors"] * counts["sentences_kept"]
    assert counts["sentences_kept"] + counts["dropped_too_long"] + counts["dropped_few_anchors"] == counts["sentences_seen"]
    sweep = {row["min_anchors"]: row for row in corpus["min_anchors_sweep"]}
    assert sweep[corpus["settings"]["min_anchors"]]["sentences"] == counts["sentences_kept"]
    sizes = [sweep[k]["sentences"] for k in sorted(sweep)]
    assert sizes == sorted(sizes, reverse=True), "a higher threshold never keeps more sentences"
    assert corpus["paper"]["sentences"] == 3911059 and corpus["paper"]["anchors"] == 37755176
    d_g = smoke_run["work_dir"] / "corpus" / "D_g.jsonl"
    lines = d_g.read_text(encoding="utf-8").splitlines()
    assert len(lines) == counts["sentences_kept"]
    first = json.loads(lines[0])
    assert {s[2] for s in first["spans"]} == {"Entity"} and len(first["spans"]) >= 4
    for name in ("corpus_histograms", "corpus_min_anchors_sweep"):
        for ext in ("png", "pdf"):
            assert (smoke_run["figures_dir"] / f"{name}.{ext}").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.notebooks
def test_matching_notebook_wrote_gazetteers_d_s_and_scores(smoke_run):
    matching = json.loads((smoke_run["results_dir"] / "matching.json").read_text())
    assert matching["preset"] == "smoke"
    for name, gaz in matching["gazetteers"].items():
        assert set(gaz["counts"]) == {"PER", "LOC", "ORG"} and all(n > 0 for n in gaz["counts"].values()), name
    assert {"en-wnut16", "en-conll2003", "zh-msra"} <= set(matching["gazetteers"])
    assert matching["paper_gazetteers"]["en"] == {"PER": 2795, "ORG": 1825, "LOC": 1408}
    for target, counts in matching["d_s"].items():
        assert 0 < counts["sentences_out"] <= counts["sentences_in"], target
        assert 0 < counts["anchors_matched"] <= counts["anchors_in"], target
        d_s = smoke_run["work_dir"] / "corpus" / f"D_s_en-{target}.jsonl"
        assert len(d_s.read_text(encoding="utf-8").splitlines()) == counts["sentences_out"]
        assert (smoke_run["work_dir"] / "gazetteers" / f"en-{target}" / "provenance.json").is_file()
    assert (smoke_run["work_dir"] / "gazetteers" / "zh-msra" / "PER.txt").is_file()
    assert set(matching["matching"]) >= {"wnut16", "conll2003"}
    for dataset, splits in matching["matching"].items():
        assert set(splits) == {"dev", "test"}, dataset
        for split, scores in splits.items():
            for m in [scores, *scores["per_type"].values()]:
                assert all(0.0 <= m[k] <= 1.0 for k in ("precision", "recall", "f1")), (dataset, split)
            assert scores["n_gold"] > 0 and scores["tp"] > 0
            assert set(scores["per_type"]) <= {"PER", "LOC", "ORG"}
    assert matching["matching"]["conll2003"]["dev"]["removed_gold"]["MISC"] > 0, "MISC gold is removed, not scored"
    assert matching["paper_matching"]["twitter"] == {"P": 28.29, "R": 24.58, "F1": 26.3}
    for name in ("gazetteer_sizes", "matching_f1"):
        for ext in ("png", "pdf"):
            assert (smoke_run["figures_dir"] / f"{name}.{ext}").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.notebooks
def test_no_run_writes_into_the_repository(smoke_run):
    """Explicit folders win over the preset's defaults: nothing changed under results/smoke, figures/smoke, work/smoke."""
    assert _snapshot() == smoke_run["before"]


# --------------------------------------------------------------------------- notebooks 03-09 (slow)

@pytest.fixture(scope="session")
def smoke_batch(smoke_run):
    """Notebooks 03-09 after 01-02, in the same folders, as `make reproduce PRESET=smoke` runs them."""
    dirs = {k: str(smoke_run[k]) for k in ("results_dir", "figures_dir", "work_dir")}
    ran = run_notebooks("smoke", only=[f"{i:02d}" for i in range(3, 11)], dirs=dirs)
    return {**smoke_run, "ran_batch": ran}


@pytest.mark.slow
@pytest.mark.notebooks
def test_stage_notebooks_reuse_one_cofee_run(smoke_batch):
    results = smoke_batch["results_dir"]
    esi, nee, fet = (json.loads((results / f"{n}.json").read_text()) for n in ("esi", "nee", "fet"))
    assert esi["preset"] == nee["preset"] == fet["preset"] == "smoke"
    assert nee["reused"]["esi"] is True, "notebook 04 reuses notebook 03's ESI run"
    assert fet["dev_f1_by_stage"]["esi"] == esi["best_dev_f1"] and fet["dev_f1_by_stage"]["nee"] == nee["best_dev_f1"]
    assert len(nee["iterations"]) == nee["settings"]["epochs_nee"]
    assert set(fet["alpha_both"]) >= {"alpha (sum, paper)", "alpha (per feature, authors' code)"}
    assert fet["alpha_spread"]["alpha (sum, paper)"] < fet["alpha_spread"]["alpha (per feature, authors' code)"]
    for name in ("esi_training", "nee_self_picking", "fet_clusters", "fet_alpha", "fet_clusters_2d"):
        assert (smoke_batch["figures_dir"] / f"{name}.png").stat().st_size > 1000, name


@pytest.mark.slow
@pytest.mark.notebooks
def test_table_notebooks_write_tables_md(smoke_batch):
    results = smoke_batch["results_dir"]
    t3 = json.loads((results / "table3_wnut16.json").read_text())
    assert list(t3["rows"])[:5] == ["Gazetteer Matching", "MRC-NER", "CoFEE-MRC", "-FET", "-FET-ESI"]
    from cofee_lib.experiments import IN_DOMAIN_ROWS

    assert list(t3["rows"])[5:8] == list(IN_DOMAIN_ROWS), "the in-domain rows (beyond the paper) follow the paper's"
    assert all("in-domain" in name and t3["rows"][name]["beyond_paper"] for name in IN_DOMAIN_ROWS)
    assert t3["in_domain"]["corpus"]["sentences_in"] == 40 and t3["in_domain"]["settings"]["domain_text"] == "dataset:wnut16"
    assert list(t3["rows"])[8:] == [ROW_NAME], "the off-the-shelf spaCy row stands beside the kit's"
    caps = json.loads((results / "in_domain.json").read_text())
    assert sorted({p["cap"] for p in caps["caps"]}) == [40, 80] and (results / "counts" / "in_domain.json").is_file()
    counts = json.loads((results / "counts" / "table3_wnut16.json").read_text())
    assert set(counts["rows"]) == set(t3["rows"]) and counts["sentences"] == t3["test_sentences"]
    assert all(t3["runs"][k]["reused"] == {"esi": True, "nee": True, "fet": True} for k in t3["runs"] if k.endswith("/cofee")), \
        "Table 3's CoFEE row is the run of notebooks 03-05"
    assert t3["test_sentences"] == 60, "smoke scores a 60-sentence share of test"
    t2 = json.loads((results / "table2_wnut16.json").read_text())
    assert list(t2["rows"]) == ["BiLSTM-CRF", "BERT", "MRC-NER", "CoFEE-BERT", "CoFEE-MRC", ROW_NAME]
    assert t2["rows"]["BiLSTM-CRF"]["n_seeds"] == 2 and t2["rows"]["BiLSTM-CRF"]["F1_std"] is not None
    md = (results / "tables.md").read_text()
    assert "## Table 3 (weakly supervised): wnut16 (paper: twitter)" in md and "## Table 2 (supervised): wnut16" in md
    assert "| CoFEE-MRC |" in md and "Wall time per notebook" in md
    csv_rows = (results / "tables.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 9 + 6      # header, Table 3 (6 + 3 in-domain rows), Table 2
    claims = json.loads((results / "claims.json").read_text())
    assert {c["id"] for c in claims} == {f"C{i}" for i in range(1, 15)}, "every claim judged at smoke"
    assert all(c["verdict"] in ("reproduced", "contradicted", "inconclusive") for c in claims)


@pytest.mark.slow
@pytest.mark.notebooks
def test_figure_notebooks_write_six_panels(smoke_batch):
    results, figures = smoke_batch["results_dir"], smoke_batch["figures_dir"]
    fig2 = json.loads((results / "figure2.json").read_text())
    assert [p["fraction"] for p in fig2["a"]] == fig2["grid"]["pretrain_fractions"]
    assert [p["delta"] for p in fig2["c"]] == fig2["grid"]["deltas"]
    assert [p["k"] for p in fig2["d"]] == fig2["grid"]["ks"]
    assert {p["row"] for p in fig2["b"]} == {"MRC-NER", "CoFEE-MRC"}
    assert fig2["a"][0]["d_g_sentences"] <= fig2["a"][-1]["d_g_sentences"]
    assert fig2["d"][-1]["reused"]["nee"] is True, "the K sweep shares ESI and NEE"
    fig3 = json.loads((results / "figure3.json").read_text())
    sizes = {}
    for row in fig3["a"]:
        sizes.setdefault(row["type"], []).append(row["entries"])
    assert all(v == sorted(v) for v in sizes.values()), "nested gazetteer shares grow"
    assert fig3["b"][0]["d_s_sentences"] <= fig3["b"][-1]["d_s_sentences"]
    for name in ("figure2", "figure2a", "figure2b", "figure2c", "figure2d", "figure3", "figure3a", "figure3b"):
        for ext in ("png", "pdf"):
            assert (figures / f"{name}.{ext}").stat().st_size > 1000, name
    timings = json.loads((results / "timings.json").read_text())
    assert set(smoke_batch["ran_batch"]) <= set(timings)


# --------------------------------------------------------------------------- what nbval checked (slow)

def _executed(request, path: Path):
    """The executed copy of ``path`` from the one smoke run (01-02 need only the first fixture)."""
    run = request.getfixturevalue("smoke_run" if path.name[:2] in ("01", "02") else "smoke_batch")
    return _read(run["results_dir"] / "notebooks" / path.name)


@pytest.mark.slow
@pytest.mark.notebooks
def test_every_notebook_ran_once_without_an_error(smoke_batch):
    assert set(smoke_batch["ran"]) | set(smoke_batch["ran_batch"]) == {p.name for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        executed = _read(smoke_batch["results_dir"] / "notebooks" / path.name)
        assert not any(o.get("output_type") == "error" for c in _code_cells(executed) for o in c.outputs), path.name


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_checked_cells_reproduce_the_stored_outputs(path, request):
    """nbval --nbval-lax on the one smoke run: the marked cells' outputs equal those stored in the notebook
    file as it is now (``cofee reproduce --store-outputs`` stores them)."""
    executed = _executed(request, path)
    problems = cell_problems(_read(path), executed, sanitize_patterns(request.config))
    assert not problems, _describe(problems, path.name) + "\n(if the change is intended: cofee reproduce --store-outputs)"


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS[:1], ids=lambda p: p.stem)
def test_a_perturbed_stored_output_fails_against_the_run(path, request, tmp_path):
    """The check is live on a real run: a temp copy of the notebook with one stored output changed fails."""
    executed = _executed(request, path)
    perturbed = _read(path)
    number, output = _first_checked_text(perturbed)
    _perturb(output)
    nbformat.write(perturbed, tmp_path / path.name)
    problems = cell_problems(_read(tmp_path / path.name), executed)
    assert number in problems and "differs" in problems[number], problems
