"""``cofee train``: fit a backbone on train records, select the best epoch on dev records.

Writes ``OUT/best/`` (loadable by ``load_backbone`` and ``cofee predict --model
OUT/best``), ``OUT/log.jsonl`` (one line per epoch) and ``OUT/train_report.json``.
There is deliberately no ``--test``: the test split is read once, for the final
report, by ``cofee predict`` + ``cofee evaluate``. Under ``torchrun
--nproc_per_node N -m cofee_lib train ...`` it trains data-parallel.

Everything that can be checked is checked before ``OUT`` is created: ``OUT``
is a directory path, ``--resume`` has a checkpoint there, ``--types`` is not
empty and every type in it occurs in the training records (a type absent
from them is refused, naming the file), and ``--max-len`` leaves room for
the context. If the command still fails with a user error, an ``OUT`` it
created itself is removed again (unless it already holds a checkpoint or a
best model).
"""
from __future__ import annotations

EXAMPLE = """example:
  cofee train --backbone mrc --model embedded:minilm --train dataset:conll2003 --dev dataset:conll2003 \\
      --types PER,LOC,ORG,MISC --queries conll2003 --out runs/conll-mrc --preset default
  cofee train ... --out runs/conll-mrc --resume        # continue after a crash or kill
"""


def register(sub):
    import argparse

    p = sub.add_parser("train", help="train a backbone (MRC-NER, BERT tagger, BiLSTM-CRF); best epoch by dev F1",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", required=True, choices=["mrc", "tagger", "bilstm-crf"], help="model kind")
    p.add_argument("--model", help="encoder: tiny | embedded:minilm | a directory | a HuggingFace hub name "
                                    "(default: the preset's)")
    add_training_arguments(p)
    p.set_defaults(func=run)


def add_training_arguments(p) -> None:
    """The options ``cofee train`` and ``cofee finetune`` share."""
    p.add_argument("--train", required=True, metavar="F",
                   help="training records (.jsonl: id, tokens, spans) or dataset:NAME (conll2003, wnut16, msra: its train split)")
    p.add_argument("--dev", required=True, metavar="F",
                   help="dev records for model selection (.jsonl) or dataset:NAME (its dev split)")
    p.add_argument("--types", help="comma-separated entity types, e.g. PER,LOC,ORG, each occurring in --train "
                                   "(default: the types in --train)")
    p.add_argument("--queries", metavar="NAME",
                   help="MRC queries: a dataset name from resources/queries.json (conll2003, wnut16, msra, esi, ...) "
                        "or a JSON file {type: query} (default: the dataset's own, else the kit's per-type queries)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (best/, log.jsonl, train_report.json)")
    p.add_argument("--preset", default="default", choices=["smoke", "default", "paper"],
                   help="training settings (resources/presets.json); flags below override them (default: default)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate (AdamW, linear warm-up and decay)")
    p.add_argument("--batch-size", type=int, help="features per micro-batch per process")
    p.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    p.add_argument("--max-len", type=int, help="sub-tokens per window (longer contexts are windowed, never cut)")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="auto (the preset's default): bfloat16 autocast where the hardware has native bf16 "
                        "(CPUs with avx512_bf16/amx_bf16, bf16 GPUs), else float32")
    p.add_argument("--bf16", dest="precision", action="store_const", const="bf16", help="= --precision bf16")
    p.add_argument("--no-bf16", dest="precision", action="store_const", const="fp32", help="= --precision fp32")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="checkpoint every STEPS optimizer steps "
                                                                            "(and at every epoch end); 0: epoch ends only")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--threshold", type=float, help="MRC start/end probability threshold for dev scoring (0.5)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-bucketing", action="store_true", help="random batches instead of length-bucketed ones")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="discard an unfinished run's checkpoint in --out")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep OUT/checkpoint/ after a finished run")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def load_records(spec: str, split: str) -> list[dict]:
    """Records for ``--train`` (split "train") or ``--dev`` (split "dev").

    ``dataset:NAME`` reads that split through :func:`cofee_lib.datasets.load_dataset`;
    anything else is a file (JSON lines, or any format ``cofee_lib.datasets.load_records``
    reads when that function exists). Never a test split.
    """
    from ..errors import CofeeError
    from ..records import read_jsonl

    if spec.startswith("dataset:"):
        name = spec.split(":", 1)[1]
        if ":" in name:
            raise CofeeError(f"--{split}: write dataset:NAME; the split is implied ({split}), "
                             "and training never reads a test split")
        from .. import datasets

        return datasets.load_dataset(name, split)
    try:
        from ..datasets import load_records as read_any
    except ImportError:
        read_any = read_jsonl
    return read_any(spec)


def resolve_queries(name: str | None, types: list[str], train_spec: str) -> dict | None:
    """Queries ``{type: query}`` for ``types`` from a dataset name or a JSON file; None = backbone default."""
    import json
    from pathlib import Path

    from ..errors import CofeeError, InputError
    from ..queries import get_queries

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
    from ..errors import CofeeError, InputError

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


