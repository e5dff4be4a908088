"""``cofee gazetteer build``: typed gazetteers (PER/LOC/ORG) from the fetched sources (paper Sec. 5.2).

The choices (sources, filters, normalisation) are described in
:mod:`cofee_lib.gazetteers`; the option values in
``cofee_lib/resources/gazetteer_choices.json``. A ``--set KEY=VALUE`` must
name an option of that file for ``--lang`` and give a value of the option's
type (checked before anything is fetched); ``--out`` must be a directory path.
"""
from __future__ import annotations

import json
import sys


def register(sub):
    from ..datasets import ENGLISH_TARGETS

    p = sub.add_parser("gazetteer", help="build typed gazetteers (PER/LOC/ORG) from the fetched sources")
    gaz_sub = p.add_subparsers(dest="gazetteer_command", metavar="SUBCOMMAND", required=True)
    b = gaz_sub.add_parser(
        "build", help="write DIR/PER.txt, LOC.txt, ORG.txt and provenance.json",
        description="Build typed gazetteers from the real sources (GeoNames, pycountry, stock-index company "
                    "names, GLEIF legal-entity names, NBA/WNBA players and teams, person names of the other English "
                    "dataset's training split, census names; jieba, "
                    "jionlp and GeoNames for Chinese). One entry per line, sorted, UTF-8.")
    b.add_argument("--lang", choices=["en", "zh"], required=True, help="English or Chinese gazetteers")
    b.add_argument("--out", required=True, help="output directory (its *.txt and provenance.json are replaced)")
    b.add_argument("--target", choices=list(ENGLISH_TARGETS), default=None,
                   help="English: the dataset the gazetteers will be evaluated on; PER names then come from the "
                        "training split of the OTHER dataset (never the target)")
    b.add_argument("--fraction", type=float, default=1.0,
                   help="keep this fraction of each type's entries (0 < F <= 1; Figure 3). Default 1")
    b.add_argument("--seed", type=int, default=0, help="seed of the --fraction subsample (default 0)")
    b.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a build option of gazetteer_choices.json (VALUE is JSON, e.g. "
                        "geonames_min_population=100000 or census='\"none\"'); repeatable")
    b.set_defaults(func=run_build)


def _expected(default) -> str:
    """How to describe the type of ``default`` in an error message."""
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, list):
        plural = {"a string": "strings", "an integer": "integers", "a number": "numbers", "true or false": "booleans"}
        return "a JSON list" + (f" of {plural.get(_expected(default[0]), 'values')}" if default else "")
    return "a JSON value"


def _fits(value, default) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and (not default or all(_fits(v, default[0]) for v in value))
    return default is None or isinstance(value, type(default))


def _parse_overrides(items, defaults: dict, lang: str) -> dict:
    """``--set KEY=VALUE`` items as ``{key: value}``, each checked against the option's default."""
    from ..errors import CofeeError

    out = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise CofeeError(f"--set expects KEY=VALUE, got {item!r}")
        if key not in defaults:
            raise CofeeError(f"--set {key}: unknown build option for --lang {lang}; expected one of "
                             f"{', '.join(sorted(defaults))}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw  # a bare string such as census=none
        if not _fits(value, defaults[key]):
            raise CofeeError(f"--set {key}={raw}: expected {_expected(defaults[key])} "
                             f"(the default is {json.dumps(defaults[key])})")
        out[key] = value
    return out


def run_build(args):
    from .. import datasets
    from ..errors import check_output
    from ..gazetteers import build_gazetteers, default_options, write_gazetteers

    options = _parse_overrides(args.overrides, default_options(args.lang), args.lang)
    check_output(args.out, directory=True)
    gaz, provenance = build_gazetteers(args.lang, target=args.target, fraction=args.fraction, seed=args.seed,
                                       options=options, load_train=datasets.load_train)
    write_gazetteers(args.out, gaz, provenance)
    print(f"wrote {args.out}")
    for gaz_type, entries in gaz.items():
        full = provenance["counts_full"][gaz_type]
        print(f"  {gaz_type:<4} {len(entries):>9,} entries" + (f" (of {full:,})" if full != len(entries) else ""))
    sys.stdout.flush()
    return 0
