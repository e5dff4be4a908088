"""Token-level gazetteer matching: the Matching baseline and D_s (cofee_lib.matching)."""
from __future__ import annotations

import json
import random
import unicodedata
from collections import Counter

import pytest

from cofee_lib import matching
from cofee_lib.cli import main
from cofee_lib.gazetteers import Gazetteers, load_gazetteers, write_gazetteers
from cofee_lib.matching import GazetteerMatcher, label_anchors, match_records
from cofee_lib.records import read_jsonl


def find(gaz, text, **options):
    tokens = text.split() if isinstance(text, str) else text
    return GazetteerMatcher(gaz, **options).find(tokens)


def test_longest_match_wins():
    gaz = {"LOC": {"New York"}, "ORG": {"New York Stock Exchange"}}
    assert find(gaz, "shares on the New York Stock Exchange rose") == [(3, 6, "ORG")]
    assert find(gaz, "he left New York today") == [(2, 3, "LOC")]


def test_token_boundaries_are_respected():
    gaz = {"LOC": {"New York", "York"}}
    assert find(gaz, "a New Yorker said") == []
    assert find(gaz, "Yorkshire and NewYork") == []
    assert find(gaz, "New York York") == [(0, 1, "LOC"), (2, 2, "LOC")]


def test_ties_go_leftmost_and_adjacent_matches_are_kept():
    gaz = {"LOC": {"A B"}, "ORG": {"B C"}}
    assert find(gaz, "A B C") == [(0, 1, "LOC")]
    assert find({"LOC": {"Paris", "London"}}, "Paris London") == [(0, 0, "LOC"), (1, 1, "LOC")]


def test_multi_type_entries_skip_or_priority():
    gaz = {"PER": {"Jordan"}, "LOC": {"Jordan", "Amman"}}
    assert find(gaz, "Jordan visited Amman") == [(2, 2, "LOC")]  # default: ambiguous -> skip
    assert find(gaz, "Jordan visited Amman", conflicts="priority") == [(0, 0, "PER"), (2, 2, "LOC")]
    assert find(gaz, "Jordan", conflicts="priority", priority=["LOC", "PER"]) == [(0, 0, "LOC")]
    with pytest.raises(Exception, match="conflicts"):
        GazetteerMatcher(gaz, conflicts="vote")


def test_skipped_ambiguous_match_still_blocks_shorter_ones():
    gaz = {"LOC": {"Washington"}, "ORG": {"Washington Post"}, "PER": {"Washington Post"}}
    assert find(gaz, "the Washington Post said") == []
    assert find(gaz, "the Washington Post said", conflicts="priority") == [(1, 2, "PER")]


def test_case_normalisation_options():
    gaz = {"LOC": {"New York"}}
    assert find(gaz, "in new york") == []
    assert find(gaz, "in new york", case_sensitive=False) == [(1, 2, "LOC")]
    assert find(gaz, "NEW YORK ( Reuters )") == []
    assert find(gaz, "NEW YORK ( Reuters )", all_caps_title=True) == [(0, 1, "LOC")]
    # the options come from a Gazetteers object's provenance when not given
    assert find(Gazetteers(gaz, all_caps_title=True), "NEW YORK") == [(0, 1, "LOC")]


def test_unicode_nfc_normalisation():
    composed = unicodedata.normalize("NFC", "Zürich")
    decomposed = unicodedata.normalize("NFD", "Zürich")
    assert composed != decomposed
    assert find({"LOC": {composed}}, [decomposed, "is"]) == [(0, 0, "LOC")]
    assert find({"LOC": {decomposed}}, [composed]) == [(0, 0, "LOC")]


def test_chinese_characters_are_tokens():
    gaz = Gazetteers({"LOC": {"北京", "北京市"}, "ORG": {"北京大学"}}, lang="zh")
    assert find(gaz, list("他在北京大学和北京市工作")) == [(2, 5, "ORG"), (7, 9, "LOC")]
    assert find(gaz, list("北")) == []
    assert find(dict(gaz), list("在北京市")) == [(1, 3, "LOC")]  # a plain dict: the language is guessed


