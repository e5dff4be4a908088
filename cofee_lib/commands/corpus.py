"""``cofee corpus anchors|match``: build D_g from a Wikipedia dump and D_s from it with gazetteers.

The two subcommands are registered by their own modules
(``_corpus_anchors.py`` and ``_corpus_match.py``) so that each stays small.
"""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("corpus", help="build the pre-training corpora: anchors (D_g) and gazetteer matches (D_s)")
    corpus_sub = p.add_subparsers(dest="corpus_command", metavar="SUBCOMMAND", required=True)
    from . import _corpus_anchors, _corpus_match

    _corpus_anchors.register(corpus_sub)
    _corpus_match.register(corpus_sub)
