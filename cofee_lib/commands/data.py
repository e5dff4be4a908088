"""``cofee data``: write a built-in dataset split (or convert your own file) as JSON lines, or show counts.

Examples::

    cofee data conll2003 --split dev --out dev.jsonl   # writes records, prints counts
    cofee data wnut16 --stats                          # table of all splits
    cofee data my_corpus.conll --out my_corpus.jsonl   # a user's CoNLL file to records

Records are word-level (characters for Chinese) with inclusive span ends; see
:mod:`cofee_lib.records`. An output ending in ``.conll``/``.txt``/``.tsv`` is
written as ``token<TAB>tag`` IOB2 columns instead. ``--out -`` writes JSON lines
to standard output (the counts go to stderr then); ``--out`` may not be the input file.
"""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("data", help="write a dataset split (conll2003, wnut16, msra) as records, or show counts",
                       description="Load a built-in dataset split (fetched and verified) or a user's file "
                                   "(.jsonl or CoNLL columns), write it atomically, and print its counts.")
    p.add_argument("name", metavar="NAME", help="conll2003, wnut16, msra, or the path of your own file")
    p.add_argument("--split", choices=["train", "dev", "test"], help="which split of a built-in dataset")
    p.add_argument("--out", help="write the records here (.jsonl; .conll/.txt/.tsv for IOB2 columns; '-': stdout)")
    p.add_argument("--stats", action="store_true", help="print counts of every split as a table")
    p.add_argument("--format", choices=["jsonl", "conll", "chars"],
                   help="format of your own file (default: from the extension: .jsonl, else conll)")
    p.add_argument("--scheme", default="iob2", help="tagging scheme of your own column file (iob2, iob1, bioes, bmes)")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    p.set_defaults(func=run)


def _stats_table(rows: dict[str, dict], types: list[str]) -> str:
    header = ["split", "sentences", "tokens", "entities"] + types
    table = [header]
    for split, stats in rows.items():
        table.append([split, str(stats["sentences"]), str(stats["tokens"]), str(stats["entities"])]
                     + [str(stats["types"].get(t, 0)) for t in types])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) if k else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in table)


def _load(args, progress: bool, report):
    """``(records, label, types)`` of a built-in / user dataset split or of a file; None after --stats only."""
    from pathlib import Path

    from ..datasets import (DATASETS, dataset_types, is_builtin, is_user_dataset, load_dataset, load_records,
                            load_splits, record_stats)
    from ..errors import CofeeError, check_input

    if is_builtin(args.name) or is_user_dataset(args.name):  # built-in, or the user's (cofee paper-data)
        if args.stats:
            splits = load_splits(args.name, progress=progress)
            print(_stats_table({s: record_stats(r) for s, r in splits.items()}, dataset_types(args.name)), file=report)
            if not args.out:
                return None
        if not args.split:
            raise CofeeError(f"dataset {args.name!r}: give --split (train, dev or test), or --stats")
        records = load_dataset(args.name, args.split, progress=progress)
        return records, f"{args.name} {args.split}", dataset_types(args.name)
    if Path(args.name).exists():
        if args.split:
            raise CofeeError(f"--split applies to the built-in datasets ({', '.join(DATASETS)}), not to a file")
        check_input(args.name, "a dataset file")
        return load_records(args.name, format=args.format, scheme=args.scheme), args.name, None
    raise CofeeError(f"{args.name!r} is neither a built-in dataset ({', '.join(DATASETS)}) nor an existing file")


def run(args):
    import sys
    from pathlib import Path

    from ..datasets import record_stats
    from ..errors import check_output, is_stdout
    from .match import check_scheme

    args.scheme = check_scheme(args.scheme)
    if args.out:
        check_output(args.out, inputs=[args.name] if Path(args.name).exists() else [], stdout=True)
    report = sys.stderr if is_stdout(args.out) else sys.stdout
    loaded = _load(args, progress=not args.quiet, report=report)
    if loaded is None:
        return 0
    records, label, types = loaded
    stats = record_stats(records)
    if args.out:
        if Path(args.out).suffix.lower() in (".conll", ".txt", ".tsv"):
            from ..formats.conll import write_conll

            write_conll(args.out, records, scheme="iob2")
        else:
            from ..records import write_jsonl

            write_jsonl(args.out, records)
        print(f"wrote {stats['sentences']} records to {args.out}", file=report)
    if not args.stats or args.out:
        print(_stats_table({label: stats}, types or sorted(stats["types"])), file=report)
    return 0
