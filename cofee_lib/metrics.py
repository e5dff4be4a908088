"""Entity-level exact-match micro precision, recall and F1 (paper Sec. 5.5).

A predicted entity counts as correct only when its start, its (inclusive)
end and its type all equal a gold entity's. Spans are word-level. Gold and
predicted records are paired by ``id``.
"""
from __future__ import annotations

from collections import Counter

from .errors import CofeeError
from .records import spans_of


def prf(tp: int, n_pred: int, n_gold: int) -> dict:
    """Precision, recall and F1 from counts; 0.0 where a denominator is 0."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "n_pred": n_pred, "n_gold": n_gold}


def evaluate_spans(gold: list[set], pred: list[set]) -> dict:
    """Score aligned lists of span sets: micro P/R/F1 overall and per type."""
    if len(gold) != len(pred):
        raise CofeeError(f"gold has {len(gold)} sentences but predictions have {len(pred)}")
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        for span in g:
            n_gold[span[2]] += 1
        for span in p:
            n_pred[span[2]] += 1
        for span in g & p:
            tp[span[2]] += 1
    types = sorted(set(n_gold) | set(n_pred))
    result = prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    result["per_type"] = {t: prf(tp[t], n_pred[t], n_gold[t]) for t in types}
    result["sentences"] = len(gold)
    return result


def evaluate_records(gold_records: list[dict], pred_records: list[dict]) -> dict:
    """Score predicted records against gold records, paired by ``id``.

    Every gold id must have a prediction (a record with no spans is fine);
    predictions for ids that are not in gold, and duplicate ids on either
    side, are an error.
    """
    pred_by_id = {}
    for rec in pred_records:
        if rec["id"] in pred_by_id:
            raise CofeeError(f"predictions have a duplicate id {rec['id']!r}; each sentence must be predicted once")
        pred_by_id[rec["id"]] = rec
    gold_ids = [rec["id"] for rec in gold_records]
    if len(set(gold_ids)) != len(gold_ids):
        seen = set()
        dup = next(i for i in gold_ids if i in seen or seen.add(i))
        raise CofeeError(f"gold has a duplicate id {dup!r}; sentence ids must be unique")
    missing = [i for i in gold_ids if i not in pred_by_id]
    if missing:
        raise CofeeError(f"{len(missing)} gold sentences have no prediction (first: {missing[0]!r})")
    extra = set(pred_by_id) - set(gold_ids)
    if extra:
        raise CofeeError(f"{len(extra)} predictions have no gold sentence (first: {sorted(extra)[0]!r})")
    for rec in gold_records:
        if len(pred_by_id[rec["id"]]["tokens"]) != len(rec["tokens"]):
            raise CofeeError(f"sentence {rec['id']!r}: prediction has {len(pred_by_id[rec['id']]['tokens'])} tokens, gold has {len(rec['tokens'])}")
    return evaluate_spans([spans_of(r) for r in gold_records], [spans_of(pred_by_id[r["id"]]) for r in gold_records])
