"""``cofee paper-data``: where the paper's datasets go, and whether your copies are there.

Examples::

    cofee paper-data                          # the expected layout under the data root
    cofee paper-data --check                  # every dataset and the Wikipedia dumps: found / missing, counts
    cofee paper-data --check twitter wiki     # only these (a name, wiki, or dir:/path/to/folder)

The data root is ``$COFEE_DATA_DIR`` (default ``<repo>/data``). ``--check``
reads every file it finds and prints sentence and entity counts; it exits
with status 2 when something asked for is missing or unreadable (the error
names the file and line). The layout is described in docs/paper_preset.md
and kept as data in ``cofee_lib/resources/user_datasets.json``.
"""
from __future__ import annotations

WIKI = "wiki"


def register(sub):
    import argparse

    p = sub.add_parser("paper-data", help="the layout of the paper's datasets under the data root; --check your copies",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="datasets to check (ontonotes4, ecommerce, twitter, your own, dir:/path, or wiki); "
                        "default: all of them and wiki")
    p.add_argument("--check", action="store_true", help="look for the files, read them, print counts; exit 2 if any is missing")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of text")
    p.set_defaults(func=run)


def _size(path) -> str:
    n = path.stat().st_size
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def _rel(path, root) -> str:
    from pathlib import Path

    try:
        return str(Path("data") / Path(path).relative_to(root)) if root.name == "data" else str(path)
    except ValueError:
        return str(path)


def _layout_lines(name: str, root) -> list[str]:
    from ..datasets.user import user_dataset_spec

    spec = user_dataset_spec(name)
    lines = [f"{name}: {spec['description']}"]
    for k, layout in enumerate(spec["layouts"]):
        head = "  files" if k == 0 else "  or"
        files = "  ".join(_rel(spec["folder"] / names[0], root) + (f" (or {', '.join(names[1:])})" if names[1:] else "")
                          for names in layout["files"].values())
        lines.append(f"{head}: {files}")
        if layout["about"]:
            lines.append(f"         {layout['about']}")
    need = "required" if spec["gazetteers_required"] else "optional"
    lines.append(f"  gazetteers ({need}): {_rel(spec['gazetteers'], root)}/{{{','.join(spec['types'] or ['TYPE'])}}}.txt")
    return lines


def _check_dataset(name: str) -> dict:
    from ..datasets import record_stats
    from ..datasets.user import check_layout, load_user_splits, user_dataset_spec, user_gazetteer_dir
    from ..errors import CofeeError

    entry = {"name": name, "ok": True, "splits": {}, "errors": []}
    try:
        spec = user_dataset_spec(name)
    except CofeeError as exc:
        return {**entry, "ok": False, "errors": [str(exc)]}
    entry.update(description=spec["description"], folder=str(spec["folder"]), paper=spec["paper"],
                 types=spec["types"])
    missing = check_layout(name)
    entry["missing"] = missing
    entry["ok"] = not missing
    for split in spec["splits"]:
        path = spec["files"][split]
        row = {"file": str(path) if path else None,
               "expected": [str(p) for p in spec["expected"][split]]}
        if path is not None:
            try:
                row["counts"] = record_stats(load_user_splits(name, [split])[split])
            except CofeeError as exc:
                entry["ok"] = False
                entry["errors"].append(str(exc))
        entry["splits"][split] = row
    gaz = user_gazetteer_dir(name)
    if gaz is not None:
        from ..gazetteers import load_gazetteers

        try:
            entry["gazetteers"] = {"dir": str(gaz), "counts": {t: len(v) for t, v in load_gazetteers(gaz).items()}}
        except CofeeError as exc:
            entry["ok"] = False
            entry["errors"].append(str(exc))
    else:
        entry["gazetteers"] = {"dir": None, "expected": str(spec["gazetteers"]), "required": spec["gazetteers_required"]}
    return entry


def _check_wiki() -> dict:
    from ..datasets.user import wiki_dumps
    from ..paths import data_root

    out = {"name": WIKI, "ok": True, "dumps": {}, "missing": []}
    for lang in ("en", "zh"):
        found = wiki_dumps(lang)
        out["dumps"][lang] = [{"file": str(p), "size": _size(p)} for p in found]
        if not found:
            out["ok"] = False
            out["missing"].append(f"{lang}: {data_root() / WIKI / f'{lang}wiki-YYYYMMDD-pages-articles.xml.bz2'}")
    return out


