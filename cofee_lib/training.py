"""Training from files: what ``cofee train`` (and ``cofee finetune``) do between parsing and printing.

:func:`train_from_files` takes a :class:`TrainRequest` (the command's flags as
values), reads and checks the train and dev records, the entity types and the
MRC queries, builds the backbone, trains it with :func:`cofee_lib.engine.train`
and writes ``OUT/train_report.json``.

Everything that can be checked is checked before ``OUT`` is created: ``OUT``
is a directory path, ``resume`` has a checkpoint there, ``types`` is not
empty and every type in it occurs in the training records (a type absent
from them is refused, naming the file), and ``max_len`` leaves room for the
context. If training still fails with a user error, an ``OUT`` it created
itself is removed again (unless it already holds a checkpoint or a best
model). Never reads a test split. Messages name the flags of ``cofee train``.
"""
from __future__ import annotations

import contextlib
import json
import platform
import sys
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import torch

from . import __version__, backbones, datasets, engine, presets
from . import distributed as D
from .checkpoints import find_checkpoint
from .records import keep_types
from .errors import CofeeError, InputError, atomic_open, check_output, removed_on_error
from .hardware import set_threads
from .queries import get_queries


@dataclass
class TrainRequest:
    """One ``cofee train`` run, as values (the flags of the same names)."""

    backbone: str                  # mrc | tagger | bilstm-crf
    train: str                     # a records file, or dataset:NAME (its train split)
    dev: str                       # a records file, or dataset:NAME (its dev split)
    out: str                       # the run folder
    model: str | None = None       # the encoder (None: the preset's)
    types: str | None = None       # comma-separated entity types (None: those of the train records)
    queries: str | None = None     # MRC queries: a dataset name or a JSON file (None: the default)
    preset: str = "default"
    max_len: int | None = None     # sub-tokens per window (None: the preset's)
    subtoken_labels: str | None = None  # tagger: "first" (None: the default) or "all" sub-tokens trained
    settings: dict = field(default_factory=dict)  # presets.train_config overrides (None: the preset's)
    resume: bool = False
    overwrite: bool = False
    argv: list = field(default_factory=list)      # the command line, for the report


def train_from_files(request: TrainRequest) -> dict | None:
    """Check, train and report one run; the report written to ``OUT/train_report.json``
    (None on the ranks other than 0 of a data-parallel run: they write nothing).

    Call it once the process group, if any, is set up (:func:`cofee_lib.distributed.setup`).
    """
    ctx = D.context()
    preset = presets.get_preset(request.preset)
    config = presets.train_config(request.preset, **request.settings)
    check_out_dir(request)
    plan = prepare_data(request, preset)
    set_threads(config.num_threads)  # None: the physical cores this process may use
    engine.seed_everything(config.seed)
    model = build_model(request, plan, config.seed)
    note_dropped_spans(plan, ctx)
    report = None
    with removed_on_error(request.out) if ctx.is_main else contextlib.nullcontext():
        result = engine.train(model, plan["train"], plan["dev"], config, request.out,
                              resume=request.resume, overwrite=request.overwrite)
        if ctx.is_main:
            report = write_report(request, plan, config, result, ctx)
    D.barrier(ctx)
    return report


def load_records(spec: str, split: str) -> list[dict]:
    """Records for ``--train`` (split "train") or ``--dev`` (split "dev").

    ``dataset:NAME`` reads that split through :func:`cofee_lib.datasets.load_dataset`;
    anything else is a file (any format :func:`cofee_lib.datasets.load_records` reads).
    Never a test split.
    """
    if spec.startswith("dataset:"):
        name = spec.split(":", 1)[1]
        if ":" in name:
            raise CofeeError(f"--{split}: write dataset:NAME; the split is implied ({split}), "
                             "and training never reads a test split")
        return datasets.load_dataset(name, split)
    return datasets.load_records(spec)


def resolve_queries(name: str | None, types: list[str], train_spec: str) -> dict | None:
    """Queries ``{type: query}`` for ``types`` from a dataset name or a JSON file; None = backbone default."""
    if name is None:
        if train_spec.startswith("dataset:"):
            try:
                table = get_queries(train_spec.split(":", 1)[1])
            except CofeeError:
                return None
            return {t: table[t] for t in types} if all(t in table for t in types) else None
        return None
    path = Path(name)
    if path.suffix == ".json" or path.is_file():
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(path, None, "file not found (expected a JSON object {type: query})") from None
        except json.JSONDecodeError as exc:
            raise InputError(path, exc.lineno, f"not valid JSON ({exc.msg}); expected {{type: query}}") from None
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise InputError(path, None, "expected a JSON object mapping each type to its query string")
    else:
        table = get_queries(name)
    missing = [t for t in types if t not in table]
    if missing:
        raise CofeeError(f"--queries {name}: no query for type(s) {', '.join(missing)} (it has {', '.join(sorted(table))})")
    return {t: table[t] for t in types}


