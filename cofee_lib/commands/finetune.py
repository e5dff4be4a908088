"""``cofee finetune --init RUN --train F --dev F``: the supervised setting (Table 2).

Fine-tunes a pre-trained CoFEE model on human-labelled data. ``--init`` is a
``cofee pretrain`` run folder (its final stage is used), a stage folder
(``RUN/fet``: its ``best/``), or a model folder. The backbone kind (MRC or
tagger) is the one the model was pre-trained with, and so is a tagger's
sub-token labelling unless ``--subtoken-labels`` is given. Everything else is
``cofee train``: the best epoch on dev is kept, no test split is read.
``--out`` may not be (or hold) the ``--init`` model.
"""
from __future__ import annotations

EXAMPLE = """example:
  cofee pretrain --target wnut16 --backbone mrc --out runs/cofee-wnut
  cofee finetune --init runs/cofee-wnut --train dataset:wnut16 --dev dataset:wnut16 --out runs/cofee-wnut-ft
"""


def resolve_init(init: str):
    """The model folder behind ``--init`` (pretrain run, stage folder or model folder)."""
    from pathlib import Path

    from ..backbones import CONFIG_NAME
    from ..errors import CofeeError
    from ..pipeline import final_model_dir

    path = Path(init)
    if (path / "best" / CONFIG_NAME).is_file():
        return path / "best"
    try:
        return final_model_dir(path)
    except CofeeError:
        raise CofeeError(f"--init {init}: expected a pretrain run folder, a stage folder (with best/) "
                         "or a saved model folder (with cofee.json)") from None


def register(sub):
    import argparse

    from .train import add_training_arguments

    p = sub.add_parser("finetune", help="fine-tune a pre-trained CoFEE model on labelled data (Table 2)",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", required=True, metavar="DIR", help="pretrain run, stage folder or model folder")
    add_training_arguments(p)
    p.set_defaults(func=run)


def check_out_apart(out, model_dir) -> None:
    """Refuse an ``--out`` that is, or holds, the model fine-tuning starts from."""
    import os

    from ..errors import CofeeError

    base, model = os.path.realpath(out), os.path.realpath(model_dir)
    if os.path.commonpath([base, model]) == base:
        raise CofeeError(f"{out}: holds the --init model {model_dir}; fine-tuning into it would overwrite that "
                         "run (expected another --out)")


def run(args):
    from ..backbones.base import read_config
    from . import train

    model_dir = resolve_init(args.init)
    check_out_apart(args.out, model_dir)
    args.backbone = read_config(model_dir)["kind"]
    args.model = str(model_dir)
    return train.run(args)
