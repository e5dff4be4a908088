"""The CoFEE stages: self-picking on cases known by hand, the FET hook, the pipeline at smoke size."""
from __future__ import annotations

import json

import pytest
import torch

from cofee_lib.settings import StageSettings
from cofee_lib.stages import (FineGrainedTyping, SelfPicking, as_untyped, keep_types, label_changes,
                              label_set_stats, self_pick)


class FixedPredictions:
    """A stand-in model whose predictions depend on the threshold, as MRC's do."""

    training = False

    def __init__(self, by_threshold):
        self.by_threshold = by_threshold
        self.calls = []

    def predict(self, records, threshold=0.5, batch_size=32):
        self.calls.append(threshold)
        return [list(map(list, self.by_threshold(threshold, i))) for i in range(len(records))]

    def eval(self):
        return self

    def train(self, mode=True):
        return self



# the stage functions take every value explicitly (no defaults of their own): the schema's defaults here
_S = StageSettings()
PICKING = {"delta": _S.delta, "mode": _S.relabel, "gold_records": None, "batch_size": 8,
           "pick_when_dev_zero": _S.pick_when_dev_zero}
CLUSTERING = {"k": _S.k, "gamma": _S.gamma, "variance": _S.variance, "head_follow": _S.head_follow,
              "restarts": _S.kmeans_restarts, "seed": 0, "batch_size": 8}

def _records():
    return [
        {"id": "a", "tokens": ["Ann", "lives", "in", "New", "York"], "spans": [[3, 4, "LOC"]]},
        {"id": "b", "tokens": ["Bob", "met", "Acme", "staff"], "spans": [[2, 2, "ORG"]]},
    ]


def test_self_pick_replace_takes_the_predictions_above_delta():
    # probabilities, known by hand: Ann is PER at 0.3, New York LOC at 0.9, Bob PER at 0.05
    def preds(threshold, i):
        table = {0: [((0, 0, "PER"), 0.3), ((3, 4, "LOC"), 0.9)], 1: [((0, 0, "PER"), 0.05)]}
        return [span for span, p in table[i] if p > threshold]

    model = FixedPredictions(preds)
    new = self_pick(model, _records(), delta=0.1, mode="replace", gazetteer_records=None, batch_size=8)
    assert model.calls == [0.1]
    assert new[0]["spans"] == [[0, 0, "PER"], [3, 4, "LOC"]]
    assert new[1]["spans"] == []  # Bob below delta; the gazetteer's Acme is replaced away
    assert [r["id"] for r in new] == ["a", "b"]  # sentences are never dropped
    assert self_pick(model, _records(), delta=0.5, mode="replace", gazetteer_records=None, batch_size=8)[0]["spans"] == [[3, 4, "LOC"]]


def test_self_pick_union_keeps_gazetteer_labels_and_wins_overlaps():
    def preds(threshold, i):
        return {0: [(0, 0, "PER"), (4, 4, "ORG")], 1: []}[i]  # York as ORG overlaps gazetteer's New York

    recs = _records()
    new = self_pick(FixedPredictions(preds), recs, delta=0.1, mode="union", gazetteer_records=recs, batch_size=8)
    assert new[0]["spans"] == [[0, 0, "PER"], [3, 4, "LOC"]]
    assert new[1]["spans"] == [[2, 2, "ORG"]]
    with pytest.raises(Exception):
        self_pick(FixedPredictions(preds), recs, delta=0.1, mode="bogus", gazetteer_records=None, batch_size=8)