def select_types(spec: str | None, train_records: list[dict], source: str) -> list[str]:
    """The entity types of ``--types`` (all types of the training records when None), checked."""
    present = sorted({s[2] for r in train_records for s in r["spans"]})
    if spec is None:
        if not present:
            raise InputError(source, None, "the training records have no spans: expected entities, or pass --types")
        return present
    types = [t.strip() for t in spec.split(",") if t.strip()]
    if not types:
        raise CofeeError(f"--types {spec!r}: empty type list; expected comma-separated types such as PER,LOC "
                         "(or leave --types out for all the types of --train)")
    absent = [t for t in types if t not in present]
    if absent:
        which = "this type" if len(absent) == 1 else "these types"
        raise InputError(source, None, f"--types {','.join(absent)}: no span of {which} in the training records; "
                                       f"expected types among {', '.join(present) or '(none)'}")
    return types


def check_out_dir(request: TrainRequest) -> None:
    """``--out`` is a directory path the run can use: before anything is created."""
    check_output(request.out, inputs=[request.train, request.dev], directory=True)
    if request.resume and find_checkpoint(request.out) is None:
        raise CofeeError(f"--resume: no checkpoint in {request.out} (the run finished, or was stopped before "
                         f"its first checkpoint: start it again without --resume)")


def prepare_data(request: TrainRequest, preset: dict) -> dict:
    """Read and check the records, types and queries (spans of other types are dropped): before ``OUT`` is made."""
    max_len = preset["max_len"] if request.max_len is None else request.max_len
    if max_len < 1:
        raise CofeeError(f"--max-len must be at least 1, got {max_len}")
    if request.subtoken_labels is not None and request.backbone != "tagger":
        raise CofeeError(f"--subtoken-labels applies to the tagger (--backbone tagger), not to {request.backbone}")
    train_records = load_records(request.train, "train")
    dev_records = load_records(request.dev, "dev")
    if not train_records:
        raise CofeeError(f"--train {request.train}: no records")
    if not dev_records:
        raise CofeeError(f"--dev {request.dev}: no records")
    types = select_types(request.types, train_records, request.train)
    queries = resolve_queries(request.queries, types, request.train) if request.backbone == "mrc" else None
    dropped = Counter(s[2] for r in train_records for s in r["spans"] if s[2] not in types)
    if dropped:
        train_records = keep_types(train_records, types)
    return {"model_name": request.model or preset["model"], "max_len": max_len, "types": types, "queries": queries,
            "train": train_records, "dev": dev_records, "dropped": dropped}


def build_model(request: TrainRequest, plan: dict, seed: int):
    """The backbone, with its windows checked on one record (``--max-len`` too small fails here)."""
    extra = {} if request.subtoken_labels is None else {"subtoken_labels": request.subtoken_labels}
    model = backbones.build_backbone(request.backbone, plan["types"], model=plan["model_name"],
                                     queries=plan["queries"], max_len=plan["max_len"], records=plan["train"],
                                     seed=seed, **extra)
    model.featurize(plan["train"][:1], train=False)
    return model


def note_dropped_spans(plan: dict, ctx: D.DistContext) -> None:
    """Say which training spans ``--types`` left out (once the run is known to start)."""
    if plan["dropped"] and ctx.is_main:
        print("note: training spans of types not in --types are ignored: "
              + ", ".join(f"{t} ({n})" for t, n in sorted(plan["dropped"].items())), file=sys.stderr)


def write_report(request: TrainRequest, plan: dict, config, result: engine.TrainResult, ctx: D.DistContext) -> dict:
    """Write and return ``OUT/train_report.json``: the run's settings, data, result and environment."""
    report = {
        "command": "cofee train", "argv": list(request.argv), "kit_version": __version__,
        "backbone": request.backbone, "model": plan["model_name"], "max_len": plan["max_len"],
        "types": plan["types"], "queries": plan["queries"], "preset": request.preset,
        **({} if request.subtoken_labels is None else {"subtoken_labels": request.subtoken_labels}),
        "config": dict(config.__dict__, precision=result.precision["precision"]),
        "train": {"source": request.train, "records": len(plan["train"])},
        "dev": {"source": request.dev, "records": len(plan["dev"])},
        "best_dev_f1": result.best_f1, "best_epoch": result.best_epoch, "best_dev": result.best_metrics,
        "useful_tokens_per_s": result.tokens_per_second, "train_seconds": result.train_seconds,
        "steps": result.steps, "resumed_from_step": result.resumed_from_step,
        "history": result.history, "best_dir": result.best_dir,
        "precision": result.precision, "num_threads": result.num_threads,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "transformers": version("transformers"), "device": str(ctx.device),
                        "processes": ctx.world_size},
    }
    with atomic_open(Path(request.out) / "train_report.json") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    return report