def test_matches_never_cross_sentences_or_chunks(monkeypatch):
    gaz = {"LOC": {"A B", "C"}}
    matcher = GazetteerMatcher(gaz)
    sentences = [["x", "A"], ["B", "y"], [], ["A", "B"], ["C"]]
    expected = [[], [], [], [(0, 1, "LOC")], [(0, 0, "LOC")]]
    assert matcher.find_many(sentences) == expected
    monkeypatch.setattr(matching, "CHUNK", 2)
    assert matcher.find_many(sentences) == expected


def _reference_find(entries, tokens):
    """Brute force: every (start, end) whose tokens are an entry; longest first, then leftmost."""
    cands = [(s, e, entries[tuple(tokens[s:e + 1])]) for s in range(len(tokens)) for e in range(s, len(tokens))
             if tuple(tokens[s:e + 1]) in entries]
    chosen = []
    for s, e, types in sorted(cands, key=lambda c: (c[0] - c[1], c[0])):
        if all(e < cs or s > ce for cs, ce, _ in chosen):
            chosen.append((s, e, types))
    return sorted((s, e, next(iter(t))) for s, e, t in chosen if len(t) == 1)


def test_agrees_with_brute_force_on_random_text_with_wide_codes():
    rng = random.Random(7)
    words = [f"w{i}" for i in range(6000)]  # > 64**2 distinct entry tokens: three-letter codes
    gaz = {t: set() for t in ("PER", "LOC", "ORG")}
    for _ in range(9000):
        gaz[rng.choice(list(gaz))].add(" ".join(rng.choice(words) for _ in range(rng.choice([1, 1, 2, 3]))))
    matcher = GazetteerMatcher(gaz)
    assert matcher.width == 3
    common = words[:40]  # a small pool so that entries actually occur in the text
    for name in list(gaz["LOC"])[:50]:
        common.extend(name.split())
    sentences = [[rng.choice(common) if rng.random() < 0.8 else f"oov{rng.randrange(9)}"
                  for _ in range(rng.randrange(0, 25))] for _ in range(400)]
    found = matcher.find_many(sentences)
    assert sum(len(f) for f in found) > 50
    entries = {}
    for gaz_type, names in gaz.items():
        for name in names:
            entries.setdefault(tuple(name.split()), set()).add(gaz_type)
    for tokens, got in zip(sentences, found):
        assert got == _reference_find(entries, tokens)


def test_empty_gazetteers_match_nothing():
    assert find({"LOC": set()}, "New York") == []


def test_match_records_ignores_gold_and_keeps_ids_and_tokens():
    gaz = {"LOC": {"Paris"}, "PER": {"Marie Curie"}}
    records = [{"id": "s1", "tokens": ["Marie", "Curie", "left", "Paris"], "spans": [[0, 0, "MISC"]]},
               {"id": "s2", "tokens": ["nothing", "here"], "spans": [[0, 1, "ORG"]], "targets": ["x"]}]
    out = match_records(records, gaz)
    assert out == [{"id": "s1", "tokens": ["Marie", "Curie", "left", "Paris"], "spans": [[0, 1, "PER"], [3, 3, "LOC"]]},
                   {"id": "s2", "tokens": ["nothing", "here"], "spans": []}]


def _dg_records():
    return [
        {"id": "d1", "tokens": "Curie was born in Warsaw , Poland and worked in Paris".split(),
         "spans": [[0, 0, "Entity"], [4, 4, "Entity"], [6, 6, "Entity"], [10, 10, "Entity"]],
         "targets": ["Marie Curie", "Warsaw", "Poland", "Paris"]},
        {"id": "d2", "tokens": "The Sorbonne is a university".split(), "spans": [[1, 1, "Entity"]],
         "targets": ["Sorbonne"]},
        {"id": "d3", "tokens": "Siemens AG and Poland".split(), "spans": [[0, 1, "Entity"], [3, 3, "Entity"]],
         "targets": ["Siemens", "Poland"]},
    ]


