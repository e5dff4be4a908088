"""Entity-level exact-match micro precision, recall and F1 (paper Sec. 5.5).

A predicted entity counts as correct only when its start, its (inclusive)
end and its type all equal a gold entity's. Spans are word-level. Gold and
predicted records are paired by ``id`` and must have the same tokens; errors
name the file and line of the record at fault (see :func:`evaluate_records`).
"""
from __future__ import annotations

from collections import Counter

from .errors import CofeeError, InputError
from .records import RecordList, json_text, spans_of


def prf(tp: int, n_pred: int, n_gold: int) -> dict:
    """Precision, recall and F1 from counts; 0.0 where a denominator is 0."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "n_pred": n_pred, "n_gold": n_gold}


def evaluate_spans(gold: list[set], pred: list[set], per_sentence: bool = False) -> dict:
    """Score aligned lists of span sets: micro P/R/F1 overall and per type.

    ``per_sentence=True`` adds ``sentence_counts``: ``[tp, n_pred, n_gold]`` of each
    sentence, in order (what a bootstrap over sentences resamples, :mod:`cofee_lib.claims`).
    """
    if len(gold) != len(pred):
        raise CofeeError(f"gold has {len(gold)} sentences but predictions have {len(pred)}")
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    counts = []
    for g, p in zip(gold, pred):
        if per_sentence:
            counts.append([len(g & p), len(p), len(g)])
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
    if per_sentence:
        result["sentence_counts"] = counts
    return result


def _where(records, index: int, default: str) -> tuple[str, int | None]:
    """``(file, line)`` of ``records[index]`` when ``records`` was read by :func:`~cofee_lib.records.read_jsonl`."""
    if isinstance(records, RecordList):
        return records.where(index, default)
    return default, None


def _at(records, index: int, default: str) -> str:
    """``file:line`` of ``records[index]``, or ``<gold> record 3`` when the line is unknown."""
    path, line = _where(records, index, default)
    return f"{path}:{line}" if line is not None else f"{path} record {index}"


def _index_by_id(records: list[dict], side: str, what: str) -> dict[str, int]:
    """``{id: position}``; :class:`InputError` at the record for an id that is not a string, or repeated."""
    by_id: dict[str, int] = {}
    for index, rec in enumerate(records):
        rid = rec.get("id") if isinstance(rec, dict) else None
        if not isinstance(rid, str) or not isinstance(rec.get("tokens"), (list, tuple)):
            raise InputError(*_where(records, index, side), f"record {index} needs a string 'id' and a list of "
                             f"'tokens', got id {json_text(rid)}")
        if rid in by_id:
            raise InputError(*_where(records, index, side), f"{what} a duplicate id {rid!r} (first at "
                             f"{_at(records, by_id[rid], side)}); sentence ids must be unique, each sentence "
                             "predicted once")
        by_id[rid] = index
    return by_id


def check_same_tokens(gold: dict, pred: dict, pred_where: tuple, gold_at: str) -> None:
    """:class:`InputError` at ``pred_where`` when the tokens differ from gold's, naming the first differing one."""
    g, p = list(gold["tokens"]), list(pred["tokens"])
    if g == p:
        return
    k = next((i for i, (a, b) in enumerate(zip(g, p)) if a != b), min(len(g), len(p)))
    counts = "" if len(g) == len(p) else f"prediction has {len(p)} tokens, gold has {len(g)}; first difference: "
    raise InputError(*pred_where, f"sentence {gold['id']!r}: {counts}token {k} is "
                     f"{json_text(p[k]) if k < len(p) else 'missing'} in the prediction but "
                     f"{json_text(g[k]) if k < len(g) else 'missing'} in gold ({gold_at}); "
                     "a prediction must keep the tokens of its gold sentence")


def evaluate_records(gold_records: list[dict], pred_records: list[dict], per_sentence: bool = False) -> dict:
    """Score predicted records against gold records, paired by ``id``.

    Every gold id must have a prediction (a record with no spans is fine) with
    the same tokens; predictions for ids that are not in gold, and duplicate
    ids on either side, are an error. Errors are :class:`InputError` naming
    the file and line of the record at fault when the records come from
    :func:`~cofee_lib.records.read_jsonl` (a :class:`~cofee_lib.records.RecordList`),
    else ``<gold>`` / ``<predictions>`` and the record's index. ``per_sentence``: see
    :func:`evaluate_spans` (counts in the order of ``gold_records``).
    """
    gold_by_id = _index_by_id(gold_records, "<gold>", "gold has")
    pred_by_id = _index_by_id(pred_records, "<predictions>", "predictions have")
    missing = [i for i in gold_by_id if i not in pred_by_id]
    if missing:
        pred_path = _where(pred_records, 0, "<predictions>")[0]
        raise InputError(pred_path, None, f"{len(missing)} gold sentences have no prediction (first: "
                         f"{missing[0]!r}, {_at(gold_records, gold_by_id[missing[0]], '<gold>')})")
    extra = [i for i in pred_by_id if i not in gold_by_id]
    if extra:
        raise InputError(*_where(pred_records, pred_by_id[extra[0]], "<predictions>"),
                         f"{len(extra)} predictions have no gold sentence (first: {extra[0]!r})")
    for rid, gi in gold_by_id.items():
        pi = pred_by_id[rid]
        check_same_tokens(gold_records[gi], pred_records[pi], _where(pred_records, pi, "<predictions>"),
                          _at(gold_records, gi, "<gold>"))
    return evaluate_spans([spans_of(r) for r in gold_records],
                          [spans_of(pred_records[pred_by_id[r["id"]]]) for r in gold_records], per_sentence)
