"""Benchmark 5: inference speed of `cofee predict` (MRC, all types batched; BIO tagger) on CoNLL-2003 test.

Models: an MRC backbone and a tagger on the embedded MiniLM, each trained for ``train_steps``
steps on CoNLL-2003 train, saved, and loaded back with
:func:`cofee_lib.backbones.load_backbone`, exactly as ``cofee predict`` does. The speed of
a forward pass does not depend on how well a model was trained; the decoding work does a
little: after so few steps the models predict almost no entities (the counts are recorded),
so the time is almost all encoder, which is what the references measure too.

Input: the first ``sentences`` sentences of CoNLL-2003 test (file order). Sentences per
second, in one process, back to back on the same sentences:

* **kit**: ``model.predict(records, threshold=0.5, batch_size=32)``, the call ``cofee
  predict`` makes (featurize, length-sorted batches with dynamic padding, windows merged,
  spans decoded), fp32 as ``cofee predict`` runs; also with bf16 autocast (what the engine's
  dev scoring uses when ``bf16`` is on), for information.
* **MRC reference**: the authors' inference: one (query, sentence) feature per type, every
  feature padded to 150, batches of 32 in input order, fp32, forward and softmax only
  (no decoding: favours the reference).
* **tagger reference**: the HuggingFace ``token-classification`` pipeline (what users reach
  for), on a ``BertForTokenClassification`` holding the same encoder and classifier weights,
  words given pre-split, ``batch_size=32``, ``aggregation_strategy="first"``.
* **cofee predict end to end** (``cli``: for which models): the command as a subprocess on the
  same sentences (interpreter start, model loading, reading and writing included).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

NAME = "predict"
SIZES = {
    "tiny": {"model": "tiny", "train_steps": 2, "train_sentences": 40, "sentences": 24, "batch_size": 32,
             "pad_to": 150, "cli": ["mrc"], "seed": 0},
    "full": {"model": "embedded:minilm", "train_steps": 20, "train_sentences": 2000, "sentences": 300,
             "batch_size": 32, "pad_to": 150, "cli": ["mrc", "tagger"], "seed": 0},
}


def _train_model(kind: str, settings: dict, out: Path) -> Path:
    from cofee_lib.backbones import build_backbone
    from cofee_lib.datasets import dataset_types, load_dataset
    from cofee_lib.engine import TrainConfig, train
    from cofee_lib.pipeline import subsample
    from cofee_lib.queries import queries_for_types

    types = dataset_types("conll2003")
    records = subsample(load_dataset("conll2003", "train", progress=False), settings["train_sentences"],
                        seed=settings["seed"])
    dev = load_dataset("conll2003", "dev", progress=False)[:16]
    queries = queries_for_types(types, dataset="conll2003") if kind == "mrc" else None
    model = build_backbone(kind, types, model=settings["model"], queries=queries, records=records,
                           seed=settings["seed"])
    config = TrainConfig(epochs=1, max_steps=settings["train_steps"], batch_size=16, lr=1e-4, precision="auto",
                         seed=settings["seed"], progress=False, checkpoint_every=0)
    result = train(model, records, dev, config, out, overwrite=True)
    return Path(result.best_dir)


def _timed_predict(model, records, settings: dict, bf16: bool) -> dict:
    model.use_bf16 = bf16
    t0 = time.perf_counter()
    spans = model.predict(records, threshold=0.5, batch_size=settings["batch_size"])
    seconds = time.perf_counter() - t0
    model.use_bf16 = False
    return {"seconds": seconds, "sentences_per_s": len(records) / seconds,
            "entities": sum(len(s) for s in spans), "features": model.last_window_stats.get("features")}


def mrc_reference(model, records, settings: dict) -> dict:
    """The authors' inference: features padded to ``pad_to``, batches in input order, fp32, no decoding."""
    import torch

    from bench.bench_train import pad_batch

    model.eval()
    t0 = time.perf_counter()
    features = model._featurize(records, train=False, entity_mode=None)
    bs = settings["batch_size"]
    with torch.no_grad():
        for i in range(0, len(features), bs):
            batch = pad_batch(model.collate(features[i:i + bs]), settings["pad_to"], model._pad_id)
            logits = model._heads(model.encode(batch))
            logits["start_logits"].float().softmax(-1)
            logits["end_logits"].float().softmax(-1)
    common.synchronize(model.device)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "sentences_per_s": len(records) / seconds, "features": len(features)}


