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

Files in ``out_dir``
    ``best/`` (``model.save_pretrained`` of the best-by-dev epoch),
    ``log.jsonl`` (one JSON line per epoch) and, while a run is unfinished,
    ``checkpoint/`` (everything needed to resume bit-for-bit; see
    :func:`save_checkpoint`). Every directory is written to a temporary name
    and renamed into place, so a kill at any moment leaves either the old or
    the new one, never half of one.

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
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import __version__
from . import distributed as D
from .cache import file_digest as _sha256_file
from .errors import CofeeError, atomic_open
from .hardware import choose_precision, set_threads
from .metrics import evaluate_records
from .records import read_jsonl, write_jsonl
from .settings import FINGERPRINT_FIELDS, TrainConfig
from .tensorfile import load_tree, save_tree

CHECKPOINT_FORMAT = 2  # 2: safetensors + JSON (tensorfile); 1 was torch pickles

# TrainConfig and FINGERPRINT_FIELDS (the fields that change what a run computes; a checkpoint
# made with other values cannot be resumed) live in cofee_lib.settings, with every other setting.


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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- reproducibility

def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_states() -> dict:
    py = random.getstate()
    npy = np.random.get_state()
    state = {"python": [py[0], list(py[1]), py[2]],
             "numpy": [npy[0], npy[1].tolist(), int(npy[2]), int(npy[3]), float(npy[4])],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_states(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = state["numpy"]
    np.random.set_state((npy[0], np.asarray(npy[1], dtype=np.uint32), npy[2], npy[3], npy[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def records_digest(records: list[dict]) -> str:
    """sha256 of the records' ids, tokens and spans (what a checkpoint is tied to)."""
    h = hashlib.sha256()
    for rec in records:
        h.update(json.dumps([rec.get("id"), rec["tokens"], rec["spans"]], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 of a module's parameter and buffer names, shapes, dtypes and values."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def fingerprint_parts(model, train_records, dev_records, config: TrainConfig, world_size: int,
                      initial_weights: str) -> dict:
    """The facts a checkpoint must agree with before a run may resume from it."""
    return {
        "config": {name: getattr(config, name) for name in FINGERPRINT_FIELDS},
        "model": {"class": type(model).__name__, "kind": getattr(model, "kind", None),
                  "types": list(getattr(model, "types", [])), "initial_weights": initial_weights},
        "train_records": records_digest(train_records),
        "dev_records": records_digest(dev_records),
        "world_size": world_size,
    }


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _describe_mismatch(old: dict, new: dict) -> str:
    """Say in words which fingerprint parts differ (checkpoint value -> this run's value)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key.endswith("_records"):
            out.append(f"the {key.replace('_records', '')} records differ")
        elif isinstance(a, dict) and isinstance(b, dict):
            for sub in sorted(set(a) | set(b)):
                if a.get(sub) == b.get(sub):
                    continue
                if sub == "initial_weights":
                    out.append("the initial model weights differ (another --model or --seed?)")
                else:
                    out.append(f"{key} {sub}: {a.get(sub)!r} -> {b.get(sub)!r}")
        else:
            out.append(f"{key}: {a!r} -> {b!r}")
    return "; ".join(out)


# ----------------------------------------------------------------------------- batching

def make_batches(lengths: list[int], global_batch: int, epoch: int, seed: int, bucketing: bool = True,
                 bucket_chunk: int = 50, world_size: int = 1) -> list[list[int]]:
    """The epoch's global batches as lists of feature indices (deterministic in seed and epoch).

    With ``bucketing``: shuffle, cut into chunks of ``bucket_chunk`` batches, sort
    each chunk by length, cut into batches, shuffle the batches. Without: shuffle
    and cut. A last batch smaller than ``world_size`` is merged into the one
    before it so that every process gets at least one feature per step.
    """
    n = len(lengths)
    if n < world_size:
        raise CofeeError(f"only {n} training features for {world_size} processes: use fewer processes or more data")
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


# ----------------------------------------------------------------------------- atomic directories

def _make_tmp_dir(parent: Path, prefix: str) -> Path:
    """A fresh temporary directory in ``parent`` with the permissions of an ordinary mkdir."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def _swap_dir(tmp: Path, final: Path) -> None:
    """Move the finished directory ``tmp`` onto ``final`` (two renames; see :func:`find_checkpoint`)."""
    old = final.parent / f".{final.name}.old"
    if old.exists() and final.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def save_model_dir(model, final: Path) -> None:
    """``model.save_pretrained`` into a temporary directory, then rename it to ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_tmp_dir(final.parent, f".{final.name}.tmp-")
    try:
        model.save_pretrained(tmp)
        _swap_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(out_dir: Path, *, model, optimizer, scheduler, hooks, state: dict,
                    rng_per_rank: list, records: list | None) -> Path:
    """Write ``out_dir/checkpoint/`` atomically.

    Files, none of them a pickle (:mod:`cofee_lib.tensorfile`):
    ``model.safetensors`` + ``model.json`` (weights), ``optimizer.*`` (AdamW
    moments and steps; param groups as JSON), ``extra.*`` (scheduler, every
    rank's RNG states, hook state), ``records.jsonl`` (only when a hook
    replaced the train records), ``state.json`` (epoch, position in the epoch's
    batch order, the order itself, global step, best-so-far, history, config
    fingerprint, sha256 of every file) and last ``complete`` (sha256 of
    state.json). It is built in a temporary directory and renamed into place.
    """
    out_dir = Path(out_dir)
    tmp = _make_tmp_dir(out_dir, ".checkpoint.tmp-")
    try:
        save_tree(tmp / "model", model.state_dict())
        save_tree(tmp / "optimizer", optimizer.state_dict())
        save_tree(tmp / "extra", {"scheduler": scheduler.state_dict(), "rng": rng_per_rank,
                                  "hooks": hooks.state_dict() if hooks is not None else None})
        if records is not None:
            write_jsonl(tmp / "records.jsonl", records)
        state = dict(state, format=CHECKPOINT_FORMAT, kit_version=__version__,
                     files={p.name: _sha256_file(p) for p in sorted(tmp.iterdir())})
        with open(tmp / "state.json", "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        with open(tmp / "complete", "w", encoding="utf-8") as handle:
            handle.write(_sha256_file(tmp / "state.json") + "\n")
        _swap_dir(tmp, out_dir / "checkpoint")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / "checkpoint"


def find_checkpoint(out_dir) -> Path | None:
    """The complete checkpoint in ``out_dir`` (``checkpoint/``, or ``.checkpoint.old/`` if a
    kill fell between the two renames of a swap), or None."""
    out_dir = Path(out_dir)
    for cand in (out_dir / "checkpoint", out_dir / ".checkpoint.old"):
        if (cand / "complete").is_file():
            return cand
    if (out_dir / "checkpoint").exists():
        raise CofeeError(f"checkpoint {out_dir / 'checkpoint'} is incomplete (no 'complete' marker): "
                         f"delete it to start over")
    return None


def load_checkpoint(ckpt: Path, fingerprint: dict) -> dict:
    """Verify and read a checkpoint; :class:`CofeeError` if corrupt or made for another run."""
    ckpt = Path(ckpt)
    advice = f"delete {ckpt} and start again without --resume"
    try:
        expected = (ckpt / "complete").read_text(encoding="utf-8").strip()
        if _sha256_file(ckpt / "state.json") != expected:
            raise CofeeError(f"checkpoint {ckpt} is corrupt: state.json does not match its recorded sha256; {advice}")
        state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CofeeError(f"checkpoint {ckpt} is corrupt or unreadable ({exc}); {advice}") from None
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CofeeError(f"checkpoint {ckpt} has format {state.get('format')!r}, this kit reads {CHECKPOINT_FORMAT}; {advice}")
    for name, digest in state.get("files", {}).items():
        path = ckpt / name
        if not path.is_file():
            raise CofeeError(f"checkpoint {ckpt} is corrupt: {name} is missing; {advice}")
        if _sha256_file(path) != digest:
            raise CofeeError(f"checkpoint {ckpt} is corrupt: {name} does not match its recorded sha256 "
                             f"(truncated or modified); {advice}")
    if state.get("fingerprint") != _digest(fingerprint):
        diff = _describe_mismatch(state.get("fingerprint_parts", {}), fingerprint)
        raise CofeeError(f"checkpoint {ckpt} belongs to a different run ({diff or 'fingerprint differs'}); "
                         f"resume with the same data, model and hyper-parameters, or {advice}")
    try:
        state["model"] = load_tree(ckpt / "model")
        state["optimizer"] = load_tree(ckpt / "optimizer")
        state["extra"] = load_tree(ckpt / "extra")
        state["records"] = read_jsonl(ckpt / "records.jsonl") if (ckpt / "records.jsonl").exists() else None
    except CofeeError:
        raise
    except Exception as exc:  # a file that passed its hash but does not parse: still unusable
        raise CofeeError(f"checkpoint {ckpt} could not be loaded ({type(exc).__name__}: {exc}); {advice}") from None
    return state


# ----------------------------------------------------------------------------- evaluation

def evaluate_model(model, records: list[dict], threshold: float = 0.5, batch_size: int = 32,
                   ctx: D.DistContext | None = None, progress: bool = False) -> dict:
    """Predict ``records`` and score them (entity-level micro P/R/F1, per type).

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
    return evaluate_records(gold, pred)


def _short_metrics(metrics: dict) -> dict:
    return {"precision": metrics["precision"], "recall": metrics["recall"], "f1": metrics["f1"],
            "per_type": {t: {k: v[k] for k in ("precision", "recall", "f1", "n_gold", "n_pred")}
                         for t, v in metrics.get("per_type", {}).items()}}


# ----------------------------------------------------------------------------- the loop

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


def train(model, train_records: list[dict], dev_records: list[dict], config: TrainConfig, out_dir,
          hooks: TrainHooks | None = None, resume: bool = False, overwrite: bool = False) -> TrainResult:
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
    """
    config.validate()
    if not train_records:
        raise CofeeError("no training records")
    if not dev_records:
        raise CofeeError("no dev records: model selection needs a dev set")
    ctx = D.context()
    device = ctx.device
    choice = choose_precision(config.precision, device)
    config = dataclasses.replace(config, precision=choice.precision)
    out_dir = Path(out_dir)
    log_path = Path(config.log_path) if config.log_path else out_dir / "log.jsonl"
    threads = set_threads(config.num_threads) if device.type == "cpu" else None
    core = model
    initial_weights = weights_digest(core)
    parts = fingerprint_parts(core, train_records, dev_records, config, ctx.world_size, initial_weights)
    fingerprint = _digest(parts)

    # --- where to start
    ckpt_state = None
    existing = find_checkpoint(out_dir)
    if resume and existing is None:  # checked before out_dir is made: a refused run leaves nothing
        raise CofeeError(f"--resume: no checkpoint in {out_dir} (the run finished, or was stopped before "
                         f"its first checkpoint: start it again without --resume)")
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    D.barrier(ctx)
    if resume:
        ckpt_state = load_checkpoint(existing, parts)
        _say(ctx, f"resuming from {existing} (epoch {ckpt_state['epoch'] + 1}, step {ckpt_state['global_step']})")
    elif existing is not None and not overwrite:
        raise CofeeError(f"{out_dir} holds an unfinished run ({existing}): pass --resume to continue it, "
                         f"--overwrite to start again, or choose another --out")
    D.barrier(ctx)
    if ctx.is_main:
        for stale in out_dir.glob(".checkpoint.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in out_dir.glob(".best.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if existing is not None and not resume:
            shutil.rmtree(existing, ignore_errors=True)

    _say(ctx, f"precision {choice.precision} ({choice.reason}; {choice.hardware})"
              + (f"; {threads} CPU thread(s)" if threads else ""))
    core.to(device)
    core.use_bf16 = config.precision == "bf16"
    records = train_records
    records_changed = False
    if ckpt_state is not None:
        core.load_state_dict(ckpt_state["model"])
        if ckpt_state["records"] is not None:
            records, records_changed = ckpt_state["records"], True
        if hooks is not None and ckpt_state["extra"].get("hooks") is not None:
            hooks.load_state_dict(ckpt_state["extra"]["hooks"])
    if hooks is not None:
        hooks.to(device)
    hook_params = list(hooks.parameters()) if hooks is not None else []

    features = core.featurize(records, train=True)
    if not features:
        raise CofeeError("the training records produced no features (empty sentences?)")
    lengths = [len(f["input_ids"]) for f in features]
    global_batch = config.batch_size * config.grad_accum * ctx.world_size

    def planned_steps(first_epoch: int, done: int) -> int:
        """Optimizer steps at the end of the run if epochs ``first_epoch``.. use the current features."""
        per_epoch = len(make_batches(lengths, global_batch, first_epoch, config.seed, config.bucketing,
                                     config.bucket_chunk, ctx.world_size))
        total = done + (config.epochs - first_epoch) * per_epoch
        return min(total, config.max_steps) if config.max_steps else total

    total_steps = planned_steps(0, 0)
    schedule = LinearSchedule(int(math.ceil(config.warmup_ratio * total_steps)), total_steps)

    named = list(core.named_parameters()) + [(f"hook.{i}", p) for i, p in enumerate(hook_params)]
    optimizer = torch.optim.AdamW(_param_groups(named, config.weight_decay), lr=config.lr, eps=config.adam_eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    all_params = [p for _, p in named if p.requires_grad]

    # --- training state
    epoch, position, global_step = 0, 0, 0
    order = None
    best = {"f1": -1.0, "epoch": 0, "metrics": None}
    history: list = []
    useful_total, train_seconds = 0, 0.0
    epoch_acc = {"loss": 0.0, "features": 0, "useful": 0, "seconds": 0.0, "steps": 0}
    if ckpt_state is not None:
        optimizer.load_state_dict(ckpt_state["optimizer"])
        scheduler.load_state_dict(ckpt_state["extra"]["scheduler"])  # restores the schedule's plan too
        total_steps = schedule.total_steps
        epoch, position, global_step = ckpt_state["epoch"], ckpt_state["position"], ckpt_state["global_step"]
        order = ckpt_state["order"]
        best = ckpt_state["best"]
        history = ckpt_state["history"]
        useful_total, train_seconds = ckpt_state["useful_total"], ckpt_state["train_seconds"]
        epoch_acc = ckpt_state["epoch_acc"]
        _set_rng_states(ckpt_state["extra"]["rng"][ctx.rank])
        if ctx.is_main:
            _write_log(log_path, history)
    else:
        seed_everything(config.seed + ctx.rank)
    resumed_from = global_step if ckpt_state is not None else None
    del ckpt_state

    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel
        fwd = DistributedDataParallel(core, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=config.find_unused_parameters)
    else:
        fwd = core
    autocast = (lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)) if core.use_bf16 \
        else contextlib.nullcontext
    want_hidden = bool(hooks is not None and hooks.wants_hidden)

    def checkpoint_now():
        rng = D.all_gather_object(_rng_states(), ctx)
        if ctx.is_main:
            state = {"fingerprint": fingerprint, "fingerprint_parts": parts, "epoch": epoch, "position": position,
                     "global_step": global_step, "order": order, "best": best, "history": history,
                     "useful_total": useful_total, "train_seconds": train_seconds, "epoch_acc": epoch_acc,
                     "total_steps": schedule.total_steps, "world_size": ctx.world_size}
            save_checkpoint(out_dir, model=core, optimizer=optimizer, scheduler=scheduler, hooks=hooks,
                            state=state, rng_per_rank=rng, records=records if records_changed else None)
        D.barrier(ctx)

    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=global_step, desc="train", unit="step", file=sys.stderr,
               disable=not (config.progress and ctx.is_main), dynamic_ncols=True)
    core.train()
    stop = bool(config.max_steps and global_step >= config.max_steps)
    while epoch < config.epochs and not stop:
        if order is None:
            order = make_batches(lengths, global_batch, epoch, config.seed, config.bucketing,
                                 config.bucket_chunk, ctx.world_size)
            position = 0
        epoch_start = time.perf_counter()
        while position < len(order):
            t0 = time.perf_counter()
            step_batch = order[position]
            n_step = len(step_batch)
            micro = D.shard_batch(step_batch, ctx.rank, ctx.world_size, config.grad_accum)
            loss_sum, n_feat, n_useful = 0.0, 0, 0
            for j, idx in enumerate(micro):
                batch = _to_device(core.collate([features[i] for i in idx]), device)
                defer_sync = ctx.enabled and j < len(micro) - 1  # DDP: all-reduce once, on the last micro-batch
                with (fwd.no_sync() if defer_sync else contextlib.nullcontext()):
                    with autocast():
                        outputs = fwd(batch, return_hidden=want_hidden) if want_hidden else fwd(batch)
                        loss = outputs["loss"]
                        if hooks is not None:
                            extra = hooks.extra_loss(core, batch, outputs)
                            if extra is not None:
                                loss = loss + extra
                    (loss.float() * (len(idx) * ctx.world_size / n_step)).backward()
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    _refuse_non_finite(out_dir, ctx, "loss", loss_value, epoch, global_step)
                loss_sum += loss_value * len(idx)
                n_feat += len(idx)
                n_useful += int(batch["n_useful"])
            D.average_gradients(hook_params, ctx)
            if config.max_grad_norm:
                norm = float(torch.nn.utils.clip_grad_norm_(all_params, config.max_grad_norm))
                if not math.isfinite(norm):
                    _refuse_non_finite(out_dir, ctx, "gradient norm", norm, epoch, global_step)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            global_step += 1
            position += 1
            loss_sum, n_feat, n_useful = D.all_reduce_sum([loss_sum, n_feat, n_useful], ctx)
            dt = time.perf_counter() - t0
            epoch_acc["loss"] += loss_sum
            epoch_acc["features"] += int(n_feat)
            epoch_acc["useful"] += int(n_useful)
            epoch_acc["seconds"] += dt
            epoch_acc["steps"] += 1
            useful_total += int(n_useful)
            train_seconds += dt
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / max(n_feat, 1):.4f}",
                            tok_s=f"{epoch_acc['useful'] / max(epoch_acc['seconds'], 1e-9):.0f}", refresh=False)
            if config.max_steps and global_step >= config.max_steps:
                stop = True
                break
            if config.checkpoint_every and global_step % config.checkpoint_every == 0 and position < len(order):
                checkpoint_now()

        # --- end of epoch (or of max_steps): dev score, selection, hooks, log, checkpoint
        metrics = evaluate_model(core, dev_records, config.threshold, config.eval_batch_size, ctx)
        is_best = metrics["f1"] > best["f1"]
        if is_best:
            best = {"f1": metrics["f1"], "epoch": epoch + 1, "metrics": _short_metrics(metrics)}
            if ctx.is_main:
                save_model_dir(core, out_dir / "best")
            D.barrier(ctx)
        entry = {"epoch": epoch + 1, "train_loss": epoch_acc["loss"] / max(epoch_acc["features"], 1),
                 "dev": _short_metrics(metrics), "is_best": is_best, "steps": epoch_acc["steps"],
                 "global_step": global_step, "lr": scheduler.get_last_lr()[0],
                 "train_features": len(features), "useful_tokens": epoch_acc["useful"],
                 "train_seconds": epoch_acc["seconds"],
                 "useful_tokens_per_s": epoch_acc["useful"] / max(epoch_acc["seconds"], 1e-9),
                 "seconds": time.perf_counter() - epoch_start}
        if stop and position < len(order):
            entry["partial"] = True
        new_records = hooks.on_epoch_end(epoch + 1, core, metrics, is_best) if hooks is not None else None
        core.train()
        new_records = D.broadcast_object(new_records, ctx)
        if new_records is not None:
            if not new_records:
                raise CofeeError(f"epoch {epoch + 1}: the hook returned no training records")
            records, records_changed = list(new_records), True
            features = core.featurize(records, train=True)
            if not features:
                raise CofeeError(f"epoch {epoch + 1}: the relabelled records produced no features")
            lengths = [len(f["input_ids"]) for f in features]
            if epoch + 1 < config.epochs and not stop:
                total_steps = planned_steps(epoch + 1, global_step)
                if total_steps != schedule.total_steps:
                    schedule.replan(global_step, total_steps)
                    bar.total = total_steps
        history.append(entry)
        if ctx.is_main:
            _write_log(log_path, history)
            dev = entry["dev"]
            bar.write(f"epoch {epoch + 1}: loss {entry['train_loss']:.4f}  dev P {dev['precision']:.4f} "
                      f"R {dev['recall']:.4f} F1 {dev['f1']:.4f}{'  (best)' if is_best else ''}  "
                      f"{entry['useful_tokens_per_s']:.0f} useful tokens/s", file=sys.stderr)
        epoch += 1
        position, order = 0, None
        epoch_acc = {"loss": 0.0, "features": 0, "useful": 0, "seconds": 0.0, "steps": 0}
        if epoch < config.epochs and not stop:
            checkpoint_now()
    bar.close()

    if ctx.is_main and not config.keep_checkpoint:
        for name in ("checkpoint", ".checkpoint.old"):
            shutil.rmtree(out_dir / name, ignore_errors=True)
    elif config.keep_checkpoint:
        checkpoint_now()
    D.barrier(ctx)
    tps = useful_total / train_seconds if train_seconds > 0 else 0.0
    _say(ctx, f"training throughput: {tps:.0f} useful (non-padding) tokens/s "
              f"({useful_total} tokens in {train_seconds:.1f} s of training); best dev F1 {best['f1']:.4f} "
              f"at epoch {best['epoch']}")
    return TrainResult(best_f1=best["f1"], best_epoch=best["epoch"], best_metrics=best["metrics"],
                       history=history, tokens_per_second=tps, useful_tokens=int(useful_total),
                       train_seconds=train_seconds, steps=global_step, out_dir=str(out_dir),
                       best_dir=str(out_dir / "best"), resumed_from_step=resumed_from,
                       precision=choice.to_dict(), num_threads=threads)
