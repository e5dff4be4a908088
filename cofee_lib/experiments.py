"""The paper's experiments as functions: Table 3, Table 2, and the sweeps of Figures 2 and 3.

Every function trains what it needs through :func:`cofee_lib.pipeline.pretrain`
or :func:`supervised_run`, both of which reuse finished runs by content
(:mod:`cofee_lib.runs`): the CoFEE run of notebooks 03-05 *is* Table 3's
CoFEE-MRC row and the 100% point of every sweep, so the batch trains it once.

Models are selected on **dev**. The table functions read the test split
**once**, at the end, to score the selected models; the sweeps (Figures 2 and
3) report dev F1 only, as the paper does (Sec. 6). Rows share work where the
paper's definitions allow: "-FET" is exactly the NEE stage of the full CoFEE
run, so it is scored from that run's ``nee/best`` rather than trained twice.
Runs repeated over seeds give mean and sample standard deviation.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from .errors import CofeeError, atomic_open
from .hardware import choose_precision
from .records import keep_types
from .presets import stage_settings, train_config, train_settings

WEAK_ROWS = ("Gazetteer Matching", "MRC-NER", "CoFEE-MRC", "-FET", "-FET-ESI")
SUPERVISED_ROWS = ("BiLSTM-CRF", "BERT", "MRC-NER", "CoFEE-BERT", "CoFEE-MRC")
# what each supervised row trains: backbone kind, and whether it starts from a CoFEE pre-training run
SUPERVISED_KIND = {"BiLSTM-CRF": ("bilstm-crf", False), "BERT": ("tagger", False), "MRC-NER": ("mrc", False),
                   "CoFEE-BERT": ("tagger", True), "CoFEE-MRC": ("mrc", True)}


def _say(msg: str) -> None:
    print(f"[cofee] {msg}", file=sys.stderr, flush=True)


def machine() -> str:
    """One line naming the machine a result was produced on."""
    try:
        import torch

        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:  # pragma: no cover - torch is a dependency
        device = "unknown device"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {device}, {platform.system()}"


def precision_used(preset: str) -> dict:
    """The precision the preset's training runs chose on this machine, and the hardware facts behind it."""
    from .distributed import context  # imports torch

    return choose_precision(train_settings(preset)["precision"], context().device).to_dict()


def mean_std(values) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0.0 for one value; None for none)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _scores(metrics: dict) -> dict:
    return {"P": metrics["precision"], "R": metrics["recall"], "F1": metrics["f1"],
            "per_type": {t: {"P": m["precision"], "R": m["recall"], "F1": m["f1"], "n_gold": m["n_gold"]}
                         for t, m in metrics["per_type"].items()}}


def aggregate(per_seed: list[dict]) -> dict:
    """One table row from per-seed rows: P/R/F1 and dev F1 as means, with ``*_std`` and the seeds."""
    row = {}
    for key in ("P", "R", "F1", "dev_F1"):
        mean, std = mean_std([r.get(key) for r in per_seed])
        row[key], row[f"{key}_std"] = mean, std
    row["n_seeds"] = len(per_seed)
    row["seeds"] = [r.get("seed") for r in per_seed]
    row["per_type"] = per_seed[0].get("per_type") if len(per_seed) == 1 else {
        t: {k: mean_std([r["per_type"][t][k] for r in per_seed if t in r.get("per_type", {})])[0]
            for k in ("P", "R", "F1")}
        for t in per_seed[0].get("per_type", {})}
    row["per_seed"] = [{k: r.get(k) for k in ("seed", "P", "R", "F1", "dev_F1", "model")} for r in per_seed]
    return row


def _write(path: Path, result: dict) -> None:
    with atomic_open(path) as fh:
        json.dump(result, fh, indent=2, default=str)
        fh.write("\n")


def _file_name(target: str) -> str:
    from .datasets import safe_name

    return safe_name(target)


def _test_records(target: str, types, preset: str) -> list[dict]:
    """The test split (types the models know), read once; capped only where the preset says (smoke)."""
    from .datasets import load_dataset
    from .pipeline import subsample

    test = subsample(load_dataset(target, "test"), stage_settings(preset).max_test_sentences, 0)
    return keep_types(test, types)


def write_counts(results_dir: Path, name: str, payload: dict) -> Path:
    """``<results_dir>/counts/<name>.json``: the per-sentence counts behind a results file (for the claims)."""
    path = Path(results_dir) / "counts" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:   # compact: one list of [tp, n_pred, n_gold] per model and seed
        json.dump(payload, fh, separators=(",", ":"))
        fh.write("\n")
    return path


