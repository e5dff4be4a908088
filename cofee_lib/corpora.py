"""The corpus chapter in library form: D_g with its statistics.

What notebooks 01 and 02 call (paper Sec. 4.1, 4.2, 5.2, 5.3). Records follow
:mod:`cofee_lib.records`: word-level tokens, spans ``[start, end, type]`` with
an **inclusive** end.

* :func:`corpus_settings`: a preset's corpus settings (``dumps``,
  ``min_anchors``, ``max_len`` from the preset's ``pretrain`` section, the one
  place ``cofee pretrain`` reads them too; the notebooks' own knobs from its
  ``corpus`` section), with a notebook's overrides.
* :func:`build_general_corpus`: D_g from one or more dumps, read **once**,
  plus what a reader wants to see about it: the counts, the number of
  sentences per anchor count (so the effect of every ``min_anchors`` threshold
  is known from the same pass) and the sentence lengths.
* :func:`general_corpus`: the same, cached by content in the work folder with
  the key ``cofee pretrain`` uses (:func:`cofee_lib.pipeline.build_corpora`),
  so either reuses the D_g the other built.
* :func:`min_anchors_sweep`: sentences and anchors kept at each threshold.

The Gazetteer Matching baseline scored on a dataset's gold records (notebook
02) is :mod:`cofee_lib.datasets.baseline` (``matching_scores``): this layer
loads no dataset and scores against none.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .errors import CofeeError, InputError, atomic_open
from .settings import StageSettings

#: Where D_g lives under a work folder (``cofee pretrain`` reads it from there).
D_G_NAME = ("corpus", "D_g.jsonl")
#: The counts reported for D_g, summed over dumps (see :func:`build_general_corpus`).
COUNT_KEYS = ("pages", "articles", "redirects", "sentences_seen", "anchors_seen", "sentences_kept", "anchors_kept",
              "dropped_too_long", "dropped_few_anchors", "targets_redirected", "duplicate_ids")


# --------------------------------------------------------------------------- settings

def corpus_settings(preset, **overrides) -> dict:
    """The corpus settings of a preset, with the non-None ``overrides`` applied.

    ``preset`` is a preset name or a preset dict (``NotebookRun.settings``).
    ``dumps``, ``min_anchors``, ``max_len`` and ``workers`` come from the
    preset's ``pretrain`` section (``max_words`` and ``dump_workers`` there), everything else from its
    ``corpus`` section. ``limit_pages=0`` means "all pages".
    """
    from .presets import PRESET_NAMES, get_preset

    table = get_preset(preset) if isinstance(preset, str) else dict(preset or {})
    if "corpus" not in table:
        raise CofeeError("the preset has no 'corpus' section (cofee_lib/resources/presets.json); "
                         f"expected one of the kit's presets: {', '.join(PRESET_NAMES)}")
    pretrain = StageSettings.from_dict(table.get("pretrain", {}), where="the preset's pretrain section")
    settings = {"dumps": list(pretrain.dumps), "lang": "en", "min_anchors": pretrain.min_anchors,
                "max_len": pretrain.max_words, "workers": pretrain.dump_workers}
    settings.update({k: v for k, v in table["corpus"].items() if not k.startswith("_") and k != "about"})
    unknown = set(overrides) - set(settings)
    if unknown:
        raise CofeeError(f"unknown corpus settings: {', '.join(sorted(unknown))} (expected {', '.join(sorted(settings))})")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(settings["dumps"], str):
        settings["dumps"] = [settings["dumps"]]
    if not settings.get("limit_pages"):
        settings["limit_pages"] = None
    return settings


# --------------------------------------------------------------------------- D_g

def build_general_corpus(dumps, out, lang: str | None = "en", max_len: int = 250, min_anchors: int = 4,
                         sweep_from: int | None = None, limit_pages: int | None = None, workers: int = 1,
                         progress: bool = True) -> dict:
    """Write D_g (JSON lines, atomically) from the dumps, in order, and return its statistics.

    Each dump (a path, or ``embedded:enwiki`` / ``embedded:enwiki-tables``) is
    read once by :func:`cofee_lib.wiki.anchor_sentences` with
    ``min_anchors = min(sweep_from, min_anchors)``; the sentences with at least
    ``min_anchors`` anchors are written, so the file is exactly what
    :func:`cofee_lib.wiki.build_anchor_corpus` writes for each dump, concatenated.

    Returns a JSON-able dict:

    * ``counts``: :data:`COUNT_KEYS` summed over dumps. A sentence is counted
      once: kept, ``dropped_too_long`` (more than ``max_len`` tokens) or
      ``dropped_few_anchors`` (fewer than ``min_anchors``; a sentence that
      fails both is "too long" if it has at least ``sweep_from`` anchors, else
      "few anchors"). ``duplicate_ids``: records whose id an earlier dump
      already wrote (the same page in two dumps of one wiki); they are kept.
    * ``per_dump``: the counts of each dump.
    * ``anchor_histogram``: ``{anchors: sentences}`` over the sentences of at
      most ``max_len`` tokens with at least ``histogram_from`` anchors.
    * ``length_histogram``: ``{tokens: sentences}`` over the kept sentences.
    * ``histogram_from``, ``settings``.
    """
    dumps = [str(d) for d in ([dumps] if isinstance(dumps, (str, Path)) else dumps)]
    if not dumps:
        raise CofeeError("no dump given: expected a pages-articles .xml/.xml.bz2 path or embedded:enwiki")
    histogram_from = min(min_anchors, sweep_from if sweep_from is not None else min_anchors)
    if histogram_from < 1:
        raise CofeeError("sweep_from and min_anchors must be at least 1")
    from .wiki import anchor_sentences

    out = Path(out)
    if out.is_dir():
        raise InputError(out, None, "is a directory; expected an output .jsonl file path")
    out.parent.mkdir(parents=True, exist_ok=True)
    totals = dict.fromkeys(COUNT_KEYS, 0)
    per_dump, seen_ids = {}, set()
    anchors_hist, length_hist = Counter(), Counter()
    with atomic_open(out) as handle:
        for dump in dumps:
            stats: dict = {}
            counts = dict.fromkeys(COUNT_KEYS, 0)
            for rec in anchor_sentences(dump, lang=lang, max_len=max_len, min_anchors=histogram_from,
                                        workers=workers, limit_pages=limit_pages, progress=progress,
                                        stats=stats, spool_dir=out.parent):
                n_anchors = len(rec["spans"])
                anchors_hist[n_anchors] += 1
                if n_anchors < min_anchors:
                    counts["dropped_few_anchors"] += 1
                    continue
                counts["sentences_kept"] += 1
                counts["anchors_kept"] += n_anchors
                length_hist[len(rec["tokens"])] += 1
                if rec["id"] in seen_ids:
                    counts["duplicate_ids"] += 1
                seen_ids.add(rec["id"])
                handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
            for key in ("pages", "articles", "redirects", "sentences_seen", "anchors_seen", "dropped_too_long",
                        "targets_redirected"):
                counts[key] = stats[key]
            counts["dropped_few_anchors"] += stats["dropped_few_anchors"]
            per_dump[dump] = counts
            for key in COUNT_KEYS:
                totals[key] += counts[key]
    return {"counts": totals, "per_dump": per_dump, "histogram_from": histogram_from,
            "anchor_histogram": {str(k): v for k, v in sorted(anchors_hist.items())},
            "length_histogram": {str(k): v for k, v in sorted(length_hist.items())},
            "settings": {"dumps": dumps, "lang": lang, "max_len": max_len, "min_anchors": min_anchors,
                         "limit_pages": limit_pages}}


def general_corpus_key(dumps, lang: str | None = "en", min_anchors: int = 4, max_len: int = 250,
                       limit_pages: int | None = None) -> dict:
    """The cache key of D_g: the one :func:`cofee_lib.pipeline.build_corpora` uses (plus ``limit_pages`` when set)."""
    key = {"dumps": [str(d) for d in dumps], "lang": lang, "min_anchors": min_anchors, "max_len": max_len}
    if limit_pages:
        key["limit_pages"] = limit_pages
    return key


def general_corpus(work_dir, dumps, lang: str | None = "en", max_len: int = 250, min_anchors: int = 4,
                   sweep_from: int | None = None, limit_pages: int | None = None, workers: int = 1,
                   progress: bool = True) -> dict:
    """D_g at ``<work_dir>/corpus/D_g.jsonl``, built by :func:`build_general_corpus` unless cached.

    The cache (:mod:`cofee_lib.cache`) uses :func:`general_corpus_key`, so a
    D_g built here is reused by ``cofee pretrain`` and vice versa. A cached
    copy without the statistics asked for (built by ``cofee pretrain``, or with
    a higher ``sweep_from``) is rebuilt. Returns the statistics with ``path``
    added (the absolute path of D_g).
    """
    from . import cache

    path = Path(work_dir).joinpath(*D_G_NAME)
    key = general_corpus_key(dumps, lang, min_anchors, max_len, limit_pages)
    wanted_from = min(min_anchors, sweep_from or min_anchors)
    info = cache.lookup(path, key)
    if info is not None and info.get("histogram_from", wanted_from + 1) > wanted_from:
        path.unlink()  # cached, but without the statistics asked for: build again
    info = cache.cached_file(path, key, lambda p: build_general_corpus(
        dumps, p, lang=lang, max_len=max_len, min_anchors=min_anchors, sweep_from=sweep_from,
        limit_pages=limit_pages, workers=workers, progress=progress))
    return {**info, "path": str(path)}


def min_anchors_sweep(anchor_histogram: dict, thresholds) -> list[dict]:
    """Sentences and anchors D_g keeps for each ``min_anchors`` threshold, from one pass's histogram.

    ``anchor_histogram`` is ``{anchors: sentences}`` (keys may be strings, as
    read back from JSON). A threshold below the histogram's smallest anchor
    count cannot be answered from it and raises :class:`CofeeError`.
    """
    hist = {int(k): int(v) for k, v in anchor_histogram.items()}
    low = min(hist) if hist else 1
    rows = []
    for k in thresholds:
        if int(k) < low:
            raise CofeeError(f"min_anchors={k} is below the smallest anchor count in the histogram ({low}): "
                             f"build D_g with sweep_from={k}")
        kept = {a: n for a, n in hist.items() if a >= int(k)}
        rows.append({"min_anchors": int(k), "sentences": sum(kept.values()),
                     "anchors": sum(a * n for a, n in kept.items())})
    return rows
