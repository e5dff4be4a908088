"""What the notebooks show and what the kit keeps of them.

* :func:`cofee_lib.reproduce.tidy_notebook`, applied to every executed copy under
  ``results/notebooks/``: each progress bar (carriage-return text or a widget) becomes its
  final line, tqdm's "IProgress not found" warning goes, absolute paths become
  repository-relative, and every other output is left alone.
* the notebooks' helpers: :func:`cofee_lib.display.show_source` and the parameter,
  target and stage-file lookups of :class:`cofee_lib.notebook.NotebookRun`.
"""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import nbformat
import pytest

from cofee_lib.reproduce import collapse_progress, path_replacements, recorded_replacements, tidy_notebook

ROOT = Path("/home/someone/cofee-kit")
WARNING = ("/home/someone/cofee-kit/.venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not "
           "found. Please update jupyter and ipywidgets. See https://ipywidgets.readthedocs.io/en/stable/user_install.html\n"
           "  from .autonotebook import tqdm as notebook_tqdm\n")


def _tqdm_text(**kw) -> str:
    """What a real tqdm bar writes to a stream: redraws after \\r, epoch messages through tqdm.write."""
    from tqdm import tqdm

    out = io.StringIO()
    bar = tqdm(total=4, desc="train", unit="step", file=out, mininterval=0, miniters=1, **kw)
    for step in range(4):
        bar.update(1)
        if step % 2 == 1:
            bar.write(f"epoch {step // 2 + 1}: loss 0.5", file=out)
    bar.close()
    return out.getvalue()


def _lines(text: str) -> list[str]:
    return text.splitlines()


# --------------------------------------------------------------------------- progress text

def test_a_bar_with_messages_keeps_the_messages_then_its_final_line():
    raw = _tqdm_text(leave=True)
    assert raw.count("\r") > 4
    lines = _lines(collapse_progress(raw))
    assert lines[:2] == ["epoch 1: loss 0.5", "epoch 2: loss 0.5"]
    assert len(lines) == 3 and lines[2].startswith("train: 100%|") and "4/4" in lines[2]
    assert "\r" not in collapse_progress(raw)


def test_a_bar_that_clears_itself_keeps_its_final_state():
    lines = _lines(collapse_progress(_tqdm_text(leave=False)))
    assert lines[:2] == ["epoch 1: loss 0.5", "epoch 2: loss 0.5"]
    assert len(lines) == 3 and lines[2].startswith("train: 100%|") and "4/4" in lines[2]


def test_two_transient_bars_on_one_line_give_two_lines():
    text = ("\rreading a.xml.bz2:   0%|          | 0.00/1.62M [00:00<?, ?B/s]"
            "\rreading a.xml.bz2: 100%|██████████| 1.62M/1.62M [00:01<00:00, 757kB/s]\r" + " " * 70 + "\r\r"
            "\rreading b.xml.bz2:   0%|          | 0.00/62.6k [00:00<?, ?B/s]\r" + " " * 60 + "\r\r"
            "[cofee] done\n")
    assert _lines(collapse_progress(text)) == [
        "reading a.xml.bz2: 100%|██████████| 1.62M/1.62M [00:01<00:00, 757kB/s]",
        "reading b.xml.bz2:   0%|          | 0.00/62.6k [00:00<?, ?B/s]",
        "[cofee] done"]


def test_text_without_carriage_returns_is_unchanged():
    text = "first line\n\n  indented   \nlast without newline"
    assert collapse_progress(text) == text


# --------------------------------------------------------------------------- whole notebooks

