"""The paper's experiments as functions: Table 3 (weakly supervised) and Table 2 (supervised).

Each function trains what its rows need (models are selected on **dev**),
then reads the test split **once** to score the selected models, and writes
one results JSON. Rows share work where the paper's definitions allow it:
"-FET" is exactly the NEE stage of the full CoFEE run, so it is scored from
that run's ``nee/best`` rather than trained twice.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .errors import atomic_open

WEAK_ROWS = ("Gazetteer Matching", "MRC-NER", "CoFEE-MRC", "-FET", "-FET-ESI")


def _row(metrics: dict, dev_f1: float | None, **extra) -> dict:
    return {"P": metrics["precision"], "R": metrics["recall"], "F1": metrics["f1"], "dev_F1": dev_f1,
            "per_type": {t: {"P": m["precision"], "R": m["recall"], "F1": m["f1"], "n_gold": m["n_gold"]}
                         for t, m in metrics["per_type"].items()}, **extra}


def weak_supervision_table(target: str, out_dir, preset: str = "default", backbone: str = "mrc",
                           model: str | None = None, work_dir=None, seed: int | None = None,
                           train_overrides: dict | None = None, command: str | None = None, **overrides) -> dict:
    """Table 3 for one target dataset: Matching, MRC-NER on D_s, CoFEE, -FET, -FET-ESI.

    Writes ``<out_dir>/table3_<target>.json`` and returns its content.
    """
    from .datasets import load_dataset
    from .gazetteers import load_gazetteers
    from .matching import match_records
    from .metrics import evaluate_records
    from .pipeline import evaluate_once, pretrain

    out_dir = Path(out_dir)
    train_overrides = dict(train_overrides or {})
    if seed is not None:
        train_overrides["seed"] = seed
    started = time.perf_counter()
    common = dict(backbone=backbone, target=target, model=model, preset=preset, work_dir=work_dir,
                  train_overrides=train_overrides, **overrides)
    runs = {
        "cofee": pretrain("esi,nee,fet", out=out_dir / "cofee", **common),
        "nee_only": pretrain("nee", out=out_dir / "nee_only", **common),
        "ds_only": pretrain("nee", out=out_dir / "ds_only", self_picking=False, **common),
    }
    types = runs["cofee"]["types"]
    gaz_dir = runs["cofee"]["corpora"]["gazetteers"]

    # ---- the one read of the test split ----
    test = [dict(r, spans=[s for s in r["spans"] if s[2] in types]) for r in load_dataset(target, "test")]
    matched = match_records(test, load_gazetteers(gaz_dir))
    rows = {
        "Gazetteer Matching": _row(evaluate_records(test, matched), None, model=None),
        "MRC-NER": _row(evaluate_once(out_dir / "ds_only" / "nee" / "best", test),
                        runs["ds_only"]["stage_reports"]["nee"]["best_f1"], model=str(out_dir / "ds_only" / "nee" / "best")),
        "CoFEE-MRC" if backbone == "mrc" else "CoFEE-BERT": _row(
            evaluate_once(out_dir / "cofee" / "fet" / "best", test),
            runs["cofee"]["stage_reports"]["fet"]["best_f1"], model=str(out_dir / "cofee" / "fet" / "best")),
        "-FET": _row(evaluate_once(out_dir / "cofee" / "nee" / "best", test),
                     runs["cofee"]["stage_reports"]["nee"]["best_f1"], model=str(out_dir / "cofee" / "nee" / "best")),
        "-FET-ESI": _row(evaluate_once(out_dir / "nee_only" / "nee" / "best", test),
                         runs["nee_only"]["stage_reports"]["nee"]["best_f1"], model=str(out_dir / "nee_only" / "nee" / "best")),
    }
    import platform
    import os

    result = {"command": command, "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
              "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "table": 3, "setting": "weakly supervised (no human labels in training; dev selects models)",
              "target": target, "backbone": backbone, "preset": preset, "types": types,
              "test_sentences": len(test), "rows": rows,
              "runs": {name: {"dir": str(out_dir / name), "seconds": rep["seconds"],
                              "dev_f1": {s: r["best_f1"] for s, r in rep["stage_reports"].items()}}
                       for name, rep in runs.items()},
              "data": runs["cofee"]["data"], "settings": runs["cofee"]["settings"],
              "seconds": round(time.perf_counter() - started, 1)}
    with atomic_open(out_dir / f"table3_{target}.json") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    return result