def _score_trained(trained: dict, test: list[dict]) -> tuple[dict, dict]:
    """Rows (mean over seeds) and per-sentence counts of trained models: ``trained[row] = [(seed, best_dir, report)]``."""
    from .pipeline import evaluate_once

    rows, counts = {}, {}
    for name, items in trained.items():
        per_seed = []
        for seed, best, report in items:
            metrics = evaluate_once(best, test, per_sentence=True)
            counts.setdefault(name, {})[str(seed)] = metrics["sentence_counts"]
            per_seed.append({"seed": seed, "model": str(best), "dev_F1": report["best_f1"], **_scores(metrics),
                             "steps": report.get("steps"), "epochs_run": report.get("epochs_run")})
        rows[name] = aggregate(per_seed)
    return rows, counts


def _reference_rows(target: str, test: list[dict], rows: dict, counts: dict) -> list[str]:
    """The off-the-shelf spaCy row beside the kit's (English targets, spaCy installed): adds to ``rows``/``counts``."""
    from .reference import ROW_NAME, spacy_row

    try:
        scored = spacy_row(target, test)
    except CofeeError as exc:   # spaCy not installed (the 'spacy' extra), or a non-English target
        _say(f"reference row left out: {exc}")
        return []
    rows[ROW_NAME] = {**_scores(scored), "dev_F1": None, "n_seeds": 0, "seeds": [], "model": scored["model"],
                      "label_map": scored["label_map"]}
    counts[ROW_NAME] = {"-": scored["sentence_counts"]}
    return [ROW_NAME]


# --------------------------------------------------------------------------- Table 3

# Table 3's rows beyond the paper (issue 13): the domain stage on the target's own text. Each maps to
# (the run's name, its stages, its stage-setting overrides); the row is that run's domain stage.
IN_DOMAIN_ROWS = {
    "MRC-NER on in-domain distant labels": ("domain_only", "domain", {"domain_no_self_picking": True}),
    "CoFEE-MRC + in-domain NEE": ("cofee_domain", "esi,nee,fet,domain", {}),
    "CoFEE-MRC + in-domain NEE, no self-picking": ("cofee_domain_nopick", "esi,nee,fet,domain",
                                                   {"domain_no_self_picking": True}),
}


def in_domain_settings(target: str, spec: dict | None) -> dict:
    """The domain stage's settings for ``target`` from a preset's ``table3_in_domain`` (``text`` may hold ``{target}``)."""
    spec = dict(spec or {})
    text = spec.pop("text", "dataset:{target}")
    return {"domain_text": text.replace("{target}", target), **spec}


def _kept_table(path: Path, target: str, preset: str) -> tuple[dict, dict]:
    """The results file and counts that ``rows="in-domain"`` merges into, checked before any training."""
    counts_path = path.parent / "counts" / path.name
    for needed in (path, counts_path):
        if not needed.is_file():
            raise CofeeError(f"{needed}: no Table 3 results to merge the in-domain rows into; "
                             "run the whole table first (rows='all')")
    try:
        kept, counts = (json.loads(f.read_text(encoding="utf-8")) for f in (path, counts_path))
    except json.JSONDecodeError as exc:
        raise CofeeError(f"{path}: not a results file ({exc})") from None
    if kept.get("table") != 3 or kept.get("target") != target or kept.get("preset") != preset:
        raise CofeeError(f"{path}: holds table {kept.get('table')} for {kept.get('target')!r} at preset "
                         f"{kept.get('preset')!r}, not Table 3 for {target!r} at preset {preset!r}")
    return kept, counts


def _merged_result(kept: dict, kept_counts: dict, new_rows: dict, new_counts: dict, test: list[dict],
                   types, stamp: dict, seeds, seconds: float) -> tuple[dict, dict]:
    """``kept`` with the in-domain rows replaced by ``new_rows``, each stamped with the run it came from."""
    if kept["test_sentences"] != len(test) or list(kept["types"]) != list(types):
        raise CofeeError(f"table3_{_file_name(kept['target'])}.json was scored on {kept['test_sentences']} test "
                         f"sentences of types {kept['types']}, these rows on {len(test)} of types {list(types)}: "
                         "not the same table")
    rows = {name: row for name, row in kept["rows"].items() if name not in IN_DOMAIN_ROWS}
    reference = [name for name in rows if name not in CORE_ROWS]
    rows = {name: rows[name] for name in [n for n in rows if n in CORE_ROWS]}
    rows.update({name: {**row, **stamp, "beyond_paper": True} for name, row in new_rows.items()})
    rows.update({name: kept["rows"][name] for name in reference})
    counts = {**kept_counts, "rows": {**{k: v for k, v in kept_counts["rows"].items() if k not in IN_DOMAIN_ROWS},
                                      **new_counts}}
    merged = [m for m in kept.get("merged", []) if set(m["rows"]) - set(new_rows)]
    merged.append({**stamp, "rows": list(new_rows), "seeds": list(seeds), "seconds": seconds})
    return {**kept, "rows": rows, "merged": merged}, counts