def hf_pipeline_reference(model_dir: Path, tagger, records, settings: dict) -> dict:
    """The HuggingFace token-classification pipeline on the same encoder and classifier weights."""
    import torch
    from transformers import AutoModelForTokenClassification, pipeline

    from cofee_lib.encoders import quiet_transformers

    labels = list(tagger.labels)
    with quiet_transformers():
        hf = AutoModelForTokenClassification.from_pretrained(
            str(model_dir), num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)})
    with torch.no_grad():
        hf.classifier.weight.copy_(tagger.classifier.weight)
        hf.classifier.bias.copy_(tagger.classifier.bias)
    hf.eval()
    pipe = pipeline("token-classification", model=hf.to(tagger.device), tokenizer=tagger.tokenizer,
                    device=tagger.device, aggregation_strategy="first")
    words = [r["tokens"] if r["tokens"] else ["."] for r in records]
    t0 = time.perf_counter()
    out = pipe(words, is_split_into_words=True, batch_size=settings["batch_size"])
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "sentences_per_s": len(records) / seconds, "entities": sum(len(o) for o in out)}


def run(size: str = "full", work_dir="work", progress: bool = True) -> dict:
    from cofee_lib.backbones import load_backbone
    from cofee_lib.datasets import load_dataset
    from cofee_lib.records import write_jsonl

    settings = common.check_size(size, SIZES)
    device = common.device_of_choice()
    records = load_dataset("conll2003", "test", progress=False)[:settings["sentences"]]
    n_words = sum(len(r["tokens"]) for r in records)
    out = {}
    with tempfile.TemporaryDirectory(prefix="cofee-bench-predict-") as tmp:
        tmp = Path(tmp)
        data = tmp / "test.jsonl"
        write_jsonl(data, records)
        for kind in ("mrc", "tagger"):
            common.say(f"predict: training a {kind} model for {settings['train_steps']} steps")
            best = _train_model(kind, settings, tmp / kind)
            model = load_backbone(best, device=device)
            common.say(f"predict: {kind} on {len(records)} CoNLL-2003 test sentences: kit, kit bf16, reference")
            res = {"kit": _timed_predict(model, records, settings, bf16=False),
                   "kit_bf16": _timed_predict(model, records, settings, bf16=True)}
            if kind == "mrc":
                res["reference"] = mrc_reference(model, records, settings)
                res["reference_name"] = f"authors' inference: pad to {settings['pad_to']}, input order, fp32, no decoding"
            else:
                res["reference"] = hf_pipeline_reference(best, model, records, settings)
                res["reference_name"] = "HuggingFace token-classification pipeline, batch 32"
            if kind in settings["cli"]:
                cli = common.run_command(common.python_command(
                    "-m", "cofee_lib", "predict", "--model", best, "--data", data, "--out", tmp / f"{kind}.jsonl",
                    "--batch-size", settings["batch_size"], "--device", device.type, "--no-progress"), cwd=common.REPO)
                res["cli"] = {"seconds": cli["seconds"], "sentences_per_s": len(records) / cli["seconds"],
                              "max_rss_mb": cli["max_rss_mb"], "message": cli["stderr_tail"].strip().splitlines()[-1:]}
            out[kind] = res
            del model
    summary = []
    for kind, label in (("mrc", "MRC, 4 types batched"), ("tagger", "tagger")):
        res = out[kind]
        r = common.ratio(res["kit"]["sentences_per_s"], res["reference"]["sentences_per_s"])
        summary.append(common.row(f"5 predict {kind}", f"sentences/s ({label}): kit / {res['reference_name']}",
                                  res["kit"]["sentences_per_s"], res["reference"]["sentences_per_s"], "sent/s", r,
                                  "(none: measured)", None,
                                  note=f"kit bf16: {res['kit_bf16']['sentences_per_s']:.1f} sent/s"
                                       + (f"; `cofee predict` end to end: {res['cli']['sentences_per_s']:.1f} sent/s"
                                          if "cli" in res else "")))
    return {"name": NAME, "size": size, "settings": settings, "device": str(device), "sentences": len(records),
            "words": n_words,
            "results": out, "summary": summary}


def main(argv=None) -> int:
    return common.script_main(run, SIZES, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
