"""The numbered notebooks: well-formed (fast) and runnable end to end at the smoke preset (slow).

Fast tests read every ``notebooks/NN_*.ipynb`` as JSON: a markdown cell first,
exactly one cell tagged ``parameters`` that holds ``preset``, ``results_dir``,
``figures_dir`` and ``work_dir`` (all ``None``), stored outputs (from a smoke
run) for every cell nbval checks, no stderr stored, and no long function
defined in a notebook (logic lives in ``cofee_lib``).

Slow tests execute notebooks 01 and 02 with papermill through the kit's
runner (:func:`cofee_lib.reproduce.run_notebooks`) at the smoke preset into a
temporary folder and check what they wrote: ``corpus.json``,
``matching.json``, the figures and the corpora in the work folder. nbval
(``pytest notebooks``, part of ``make test``) runs them a second way.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

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


def test_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert [n[:2] for n in names] == [f"{i:02d}" for i in range(1, 10)], names
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
    """The stored settings table names the smoke preset, so nbval compares like with like."""
    nb = _read(ROOT / "notebooks" / "01_corpus_construction.ipynb")
    texts = [o.get("data", {}).get("text/plain", "") for c in _code_cells(nb) if CHECK in c.source for o in c.outputs]
    assert any("preset smoke" in t for t in texts)


# --------------------------------------------------------------------------- execution (slow)

@pytest.fixture(scope="module")
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
def test_runner_executes_both_and_records_timings(smoke_run):
    assert set(smoke_run["ran"]) == {"01_corpus_construction.ipynb", "02_gazetteers_and_matching.ipynb"}
    timings = json.loads((smoke_run["results_dir"] / "timings.json").read_text())
    assert all(timings[name]["preset"] == "smoke" and timings[name]["seconds"] > 0 for name in smoke_run["ran"])
    for name in smoke_run["ran"]:
        executed = _read(smoke_run["results_dir"] / "notebooks" / name)
        assert not any(o.get("output_type") == "error" for c in _code_cells(executed) for o in c.outputs)


@pytest.mark.slow
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
def test_no_run_writes_into_the_repository(smoke_run):
    """Explicit folders win over the preset's defaults: nothing changed under results/smoke, figures/smoke, work/smoke."""
    assert _snapshot() == smoke_run["before"]


# --------------------------------------------------------------------------- notebooks 03-09 (slow)

@pytest.fixture(scope="module")
def smoke_batch(smoke_run):
    """Notebooks 03-09 after 01-02, in the same folders, as `make reproduce PRESET=smoke` runs them."""
    dirs = {k: str(smoke_run[k]) for k in ("results_dir", "figures_dir", "work_dir")}
    ran = run_notebooks("smoke", only=[f"{i:02d}" for i in range(3, 10)], dirs=dirs)
    return {**smoke_run, "ran_batch": ran}


@pytest.mark.slow
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
def test_table_notebooks_write_tables_md(smoke_batch):
    results = smoke_batch["results_dir"]
    t3 = json.loads((results / "table3_wnut16.json").read_text())
    assert list(t3["rows"]) == ["Gazetteer Matching", "MRC-NER", "CoFEE-MRC", "-FET", "-FET-ESI"]
    assert all(t3["runs"][k]["reused"] == {"esi": True, "nee": True, "fet": True} for k in t3["runs"] if k.endswith("/cofee")), \
        "Table 3's CoFEE row is the run of notebooks 03-05"
    assert t3["test_sentences"] == 60, "smoke scores a 60-sentence share of test"
    t2 = json.loads((results / "table2_wnut16.json").read_text())
    assert list(t2["rows"]) == ["BiLSTM-CRF", "BERT", "MRC-NER", "CoFEE-BERT", "CoFEE-MRC"]
    assert t2["rows"]["BiLSTM-CRF"]["n_seeds"] == 2 and t2["rows"]["BiLSTM-CRF"]["F1_std"] is not None
    md = (results / "tables.md").read_text()
    assert "## Table 3 (weakly supervised): wnut16 (paper: twitter)" in md and "## Table 2 (supervised): wnut16" in md
    assert "| CoFEE-MRC |" in md and "Wall time per notebook" in md
    csv_rows = (results / "tables.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 5 + 5


@pytest.mark.slow
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