CORE_ROWS = ("Gazetteer Matching", "MRC-NER", "CoFEE-MRC", "CoFEE-BERT", "-FET", "-FET-ESI")


def _table3_runs(base: Path, whole: bool, target: str, in_domain: dict | None, common: dict) -> dict:
    """One seed's pre-training runs for Table 3 (reused by content): CoFEE always, the ablations when ``whole``."""
    from .pipeline import pretrain

    runs = {"cofee": pretrain("esi,nee,fet", out=base / "cofee", **common)}
    if whole:
        runs["nee_only"] = pretrain("nee", out=base / "nee_only", **common)
        runs["ds_only"] = pretrain("nee", out=base / "ds_only", self_picking=False, **common)
    if in_domain is not None:
        domain = in_domain_settings(target, in_domain)
        for run_name, stages, extra in IN_DOMAIN_ROWS.values():
            runs[run_name] = pretrain(stages, out=base / run_name, **{**common, **domain, **extra})
    return runs


def _add_unseeded_rows(target: str, test: list[dict], scored: dict, counts: dict, gazetteer_dir, cofee_row: str,
                       in_domain: bool) -> None:
    """Matching and the reference row beside the trained rows; ``scored`` is put in the table's row order."""
    from .gazetteers import load_gazetteers
    from .matching import match_records
    from .metrics import evaluate_records

    metrics = evaluate_records(test, match_records(test, load_gazetteers(gazetteer_dir)), per_sentence=True)
    scored["Gazetteer Matching"] = {**_scores(metrics), "dev_F1": None, "n_seeds": 0, "seeds": [], "model": None}
    counts["Gazetteer Matching"] = {"-": metrics["sentence_counts"]}
    reference = _reference_rows(target, test, scored, counts)
    beyond = list(IN_DOMAIN_ROWS) if in_domain else []
    for row in beyond:
        scored[row]["beyond_paper"] = True
    order = ("Gazetteer Matching", "MRC-NER", cofee_row, "-FET", "-FET-ESI", *beyond, *reference)
    ordered = {row: scored.pop(row) for row in order}
    scored.update(ordered)


def weak_supervision_table(target: str, out_dir, preset: str = "default", backbone: str = "mrc",
                           model: str | None = None, work_dir=None, seed: int | None = None, seeds=None,
                           train_overrides: dict | None = None, command: str | None = None,
                           results_dir=None, in_domain: dict | None = None, rows: str = "all",
                           **overrides) -> dict:
    """Table 3 for one target dataset: Matching, MRC-NER on D_s, CoFEE, -FET, -FET-ESI.

    ``seeds`` (or one ``seed``; default: the preset's) repeats the trained
    rows; Matching has no seed. ``in_domain`` (a preset's ``table3_in_domain``:
    ``text``, e.g. ``"dataset:{target}"``, and domain-stage settings) adds the
    rows of :data:`IN_DOMAIN_ROWS`, beyond the paper. ``rows="in-domain"``
    trains and scores only those rows and merges them into the existing
    results file, whose other rows are kept as they were; each merged row
    records the precision, machine, date and command it came from. Writes
    ``<results_dir or out_dir>/table3_<target>.json``.
    """
    out_dir = Path(out_dir)
    if rows not in ("all", "in-domain"):
        raise CofeeError(f"rows must be 'all' or 'in-domain', not {rows!r}")
    if in_domain is not None and backbone != "mrc":
        raise CofeeError("the in-domain rows of Table 3 are MRC rows (IN_DOMAIN_ROWS); run them with --backbone mrc")
    if rows == "in-domain" and in_domain is None:
        raise CofeeError("rows='in-domain' needs the in-domain settings (the preset's table3_in_domain)")
    name = f"table3_{_file_name(target)}"
    results_path = Path(results_dir or out_dir) / f"{name}.json"
    kept, kept_counts = _kept_table(results_path, target, preset) if rows == "in-domain" else (None, None)
    if seed is None:
        seed = (train_overrides or {}).get("seed")
    seeds = list(seeds) if seeds else [seed if seed is not None else train_config(preset).seed]
    started = time.perf_counter()
    cofee_row = "CoFEE-MRC" if backbone == "mrc" else "CoFEE-BERT"
    runs_by_seed = {s: _table3_runs(out_dir / f"seed{s}", kept is None, target, in_domain,
                                    dict(backbone=backbone, target=target, model=model, preset=preset,
                                         work_dir=work_dir, train_overrides={**(train_overrides or {}), "seed": s},
                                         **overrides))
                    for s in seeds}
    first = runs_by_seed[seeds[0]]
    types = first["cofee"]["types"]

    # ---- the one read of the test split ----
    test = _test_records(target, types, preset)
    which = {} if kept is not None else {"MRC-NER": ("ds_only", "nee"), cofee_row: ("cofee", "fet"),
                                         "-FET": ("cofee", "nee"), "-FET-ESI": ("nee_only", "nee")}
    if in_domain is not None:
        which.update({row: (run_name, "domain") for row, (run_name, _, _) in IN_DOMAIN_ROWS.items()})
    trained = {row: [(s, out_dir / f"seed{s}" / run / stage / "best", runs[run]["stage_reports"][stage])
                     for s, runs in runs_by_seed.items()] for row, (run, stage) in which.items()}
    scored, counts = _score_trained(trained, test)
    stamp = {"command": command, "machine": machine(), "precision": precision_used(preset),
             "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    runs = {f"seed{s}/{run}": {"seconds": rep["seconds"],
                               "reused": {st: r.get("reused") for st, r in rep["stage_reports"].items()},
                               "dev_f1": {st: r["best_f1"] for st, r in rep["stage_reports"].items()}}
            for s, by_run in runs_by_seed.items() for run, rep in by_run.items()}
    domain_part = ({"in_domain": {"settings": in_domain_settings(target, in_domain),
                                  "corpus": first["cofee_domain"]["data"]["domain"]}} if in_domain is not None else {})
    if kept is not None:
        result, counts_payload = _merged_result(kept, kept_counts, scored, counts, test, types, stamp,
                                                seeds=seeds, seconds=round(time.perf_counter() - started, 1))
        result.update({"runs": {**kept.get("runs", {}), **runs}, **domain_part})
    else:
        _add_unseeded_rows(target, test, scored, counts, first["cofee"]["corpora"]["gazetteers"],
                           cofee_row, in_domain is not None)
        result = {**stamp, "table": 3, "setting": "weakly supervised (no human labels in training; dev selects models)",
                  "target": target, "backbone": backbone, "preset": preset, "types": types, "seeds": seeds,
                  "test_sentences": len(test), "rows": scored,
                  "runs": runs, "data": first["cofee"]["data"], "settings": first["cofee"]["settings"],
                  "model": first["cofee"]["model"], **domain_part, "seconds": round(time.perf_counter() - started, 1)}
        counts_payload = {"split": "test", "target": target, "sentences": len(test), "rows": counts}
    write_counts(Path(results_dir or out_dir), name, counts_payload)
    _write(results_path, result)
    return result


