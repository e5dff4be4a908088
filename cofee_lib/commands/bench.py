"""``cofee bench``: run the benchmarks of the repository's ``bench/`` folder into ``results/bench.json``.

The benchmarks are plain scripts next to the library (``bench/bench_*.py``), not part of the
installed package: this command needs a checkout of the repository (``pip install -e .``), and
runs ``python -m bench.run_all`` with the same flags in a child process from the checkout's root
(the kit never imports ``bench``; ``bench`` imports the kit). What the suite prints is passed on,
its error lines named ``cofee bench``, and its exit status is this command's.
Each benchmark runs the kit and a reference (the authors' padded loop, scikit-learn,
bzcat / wikiextractor, a hand-written matcher, the HuggingFace pipeline) on the same input in
the same run and records their ratio; ``bench/README.md`` says what each one measures.
"""
from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path

#: The suite's own name in its one-line errors, and this command's (``cofee <command>: error: ...``).
SUITE_ERROR, COMMAND_ERROR = "run_all: error: ", "cofee bench: error: "
_LINE_END = re.compile(r"(?<=\n)")


def register(sub):
    p = sub.add_parser(
        "bench", help="run the benchmarks (kit vs reference, same input, same run) into results/bench.json",
        description="Run the benchmark suite of bench/: training throughput (vs the authors' padded fp32 loop and "
                    "the matmul peak), k-means (vs scikit-learn), anchor extraction (vs bzcat and wikiextractor), "
                    "gazetteer matching and inference. Writes results/bench.json (tiny: results/smoke/bench.json) "
                    "and prints the summary table.")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only these benchmarks (repeat, or comma-separate): train, kmeans, anchors, match, predict, scale; "
                        "the others' entries in the results file are kept")
    p.add_argument("--size", choices=["tiny", "full"], default="full",
                   help="tiny: seconds, proves every benchmark works; full (default): the README's figures, "
                        "about 35 minutes on 2 CPU cores, 27 of them the scale benchmark")
    p.add_argument("--out", default=None, help="results file (default results/bench.json; --size tiny: results/smoke/bench.json)")
    p.add_argument("--work-dir", default=None,
                   help="where derived inputs are cached (span vectors, repeated dump, corpora; default: work/)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch, scikit-learn and the commands started (default: all cores)")
    p.add_argument("--show", action="store_true", help="print the table of the existing results file and stop")
    p.add_argument("--readme", action="store_true",
                   help="also write the table (and where each benchmark ran) into README.md, between its bench markers")
    p.set_defaults(func=run)


def bench_dir() -> Path:
    """The repository's ``bench/`` folder (beside ``cofee_lib/`` in the checkout)."""
    from ..errors import CofeeError
    from ..paths import repo_root

    try:
        return repo_root() / "bench"
    except CofeeError:
        return Path(__file__).resolve().parent.parent.parent / "bench"


def _path_arg(value: str, root: Path) -> str:
    """A path as the user gave it, made absolute when the suite runs from another folder than theirs."""
    if Path(value).is_absolute() or Path.cwd().resolve() == root.resolve():
        return value
    return os.path.abspath(value)


def suite_args(args, root: Path) -> list[str]:
    """The flags of ``bench/run_all.py`` for the parsed ``cofee bench`` arguments (paths as the suite will see them)."""
    argv = [item for name in (args.only or []) for item in ("--only", name)] + ["--size", args.size]
    if args.out:
        argv += ["--out", _path_arg(args.out, root)]
    if args.work_dir:
        argv += ["--work-dir", _path_arg(args.work_dir, root)]
    if args.threads is not None:
        argv += ["--threads", str(args.threads)]
    return argv + (["--show"] if args.show else []) + (["--readme"] if args.readme else [])


def relay(stream, out, rename: bool = False) -> None:
    """Copy a child's byte ``stream`` to the text stream ``out`` as it comes (UTF-8).

    With ``rename``, a line starting ``run_all: error: `` starts ``cofee bench: error: ``
    instead; the start of a line is held back only while it may still turn out to be that.
    """
    import codecs

    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
    head, at_start = "", True
    while True:
        chunk = stream.read1(1 << 16)
        pieces = []
        for piece in filter(None, _LINE_END.split(decode(chunk, final=not chunk))):
            if rename and (at_start or head):
                piece, head = head + piece, ""
                if len(piece) < len(SUITE_ERROR) and SUITE_ERROR.startswith(piece):
                    head, at_start = piece, False
                    continue
                if piece.startswith(SUITE_ERROR):
                    piece = COMMAND_ERROR + piece[len(SUITE_ERROR):]
            pieces.append(piece)
            at_start = piece.endswith("\n")
        if not chunk:
            pieces.append(head)
        out.write("".join(pieces))
        out.flush()
        if not chunk:
            return


def run(args):
    import subprocess

    from ..errors import CofeeError, check_output

    if args.out:
        check_output(args.out)
    folder = bench_dir()
    if not (folder / "run_all.py").is_file():
        raise CofeeError(f"{folder}: no benchmark suite here; `cofee bench` runs the bench/ folder of a checkout "
                         f"of the repository (install it with `pip install -e .`)")
    root = folder.parent
    child = subprocess.Popen([sys.executable, "-m", "bench.run_all", *suite_args(args, root)], cwd=root,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})  # passed on as printed
    errors = threading.Thread(target=relay, args=(child.stderr, sys.stderr, True), daemon=True)
    errors.start()
    try:
        relay(child.stdout, sys.stdout)
        errors.join()
        status = child.wait()
    except BaseException:  # interrupted (the child got the same signal), or our reader left (`| head`)
        if child.poll() is None:
            child.terminate()
        child.wait()
        raise
    return status if status >= 0 else 128 - status
