"""``cofee export --model DIR --out OUT --format hf``: a tagger as a standard HuggingFace model folder.

Writes a tagger (``cofee train --backbone tagger``, or a CoFEE-BERT run's
model) as an ``AutoModelForTokenClassification`` folder that
``transformers.pipeline("token-classification", model=OUT,
aggregation_strategy="simple")`` loads offline, checked by loading it back and
comparing its logits with the kit's (:mod:`cofee_lib.backbones.export`). The
pipeline's entities are ``cofee tag``'s when the later sub-tokens of each word
predict the word's tag, which is what ``--subtoken-labels all`` trains; a
tagger trained with the default (``first``) is exported with a warning. MRC-NER and BiLSTM-CRF models are refused
(exit status 2): no standard pipeline fits them.

``OUT`` must not exist, unless ``--overwrite`` is given and ``OUT`` is an empty
folder or an earlier ``cofee export``; it may not be, hold or lie inside
``--model``. It is written beside and renamed into place: never half a folder.
"""
from __future__ import annotations

import sys

EXAMPLE = """example:
  cofee train --backbone tagger --subtoken-labels all --train dataset:conll2003 --dev dataset:conll2003 \\
      --out runs/tagger
  cofee export --model runs/tagger/best --out exported/conll-tagger --format hf
  python -c "from transformers import pipeline; print(pipeline('token-classification', \\
      model='exported/conll-tagger', aggregation_strategy='simple')('Angela Merkel visited Paris'))"
"""


def register(sub):
    import argparse

    p = sub.add_parser("export", help="write a tagger model as a HuggingFace token-classification folder",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="DIR",
                   help="a tagger model folder (has cofee.json), e.g. RUN/best")
    p.add_argument("--out", required=True, metavar="OUT", help="the folder to write (must not exist)")
    p.add_argument("--format", choices=["hf"], default="hf",
                   help="hf: transformers' AutoModelForTokenClassification folder (the only format so far)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT when it is an empty folder or an earlier cofee export")
    p.set_defaults(func=run)


def check_out(out, model_dir, overwrite: bool) -> None:
    """Refuse an ``OUT`` that exists (unless ``--overwrite`` of an empty folder or an earlier export),
    or that is, holds or lies inside the model folder."""
    import os
    from pathlib import Path

    from ..backbones.export import EXPORT_NAME
    from ..errors import CofeeError, check_output

    check_output(out, inputs=[model_dir], directory=True)
    base, model = os.path.realpath(out), os.path.realpath(model_dir)
    if os.path.commonpath([base, model]) in (base, model):
        raise CofeeError(f"{out}: is, holds or lies inside the --model folder {model_dir}; writing it would change "
                         "that model (expected a folder outside it)")
    path = Path(out)
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise CofeeError(f"{out}: exists; expected a new folder (or --overwrite to replace an earlier export)")
    if path.is_symlink() or not (not any(path.iterdir()) or (path / EXPORT_NAME).is_file()):
        raise CofeeError(f"{out}: is not an earlier cofee export (no {EXPORT_NAME}) nor an empty folder; "
                         "--overwrite replaces only those (expected another --out)")


def run(args):
    from ..backbones import load_backbone, read_config
    from ..backbones.export import export_hf, refusal
    from ..errors import CofeeError
    from ..formats.text import split_words

    cfg = read_config(args.model)   # a kit model folder, or a clear error
    why = refusal(cfg["kind"], args.model)
    if why:
        raise CofeeError(why)
    check_out(args.out, args.model, args.overwrite)
    model = load_backbone(args.model, device="cpu")
    info = export_hf(model, args.out, source=args.model, words_of=lambda text: split_words(text)[0])
    for warning in info.get("warnings", ()):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"exported the {'/'.join(info['types'])} tagger ({len(info['labels'])} labels) to {args.out}; "
          f"reloaded, its logits match the kit's within {info['check']['max_abs_logit_diff']:.1g}")
    print(f"  pipeline('token-classification', model='{args.out}', aggregation_strategy='simple')")
    return 0
