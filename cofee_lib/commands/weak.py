"""``cofee weak``: Table 3, weakly supervised NER, for one target dataset.

Trains CoFEE (ESI, NEE, FET), NEE alone (-FET-ESI) and MRC-NER on D_s; "-FET"
is the NEE stage of the CoFEE run. Every model is selected on dev; the test
split is read once at the end to score them beside the Gazetteer Matching
baseline. ``--domain-text FILE`` (or ``dataset:NAME``) adds the rows beyond the
paper that train on that in-domain text (:mod:`cofee_lib.domain`). Writes ``OUT/table3_<target>.json``. ``--out`` must be a directory
path; a folder this command created is removed again if it fails with a user
error before any model has a checkpoint or a best model.
"""
from __future__ import annotations


def register(sub):
    import argparse

    from .pretrain import add_stage_flags

    p = sub.add_parser("weak", help="Table 3: weakly supervised NER (Matching, MRC-NER on D_s, CoFEE and ablations)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from ..presets import preset_names
    from ..datasets import target_arg

    p.add_argument("--target", required=True, type=target_arg, metavar="NAME",
                   help="wnut16, conll2003, a user dataset (ontonotes4, ecommerce, twitter, ...: cofee paper-data) "
                        "or dir:/path/to/folder")
    p.add_argument("--backbone", default="mrc", choices=["mrc", "tagger"])
    p.add_argument("--model", help="initial encoder (default: the preset's)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--preset", default="default", choices=preset_names())
    p.add_argument("--work-dir", help="where corpora and gazetteers are cached (default: work/<preset>)")
    add_stage_flags(p)
    p.set_defaults(func=run)


def run(args):
    import json
    import shlex
    import sys

    from ..errors import check_output, removed_on_error
    from ..experiments import weak_supervision_table
    from .pretrain import stage_overrides, train_overrides

    check_output(args.out, directory=True)
    from ..presets import get_preset

    overrides = stage_overrides(args)
    text = overrides.pop("domain_text", None)
    in_domain = None
    if text:  # the preset's in-domain settings (its sample cap), with the user's text
        in_domain = {**(get_preset(args.preset).get("experiments", {}).get("table3_in_domain") or {}), "text": text}
    with removed_on_error(args.out):
        result = weak_supervision_table(args.target, args.out, preset=args.preset, backbone=args.backbone,
                                        model=args.model, work_dir=args.work_dir, train_overrides=train_overrides(args),
                                        command="cofee " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                                        in_domain=in_domain, **overrides)
    print(f"Table 3 ({args.target}, test, {result['test_sentences']} sentences):")
    width = max(20, *(len(name) for name in result["rows"]))
    print(f"{'model':<{width}} {'P':>7} {'R':>7} {'F1':>7} {'dev F1':>7}")
    for name, row in result["rows"].items():
        dev = "" if row["dev_F1"] is None else f"{100 * row['dev_F1']:7.2f}"
        print(f"{name:<{width}} {100 * row['P']:7.2f} {100 * row['R']:7.2f} {100 * row['F1']:7.2f} {dev:>7}")
    print(json.dumps({"written": f"{args.out}/table3_{args.target}.json"}))
    return 0
