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

import sys

from ..presets import preset_names

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
    p.add_argument("--preset", default="default", choices=preset_names(),
                   help="training settings (resources/presets.json); flags below override them (default: default)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate (AdamW, linear warm-up and decay)")
    p.add_argument("--batch-size", type=int, help="features per micro-batch per process")
    p.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    p.add_argument("--max-len", type=int, help="sub-tokens per window (longer contexts are windowed, never cut)")
    p.add_argument("--subtoken-labels", choices=["first", "all"],
                   help="tagger: which sub-tokens of a word are trained: first (the default, the kit's results) or "
                        "all (later ones with the word's I- tag, so that an exported model agrees with "
                        "transformers' token-classification pipeline; see cofee export)")
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


def run(args):
    from .. import distributed as D
    from ..training import TrainRequest, train_from_files

    settings = dict(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, grad_accum=args.grad_accum, seed=args.seed,
        precision=args.precision, checkpoint_every=args.checkpoint_every, max_steps=args.max_steps,
        eval_batch_size=args.eval_batch_size, threshold=args.threshold, num_threads=args.threads,
        bucketing=False if args.no_bucketing else None, keep_checkpoint=True if args.keep_checkpoint else None,
        progress=False if args.no_progress else None)
    request = TrainRequest(backbone=args.backbone, train=args.train, dev=args.dev, out=args.out, model=args.model,
                           types=args.types, queries=args.queries, preset=args.preset, max_len=args.max_len,
                           subtoken_labels=args.subtoken_labels,
                           settings=settings, resume=args.resume, overwrite=args.overwrite, argv=sys.argv[1:])
    D.setup()
    try:
        report = train_from_files(request)
    finally:
        D.cleanup()
    if report is not None:  # rank 0
        print(f"best dev F1 {report['best_dev_f1']:.4f} (epoch {report['best_epoch']}); "
              f"{report['useful_tokens_per_s']:.0f} useful tokens/s; model: {report['best_dir']}")
    return 0
