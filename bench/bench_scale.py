"""Benchmark 6: features at scale: a synthetic D_g of up to 1M sentences featurised into the store and streamed through an epoch.

Input: the default preset's real D_g (:func:`cofee_lib.corpora.general_corpus`, cached under
``work/bench/corpora`` with the key ``cofee pretrain`` uses; ``tiny``: the table-markup dump
only) repeated with fresh ids (``<id>~<k>`` for the k-th copy) to ``sentences`` sentences, as
JSON lines (cached under ``work/bench/scale/``). Every sentence keeps its tokens, anchors and
link targets, so featurisation sees real sentence lengths, words and anchor counts.

What runs, each step **in a fresh process** (``ru_maxrss`` of that process alone, through the
launcher of :func:`bench.common.run_command`), for every size:

* **featurise** (the kit): ESI's featurisation, i.e. the MRC backbone for the single type
  ``Entity`` with the ESI query (``model``: ``embedded:minilm``, as the default preset; ``tiny``:
  the tiny encoder), records streamed from the file (:class:`cofee_lib.records.JsonlRecords`,
  spans retyped to ``Entity`` as :func:`cofee_lib.stages.as_untyped` does) through the
  engine's own path into the feature store (``engine._featurize`` with the store on:
  ``chunk_records`` records at a time, :mod:`cofee_lib.featstore`). *Features/s* counts the
  featurisation and the writing of the store; the records' digest (the cache key's pass over
  the file) is timed apart.
* **epoch** (the kit): one training epoch's data path on that store: the engine's batch order
  (``engine._epoch_batches``: bucketing, batch 16, one process), each global batch cut into
  micro-batches (:func:`cofee_lib.distributed.shard_batch`), its features read from the store
  and ``model.collate`` d into tensors. The model step is stubbed (nothing runs on the batch
  but counting its tokens): what is measured is what the data path costs and holds.
* **in memory** (the reference, at the sizes of ``in_memory``): what the engine did before the
  store: the records read whole, ``model.featurize`` of all of them held as Python lists, and
  the same epoch over that list.

At the smallest size both paths also digest their first ``check_batches`` collated batches
(sha256 of every tensor): the store must give the very batches the list gives.

Targets (issue 14): peak RSS flat from 100k to 1M sentences (≤ 1.2×) for featurisation and
for the epoch's data path. Rates (features/s) are recorded with no target. The stores are
deleted after each size (1.3 KB per feature on disk); the synthetic D_g files are kept.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

NAME = "scale"
SIZES = {
    "tiny": {"sentences": [200, 1000], "in_memory": [200], "flat": [200, 1000], "model": "tiny",
             "dumps": ["embedded:enwiki-tables"], "batch_size": 16, "chunk_records": 256, "check_batches": 20,
             "seed": 42},
    "full": {"sentences": [10_000, 100_000, 1_000_000], "in_memory": [10_000, 100_000], "flat": [100_000, 1_000_000],
             "model": "embedded:minilm", "dumps": None, "batch_size": 16, "chunk_records": 2048,
             "check_batches": 200, "seed": 42},
}
TARGET_FLAT = 1.2


# --------------------------------------------------------------------------- the synthetic D_g

def synthetic_d_g(source, sentences: int, out) -> Path:
    """``out``: the records of ``source`` repeated (ids ``<id>~<k>``) to ``sentences`` records, cached by content."""
    from cofee_lib import cache
    from cofee_lib.errors import CofeeError, atomic_open
    from cofee_lib.records import iter_jsonl

    source, out = Path(source), Path(out)

    def build(path: Path) -> dict:
        written = 0
        with atomic_open(path) as handle:
            for k in range(sentences):
                before = written
                for rec in iter_jsonl(source):
                    if written == sentences:
                        break
                    handle.write(json.dumps(dict(rec, id=f"{rec['id']}~{k}"), ensure_ascii=False) + "\n")
                    written += 1
                if written == sentences:
                    break
                if written == before:
                    raise CofeeError(f"{source}: no records to repeat")
        return {"sentences": written}

    cache.cached_file(out, {"source": cache.file_digest(source), "sentences": int(sentences), "ids": "<id>~<k>"},
                      build)
    return out


def _untyped(rec: dict) -> dict:
    from cofee_lib.stages import as_untyped

    return as_untyped([rec])[0]


# --------------------------------------------------------------------------- the measured steps (children)

def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _model(model_name: str, vocab_path):
    """ESI's backbone: MRC for ``Entity`` with the ESI query (the tiny encoder's vocabulary from the real D_g)."""
    from cofee_lib.backbones import build_backbone
    from cofee_lib.presets import get_preset
    from cofee_lib.queries import get_queries
    from cofee_lib.records import read_jsonl
    from cofee_lib.stages import ESI_TYPE

    max_len = int(get_preset("default").get("max_len", 128))
    vocab = [_untyped(r) for r in read_jsonl(vocab_path)] if model_name == "tiny" else None
    return build_backbone("mrc", [ESI_TYPE], model=model_name, queries=get_queries("esi"), max_len=max_len,
                          records=vocab, seed=0)


def _query_tokens(model) -> dict:
    """Sub-tokens of the ESI query and of each English Twitter query (what bench/paper_scale.py needs)."""
    from cofee_lib.queries import get_queries

    queries = {**get_queries("esi"), **get_queries("twitter")}
    return {t: len(model.tokenizer(q.split(), is_split_into_words=True, add_special_tokens=False)["input_ids"])
            for t, q in queries.items()}


def _train_config(args):
    from cofee_lib.engine import TrainConfig

    return TrainConfig(batch_size=args.batch_size, seed=args.seed, progress=False)


def _epoch(model, features, lengths, args) -> dict:
    """One epoch's data path over ``features`` (a list or a store): batches planned, read, collated; no model step."""
    from cofee_lib import distributed as D
    from cofee_lib import engine

    config = _train_config(args)
    t0 = time.perf_counter()
    order = engine._epoch_batches(lengths, config, 1, 0)
    plan_seconds = time.perf_counter() - t0
    digest = hashlib.sha256()
    n_batches = n_features = useful = 0
    for k, step in enumerate(order):
        for idx in D.shard_batch(step, 0, 1, config.grad_accum):
            batch = model.collate([features[i] for i in idx])
            useful += int(batch["n_useful"])   # the stubbed model step
            n_features += len(idx)
            if k < args.check_batches:
                for key in sorted(batch):
                    digest.update(key.encode())
                    digest.update(batch[key].numpy().tobytes())
        n_batches += 1
    seconds = time.perf_counter() - t0
    return {"batches": n_batches, "features": n_features, "useful_tokens": useful, "seconds": seconds,
            "plan_seconds": plan_seconds, "features_per_s": n_features / seconds if seconds else None,
            "check_batches": min(args.check_batches, n_batches), "batches_sha256": digest.hexdigest()}


