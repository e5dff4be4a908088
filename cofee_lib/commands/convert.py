"""``cofee convert IN OUT --from FORMAT --to FORMAT``: convert NER files between formats.

All conversions go through the kit's word-level records (inclusive span
ends), so any reader pairs with any writer. Output is written atomically: on
bad input the command exits with status 2 and leaves no output file. OUT ``-``
is standard output (single-file formats; not bond, which writes two files);
OUT may not be IN (or any other file the command reads).
"""
from __future__ import annotations

FORMAT_HELP = """formats:
  jsonl        the kit's JSON lines records {id, tokens, spans}, spans [start, end, type] (end inclusive)
  conll        CoNLL columns: token first, tag last, tab or space separated, blank line between
               sentences, -DOCSTART- skipped; IOB2 (BIO) tags. Written as token<TAB>tag.
  conll-iob1   the same with IOB1 tags (I- may begin an entity)
  conll-bioes  the same with BIOES tags (BILOU letters L/U accepted on input)
  char         Chinese character-per-line char<TAB>tag (or char tag), BIO tags (MSRA)
  char-bmes    the same with BMES tags (B/M/E/S-TYPE, O)
  mrc          MRC-NER / CoFEE JSON: one example per (sentence, type) with context, query,
               entity_label, start_position, end_position, span_position, impossible, qas_id.
               Writing needs a query per type: --queries FILE.json ({"PER": "...", ...}); without it,
               mrc input keeps its own queries and other input gets generic "Find TYPE entities".
  bond         BOND JSON [{"str_words": [...], "tags": [ids]}] plus tag_to_id.json beside it
               (read from there; written or extended there, ids of existing tags kept)

examples:
  cofee convert train.txt train.jsonl --from conll --to jsonl
  cofee convert train.jsonl train.mrc.json --from jsonl --to mrc --queries queries.json
  cofee convert msra.txt msra.bmes --from char --to char-bmes --invalid drop
"""


def register(sub):
    import argparse

    from ..formats import FORMATS

    names = list(FORMATS)
    p = sub.add_parser(
        "convert", help="convert NER files between formats (conll, char, mrc, bond, jsonl)",
        description="Convert an NER file from one format to another through word-level records. "
                    "Bad input exits with status 2 naming the file and line; no output file is left behind.",
        epilog=FORMAT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="input file")
    p.add_argument("output", metavar="OUT", help="output file (written atomically; '-': standard output)")
    p.add_argument("--from", dest="src", required=True, choices=names, metavar="FORMAT",
                   help=f"input format: {', '.join(names)}")
    p.add_argument("--to", dest="dst", required=True, choices=names, metavar="FORMAT",
                   help=f"output format: {', '.join(names)}")
    p.add_argument("--queries", metavar="FILE.json",
                   help='for --to mrc: a JSON object {"TYPE": "query", ...}; its order sets the type '
                        'indices in qas_id. Default: the input\'s own queries (mrc input) or '
                        '"Find TYPE entities" for each type found')
    p.add_argument("--id-prefix", metavar="PREFIX",
                   help="record ids become PREFIX-<index> (default: the input file's name without suffix); "
                        "jsonl input keeps its own ids")
    p.add_argument("--invalid", choices=["error", "begin", "drop"], default="error",
                   help="ill-formed tag sequences (e.g. I-X with no entity to continue): error (default), "
                        "begin a new entity (conlleval), or drop the entity (seqeval strict)")
    p.add_argument("--tag-map", metavar="FILE",
                   help="bond: the tag_to_id.json to read/write (default: beside the bond file)")
    p.set_defaults(func=run)


def _check_paths(args) -> None:
    """Refuse a missing IN, an OUT that is an input, and a bad tag map path, before reading anything."""
    from pathlib import Path

    from ..errors import check_input, check_output, is_stdout
    from ..formats.bond import TAG_MAP_NAME

    check_input(args.input, f"a {args.src} file")
    read_map = (args.tag_map or Path(args.input).with_name(TAG_MAP_NAME)) if args.src == "bond" else None
    inputs = [args.input, args.queries, read_map]
    check_output(args.output, inputs=inputs, stdout=args.dst != "bond")
    if args.dst == "bond" and not is_stdout(args.output):
        tag_map = args.tag_map or Path(args.output).with_name(TAG_MAP_NAME)
        check_output(tag_map, inputs=[args.input, args.queries, args.output])


def _write_options(args, records, found_queries) -> tuple[dict, str | None]:
    """Writer options for ``--to`` and a note to print once the output is written (or None)."""
    from ..formats.mrc_json import generic_queries, read_queries

    options, note = {}, None
    if args.dst == "mrc":
        if args.queries:
            options["queries"] = read_queries(args.queries)
        elif found_queries:
            options["queries"] = found_queries
        else:
            options["queries"] = generic_queries(records)
            note = f"cofee convert: no --queries given; used generic queries {options['queries']}"
    if args.dst == "bond":
        options["tag_map"] = args.tag_map
    return options, note


def run(args):
    import sys

    from tqdm import tqdm

    from ..errors import is_stdout
    from ..formats import read_records, write_records

    _check_paths(args)
    found_queries: dict = {}
    records = read_records(args.input, args.src, id_prefix=args.id_prefix, invalid=args.invalid,
                           tag_map=args.tag_map if args.src == "bond" else None, queries_out=found_queries)
    options, note = _write_options(args, records, found_queries)
    n_entities = sum(len(rec["spans"]) for rec in records)
    bar = tqdm(records, desc=f"writing {args.dst}", unit="sent", file=sys.stderr, leave=False,
               disable=True if len(records) < 10000 else None)  # None: only on a terminal
    count = write_records(args.output, bar, args.dst, **options)
    bar.close()
    if note:
        print(note, file=sys.stderr)
    unit = "examples" if args.dst == "mrc" else "sentences"
    where = "standard output" if is_stdout(args.output) else args.output
    print(f"cofee convert: read {len(records)} sentences with {n_entities} entities from {args.input} ({args.src}); "
          f"wrote {count} {unit} to {where} ({args.dst})", file=sys.stderr)
    return 0
