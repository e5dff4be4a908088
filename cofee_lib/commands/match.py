"""``cofee match``: the Gazetteer Matching baseline (paper Sec. 5.3) over any dataset file."""
from __future__ import annotations

import sys


def register(sub):
    p = sub.add_parser(
        "match", help="Gazetteer Matching baseline: exact longest-first gazetteer matches as predictions",
        description="Tag every sentence of a dataset with the exact, token-level, longest-first matches of "
                    "typed gazetteers. The input's own spans (gold) are ignored; the output has the same ids "
                    "and tokens. Score it with `cofee evaluate --gold FILE --pred PRED.jsonl`.")
    p.add_argument("--gazetteers", required=True, help="gazetteer directory (from `cofee gazetteer build`)")
    p.add_argument("--data", required=True, help="dataset: JSON lines (.jsonl) or a CoNLL / char-per-line file")
    p.add_argument("--format", choices=["jsonl", "conll", "chars"], default=None,
                   help="format of --data (default: .jsonl is JSON lines, anything else CoNLL columns)")
    p.add_argument("--scheme", default="iob2", help="tagging scheme of a column file (default iob2)")
    p.add_argument("--out", required=True, help="predicted records (JSON lines, written atomically)")
    p.add_argument("--conflicts", choices=["skip", "priority"], default="skip",
                   help="an entry in several types' gazetteers: skip it (default) or take the first of PER, ORG, LOC")
    p.set_defaults(func=run)


def run(args):
    from collections import Counter

    from ..datasets import load_records
    from ..gazetteers import load_gazetteers
    from ..matching import match_records
    from ..records import write_jsonl

    gazetteers = load_gazetteers(args.gazetteers)
    records = load_records(args.data, args.format, args.scheme)
    predictions = match_records(records, gazetteers, conflicts=args.conflicts)
    write_jsonl(args.out, predictions)
    counts = Counter(span[2] for rec in predictions for span in rec["spans"])
    print(f"wrote {args.out}: {len(predictions):,} sentences, {sum(counts.values()):,} matches")
    for gaz_type in sorted(counts):
        print(f"  {gaz_type:<4} {counts[gaz_type]:>9,}")
    sys.stdout.flush()
    return 0
