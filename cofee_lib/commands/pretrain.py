"""``cofee pretrain``: the CoFEE stages (ESI, NEE with self-picking, FET) for a target dataset.

Leaving out ``esi`` or ``fet`` gives the paper's ablations (-ESI, -FET,
-FET-ESI); ``--no-self-picking`` with ``--stages nee`` is plain MRC-NER trained
on D_s. The fourth stage, ``domain`` (beyond the paper, :mod:`cofee_lib.domain`),
continues from the previous stage's best checkpoint with NEE and self-picking on
your own unlabeled in-domain text (``--domain-text FILE`` or ``dataset:NAME``, that
dataset's train split with its labels dropped), labelled by gazetteer matching.
Each stage selects its checkpoint on the target's **dev** split; no
test split is read. ``--out`` must be a directory path; a run folder this
command created is removed again if it fails with a user error before any
stage has a checkpoint or a best model.
"""
from __future__ import annotations

EXAMPLE = """examples:
  cofee pretrain --stages esi,nee,fet --backbone mrc --target wnut16 --model embedded:minilm --out runs/cofee-wnut
  cofee pretrain --stages nee --backbone mrc --target wnut16 --out runs/ds-only --no-self-picking   # MRC-NER on D_s
  cofee pretrain ... --out runs/cofee-wnut --resume         # continue after a crash or kill
  cofee pretrain --stages esi,nee,fet,domain --target conll2003 --domain-text dataset:conll2003 --out runs/cofee-dom
  cofee pretrain --stages esi,nee,fet,domain --target wnut16 --domain-text my_tweets.txt --out runs/mine
"""


TRAIN_FLAGS = ("lr", "batch_size", "seed", "precision", "num_threads")  # TrainConfig fields offered here


def add_stage_flags(p) -> None:
    """The stage settings' flags, generated from :class:`cofee_lib.settings.StageSettings`, and the
    training flags every stage shares (from :class:`cofee_lib.settings.TrainConfig`)."""
    from ..settings import StageSettings, TrainConfig, add_flags

    add_flags(p.add_argument_group("stage settings (default: the preset's; cofee_lib/settings.py)"), StageSettings)
    t = p.add_argument_group("training (default: the preset's)")
    add_flags(t, TrainConfig, TRAIN_FLAGS)
    t.add_argument("--bf16", dest="precision", action="store_const", const="bf16", help="= --precision bf16")
    t.add_argument("--no-bf16", dest="precision", action="store_const", const="fp32", help="= --precision fp32")


def stage_overrides(args) -> dict:
    from ..settings import StageSettings, flag_values

    return flag_values(args, StageSettings)


def train_overrides(args) -> dict:
    from ..settings import TrainConfig, flag_values

    return {k: v for k, v in flag_values(args, TrainConfig).items() if k in TRAIN_FLAGS}


def register(sub):
    import argparse

    from ..presets import preset_names
    from ..datasets import target_arg

    p = sub.add_parser("pretrain", help="CoFEE pre-training: ESI, NEE (self-picking), FET (clustering); ablations",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stages", default="esi,nee,fet", help="comma-separated subset of esi,nee,fet,domain (default: esi,nee,fet, the paper's; "
                        "domain needs --domain-text)")
    p.add_argument("--backbone", default="mrc", choices=["mrc", "tagger"], help="CoFEE-MRC or CoFEE-BERT (tagger)")
    p.add_argument("--subtoken-labels", choices=["first", "all"],
                   help="tagger only: which sub-tokens of a word are trained: first (the default) or all (later ones "
                        "with the word's I- tag, so that the exported model agrees with transformers' "
                        "token-classification pipeline; see cofee export); later stages keep the first stage's")
    p.add_argument("--lang", default="en", choices=["en", "zh"],
                   help="language of the corpora (the embedded data is English; a user dataset names its own)")
    p.add_argument("--target", required=True, type=target_arg,
                   help="dataset whose dev split selects models: wnut16, conll2003, a user dataset "
                        "(see `cofee paper-data`) or dir:/path/to/folder")
    p.add_argument("--model", help="initial encoder: tiny | embedded:minilm | DIR | hub name (default: the preset's)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder: <stage>/best, <stage>/report.json, pretrain_report.json")
    p.add_argument("--preset", default="default", choices=preset_names())
    p.add_argument("--work-dir", help="where corpora and gazetteers are cached (default: work/<preset>)")
    p.add_argument("--no-self-picking", action="store_true", help="train NEE (and the domain stage) on the gazetteer labels only (MRC-NER on D_s)")
    p.add_argument("--resume", action="store_true",
                   help="with --no-cache: continue unfinished stages in --out from their checkpoints "
                        "(stored stages always continue from theirs)")
    p.add_argument("--no-cache", action="store_true",
                   help="train every stage into --out afresh instead of reusing finished stages from "
                        "<work-dir>/runs (stages are keyed by initial weights, tokenizer, data and settings)")
    add_stage_flags(p)
    p.set_defaults(func=run)


def run(args):
    from ..errors import check_output, removed_on_error
    from ..pipeline import pretrain

    check_output(args.out, directory=True)
    with removed_on_error(args.out):
        report = pretrain(args.stages, args.backbone, args.target, args.out, model=args.model, preset=args.preset,
                          lang=args.lang, work_dir=args.work_dir, self_picking=not args.no_self_picking,
                          resume=args.resume, train_overrides=train_overrides(args), use_cache=not args.no_cache,
                          subtoken_labels=args.subtoken_labels, **stage_overrides(args))
    for stage, rep in report["stage_reports"].items():
        reused = " (reused a finished run)" if rep.get("reused") else ""
        print(f"{stage}: best dev F1 {rep['best_f1']:.4f} (epoch {rep['best_epoch']}){reused}")
    print(f"final model: {report['final_model']}  ({report['seconds']:.0f} s)")
    return 0