# --------------------------------------------------------------------------- supervised runs

def supervised_run(name: str, kind: str, init: str, types, train_records, dev_records, config, work_dir, out,
                   queries: dict | None = None, max_len: int = 128, use_cache: bool = True) -> dict:
    """Train one supervised model (reused when an identical run finished); return its report.

    ``init`` is an encoder (``embedded:minilm``, a directory, ``tiny``; ignored
    by the BiLSTM-CRF) or a kit checkpoint (a CoFEE pre-trained model: its
    encoder is kept, heads for ``types`` are new unless they match).
    """
    from .engine import seed_everything, train
    from .pipeline import build_model
    from .runs import run_cached
    from .stages import keep_types, run_summary, write_report

    seed_everything(config.seed)
    model = build_model(kind, list(types), init, queries if kind == "mrc" else None, max_len, train_records, config.seed)
    dev = keep_types(dev_records, types)

    def execute(folder: Path, resume: bool) -> dict:
        result = train(model, train_records, dev, config, folder, resume=resume)
        report = {"stage": "finetune", "row": name, "kind": kind, "init": str(init), "types": list(types),
                  "train_sentences": len(train_records), "dev_sentences": len(dev), **run_summary(result)}
        write_report(folder / "report.json", report)
        return report

    return run_cached(f"finetune-{kind}", model, train_records, dev, config, work_dir, out, execute,
                      settings={"kind": kind}, use_cache=use_cache)


def supervised_data(target: str, max_train_sentences: int | None, max_dev_sentences: int | None,
                    fraction: float = 1.0, types=None, seed: int = 0) -> tuple[list[dict], list[dict], list[str]]:
    """The labelled train (capped, then a nested ``fraction``) and dev records of ``target``, and its types."""
    from .datasets import dataset_types, load_dataset
    from .pipeline import fraction_subset, subsample

    types = list(types or dataset_types(target))
    train = keep_types(load_dataset(target, "train"), types)
    train = subsample(train, max_train_sentences, seed)
    if fraction < 1.0:
        train = fraction_subset(train, fraction, seed)
    dev = subsample(load_dataset(target, "dev"), max_dev_sentences, seed)
    return train, dev, types


def supervised_config(preset: str, row: str, seed: int, settings: dict):
    """The training config of a Table 2 row: the preset's finetune settings, the BiLSTM-CRF's own."""
    from .presets import train_config

    over = dict(settings.get("train") or {})
    if row == "BiLSTM-CRF":
        over.update(settings.get("bilstm") or {})
    return train_config(preset, "finetune", **{**over, "seed": seed})


