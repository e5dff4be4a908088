"""The Gazetteer Matching baseline (paper Sec. 5.3) scored on a dataset's gold records.

The gazetteers alone as a NER system: :func:`cofee_lib.matching.match_records`
tags every sentence with the longest exact matches and
:func:`cofee_lib.metrics.evaluate_records` scores them (entity-level exact
match, micro P/R/F1 in [0, 1], overall and per type). Gold spans of types no
gazetteer has (CoNLL-2003's ``MISC``) are removed first, since no gazetteer
system could find them.

* :func:`matching_scores`: one list of gold records;
* :func:`score_matching`: several splits of several datasets, each with the
  gazetteer set named by :func:`cofee_lib.datasets.gazetteer_set`;
* :func:`gazetteer_coverage`: where the gazetteers miss, gold mention by gold
  mention (in the gazetteer of its type, of another type, of none);
* :func:`matching_against_paper`, :func:`paper_matching`: the kit's test
  scores beside the paper's Table 3 "Matching" rows, for the kit datasets
  that stand in for the paper's.
"""
from __future__ import annotations

from collections import Counter


def restrict_types(records, types) -> tuple[list[dict], Counter]:
    """Records with only the spans whose type is in ``types`` (new dicts), and a count of the spans removed by type."""
    from ..records import keep_types

    types = set(types)
    removed: Counter = Counter()
    records = list(records)
    for rec in records:
        removed.update(t for _, _, t in rec["spans"] if t not in types)
    return keep_types(records, types), removed


def matching_scores(gold_records, gazetteers, **options) -> dict:
    """Score the Gazetteer Matching baseline (paper Sec. 5.3) on gold records.

    Gold spans of types no gazetteer has (CoNLL-2003 ``MISC``) are removed
    first, as the baseline cannot predict them (``removed_gold`` counts them);
    then :func:`cofee_lib.matching.match_records` tags the sentences and
    :func:`cofee_lib.metrics.evaluate_records` scores them: entity-level exact
    match, micro P/R/F1 in [0, 1], overall and per type. ``gazetteers`` is a
    ``{type: entries}`` mapping or a :class:`~cofee_lib.matching.GazetteerMatcher`.
    """
    from ..matching import GazetteerMatcher, match_records
    from ..metrics import evaluate_records

    types = set(gazetteers.priority) if isinstance(gazetteers, GazetteerMatcher) else set(gazetteers)
    gold, removed = restrict_types(gold_records, types)
    scores = evaluate_records(gold, match_records(gold, gazetteers, **options))
    scores["removed_gold"] = dict(sorted(removed.items()))
    return scores


def gazetteer_coverage(gold_records, gazetteers, examples: int = 8, **options) -> dict:
    """Each gold mention looked up whole, as D_s and Matching look up a surface: which gazetteer holds it.

    Per gold type (types no gazetteer has are skipped): ``mentions``; ``own`` (an entry of that
    type), ``other`` (an entry of another type only, with ``other_types`` counted), ``ambiguous``
    (an entry of several types, which the kit leaves untyped) and ``none``; ``one_token`` (mentions
    of one token); ``own_share``; and the ``examples`` most frequent surfaces found under another
    type and under none (``missed_other``, ``missed_none``: ``[surface, count]``).
    """
    from ..matching import GazetteerMatcher

    matcher = gazetteers if isinstance(gazetteers, GazetteerMatcher) else GazetteerMatcher(gazetteers, **options)
    types = list(matcher.priority)
    out: dict = {t: Counter() for t in types}
    other_types: dict = {t: Counter() for t in types}
    missed: dict = {(t, k): Counter() for t in types for k in ("other", "none")}
    for rec in gold_records:
        for start, end, gold in rec["spans"]:
            if gold not in out:
                continue
            surface = rec["tokens"][start:end + 1]
            found = matcher.entry_type(surface)
            kind = ("own" if found == gold else "other" if found is not None
                    else "ambiguous" if matcher.is_entry(surface) else "none")
            out[gold].update({"mentions": 1, kind: 1, "one_token": int(start == end)})
            if kind == "other":
                other_types[gold][found] += 1
            if kind in ("other", "none"):
                missed[gold, kind][" ".join(surface)] += 1
    result = {}
    for t in types:
        c = out[t]
        result[t] = {**{k: c[k] for k in ("mentions", "own", "other", "ambiguous", "none", "one_token")},
                     "own_share": c["own"] / c["mentions"] if c["mentions"] else None,
                     "other_types": dict(other_types[t].most_common()),
                     "missed_other": [list(x) for x in missed[t, "other"].most_common(examples)],
                     "missed_none": [list(x) for x in missed[t, "none"].most_common(examples)]}
    return result


def score_matching(plan: dict, gazetteers: dict, progress: bool = True, **options) -> dict:
    """``{dataset: {split: scores}}`` of the Matching baseline for ``plan`` (``{dataset: [splits]}``).

    Each dataset is scored with ``gazetteers[gazetteer_set(dataset)]``
    (``en-wnut16``, ``zh-msra``: a :class:`~cofee_lib.gazetteers.Gazetteers`
    or ``{type: entries}``); a dataset whose set is not in ``gazetteers`` is
    left out (and not read). One matcher is built per set.
    """
    from ..matching import GazetteerMatcher
    from . import gazetteer_set, load_splits

    matchers: dict = {}
    scores = {}
    for name, splits in plan.items():
        set_name = gazetteer_set(name)
        if set_name not in gazetteers:
            continue
        if set_name not in matchers:
            matchers[set_name] = GazetteerMatcher(gazetteers[set_name])
        gold = load_splits(name, splits, progress=progress)
        scores[name] = {split: matching_scores(records, matchers[set_name], **options)
                        for split, records in gold.items()}
    return scores


def paper_matching(numbers: dict, among) -> dict:
    """The paper's Table 3 "Matching" rows (``{P, R, F1}`` in percent) of the paper's datasets
    that a dataset of ``among`` stands in for; ``{paper dataset: row}``.

    ``numbers``: :func:`cofee_lib.paper.paper_numbers`.
    """
    from . import stand_ins

    return {name: numbers["table3"][name]["Matching"] for name in stand_ins(numbers["datasets"], among)}


def matching_against_paper(table, numbers: dict, split: str = "test"):
    """The paper's Matching row beside the kit's (the ``ALL`` row of ``split``), for each stand-in; a DataFrame.

    ``table``: :func:`cofee_lib.display.scores_frame` of :func:`score_matching`'s
    result (P/R/F1 in percent); ``numbers``: :func:`cofee_lib.paper.paper_numbers`.
    Rows ``paper: <its name>`` and ``kit: <dataset> <split>``, columns P, R, F1.
    """
    import pandas as pd

    from . import stand_ins

    rows = {}
    for paper_name, kit_name in stand_ins(numbers["datasets"], set(table["dataset"])).items():
        paper_row = numbers["table3"][paper_name]["Matching"]
        rows[f"paper: {numbers['datasets'][paper_name]['name']}"] = pd.Series(
            {k: float(paper_row[k]) for k in ("P", "R", "F1")}, name="Matching")
        kit = table[(table["dataset"] == kit_name) & (table["split"] == split) & (table["type"] == "ALL")]
        rows[f"kit: {kit_name} {split}"] = kit[["P", "R", "F1"]].iloc[0]
    return pd.DataFrame(rows).T
