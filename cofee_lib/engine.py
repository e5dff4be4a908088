"""The training engine: one readable loop shared by every backbone and every CoFEE stage.

:func:`train` fits a :class:`~cofee_lib.backbones.base.Backbone` on word-level
train records and selects the checkpoint with the best **dev** F1 (it never sees
a test split). It is used, unchanged, by supervised fine-tuning and by the three
pre-training stages; the stages plug in through :class:`TrainHooks`.

What one step is
    A *global batch* holds ``batch_size * grad_accum * world_size`` features
    (a feature is what ``model.featurize`` makes: one window of one record, and
    for MRC one entity type). Every process cuts the same global batch into its
    contiguous shard, and its shard into ``grad_accum`` micro-batches of about
    ``batch_size`` features (dynamic padding by ``model.collate``). Each
    micro-batch loss is weighted by its share of the global batch, so the
    gradient is the feature-weighted mean over the global batch whatever the
    number of processes or accumulation steps. Then: gradient clipping, AdamW,
    linear warm-up/decay schedule.

Batch order
    With bucketing (the default), features are shuffled (seed, epoch), cut into
    chunks of ``bucket_chunk`` global batches, sorted by length inside a chunk,
    cut into batches, and the batches are shuffled. Less padding, same
    randomness across epochs. The order depends only on (seed, epoch, features).
    An epoch's order is a :class:`BatchOrder` (numpy arrays, 8 bytes per feature).

Features
    ``model.featurize`` of the train records, built once per run (and again when a hook
    returns new records). Below :data:`STORE_MIN_RECORDS` (10,000) records they are a list
    of dicts in memory, as they always were. From there on (``train(feature_store="auto")``,
    the default; ``"on"`` / ``"off"`` force it, as does ``$COFEE_FEATURE_STORE``) they are
    featurised a chunk of records at a time into a :class:`cofee_lib.featstore.FeatureStore`:
    int32 rows on disk, read back one feature at a time, 16 bytes per feature in memory (the
    features of the paper's 3.9M-sentence D_g: ~60 MB instead of ~26 GB). The store sits in a
    content-keyed cache (:mod:`cofee_lib.cache`; ``<out_dir>/features/``, or
    ``$COFEE_FEATURE_CACHE``), keyed by the records, the featurizer (class, configuration,
    tokenizer, vocabularies) and the store's format: a second run, or a resumed one, on the
    same records and tokenizer reuses it. Rank 0 builds it, every rank reads its own shards
    from the same files. The store of the caller's records stays in the cache after the run;
    stores of records a hook relabelled are deleted once replaced and when the run ends. The
    store's feature ``i`` is the in-memory feature ``i`` (same dict), so the batches, and the
    losses, are the same bit for bit. ``train_records`` may be a
    :class:`cofee_lib.records.JsonlRecords`: records are then streamed from their file,
    never held whole.

Files in ``out_dir``
    ``best/`` (``model.save_pretrained`` of the best-by-dev epoch),
    ``log.jsonl`` (one JSON line per epoch) and, while a run is unfinished,
    ``checkpoint/`` (everything needed to resume bit-for-bit; see
    :mod:`cofee_lib.checkpoints`). Every directory is written to a temporary
    name and renamed into place (:func:`cofee_lib.cache.atomic_dir`), so a kill
    at any moment leaves either the old or the new one, never half of one.

The loop
    :func:`train` reads like the paper's training loop: per epoch
    :func:`_train_epoch` (one :func:`_train_step` per global batch),
    :func:`_evaluate_epoch` (dev F1, best-model selection), the hooks'
    :func:`_relabel`, the log line, a checkpoint. Everything the loop changes
    lives in one :class:`_Run`, which is also what a checkpoint saves.

Metrics are entity-level exact-match micro P/R/F1 on word-level spans with
inclusive ends (:mod:`cofee_lib.metrics`); gold spans whose type the model does
not predict are left out of the dev score.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import cache, featstore
from . import distributed as D
from .checkpoints import (CHECKPOINT_FORMAT, find_checkpoint, fingerprint_digest, fingerprint_parts, load_checkpoint,
                          records_digest, remove_checkpoint, remove_leftovers, rng_states, save_checkpoint,
                          save_model_dir, seed_everything, set_rng_states, weights_digest)
from .errors import CofeeError, atomic_open
from .hardware import choose_precision, set_threads
from .metrics import evaluate_records
from .settings import FINGERPRINT_FIELDS, TrainConfig

# TrainConfig and FINGERPRINT_FIELDS (the fields that change what a run computes; a checkpoint
# made with other values cannot be resumed) live in cofee_lib.settings, with every other setting;
# checkpoints, fingerprints and generator states in cofee_lib.checkpoints. Both are re-exported
# here for the callers that know them as engine names.
__all__ = ["CHECKPOINT_FORMAT", "FINGERPRINT_FIELDS", "STORE_MIN_RECORDS", "BatchOrder", "LinearSchedule", "TrainConfig",
           "TrainHooks", "TrainResult", "batch_order", "count_batches", "evaluate_model", "featurizer_digest",
           "find_checkpoint", "fingerprint_parts", "load_checkpoint", "make_batches",
           "padding_fraction", "records_digest", "save_checkpoint", "save_model_dir", "seed_everything", "train",
           "weights_digest"]


class TrainHooks:
    """Extension points for the CoFEE stages; the base class changes nothing.

    * ``wants_hidden``: when True, ``model.forward`` is asked for
      ``outputs["hidden"]`` (FET pools entity states from it).
    * :meth:`extra_loss` is added to the backbone's loss on every micro-batch
      (FET: ``gamma * L_clus``).
    * :meth:`on_epoch_end` runs after the dev evaluation of every epoch, on
      every process, and may return new train records (NEE self-picking
      relabels D_s; FET may re-cluster and return None). Features are rebuilt
      from returned records. In data-parallel runs rank 0's records are used.
    * :meth:`parameters` are trainable tensors the hook owns (FET's K-way head):
      they join the optimizer and their gradients are averaged over processes.
      Re-initialise them in place (keep the same Parameter objects).
    * :meth:`state_dict` / :meth:`load_state_dict` are saved in checkpoints so
      that a resumed run continues exactly (tensors, numbers, strings, lists,
      dicts only).
    """

    wants_hidden: bool = False

    def extra_loss(self, model, batch: dict, outputs: dict):
        """A scalar tensor added to the loss, or None."""
        return None

    def on_epoch_end(self, epoch: int, model, dev_metrics: dict, is_best: bool):
        """New train records for the next epoch, or None to keep them (``epoch`` is 1-based)."""
        return None

    def parameters(self) -> list:
        return []

    def to(self, device) -> None:
        """Move the hook's tensors to the training device (called once, before training)."""
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None


@dataclass
class TrainResult:
    """What :func:`train` returns (also written, by the CLI, to ``train_report.json``)."""

    best_f1: float
    best_epoch: int
    best_metrics: dict
    history: list
    tokens_per_second: float
    useful_tokens: int
    train_seconds: float
    steps: int
    out_dir: str
    best_dir: str
    resumed_from_step: int | None = None
    precision: dict | None = None     # hardware.PrecisionChoice.to_dict(): used, requested, why, hardware
    num_threads: int | None = None
    epochs_run: int | None = None
    stopped_early: bool = False
    # [tp, n_pred, n_gold] of each dev sentence at the best epoch (what cofee_lib.claims resamples)
    best_sentence_counts: list | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- batching

class BatchOrder:
    """An epoch's global batches, compactly: a read-only sequence whose item ``k`` is batch ``k``
    as a list of feature indices (what :func:`make_batches` returns as a list of lists).

    Held as three int64 arrays (every feature index once, in batch-major order; where each
    batch starts; the order the batches are taken in): 8 bytes per feature, where a list of
    lists of Python ints takes ~45. A checkpoint stores it as lists (:meth:`to_lists`).
    """

    def __init__(self, flat: np.ndarray, bounds: np.ndarray, order: np.ndarray | None = None):
        self.flat = flat
        self.bounds = bounds
        self.order = order

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def __getitem__(self, k: int) -> list[int]:
        if not -len(self) <= k < len(self):
            raise IndexError(f"batch {k} out of range for {len(self)} batches")
        b = int(self.order[k]) if self.order is not None else int(k) % len(self)
        return self.flat[self.bounds[b]:self.bounds[b + 1]].tolist()

    def __iter__(self):
        for k in range(len(self)):
            yield self[k]

    def to_lists(self) -> list[list[int]]:
        return list(self)


def batch_order(lengths, global_batch: int, epoch: int, seed: int, bucketing: bool = True,
                bucket_chunk: int = 50, world_size: int = 1) -> BatchOrder:
    """:func:`make_batches` as a :class:`BatchOrder` (numpy: the same batches, in the same order)."""
    n = len(lengths)
    if n < world_size:
        raise CofeeError(f"only {n} training features for {world_size} processes: use fewer processes or more data")
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n)
    if bucketing:
        chunk = global_batch * bucket_chunk
        lengths = np.asarray(lengths)
        for start in range(0, n, chunk):  # a stable sort by length inside each chunk, as sorted(key=) does
            part = perm[start:start + chunk]
            perm[start:start + chunk] = part[np.argsort(lengths[part], kind="stable")]
        starts = [j for start in range(0, n, chunk) for j in range(start, min(start + chunk, n), global_batch)]
    else:
        starts = list(range(0, n, global_batch))
    if len(starts) > 1 and n - starts[-1] < world_size:  # a last batch smaller than world_size joins the one before
        starts.pop()
    bounds = np.array(starts + [n], dtype=np.int64)
    order = rng.permutation(len(starts)) if bucketing else None
    return BatchOrder(perm, bounds, order)


