"""Training runs reused by content (cofee_lib/runs.py) and through ``cofee pretrain``.

The key of a run must change with anything that changes what it computes
(initial weights, tokenizer, data, training config, stage settings) and with
nothing else; a finished run is returned without training; ``<out>/<stage>``
points at the stored run either way.
"""
from __future__ import annotations

import json

import pytest

from cofee_lib import runs
from cofee_lib.backbones import build_backbone
from cofee_lib.engine import TrainConfig
from cofee_lib.errors import CofeeError

RECORDS = [{"id": f"s{i}", "tokens": ["Ann", "went", "to", "Paris", str(i)], "spans": [[0, 0, "PER"], [3, 3, "LOC"]]}
           for i in range(6)]


@pytest.fixture(scope="module")
def tagger():
    return build_backbone("tagger", ["PER", "LOC"], model="tiny", records=RECORDS, max_len=32, seed=1)


def _key(model, train=RECORDS, dev=RECORDS[:2], config=None, settings=None):
    return runs.store_dir("/w", "nee", runs.run_key("nee", model, train, dev, config or TrainConfig(), settings))


def test_key_follows_what_the_run_computes(tagger):
    base = _key(tagger)
    assert base == _key(tagger), "same inputs, same folder"
    assert base.parent.name == "runs" and base.name.startswith("nee-")
    assert _key(tagger, train=RECORDS[:5]) != base
    assert _key(tagger, dev=RECORDS[2:4]) != base
    assert _key(tagger, config=TrainConfig(lr=1e-3)) != base
    assert _key(tagger, config=TrainConfig(num_threads=1, checkpoint_every=7, progress=False)) == base, \
        "threads, checkpoint spacing and progress bars do not change results"
    from cofee_lib.hardware import choose_precision

    here = choose_precision("auto").precision
    other_precision = "fp32" if here == "bf16" else "bf16"
    assert _key(tagger, config=TrainConfig(precision=here)) == base, "auto keys on the precision it resolves to"
    assert _key(tagger, config=TrainConfig(precision=other_precision)) != base, "fp32 and bf16 runs never share a folder"
    assert _key(tagger, settings={"delta": 0.3}) != base
    other = build_backbone("tagger", ["PER", "LOC"], model="tiny", records=RECORDS, max_len=32, seed=2)
    assert _key(other) != base, "other initial weights"


def test_key_follows_the_tokenizer(tagger):
    """The authors' feature cache ignored the tokenizer; same weights with another vocabulary is another run."""
    before = runs.tokenizer_digest(tagger)
    assert before is not None
    tagger.tokenizer.add_tokens(["zzqx-new-token"])
    assert runs.tokenizer_digest(tagger) != before


def test_run_cached_reuses_a_finished_run_and_links_out(tmp_path, tagger):
    calls = []

    def execute(folder, resume):
        calls.append((folder, resume))
        (folder / "best").mkdir(parents=True)
        report = {"stage": "nee", "best_f1": 0.5}
        (folder / "report.json").write_text(json.dumps(report))
        return report

    args = ("nee", tagger, RECORDS, RECORDS[:2], TrainConfig())
    first = runs.run_cached(*args, tmp_path / "work", tmp_path / "a" / "nee", execute)
    second = runs.run_cached(*args, tmp_path / "work", tmp_path / "b" / "nee", execute)
    assert len(calls) == 1 and calls[0][1] is False
    assert first["reused"] is False and second["reused"] is True and second["best_f1"] == 0.5
    assert first["store"] == second["store"]
    for out in ("a", "b"):
        assert (tmp_path / out / "nee" / "best").is_dir()
        assert (tmp_path / out / "nee").resolve() == (tmp_path / "work" / "runs").resolve() / first["store"].rsplit("/", 1)[1]
    # a changed setting trains again, into another folder
    third = runs.run_cached(*args, tmp_path / "work", tmp_path / "a" / "nee", execute, settings={"delta": 0.3})
    assert len(calls) == 2 and third["store"] != first["store"]
    # without the cache the run goes to out itself
    runs.run_cached(*args, tmp_path / "work", tmp_path / "c" / "nee", execute, use_cache=False)
    assert calls[-1] == (tmp_path / "c" / "nee", False) and not (tmp_path / "c" / "nee").is_symlink()
    runs.run_cached(*args, tmp_path / "work", tmp_path / "d" / "nee", execute, use_cache=False, resume=True)
    assert calls[-1] == (tmp_path / "d" / "nee", True), "--no-cache --resume continues a checkpoint in --out"


def test_an_interrupted_run_is_not_reused(tmp_path, tagger):
    def crash(folder, resume):
        folder.mkdir(parents=True, exist_ok=True)
        raise RuntimeError("killed")

    args = ("esi", tagger, RECORDS, RECORDS[:2], TrainConfig())
    with pytest.raises(RuntimeError):
        runs.run_cached(*args, tmp_path / "work", tmp_path / "out" / "esi", crash)
    done = []

    def execute(folder, resume):
        done.append(resume)
        (folder / "report.json").write_text("{}")
        return {}

    runs.run_cached(*args, tmp_path / "work", tmp_path / "out" / "esi", execute)
    assert done == [False], "no checkpoint was left, so the run starts again (not resumed, not reused)"


def test_link_refuses_to_replace_a_foreign_folder(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(CofeeError, match="not a training run folder"):
        runs.link(foreign, target)
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_pretrain_reuses_finished_stages(tmp_path, cofee_cli):
    """A second CoFEE run with another delta reuses ESI and retrains NEE and FET (smoke preset)."""
    def cofee(*args):
        return cofee_cli("pretrain", "--preset", "smoke", "--target", "wnut16", "--work-dir", tmp_path / "work", *args,
                         cwd=tmp_path)

    first = cofee("--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr[-3000:]
    again = cofee("--out", str(tmp_path / "b"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("(reused a finished run)") == 3
    a = json.loads((tmp_path / "a" / "pretrain_report.json").read_text())
    b = json.loads((tmp_path / "b" / "pretrain_report.json").read_text())
    assert {s: r["best_f1"] for s, r in a["stage_reports"].items()} == {s: r["best_f1"] for s, r in b["stage_reports"].items()}
    delta = cofee("--out", str(tmp_path / "c"), "--delta", "0.3")
    assert delta.returncode == 0, delta.stderr[-3000:]
    c = json.loads((tmp_path / "c" / "pretrain_report.json").read_text())
    assert [c["stage_reports"][s]["reused"] for s in ("esi", "nee")] == [True, False]
    # (FET is keyed by the NEE model it starts from, not by delta: at smoke NEE may end on the same weights)
    k = cofee("--out", str(tmp_path / "d"), "--k", "2")
    assert k.returncode == 0, k.stderr[-3000:]
    d = json.loads((tmp_path / "d" / "pretrain_report.json").read_text())
    assert [d["stage_reports"][s]["reused"] for s in ("esi", "nee", "fet")] == [True, True, False]
    assert d["stage_reports"]["fet"]["k"] == 2 and (tmp_path / "d" / "fet" / "best" / "cofee.json").is_file()
