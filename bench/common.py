"""What every benchmark shares: sizes, thread control, timed subprocesses, the matmul peak, rows.

Conventions
-----------
* Every benchmark module has ``NAME``, ``SIZES`` (``{"tiny": {...}, "full": {...}}``) and
  ``run(size, work_dir, progress) -> dict``. The dict holds ``settings`` (what was run),
  the measurements, and ``summary``: a list of :func:`row` dicts, one per figure that has a
  reference (kit, reference, ratio, target, met).
* A *ratio* is always "kit / reference" for a rate (higher is better for the kit) and is
  said so in the row's ``metric``; for times and inertia the row says which way is better.
* Absolute times vary between runs on shared machines; ratios taken in one run are the
  figures that count, which is why the kit and its reference always run back to back
  on the same input.
"""
from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = ("tiny", "full")
REPO = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    """Progress text for the person running the suite (stderr, so stdout stays machine-readable)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def check_size(size: str, sizes: dict) -> dict:
    if size not in sizes:
        from cofee_lib.errors import CofeeError

        raise CofeeError(f"unknown benchmark size {size!r}; expected one of {', '.join(sizes)}")
    return dict(sizes[size])


# --------------------------------------------------------------------------- threads

def set_threads(n: int | None) -> int:
    """Use ``n`` threads in torch (and, through :func:`thread_limit`, in scikit-learn); return the count used.

    Also sets ``OMP_NUM_THREADS`` in this process's environment, so that the commands the
    benchmarks start (``cofee predict``, ...) use the same number.
    """
    import torch

    if n:
        torch.set_num_threads(int(n))
        os.environ["OMP_NUM_THREADS"] = str(int(n))
    return torch.get_num_threads()


@contextlib.contextmanager
def thread_limit(n: int | None):
    """Limit OpenMP/BLAS pools (scikit-learn, numpy) to ``n`` threads inside the block (None: no limit)."""
    if not n:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(n)):
        yield


# --------------------------------------------------------------------------- subprocesses

# A small launcher process starts each measured command. ``ru_maxrss`` of a child counts the
# memory of its parent at the moment of the fork (Linux keeps the high-water mark across
# exec), so a command started straight from this (large) Python process would report at
# least this process's size. The launcher is a bare interpreter (``-I -S``, about 10 MiB).
_LAUNCHER = """
import json, os, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.posix_spawnp(cmd[0], cmd, os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
with open(out, "w") as handle:
    json.dump({"seconds": seconds, "max_rss_kb": usage.ru_maxrss, "exit": os.waitstatus_to_exitcode(status)}, handle)
"""


def run_command(cmd: list[str], env: dict | None = None, cwd=None, stdout=None) -> dict:
    """Run ``cmd``; return wall seconds, peak resident memory and exit status.

    ``max_rss_mb`` is ``ru_maxrss`` from ``wait4``: the largest resident set of the
    process *or of any of its children* (worker processes included), in MiB, not a sum.
    The command is started by a small launcher (see ``_LAUNCHER``), so the figure has a
    floor of about 10 MiB. Standard output goes to ``stdout`` (default: discarded); standard
    error is kept and its tail returned. A non-zero exit raises ``RuntimeError`` with that tail.
    """
    import json

    with tempfile.TemporaryFile("w+b") as err, tempfile.TemporaryDirectory(prefix="cofee-bench-run-") as tmp:
        report = Path(tmp) / "report.json"
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), *map(str, cmd)]
        proc = subprocess.run(launcher, stdout=stdout if stdout is not None else subprocess.DEVNULL,
                              stderr=err, env=env, cwd=cwd)
        err.seek(0)
        tail = err.read()[-2000:].decode("utf-8", "replace")
        result = json.loads(report.read_text()) if report.exists() else {"exit": proc.returncode}
    if proc.returncode != 0 or result.get("exit") != 0:
        raise RuntimeError(f"command failed (exit {result.get('exit')}): {' '.join(map(str, cmd))}\n{tail}")
    return {"seconds": result["seconds"], "max_rss_mb": result["max_rss_kb"] / 1024.0, "stderr_tail": tail[-300:]}


def python_command(*args) -> list[str]:
    """``[this python, *args]`` (the venv's interpreter, so its packages are the ones measured)."""
    return [sys.executable, *map(str, args)]


# --------------------------------------------------------------------------- the machine

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU, cores, threads torch uses, GPU (if any), library versions and the load average now."""
    import torch

    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    from cofee_lib.hardware import cpu_native_bf16

    info["cpu_bf16"] = cpu_native_bf16()[1]  # the flags the kit's precision choice reads
    try:
        import transformers
        import sklearn

        info["transformers"] = transformers.__version__
        info["scikit_learn"] = sklearn.__version__
    except ImportError:  # pragma: no cover - both are kit dependencies
        pass
    return info


def device_of_choice():
    """The device the kit would train on: the GPU when torch sees one, else the CPU."""
    import torch

    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def synchronize(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(dtype, n: int, repeats: int = 5, device="cpu") -> dict:
    """The machine's measured matrix-product rate: best of ``repeats`` products of two n x n matrices.

    FLOPs of one product = ``2 n^3``. Returns ``{"dtype", "n", "gflops", "seconds_best"}``.
    """
    import torch

    device = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    torch.matmul(a, b)
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return {"dtype": str(dtype).replace("torch.", ""), "n": n, "gflops": 2.0 * n ** 3 / best / 1e9,
            "seconds_best": best}


# --------------------------------------------------------------------------- results

def ratio(kit: float | None, reference: float | None) -> float | None:
    if kit is None or reference is None or reference == 0:
        return None
    return kit / reference


def row(benchmark: str, metric: str, kit, reference, unit: str, ratio_value, target: str,
        met: bool | None, note: str = "", share: bool = False) -> dict:
    """One line of the summary table. ``met`` is None when no target applies or it was not measured.

    ``share=True``: the ratio is a fraction of a ceiling, shown as a percentage.
    """
    return {"benchmark": benchmark, "metric": metric, "kit": kit, "reference": reference, "unit": unit,
            "ratio": ratio_value, "ratio_is_share": share, "target": target, "met": met, "note": note}


def fmt(value, digits: int = 3) -> str:
    """A number for a table: thousands separators for big values, ``digits`` significant digits otherwise."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and abs(value) >= 1000):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def markdown_table(rows: list[dict]) -> str:
    """The summary rows as the README's table: benchmark, metric, kit, reference, ratio, target, met?"""
    lines = ["| benchmark | metric | kit | reference | ratio | target | met? |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        unit = f" {r['unit']}" if r.get("unit") else ""
        met = "n/a" if r.get("met") is None else ("yes" if r["met"] else "**no**")
        if r.get("ratio") is None:
            ratio_text = "n/a"
        elif r.get("ratio_is_share"):
            ratio_text = f"{r['ratio']:.1%}"
        else:
            ratio_text = f"{r['ratio']:.2f}x"
        kit, ref = (fmt(v) + (unit if v is not None else "") for v in (r["kit"], r["reference"]))
        lines.append(f"| {r['benchmark']} | {r['metric']} | {kit} | {ref} | "
                     f"{ratio_text} | {r['target']} | {met} |")
    return "\n".join(lines)


def replace_block(path, begin: str, end: str, block: str) -> None:
    """Replace what lies between the lines ``begin`` and ``end`` of the text file ``path`` by ``block`` (atomically)."""
    import re

    from cofee_lib.errors import CofeeError, atomic_open

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise CofeeError(f"{path}: no {begin!r} ... {end!r} block to replace")
    with atomic_open(path) as handle:
        handle.write(pattern.sub(lambda _: f"{begin}\n{block}\n{end}", text))


def work_subdir(work_dir, *parts) -> Path:
    """``<work_dir>/bench/<parts>``, created."""
    path = Path(work_dir).joinpath("bench", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def script_main(run, sizes: dict, doc: str, argv=None) -> int:
    """The command line every ``bench_*.py`` script shares: ``--size``, ``--work-dir``, ``--threads``."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--size", choices=list(sizes), default="full")
    parser.add_argument("--work-dir", default=str(REPO / "work"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    print(json.dumps(run(args.size, args.work_dir), indent=2, default=str))
    return 0