def check_out_dir(args) -> None:
    """``--out`` is a directory path the run can use: before anything is created."""
    from .. import engine
    from ..errors import CofeeError, check_output

    check_output(args.out, inputs=[args.train, args.dev], directory=True)
    if args.resume and engine.find_checkpoint(args.out) is None:
        raise CofeeError(f"--resume: no checkpoint in {args.out} (the run finished, or was stopped before "
                         f"its first checkpoint: start it again without --resume)")


def prepare(args, preset: dict) -> dict:
    """Read and check the records, types and queries (spans of other types are dropped): before ``OUT`` is made."""
    from collections import Counter

    from ..errors import CofeeError

    max_len = preset["max_len"] if args.max_len is None else args.max_len
    if max_len < 1:
        raise CofeeError(f"--max-len must be at least 1, got {max_len}")
    train_records = load_records(args.train, "train")
    dev_records = load_records(args.dev, "dev")
    if not train_records:
        raise CofeeError(f"--train {args.train}: no records")
    if not dev_records:
        raise CofeeError(f"--dev {args.dev}: no records")
    types = select_types(args.types, train_records, args.train)
    queries = resolve_queries(args.queries, types, args.train) if args.backbone == "mrc" else None
    dropped = Counter(s[2] for r in train_records for s in r["spans"] if s[2] not in types)
    if dropped:
        train_records = [dict(r, spans=[s for s in r["spans"] if s[2] in types]) for r in train_records]
    return {"model_name": args.model or preset["model"], "max_len": max_len, "types": types, "queries": queries,
            "train": train_records, "dev": dev_records, "dropped": dropped}


def build_model(args, plan: dict, seed: int):
    """The backbone, with its windows checked on one record (``--max-len`` too small fails here)."""
    from .. import backbones

    model = backbones.build_backbone(args.backbone, plan["types"], model=plan["model_name"], queries=plan["queries"],
                                     max_len=plan["max_len"], records=plan["train"], seed=seed)
    model.featurize(plan["train"][:1], train=False)
    return model


def note_dropped_spans(plan: dict, ctx) -> None:
    """Say which training spans ``--types`` left out (once the run is known to start)."""
    import sys

    if plan["dropped"] and ctx.is_main:
        print("note: training spans of types not in --types are ignored: "
              + ", ".join(f"{t} ({n})" for t, n in sorted(plan["dropped"].items())), file=sys.stderr)


def write_report(args, plan: dict, config, result, ctx) -> None:
    import json
    import platform
    import sys
    from importlib.metadata import version
    from pathlib import Path

    import torch

    from .. import __version__
    from ..errors import atomic_open

    report = {
        "command": "cofee train", "argv": sys.argv[1:], "kit_version": __version__,
        "backbone": args.backbone, "model": plan["model_name"], "max_len": plan["max_len"], "types": plan["types"],
        "queries": plan["queries"], "preset": args.preset,
        "config": dict(config.__dict__, precision=result.precision["precision"]),
        "train": {"source": args.train, "records": len(plan["train"])},
        "dev": {"source": args.dev, "records": len(plan["dev"])},
        "best_dev_f1": result.best_f1, "best_epoch": result.best_epoch, "best_dev": result.best_metrics,
        "useful_tokens_per_s": result.tokens_per_second, "train_seconds": result.train_seconds,
        "steps": result.steps, "resumed_from_step": result.resumed_from_step,
        "history": result.history, "best_dir": result.best_dir,
        "precision": result.precision, "num_threads": result.num_threads,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "transformers": version("transformers"), "device": str(ctx.device),
                        "processes": ctx.world_size},
    }
    with atomic_open(Path(args.out) / "train_report.json") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    print(f"best dev F1 {result.best_f1:.4f} (epoch {result.best_epoch}); "
          f"{result.tokens_per_second:.0f} useful tokens/s; model: {result.best_dir}")


def run(args):
    import contextlib

    from .. import engine, presets
    from .. import distributed as D
    from ..errors import removed_on_error
    from ..hardware import set_threads

    ctx = D.setup()
    try:
        preset = presets.get_preset(args.preset)
        config = presets.train_config(
            args.preset, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, grad_accum=args.grad_accum,
            seed=args.seed, precision=args.precision, checkpoint_every=args.checkpoint_every, max_steps=args.max_steps,
            eval_batch_size=args.eval_batch_size, threshold=args.threshold, num_threads=args.threads,
            bucketing=False if args.no_bucketing else None, keep_checkpoint=True if args.keep_checkpoint else None,
            progress=False if args.no_progress else None)
        check_out_dir(args)
        plan = prepare(args, preset)
        set_threads(config.num_threads)  # None: the physical cores this process may use
        engine.seed_everything(config.seed)
        model = build_model(args, plan, config.seed)
        note_dropped_spans(plan, ctx)
        with removed_on_error(args.out) if ctx.is_main else contextlib.nullcontext():
            result = engine.train(model, plan["train"], plan["dev"], config, args.out,
                                  resume=args.resume, overwrite=args.overwrite)
            if ctx.is_main:
                write_report(args, plan, config, result, ctx)
        D.barrier(ctx)
    finally:
        D.cleanup()
    return 0