def _print_check(entry: dict, root) -> None:
    status = "ok" if entry["ok"] else "INCOMPLETE"
    if entry["name"] == WIKI:
        print(f"{WIKI}: Wikipedia pages-articles dumps  [{status}]")
        for lang, dumps in entry["dumps"].items():
            for d in dumps:
                print(f"  {lang}  found    {_rel(d['file'], root)} ({d['size']})")
            if not dumps:
                print(f"  {lang}  MISSING  expected {_rel(root / WIKI, root)}/{lang}wiki-YYYYMMDD-pages-articles.xml.bz2")
        return
    print(f"{entry['name']}: {entry.get('description', '')}  [{status}]")
    for split, row in entry["splits"].items():
        if row["file"] is None:
            print(f"  {split:<5} MISSING  expected {_rel(row['expected'][0], root)}"
                  + (f" (or {', '.join(p.rsplit('/', 1)[-1] for p in row['expected'][1:])})" if row["expected"][1:] else ""))
            continue
        counts = row.get("counts")
        text = "unreadable" if counts is None else (
            f"{counts['sentences']:,} sentences, {counts['tokens']:,} tokens, {counts['entities']:,} entities ("
            + ", ".join(f"{t} {n:,}" for t, n in counts["types"].items()) + ")")
        print(f"  {split:<5} found    {_rel(row['file'], root)}: {text}")
    gaz = entry.get("gazetteers", {})
    if gaz.get("dir"):
        print(f"  gazetteers       {_rel(gaz['dir'], root)}: "
              + ", ".join(f"{t} {n:,}" for t, n in gaz.get("counts", {}).items()))
    elif "expected" in gaz:
        what = "MISSING (required)" if gaz["required"] else "none (the kit builds its own)"
        print(f"  gazetteers       {what}: {_rel(gaz['expected'], root)}/{{{','.join(entry['types'] or ['TYPE'])}}}.txt")
    for key, note in (entry.get("paper") or {}).items():
        print(f"  paper, {key}: {note}")
    for err in entry.get("errors", []):
        print(f"  error: {err}")


def run(args):
    import json

    from ..datasets.user import DOCS, user_dataset_names
    from ..paths import data_root

    root = data_root()
    names = args.names or user_dataset_names() + [WIKI]
    if not args.check:
        if args.json:
            from ..datasets.user import user_dataset_spec

            layout = {n: {k: (str(v) if hasattr(v, "__fspath__") else v) for k, v in user_dataset_spec(n).items()
                          if k in ("folder", "lang", "types", "format", "scheme", "gazetteers", "description")}
                      for n in names if n != WIKI}
            print(json.dumps({"data_root": str(root), "datasets": layout}, indent=2, ensure_ascii=False))
            return 0
        print(f"data root: {root}  (set COFEE_DATA_DIR to move it; details: {DOCS})\n")
        for name in names:
            if name == WIKI:
                print(f"{WIKI}: {_rel(root / WIKI, root)}/enwiki-YYYYMMDD-pages-articles.xml.bz2, "
                      f"{_rel(root / WIKI, root)}/zhwiki-YYYYMMDD-pages-articles.xml.bz2")
            else:
                print("\n".join(_layout_lines(name, root)))
            print()
        print("your own data: one entry in data/user_datasets.json (same keys as cofee_lib/resources/"
              "user_datasets.json), or the target dir:/path/to/folder (train/dev/test files + optional dataset.json)")
        return 0
    results = [_check_wiki() if name == WIKI else _check_dataset(name) for name in names]
    if args.json:
        print(json.dumps({"data_root": str(root), "results": results}, indent=2, ensure_ascii=False))
    else:
        print(f"data root: {root}\n")
        for entry in results:
            _print_check(entry, root)
            print()
        bad = [e["name"] for e in results if not e["ok"]]
        print(f"missing or unreadable: {', '.join(bad)} (layout: {DOCS}, or `cofee paper-data`)" if bad
              else "everything asked for is there")
    return 2 if any(not e["ok"] for e in results) else 0
