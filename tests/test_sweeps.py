"""Running only some panels of a sweep (notebook 08 ``-p panels cd``) keeps the others as they were."""
from __future__ import annotations

import json

import pytest

from cofee_lib.errors import CofeeError
from cofee_lib.experiments import kept_panels, notebook_command, write_sweeps


def _point(panel_x: str, x, seed, f1, counts, row=None):
    point = {panel_x: x, "seed": seed, "dev_F1": f1, "steps": 10, "dev_sentence_counts": counts}
    return {**point, "row": row} if row else point


def _summary(f1: float, counts) -> dict:
    return {"preset": "default", "target": "wnut16",
            "a": [_point("fraction", 0.2, 42, f1, counts), _point("fraction", 1.0, 42, f1 + 0.1, counts)],
            "b": [_point("fraction", 0.1, 42, f1, counts, row="MRC-NER"),
                  _point("fraction", 0.1, 42, f1 + 0.05, counts, row="CoFEE-MRC")],
            "c": [_point("delta", 0.1, 42, f1, counts)], "d": [_point("k", 8, 42, f1, counts)],
            "panel_runs": {p: {"finished": "first run"} for p in "abcd"},
            "grid": {"pretrain_fractions": [0.2, 1.0], "finetune_fractions": [0.1], "deltas": [0.1], "ks": [8]}}


def test_the_panels_not_run_again_are_written_back_with_their_counts(tmp_path):
    first = [[1, 1, 2], [0, 1, 1], [2, 2, 2]]
    write_sweeps(tmp_path, "figure2", _summary(0.3, first))
    kept = kept_panels(tmp_path, "figure2", "wnut16", "default", "cd")
    assert set(kept) == {"a", "b", "panel_runs", "grid"} and set(kept["panel_runs"]) == {"a", "b"}
    assert kept["grid"] == {"pretrain_fractions": [0.2, 1.0], "finetune_fractions": [0.1]}
    assert [p["dev_sentence_counts"] for p in kept["a"] + kept["b"]] == [first] * 4
    assert kept["b"][1]["row"] == "CoFEE-MRC" and kept["b"][1]["dev_F1"] == pytest.approx(0.35)

    again = _summary(0.6, [[0, 0, 2], [1, 1, 1], [0, 0, 2]])
    merged = {**again, "a": kept["a"], "b": kept["b"],
              "panel_runs": {**kept["panel_runs"], "c": {"finished": "second"}, "d": {"finished": "second"}}}
    write_sweeps(tmp_path, "figure2", merged)
    result = json.loads((tmp_path / "figure2.json").read_text())
    counts = json.loads((tmp_path / "counts" / "figure2.json").read_text())
    assert [p["dev_F1"] for p in result["a"]] == pytest.approx([0.3, 0.4])     # kept
    assert result["c"][0]["dev_F1"] == pytest.approx(0.6)                        # run again
    assert counts["panels"]["a"][0]["counts"] == first
    assert counts["panels"]["c"][0]["counts"] == [[0, 0, 2], [1, 1, 1], [0, 0, 2]]
    assert result["panel_runs"]["a"] == {"finished": "first run"} and result["panel_runs"]["d"] == {"finished": "second"}


def test_all_panels_keep_nothing_and_bad_requests_are_refused(tmp_path):
    assert kept_panels(tmp_path, "figure2", "wnut16", "default", "abcd") == {}
    with pytest.raises(CofeeError, match="not found; run every panel once"):
        kept_panels(tmp_path, "figure2", "wnut16", "default", "cd")
    write_sweeps(tmp_path, "figure2", _summary(0.3, [[1, 1, 1]]))
    with pytest.raises(CofeeError, match="no panel e"):
        kept_panels(tmp_path, "figure2", "wnut16", "default", "ce")
    with pytest.raises(CofeeError, match="not conll2003 at default"):
        kept_panels(tmp_path, "figure2", "conll2003", "default", "cd")


def test_a_run_panel_names_every_override_it_was_given():
    # the preset's values (None) are not named; an override is, spelt as in the timings key of cofee reproduce
    assert notebook_command("08", "default", panels=None, deltas=None) == "notebooks/08 (preset default)"
    command = notebook_command("08", "default", panels="c", deltas=[0.05, 0.1, 0.2, 0.5], ks=None, seeds=[42, 43])
    assert command == 'notebooks/08 (preset default) -p panels "c" -p deltas [0.05, 0.1, 0.2, 0.5] -p seeds [42, 43]'
