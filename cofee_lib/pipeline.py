"""CoFEE end to end: corpora -> ESI -> NEE -> FET, the ablations, and fine-tuning.

:func:`pretrain` is what ``cofee pretrain`` runs: it builds (or reuses) the
corpora D_g and D_s for a target dataset, then runs the chosen stages in
order, each initialised from the previous stage's best-by-dev checkpoint:

* ``esi,nee,fet``: CoFEE (Algorithm 1);
* ``nee,fet``: -ESI; ``esi,nee``: -FET; ``nee``: -FET-ESI (the paper's
  ablations, Table 3);
* ``--no-self-picking`` with ``nee``: plain MRC-NER trained on D_s (Table 3's
  "MRC-NER" row);
* ``...,domain`` (beyond the paper): NEE with self-picking on the target's own
  gazetteer-matched text (:mod:`cofee_lib.domain`), after the other stages.

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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import cache, paths, presets
from .backbones import CONFIG_NAME, build_backbone, load_backbone, read_config
from .corpora import general_corpus
from .datasets import (ENGLISH_TARGETS, dataset_lang, dataset_types, is_user_dataset, load_dataset, load_train,
                       safe_name)
from .datasets.user import user_dataset_spec, user_gazetteer_dir
from .gazetteers import build_gazetteers, copy_gazetteers, default_options, load_gazetteers, write_gazetteers
from .matching import iter_label_anchors
from .errors import CofeeError, check_input
from .metrics import evaluate_records
from .queries import get_queries
from .records import JsonlRecords, iter_jsonl, read_jsonl, write_jsonl
from .runs import run_cached
from .settings import DEFAULT_THRESHOLD, StageSettings
from .stages import (ESI_TYPE, keep_types, label_set_stats, run_esi, run_fet, run_nee, run_nee_without_picking,
                     write_report)


def _say(msg: str) -> None:
    print(f"[cofee] {msg}", file=sys.stderr, flush=True)


def subsample_positions(n: int, limit: int | None, seed: int = 0) -> list[int] | None:
    """The sorted positions :func:`subsample` keeps out of ``n`` records; None when it keeps them all."""
    if not limit or n <= limit:
        return None
    return sorted(random.Random(seed).sample(range(n), int(limit)))


def subsample(records: list[dict], limit: int | None, seed: int = 0) -> list[dict]:
    """At most ``limit`` records, a seeded random subset in the original order (all when None)."""
    keep = subsample_positions(len(records), limit, seed)
    return list(records) if keep is None else [records[i] for i in keep]


def fraction_positions(n: int, fraction: float, seed: int = 0) -> list[int]:
    """The sorted positions :func:`fraction_subset` keeps out of ``n`` records."""
    if not 0.0 < fraction <= 1.0:
        raise CofeeError(f"a data fraction is in (0, 1]; got {fraction}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[:max(1, round(fraction * n))]) if n else []


def fraction_subset(records: list[dict], fraction: float, seed: int = 0) -> list[dict]:
    """A seeded share of ``records`` (at least one), in the original order; nested in ``fraction`` for one seed.

    The records are put in one seeded random order and the first
    ``round(fraction * n)`` are kept, so the 20% subset is inside the 40% one
    (sweeps over data size compare growing sets, not different draws).
    """
    return [records[i] for i in fraction_positions(len(records), fraction, seed)]


# --------------------------------------------------------------------------- corpora

def build_corpora(target: str, work_dir, lang: str = "en", dumps=("embedded:enwiki",), min_anchors: int = 4,
                  max_len: int = 250, gazetteer_fraction: float = 1.0, gazetteer_seed: int = 0,
                  workers: int = 1, progress: bool = True) -> dict:
    """D_g, the gazetteers and D_s for ``target`` under ``work_dir`` (cached by content).

    ``workers`` processes parse the dumps when D_g is not cached (the same D_g for any number).

    Returns ``{"d_g": path, "gazetteers": dir, "d_s": path, "d_g_stats": ..., "d_s_counts": ...}``.
    """
    work_dir = Path(work_dir)
    gaz_key = {"lang": lang, "target": target if lang == "en" else None, "fraction": gazetteer_fraction,
               "seed": gazetteer_seed, "options": default_options(lang)}
    gaz_name = f"{lang}-{target}" + ("" if gazetteer_fraction == 1.0 else f"-f{gazetteer_fraction:g}-s{gazetteer_seed}")
    user_gaz = None
    if is_user_dataset(target):  # the user's dataset: its own gazetteers if it has them (cofee_lib.userdata)
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
                               workers=workers, progress=progress)
    d_g_path = Path(d_g_stats["path"])

    def make_gazetteers(path: Path) -> dict:
        if user_gaz is not None:
            return copy_gazetteers(user_gaz, path, lang, fraction=gazetteer_fraction, seed=gazetteer_seed)
        gaz, provenance = build_gazetteers(lang, target=gaz_key["target"], fraction=gazetteer_fraction,
                                           seed=gazetteer_seed, load_train=load_train)
        write_gazetteers(path, gaz, provenance)
        return provenance["counts"]

    gaz_counts = cache.cached_dir(gaz_dir, gaz_key, make_gazetteers)

    d_s_path = work_dir / "corpus" / f"D_s_{gaz_name}.jsonl"

    def make_d_s(path: Path) -> dict:  # streamed: one D_g record at a time
        counts: Counter = Counter()
        written = write_jsonl(path, iter_label_anchors(iter_jsonl(d_g_path), load_gazetteers(gaz_dir), counts=counts))
        return {"sentences": written, **{str(k): v for k, v in counts.items()}}

    d_s_key = {"d_g": cache.file_digest(d_g_path), "gazetteers": cache.dir_digest(gaz_dir)}
    d_s_counts = cache.cached_file(d_s_path, d_s_key, make_d_s)
    return {"d_g": d_g_path, "gazetteers": gaz_dir, "d_s": d_s_path, "d_g_stats": d_g_stats,
            "gazetteer_counts": gaz_counts, "d_s_counts": d_s_counts}


def target_types(target: str, gazetteer_dir) -> list[str]:
    """Types NEE trains on: the target's types that have a gazetteer (e.g. CoNLL's MISC has none)."""
    have = set(load_gazetteers(gazetteer_dir))
    types = [t for t in dataset_types(target) if t in have]
    if not types:
        raise CofeeError(f"no gazetteer in {gazetteer_dir} covers the types of {target}")
    return types


# --------------------------------------------------------------------------- stages

def build_model(kind: str, types, init: str, queries: dict | None, max_len: int, records, seed: int,
                subtoken_labels: str | None = None):
    """A backbone for ``types`` initialised from ``init`` (an encoder name or a kit checkpoint).

    A kit checkpoint of the same kind and the same types is loaded whole (heads
    included); otherwise the encoder is reused and the heads are new (an MRC
    checkpoint's type-independent start/end heads are kept by build_backbone).
    ``subtoken_labels`` (tagger only): None keeps a saved kit tagger's choice, else "first".
    """
    init_path = Path(str(init))
    if (init_path / CONFIG_NAME).is_file():
        cfg = read_config(init_path)
        if cfg.get("kind") == kind and list(cfg.get("types", [])) == list(types):
            model = load_backbone(init_path)
            if queries and hasattr(model, "queries"):
                model.queries = dict(queries)
            model.train()
            return model
    extra = {"subtoken_labels": subtoken_labels} if subtoken_labels is not None else {}
    return build_backbone(kind, types, model=str(init), queries=queries, max_len=max_len, records=records, seed=seed,
                          **extra)


@dataclass
class PretrainRun:
    """What every stage of one ``pretrain`` call sees; ``init`` moves to each stage's best model."""

    backbone: str
    target: str
    types: list
    queries: dict
    dev: list
    d_g: list | JsonlRecords  # streamed from its file (stage_data)
    d_s: list
    settings: StageSettings
    preset: str
    max_len: int
    seed: int
    work_dir: Path
    out: Path
    init: str
    self_picking: bool = True
    train_overrides: dict = field(default_factory=dict)
    use_cache: bool = True
    resume: bool = False
    ds_best: list | None = None
    domain: list | None = None
    domain_stats: dict | None = None
    subtoken_labels: str | None = None  # tagger: the first stage's choice; later stages inherit it from their init

    def config(self, stage: str):
        """The stage's training config: the preset's (and its stage overrides), the stage's epochs, the flags."""
        epochs = getattr(self.settings, f"epochs_{stage}")
        return presets.train_config(self.preset, stage, **{"epochs": epochs, **self.train_overrides})

    def model(self, types, queries, records):
        return build_model(self.backbone, types, self.init, queries, self.max_len, records, self.seed,
                           self.subtoken_labels)

    def run(self, stage: str, model, train_records, config, execute, key: dict) -> dict:
        """Run (or reuse) one stage in the content-keyed store (:mod:`cofee_lib.runs`)."""
        return run_cached(stage, model, train_records, self.dev, config, self.work_dir, self.out / stage, execute,
                          settings={"backbone": self.backbone, **key}, use_cache=self.use_cache, resume=self.resume)


def stage_esi(run: PretrainRun) -> dict:
    """ESI (Sec. 4.1): every anchor of D_g an ``Entity``, MRC asks "Find Entities"."""
    _say(f"ESI: {len(run.d_g)} anchor sentences, dev {len(run.dev)} ({run.target}, types collapsed to {ESI_TYPE})")
    m, cfg = run.model([ESI_TYPE], get_queries("esi"), run.d_g), run.config("esi")
    return run.run("esi", m, run.d_g, cfg, lambda folder, res: run_esi(m, run.d_g, run.dev, cfg, folder, resume=res), {})


def stage_nee(run: PretrainRun) -> dict:
    """NEE (Sec. 4.2): D_s with iterative self-picking at rate delta (or plain MRC-NER on D_s)."""
    s = run.settings
    _say(f"NEE: {len(run.d_s)} gazetteer-labelled sentences, types {','.join(run.types)}, "
         + (f"self-picking delta={s.delta} ({s.relabel})" if run.self_picking else "no self-picking"))
    m, cfg = run.model(run.types, run.queries, run.d_s), run.config("nee")
    if run.self_picking:
        return run.run("nee", m, run.d_s, cfg, lambda folder, res: run_nee(m, run.d_s, run.dev, cfg, folder, s, resume=res),
                       {"self_picking": True, **s.stage_key("nee")})
    return run.run("nee", m, run.d_s, cfg, lambda folder, res: run_nee_without_picking(m, run.d_s, run.dev, cfg, folder,
                                                                                       resume=res),
                   {"self_picking": False})


def stage_fet(run: PretrainRun) -> dict:
    """FET (Sec. 4.3): D_s^best with L_MRC + gamma * L_clus, re-clustered every epoch."""
    s, ds_best = run.settings, run.ds_best
    _say(f"FET: {sum(len(r['spans']) for r in ds_best)} entities of D_s^best, K={s.k}, gamma={s.gamma}, "
         f"variance={s.variance}")
    m, cfg = run.model(run.types, run.queries, ds_best), run.config("fet")
    return run.run("fet", m, ds_best, cfg, lambda folder, res: run_fet(m, ds_best, run.dev, cfg, folder, s, resume=res),
                   s.stage_key("fet"))


def domain_source_key(spec: str) -> dict:
    """What identifies the domain stage's text: a dataset's name (and a user dataset's train file digest), or a
    file's content, name and the way it is read; an unknown dataset or a missing file is an error here, early."""
    from .datasets import dataset_names
    from .domain import DATASET_PREFIX, text_kind

    if spec.startswith(DATASET_PREFIX):
        name = spec[len(DATASET_PREFIX):]
        if not is_user_dataset(name) and name not in dataset_names():
            raise CofeeError(f"--domain-text {spec}: unknown dataset {name!r} (known: {', '.join(dataset_names())}, "
                             "a user dataset, or dir:/path/to/folder)")
        key = {"dataset": name}
        if is_user_dataset(name):
            train = user_dataset_spec(name)["files"].get("train")
            if train is None:
                raise CofeeError(f"--domain-text {spec}: the dataset has no train split to read the text from")
            key["train"] = cache.file_digest(train)
        return key
    path = check_input(Path(spec), "in-domain text (see cofee_lib.domain)")
    return {"file": cache.file_digest(path), "name": path.name, "kind": text_kind(spec)}


def domain_corpus(run: PretrainRun, gazetteer_dir) -> tuple[list[dict], dict]:
    """The domain stage's training records: the in-domain text, sampled and gazetteer-matched (cached by content)."""
    from .domain import distant_corpus, read_domain_text, sample_sentences

    s = run.settings
    spec = s.domain_text
    key = {"text": domain_source_key(spec), "gazetteers": cache.dir_digest(gazetteer_dir), "types": list(run.types),
           "max_sentences": s.domain_max_sentences, "negatives": s.domain_negatives, "seed": s.domain_seed}
    path = run.work_dir / "corpus" / f"domain-{cache.key_digest(key)[:16]}.jsonl"

    def make(target: Path) -> dict:
        text = sample_sentences(read_domain_text(spec), s.domain_max_sentences, s.domain_seed)
        corpus, stats = distant_corpus(text, load_gazetteers(gazetteer_dir), run.types, s.domain_negatives,
                                       s.domain_seed)
        write_jsonl(target, corpus)
        return stats

    stats = cache.cached_file(path, key, make)
    return read_jsonl(path), {**stats, "path": str(path), "text": spec}


def stage_domain(run: PretrainRun) -> dict:
    """The domain stage (beyond the paper, :mod:`cofee_lib.domain`): NEE with self-picking on matched in-domain text."""
    s = run.settings
    records = run.domain
    picking = run.self_picking and not s.domain_no_self_picking
    _say(f"domain: {len(records)} in-domain sentences ({run.domain_stats['matched_sentences']} matched, "
         f"{run.domain_stats['negatives_kept']} negatives) from {s.domain_text}, types {','.join(run.types)}, "
         + (f"self-picking delta={s.delta} ({s.relabel})" if picking else "no self-picking"))
    m, cfg = run.model(run.types, run.queries, records), run.config("domain")
    # the records (text, sample, negatives) are in the run's key already; the picking settings are not
    key = {"self_picking": picking, **(s.stage_key("nee") if picking else {})}
    if picking:
        return run.run("domain", m, records, cfg,
                       lambda folder, res: run_nee(m, records, run.dev, cfg, folder, s, resume=res), key)
    return run.run("domain", m, records, cfg,
                   lambda folder, res: run_nee_without_picking(m, records, run.dev, cfg, folder, resume=res), key)


# The stages of Algorithm 1, in order: each starts from the previous one's best-by-dev checkpoint;
# "domain" (beyond the paper) continues on the target's own text.
STAGES = {"esi": stage_esi, "nee": stage_nee, "fet": stage_fet, "domain": stage_domain}
STAGE_ORDER = tuple(STAGES)


def parse_stages(stages, domain_text: str | None = "") -> list[str]:
    """``"esi,nee,fet"`` (or a list) -> the chosen stages in Algorithm 1's order, checked.

    ``domain_text``: the domain stage's text setting (None: not given, an error if ``domain`` is chosen).
    """
    names = [s.strip().lower() for s in (stages.split(",") if isinstance(stages, str) else stages) if s.strip()]
    bad = [s for s in names if s not in STAGES]
    if bad or not names:
        raise CofeeError(f"--stages takes a comma-separated subset of {','.join(STAGE_ORDER)}; "
                         f"got {','.join(names) or 'nothing'}")
    if "nee" not in names and "fet" in names:
        raise CofeeError("FET trains on D_s^best, which NEE makes: --stages with fet needs nee")
    if domain_text is None and "domain" in names:
        raise CofeeError("the domain stage trains on your in-domain text: give --domain-text FILE or dataset:NAME")
    return [s for s in STAGE_ORDER if s in names]


def target_lang(target: str, lang: str) -> str:
    """The language of ``target``: a user dataset says its own; the kit's English targets are English."""
    if is_user_dataset(target):
        return dataset_lang(target)
    if target not in ENGLISH_TARGETS and lang == "en":
        raise CofeeError(f"--target must be one of {', '.join(ENGLISH_TARGETS)} for English")
    return lang


def dev_records(target: str, types, settings: StageSettings) -> list[dict]:
    """The dev sentences every run on ``target`` selects on: a fixed subsample (``dev_seed``), whatever the training seed."""
    return subsample(keep_types(load_dataset(target, "dev"), types), settings.max_dev_sentences, settings.dev_seed)


def stage_data(target: str, corpora: dict, settings: StageSettings, seed: int) -> dict:
    """The types NEE trains on, the (capped) dev split, and D_g / D_s after the Fig. 2a share and the caps."""
    types = target_types(target, corpora["gazetteers"])
    dev = dev_records(target, types, settings)
    # D_g is streamed from its file (a JsonlRecords: never held whole, the paper's is 3.9M sentences), the same
    # records in the same order as the lists fraction_subset / subsample would give; D_s, which self-picking
    # relabels in place, is read into memory
    d_g, d_s = JsonlRecords(corpora["d_g"]), read_jsonl(corpora["d_s"])
    if settings.pretrain_fraction is not None and settings.pretrain_fraction < 1.0:  # Fig. 2a
        d_g = d_g.select(fraction_positions(len(d_g), settings.pretrain_fraction, seed))
        kept = {r["id"] for r in d_g}
        d_s = [r for r in d_s if r["id"] in kept]  # D_s is typed D_g: keep the typed sentences of the share
    capped = subsample_positions(len(d_g), settings.max_dg_sentences, seed)
    return {"types": types, "dev": dev, "d_g": d_g if capped is None else d_g.select(capped),
            "d_s": subsample(d_s, settings.max_ds_sentences, seed)}


def pretrain(stages, backbone: str, target: str, out, model: str | None = None, preset: str = "default",
             lang: str = "en", work_dir=None, self_picking: bool = True, resume: bool = False,
             train_overrides: dict | None = None, use_cache: bool = True, subtoken_labels: str | None = None,
             **overrides) -> dict:
    """Run the chosen CoFEE stages for ``target``; return (and write) the run's report.

    ``overrides`` are :class:`~cofee_lib.settings.StageSettings` fields (delta, k, epochs_nee,
    ...; None keeps the preset's value); ``train_overrides`` apply to every stage's
    :class:`~cofee_lib.settings.TrainConfig` (lr, batch_size, seed, precision, ...).
    ``subtoken_labels`` ("first" | "all", tagger only; None: "first", or an initial kit tagger's)
    says which sub-tokens of a word carry its label (see :mod:`cofee_lib.backbones.tagger`).

    Each stage runs in a folder of ``<work_dir>/runs/`` named by a digest of its
    initial model, data and settings (:mod:`cofee_lib.runs`); ``<out>/<stage>``
    links to it. A stage that finished before with identical inputs is reused,
    not recomputed (``use_cache=False`` trains into ``<out>`` afresh).
    """
    if subtoken_labels is not None and backbone != "tagger":
        raise CofeeError(f"subtoken_labels ({subtoken_labels!r}) applies to the tagger backbone only, not {backbone!r}")
    lang = target_lang(target, lang)
    settings = presets.stage_settings(preset, **overrides)
    stages = parse_stages(stages, settings.domain_text)
    if "domain" in stages:
        domain_source_key(settings.domain_text)   # a missing file or unknown dataset fails now, not after ESI
    table = presets.get_preset(preset)
    model = model or (table.get("model_zh") if lang == "zh" else None) or table["model"]
    train_overrides = {k: v for k, v in (train_overrides or {}).items() if v is not None}
    seed = int(train_overrides.get("seed") or presets.train_config(preset).seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work_dir = Path(work_dir) if work_dir else paths.work_dir(preset)
    started = time.perf_counter()
    dumps = settings.dumps_zh if lang == "zh" and settings.dumps_zh else settings.dumps
    corpora = build_corpora(target, work_dir, lang=lang, dumps=tuple(dumps), min_anchors=settings.min_anchors,
                            max_len=settings.max_words, gazetteer_fraction=settings.gazetteer_fraction,
                            gazetteer_seed=settings.gazetteer_seed, workers=settings.dump_workers)
    data = stage_data(target, corpora, settings, seed)
    types = data["types"]
    queries = {t: q for t, q in get_queries(target).items() if t in types}
    run = PretrainRun(backbone, target, types, queries, data["dev"], data["d_g"], data["d_s"], settings, preset,
                      int(table["max_len"]), seed, work_dir, out, model, self_picking, train_overrides, use_cache,
                      resume, ds_best=data["d_s"], subtoken_labels=subtoken_labels)
    if "domain" in stages:
        run.domain, run.domain_stats = domain_corpus(run, corpora["gazetteers"])
    report = {"command": "pretrain", "stages": stages, "backbone": backbone, "target": target, "model": model,
              "preset": preset, "types": types, "self_picking": self_picking,
              "subtoken_labels": subtoken_labels, "settings": settings.to_dict(),
              "corpora": {k: str(v) if isinstance(v, Path) else v for k, v in corpora.items()},
              "data": {"d_g": label_set_stats(run.d_g, [ESI_TYPE]), "d_s": label_set_stats(run.d_s, types),
                       "dev_sentences": len(run.dev),
                       **({"domain": run.domain_stats} if run.domain is not None else {})},
              "stage_reports": {}}
    for stage in stages:
        report["stage_reports"][stage] = STAGES[stage](run)
        run.init = str(out / stage / "best")
        if stage == "nee":
            run.ds_best = read_jsonl(out / "nee" / "ds_best.jsonl")
    report["final_model"] = run.init
    report["final_dev_f1"] = report["stage_reports"][stages[-1]]["best_f1"]
    report["seconds"] = round(time.perf_counter() - started, 1)
    (out / "final").write_text(run.init + "\n", encoding="utf-8")
    write_report(out / "pretrain_report.json", report)
    return report


def final_model_dir(out) -> Path:
    """The checkpoint a ``pretrain`` run ends with (``<out>/final`` names it)."""
    out = Path(out)
    if (out / CONFIG_NAME).is_file():
        return out
    pointer = out / "final"
    if pointer.is_file():
        return Path(pointer.read_text(encoding="utf-8").strip())
    raise CofeeError(f"{out}: neither a model directory (cofee.json) nor a pretrain run (final)")


def evaluate_once(model_dir, records: list[dict], batch_size: int = 64, threshold: float = DEFAULT_THRESHOLD,
                  per_sentence: bool = False) -> dict:
    """Score a selected model on (test) records: the one read of the test split, for the report.

    ``per_sentence``: also each sentence's ``[tp, n_pred, n_gold]``, in the order of ``records``.
    """
    model = load_backbone(model_dir)
    gold = keep_types(records, model.types)
    pred = model.predict(gold, threshold=threshold, batch_size=batch_size, progress=True)
    return evaluate_records(gold, [dict(r, spans=p) for r, p in zip(gold, pred)], per_sentence)


def threshold_curve(model_dir, records: list[dict], thresholds, batch_size: int = 64) -> list[dict]:
    """Precision, recall and F1 of a saved MRC model on ``records`` (dev) at each span threshold.

    The start/end probabilities are computed once and decoded at every threshold
    (:meth:`~cofee_lib.backbones.transformer.TransformerBackbone.decode_scores`), so the
    curve costs one pass over the records. A tagger has no threshold: it gives one point.
    """
    model = load_backbone(model_dir)
    gold = keep_types(records, model.types)
    if not hasattr(model, "word_scores") or model.kind != "mrc":
        thresholds = [DEFAULT_THRESHOLD]
    scores = model.word_scores(gold, batch_size=batch_size, progress=False) if hasattr(model, "word_scores") else None
    points = []
    for t in thresholds:
        pred = model.decode_scores(scores, gold, t) if scores is not None else model.predict(gold, threshold=t)
        m = evaluate_records(gold, [dict(r, spans=p) for r, p in zip(gold, pred)])
        points.append({"threshold": float(t), "P": m["precision"], "R": m["recall"], "F1": m["f1"]})
    return points