def child(args) -> dict:
    """One measured step (``--child featurise | epoch | memory``) in this fresh process; its figures."""
    import torch

    from cofee_lib import engine
    from cofee_lib.checkpoints import records_digest
    from cofee_lib.featstore import FeatureStore
    from cofee_lib.records import JsonlRecords

    torch.set_num_threads(1)
    model = _model(args.model, args.vocab)
    out = {"step": args.child, "rss_after_model_mb": _rss_mb()}
    records = JsonlRecords(args.records, transform=_untyped)
    if args.child == "featurise":
        t0 = time.perf_counter()
        digest = records_digest(records)
        out["digest_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        store, _ = engine._featurize(model, records, "no features", "on", Path(args.run_dir), digest=digest)
        seconds = time.perf_counter() - t0
        out.update({"features": len(store), "records": store.info["records"], "seconds": seconds,
                    "features_per_s": len(store) / seconds, "store": str(store.directory),
                    "value_bytes": store.info["value_bytes"], "tokens": store.info["tokens"],
                    "windows": store.info["stats"], "sum_sq_tokens": int((store.lengths.astype("int64") ** 2).sum()),
                    "query_tokens": _query_tokens(model)})
    elif args.child == "epoch":
        store = FeatureStore(args.store)
        out["rss_store_open_mb"] = _rss_mb()
        out.update(_epoch(model, store, store.lengths, args))
    elif args.child == "memory":
        t0 = time.perf_counter()
        whole = list(records)
        features = model.featurize(whole, train=True)
        seconds = time.perf_counter() - t0
        out.update({"features": len(features), "records": len(whole), "seconds": seconds,
                    "features_per_s": len(features) / seconds, "rss_featurised_mb": _rss_mb()})
        out["epoch"] = _epoch(model, features, [len(f["input_ids"]) for f in features], args)
    else:
        raise SystemExit(f"unknown --child {args.child!r}")
    out["peak_rss_mb"] = _rss_mb()
    return out


def _run_child(step: str, settings: dict, records: Path, vocab: Path, run_dir: Path, store: str | None = None) -> dict:
    import os

    report = run_dir / f"{step}.json"
    cmd = common.python_command(Path(__file__).resolve(), "--child", step, "--records", records, "--vocab", vocab,
                                "--model", settings["model"], "--run-dir", run_dir, "--out", report,
                                "--batch-size", settings["batch_size"], "--seed", settings["seed"],
                                "--check-batches", settings["check_batches"], "--chunk", settings["chunk_records"],
                                *(["--store", store] if store else []))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(common.REPO), os.environ.get("PYTHONPATH", "")]),
               TOKENIZERS_PARALLELISM="false")
    measured = common.run_command(cmd, env=env, cwd=common.REPO)
    result = json.loads(report.read_text(encoding="utf-8"))
    result.update({"wall_seconds": measured["seconds"], "max_rss_mb": measured["max_rss_mb"]})
    return result


# --------------------------------------------------------------------------- the benchmark

