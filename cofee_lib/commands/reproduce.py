"""``cofee reproduce``: run the numbered notebooks through papermill (what ``make reproduce`` calls)."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("reproduce", help="run the numbered notebooks headlessly (tables, figures, results)")
    p.add_argument("--preset", default="default", choices=["smoke", "default", "paper"],
                   help="scale of every notebook (default: the CPU run whose results the repo ships)")
    p.add_argument("--only", nargs="+", metavar="NB", help="run only these notebooks (numbers like 01 03, or names)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override a notebook parameter (JSON values are parsed: -p epochs 2)")
    p.add_argument("--list", action="store_true", help="list the notebooks and exit")
    p.add_argument("--log-output", action="store_true", help="stream the notebooks' output to the terminal")
    p.add_argument("--store-outputs", action="store_true",
                   help="for notebook authors: run the notebooks in place at the smoke preset (outputs to a temporary "
                        "folder) and keep their outputs in notebooks/, the reference nbval compares against")
    p.add_argument("--tidy", action="store_true",
                   help="only tidy the executed copies already in the preset's results/notebooks/ (progress bars to "
                        "their final line, repository-relative paths), as every run does, without running anything")
    p.add_argument("--tables", action="store_true",
                   help="only rebuild results/tables.md (.csv, .json), results/claims.md (.json) and the README's "
                        "tables and claims from the results files")
    p.set_defaults(func=run)


def _tables(preset: str) -> None:
    """tables.md from the preset's results; the README's copy only for the default preset (what the repo ships)."""
    from pathlib import Path

    from ..reproduce import output_dirs, repo_root
    from ..tables import sync_readme, write_tables

    results = Path(output_dirs(preset)["results_dir"])
    if not results.is_dir():
        return
    paths = write_tables(results)
    print(f"wrote {paths['md']}")
    if preset == "default" and sync_readme(repo_root() / "README.md", results):
        print("updated the tables in README.md")
    from ..claims import evidence
    from .claims import write

    if any(item["counts"] is not None for item in evidence(results).values()):
        write(results, readme=preset == "default")


def _tidy(preset: str, only) -> None:
    """Tidy the executed copies of a preset in place, with the paths recorded in each (cofee_lib.reproduce.tidy_file)."""
    from pathlib import Path

    from ..paths import relative
    from ..reproduce import NOTEBOOK_PATTERN, output_dirs, tidy_file

    folder = Path(output_dirs(preset)["results_dir"]) / "notebooks"
    books = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name)) if folder.is_dir() else []
    if only:
        books = [p for p in books if any(p.name.startswith(str(o).zfill(2) + "_") or p.stem == o for o in only)]
    for book in books:
        tidy_file(book)
        print(f"tidied {relative(book)}")


def run(args):
    from ..reproduce import list_notebooks, parse_overrides, run_notebooks, store_outputs

    if args.list:
        for book in list_notebooks():
            print(book.name)
        return 0
    if args.store_outputs:
        for book in store_outputs(only=args.only):
            print(f"stored the smoke outputs of {book.name}")
        return 0
    if args.tables:
        _tables(args.preset)
        return 0
    if args.tidy:
        _tidy(args.preset, args.only)
        return 0
    ran = run_notebooks(args.preset, only=args.only, overrides=parse_overrides(args.parameter),
                        log_output=args.log_output)
    for name, seconds in ran.items():
        print(f"{name}: {seconds:.1f} s")
    if not args.parameter:  # tables of a run with overridden parameters would mix settings: leave them to the user
        _tables(args.preset)
    return 0