def test_self_picking_hook_keeps_the_label_set_of_the_best_epoch():
    gold = [dict(r) for r in _records()]
    gold[0] = dict(gold[0], spans=[[0, 0, "PER"], [3, 4, "LOC"]])
    rounds = iter([
        lambda t, i: {0: [(0, 0, "PER"), (3, 4, "LOC")], 1: [(2, 2, "ORG")]}[i],   # after epoch 1
        lambda t, i: {0: [(3, 4, "LOC")], 1: []}[i],                                # after epoch 2
    ])
    hook = SelfPicking(_records(), ["PER", "LOC", "ORG"], **{**PICKING, "gold_records": gold})
    first = hook.on_epoch_end(1, FixedPredictions(next(rounds)), {"f1": 0.4}, True)
    assert hook.history[0]["skipped"] is None
    assert hook.best[0]["spans"] == [[3, 4, "LOC"]]  # epoch 1 trained on the gazetteer labels
    assert first[0]["spans"] == [[0, 0, "PER"], [3, 4, "LOC"]]
    hook.on_epoch_end(2, FixedPredictions(next(rounds)), {"f1": 0.3}, False)
    assert hook.best[0]["spans"] == [[3, 4, "LOC"]]  # epoch 2 was worse: D_s^best unchanged
    h1, h2 = hook.history
    assert h1["vs_gazetteer"] == {"added": 1, "removed": 0}
    assert h1["trained_on_quality"]["precision"] == 1.0 and h1["trained_on_quality"]["recall"] == pytest.approx(2 / 3)
    assert h1["relabelled_quality"]["recall"] == 1.0
    assert h2["vs_previous"] == {"added": 0, "removed": 2}
    assert h2["relabelled"]["per_type"] == {"PER": 0, "LOC": 1, "ORG": 0}
    state = hook.state_dict()
    other = SelfPicking(_records(), ["PER", "LOC", "ORG"], **PICKING)
    other.load_state_dict(json.loads(json.dumps(state)))
    assert other.current == hook.current and other.history == hook.history


def test_self_picking_keeps_the_labels_after_an_epoch_that_found_nothing_on_dev():
    model = FixedPredictions(lambda t, i: [])
    hook = SelfPicking(_records(), ["PER", "LOC", "ORG"], **PICKING)
    assert hook.on_epoch_end(1, model, {"f1": 0.0}, True) is None
    assert model.calls == [] and hook.current[0]["spans"] == [[3, 4, "LOC"]]
    assert hook.history[0]["skipped"]
    always = SelfPicking(_records(), ["PER", "LOC", "ORG"], **{**PICKING, "pick_when_dev_zero": True})
    assert always.on_epoch_end(1, model, {"f1": 0.0}, True)[0]["spans"] == []  # Algorithm 1 as written


def test_small_helpers():
    recs = _records()
    assert as_untyped(recs)[0]["spans"] == [[3, 4, "Entity"]]
    assert keep_types(recs, ["LOC"])[1]["spans"] == []
    assert label_set_stats(recs, ["LOC", "ORG"])["per_type"] == {"LOC": 1, "ORG": 1}
    assert label_changes(recs, keep_types(recs, ["LOC"])) == {"added": 0, "removed": 1}


# tiny_mrc: the fixture of tests/conftest.py


def test_fet_hook_clusters_every_entity_and_its_loss_trains_the_encoder(tiny_mrc):
    model, recs = tiny_mrc
    hook = FineGrainedTyping(recs, model.hidden_size, **{**CLUSTERING, "k": 3, "gamma": 0.5, "restarts": 2}, device="cpu")
    first = hook.cluster(model)
    assert first["entities"] == 18 and sum(first["sizes"]) == 18
    assert (hook.labels >= 0).all() and hook.labels.max() < 3
    assert abs(sum(first["alpha"]) - 1) < 1e-5
    assert sum(first["variance"]) == pytest.approx(first["inertia"], rel=1e-4)  # sum_k V_k is the inertia
    model.train()
    feats = model.featurize(recs, train=True)
    batch = model.collate(feats)
    out = model(batch, return_hidden=True)
    extra = hook.extra_loss(model, batch, out)
    assert extra is not None and torch.isfinite(extra) and extra > 0
    (out["loss"] + extra).backward()
    assert hook.head.weight.grad is not None and hook.head.weight.grad.abs().sum() > 0
    enc_grads = [p.grad for n, p in model.named_parameters() if "encoder" in n and p.grad is not None]
    assert enc_grads and any(g.abs().sum() > 0 for g in enc_grads)
    model.zero_grad()
    second = hook.on_epoch_end(1, model, {"f1": 0.0}, True)
    assert second is None and len(hook.history) == 2  # re-clustered, records unchanged


def test_fet_needs_enough_entities(tiny_mrc):
    model, recs = tiny_mrc
    with pytest.raises(Exception, match="at least K"):
        FineGrainedTyping(recs[:1], model.hidden_size, **{**CLUSTERING, "k": 10})


