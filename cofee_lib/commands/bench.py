"""``cofee bench``: run the benchmarks of the repository's ``bench/`` folder into ``results/bench.json``.

The benchmarks are plain scripts next to the library (``bench/bench_*.py``), not part of the
installed package: this command needs a checkout of the repository (``pip install -e .``).
Each benchmark runs the kit and a reference (the authors' padded loop, scikit-learn,
bzcat / wikiextractor, a hand-written matcher, the HuggingFace pipeline) on the same input in
the same run and records their ratio; ``bench/README.md`` says what each one measures.
"""
from __future__ import annotations

from pathlib import Path


def register(sub):
    p = sub.add_parser(
        "bench", help="run the benchmarks (kit vs reference, same input, same run) into results/bench.json",
        description="Run the benchmark suite of bench/: training throughput (vs the authors' padded fp32 loop and "
                    "the matmul peak), k-means (vs scikit-learn), anchor extraction (vs bzcat and wikiextractor), "
                    "gazetteer matching and inference. Writes results/bench.json (tiny: results/smoke/bench.json) "
                    "and prints the summary table.")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only these benchmarks (repeat, or comma-separate): train, kmeans, anchors, match, predict; "
                        "the others' entries in the results file are kept")
    p.add_argument("--size", choices=["tiny", "full"], default="full",
                   help="tiny: seconds, proves every benchmark works; full (default): the README's figures, "
                        "about 8 minutes on 2 CPU cores")
    p.add_argument("--out", default=None, help="results file (default results/bench.json; --size tiny: results/smoke/bench.json)")
    p.add_argument("--work-dir", default=None,
                   help="where derived inputs are cached (span vectors, repeated dump, corpora; default: work/)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch, scikit-learn and the commands started (default: all cores)")
    p.add_argument("--show", action="store_true", help="print the table of the existing results file and stop")
    p.set_defaults(func=run)


def bench_dir() -> Path:
    """The repository's ``bench/`` folder (next to ``cofee_lib/``)."""
    return Path(__file__).resolve().parent.parent.parent / "bench"


def run(args):
    import sys

    from ..errors import CofeeError, check_output

    if args.out:
        check_output(args.out)
    folder = bench_dir()
    if not (folder / "run_all.py").is_file():
        raise CofeeError(f"{folder}: no benchmark suite here; `cofee bench` runs the bench/ folder of a checkout "
                         f"of the repository (install it with `pip install -e .`)")
    root = str(folder.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from bench import run_all

    return run_all.run_from_args(args)
