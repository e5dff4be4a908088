"""Resume checkpoints of the training engine, and the fingerprint that ties one to its run.

A checkpoint is the folder ``out_dir/checkpoint/`` (:func:`save_checkpoint`):
the model's and the optimizer's state, the schedule, every rank's generator
states, the hooks' state, the train records when a hook replaced them, and
``state.json`` with the loop's position. No file is a pickle
(:mod:`cofee_lib.tensorfile`). Every file's sha256 is recorded, and the marker
``complete`` is written last, so :func:`load_checkpoint` refuses a truncated,
edited or half-written checkpoint.

A run may resume from a checkpoint only when the facts of
:func:`fingerprint_parts` agree: the result-changing training settings
(:data:`cofee_lib.settings.FINGERPRINT_FIELDS`), the model's class, types
and initial weights, the train and dev records, the number of processes.
:func:`_describe_mismatch` says in words what differs.

Folders (checkpoints and ``best/``) are written through
:func:`cofee_lib.cache.atomic_dir`: a kill at any moment leaves the old or the
new folder, never half of one.
"""
from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from . import __version__, cache
from .cache import file_digest as _sha256_file
from .errors import CofeeError
from .records import read_jsonl, write_jsonl
from .settings import FINGERPRINT_FIELDS, TrainConfig
from .tensorfile import load_tree, save_tree

CHECKPOINT_FORMAT = 2  # 2: safetensors + JSON (tensorfile); 1 was torch pickles
CHECKPOINT = "checkpoint"  # the folder's name in out_dir
BEST = "best"              # the best-by-dev model's folder in out_dir


# ----------------------------------------------------------------------------- generators

def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_states() -> dict:
    """This process's generator states (python, numpy, torch, cuda) as a storable tree."""
    py = random.getstate()
    npy = np.random.get_state()
    state = {"python": [py[0], list(py[1]), py[2]],
             "numpy": [npy[0], npy[1].tolist(), int(npy[2]), int(npy[3]), float(npy[4])],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict) -> None:
    """Put back what :func:`rng_states` returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = state["numpy"]
    np.random.set_state((npy[0], np.asarray(npy[1], dtype=np.uint32), npy[2], npy[3], npy[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- fingerprints

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
    """The facts a checkpoint must agree with before a run may resume from it.

    A tagger trained with ``subtoken_labels="all"`` adds that setting to the model's part; the
    default (``"first"``) adds nothing, so the fingerprints of existing runs are unchanged.
    """
    parts = {
        "config": {name: getattr(config, name) for name in FINGERPRINT_FIELDS},
        "model": {"class": type(model).__name__, "kind": getattr(model, "kind", None),
                  "types": list(getattr(model, "types", [])), "initial_weights": initial_weights},
        "train_records": records_digest(train_records),
        "dev_records": records_digest(dev_records),
        "world_size": world_size,
    }
    if getattr(model, "subtoken_labels", "first") != "first":
        parts["model"]["subtoken_labels"] = model.subtoken_labels
    return parts


def fingerprint_digest(parts: dict) -> str:
    """The one string a checkpoint stores for :func:`fingerprint_parts`."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


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


# ----------------------------------------------------------------------------- folders

def save_model_dir(model, final: Path) -> None:
    """``model.save_pretrained`` into a temporary directory, then rename it to ``final``."""
    with cache.atomic_dir(final) as tmp:
        model.save_pretrained(tmp)


def remove_leftovers(out_dir) -> None:
    """Delete the temporary checkpoint and best-model folders a killed run left in ``out_dir``."""
    out_dir = Path(out_dir)
    cache.remove_tmp_dirs(out_dir / CHECKPOINT)
    cache.remove_tmp_dirs(out_dir / BEST)


def remove_checkpoint(out_dir) -> None:
    """Delete ``out_dir``'s checkpoint (and a previous one parked mid-swap)."""
    final = Path(out_dir) / CHECKPOINT
    for path in (final, cache.old_dir(final)):
        shutil.rmtree(path, ignore_errors=True)


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
    final = Path(out_dir) / CHECKPOINT
    with cache.atomic_dir(final) as tmp:
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
    return final


def find_checkpoint(out_dir) -> Path | None:
    """The complete checkpoint in ``out_dir`` (``checkpoint/``, or ``.checkpoint.old/`` if a
    kill fell between the two renames of a swap), or None."""
    final = Path(out_dir) / CHECKPOINT
    for cand in (final, cache.old_dir(final)):
        if (cand / "complete").is_file():
            return cand
    if final.exists():
        raise CofeeError(f"checkpoint {final} is incomplete (no 'complete' marker): "
                         f"delete it to start over")
    return None


def _read_state(ckpt: Path, advice: str) -> dict:
    """``state.json``, checked against ``complete`` and against the sha256 of every file it lists."""
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
    return state


def load_checkpoint(ckpt: Path, fingerprint: dict) -> dict:
    """Verify and read a checkpoint; :class:`CofeeError` if corrupt or made for another run.

    ``fingerprint`` is this run's :func:`fingerprint_parts`. The result is
    ``state.json`` plus ``model``, ``optimizer``, ``extra`` (the trees saved by
    :func:`save_checkpoint`) and ``records`` (None unless a hook replaced them).
    """
    ckpt = Path(ckpt)
    advice = f"delete {ckpt} and start again without --resume"
    state = _read_state(ckpt, advice)
    if state.get("fingerprint") != fingerprint_digest(fingerprint):
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
