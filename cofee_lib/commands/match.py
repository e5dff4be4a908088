"""``cofee match``: the Gazetteer Matching baseline (paper Sec. 5.3) over any dataset file.

``--out -`` writes the predicted records to standard output (the summary goes
to stderr then); ``--out`` may not be ``--data`` nor a gazetteer file.
``--scheme`` must be a known tagging scheme even for JSON lines input.
"""
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
    p.add_argument("--scheme", default="iob2",
                   help="tagging scheme of a column file: iob2 (default), iob1, bioes, bmes "
                        "(aliases bio, iobes, bilou)")
    p.add_argument("--out", required=True, help="predicted records (JSON lines, written atomically; '-': stdout)")
    p.add_argument("--conflicts", choices=["skip", "priority"], default="skip",
                   help="an entry in several types' gazetteers: skip it (default) or take the first of PER, ORG, LOC")
    p.set_defaults(func=run)


def check_scheme(scheme: str) -> str:
    """The canonical tagging scheme; :class:`CofeeError` naming ``--scheme`` and the valid values."""
    from ..errors import CofeeError
    from ..formats.tags import normalize_scheme

    try:
        return normalize_scheme(scheme)
    except CofeeError as exc:
        raise CofeeError(f"--scheme: {exc}") from None


def run(args):
    from collections import Counter

    from ..errors import check_input, check_output, is_stdout
    from ..formats import read_file
    from ..gazetteers import load_gazetteers
    from ..matching import match_records
    from ..records import write_jsonl

    scheme = check_scheme(args.scheme)
    check_input(args.data, "a dataset file")
    check_output(args.out, inputs=[args.data, args.gazetteers], stdout=True)
    gazetteers = load_gazetteers(args.gazetteers)
    records = read_file(args.data, args.format, scheme)
    predictions = match_records(records, gazetteers, conflicts=args.conflicts)
    write_jsonl(args.out, predictions)
    counts = Counter(span[2] for rec in predictions for span in rec["spans"])
    report = sys.stderr if is_stdout(args.out) else sys.stdout
    print(f"wrote {args.out}: {len(predictions):,} sentences, {sum(counts.values()):,} matches", file=report)
    for gaz_type in sorted(counts):
        print(f"  {gaz_type:<4} {counts[gaz_type]:>9,}", file=report)
    report.flush()
    return 0