def test_label_anchors_types_matched_anchors_and_drops_the_rest():
    gaz = {"LOC": {"Warsaw", "Poland", "Paris"}, "ORG": {"Siemens AG", "Siemens"}}
    counts = Counter()
    out = label_anchors(_dg_records(), gaz, counts=counts)
    assert [r["id"] for r in out] == ["d1", "d3"]  # d2: no anchor matched -> left out
    assert out[0]["spans"] == [[4, 4, "LOC"], [6, 6, "LOC"], [10, 10, "LOC"]]
    assert out[0]["targets"] == ["Warsaw", "Poland", "Paris"]  # the unmatched anchor's target is dropped too
    assert out[1]["spans"] == [[0, 1, "ORG"], [3, 3, "LOC"]] and out[1]["targets"] == ["Siemens", "Poland"]
    assert counts["sentences_in"] == 3 and counts["sentences_out"] == 2
    assert counts["anchors_in"] == 7 and counts["anchors_matched"] == 5
    assert counts["matched:LOC"] == 4 and counts["matched:ORG"] == 1


def test_label_anchors_needs_the_whole_anchor_to_be_an_entry():
    gaz = {"LOC": {"Poland"}, "PER": {"Poland"}, "ORG": {"Siemens"}}
    counts = Counter()
    out = label_anchors(_dg_records(), gaz, counts=counts)
    # "Siemens AG" is not exactly an entry; "Poland" is ambiguous and skipped
    assert out == [] and counts["anchors_ambiguous"] == 2
    out = label_anchors(_dg_records(), gaz, conflicts="priority")
    assert [(r["id"], r["spans"]) for r in out] == [("d1", [[6, 6, "PER"]]), ("d3", [[3, 3, "PER"]])]


# ----------------------------------------------------------------------------- command line

@pytest.fixture()
def gaz_dir(tmp_path):
    directory = tmp_path / "gaz"
    write_gazetteers(directory, {"LOC": ["Paris", "Warsaw", "Poland"], "ORG": ["Siemens AG"], "PER": ["Marie Curie"]},
                     {"lang": "en", "case_sensitive": True})
    return directory


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_cli_match_writes_predictions(tmp_path, gaz_dir, capsys):
    data = tmp_path / "data.jsonl"
    _write_jsonl(data, [{"id": "a", "tokens": "Marie Curie left Paris".split(), "spans": [[0, 1, "PER"]]}])
    out = tmp_path / "pred.jsonl"
    assert main(["match", "--gazetteers", str(gaz_dir), "--data", str(data), "--out", str(out)]) == 0
    assert read_jsonl(out) == [{"id": "a", "tokens": "Marie Curie left Paris".split(),
                                "spans": [[0, 1, "PER"], [3, 3, "LOC"]]}]
    assert "2 matches" in capsys.readouterr().out


