"""``cofee corpus match``: D_s, the anchors of D_g typed by gazetteers (paper Sec. 4.2).

Registered by :mod:`cofee_lib.commands.corpus`. Streams the corpus (constant memory).
"""
from __future__ import annotations

import json
import sys


def register(corpus_sub):
    p = corpus_sub.add_parser(
        "match", help="D_s: type the anchors of D_g with gazetteers, keep sentences with a matched anchor",
        description="Every anchor (span) of D_g whose surface is exactly an entry of type y's gazetteer becomes "
                    "an entity of type y; unmatched anchors are dropped and sentences without a matched anchor "
                    "are left out. Link targets are kept for the kept spans.")
    p.add_argument("--corpus", required=True, help="D_g JSON lines (from `cofee corpus anchors`)")
    p.add_argument("--gazetteers", required=True, help="gazetteer directory (from `cofee gazetteer build`)")
    p.add_argument("--out", required=True, help="D_s JSON lines (written atomically)")
    p.add_argument("--conflicts", choices=["skip", "priority"], default="skip",
                   help="an entry in several types' gazetteers: skip it (default) or take the first of PER, ORG, LOC")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args):
    from collections import Counter

    from tqdm import tqdm

    from ..errors import atomic_open
    from ..gazetteers import load_gazetteers
    from ..matching import GazetteerMatcher, iter_label_anchors
    from ..records import iter_jsonl

    matcher = GazetteerMatcher(load_gazetteers(args.gazetteers), conflicts=args.conflicts)
    counts = Counter()
    records = tqdm(iter_jsonl(args.corpus), desc="typing anchors", unit=" sent", file=sys.stderr,
                   disable=args.quiet, leave=False)
    with atomic_open(args.out) as handle:
        for rec in iter_label_anchors(records, matcher, counts):
            handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    for key in ("sentences_in", "sentences_out", "anchors_in", "anchors_matched", "anchors_ambiguous"):
        print(f"  {key.replace('_', ' '):<18} {counts[key]:>10,}")
    for key in sorted(k for k in counts if k.startswith("matched:")):
        print(f"  anchors {key.split(':', 1)[1]:<10} {counts[key]:>10,}")
    sys.stdout.flush()
    return 0
