"""Features on disk (cofee_lib.featstore) and the engine's data path with and without them.

What must hold: a store's feature ``i`` is the in-memory feature ``i`` (the same dict, however
the records were chunked), so ``model.collate`` gives the same tensors and a training run gives
the same losses and weights bit for bit; the numpy batch order is the one the engine always
made; records can be streamed from their file (:class:`cofee_lib.records.JsonlRecords`).
"""
from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import standin_backbone as sb  # noqa: E402

from cofee_lib import engine, featstore  # noqa: E402
from cofee_lib.engine import TrainConfig, TrainHooks, batch_order, count_batches, make_batches, train  # noqa: E402
from cofee_lib.errors import CofeeError, InputError  # noqa: E402
from cofee_lib.records import JsonlRecords, write_jsonl  # noqa: E402

TYPES = ["PER", "LOC", "ORG"]
TRAIN = sb.toy_records(120, seed=1, prefix="train")
DEV = sb.toy_records(30, seed=2, prefix="dev")


def _reference_make_batches(lengths, global_batch, epoch, seed, bucketing=True, bucket_chunk=50, world_size=1):
    """The engine's batch order as it was written before it moved to numpy (lists and sorted())."""
    n = len(lengths)
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n).tolist()
    if bucketing:
        chunk = global_batch * bucket_chunk
        batches = []
        for start in range(0, n, chunk):
            part = sorted(perm[start:start + chunk], key=lambda i: lengths[i])
            batches.extend(part[j:j + global_batch] for j in range(0, len(part), global_batch))
        if len(batches) > 1 and len(batches[-1]) < world_size:
            batches[-2].extend(batches.pop())
        order = rng.permutation(len(batches)).tolist()
        return [batches[o] for o in order]
    batches = [perm[j:j + global_batch] for j in range(0, n, global_batch)]
    if len(batches) > 1 and len(batches[-1]) < world_size:
        batches[-2].extend(batches.pop())
    return batches


def test_batch_order_is_the_list_order_it_replaced_and_its_count_is_exact():
    rng = random.Random(0)
    for trial in range(400):
        n, gb, chunk, world = rng.randint(1, 250), rng.randint(1, 30), rng.randint(1, 5), rng.randint(1, 4)
        if n < world:
            continue
        lengths = [rng.randint(1, 9) for _ in range(n)]  # many ties: the sort must be stable
        for bucketing in (True, False):
            expected = _reference_make_batches(lengths, gb, trial, 5, bucketing, chunk, world)
            assert make_batches(lengths, gb, trial, 5, bucketing, chunk, world) == expected
            order = batch_order(np.asarray(lengths, dtype=np.int32), gb, trial, 5, bucketing, chunk, world)
            assert len(order) == len(expected) == count_batches(n, gb, bucketing, chunk, world)
            assert order[len(order) - 1] == expected[-1] and order[-1] == expected[-1]
            assert order.to_lists() == expected and list(order) == expected
    with pytest.raises(CofeeError, match="only 1 training features for 2 processes"):
        count_batches(1, 8, world_size=2)


# --------------------------------------------------------------------------- the store itself

def _odd_features():
    """Features of every kind a store keeps: ints, strings, int lists, tuple lists, nested lists, empties."""
    rng = random.Random(3)
    out = []
    for seg in (0, 1):
        for r in range(7):
            n = rng.randint(1, 9)
            out.append({"input_ids": [rng.randint(0, 30000) for _ in range(n)], "record_index": r, "segment": seg,
                        "type": ["PER", "LOC"][seg], "window": [0, n], "labels": [rng.choice([-100, 0, 1]) for _ in range(n)],
                        "entities": [(rng.randint(0, n), rng.randint(0, n), k) for k in range(rng.randint(0, 2))],
                        "char_ids": [[rng.randint(1, 60) for _ in range(rng.randint(1, 4))] for _ in range(n)],
                        "empty": []})
    return out


