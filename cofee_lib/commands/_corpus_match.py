"""``cofee corpus match``: D_s, the anchors of D_g typed by gazetteers (paper Sec. 4.2).

Registered by :mod:`cofee_lib.commands.corpus`. Streams the corpus (constant memory).
Each record's ``targets`` (when present) must be a list with one link target
(a string, or null) per span; anything else is an error naming ``file:line``.
``--out -`` writes D_s to standard output (the counts go to stderr then).
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
    p.add_argument("--out", required=True, help="D_s JSON lines (written atomically; '-': standard output)")
    p.add_argument("--conflicts", choices=["skip", "priority"], default="skip",
                   help="an entry in several types' gazetteers: skip it (default) or take the first of PER, ORG, LOC")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def targets_problem(rec: dict) -> str | None:
    """What is wrong with a record's ``targets`` (None if absent or well-formed)."""
    targets = rec.get("targets")
    if targets is None:
        return None
    if not isinstance(targets, list):
        return f"'targets' must be a list of link targets, one per span; got {type(targets).__name__}"
    if len(targets) != len(rec["spans"]):
        return f"'targets' has {len(targets)} items but the record has {len(rec['spans'])} spans; expected one per span"
    bad = next((t for t in targets if t is not None and not isinstance(t, str)), None)
    if bad is not None:
        return f"'targets' item {bad!r} is not a string (expected an article title or null)"
    return None


def _line_of(path, index: int) -> int | None:
    """The 1-based line of the ``index``-th record (0-based; blank lines skipped, as the reader does)."""
    with open(path, encoding="utf-8") as handle:
        seen = -1
        for lineno, line in enumerate(handle, 1):
            if line.strip():
                seen += 1
                if seen == index:
                    return lineno
    return None


def checked_records(path):
    """Stream the records of ``path``; :class:`InputError` (file:line) for bad ``targets``."""
    from ..errors import InputError
    from ..records import iter_jsonl

    for index, rec in enumerate(iter_jsonl(path)):
        problem = targets_problem(rec)
        if problem:
            raise InputError(path, _line_of(path, index), problem)
        yield rec


def run(args):
    from collections import Counter

    from tqdm import tqdm

    from ..errors import atomic_open, check_input, check_output, is_stdout
    from ..gazetteers import load_gazetteers
    from ..matching import GazetteerMatcher, iter_label_anchors

    check_input(args.corpus, "D_g JSON lines")
    check_output(args.out, inputs=[args.corpus, args.gazetteers], stdout=True)
    matcher = GazetteerMatcher(load_gazetteers(args.gazetteers), conflicts=args.conflicts)
    counts = Counter()
    records = tqdm(checked_records(args.corpus), desc="typing anchors", unit=" sent", file=sys.stderr,
                   disable=True if args.quiet else None, leave=False)  # None: only on a terminal
    with atomic_open(args.out) as handle:
        for rec in iter_label_anchors(records, matcher, counts):
            handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
    report = sys.stderr if is_stdout(args.out) else sys.stdout
    print(f"wrote {args.out}", file=report)
    for key in ("sentences_in", "sentences_out", "anchors_in", "anchors_matched", "anchors_ambiguous"):
        print(f"  {key.replace('_', ' '):<18} {counts[key]:>10,}", file=report)
    for key in sorted(k for k in counts if k.startswith("matched:")):
        print(f"  anchors {key.split(':', 1)[1]:<10} {counts[key]:>10,}", file=report)
    report.flush()
    return 0