def supervised_table(target: str, out_dir, preset: str = "default", model: str | None = None, work_dir=None,
                     rows=SUPERVISED_ROWS, seeds: dict | None = None, max_train_sentences: int | None = None,
                     max_dev_sentences: int | None = None, settings: dict | None = None, results_dir=None,
                     command: str | None = None, **pretrain_overrides) -> dict:
    """Table 2 for one target: each row fine-tuned on the labelled train split, selected on dev, tested once.

    ``seeds`` maps a row name (or ``"default"``) to its seeds. CoFEE rows start
    from a CoFEE pre-training run (ESI, NEE, FET) of their backbone with the
    preset's seed; the fine-tuning seeds vary. Writes ``table2_<target>.json``.
    """
    from .pipeline import pretrain
    from .presets import get_preset
    from .queries import get_queries

    table = get_preset(preset)
    settings = dict(settings or {})
    model = model or table["model"]
    max_len = table["max_len"]
    work_dir = Path(work_dir) if work_dir else None
    out_dir = Path(out_dir)
    seeds = dict(seeds or {})
    default_seeds = seeds.get("default") or [train_config(preset).seed]
    if max_dev_sentences is None:
        max_dev_sentences = stage_settings(preset).max_dev_sentences
    started = time.perf_counter()
    pretrained = {}
    for row in rows:
        kind, needs_pretrain = SUPERVISED_KIND[row]
        if needs_pretrain and kind not in pretrained:
            rep = pretrain("esi,nee,fet", kind, target, out_dir / f"pretrain-{kind}", model=model, preset=preset,
                           work_dir=work_dir, **pretrain_overrides)
            pretrained[kind] = rep
    types = (next(iter(pretrained.values()))["types"] if pretrained else None)
    train, dev, types = supervised_data(target, max_train_sentences, max_dev_sentences, types=types,
                                        seed=train_config(preset).seed)
    queries = {t: q for t, q in get_queries(target).items() if t in types}
    trained = {row: [] for row in rows}
    for row in rows:
        kind, needs_pretrain = SUPERVISED_KIND[row]
        init = pretrained[kind]["final_model"] if needs_pretrain else ("none" if kind == "bilstm-crf" else model)
        for s in seeds.get(row) or default_seeds:
            _say(f"Table 2, {row} (seed {s}): {len(train)} train / {len(dev)} dev sentences")
            cfg = supervised_config(preset, row, s, settings)
            rep = supervised_run(row, kind, init, types, train, dev, cfg, work_dir or out_dir / "work",
                                 out_dir / f"{row}-seed{s}", queries=queries, max_len=max_len)
            trained[row].append((s, out_dir / f"{row}-seed{s}" / "best", rep))

    # ---- the one read of the test split ----
    test = _test_records(target, types, preset)
    out_rows, counts = _score_trained(trained, test)
    for row, items in trained.items():
        for key in ("reused", "best_epoch", "epochs_run", "steps", "stopped_early", "train_seconds"):
            out_rows[row][key] = [rep.get(key) for _, _, rep in items]
    _reference_rows(target, test, out_rows, counts)
    result = {"command": command, "machine": machine(), "precision": precision_used(preset),
              "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
              "table": 2, "setting": "supervised (fine-tuned on the labelled train split; dev selects models)",
              "target": target, "preset": preset, "model": model, "types": types,
              "train_sentences": len(train), "dev_sentences": len(dev), "test_sentences": len(test),
              "rows": out_rows, "settings": settings,
              "pretrain": {kind: {"dir": str(out_dir / f"pretrain-{kind}"), "final_dev_f1": rep["final_dev_f1"],
                                  "seconds": rep["seconds"]} for kind, rep in pretrained.items()},
              "seconds": round(time.perf_counter() - started, 1)}
    name = f"table2_{_file_name(target)}"
    write_counts(Path(results_dir or out_dir), name, {"split": "test", "target": target, "sentences": len(test),
                                                      "rows": counts})
    _write(Path(results_dir or out_dir) / f"{name}.json", result)
    return result


# --------------------------------------------------------------------------- Figures 2 and 3 (dev F1)

def _seeds(preset: str, seeds) -> list[int]:
    return list(seeds) if seeds else [train_config(preset).seed]