def test_store_round_trip_keeps_every_dict_and_the_segment_major_order(tmp_path):
    feats = _odd_features()
    chunks = [(r, [f for f in feats if f["record_index"] in (r, r + 1)]) for r in range(0, 7, 2)]
    writer = featstore.FeatureWriter(tmp_path / "s")
    for start, chunk in chunks:  # chunk-major, as build_store writes: segments interleave on disk
        writer.add([dict(f, record_index=f["record_index"] - start) for f in chunk], record_offset=start)
    info = writer.close({"features": len(feats)})
    store = featstore.FeatureStore(tmp_path / "s")
    assert len(store) == info["count"] == len(feats)
    assert [store[i] for i in range(len(store))] == feats          # segment, then record: the featurizer's order
    assert isinstance(store[0]["entities"], list) and all(isinstance(e, tuple) for f in store for e in f["entities"])
    assert store[-1] == feats[-1] and store[2:4] == feats[2:4] and store.take([5, 1]) == [feats[5], feats[1]]
    assert store.lengths.tolist() == [len(f["input_ids"]) for f in feats] and store.lengths.dtype == np.int32
    with pytest.raises(IndexError):
        store[len(feats)]
    import pickle

    again = pickle.loads(pickle.dumps(store))   # pickles as its path
    assert again[3] == feats[3]
    store.close()


def test_store_refuses_what_it_cannot_keep(tmp_path):
    w = featstore.FeatureWriter(tmp_path / "a")
    with pytest.raises(CofeeError, match="32-bit"):
        w.add([{"input_ids": [2 ** 31]}])
    w = featstore.FeatureWriter(tmp_path / "b")
    with pytest.raises(CofeeError, match="keys"):
        w.add([{"input_ids": [1]}, {"input_ids": [1], "extra": 1}])
    w = featstore.FeatureWriter(tmp_path / "c")
    with pytest.raises(CofeeError, match="float"):
        w.add([{"input_ids": [1], "weight": 0.5}])
    with pytest.raises(CofeeError, match="nothing here"):
        featstore.build_store(tmp_path / "d", lambda chunk: [], [{"tokens": []}], empty="nothing here")
    with pytest.raises(CofeeError, match="not a feature store"):
        featstore.FeatureStore(tmp_path / "missing")


def test_chunked_mrc_features_equal_the_whole_featurisation(tiny_mrc, tmp_path):
    model, records = tiny_mrc
    many = [dict(copy.deepcopy(r), id=f"{i}-{r['id']}") for i in range(3) for r in records]
    width = len(records[4]["tokens"])
    many[4]["tokens"] = many[4]["tokens"] * 30                     # longer than a window: several features
    many[4]["spans"] = [[s + width * k, e + width * k, t] for k in range(30) for s, e, t in records[4]["spans"]]
    small = copy.copy(model)
    small.max_len = 120  # the longest query (LOC) takes 71 sub-tokens
    whole = small.featurize(many, train=True)                       # 3 types: type-major order
    stats = dict(small.last_window_stats)
    assert stats["windowed_records"] >= 1 and len({f["segment"] for f in whole}) == 3
    info = featstore.build_store(tmp_path / "s", lambda c: small.featurize(c, train=True), iter(many),
                                 chunk_records=4, stats_of=lambda: small.last_window_stats)
    store = featstore.FeatureStore(tmp_path / "s")
    assert list(store) == whole
    assert info["records"] == len(many) and info["stats"] == stats
    batch_a, batch_b = small.collate(whole[3:11]), small.collate(store.take(range(3, 11)))
    assert batch_a.keys() == batch_b.keys() and all(torch.equal(batch_a[k], batch_b[k]) for k in batch_a)


# --------------------------------------------------------------------------- the engine with a store

class BatchLog(TrainHooks):
    """Keeps every micro-batch the engine trained on (adds no loss)."""

    def __init__(self):
        self.batches = []

    def extra_loss(self, model, batch, outputs):
        self.batches.append({k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)})
        return None


def _same_batches(a, b):
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _weights(directory, load):
    return load(directory).state_dict()


