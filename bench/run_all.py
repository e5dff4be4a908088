"""Run the benchmark suite and write ``results/bench.json`` (``cofee bench``, ``make bench``).

    python bench/run_all.py [--only NAME[,NAME]] [--size tiny|full] [--out FILE] [--threads N]

Every benchmark runs the kit and its reference on the same input in the same process
(see each ``bench_*.py``), so the ratios hold even on a busy machine; absolute numbers do not.
Results of the benchmarks that ran replace their earlier entries in ``--out``; entries of the
others are kept (a ``--only`` run updates just its part). A benchmark that fails is recorded
with its error, the others still run, and the exit status is 1.

Default output: ``results/bench.json`` for ``--size full``, ``results/smoke/bench.json`` for
``--size tiny`` (not tracked), so a tiny run never overwrites the shipped figures.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

#: The benchmarks in the order they run and appear in the table (name -> module).
BENCHMARKS = {"train": "bench.bench_train", "kmeans": "bench.bench_kmeans", "anchors": "bench.bench_anchors",
              "match": "bench.bench_match", "predict": "bench.bench_predict", "scale": "bench.bench_scale"}
RESULTS_FORMAT = 1


def default_out(size: str) -> Path:
    return common.REPO / "results" / ("bench.json" if size == "full" else "smoke/bench.json")


def parse_only(values) -> list[str]:
    """``["train,kmeans", "match"]`` -> ``["train", "kmeans", "match"]`` in suite order; unknown names: error."""
    from cofee_lib.errors import CofeeError, atomic_open

    if not values:
        return list(BENCHMARKS)
    wanted = [v.strip() for value in values for v in str(value).split(",") if v.strip()]
    unknown = [w for w in wanted if w not in BENCHMARKS]
    if unknown:
        raise CofeeError(f"unknown benchmark(s) {', '.join(unknown)}; expected some of {', '.join(BENCHMARKS)}")
    return [name for name in BENCHMARKS if name in wanted]


def _read_previous(out: Path, size: str) -> dict:
    """Earlier results of the same size in ``out`` (to keep the benchmarks not run now), or ``{}``."""
    if not out.is_file():
        return {}
    try:
        data = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    if data.get("format") != RESULTS_FORMAT or data.get("size") != size:
        return {}
    return data.get("benchmarks", {})


def resummarize(results: dict) -> dict:
    """``results`` with each benchmark's summary recomputed from its stored measurements where its module
    has ``summary_from`` (so a target changed in the code applies to what was measured), then the suite's."""
    benchmarks = dict(results.get("benchmarks", {}))
    for name, result in benchmarks.items():
        module = importlib.import_module(BENCHMARKS[name]) if name in BENCHMARKS else None
        if module is not None and hasattr(module, "summary_from") and "error" not in result:
            benchmarks[name] = {**result, "summary": module.summary_from(result)}
    return {**results, "benchmarks": benchmarks, "summary": summary_rows(benchmarks)}


def summary_rows(benchmarks: dict) -> list[dict]:
    rows = []
    for name in BENCHMARKS:
        if name in benchmarks:
            rows.extend(benchmarks[name].get("summary", []))
    return rows


