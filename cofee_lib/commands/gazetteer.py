"""``cofee gazetteer build``: typed gazetteers (PER/LOC/ORG) from the fetched sources (paper Sec. 5.2).

The choices (sources, filters, normalisation) are described in
:mod:`cofee_lib.gazetteers`; the option values in
``cofee_lib/resources/gazetteer_choices.json``.
"""
from __future__ import annotations

import json
import sys


def register(sub):
    p = sub.add_parser("gazetteer", help="build typed gazetteers (PER/LOC/ORG) from the fetched sources")
    gaz_sub = p.add_subparsers(dest="gazetteer_command", metavar="SUBCOMMAND", required=True)
    b = gaz_sub.add_parser(
        "build", help="write DIR/PER.txt, LOC.txt, ORG.txt and provenance.json",
        description="Build typed gazetteers from the real sources (GeoNames, pycountry, stock-index company "
                    "names, person names of the other English dataset's training split, census names; jieba, "
                    "jionlp and GeoNames for Chinese). One entry per line, sorted, UTF-8.")
    b.add_argument("--lang", choices=["en", "zh"], required=True, help="English or Chinese gazetteers")
    b.add_argument("--out", required=True, help="output directory (its *.txt and provenance.json are replaced)")
    b.add_argument("--target", choices=["wnut16", "conll2003"], default=None,
                   help="English: the dataset the gazetteers will be evaluated on; PER names then come from the "
                        "training split of the OTHER dataset (never the target)")
    b.add_argument("--fraction", type=float, default=1.0,
                   help="keep this fraction of each type's entries (0 < F <= 1; Figure 3). Default 1")
    b.add_argument("--seed", type=int, default=0, help="seed of the --fraction subsample (default 0)")
    b.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a build option of gazetteer_choices.json (VALUE is JSON, e.g. "
                        "geonames_min_population=100000 or census='\"none\"'); repeatable")
    b.set_defaults(func=run_build)


def _parse_overrides(items):
    from ..errors import CofeeError

    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise CofeeError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare string such as census=none
    return out


def run_build(args):
    from ..gazetteers import build_gazetteers, write_gazetteers

    gaz, provenance = build_gazetteers(args.lang, target=args.target, fraction=args.fraction, seed=args.seed,
                                       options=_parse_overrides(args.overrides))
    write_gazetteers(args.out, gaz, provenance)
    print(f"wrote {args.out}")
    for gaz_type, entries in gaz.items():
        full = provenance["counts_full"][gaz_type]
        print(f"  {gaz_type:<4} {len(entries):>9,} entries" + (f" (of {full:,})" if full != len(entries) else ""))
    sys.stdout.flush()
    return 0
