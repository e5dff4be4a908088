"""Overlapping windows of whole words, and which window scores each word.

A context of ``n`` words whose sub-token lengths are ``lengths`` is cut into
windows ``(start, stop)`` of word indices (``stop`` exclusive, as in Python
slices) such that each window holds at most ``budget`` sub-tokens and
consecutive windows overlap by about ``overlap`` sub-tokens (whole words, at
most the window minus one word, so windows always advance). Every word is in
at least one window; nothing is truncated. A single word longer than the
budget gets a window of its own (its first sub-tokens are kept by the encoder's
truncation; its first sub-token, where labels sit, always is).

At prediction time each word takes its scores from the window where it is
**most central**: the window maximising ``min(w - start, stop - 1 - w)``
(ties: the earlier window). A span is assigned, for FET, to the window that
holds it whole with the largest ``min(s - start, stop - 1 - e)``.
"""
from __future__ import annotations

from typing import Sequence


def plan_windows(lengths: Sequence[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Split words with sub-token ``lengths`` into windows of at most ``budget`` sub-tokens.

    Returns ``[(start, stop), ...]`` word ranges, stop exclusive. An empty
    context gives one empty window ``[(0, 0)]`` (a feature is still made, so
    that every record gets a prediction).
    """
    if budget < 1:
        raise ValueError(f"window budget must be at least 1 sub-token, got {budget}")
    n = len(lengths)
    if n == 0:
        return [(0, 0)]
    windows = []
    start = 0
    while True:
        stop, total = start, 0
        while stop < n and total + lengths[stop] <= budget:
            total += lengths[stop]
            stop += 1
        if stop == start:          # one word longer than the whole budget
            stop = start + 1
        windows.append((start, stop))
        if stop >= n:
            return windows
        nxt, shared = stop, 0
        while nxt - 1 > start and shared + lengths[nxt - 1] <= overlap:
            nxt -= 1
            shared += lengths[nxt]
        start = nxt


def centrality(word: int, window: tuple[int, int]) -> int:
    """How far ``word`` is from the nearer edge of ``window`` (in words); -1 if outside."""
    start, stop = window
    if not (start <= word < stop):
        return -1
    return min(word - start, stop - 1 - word)


def span_window(start: int, end: int, windows: Sequence[tuple[int, int]]) -> int | None:
    """Index of the window holding the span ``[start, end]`` (inclusive) whole, most
    centrally; ``None`` if no window holds it whole."""
    best, best_score = None, -1
    for i, (a, b) in enumerate(windows):
        if a <= start and end < b:
            score = min(start - a, b - 1 - end)
            if score > best_score:
                best, best_score = i, score
    return best


def word_windows(n_words: int, windows: Sequence[tuple[int, int]]) -> list[int]:
    """For each word, the index of the window where it is most central."""
    owner = [-1] * n_words
    best = [-1] * n_words
    for i, (a, b) in enumerate(windows):
        for w in range(a, min(b, n_words)):
            c = min(w - a, b - 1 - w)
            if c > best[w]:
                best[w], owner[w] = c, i
    return owner