def count_batches(n: int, global_batch: int, bucketing: bool = True, bucket_chunk: int = 50,
                  world_size: int = 1) -> int:
    """``len(make_batches(...))`` for ``n`` features, without making them (it depends on n only)."""
    if n < world_size:
        raise CofeeError(f"only {n} training features for {world_size} processes: use fewer processes or more data")
    if bucketing:
        chunk = global_batch * bucket_chunk
        full, rest = divmod(n, chunk)
        count = full * bucket_chunk + -(-rest // global_batch)
        last_chunk = rest or chunk
        last = last_chunk - (-(-last_chunk // global_batch) - 1) * global_batch
    else:
        count = -(-n // global_batch)
        last = n - (count - 1) * global_batch
    return count - 1 if count > 1 and last < world_size else count


def make_batches(lengths: list[int], global_batch: int, epoch: int, seed: int, bucketing: bool = True,
                 bucket_chunk: int = 50, world_size: int = 1) -> list[list[int]]:
    """The epoch's global batches as lists of feature indices (deterministic in seed and epoch).

    With ``bucketing``: shuffle, cut into chunks of ``bucket_chunk`` batches, sort
    each chunk by length, cut into batches, shuffle the batches. Without: shuffle
    and cut. A last batch smaller than ``world_size`` is merged into the one
    before it so that every process gets at least one feature per step. The engine
    uses the same batches as a :class:`BatchOrder` (:func:`batch_order`).
    """
    return batch_order(lengths, global_batch, epoch, seed, bucketing, bucket_chunk, world_size).to_lists()


def padding_fraction(batches: list[list[int]], lengths: list[int]) -> float:
    """Share of padded positions when every batch is padded to its longest feature."""
    total = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    useful = sum(lengths[i] for b in batches for i in b)
    return 1.0 - useful / total if total else 0.0


class LinearSchedule:
    """lr multiplier for ``LambdaLR``: linear warm-up from 0 to 1 over ``warmup_steps``, then
    linear decay to 0 at ``total_steps``.

    When a hook changes the number of training features, :meth:`replan` keeps
    the current multiplier and decays linearly from it to 0 over the new number
    of remaining steps. A callable object (not a closure), so ``LambdaLR``
    saves its state in checkpoints.
    """

    def __init__(self, warmup_steps: int, total_steps: int):
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.anchor = None  # (step, multiplier) where a replanned decay starts

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return float(step + 1) / float(self.warmup_steps + 1)
        if self.anchor is not None and step >= self.anchor[0]:
            start, factor = self.anchor
            return max(0.0, factor * float(self.total_steps - step) / float(max(1, self.total_steps - start)))
        return max(0.0, float(self.total_steps - step) / float(max(1, self.total_steps - self.warmup_steps)))

    def replan(self, step: int, total_steps: int) -> None:
        """Decay from the multiplier at ``step`` to 0 at the new ``total_steps``."""
        if step >= self.warmup_steps:
            self.anchor = (int(step), self(step))
        self.total_steps = int(total_steps)


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def _param_groups(named_params, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in named_params:
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


# ----------------------------------------------------------------------------- evaluation

def evaluate_model(model, records: list[dict], threshold: float = 0.5, batch_size: int = 32,
                   ctx: D.DistContext | None = None, progress: bool = False, per_sentence: bool = False) -> dict:
    """Predict ``records`` and score them (entity-level micro P/R/F1, per type; ``per_sentence``:
    also each sentence's ``[tp, n_pred, n_gold]``, see :func:`cofee_lib.metrics.evaluate_spans`).

    Gold spans whose type is not in ``model.types`` are left out. With several
    processes each predicts every ``world_size``-th record and the predictions
    are gathered, so every rank returns the same metrics.
    """
    ctx = ctx or D.DistContext()
    was_training = model.training
    model.eval()
    mine = list(range(ctx.rank, len(records), ctx.world_size))
    preds = model.predict([records[i] for i in mine], threshold=threshold, batch_size=batch_size,
                          progress=progress) if mine else []
    model.train(was_training)
    spans = [None] * len(records)
    for idx, pred in D.all_gather_object((mine, [[list(s) for s in p] for p in preds]), ctx):
        for i, p in zip(idx, pred):
            spans[i] = p
    types = set(model.types)
    gold = [{"id": str(i), "tokens": r["tokens"], "spans": [s for s in r["spans"] if s[2] in types]}
            for i, r in enumerate(records)]
    pred = [{"id": str(i), "tokens": r["tokens"], "spans": spans[i]} for i, r in enumerate(records)]
    return evaluate_records(gold, pred, per_sentence)


def _short_metrics(metrics: dict) -> dict:
    return {"precision": metrics["precision"], "recall": metrics["recall"], "f1": metrics["f1"],
            "per_type": {t: {k: v[k] for k in ("precision", "recall", "f1", "n_gold", "n_pred")}
                         for t, v in metrics.get("per_type", {}).items()}}


# ----------------------------------------------------------------------------- log and messages

def _write_log(path: Path, history: list) -> None:
    with atomic_open(path) as handle:
        for entry in history:
            handle.write(json.dumps(entry) + "\n")


def _refuse_non_finite(out_dir: Path, ctx: D.DistContext, what: str, value: float, epoch: int, step: int):
    """Stop a run whose loss or gradient became NaN/inf: no model of it is kept as ``best/``."""
    if ctx.is_main:
        shutil.rmtree(out_dir / "best", ignore_errors=True)
    raise CofeeError(f"{out_dir}: the {what} became {value} at step {step + 1} (epoch {epoch + 1}); the run is "
                     "stopped and no model is saved as best. Corrupt initial weights (cofee fetch --verify), "
                     "a learning rate too high, or bf16 overflow (--no-bf16) are the usual causes")


def _say(ctx: D.DistContext, message: str) -> None:
    if ctx.is_main:
        print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the run's state

def _fresh_epoch_acc() -> dict:
    return {"loss": 0.0, "features": 0, "useful": 0, "seconds": 0.0, "steps": 0}


@dataclass
class _Run:
    """Everything one training run holds and changes: the loop's position, the optimizer, the history.

    :meth:`checkpoint_state` is what ``state.json`` of a checkpoint keeps;
    :func:`_restore` puts it back.
    """

    ctx: D.DistContext
    config: TrainConfig
    out_dir: Path
    log_path: Path
    model: object                 # the backbone being trained
    fwd: object                   # what the forward pass goes through: the model, or its DDP wrapper
    hooks: TrainHooks | None
    want_hidden: bool
    parts: dict                   # checkpoints.fingerprint_parts of this run
    records: object               # the current train records (a hook may replace them): a list or an iterable
    features: object              # a list of feature dicts, or a featstore.FeatureStore (same items)
    lengths: object               # len(input_ids) of every feature: a list, or the store's int32 array
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    schedule: LinearSchedule
    hook_params: list
    all_params: list
    records_changed: bool = False
    epoch: int = 0                # 0-based epoch being trained
    position: int = 0             # next batch of ``order``
    global_step: int = 0
    order: object = None          # this epoch's global batches, a BatchOrder (lists after a resume; None: not planned)
    best: dict = field(default_factory=lambda: {"f1": -1.0, "epoch": 0, "metrics": None})
    history: list = field(default_factory=list)
    useful_total: int = 0
    train_seconds: float = 0.0
    epoch_acc: dict = field(default_factory=_fresh_epoch_acc)
    resumed_from: int | None = None
    stop: bool = False            # max_steps reached, or early stopping
    stopped_early: bool = False   # patience ran out (config.patience)
    max_epochs: int = 0           # epochs the run may take: config.epochs, more where min_steps needs them
    store_mode: str = "auto"      # features on disk: "auto" (from STORE_MIN_RECORDS records), "on", "off"
    kept_store: str | None = None  # the store of the caller's records: stays in the cache when the run ends

    RESTORED = ("epoch", "position", "global_step", "order", "best", "history", "useful_total", "train_seconds",
                "epoch_acc", "max_epochs")

    def checkpoint_state(self) -> dict:
        return {"fingerprint": fingerprint_digest(self.parts), "fingerprint_parts": self.parts,
                "epoch": self.epoch, "position": self.position, "global_step": self.global_step,
                "order": _order_lists(self.order), "best": self.best, "history": self.history,
                "useful_total": self.useful_total, "train_seconds": self.train_seconds,
                "epoch_acc": self.epoch_acc, "max_epochs": self.max_epochs, "total_steps": self.schedule.total_steps,
                "world_size": self.ctx.world_size}


def _order_lists(order) -> list | None:
    """The batch order as checkpoints store it: a list of lists of feature indices."""
    return order.to_lists() if isinstance(order, BatchOrder) else order


def _epoch_batches(lengths, config: TrainConfig, world_size: int, epoch: int) -> BatchOrder:
    global_batch = config.batch_size * config.grad_accum * world_size
    return batch_order(lengths, global_batch, epoch, config.seed, config.bucketing, config.bucket_chunk, world_size)


def _batches_per_epoch(lengths, config: TrainConfig, world_size: int) -> int:
    return count_batches(len(lengths), config.batch_size * config.grad_accum * world_size, config.bucketing,
                         config.bucket_chunk, world_size)


def _max_epochs(lengths, config: TrainConfig, world_size: int) -> int:
    """``config.epochs``, or more where that many epochs of these features give fewer than ``min_steps`` steps."""
    per_epoch = _batches_per_epoch(lengths, config, world_size)
    return max(config.epochs, math.ceil(config.min_steps / max(per_epoch, 1)))


def _planned_steps(lengths, config: TrainConfig, world_size: int, first_epoch: int, done: int,
                   epochs: int) -> int:
    """Optimizer steps at the end of the run if epochs ``first_epoch``..``epochs - 1`` use these features."""
    per_epoch = _batches_per_epoch(lengths, config, world_size)
    total = done + (epochs - first_epoch) * per_epoch
    return min(total, config.max_steps) if config.max_steps else total


# ----------------------------------------------------------------------------- starting a run

def _claim_out_dir(out_dir: Path, parts: dict, ctx: D.DistContext, resume: bool, overwrite: bool) -> dict | None:
    """Decide where the run starts: the verified checkpoint to resume (its state), or None for a fresh start."""
    saved = None
    existing = find_checkpoint(out_dir)
    if resume and existing is None:  # checked before out_dir is made: a refused run leaves nothing
        raise CofeeError(f"--resume: no checkpoint in {out_dir} (the run finished, or was stopped before "
                         f"its first checkpoint: start it again without --resume)")
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    D.barrier(ctx)
    if resume:
        saved = load_checkpoint(existing, parts)
        _say(ctx, f"resuming from {existing} (epoch {saved['epoch'] + 1}, step {saved['global_step']})")
    elif existing is not None and not overwrite:
        raise CofeeError(f"{out_dir} holds an unfinished run ({existing}): pass --resume to continue it, "
                         f"--overwrite to start again, or choose another --out")
    D.barrier(ctx)
    if ctx.is_main:
        remove_leftovers(out_dir)
        if existing is not None and not resume:
            shutil.rmtree(existing, ignore_errors=True)
    return saved


# ----------------------------------------------------------------------------- features in memory or on disk

#: ``auto`` (the default) keeps features in memory below this many train records, on disk from it.
STORE_MIN_RECORDS = 10_000
#: Environment variables: the feature store's mode (``auto`` | ``on`` | ``off``) when ``train`` is
#: not given one, and the cache folder of stores (default ``<out_dir>/features``).
STORE_ENV = "COFEE_FEATURE_STORE"
STORE_DIR_ENV = "COFEE_FEATURE_CACHE"
STORE_MODES = ("auto", "on", "off")


def _store_mode(requested: str | None) -> str:
    mode = (requested or os.environ.get(STORE_ENV) or "auto").strip().lower()
    if mode not in STORE_MODES:
        raise CofeeError(f"feature store mode {mode!r} (from {'train(feature_store=)' if requested else STORE_ENV}): "
                         f"expected one of {', '.join(STORE_MODES)}")
    return mode


def _chunkable(model) -> bool:
    """Whether ``model.featurize`` of a chunk of records gives those records' features as featurising
    all of them would: not for a BiLSTM-CRF that would take its vocabulary from the records."""
    return not (hasattr(model, "word_vocab") and model.word_vocab is None)


def featurizer_digest(model) -> str:
    """A digest of what a model's ``featurize`` output depends on: class, configuration, tokenizer, vocabularies.

    The weights are left out (features do not depend on them); the kit's version is in every cache key.
    """
    h = hashlib.sha256()
    h.update(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    cfg = model.config_dict() if hasattr(model, "config_dict") else {}
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:
        backend = getattr(tokenizer, "backend_tokenizer", None)  # a fast tokenizer: all of it, as JSON
        h.update(backend.to_str().encode() if backend is not None
                 else json.dumps(sorted(tokenizer.get_vocab().items())).encode())
        h.update(json.dumps([type(tokenizer).__name__, list(getattr(tokenizer, "model_input_names", ())),
                             tokenizer.unk_token], default=str).encode())
    for name in ("word_vocab", "char_vocab", "subtoken_labels", "queries"):
        if hasattr(model, name):
            h.update(json.dumps([name, getattr(model, name)], sort_keys=True, default=str).encode())
    return h.hexdigest()


def _store_key_path(model, records, out_dir: Path, digest: str | None) -> tuple[dict, Path]:
    key = {"what": "train features", "records": digest or records_digest(records),
           "featurizer": featurizer_digest(model), "store_format": featstore.STORE_FORMAT}
    root = Path(os.environ.get(STORE_DIR_ENV) or out_dir / "features")
    return key, root / f"train-{cache.key_digest(key)[:20]}"


def _store_features(model, records, empty: str, out_dir: Path, ctx: D.DistContext, digest: str | None):
    """The features of ``records`` in a store of the content-keyed cache (built by rank 0 unless cached)."""
    key, path = _store_key_path(model, records, out_dir, digest)
    failure = None
    if ctx.is_main:
        t0 = time.perf_counter()
        built = cache.lookup(path, key) is None
        try:
            info = cache.cached_dir(path, key, lambda tmp: featstore.build_store(
                tmp, lambda chunk: model.featurize(chunk, train=True), records,
                stats_of=lambda: model.last_window_stats, empty=empty))
        except BaseException as exc:
            failure = str(exc) if isinstance(exc, CofeeError) else f"{type(exc).__name__}: {exc}"
            D.broadcast_object(failure, ctx)
            raise
        _say(ctx, f"features: {info['count']} of {info['records']} records "
                  f"{'written to' if built else 'reused from'} {path} "
                  f"({info['value_bytes'] / 2**20:.0f} MiB{f', {time.perf_counter() - t0:.0f} s' if built else ''})")
    failure = D.broadcast_object(failure, ctx)
    if failure is not None:
        raise CofeeError(f"rank 0 could not build the feature store: {failure}")
    store = featstore.FeatureStore(path)  # every rank reads its shards from the same files
    model.last_window_stats = dict(store.info.get("stats", {}))
    return store, store.lengths


def _featurize(model, records, empty: str, mode: str = "off", out_dir: Path | None = None,
               ctx: D.DistContext | None = None, digest: str | None = None) -> tuple[object, object]:
    """The train features of ``records`` and their lengths: in memory (a list of dicts) or, by ``mode``
    (see :data:`STORE_MIN_RECORDS`), in a :class:`~cofee_lib.featstore.FeatureStore` (the same dicts)."""
    if mode != "off" and out_dir is not None and _chunkable(model) \
            and (mode == "on" or len(records) >= STORE_MIN_RECORDS):
        return _store_features(model, records, empty, out_dir, ctx or D.DistContext(), digest)
    features = model.featurize(records, train=True)
    if not features:
        raise CofeeError(empty)
    return features, [len(f["input_ids"]) for f in features]


def _drop_store(run: "_Run", features, current=None) -> None:
    """Close a store the run no longer uses; delete it unless it holds the caller's records (kept cached)
    or is the folder of ``current`` (new records that featurise to the same store)."""
    if not isinstance(features, featstore.FeatureStore):
        return
    features.close()
    if str(features.directory) == run.kept_store or (isinstance(current, featstore.FeatureStore)
                                                     and current.directory == features.directory):
        return
    D.barrier(run.ctx)
    if run.ctx.is_main:
        shutil.rmtree(features.directory, ignore_errors=True)
        # the cache's stamp beside it (cofee_lib.cache names it <folder>.cofee-key.json)
        features.directory.with_name(features.directory.name + ".cofee-key.json").unlink(missing_ok=True)


def _start_run(model, train_records, config: TrainConfig, out_dir: Path, hooks, parts: dict,
               ctx: D.DistContext, saved: dict | None, store_mode: str | None = None) -> _Run:
    """Put the model (and a checkpoint's weights) on the device; build features, schedule and optimizer."""
    model.to(ctx.device)
    model.use_bf16 = config.precision == "bf16"
    records, records_changed = train_records, False
    if saved is not None:
        model.load_state_dict(saved["model"])
        if saved["records"] is not None:
            records, records_changed = saved["records"], True
        if hooks is not None and saved["extra"].get("hooks") is not None:
            hooks.load_state_dict(saved["extra"]["hooks"])
    if hooks is not None:
        hooks.to(ctx.device)
    hook_params = list(hooks.parameters()) if hooks is not None else []
    mode = _store_mode(store_mode)
    features, lengths = _featurize(model, records, "the training records produced no features (empty sentences?)",
                                   mode, out_dir, ctx, None if records_changed else parts["train_records"])
    kept = str(features.directory) if isinstance(features, featstore.FeatureStore) and not records_changed else None
    max_epochs = _max_epochs(lengths, config, ctx.world_size)
    total_steps = _planned_steps(lengths, config, ctx.world_size, 0, 0, max_epochs)
    schedule = LinearSchedule(int(math.ceil(config.warmup_ratio * total_steps)), total_steps)
    named = list(model.named_parameters()) + [(f"hook.{i}", p) for i, p in enumerate(hook_params)]
    optimizer = torch.optim.AdamW(_param_groups(named, config.weight_decay), lr=config.lr, eps=config.adam_eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    run = _Run(ctx=ctx, config=config, out_dir=out_dir,
               log_path=Path(config.log_path) if config.log_path else out_dir / "log.jsonl",
               model=model, fwd=model, hooks=hooks, want_hidden=bool(hooks is not None and hooks.wants_hidden),
               parts=parts, records=records, records_changed=records_changed, features=features, lengths=lengths,
               optimizer=optimizer, scheduler=scheduler, schedule=schedule, hook_params=hook_params,
               all_params=[p for _, p in named if p.requires_grad], max_epochs=max_epochs, store_mode=mode,
               kept_store=kept)
    if saved is not None:
        _restore(run, saved)
    else:
        seed_everything(config.seed + ctx.rank)
    if ctx.enabled:
        run.fwd = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                                          find_unused_parameters=config.find_unused_parameters)
    return run


def _restore(run: _Run, saved: dict) -> None:
    """Continue where the checkpoint ``saved`` stopped: optimizer, schedule, position, history, generators."""
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scheduler.load_state_dict(saved["extra"]["scheduler"])  # restores the schedule's plan too
    for name in _Run.RESTORED:
        if name in saved:  # max_epochs: not in checkpoints written before early stopping existed
            setattr(run, name, saved[name])
    set_rng_states(saved["extra"]["rng"][run.ctx.rank])
    if run.ctx.is_main:
        _write_log(run.log_path, run.history)
    run.resumed_from = run.global_step


def _checkpoint(run: _Run) -> None:
    """Save a checkpoint of the run as it stands (rank 0 writes; every rank gives its generator states)."""
    rng = D.all_gather_object(rng_states(), run.ctx)
    if run.ctx.is_main:
        save_checkpoint(run.out_dir, model=run.model, optimizer=run.optimizer, scheduler=run.scheduler,
                        hooks=run.hooks, state=run.checkpoint_state(), rng_per_rank=rng,
                        records=run.records if run.records_changed else None)
    D.barrier(run.ctx)


# ----------------------------------------------------------------------------- one epoch

def _backward(run: _Run, batch: dict, weight: float, defer_sync: bool) -> float:
    """Forward one micro-batch (plus the hooks' extra loss), backward ``weight`` times its loss; the loss."""
    with (run.fwd.no_sync() if defer_sync else contextlib.nullcontext()):
        with (torch.autocast(device_type=run.ctx.device.type, dtype=torch.bfloat16) if run.model.use_bf16
              else contextlib.nullcontext()):
            outputs = run.fwd(batch, return_hidden=run.want_hidden) if run.want_hidden else run.fwd(batch)
            loss = outputs["loss"]
            if run.hooks is not None:
                extra = run.hooks.extra_loss(run.model, batch, outputs)
                if extra is not None:
                    loss = loss + extra
        (loss.float() * weight).backward()
    return float(loss.detach())


def _train_step(run: _Run, step_batch: list[int]) -> list:
    """One optimizer step on one global batch; its summed loss, features and useful tokens (all ranks)."""
    ctx, config = run.ctx, run.config
    micro = D.shard_batch(step_batch, ctx.rank, ctx.world_size, config.grad_accum)
    loss_sum, n_feat, n_useful = 0.0, 0, 0
    for j, idx in enumerate(micro):
        batch = _to_device(run.model.collate([run.features[i] for i in idx]), ctx.device)
        defer_sync = ctx.enabled and j < len(micro) - 1  # DDP: all-reduce once, on the last micro-batch
        loss_value = _backward(run, batch, len(idx) * ctx.world_size / len(step_batch), defer_sync)
        if not math.isfinite(loss_value):
            _refuse_non_finite(run.out_dir, ctx, "loss", loss_value, run.epoch, run.global_step)
        loss_sum += loss_value * len(idx)
        n_feat += len(idx)
        n_useful += int(batch["n_useful"])
    D.average_gradients(run.hook_params, ctx)
    if config.max_grad_norm:
        norm = float(torch.nn.utils.clip_grad_norm_(run.all_params, config.max_grad_norm))
        if not math.isfinite(norm):
            _refuse_non_finite(run.out_dir, ctx, "gradient norm", norm, run.epoch, run.global_step)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return D.all_reduce_sum([loss_sum, n_feat, n_useful], ctx)


def _count_step(run: _Run, loss_sum: float, n_feat, n_useful, seconds: float, bar) -> None:
    acc = run.epoch_acc
    acc["loss"] += loss_sum
    acc["features"] += int(n_feat)
    acc["useful"] += int(n_useful)
    acc["seconds"] += seconds
    acc["steps"] += 1
    run.useful_total += int(n_useful)
    run.train_seconds += seconds
    bar.update(1)
    bar.set_postfix(epoch=run.epoch + 1, loss=f"{loss_sum / max(n_feat, 1):.4f}",
                    tok_s=f"{acc['useful'] / max(acc['seconds'], 1e-9):.0f}", refresh=False)


def _train_epoch(run: _Run, bar) -> None:
    """The rest of this epoch's global batches (all of them unless resumed mid-epoch), or up to max_steps."""
    config = run.config
    while run.position < len(run.order):
        t0 = time.perf_counter()
        loss_sum, n_feat, n_useful = _train_step(run, run.order[run.position])
        run.global_step += 1
        run.position += 1
        _count_step(run, loss_sum, n_feat, n_useful, time.perf_counter() - t0, bar)
        if config.max_steps and run.global_step >= config.max_steps:
            run.stop = True
            return
        if config.checkpoint_every and run.global_step % config.checkpoint_every == 0 \
                and run.position < len(run.order):
            _checkpoint(run)


def _evaluate_epoch(run: _Run, dev_records: list[dict]) -> tuple[dict, bool]:
    """Dev metrics of the model now; a new best is saved to ``best/``."""
    metrics = evaluate_model(run.model, dev_records, run.config.threshold, run.config.eval_batch_size, run.ctx,
                             per_sentence=True)
    is_best = metrics["f1"] > run.best["f1"]
    if is_best:
        run.best = {"f1": metrics["f1"], "epoch": run.epoch + 1, "metrics": _short_metrics(metrics),
                    "sentence_counts": metrics["sentence_counts"]}
        if run.ctx.is_main:
            save_model_dir(run.model, run.out_dir / "best")
        D.barrier(run.ctx)
    return metrics, is_best


def _epoch_entry(run: _Run, metrics: dict, is_best: bool, epoch_start: float) -> dict:
    """The epoch's line of ``log.jsonl``."""
    acc = run.epoch_acc
    entry = {"epoch": run.epoch + 1, "train_loss": acc["loss"] / max(acc["features"], 1),
             "dev": _short_metrics(metrics), "is_best": is_best, "steps": acc["steps"],
             "global_step": run.global_step, "lr": run.scheduler.get_last_lr()[0],
             "train_features": len(run.features), "useful_tokens": acc["useful"],
             "train_seconds": acc["seconds"],
             "useful_tokens_per_s": acc["useful"] / max(acc["seconds"], 1e-9),
             "seconds": time.perf_counter() - epoch_start}
    if run.stop and run.position < len(run.order):
        entry["partial"] = True
    if run.stopped_early:
        entry["early_stop"] = True
    return entry


def _check_patience(run: _Run) -> None:
    """Early stopping: stop once ``patience`` epochs passed without a better dev F1 (and ``min_steps`` are done)."""
    config = run.config
    if config.patience is None or run.global_step < config.min_steps:
        return
    if run.epoch + 1 - run.best["epoch"] >= config.patience and run.epoch + 1 < run.max_epochs:
        run.stop = run.stopped_early = True


def _relabel(run: _Run, metrics: dict, is_best: bool, bar) -> None:
    """The hooks' end of epoch; new train records (rank 0's) replace the features and replan the schedule."""
    hooks = run.hooks
    new_records = hooks.on_epoch_end(run.epoch + 1, run.model, metrics, is_best) if hooks is not None else None
    run.model.train()
    new_records = D.broadcast_object(new_records, run.ctx)
    if new_records is None:
        return
    if not new_records:
        raise CofeeError(f"epoch {run.epoch + 1}: the hook returned no training records")
    run.records, run.records_changed = list(new_records), True
    old = run.features
    run.features, run.lengths = _featurize(run.model, run.records,
                                           f"epoch {run.epoch + 1}: the relabelled records produced no features",
                                           run.store_mode, run.out_dir, run.ctx)
    _drop_store(run, old, current=run.features)
    if run.epoch + 1 < run.max_epochs and not run.stop:
        total_steps = _planned_steps(run.lengths, run.config, run.ctx.world_size, run.epoch + 1, run.global_step,
                                     run.max_epochs)
        if total_steps != run.schedule.total_steps:
            run.schedule.replan(run.global_step, total_steps)
            bar.total = total_steps


def _log_epoch(run: _Run, entry: dict, bar) -> None:
    run.history.append(entry)
    if run.ctx.is_main:
        _write_log(run.log_path, run.history)
        dev = entry["dev"]
        bar.write(f"epoch {entry['epoch']}: loss {entry['train_loss']:.4f}  dev P {dev['precision']:.4f} "
                  f"R {dev['recall']:.4f} F1 {dev['f1']:.4f}{'  (best)' if entry['is_best'] else ''}  "
                  f"{entry['useful_tokens_per_s']:.0f} useful tokens/s", file=sys.stderr)


def _next_epoch(run: _Run) -> None:
    """Move on to the next epoch (its batches are planned when it starts); checkpoint unless the run is over."""
    run.epoch += 1
    run.position, run.order = 0, None
    run.epoch_acc = _fresh_epoch_acc()
    if run.epoch < run.max_epochs and not run.stop:
        _checkpoint(run)


def _finish(run: _Run, precision: dict, threads: int | None) -> TrainResult:
    """Drop (or, with keep_checkpoint, refresh) the checkpoint; say and return the result."""
    if run.ctx.is_main and not run.config.keep_checkpoint:
        remove_checkpoint(run.out_dir)
    elif run.config.keep_checkpoint:
        _checkpoint(run)
    D.barrier(run.ctx)
    if not run.config.keep_checkpoint:  # a kept checkpoint may resume: its relabelled records' store stays
        _drop_store(run, run.features)
    elif isinstance(run.features, featstore.FeatureStore):
        run.features.close()
    tps = run.useful_total / run.train_seconds if run.train_seconds > 0 else 0.0
    best = run.best
    _say(run.ctx, f"training throughput: {tps:.0f} useful (non-padding) tokens/s "
                  f"({run.useful_total} tokens in {run.train_seconds:.1f} s of training); "
                  f"best dev F1 {best['f1']:.4f} at epoch {best['epoch']}")
    return TrainResult(best_f1=best["f1"], best_epoch=best["epoch"], best_metrics=best["metrics"],
                       history=run.history, tokens_per_second=tps, useful_tokens=int(run.useful_total),
                       train_seconds=run.train_seconds, steps=run.global_step, out_dir=str(run.out_dir),
                       best_dir=str(run.out_dir / "best"), resumed_from_step=run.resumed_from,
                       precision=precision, num_threads=threads, epochs_run=len(run.history),
                       stopped_early=run.stopped_early, best_sentence_counts=best.get("sentence_counts"))


# ----------------------------------------------------------------------------- the loop

def train(model, train_records, dev_records: list[dict], config: TrainConfig, out_dir,
          hooks: TrainHooks | None = None, resume: bool = False, overwrite: bool = False,
          feature_store: str | None = None) -> TrainResult:
    """Train ``model`` on ``train_records``, select by F1 on ``dev_records``; return a :class:`TrainResult`.

    Records are word-level (``tokens``, ``spans`` with inclusive ends). The
    best-by-dev model is saved to ``out_dir/best/`` (loadable by
    ``load_backbone``); ``out_dir/log.jsonl`` gets one line per epoch.

    ``resume=True`` continues from ``out_dir/checkpoint/`` (same data, model
    and hyper-parameters, else :class:`CofeeError`); the result is the same as
    an uninterrupted run. Without ``resume`` an existing checkpoint (an
    unfinished run) is an error unless ``overwrite=True``.

    Runs data-parallel when ``torch.distributed`` is initialised (see
    :mod:`cofee_lib.distributed`); only rank 0 writes files.

    ``train_records`` may be a list or any re-iterable with a ``len`` (a
    :class:`cofee_lib.records.JsonlRecords` streams a file). ``feature_store``:
    ``"auto"`` (default, or ``$COFEE_FEATURE_STORE``) keeps the features in memory
    below :data:`STORE_MIN_RECORDS` records and on disk from there; ``"on"`` / ``"off"``
    force it (see "Features" in the module doc). Batches and losses are the same either way.
    """
    config.validate()
    if not train_records:
        raise CofeeError("no training records")
    if not dev_records:
        raise CofeeError("no dev records: model selection needs a dev set")
    ctx = D.context()
    choice = choose_precision(config.precision, ctx.device)
    config = dataclasses.replace(config, precision=choice.precision)
    out_dir = Path(out_dir)
    threads = set_threads(config.num_threads) if ctx.device.type == "cpu" else None
    parts = fingerprint_parts(model, train_records, dev_records, config, ctx.world_size, weights_digest(model))
    saved = _claim_out_dir(out_dir, parts, ctx, resume, overwrite)
    _say(ctx, f"precision {choice.precision} ({choice.reason}; {choice.hardware})"
              + (f"; {threads} CPU thread(s)" if threads else ""))
    run = _start_run(model, train_records, config, out_dir, hooks, parts, ctx, saved, feature_store)
    del saved

    bar = tqdm(total=run.schedule.total_steps, initial=run.global_step, desc="train", unit="step", file=sys.stderr,
               disable=not (config.progress and ctx.is_main), dynamic_ncols=True)
    model.train()
    run.stop = bool(config.max_steps and run.global_step >= config.max_steps)
    while run.epoch < run.max_epochs and not run.stop:
        if run.order is None:
            run.order, run.position = _epoch_batches(run.lengths, config, ctx.world_size, run.epoch), 0
        epoch_start = time.perf_counter()
        _train_epoch(run, bar)
        metrics, is_best = _evaluate_epoch(run, dev_records)   # dev F1; a new best goes to best/
        _check_patience(run)                                   # early stopping
        entry = _epoch_entry(run, metrics, is_best, epoch_start)
        _relabel(run, metrics, is_best, bar)                   # hooks: NEE self-picking, FET re-clustering
        _log_epoch(run, entry, bar)
        _next_epoch(run)                                       # and checkpoint, unless the run is over
    bar.close()
    return _finish(run, choice.to_dict(), threads)