def test_tiny_mrc_training_is_the_same_with_the_store_and_without(tiny_mrc, tmp_path):
    from cofee_lib.backbones import load_backbone

    model, records = tiny_mrc
    train_records = [dict(copy.deepcopy(r), id=f"{i}-{r['id']}") for i in range(4) for r in records]
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-3, num_threads=1, progress=False, seed=3, precision="fp32",
                         checkpoint_every=0, eval_batch_size=16)
    init = copy.deepcopy(model.state_dict())
    runs = {}
    for mode in ("off", "on"):
        model.load_state_dict(init)
        hook = BatchLog()
        result = train(model, train_records, records, config, tmp_path / mode, hooks=hook, feature_store=mode)
        runs[mode] = (result, hook.batches)
    (off, off_batches), (on, on_batches) = runs["off"], runs["on"]
    assert [h["train_loss"] for h in on.history] == [h["train_loss"] for h in off.history]
    assert [h["dev"] for h in on.history] == [h["dev"] for h in off.history]
    _same_batches(off_batches, on_batches)
    w_off, w_on = _weights(tmp_path / "off" / "best", load_backbone), _weights(tmp_path / "on" / "best", load_backbone)
    assert all(torch.equal(w_off[k], w_on[k]) for k in w_off)
    stores = sorted((tmp_path / "on" / "features").glob("train-*"))
    assert [p.is_dir() for p in stores] == [True, False]            # the store and its cache stamp
    assert not (tmp_path / "off" / "features").exists()
    model.load_state_dict(init)


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, lr=1e-2, batch_size=8, eval_batch_size=64, num_threads=1, progress=False, seed=7,
                precision="fp32", checkpoint_every=0)
    base.update(kw)
    return TrainConfig(**base)


def fresh():
    torch.manual_seed(0)
    return sb.StandInTagger(TYPES, dim=16, dropout=0.1)


def test_store_is_reused_from_the_cache_and_streams_records_from_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(engine.STORE_DIR_ENV, str(tmp_path / "cache"))
    first = train(fresh(), TRAIN, DEV, cfg(), tmp_path / "a", feature_store="on")
    assert "written to" in capsys.readouterr().err
    path = tmp_path / "train.jsonl"
    write_jsonl(path, TRAIN)
    streamed = JsonlRecords(path)
    second = train(fresh(), streamed, DEV, cfg(), tmp_path / "b", feature_store="on")
    assert "reused from" in capsys.readouterr().err                  # same records, same featurizer: same key
    assert [h["train_loss"] for h in second.history] == [h["train_loss"] for h in first.history]
    assert len(list((tmp_path / "cache").glob("train-*"))) == 2     # one store + its stamp
    monkeypatch.setenv(engine.STORE_ENV, "on")
    assert engine._store_mode(None) == "on"
    monkeypatch.setenv(engine.STORE_ENV, "sometimes")
    with pytest.raises(CofeeError, match="COFEE_FEATURE_STORE"):
        engine._store_mode(None)
    assert engine._store_mode("off") == "off"


class Stop(Exception):
    pass


class StopAt(TrainHooks):
    """Kills the run (an exception) at the ``n``-th micro-batch."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def extra_loss(self, model, batch, outputs):
        self.calls += 1
        if self.calls == self.n:
            raise Stop
        return None


def test_a_run_killed_mid_epoch_resumes_on_its_store_as_if_never_stopped(tmp_path, capsys):
    config = cfg(checkpoint_every=5)                                 # 15 steps per epoch: checkpoints at 5, 10, ...
    straight = train(fresh(), TRAIN, DEV, config, tmp_path / "a", feature_store="off")
    with pytest.raises(Stop):
        train(fresh(), TRAIN, DEV, config, tmp_path / "b", hooks=StopAt(23), feature_store="on")
    capsys.readouterr()
    resumed = train(fresh(), TRAIN, DEV, config, tmp_path / "b", resume=True, feature_store="on")
    assert "reused from" in capsys.readouterr().err and resumed.resumed_from_step == 20
    assert [(h["epoch"], h["train_loss"], h["dev"]) for h in resumed.history] == \
        [(h["epoch"], h["train_loss"], h["dev"]) for h in straight.history]


def test_auto_keeps_small_data_in_memory_and_stores_large(tmp_path, monkeypatch):
    run = train(fresh(), TRAIN, DEV, cfg(epochs=1), tmp_path / "small")
    assert run.steps > 0 and sorted(p.name for p in (tmp_path / "small").iterdir()) == ["best", "log.jsonl"]
    monkeypatch.setattr(engine, "STORE_MIN_RECORDS", 100)
    train(fresh(), TRAIN, DEV, cfg(epochs=1), tmp_path / "large")
    assert (tmp_path / "large" / "features").is_dir()


class Relabel(TrainHooks):
    """Drops every other record's spans at each epoch end: new records, so new features."""

    def on_epoch_end(self, epoch, model, dev_metrics, is_best):
        return [dict(r, spans=[] if i % 2 == epoch % 2 else r["spans"]) for i, r in enumerate(TRAIN)]


