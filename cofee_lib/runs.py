"""Training runs reused by content: a stage that already finished with identical inputs is not rerun.

The batch reproduction trains many models that share their beginnings: the
CoFEE run of notebooks 03-05 is Table 3's CoFEE-MRC row, its ESI checkpoint
starts every point of the delta, gazetteer-size and pre-training-size sweeps,
its NEE checkpoint every point of the K sweep. :func:`run_cached` gives each
training run a folder named by a digest of *what it computes*:

* the initial model: its weights (every tensor), its configuration
  (``cofee.json``: kind, types, queries, window length, vocabularies) and its
  tokenizer's vocabulary and casing (the authors' feature cache ignored the
  tokenizer; this key cannot);
* the training and dev records (their content, not their file names);
* the training configuration fields that change results
  (:data:`cofee_lib.settings.FINGERPRINT_FIELDS`, with the precision as chosen
  for this machine: an fp32 run and a bf16 run never share a folder) and the
  stage's own settings.

A finished run leaves ``<store>/report.json`` and a key stamp; a later call
with the same key returns that report without training. A run that was
stopped resumes from its last checkpoint. The caller's ``out`` folder is a
symbolic link to the store (a copy where links are not possible), so
``<out>/best`` works either way.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

from . import cache
from .checkpoints import find_checkpoint, records_digest, weights_digest
from .distributed import context
from .errors import CofeeError
from .settings import FINGERPRINT_FIELDS

STORE = "runs"


def _say(msg: str) -> None:
    print(f"[cofee] {msg}", file=sys.stderr, flush=True)


def tokenizer_digest(model) -> str | None:
    """sha256 of a backbone's tokenizer: class, casing and the whole vocabulary (None without one)."""
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        return None
    h = hashlib.sha256()
    h.update(type(tok).__name__.encode())
    h.update(repr(getattr(tok, "do_lower_case", None)).encode())
    backend = getattr(tok, "backend_tokenizer", None)
    normalizer = getattr(backend, "normalizer", None) if backend is not None else None
    h.update(repr(normalizer.__getstate__() if hasattr(normalizer, "__getstate__") else normalizer).encode())
    vocab = tok.get_vocab()
    h.update(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode())
    return h.hexdigest()


def model_identity(model) -> dict:
    """What an initial model contributes to a run's key: weights, cofee.json content, tokenizer."""
    config = model.config_dict() if hasattr(model, "config_dict") else {}
    config.pop("encoder", None)  # where the weights came from: a path, not content (the weights digest covers it)
    vocab = None
    if hasattr(model, "word_vocab"):  # BiLSTM-CRF: its vocabularies are part of the model
        vocab = hashlib.sha256(json.dumps([model.word_vocab, model.char_vocab], ensure_ascii=False).encode()).hexdigest()
    return {"weights": weights_digest(model), "config": json.loads(json.dumps(config, sort_keys=True, default=str)),
            "tokenizer": tokenizer_digest(model), "vocab": vocab}


def run_key(name: str, model, train_records, dev_records, config, settings: dict | None = None) -> dict:
    """The content key of one training run (see the module docstring)."""
    config = config.resolved(context().device)  # the precision the run will use, not "auto"
    return {"run": name, "model": model_identity(model),
            "train": records_digest(train_records), "dev": records_digest(dev_records),
            "config": {f: getattr(config, f) for f in FINGERPRINT_FIELDS},
            "settings": json.loads(json.dumps(settings or {}, sort_keys=True, default=str))}


def store_dir(work_dir, name: str, key: dict) -> Path:
    """``<work_dir>/runs/<name>-<digest>``: where the run with ``key`` lives."""
    return Path(work_dir) / STORE / f"{name}-{cache.key_digest(key)[:16]}"


def link(out: Path, target: Path) -> None:
    """Make ``out`` point at ``target`` (a relative symlink; a copy where links are unavailable)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_symlink() or out.is_file():
        out.unlink()
    elif out.is_dir():
        if not any((out / marker).exists() for marker in ("report.json", "best", "log.jsonl", "checkpoint")):
            if any(out.iterdir()):
                raise CofeeError(f"{out} exists and is not a training run folder: move it or choose another --out")
        shutil.rmtree(out)
    try:
        out.symlink_to(os.path.relpath(target.resolve(), out.parent.resolve()), target_is_directory=True)
    except OSError:
        shutil.copytree(target, out)


def run_cached(name: str, model, train_records, dev_records, config, work_dir, out,
               execute: Callable[[Path, bool], dict], settings: dict | None = None,
               use_cache: bool = True, resume: bool = False) -> dict:
    """Run ``execute(folder, resume)`` unless a run with the same key finished before; return its report.

    ``execute`` trains into ``folder`` and returns the report it wrote to
    ``folder/report.json``. A stored run that was stopped continues from its
    checkpoint (its key guarantees the same model, data and settings). With
    ``use_cache=False`` the run goes to ``out`` directly and nothing is reused
    (``cofee pretrain --no-cache``); it continues a checkpoint there only when
    ``resume`` is true (``--resume``), as ``cofee train`` does.
    """
    out = Path(out)
    if not use_cache:
        return execute(out, resume)
    key = run_key(name, model, train_records, dev_records, config, settings)
    folder = store_dir(work_dir, name, key)
    report_path = folder / "report.json"
    if cache.lookup(folder, key) is not None and report_path.is_file():
        _say(f"{name}: reusing the finished run {folder} (same model, data and settings)")
        report = json.loads(report_path.read_text(encoding="utf-8"))
        report["reused"] = True
    else:
        folder.parent.mkdir(parents=True, exist_ok=True)
        report = execute(folder, find_checkpoint(folder) is not None)
        cache.write_stamp(folder, key, {"report": str(report_path)})
        report["reused"] = False
    report["store"] = str(folder)
    link(out, folder)
    return report