def run(size: str = "full", work_dir="work", progress: bool = True) -> dict:
    from cofee_lib.corpora import general_corpus
    from cofee_lib.presets import stage_settings

    settings = common.check_size(size, SIZES)
    pre = stage_settings("default")
    dumps = list(settings["dumps"] or pre.dumps)
    d_g = general_corpus(common.work_subdir(work_dir, "corpora"), dumps, min_anchors=pre.min_anchors,
                         max_len=pre.max_words, progress=False)
    base = common.work_subdir(work_dir, "scale")
    results = {}
    for n in settings["sentences"]:
        common.say(f"scale: synthetic D_g of {n:,} sentences")
        records = synthetic_d_g(d_g["path"], n, base / f"D_g_x{n}.jsonl")
        run_dir = base / f"run-{n}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        try:
            entry = {"sentences": n, "d_g_bytes": records.stat().st_size}
            common.say(f"scale: featurising {n:,} sentences into the store")
            entry["featurise"] = _run_child("featurise", settings, records, Path(d_g["path"]), run_dir)
            common.say(f"scale: one epoch's data path over {entry['featurise']['features']:,} features")
            entry["epoch"] = _run_child("epoch", settings, records, Path(d_g["path"]), run_dir,
                                        store=entry["featurise"]["store"])
            if n in settings["in_memory"]:
                common.say(f"scale: the same in memory ({n:,} sentences)")
                entry["in_memory"] = _run_child("memory", settings, records, Path(d_g["path"]), run_dir)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)  # the store: ~1.3 KB per feature
        results[str(n)] = entry
        common.say(f"scale: {n:,} sentences: featurise {entry['featurise']['max_rss_mb']:.0f} MiB, "
                   f"{entry['featurise']['features_per_s']:.0f} features/s; epoch {entry['epoch']['max_rss_mb']:.0f} MiB")
    return {"name": NAME, "size": size, "settings": settings, "d_g": {"path": d_g["path"],
            "sentences": d_g["counts"]["sentences_kept"]}, "results": results, "summary": summary_rows(results, settings)}


def summary_rows(results: dict, settings: dict) -> list[dict]:
    rows = []
    low, high = (str(n) for n in settings["flat"])
    lo, hi = results[low], results[high]
    span = f"{int(low):,} -> {int(high):,} sentences"
    for step, label in (("featurise", "featurisation into the store"), ("epoch", "one epoch's data path (store)")):
        kit, ref = hi[step]["max_rss_mb"], lo[step]["max_rss_mb"]
        r = common.ratio(kit, ref)
        above = [x[step]["max_rss_mb"] - x[step]["rss_after_model_mb"] for x in (lo, hi)]
        rows.append(common.row("6 scale", f"peak RSS of {label}, {span}: {int(high):,} / {int(low):,} (lower is better)",
                               kit, ref, "MiB", r, f"<= {TARGET_FLAT}x", r is not None and r <= TARGET_FLAT,
                               note=f"{lo[step]['features']:,} and {hi[step]['features']:,} features; above the "
                                    f"process with its model loaded: {above[0]:.0f} and {above[1]:.0f} MiB"))
    mem = [n for n in settings["in_memory"] if "in_memory" in results.get(str(n), {})]
    if mem:
        m = results[str(mem[-1])]
        kit, ref = m["featurise"]["max_rss_mb"], m["in_memory"]["max_rss_mb"]
        rows.append(common.row("6 scale", f"peak RSS at {mem[-1]:,} sentences, featurisation + epoch: "
                                          f"in memory / store (higher is better)",
                               max(kit, m["epoch"]["max_rss_mb"]), ref, "MiB",
                               common.ratio(ref, max(kit, m["epoch"]["max_rss_mb"])), "(none: measured)", None))
        rows.append(common.row("6 scale", f"featurisation rate: store at {int(high):,} sentences / in memory at "
                                          f"{mem[-1]:,}", hi["featurise"]["features_per_s"],
                               m["in_memory"]["features_per_s"], "features/s",
                               common.ratio(hi["featurise"]["features_per_s"], m["in_memory"]["features_per_s"]),
                               "(none: measured)", None,
                               note=f"epoch data path: {hi['epoch']['features_per_s']:.0f} features/s from the store"))
        first = results[str(mem[0])]
        same = first["epoch"]["batches_sha256"] == first["in_memory"]["epoch"]["batches_sha256"]
        rows.append(common.row("6 scale", f"the store's batches are the in-memory batches ({mem[0]:,} sentences, "
                                          f"first {first['epoch']['check_batches']} batches, sha256)",
                               None, None, "", None, "identical", same))
    return rows


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--child" in argv:
        parser = argparse.ArgumentParser(description="one measured step of bench_scale (internal)")
        parser.add_argument("--child", required=True, choices=["featurise", "epoch", "memory"])
        for name in ("--records", "--vocab", "--model", "--run-dir", "--out"):
            parser.add_argument(name, required=True)
        parser.add_argument("--store", default=None)
        for name in ("--batch-size", "--seed", "--check-batches", "--chunk"):
            parser.add_argument(name, type=int, required=True)
        args = parser.parse_args(argv)
        from cofee_lib import featstore

        featstore.DEFAULT_CHUNK_RECORDS = args.chunk
        result = child(args)
        Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
        return 0
    return common.script_main(run, SIZES, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