def run_suite(only=None, size: str = "full", out=None, work_dir=None, threads: int | None = None,
              progress: bool = True) -> tuple[dict, list[str]]:
    """Run the chosen benchmarks, write ``out`` (atomically); return (results, names that failed)."""
    from cofee_lib import __version__
    from cofee_lib.errors import CofeeError, atomic_open

    if size not in common.SIZES:
        raise CofeeError(f"unknown size {size!r}; expected one of {', '.join(common.SIZES)}")
    names = parse_only(only)
    out = Path(out) if out else default_out(size)
    work_dir = Path(work_dir) if work_dir else common.REPO / "work"
    used_threads = common.set_threads(threads)
    benchmarks = _read_previous(out, size)
    failed = []
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        common.say(f"=== {name} ({size}) ===")
        machine = common.machine_info()
        t0 = time.perf_counter()
        try:
            result = module.run(size=size, work_dir=work_dir, progress=progress)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # recorded; the other benchmarks still run
            failed.append(name)
            result = {"name": name, "size": size, "error": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc(limit=8), "summary": []}
            common.say(f"{name} FAILED: {type(exc).__name__}: {exc}")
        result["wall_seconds"] = time.perf_counter() - t0
        result["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        result["machine"] = machine
        result["machine"]["load_average_end"] = common.machine_info()["load_average"]
        benchmarks[name] = result
    results = {"format": RESULTS_FORMAT, "kit_version": __version__, "size": size, "threads": used_threads,
               "note": "ratios compare the kit and a reference run back to back on the same input in the same "
                       "run; absolute rates vary with the machine and its load",
               "machine": common.machine_info(), "benchmarks": benchmarks, "summary": summary_rows(benchmarks)}
    with atomic_open(out) as handle:
        json.dump(results, handle, indent=2, default=str)
        handle.write("\n")
    common.say(f"wrote {out}")
    return results, failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run the CoFEE kit's benchmarks (kit vs peers) into results/bench.json")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help=f"run only these benchmarks (repeat or comma-separate): {', '.join(BENCHMARKS)}")
    parser.add_argument("--size", choices=list(common.SIZES), default="full",
                        help="tiny: seconds, proves every benchmark works; full: the figures of the README")
    parser.add_argument("--out", default=None, help="results file (default results/bench.json; tiny: results/smoke/)")
    parser.add_argument("--work-dir", default=None, help="cache of derived inputs (default: the repository's work/)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch and scikit-learn (default: all)")
    parser.add_argument("--show", action="store_true", help="only print the table of the existing results file")
    parser.add_argument("--readme", action="store_true",
                        help="also write the table into README.md, between its bench markers")
    args = parser.parse_args(argv)
    return run_from_args(args)


README_BEGIN = "<!-- bench:begin (generated by `cofee bench --readme` from results/bench.json; do not edit by hand) -->"
README_END = "<!-- bench:end -->"


def readme_block(results: dict) -> str:
    """The README's benchmark table: the summary rows, then where and when each benchmark ran."""
    lines = [common.markdown_table(results.get("summary", [])), ""]
    for name in BENCHMARKS:
        entry = results.get("benchmarks", {}).get(name)
        if not entry:
            continue
        m = entry.get("machine", {})
        load = m.get("load_average_end") or m.get("load_average")
        where = m.get("cpu_bf16") or m.get("cpu", "?")
        where = f"{where}, {m.get('cores', '?')} cores, {m.get('torch_threads', '?')} torch thread(s)"
        if m.get("gpu"):
            where += f", {m['gpu']}"
        load_text = f", load average {load[0]:.1f} at its end" if load else ""
        lines.append(f"- {name}: {str(entry.get('finished', '?'))[:10]}, {where}{load_text}, "
                     f"{entry.get('wall_seconds', 0) / 60:.1f} min")
    return "\n".join(lines)


def _write_readme(args, results: dict) -> None:
    if getattr(args, "readme", False):
        common.replace_block(common.REPO / "README.md", README_BEGIN, README_END, readme_block(results))
        common.say("wrote the table into README.md")


def run_from_args(args) -> int:
    """What ``main`` and ``cofee bench`` do with parsed arguments."""
    from cofee_lib.errors import CofeeError, atomic_open

    if args.threads is not None and args.threads < 1:
        raise CofeeError("--threads must be at least 1")
    if args.show:
        out = Path(args.out) if args.out else default_out(args.size)
        if not out.is_file():
            raise CofeeError(f"{out}: no results yet (run `cofee bench` first)")
        try:
            results = json.loads(out.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CofeeError(f"{out}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        fresh = resummarize(results)
        if fresh["summary"] != results.get("summary"):   # a target changed in the code since the run
            with atomic_open(out) as fh:
                json.dump(fresh, fh, indent=2, default=str)
                fh.write("\n")
            common.say(f"{out}: summary rows recomputed from the stored measurements with the current targets")
        results = fresh
        print(common.markdown_table(results.get("summary", [])))
        _write_readme(args, results)
        return 0
    results, failed = run_suite(args.only, args.size, args.out, args.work_dir, args.threads)
    print(common.markdown_table(results["summary"]))
    _write_readme(args, results)
    if failed:
        for name in failed:
            print(f"benchmark {name} failed: {results['benchmarks'][name]['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from cofee_lib.errors import CofeeError, atomic_open

    try:
        sys.exit(main())
    except CofeeError as exc:
        print(f"run_all: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_status)