def _pretrain_point(out, target, preset, work_dir, model, seed, **overrides) -> dict:
    """One sweep point for one seed: a CoFEE-MRC run (reused by content), its dev F1 per stage and the steps each took."""
    from .pipeline import pretrain

    over = dict(overrides)
    train_overrides = {**(over.pop("train_overrides", None) or {}), "seed": seed}
    rep = pretrain("esi,nee,fet", "mrc", target, Path(out) / f"seed{seed}", model=model, preset=preset,
                   work_dir=work_dir, train_overrides=train_overrides, **over)
    reports = rep["stage_reports"]
    return {"seed": seed, "dev_F1": reports["fet"]["best_f1"], "dev_F1_nee": reports["nee"]["best_f1"],
            "dev_F1_esi": reports["esi"]["best_f1"], "d_g_sentences": rep["data"]["d_g"]["sentences"],
            "d_s_sentences": rep["data"]["d_s"]["sentences"], "d_s_entities": rep["data"]["d_s"]["entities"],
            "ds_best_entities": reports["nee"].get("best_label_set", {}).get("entities"),
            "steps": {s: r.get("steps") for s, r in reports.items()},
            "epochs_run": {s: r.get("epochs_run") for s, r in reports.items()},
            "reused": {s: r.get("reused") for s, r in reports.items()}, "seconds": rep["seconds"],
            "attempts": {s: len(r.get("attempts") or []) + 1 for s, r in reports.items()},
            "precision": {s: _precision_of(r) for s, r in reports.items()},
            "gazetteers": _under_work_dir(rep["corpora"]["gazetteers"], work_dir, preset),
            "dev_sentence_counts": reports["fet"].get("dev_sentence_counts")}


def _precision_of(report: dict) -> str | None:
    """The precision a run trained in (``fp32`` / ``bf16``), as its report recorded it (a reused run: when it ran)."""
    precision = report.get("precision")
    return precision.get("precision") if isinstance(precision, dict) else precision


def _work_dir(work_dir, preset: str) -> Path:
    from .paths import work_dir as default_work_dir

    return Path(work_dir) if work_dir else default_work_dir(preset)


def _under_work_dir(path, work_dir, preset: str) -> str:
    """``path`` relative to the run's work dir where it lies inside it (results files name no machine's paths)."""
    try:
        return Path(path).resolve().relative_to(_work_dir(work_dir, preset).resolve()).as_posix()
    except ValueError:
        return str(path)


def pretraining_size_sweep(target: str, fractions, out_dir, preset="default", work_dir=None, model=None, seeds=None,
                           **kw):
    """Figure 2a: CoFEE-MRC dev F1 against the share of the pre-training corpus (D_g and its typed part D_s).

    One entry per (share, seed); ``seeds`` default to the preset's one seed.
    """
    return [{"fraction": f, **_pretrain_point(Path(out_dir) / f"pretrain-{f:g}", target, preset, work_dir, model, s,
                                              pretrain_fraction=f, **kw)}
            for f in fractions for s in _seeds(preset, seeds)]


def picking_rate_sweep(target: str, deltas, out_dir, preset="default", work_dir=None, model=None, seeds=None, **kw):
    """Figure 2c: CoFEE-MRC dev F1 (and the NEE stage's) against the picking rate delta, per seed."""
    return [{"delta": d, **_pretrain_point(Path(out_dir) / f"delta-{d:g}", target, preset, work_dir, model, s,
                                           delta=d, **kw)}
            for d in deltas for s in _seeds(preset, seeds)]


def cluster_count_sweep(target: str, ks, out_dir, preset="default", work_dir=None, model=None, seeds=None, **kw):
    """Figure 2d: CoFEE-MRC dev F1 against the number of clusters K (ESI and NEE are shared), per seed."""
    return [{"k": k, **_pretrain_point(Path(out_dir) / f"k-{k}", target, preset, work_dir, model, s, k=k, **kw)}
            for k in ks for s in _seeds(preset, seeds)]


def finetuning_size_sweep(target: str, fractions, out_dir, preset="default", work_dir=None, model=None,
                          rows=("MRC-NER", "CoFEE-MRC"), max_train_sentences=None, settings=None, seeds=None, **kw):
    """Figure 2b: dev F1 of MRC-NER and CoFEE-MRC fine-tuned on a nested share of the labelled train split.

    CoFEE-MRC starts from the CoFEE pre-training run of the preset's seed; ``seeds`` are the fine-tuning seeds.
    """
    from .pipeline import pretrain
    from .presets import get_preset
    from .queries import get_queries

    table = get_preset(preset)
    model = model or table["model"]
    out_dir = Path(out_dir)
    work = Path(work_dir) if work_dir else out_dir / "work"
    init = {}
    if any(SUPERVISED_KIND[r][1] for r in rows):
        init["mrc"] = pretrain("esi,nee,fet", "mrc", target, out_dir / "pretrain-mrc", model=model, preset=preset,
                               work_dir=work_dir, **kw)
    types = init["mrc"]["types"] if init else None
    points = []
    for f in fractions:
        train, dev, types = supervised_data(target, max_train_sentences,
                                            stage_settings(preset).max_dev_sentences, fraction=f,
                                            types=types, seed=train_config(preset).seed)
        queries = {t: q for t, q in get_queries(target).items() if t in types}
        for row in rows:
            kind, needs = SUPERVISED_KIND[row]
            start = init[kind]["final_model"] if needs else ("none" if kind == "bilstm-crf" else model)
            for s in _seeds(preset, seeds):
                rep = supervised_run(row, kind, start, types, train, dev, supervised_config(preset, row, s, settings or {}),
                                     work, out_dir / f"{row}-{f:g}-seed{s}", queries=queries, max_len=table["max_len"])
                points.append({"fraction": f, "row": row, "seed": s, "train_sentences": len(train),
                               "dev_F1": rep["best_f1"], "best_epoch": rep["best_epoch"], "steps": rep.get("steps"),
                               "epochs_run": rep.get("epochs_run"), "reused": rep.get("reused"),
                               "precision": _precision_of(rep), "dev_sentence_counts": rep.get("dev_sentence_counts")})
    return points


