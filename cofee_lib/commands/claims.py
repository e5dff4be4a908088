"""``cofee claims``: judge the paper's claims on the kit's results (verdicts with 95% intervals)."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("claims", help="which of the paper's claims the results reproduce: verdicts with 95%% intervals "
                                      "(writes claims.json and claims.md)")
    p.add_argument("--preset", default="default", choices=["smoke", "default", "paper"],
                   help="read that preset's results folder (default: results/, what the repo ships)")
    p.add_argument("--results", metavar="DIR", help="read the results files from DIR instead")
    p.add_argument("--out", metavar="DIR", help="write claims.json and claims.md to DIR (default: the results folder)")
    p.add_argument("--readme", action="store_true",
                   help="also replace the README's claims block (done by default for the default preset's results)")
    p.set_defaults(func=run)


def write(results, out=None, readme: bool = False) -> dict:
    """Judge, write, and (``readme``) sync the README's block; what ``cofee reproduce`` calls too."""
    from ..claims import summary, sync_readme, write_claims
    from ..paths import repo_root

    written = write_claims(results, out)
    if readme and sync_readme(repo_root() / "README.md", written["claims"]):
        print("updated the claims in README.md")
    by = summary(written["claims"])
    for verdict, items in by.items():
        print(f"{verdict}: {', '.join(items) or 'none'}")
    print(f"wrote {written['paths']['md']} and {written['paths']['json'].name}")
    return written


def run(args):
    from pathlib import Path

    from ..errors import CofeeError
    from ..paths import output_dirs

    results = Path(args.results) if args.results else Path(output_dirs(args.preset)["results_dir"])
    if not results.is_dir():
        raise CofeeError(f"{results}: no results folder (run `make reproduce`, or pass --results DIR)")
    readme = args.readme or (args.results is None and args.out is None and args.preset == "default")
    write(results, args.out, readme)
    return 0