@pytest.mark.slow
def test_pretrain_smoke_end_to_end_and_an_ablation(tmp_path, cofee_cli):
    work = tmp_path / "work"
    run = cofee_cli("pretrain", "--preset", "smoke", "--target", "wnut16", "--out", str(tmp_path / "cofee"),
                    "--work-dir", str(work), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "cofee" / "pretrain_report.json").read_text())
    assert report["stages"] == ["esi", "nee", "fet"]
    for stage in ("esi", "nee", "fet"):
        assert (tmp_path / "cofee" / stage / "best" / "cofee.json").is_file()
        assert json.loads((tmp_path / "cofee" / stage / "report.json").read_text())["stage"] == stage
    nee = report["stage_reports"]["nee"]
    assert len(nee["iterations"]) == 2 and "vs_gazetteer" in nee["iterations"][0]
    fet = report["stage_reports"]["fet"]
    assert len(fet["clusterings"]) == 2  # before training, then after the one epoch
    # the final model tags text
    tag = cofee_cli("tag", "--model", str(tmp_path / "cofee" / "fet" / "best"), "Ann flew to Paris", cwd=tmp_path)
    assert tag.returncode == 0, tag.stderr[-2000:]
    # the supervised setting: fine-tune the pre-trained model on a slice of the labelled train split
    from cofee_lib.datasets import load_dataset
    from cofee_lib.records import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", load_dataset("wnut16", "train")[:24])
    write_jsonl(tmp_path / "dev.jsonl", load_dataset("wnut16", "dev")[:16])
    ft = cofee_cli("finetune", "--init", str(tmp_path / "cofee"), "--train", str(tmp_path / "train.jsonl"), "--dev",
                   str(tmp_path / "dev.jsonl"), "--preset", "smoke", "--epochs", "1", "--out", str(tmp_path / "ft"), cwd=tmp_path)
    assert ft.returncode == 0, ft.stderr[-3000:]
    ft_report = json.loads((tmp_path / "ft" / "train_report.json").read_text())
    assert ft_report["backbone"] == "mrc" and ft_report["model"].endswith("fet/best")
    # -FET-ESI reuses the cached corpora
    abl = cofee_cli("pretrain", "--preset", "smoke", "--stages", "nee", "--target", "wnut16", "--out",
                    str(tmp_path / "nee_only"), "--work-dir", str(work), cwd=tmp_path)
    assert abl.returncode == 0, abl.stderr[-3000:]
    assert json.loads((tmp_path / "nee_only" / "pretrain_report.json").read_text())["stages"] == ["nee"]


def test_pretrain_rejects_fet_without_nee(tmp_path, cofee_cli):
    run = cofee_cli("pretrain", "--preset", "smoke", "--stages", "esi,fet", "--target", "wnut16", "--out",
                    str(tmp_path / "x"), cwd=tmp_path)
    assert run.returncode == 2 and "needs nee" in run.stderr


def test_pretrain_subtoken_labels_is_for_the_tagger_only(tmp_path, cofee_cli):
    run = cofee_cli("pretrain", "--preset", "smoke", "--subtoken-labels", "all", "--target", "wnut16", "--out",
                    str(tmp_path / "x"), cwd=tmp_path)
    assert run.returncode == 2 and "tagger backbone only" in run.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_pretrain_tagger_keeps_its_subtoken_labels_through_the_stages(tmp_path, cofee_cli):
    """``--subtoken-labels all`` is the first stage's, and every later stage inherits it from its init."""
    run = cofee_cli("pretrain", "--preset", "smoke", "--backbone", "tagger", "--subtoken-labels", "all",
                    "--stages", "esi,nee", "--target", "wnut16", "--out", str(tmp_path / "bert"),
                    "--work-dir", str(tmp_path / "work"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    for stage in ("esi", "nee"):
        saved = json.loads((tmp_path / "bert" / stage / "best" / "cofee.json").read_text())
        assert saved["kind"] == "tagger" and saved["subtoken_labels"] == "all"
    assert json.loads((tmp_path / "bert" / "pretrain_report.json").read_text())["subtoken_labels"] == "all"