class Same(TrainHooks):
    """Returns the records it was given: the new features are the old store."""

    def on_epoch_end(self, epoch, model, dev_metrics, is_best):
        return copy.deepcopy(TRAIN) if epoch == 1 else [dict(r, id=r["id"] + "b") for r in TRAIN]


def test_relabelled_records_get_a_store_that_goes_when_replaced(tmp_path):
    runs = {mode: train(fresh(), TRAIN, DEV, cfg(epochs=3), tmp_path / mode, hooks=Relabel(), feature_store=mode)
            for mode in ("off", "on")}
    assert [h["train_loss"] for h in runs["on"].history] == [h["train_loss"] for h in runs["off"].history]
    left = sorted(p.name for p in (tmp_path / "on" / "features").iterdir())
    assert len(left) == 2 and left[0].startswith("train-")           # only the caller's records' store is kept
    # records that featurise to the store in use (the same records, then only new ids) keep it readable
    same = train(fresh(), TRAIN, DEV, cfg(epochs=3), tmp_path / "same", hooks=Same(), feature_store="on")
    again = train(fresh(), TRAIN, DEV, cfg(epochs=3), tmp_path / "plain", feature_store="on")
    assert [h["train_loss"] for h in same.history] == [h["train_loss"] for h in again.history]
    assert len(list((tmp_path / "same" / "features").iterdir())) == 2


def test_a_bilstm_without_vocabulary_is_featurised_in_memory(tmp_path):
    from cofee_lib.backbones.bilstm_crf import BiLSTMCRFBackbone

    model = BiLSTMCRFBackbone(TYPES)
    assert model.word_vocab is None and not engine._chunkable(model) and engine._chunkable(fresh())
    features, lengths = engine._featurize(model, TRAIN[:10], "none", "on", tmp_path)
    assert isinstance(features, list) and not (tmp_path / "features").exists()
    # with its vocabulary the BiLSTM's features (nested char ids) go to a store, the same dicts
    stored, stored_lengths = engine._featurize(model, TRAIN[:10], "none", "on", tmp_path)
    assert isinstance(stored, featstore.FeatureStore) and list(stored) == model.featurize(TRAIN[:10], train=True)
    assert stored_lengths.tolist() == lengths


def test_featurizer_digest_follows_what_featurize_depends_on(tiny_mrc):
    model, _ = tiny_mrc
    digest = engine.featurizer_digest(model)
    assert digest == engine.featurizer_digest(copy.copy(model))
    other = copy.copy(model)
    other.max_len = 40
    assert engine.featurizer_digest(other) != digest
    other = copy.copy(model)
    other.queries = dict(model.queries, PER="someone")
    assert engine.featurizer_digest(other) != digest


# --------------------------------------------------------------------------- records streamed

def test_jsonl_records_stream_again_on_every_pass(tmp_path):
    path = tmp_path / "r.jsonl"
    write_jsonl(path, TRAIN[:5])
    path.write_text("\n" + path.read_text(encoding="utf-8") + "\n  \n", encoding="utf-8")
    recs = JsonlRecords(path)
    assert len(recs) == 5 and bool(recs)
    assert list(recs) == TRAIN[:5] and list(recs) == TRAIN[:5]
    upper = JsonlRecords(path, transform=lambda r: dict(r, spans=[[s, e, "Entity"] for s, e, _ in r["spans"]]))
    assert all(t == "Entity" for r in upper for _, _, t in r["spans"])
    with pytest.raises(InputError, match="file not found"):
        JsonlRecords(tmp_path / "none.jsonl")