def _executed_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"input_path": f"{ROOT}/notebooks/03_esi.ipynb",
                                "output_path": f"{ROOT}/results/smoke/notebooks/03_esi.ipynb",
                                "parameters": {"preset": "smoke", "results_dir": "/tmp/tmpab12cd/results",
                                               "work_dir": f"{ROOT}/work/smoke"}, "duration": 3.2}
    params = nbformat.v4.new_code_cell("preset = None\nresults_dir = None\n", metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell(f'# Parameters\npreset = "smoke"\nresults_dir = "/tmp/tmpab12cd/results"\n'
                                         f'work_dir = "{ROOT}/work/smoke"\n',
                                         metadata={"tags": ["injected-parameters"]})
    train = nbformat.v4.new_code_cell("esi = pretrain(...)")
    bar = _tqdm_text(leave=True)
    half = len(bar) // 2
    train.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=WARNING),
        nbformat.v4.new_output("stream", name="stderr",
                               text=f"[cofee] esi: reusing the finished run {ROOT}/work/smoke/runs/esi-0123 (same)\n"),
        nbformat.v4.new_output("stream", name="stderr", text=bar[:half]),
        nbformat.v4.new_output("stream", name="stderr", text=bar[half:]),
        nbformat.v4.new_output("stream", name="stdout", text="ESI reused: False\n"),
    ]
    widget = nbformat.v4.new_code_cell("view = cluster_view(...)")
    widget.outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "k-means K=3:   0%|          | 0/3 [00:00<?, ?restart/s]",
        "application/vnd.jupyter.widget-view+json": {"model_id": "box1", "version_major": 2, "version_minor": 0}})]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {
        "box1": {"state": {"children": ["IPY_MODEL_left1", "IPY_MODEL_bar1", "IPY_MODEL_right1"]}},
        "left1": {"state": {"value": "k-means\u2007K=3: 100%"}},
        "bar1": {"state": {"value": 3.0, "max": 3.0}},
        "right1": {"state": {"value": "\u20073/3\u2007[00:01&lt;00:00,\u20072.50restart/s]"}}}},
        "version_major": 2, "version_minor": 0}
    table = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nframe")
    table.outputs = [nbformat.v4.new_output("execute_result", execution_count=5, data={
        "text/plain": "   F1\nwnut16 0.5", "text/html": "<table><tr><td>0.5</td></tr></table>"})]
    figure = nbformat.v4.new_code_cell("run.save_figure(fig, 'x');")
    figure.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=",
                                                                   "text/plain": "<Figure size 640x480 with 1 Axes>"}),
                      nbformat.v4.new_output("stream", name="stdout", text="wrote esi.json\n")]
    paths = nbformat.v4.new_code_cell("report['best_dir']")
    paths.outputs = [nbformat.v4.new_output("execute_result", execution_count=7, data={
        "text/plain": f"'{ROOT}/work/smoke/runs/esi-0123/best'"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# 03"), params, injected, train, widget, table, figure, paths]
    return nb


@pytest.fixture
def tidied():
    nb = _executed_notebook()
    original = copy.deepcopy(nb)
    dirs = {"results_dir": "/tmp/tmpab12cd/results", "figures_dir": f"{ROOT}/figures/smoke",
            "work_dir": f"{ROOT}/work/smoke"}
    tidy_notebook(nb, path_replacements(dirs, ROOT, "smoke"))
    nbformat.validate(nb)
    return original, nb


def test_progress_collapsed_and_warning_dropped(tidied):
    _, nb = tidied
    stderr = [o for o in nb.cells[3].outputs if o.output_type == "stream" and o.name == "stderr"]
    assert len(stderr) == 1, "consecutive outputs of one stream are joined"
    lines = _lines(stderr[0].text)
    assert lines[0] == "[cofee] esi: reusing the finished run work/smoke/runs/esi-0123 (same)"
    assert lines[1:3] == ["epoch 1: loss 0.5", "epoch 2: loss 0.5"]
    assert len(lines) == 4 and lines[3].startswith("train: 100%|") and "4/4" in lines[3]
    assert "TqdmWarning" not in json.dumps(nb) and "\\r" not in json.dumps(nb.cells[3].outputs)
    assert [o.text for o in nb.cells[3].outputs if o.output_type == "stream" and o.name == "stdout"] == \
        ["ESI reused: False\n"]


def test_widget_bar_becomes_its_final_line(tidied):
    _, nb = tidied
    (out,) = nb.cells[4].outputs
    assert out.output_type == "stream" and out.name == "stderr"
    assert out.text == "k-means K=3: 100%|██████████| 3/3 [00:01<00:00, 2.50restart/s]\n"
    assert "widgets" not in nb.metadata


def test_absolute_paths_become_repository_relative(tidied):
    _, nb = tidied
    assert nb.cells[2].source == '# Parameters\npreset = "smoke"\nresults_dir = "results/smoke"\nwork_dir = "work/smoke"\n'
    assert nb.cells[7].outputs[0].data["text/plain"] == "'work/smoke/runs/esi-0123/best'"
    meta = nb.metadata["papermill"]
    assert meta["input_path"] == "notebooks/03_esi.ipynb"
    assert meta["output_path"] == "results/smoke/notebooks/03_esi.ipynb"
    assert meta["parameters"] == {"preset": "smoke", "results_dir": "results/smoke", "work_dir": "work/smoke"}
    text = json.dumps(nb)
    assert str(ROOT) not in text and "/tmp/" not in text and "tmpab12cd" not in text


def test_other_outputs_and_sources_untouched(tidied):
    original, nb = tidied
    for i in (0, 1, 5, 6):
        assert nb.cells[i] == original.cells[i]
    assert [c.source for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])] == \
        [c.source for c in original.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    assert nb.metadata["papermill"]["duration"] == 3.2


def test_a_copy_executed_in_another_checkout_is_tidied_from_its_own_record():
    nb = _executed_notebook()
    nb.metadata["papermill"]["parameters"]["figures_dir"] = f"{ROOT}/figures/smoke"
    tidy_notebook(nb, recorded_replacements(nb))
    assert nb.cells[2].source == '# Parameters\npreset = "smoke"\nresults_dir = "results/smoke"\nwork_dir = "work/smoke"\n'
    assert str(ROOT) not in json.dumps(nb) and "/tmp/" not in json.dumps(nb)


def test_other_temporary_folders_and_the_home_folder_are_not_named():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="scratch /tmp/pytest-of-me/run7/x.json\n")]
    nb.cells = [cell]
    tidy_notebook(nb, path_replacements({}, ROOT, "smoke"))
    assert nb.cells[0].outputs[0].text == "scratch <tmp>/run7/x.json\n"


