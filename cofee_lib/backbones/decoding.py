"""Word-level decoders: MRC start/end probabilities and BIO tag ids -> spans.

All spans are ``(start, end, type)`` with word indices and an **inclusive** end.
"""
from __future__ import annotations

from typing import Sequence

from ..settings import DEFAULT_THRESHOLD


def decode_start_end(start_probs: Sequence[float], end_probs: Sequence[float], threshold: float = DEFAULT_THRESHOLD,
                     max_span_len: int = 30) -> list[tuple[int, int]]:
    """MRC decoding (paper Sec. 3) for one type over one sentence.

    Candidate starts are words with ``P(start) > threshold``, candidate ends
    words with ``P(end) > threshold``. Each start is paired with the nearest
    candidate end at or after it and before the next candidate start; the pair
    is kept if the span is at most ``max_span_len`` words long. A start with no
    such end gives no span. Returns ``[(start, end), ...]`` sorted.
    """
    n = len(start_probs)
    if len(end_probs) != n:
        raise ValueError(f"start and end probabilities differ in length ({n} vs {len(end_probs)})")
    starts = [i for i in range(n) if start_probs[i] > threshold]
    is_end = [p > threshold for p in end_probs]
    spans = []
    for k, s in enumerate(starts):
        limit = starts[k + 1] if k + 1 < len(starts) else n      # exclusive
        limit = min(limit, s + max_span_len)
        for e in range(s, limit):
            if is_end[e]:
                spans.append((s, e))
                break
    return spans


def bio_labels(types: Sequence[str]) -> list[str]:
    """The tagger's label list: ``["O", "B-T1", "I-T1", "B-T2", ...]`` (2|types|+1)."""
    labels = ["O"]
    for t in types:
        labels += [f"B-{t}", f"I-{t}"]
    return labels


def decode_bio(tag_ids: Sequence[int], types: Sequence[str]) -> list[tuple[int, int, str]]:
    """Decode BIO tag ids (see :func:`bio_labels`) into spans, repairing invalid IOB2.

    Repair rule (the conlleval convention): an ``I-X`` that does not continue an
    entity of type ``X`` (after ``O``, at the start, or after another type)
    begins a new ``X`` entity instead of being dropped. ``B-X`` always begins a
    new entity.
    """
    spans = []
    cur_type, cur_start = None, None
    for i, tid in enumerate(tag_ids):
        tid = int(tid)
        if tid <= 0:
            role, typ = "O", None
        else:
            role, typ = ("B" if tid % 2 == 1 else "I"), types[(tid - 1) // 2]
        if role == "I" and cur_type == typ:
            continue
        if cur_type is not None:
            spans.append((cur_start, i - 1, cur_type))
            cur_type = None
        if role in ("B", "I"):
            cur_type, cur_start = typ, i
    if cur_type is not None:
        spans.append((cur_start, len(tag_ids) - 1, cur_type))
    return spans


def encode_bio(n_words: int, spans, types: Sequence[str]) -> list[int]:
    """BIO tag ids for ``n_words`` words from ``spans`` ``(start, end, type)``.

    Types not in ``types`` are ignored. BIO cannot express nested or
    overlapping entities: a span overlapping an earlier one (in sorted order) is
    left out.
    """
    index = {t: i for i, t in enumerate(types)}
    tags = [0] * n_words
    for s, e, t in sorted((int(s), int(e), str(t)) for s, e, t in spans):
        if t not in index or any(tags[w] for w in range(s, e + 1)):
            continue
        b = 1 + 2 * index[t]
        tags[s] = b
        for w in range(s + 1, e + 1):
            tags[w] = b + 1
    return tags