def test_jsonl_records_select_and_map_in_file_order(tmp_path):
    path = tmp_path / "r.jsonl"
    write_jsonl(path, TRAIN[:20])
    recs = JsonlRecords(path)
    picked = recs.select([7, 2, 11])
    assert list(picked) == [TRAIN[2], TRAIN[7], TRAIN[11]] and len(picked) == 3
    assert list(picked.select([2, 0])) == [TRAIN[2], TRAIN[11]]      # positions of the selection, not the file
    ids = picked.mapped(lambda r: {"id": r["id"]})
    assert list(ids) == [{"id": TRAIN[i]["id"]} for i in (2, 7, 11)]
    assert list(recs.select([])) == [] and not recs.select([])


@pytest.mark.parametrize("fraction,max_dg", [(None, None), (0.4, None), (None, 7), (0.6, 5)])
def test_stage_data_streams_d_g_as_the_lists_would_give_it(tmp_path, monkeypatch, fraction, max_dg):
    from cofee_lib import pipeline
    from cofee_lib.settings import StageSettings
    from cofee_lib.stages import as_untyped

    d_g = TRAIN[:30]
    d_s = [r for i, r in enumerate(d_g) if i % 3 == 0]
    write_jsonl(tmp_path / "d_g.jsonl", d_g)
    write_jsonl(tmp_path / "d_s.jsonl", d_s)
    monkeypatch.setattr(pipeline, "target_types", lambda target, gaz: ["PER", "LOC"])
    monkeypatch.setattr(pipeline, "dev_records", lambda target, types, settings: [])
    settings = StageSettings(pretrain_fraction=fraction, max_dg_sentences=max_dg)
    data = pipeline.stage_data("t", {"d_g": tmp_path / "d_g.jsonl", "d_s": tmp_path / "d_s.jsonl",
                                     "gazetteers": tmp_path}, settings, seed=5)
    want_g, want_s = d_g, d_s
    if fraction is not None:                                       # what the in-memory path did
        want_g = pipeline.fraction_subset(d_g, fraction, 5)
        kept = {r["id"] for r in want_g}
        want_s = [r for r in d_s if r["id"] in kept]
    want_g = pipeline.subsample(want_g, max_dg, 5)
    assert isinstance(data["d_g"], JsonlRecords)                   # streamed, not a list
    assert list(data["d_g"]) == want_g and len(data["d_g"]) == len(want_g) and data["d_s"] == want_s
    assert list(as_untyped(data["d_g"])) == as_untyped(want_g)


# --------------------------------------------------------------------------- data parallel

@pytest.mark.ddp
def test_two_gloo_processes_read_one_store(data, tmp_path):
    """torchrun, 2 processes, store on: one store (rank 0 built it), the run of one process without it."""
    import cofee_lib.backbones
    from cofee_lib.cli import main

    common = ["--backbone", "tagger", "--model", "standin:32:0", "--train", str(data / "train.jsonl"),
              "--dev", str(data / "dev.jsonl"), "--preset", "smoke", "--epochs", "2", "--lr", "0.01",
              "--threads", "1", "--no-progress", "--seed", "3", "--checkpoint-every", "0"]
    real = cofee_lib.backbones.build_backbone
    cofee_lib.backbones.build_backbone = sb.build_standin
    try:
        assert main(["train", "--out", str(tmp_path / "one"), "--batch-size", "8", *common]) == 0
    finally:
        cofee_lib.backbones.build_backbone = real
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), OMP_NUM_THREADS="1", COFEE_FEATURE_STORE="on")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(HERE / "standin_cli.py"), "train", "--out", str(tmp_path / "two"), "--batch-size", "4",
                           *common], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 or "best dev F1" in proc.stdout, proc.stderr[-3000:]
    one = [json.loads(x) for x in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert [e["global_step"] for e in two] == [e["global_step"] for e in one]
    assert [e["useful_tokens"] for e in two] == [e["useful_tokens"] for e in one]
    for a, b in zip(one, two):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
    assert len([p for p in (tmp_path / "two" / "features").iterdir() if p.is_dir()]) == 1
    assert proc.stderr.count("written to") == 1