def test_cli_match_reads_conll_columns(tmp_path, gaz_dir):
    data = tmp_path / "data.conll"
    data.write_text("Marie\tB-PER\nCurie\tI-PER\nleft\tO\nParis\tB-LOC\n", encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    assert main(["match", "--gazetteers", str(gaz_dir), "--data", str(data), "--out", str(out)]) == 0
    assert read_jsonl(out)[0]["spans"] == [[0, 1, "PER"], [3, 3, "LOC"]]


def test_cli_match_missing_gazetteers_exits_2_and_writes_nothing(tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    _write_jsonl(data, [{"id": "a", "tokens": ["x"], "spans": []}])
    out = tmp_path / "pred.jsonl"
    assert main(["match", "--gazetteers", str(tmp_path / "nope"), "--data", str(data), "--out", str(out)]) == 2
    assert "gazetteer directory not found" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == [data]


def test_cli_match_bad_data_exits_2_and_writes_nothing(tmp_path, gaz_dir, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text('{"id": "a", "tokens": ["x"], "spans": []}\n{"id": "b", "tokens": [\n', encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    assert main(["match", "--gazetteers", str(gaz_dir), "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{data}:2" in err and "not valid JSON" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "gaz"]


def test_cli_corpus_match_streams_and_reports(tmp_path, gaz_dir, capsys):
    corpus = tmp_path / "dg.jsonl"
    _write_jsonl(corpus, _dg_records())
    out = tmp_path / "ds.jsonl"
    assert main(["corpus", "match", "--corpus", str(corpus), "--gazetteers", str(gaz_dir), "--out", str(out),
                 "--quiet"]) == 0
    got = read_jsonl(out)
    assert [r["id"] for r in got] == ["d1", "d3"]
    assert got[1]["spans"] == [[0, 1, "ORG"], [3, 3, "LOC"]]
    text = capsys.readouterr().out
    assert "sentences in" in text and "anchors LOC" in text and "anchors ORG" in text


def test_cli_corpus_match_bad_line_exits_2_and_writes_nothing(tmp_path, gaz_dir, capsys):
    corpus = tmp_path / "dg.jsonl"
    lines = [json.dumps(r) for r in _dg_records()] + ['{"id": "bad", "tokens": ["a"], "spans": [[0, 3, "Entity"]]}']
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "ds.jsonl"
    assert main(["corpus", "match", "--corpus", str(corpus), "--gazetteers", str(gaz_dir), "--out", str(out),
                 "--quiet"]) == 2
    assert f"{corpus}:4" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["dg.jsonl", "gaz"]


# ----------------------------------------------------------------------------- real data (slow)

@pytest.mark.slow
def test_matching_baseline_on_real_wnut16_dev(tmp_path):
    from cofee_lib.datasets import load_dataset, load_train
    from cofee_lib.gazetteers import build_gazetteers
    from cofee_lib.metrics import evaluate_records

    gaz, provenance = build_gazetteers("en", target="wnut16", load_train=load_train)
    write_gazetteers(tmp_path / "gaz", gaz, provenance)
    dev = load_dataset("wnut16", "dev", progress=False)
    result = evaluate_records(dev, match_records(dev, load_gazetteers(tmp_path / "gaz")))
    assert result["n_pred"] > 10
    assert result["f1"] > 0.0
    assert result["precision"] > 0.2  # exact matching is precise; recall is what it lacks


@pytest.mark.slow
def test_matching_speed_on_conll2003_train(tmp_path):
    import time

    from cofee_lib.datasets import load_dataset, load_train
    from cofee_lib.gazetteers import build_gazetteers

    gaz, provenance = build_gazetteers("en", target="conll2003", load_train=load_train)
    matcher = GazetteerMatcher(Gazetteers({t: set(v) for t, v in gaz.items()}, all_caps_title=True))
    records = load_dataset("conll2003", "train", progress=False)
    n_tokens = sum(len(r["tokens"]) for r in records)
    start = time.perf_counter()
    predictions = match_records(records, matcher)
    rate = n_tokens / (time.perf_counter() - start)
    assert sum(len(r["spans"]) for r in predictions) > 1000
    assert rate > 200_000  # measured ~1.9M tokens/s on 2 CPU cores; loose bound for slow CI machines


def test_gazetteer_coverage_says_which_gazetteer_holds_each_gold_mention():
    from cofee_lib.datasets.baseline import gazetteer_coverage

    gaz = {"PER": {"Ada Lovelace"}, "LOC": {"Kent", "London"}, "ORG": {"London"}}
    gold = [{"tokens": ["Ada", "Lovelace", "met", "Kent", "in", "London", "for", "Acme"],
             "spans": [[0, 1, "PER"], [3, 3, "ORG"], [5, 5, "LOC"], [7, 7, "ORG"], [2, 2, "MISC"]]},
            {"tokens": ["Kent", "won"], "spans": [[0, 0, "ORG"]]}]
    cov = gazetteer_coverage(gold, gaz)
    assert set(cov) == {"PER", "LOC", "ORG"}                     # MISC: no gazetteer, skipped
    assert {k: cov["PER"][k] for k in ("mentions", "own", "other", "ambiguous", "none")} == \
        {"mentions": 1, "own": 1, "other": 0, "ambiguous": 0, "none": 0}
    # "London" is in two types' gazetteers: ambiguous, left untyped, as Matching and D_s leave it
    assert cov["LOC"]["ambiguous"] == 1 and cov["LOC"]["own_share"] == 0.0
    assert cov["ORG"]["mentions"] == 3 and cov["ORG"]["other"] == 2 and cov["ORG"]["none"] == 1
    assert cov["ORG"]["other_types"] == {"LOC": 2} and cov["ORG"]["missed_other"] == [["Kent", 2]]
    assert cov["ORG"]["missed_none"] == [["Acme", 1]] and cov["ORG"]["one_token"] == 3