def gazetteer_size_sweep(target: str, fractions, out_dir, preset="default", work_dir=None, model=None,
                         gazetteer_seed: int = 0, seeds=None, **kw):
    """Figure 3b: D_s size, CoFEE-MRC dev F1 (per seed) and Matching dev F1 with a nested share of each gazetteer.

    The Matching entries (``row`` "Gazetteer Matching", no seed) are scored on the dev sentences the runs select on.
    """
    from .gazetteers import load_gazetteers
    from .matching import match_records
    from .metrics import evaluate_records
    from .pipeline import dev_records

    points = []
    for f in fractions:
        runs = [_pretrain_point(Path(out_dir) / f"gazetteer-{f:g}", target, preset, work_dir, model, s,
                                gazetteer_fraction=f, gazetteer_seed=gazetteer_seed, **kw)
                for s in _seeds(preset, seeds)]
        gaz = load_gazetteers(_work_dir(work_dir, preset) / runs[0]["gazetteers"])
        dev = dev_records(target, [t for t in gaz], stage_settings(preset))
        matching = evaluate_records(dev, match_records(dev, gaz), per_sentence=True)
        entries = {t: len(e) for t, e in gaz.items()}
        points.extend({"fraction": f, "row": "CoFEE-MRC", "gazetteer_entries": entries,
                       "matching_dev_F1": matching["f1"], **r} for r in runs)
        points.append({"fraction": f, "row": "Gazetteer Matching", "seed": None, "gazetteer_entries": entries,
                       "dev_F1": matching["f1"], "d_s_sentences": runs[0]["d_s_sentences"],
                       "dev_sentence_counts": matching["sentence_counts"]})
    return points


def in_domain_cap_sweep(target: str, caps, out_dir, preset="default", work_dir=None, model=None, seeds=None,
                        in_domain: dict | None = None) -> list[dict]:
    """Beyond the paper: CoFEE-MRC + in-domain NEE dev F1 against the in-domain sentences used (a seeded, nested sample).

    One entry per (cap, seed); ``in_domain`` is the preset's ``table3_in_domain`` (its cap is replaced by each of ``caps``).
    """
    from .pipeline import pretrain

    points = []
    for cap in caps:
        for s in _seeds(preset, seeds):
            domain = {**in_domain_settings(target, in_domain), "domain_max_sentences": cap}
            rep = pretrain("esi,nee,fet,domain", "mrc", target, Path(out_dir) / f"cap-{cap}" / f"seed{s}", model=model,
                           preset=preset, work_dir=work_dir, train_overrides={"seed": s}, **domain)
            reports, corpus = rep["stage_reports"], rep["data"]["domain"]
            points.append({"cap": cap, "seed": s, "dev_F1": reports["domain"]["best_f1"],
                           "dev_F1_before": reports["fet"]["best_f1"], "domain_sentences": corpus["sentences"],
                           "matched_sentences": corpus["matched_sentences"], "entities": corpus["entities"],
                           "steps": reports["domain"].get("steps"), "epochs_run": reports["domain"].get("epochs_run"),
                           "reused": reports["domain"].get("reused"),
                           "dev_sentence_counts": reports["domain"].get("dev_sentence_counts")})
    return points


SWEEP_X = {"figure2": {"a": "fraction", "b": "fraction", "c": "delta", "d": "k"}, "figure3": {"b": "fraction"},
           "in_domain": {"caps": "cap"}}
# the notebook parameter holding each panel's grid (a kept panel keeps the grid it ran on)
SWEEP_GRID = {"figure2": {"a": "pretrain_fractions", "b": "finetune_fractions", "c": "deltas", "d": "ks"}}


def run_stamp(preset: str, seeds, command: str) -> dict:
    """Where, when and how a sweep panel was run: the provenance each panel of ``<name>.json`` keeps."""
    return {"command": command, "machine": machine(), "precision": precision_used(preset),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "seeds": list(seeds or [])}


def override_args(overrides: dict) -> list[str]:
    """The ``-p NAME VALUE`` words naming a notebook run's overrides, VALUE as JSON (as papermill's ``-p`` takes it).

    One spelling for every record of a run: the timings key of ``cofee reproduce`` and a panel's provenance.
    """
    return [f"-p {name} {json.dumps(value)}" for name, value in overrides.items()]