# --------------------------------------------------------------------------- the notebooks' helpers

def test_show_source_names_the_function_and_renders_markdown():
    from cofee_lib.display import show_source
    from cofee_lib.stages import SelfPicking

    view = show_source(SelfPicking.on_epoch_end)
    assert view.name == "cofee_lib.stages.SelfPicking.on_epoch_end" and view.path == "cofee_lib/stages.py"
    assert view.source.startswith("def on_epoch_end(")
    assert str(view).startswith("# cofee_lib.stages.SelfPicking.on_epoch_end (cofee_lib/stages.py, lines ")
    markdown = view._repr_markdown_()
    assert "```python\ndef on_epoch_end(" in markdown and markdown.rstrip().endswith("```")


def test_notebook_parameters_resolve_to_the_preset(tmp_path):
    from cofee_lib.notebook import setup
    from cofee_lib.presets import get_preset, stage_settings, train_config

    run = setup("paper", tmp_path / "r", tmp_path / "f", tmp_path / "w", style=False)
    assert run.setting("delta") == stage_settings("paper").delta and run.setting("delta", 0.3) == 0.3
    assert run.setting("k") == 23 and run.setting("lr") == train_config("paper").lr
    assert run.setting("esi.epochs") == train_config("paper", "esi").epochs
    assert run.setting("model") == "bert-base-cased"
    assert run.setting("experiments.figure2.deltas") == get_preset("paper")["experiments"]["figure2"]["deltas"]
    assert run.stage_target() == get_preset("paper")["experiments"]["table3_targets"][0]
    assert run.stage_target("conll2003") == "conll2003"
    from cofee_lib.errors import CofeeError

    with pytest.raises(CofeeError, match="no setting"):
        run.setting("experiments.nothing")


def test_stage_file_finds_what_a_stage_wrote(tmp_path):
    from cofee_lib.errors import CofeeError
    from cofee_lib.notebook import setup

    run = setup("smoke", tmp_path / "r", tmp_path / "f", tmp_path / "w", style=False)
    store = tmp_path / "w" / "runs" / "nee-0123"
    (store / "best").mkdir(parents=True)
    (store / "ds_best.jsonl").write_text("{}\n")
    report = {"stage_reports": {"nee": {"store": str(store), "best_dir": "/elsewhere/best"}}}
    assert run.stage_file(report, "nee", "ds_best.jsonl") == store / "ds_best.jsonl"
    assert run.stage_file(report, "nee", "best") == store / "best"
    assert run.stage_file({"stage_reports": {"nee": {"best_dir": str(store / "best")}}}, "nee") == store
    with pytest.raises(CofeeError, match="no fet stage"):
        run.stage_file(report, "fet", "clusters.json")
    with pytest.raises(CofeeError, match="wrote no clusters.json"):
        run.stage_file(report, "nee", "clusters.json")


def test_a_partial_run_keeps_its_executed_copy_beside_the_whole_runs():
    from cofee_lib.reproduce import executed_name, parse_overrides

    assert executed_name("06_table3_weak_supervision.ipynb", {}) == "06_table3_weak_supervision.ipynb"
    over = parse_overrides([["targets", '["conll2003", "wnut16"]'], ["rows", "in-domain"]])
    name = executed_name("06_table3_weak_supervision.ipynb", over)
    assert name == "06_table3_weak_supervision.rows-in-domain-targets-conll2003-wnut16.ipynb"
    assert name != executed_name("06_table3_weak_supervision.ipynb", {"rows": "all"})
