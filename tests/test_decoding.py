"""Decoders (MRC start/end, BIO) and window planning, on hand-made inputs."""
import random

import pytest

from cofee_lib.backbones.decoding import bio_labels, decode_bio, decode_start_end, encode_bio
from cofee_lib.backbones.windows import centrality, plan_windows, span_window, word_windows


# ---------------------------------------------------------------- MRC decoding
def test_start_pairs_with_nearest_end_before_next_start():
    start = [0.9, 0.1, 0.1, 0.8, 0.1, 0.1]
    end = [0.1, 0.7, 0.9, 0.1, 0.1, 0.9]
    # start 0 -> nearest end 1 (not 2); start 3 -> end 5
    assert decode_start_end(start, end) == [(0, 1), (3, 5)]


def test_end_at_or_after_next_start_is_not_taken():
    # start 0 has no end before start 2; start 2 ends at 2 (same word)
    assert decode_start_end([0.9, 0.0, 0.9, 0.0], [0.0, 0.0, 0.9, 0.9]) == [(2, 2)]


def test_single_word_span_and_no_end():
    assert decode_start_end([0.6], [0.6]) == [(0, 0)]
    assert decode_start_end([0.9, 0.1], [0.1, 0.1]) == []
    assert decode_start_end([], []) == []


def test_threshold_is_strict_and_adjustable():
    start, end = [0.5, 0.2], [0.2, 0.5]
    assert decode_start_end(start, end, threshold=0.5) == []          # P must exceed the threshold
    # self-picking delta 0.1: both words are now starts and ends
    assert decode_start_end(start, end, threshold=0.1) == [(0, 0), (1, 1)]
    assert decode_start_end([0.3, 0.05], [0.05, 0.3], threshold=0.1) == [(0, 1)]


def test_max_span_len_caps_spans():
    start = [0.9] + [0.0] * 9
    end = [0.0] * 9 + [0.9]
    assert decode_start_end(start, end, max_span_len=10) == [(0, 9)]
    assert decode_start_end(start, end, max_span_len=9) == []


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        decode_start_end([0.9], [0.9, 0.1])


# ---------------------------------------------------------------- BIO
TYPES = ["PER", "LOC"]


def test_bio_labels_layout():
    assert bio_labels(TYPES) == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_decode_bio_valid_and_repaired():
    O, BP, IP, BL, IL = range(5)
    assert decode_bio([BP, IP, O, BL], TYPES) == [(0, 1, "PER"), (3, 3, "LOC")]
    # I- after O begins an entity (conlleval repair); I-LOC after PER begins a LOC
    assert decode_bio([O, IP, IP, IL], TYPES) == [(1, 2, "PER"), (3, 3, "LOC")]
    # B- always begins a new entity, even after the same type
    assert decode_bio([BP, BP, IP], TYPES) == [(0, 0, "PER"), (1, 2, "PER")]
    assert decode_bio([IL], TYPES) == [(0, 0, "LOC")]
    assert decode_bio([], TYPES) == []


def test_encode_decode_round_trip_random():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(0, 15)
        spans, w = [], 0
        while w < n:
            if rng.random() < 0.3:
                e = min(n - 1, w + rng.randint(0, 3))
                spans.append((w, e, rng.choice(TYPES)))
                w = e + 1
            else:
                w += 1
        assert decode_bio(encode_bio(n, spans, TYPES), TYPES) == spans


def test_encode_bio_skips_overlaps_and_unknown_types():
    tags = encode_bio(5, [[0, 2, "PER"], [1, 1, "LOC"], [3, 4, "MISC"]], TYPES)
    assert tags == [1, 2, 2, 0, 0]


# ---------------------------------------------------------------- windows
def _check_plan(lengths, budget, overlap):
    wins = plan_windows(lengths, budget, overlap)
    covered = set()
    for a, b in wins:
        assert a < b
        assert sum(lengths[a:b]) <= budget or b - a == 1      # a lone over-long word may exceed
        covered.update(range(a, b))
    assert covered == set(range(len(lengths)))
    for (a1, b1), (a2, b2) in zip(wins, wins[1:]):
        assert a1 < a2 <= b1                                   # advance, no gap
    return wins


def test_plan_windows_covers_and_respects_budget():
    rng = random.Random(1)
    for _ in range(200):
        lengths = [rng.randint(1, 5) for _ in range(rng.randint(1, 120))]
        _check_plan(lengths, budget=rng.randint(5, 40), overlap=rng.randint(0, 20))


def test_plan_windows_overlap_and_short_context():
    assert plan_windows([1] * 5, 10, 3) == [(0, 5)]
    wins = plan_windows([1] * 10, 4, 2)
    assert wins == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert plan_windows([], 4, 2) == [(0, 0)]
    assert plan_windows([1, 50, 1], 4, 2) == [(0, 1), (1, 2), (2, 3)]    # over-long word alone


def test_word_windows_picks_most_central():
    wins = [(0, 4), (2, 6), (4, 8)]
    owners = word_windows(8, wins)
    assert owners == [0, 0, 0, 1, 1, 2, 2, 2]      # ties go to the earlier window
    for w, i in enumerate(owners):
        assert centrality(w, wins[i]) == max(centrality(w, win) for win in wins)
    assert centrality(9, (0, 4)) == -1


def test_span_window():
    wins = [(0, 4), (2, 6), (4, 8)]
    assert span_window(3, 4, wins) == 1          # central in the second window
    assert span_window(2, 3, wins) == 0          # tie: the earlier window
    assert span_window(0, 0, wins) == 0
    assert span_window(3, 5, wins) == 1
    assert span_window(1, 6, wins) is None       # no window holds it whole
