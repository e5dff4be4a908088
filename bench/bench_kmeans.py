"""Benchmark 2: the kit's torch k-means against ``sklearn.cluster.KMeans`` on real span vectors.

Input: ``n`` span vectors e_i (the FET representation of paper Sec. 4.3: the sum-pooled last-layer
states of the encoder over a span's sub-tokens, :meth:`Backbone.span_embeddings`), float32,
from the embedded MiniLM encoder (d = 384) over the CoNLL-2003 train sentences in file order:
for each sentence its gold entity spans, every word and every pair of adjacent words, until
``n`` spans are collected. They are cached in ``<work>/bench/`` (keyed by content).

Both sides get the same vectors, ``K``, number of restarts (``n_init``), ``max_iter`` = 300,
``tol`` = 1e-4 (relative, the same definition), k-means++ seeding, the same number of CPU
threads, and run one after the other. Reported: wall time of each and its ratio, inertia
(sum of squared distances to the assigned centres) of each and its ratio, and the cost of
one Lloyd iteration of each (:func:`per_iteration`), which tells a slower iteration from a
larger number of iterations. When torch sees a GPU, the kit's same function also runs there
on the same vectors.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

NAME = "kmeans"
SIZES = {
    "tiny": {"n": 2000, "k": 23, "n_init": 2, "model": "tiny", "seed": 0},
    "full": {"n": 100_000, "k": 23, "n_init": 3, "model": "embedded:minilm", "seed": 0},
}
RECIPE = "gold entity spans + every word + every adjacent word pair of CoNLL-2003 train, file order; v1"
#: inertia counts as "equal" within this relative margin (float32 sums over 100k x 384 values)
INERTIA_TOLERANCE = 1e-3


def _span_records(n: int) -> list[dict]:
    """CoNLL-2003 train sentences with candidate spans, in file order, until ``n`` spans are listed."""
    from cofee_lib.datasets import load_dataset

    out, total = [], 0
    for rec in load_dataset("conll2003", "train", progress=False):
        m = len(rec["tokens"])
        spans = {(s, e) for s, e, _ in rec["spans"]}
        spans |= {(i, i) for i in range(m)} | {(i, i + 1) for i in range(m - 1)}
        spans = sorted(spans)[: max(0, n - total)]
        if not spans:
            if total >= n:
                break
            continue
        out.append({"id": rec["id"], "tokens": rec["tokens"], "spans": [[s, e, "SPAN"] for s, e in spans]})
        total += len(spans)
        if total >= n:
            break
    if total < n:
        from cofee_lib.errors import CofeeError

        raise CofeeError(f"CoNLL-2003 train yields only {total} candidate spans; asked for {n}")
    return out


def span_vectors(n: int, model: str, work_dir, progress: bool = True):
    """``[n, d]`` float32 numpy array of real span vectors (see module doc), cached under ``work_dir``."""
    import numpy as np

    from cofee_lib import cache
    from cofee_lib.errors import atomic_open

    safe = model.replace(":", "-").replace("/", "_")
    path = common.work_subdir(work_dir) / f"span_vectors-{safe}-{n}.npy"

    def build(target: Path) -> dict:
        from cofee_lib.backbones import build_backbone

        records = _span_records(n)
        common.say(f"kmeans: encoding {sum(len(r['spans']) for r in records):,} spans of {len(records):,} "
                   f"sentences with {model} (cached afterwards in {target})")
        backbone = build_backbone("tagger", ["SPAN"], model=model, records=records, seed=0)
        vectors, _ = backbone.span_embeddings(records, batch_size=64)
        array = vectors[:n].numpy().astype(np.float32)
        with atomic_open(target, "wb") as handle:
            np.save(handle, array)
        return {"shape": list(array.shape)}

    key = {"n": n, "model": model, "recipe": RECIPE}
    if model.startswith("embedded:"):
        from cofee_lib.sources import source_info

        key["weights"] = [m["sha256"] for m in source_info(model.split(":", 1)[1])["members"]]
    cache.cached_file(path, key, build)
    return np.load(path)


def _sklearn(x, settings: dict, threads: int | None) -> dict:
    from sklearn.cluster import KMeans

    with common.thread_limit(threads):
        t0 = time.perf_counter()
        ref = KMeans(n_clusters=settings["k"], n_init=settings["n_init"], max_iter=300, tol=1e-4,
                     init="k-means++", algorithm="lloyd", random_state=settings["seed"]).fit(x)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "inertia": float(ref.inertia_), "n_iter": int(ref.n_iter_)}


def _kit(x, settings: dict, device) -> dict:
    import torch

    from cofee_lib.clustering import kmeans

    xt = torch.from_numpy(x).to(device)
    common.synchronize(device)
    t0 = time.perf_counter()
    res = kmeans(xt, settings["k"], n_init=settings["n_init"], max_iter=300, tol=1e-4, seed=settings["seed"])
    common.synchronize(device)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "inertia": float(res.inertia), "n_iter": int(res.n_iter), "device": str(device)}


def per_iteration(x, settings: dict, threads: int | None, iterations: int = 10, repeats: int = 3) -> dict:
    """Seconds per Lloyd iteration of each, from the same k-means++ seeding.

    Each side runs with ``max_iter=1`` and with ``max_iter=1+iterations`` (one restart,
    ``tol=0``), each timing the best of ``repeats``; the difference divided by the extra
    iterations actually run is the cost of one iteration without the seeding. Separates
    "slower per iteration" from "more iterations". Where the difference is not positive (the
    run converged before the extra iterations, or the iterations are below timer noise on
    small inputs) the cost is ``None``: not measurable here, rather than a negative time.
    """
    import torch
    from sklearn.cluster import KMeans

    from cofee_lib.clustering import kmeans

    xt = torch.from_numpy(x)

    def best(fit):
        times, n_iter = [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            n_iter = fit()
            times.append(time.perf_counter() - t0)
        return min(times), n_iter

    kit, ref = [], []
    for max_iter in (1, 1 + iterations):
        kit.append(best(lambda: kmeans(xt, settings["k"], n_init=1, max_iter=max_iter, tol=0.0,
                                       seed=settings["seed"]).n_iter))
        with common.thread_limit(threads):
            ref.append(best(lambda: int(KMeans(n_clusters=settings["k"], n_init=1, max_iter=max_iter, tol=0.0,
                                               algorithm="lloyd", random_state=settings["seed"]).fit(x).n_iter_)))

    def cost(t):
        extra, dt = t[1][1] - t[0][1], t[1][0] - t[0][0]
        return dt / extra if extra > 0 and dt > 0 else None

    return {"kit_seconds": cost(kit), "sklearn_seconds": cost(ref), "iterations": iterations,
            "kit_iterations_run": kit[1][1], "sklearn_iterations_run": ref[1][1],
            "kit_seeding_seconds": kit[0][0], "sklearn_seeding_seconds": ref[0][0]}


def run(size: str = "full", work_dir="work", progress: bool = True) -> dict:
    import torch

    settings = common.check_size(size, SIZES)
    x = span_vectors(settings["n"], settings["model"], work_dir, progress)
    threads = torch.get_num_threads()
    common.say(f"kmeans: {x.shape[0]:,} x {x.shape[1]} vectors, K={settings['k']}, n_init={settings['n_init']}, "
               f"{threads} CPU thread(s): scikit-learn, then the kit")
    ref = _sklearn(x, settings, threads)
    kit = _kit(x, settings, torch.device("cpu"))
    iteration = per_iteration(x, settings, threads)
    gpu = None
    if torch.cuda.is_available():
        common.say("kmeans: the kit's same function on the GPU")
        _kit(x[: min(len(x), 4096)], settings, torch.device("cuda"))  # warm-up: CUDA context and kernels
        gpu = _kit(x, settings, torch.device("cuda"))
    time_ratio = common.ratio(kit["seconds"], ref["seconds"])
    inertia_ratio = common.ratio(kit["inertia"], ref["inertia"])
    speed = common.ratio(ref["seconds"], kit["seconds"])
    summary = [
        common.row("2 k-means CPU", "speed: sklearn time / kit time (K=23, same restarts)", kit["seconds"],
                   ref["seconds"], "s", speed, ">= 1x (no slower)", speed >= 1.0),
        common.row("2 k-means CPU", "inertia: kit / sklearn (lower is better)", kit["inertia"], ref["inertia"], "",
                   inertia_ratio, "<= 1 (equal or lower)", inertia_ratio <= 1.0 + INERTIA_TOLERANCE,
                   note=f"'equal' within {INERTIA_TOLERANCE:.1%}"),
        common.row("2 k-means CPU", "one Lloyd iteration: sklearn time / kit time", iteration["kit_seconds"],
                   iteration["sklearn_seconds"], "s", common.ratio(iteration["sklearn_seconds"], iteration["kit_seconds"]),
                   "(explains the speed row)", None,
                   note=f"iterations of the winning restart: kit {kit['n_iter']}, sklearn {ref['n_iter']}"),
    ]
    if gpu is not None:
        summary.append(common.row("2 k-means GPU", "speed: sklearn (CPU) time / kit time on the GPU",
                                  gpu["seconds"], ref["seconds"], "s", common.ratio(ref["seconds"], gpu["seconds"]),
                                  "runs on the GPU", True))
    else:
        summary.append(common.row("2 k-means GPU", "the same code on a GPU", None, None, "", None,
                                  "runs on the GPU", None, note="no GPU on this machine: not measured"))
    return {"name": NAME, "size": size, "settings": settings, "vectors": {"shape": list(x.shape), "recipe": RECIPE},
            "threads": threads, "sklearn": ref, "kit_cpu": kit, "kit_gpu": gpu, "per_iteration": iteration,
            "time_ratio_kit_over_sklearn": time_ratio, "inertia_ratio_kit_over_sklearn": inertia_ratio,
            "summary": summary}


def main(argv=None) -> int:
    return common.script_main(run, SIZES, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