def notebook_command(notebook: str, preset: str, **params) -> str:
    """How a notebook run is named in a panel's provenance: the notebook, its preset and each ``-p`` override.

    ``params`` are the notebook's parameters as papermill set them, before the preset fills them in: one left at
    None took the preset's value and is not named, so ``-p panels c -p deltas "[0.05, 0.1]"`` is recorded as run.
    """
    given = {name: value for name, value in params.items() if value is not None}
    return " ".join([f"notebooks/{notebook} (preset {preset})", *override_args(given)])


def kept_panels(results_dir, name: str, target: str, preset: str, run_panels) -> dict:
    """The panels of the earlier ``<name>.json`` that this run does not run again, to be written back unchanged.

    Each kept point gets its per-sentence counts back from ``counts/<name>.json``; ``panel_runs`` keeps their
    provenance and ``grid`` the grid they ran on. Returns ``{}`` when every panel runs. A missing file, or one of another target or preset, is refused.
    """
    unknown = sorted(set(run_panels) - set(SWEEP_X[name]))
    if unknown:
        raise CofeeError(f"{name}: no panel {', '.join(unknown)} (panels: {', '.join(SWEEP_X[name])})")
    keep = [panel for panel in SWEEP_X[name] if panel not in run_panels]
    if not keep:
        return {}
    path = Path(results_dir) / f"{name}.json"
    if not path.is_file():
        raise CofeeError(f"{path}: not found; run every panel once before running only some of them")
    previous = json.loads(path.read_text(encoding="utf-8"))
    if previous.get("target") != target or previous.get("preset") != preset:
        raise CofeeError(f"{path} holds target {previous.get('target')} at preset {previous.get('preset')}, not "
                         f"{target} at {preset}: its panels cannot be kept beside this run's")
    counts_path = Path(results_dir) / "counts" / f"{name}.json"
    counts = json.loads(counts_path.read_text(encoding="utf-8")) if counts_path.is_file() else {}
    out = {"panel_runs": {p: r for p, r in (previous.get("panel_runs") or {}).items() if p in keep},
           "grid": {key: previous["grid"][key] for p, key in SWEEP_GRID.get(name, {}).items()
                    if p in keep and key in (previous.get("grid") or {})}}
    for panel in keep:
        x = SWEEP_X[name][panel]
        by_point = {(e["x"], e.get("row"), e.get("seed")): e["counts"] for e in (counts.get("panels") or {}).get(panel, [])}
        out[panel] = [{**p, "dev_sentence_counts": by_point.get((p[x], p.get("row"), p.get("seed")))}
                      for p in previous.get(panel) or []]
    return out


def write_sweeps(results_dir, name: str, summary: dict) -> Path:
    """Write ``<name>.json`` (the sweep points, without their per-sentence counts) and ``counts/<name>.json``.

    ``summary`` holds the panels (lists of points, one per x, seed and row) as the notebooks build it.
    """
    results_dir = Path(results_dir)
    clean, panels, sentences = dict(summary), {}, None
    for panel, x in SWEEP_X[name].items():
        points = summary.get(panel) or []
        clean[panel] = [{k: v for k, v in p.items() if k != "dev_sentence_counts"} for p in points]
        entries = [{"x": p[x], "row": p.get("row"), "seed": p.get("seed"), "counts": p["dev_sentence_counts"]}
                   for p in points if p.get("dev_sentence_counts") is not None]
        sizes = {len(e["counts"]) for e in entries}
        if len(sizes) > 1:
            raise CofeeError(f"{name} panel {panel}: points were scored on dev sets of different sizes {sorted(sizes)}")
        sentences = sentences or next(iter(sizes), None)
        panels[panel] = entries
    write_counts(results_dir, name, {"split": "dev", "target": summary["target"], "sentences": sentences,
                                     "panels": panels})
    path = results_dir / f"{name}.json"
    _write(path, clean)
    return path


def gazetteer_sizes(target: str, fractions, lang: str = "en", seed: int = 0) -> list[dict]:
    """Figure 3a: entries per type of the gazetteers built with each share (nested for one seed)."""
    from .datasets import load_train
    from .gazetteers import build_gazetteers

    rows = []
    for f in fractions:
        entries, provenance = build_gazetteers(lang, target=target if lang == "en" else None, fraction=f, seed=seed,
                                               load_train=load_train)
        rows.extend({"fraction": f, "type": t, "entries": len(v)} for t, v in entries.items())
    return rows


def check_fractions(values, name: str = "fractions") -> list[float]:
    """Validate a sweep's shares: numbers in (0, 1]."""
    out = []
    for v in values:
        if not isinstance(v, (int, float)) or not 0 < v <= 1:
            raise CofeeError(f"{name}: every value is a share in (0, 1]; got {v!r}")
        out.append(float(v))
    return out
