"""CoFEE end to end: corpora -> ESI -> NEE -> FET, the ablations, and fine-tuning.

:func:`pretrain` is what ``cofee pretrain`` runs: it builds (or reuses) the
corpora D_g and D_s for a target dataset, then runs the chosen stages in
order, each initialised from the previous stage's best-by-dev checkpoint:

* ``esi,nee,fet``: CoFEE (Algorithm 1);
* ``nee,fet``: -ESI; ``esi,nee``: -FET; ``nee``: -FET-ESI (the paper's
  ablations, Table 3);
* ``--no-self-picking`` with ``nee``: plain MRC-NER trained on D_s (Table 3's
  "MRC-NER" row).

``<out>/<stage>/best/`` holds each stage's checkpoint, ``<out>/<stage>/report.json``
what it recorded, ``<out>/pretrain_report.json`` the whole run, and
``<out>/final`` names the last stage's checkpoint. Nothing here reads a test
split: :func:`evaluate_once` does that, for the report, after selection.

Intermediate files (D_g, gazetteers, D_s) are cached under the work folder and
keyed by content (:mod:`cofee_lib.cache`): a rerun with identical inputs and
parameters reuses them.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from . import cache, presets
from .errors import CofeeError
from .records import read_jsonl, write_jsonl
from .stages import ESI_TYPE, StageSettings, label_set_stats, run_esi, run_fet, run_nee, write_report

STAGE_ORDER = ("esi", "nee", "fet")
ENGLISH_TARGETS = ("wnut16", "conll2003")


def _say(msg: str) -> None:
    print(f"[cofee] {msg}", file=sys.stderr, flush=True)


def pretrain_settings(preset: str, **overrides) -> dict:
    """The preset's ``pretrain`` section with non-None ``overrides`` applied."""
    table = presets.get_preset(preset)
    values = dict(table.get("pretrain", {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return values


def subsample(records: list[dict], limit: int | None, seed: int = 0) -> list[dict]:
    """At most ``limit`` records, a seeded random subset in the original order (all when None)."""
    if not limit or len(records) <= limit:
        return list(records)
    keep = sorted(random.Random(seed).sample(range(len(records)), int(limit)))
    return [records[i] for i in keep]


def fraction_subset(records: list[dict], fraction: float, seed: int = 0) -> list[dict]:
    """A seeded share of ``records`` (at least one), in the original order; nested in ``fraction`` for one seed.

    The records are put in one seeded random order and the first
    ``round(fraction * n)`` are kept, so the 20% subset is inside the 40% one
    (sweeps over data size compare growing sets, not different draws).
    """
    if not 0.0 < fraction <= 1.0:
        raise CofeeError(f"a data fraction is in (0, 1]; got {fraction}")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    keep = sorted(order[:max(1, round(fraction * len(records)))]) if records else []
    return [records[i] for i in keep]


# --------------------------------------------------------------------------- corpora

def build_corpora(target: str, work_dir, lang: str = "en", dumps=("embedded:enwiki",), min_anchors: int = 4,
                  max_len: int = 250, gazetteer_fraction: float = 1.0, gazetteer_seed: int = 0,
                  progress: bool = True) -> dict:
    """D_g, the gazetteers and D_s for ``target`` under ``work_dir`` (cached by content).

    Returns ``{"d_g": path, "gazetteers": dir, "d_s": path, "d_g_stats": ..., "d_s_counts": ...}``.
    """
    from .corpora import general_corpus
    from .gazetteers import build_gazetteers, default_options, load_gazetteers, write_gazetteers
    from .matching import label_anchors

    work_dir = Path(work_dir)
    gaz_key = {"lang": lang, "target": target if lang == "en" else None, "fraction": gazetteer_fraction,
               "seed": gazetteer_seed, "options": default_options(lang)}
    gaz_name = f"{lang}-{target}" + ("" if gazetteer_fraction == 1.0 else f"-f{gazetteer_fraction:g}-s{gazetteer_seed}")
    user_gaz = None
    from .userdata import is_user_dataset

    if is_user_dataset(target):  # the user's dataset: its own gazetteers if it has them (cofee_lib.userdata)
        from .userdata import copy_gazetteers, safe_name, user_dataset_spec, user_gazetteer_dir

        spec, user_gaz = user_dataset_spec(target), user_gazetteer_dir(target)
        if user_gaz is None and spec["gazetteers_required"]:
            raise CofeeError(f"dataset {target!r} needs its gazetteers: expected {spec['gazetteers']}/TYPE.txt "
                             "(one entry per line; see docs/paper_preset.md)")
        suffix = gaz_name[len(f"{lang}-{target}"):]
        if user_gaz is not None:
            gaz_key = {"user_gazetteers": cache.dir_digest(user_gaz), "lang": lang, "fraction": gazetteer_fraction,
                       "seed": gazetteer_seed}
            gaz_name = f"user-{safe_name(target)}{suffix}"
        else:
            gaz_key["target"] = spec["kit_gazetteers_as"] if lang == "en" else None
            gaz_name = f"{lang}-{safe_name(target)}{suffix}"
    gaz_dir = work_dir / "gazetteers" / gaz_name
    d_g_stats = general_corpus(work_dir, dumps, lang=lang, max_len=max_len, min_anchors=min_anchors,
                               progress=progress)
    d_g_path = Path(d_g_stats["path"])

    def make_gazetteers(path: Path) -> dict:
        if user_gaz is not None:
            return copy_gazetteers(user_gaz, path, lang, fraction=gazetteer_fraction, seed=gazetteer_seed)
        gaz, provenance = build_gazetteers(lang, target=gaz_key["target"], fraction=gazetteer_fraction,
                                           seed=gazetteer_seed)
        write_gazetteers(path, gaz, provenance)
        return provenance["counts"]

    gaz_counts = cache.cached_dir(gaz_dir, gaz_key, make_gazetteers)

    d_s_path = work_dir / "corpus" / f"D_s_{gaz_name}.jsonl"

    def make_d_s(path: Path) -> dict:
        from collections import Counter

        counts: Counter = Counter()
        records = label_anchors(read_jsonl(d_g_path), load_gazetteers(gaz_dir), counts=counts)
        write_jsonl(path, records)
        return {"sentences": len(records), **{str(k): v for k, v in counts.items()}}

    d_s_key = {"d_g": cache.file_digest(d_g_path), "gazetteers": cache.dir_digest(gaz_dir)}
    d_s_counts = cache.cached_file(d_s_path, d_s_key, make_d_s)
    return {"d_g": d_g_path, "gazetteers": gaz_dir, "d_s": d_s_path, "d_g_stats": d_g_stats,
            "gazetteer_counts": gaz_counts, "d_s_counts": d_s_counts}


def target_types(target: str, gazetteer_dir) -> list[str]:
    """Types NEE trains on: the target's types that have a gazetteer (e.g. CoNLL's MISC has none)."""
    from .datasets import dataset_types
    from .gazetteers import load_gazetteers

    have = set(load_gazetteers(gazetteer_dir))
    types = [t for t in dataset_types(target) if t in have]
    if not types:
        raise CofeeError(f"no gazetteer in {gazetteer_dir} covers the types of {target}")
    return types


# --------------------------------------------------------------------------- stages

def _build(kind: str, types, init: str, queries: dict | None, max_len: int, records, seed: int):
    """A backbone for ``types`` initialised from ``init`` (an encoder name or a kit checkpoint).

    A kit checkpoint of the same kind and the same types is loaded whole (heads
    included); otherwise the encoder is reused and the heads are new (an MRC
    checkpoint's type-independent start/end heads are kept by build_backbone).
    """
    from .backbones import build_backbone, load_backbone, read_config

    init_path = Path(str(init))
    if (init_path / "cofee.json").is_file():
        cfg = read_config(init_path)
        if cfg.get("kind") == kind and list(cfg.get("types", [])) == list(types):
            model = load_backbone(init_path)
            if queries and hasattr(model, "queries"):
                model.queries = dict(queries)
            model.train()
            return model
    return build_backbone(kind, types, model=str(init), queries=queries, max_len=max_len, records=records, seed=seed)


def pretrain(stages, backbone: str, target: str, out, model: str | None = None, preset: str = "default",
             lang: str = "en", work_dir=None, self_picking: bool = True, resume: bool = False,
             train_overrides: dict | None = None, use_cache: bool = True, **overrides) -> dict:
    """Run the chosen CoFEE stages for ``target``; return (and write) the run's report.

    ``overrides`` are pretrain settings (delta, relabel, gamma, k, variance,
    head_follow, kmeans_restarts, epochs_esi, epochs_nee, epochs_fet, max_dg_sentences,
    max_ds_sentences, max_dev_sentences, ...); ``train_overrides`` apply to
    every stage's training config (lr, batch_size, seed, bf16, ...).

    Each stage runs in a folder of ``<work_dir>/runs/`` named by a digest of its
    initial model, data and settings (:mod:`cofee_lib.runs`); ``<out>/<stage>``
    links to it. A stage that finished before with identical inputs is reused,
    not recomputed (``use_cache=False`` trains into ``<out>`` afresh).
    """
    from .datasets import load_dataset
    from .queries import get_queries

    stages = [s.strip().lower() for s in (stages.split(",") if isinstance(stages, str) else stages) if s.strip()]
    bad = [s for s in stages if s not in STAGE_ORDER]
    if bad or not stages:
        raise CofeeError(f"--stages takes a comma-separated subset of {','.join(STAGE_ORDER)}; got {','.join(stages) or 'nothing'}")
    stages = [s for s in STAGE_ORDER if s in stages]
    if "nee" not in stages and "fet" in stages:
        raise CofeeError("FET trains on D_s^best, which NEE makes: --stages with fet needs nee")
    from .userdata import is_user_dataset, user_dataset_lang

    if is_user_dataset(target):  # the user's own dataset (cofee_lib.userdata) says its language
        lang = user_dataset_lang(target)
    elif target not in ENGLISH_TARGETS and lang == "en":
        raise CofeeError(f"--target must be one of {', '.join(ENGLISH_TARGETS)} for English")
    settings = pretrain_settings(preset, **overrides)
    table = presets.get_preset(preset)
    model = model or (table.get("model_zh") if lang == "zh" else None) or table["model"]
    max_len = int(settings.get("max_len") or table["max_len"])
    seed = int((train_overrides or {}).get("seed") or table["train"]["seed"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from .reproduce import output_dirs

    work_dir = Path(work_dir) if work_dir else Path(output_dirs(preset)["work_dir"])
    started = time.perf_counter()

    dumps = settings.get("dumps_zh") if lang == "zh" and settings.get("dumps_zh") else settings.get("dumps", ["embedded:enwiki"])
    corpora = build_corpora(target, work_dir, lang=lang, dumps=tuple(dumps),
                            min_anchors=int(settings.get("min_anchors", 4)), max_len=int(settings.get("max_words", 250)),
                            gazetteer_fraction=float(settings.get("gazetteer_fraction", 1.0)),
                            gazetteer_seed=int(settings.get("gazetteer_seed", 0)))
    types = target_types(target, corpora["gazetteers"])
    dev = subsample([dict(r, spans=[s for s in r["spans"] if s[2] in types]) for r in load_dataset(target, "dev")],
                    settings.get("max_dev_sentences"), seed)
    d_g, d_s = read_jsonl(corpora["d_g"]), read_jsonl(corpora["d_s"])
    fraction = settings.get("pretrain_fraction")
    if fraction is not None and float(fraction) < 1.0:  # Fig. 2a: a share of the pre-training corpus
        d_g = fraction_subset(d_g, float(fraction), seed)
        kept = {r["id"] for r in d_g}
        d_s = [r for r in d_s if r["id"] in kept]  # D_s is typed D_g: keep the typed sentences of the share
    d_g = subsample(d_g, settings.get("max_dg_sentences"), seed)
    d_s = subsample(d_s, settings.get("max_ds_sentences"), seed)
    stage_settings = StageSettings(**{k: settings[k] for k in StageSettings.__dataclass_fields__ if k in settings})
    queries = get_queries(target)
    queries = {t: queries[t] for t in types}

    def config(stage: str):
        epochs = settings.get(f"epochs_{stage}")
        return presets.train_config(preset, stage, **{"epochs": epochs, **(train_overrides or {})})

    report = {"command": "pretrain", "stages": stages, "backbone": backbone, "target": target, "model": model,
              "preset": preset, "types": types, "self_picking": self_picking, "settings": settings,
              "corpora": {k: str(v) if isinstance(v, Path) else v for k, v in corpora.items()},
              "data": {"d_g": label_set_stats(d_g, [ESI_TYPE]), "d_s": label_set_stats(d_s, types),
                       "dev_sentences": len(dev)},
              "stage_reports": {}}
    init = model
    ds_best = d_s
    from .runs import run_cached

    def stage_run(stage: str, m, train_records, dev_records, cfg, execute, extra: dict | None = None) -> dict:
        return run_cached(stage, m, train_records, dev_records, cfg, work_dir, out / stage, execute,
                          settings={"backbone": backbone, **(extra or {})}, use_cache=use_cache, resume=resume)

    if "esi" in stages:
        _say(f"ESI: {len(d_g)} anchor sentences, dev {len(dev)} ({target}, types collapsed to {ESI_TYPE})")
        m = _build(backbone, [ESI_TYPE], init, get_queries("esi"), max_len, d_g, seed)
        cfg = config("esi")
        report["stage_reports"]["esi"] = stage_run(
            "esi", m, d_g, dev, cfg, lambda folder, res: run_esi(m, d_g, dev, cfg, folder, resume=res))
        init = str(out / "esi" / "best")
    if "nee" in stages:
        nee_settings = stage_settings
        _say(f"NEE: {len(d_s)} gazetteer-labelled sentences, types {','.join(types)}, "
             + (f"self-picking delta={nee_settings.delta} ({nee_settings.relabel})" if self_picking else "no self-picking"))
        m = _build(backbone, types, init, queries, max_len, d_s, seed)
        cfg = config("nee")

        def execute_nee(folder: Path, res: bool) -> dict:
            if self_picking:
                return run_nee(m, d_s, dev, cfg, folder, nee_settings, resume=res)
            from .engine import train
            from .stages import keep_types

            result = train(m, d_s, keep_types(dev, types), cfg, folder, resume=res)
            write_jsonl(folder / "ds_best.jsonl", d_s)
            rep = {"stage": "nee", "self_picking": False, "best_f1": result.best_f1, "best_epoch": result.best_epoch,
                   "best_metrics": result.best_metrics, "history": result.history,
                   "tokens_per_second": result.tokens_per_second, "best_dir": result.best_dir}
            write_report(folder / "report.json", rep)
            return rep

        picking = ({"self_picking": True, "delta": nee_settings.delta, "relabel": nee_settings.relabel,
                    "pick_when_dev_zero": nee_settings.pick_when_dev_zero} if self_picking else {"self_picking": False})
        report["stage_reports"]["nee"] = stage_run("nee", m, d_s, dev, cfg, execute_nee, picking)
        init = str(out / "nee" / "best")
        ds_best = read_jsonl(out / "nee" / "ds_best.jsonl")
    if "fet" in stages:
        _say(f"FET: {sum(len(r['spans']) for r in ds_best)} entities of D_s^best, K={stage_settings.k}, "
             f"gamma={stage_settings.gamma}, variance={stage_settings.variance}")
        m = _build(backbone, types, init, queries, max_len, ds_best, seed)
        cfg = config("fet")
        fet_keys = ("k", "gamma", "variance", "head_follow", "kmeans_restarts")
        report["stage_reports"]["fet"] = stage_run(
            "fet", m, ds_best, dev, cfg,
            lambda folder, res: run_fet(m, ds_best, dev, cfg, folder, stage_settings, resume=res),
            {k: getattr(stage_settings, k) for k in fet_keys})
        init = str(out / "fet" / "best")
    report["final_model"] = init
    report["final_dev_f1"] = report["stage_reports"][stages[-1]]["best_f1"]
    report["seconds"] = round(time.perf_counter() - started, 1)
    (out / "final").write_text(init + "\n", encoding="utf-8")
    write_report(out / "pretrain_report.json", report)
    return report


def final_model_dir(out) -> Path:
    """The checkpoint a ``pretrain`` run ends with (``<out>/final`` names it)."""
    out = Path(out)
    if (out / "cofee.json").is_file():
        return out
    pointer = out / "final"
    if pointer.is_file():
        return Path(pointer.read_text(encoding="utf-8").strip())
    raise CofeeError(f"{out}: neither a model directory (cofee.json) nor a pretrain run (final)")


def evaluate_once(model_dir, records: list[dict], batch_size: int = 64, threshold: float = 0.5) -> dict:
    """Score a selected model on (test) records: the one read of the test split, for the report."""
    from .backbones import load_backbone
    from .metrics import evaluate_records

    model = load_backbone(model_dir)
    types = set(model.types)
    gold = [dict(r, spans=[s for s in r["spans"] if s[2] in types]) for r in records]
    pred = model.predict(gold, threshold=threshold, batch_size=batch_size, progress=True)
    return evaluate_records(gold, [dict(r, spans=p) for r, p in zip(gold, pred)])
