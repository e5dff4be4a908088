"""The corpus chapter's library: D_g with statistics, the threshold sweep, Matching scores, views, paper numbers.

Fast tests use the hand-made dumps of tests/fixtures/wiki/ and hand-made records;
the slow test builds D_g from the real embedded dump (fetched through
cofee_lib.sources) and checks the sweep against separate builds.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cofee_lib import cache, corpora
from cofee_lib.display import render_spans, scores_frame
from cofee_lib.errors import CofeeError
from cofee_lib.paper import paper_numbers, paper_table
from cofee_lib.records import read_jsonl
from cofee_lib.wiki import build_anchor_corpus

FIXTURES = Path(__file__).parent / "fixtures" / "wiki"
EN_XML = FIXTURES / "enwiki-sample.xml"
EN_BZ2 = FIXTURES / "enwiki-sample.xml.bz2"


# --------------------------------------------------------------------------- D_g

@pytest.mark.parametrize("max_len", [250, 30])
def test_general_corpus_equals_the_library_build_and_counts_every_sentence_once(tmp_path, max_len):
    out = tmp_path / "D_g.jsonl"
    info = corpora.build_general_corpus([EN_XML], out, max_len=max_len, min_anchors=4, sweep_from=1, progress=False)
    reference = tmp_path / "ref.jsonl"
    ref_stats = build_anchor_corpus(EN_XML, reference, lang="en", max_len=max_len, min_anchors=4, progress=False)
    assert out.read_text(encoding="utf-8") == reference.read_text(encoding="utf-8")
    c = info["counts"]
    assert c["sentences_kept"] == ref_stats["sentences_kept"] and c["anchors_kept"] == ref_stats["anchors_kept"]
    assert c["sentences_kept"] + c["dropped_too_long"] + c["dropped_few_anchors"] == c["sentences_seen"]
    assert sum(int(n) for n in info["length_histogram"].values()) == c["sentences_kept"]
    assert max(int(k) for k in info["length_histogram"]) <= max_len
    if max_len == 30:
        assert c["dropped_too_long"] > 0 and c["sentences_kept"] == 3


def test_sweep_from_one_pass_matches_separate_builds(tmp_path):
    info = corpora.build_general_corpus([EN_XML], tmp_path / "D_g.jsonl", min_anchors=4, sweep_from=1, progress=False)
    sweep = corpora.min_anchors_sweep(info["anchor_histogram"], [1, 2, 3, 4, 5])
    for row in sweep:
        stats = build_anchor_corpus(EN_XML, tmp_path / f"k{row['min_anchors']}.jsonl", lang="en",
                                    min_anchors=row["min_anchors"], progress=False)
        assert (row["sentences"], row["anchors"]) == (stats["sentences_kept"], stats["anchors_kept"])
    assert [r["sentences"] for r in sweep] == [11, 10, 5, 5, 2]


def test_sweep_below_the_histogram_is_an_error():
    with pytest.raises(CofeeError, match="sweep_from=2"):
        corpora.min_anchors_sweep({"4": 3, "5": 1}, [2, 4])
    assert corpora.min_anchors_sweep({"4": 3, "5": 1}, [4, 5]) == [
        {"min_anchors": 4, "sentences": 4, "anchors": 17}, {"min_anchors": 5, "sentences": 1, "anchors": 5}]


def test_two_dumps_are_concatenated_and_repeated_pages_counted(tmp_path):
    out = tmp_path / "D_g.jsonl"
    info = corpora.build_general_corpus([EN_XML, EN_BZ2], out, min_anchors=4, progress=False)
    records = read_jsonl(out)
    half = len(records) // 2
    assert records[:half] == records[half:], "the same dump twice gives its records twice, in order"
    assert info["counts"]["duplicate_ids"] == half
    assert info["counts"]["sentences_kept"] == 2 * info["per_dump"][str(EN_XML)]["sentences_kept"]


def test_bad_arguments(tmp_path):
    with pytest.raises(CofeeError, match="no dump"):
        corpora.build_general_corpus([], tmp_path / "x.jsonl", progress=False)
    with pytest.raises(CofeeError):
        corpora.build_general_corpus([EN_XML], tmp_path / "x.jsonl", sweep_from=0, progress=False)
    with pytest.raises(CofeeError, match="file not found"):
        corpora.build_general_corpus([tmp_path / "missing.xml.bz2"], tmp_path / "x.jsonl", progress=False)
    assert not (tmp_path / "x.jsonl").exists(), "nothing half-written"
    with pytest.raises(CofeeError, match="directory"):
        corpora.build_general_corpus([EN_XML], tmp_path, progress=False)


def test_cached_corpus_is_reused_and_rebuilt_when_statistics_are_missing(tmp_path):
    first = corpora.general_corpus(tmp_path, [EN_XML], min_anchors=4, sweep_from=3, progress=False)
    path = Path(first["path"])
    assert path == tmp_path / "corpus" / "D_g.jsonl"
    stamp = path.stat().st_mtime_ns
    again = corpora.general_corpus(tmp_path, [EN_XML], min_anchors=4, sweep_from=3, progress=False)
    assert again == first and path.stat().st_mtime_ns == stamp
    lower = corpora.general_corpus(tmp_path, [EN_XML], min_anchors=4, sweep_from=1, progress=False)
    assert lower["histogram_from"] == 1 and "1" in lower["anchor_histogram"]
    limited = corpora.general_corpus(tmp_path, [EN_XML], min_anchors=4, limit_pages=1, progress=False)
    assert limited["settings"]["limit_pages"] == 1 and limited["counts"]["pages"] == 1


def test_pretrain_pipeline_reuses_the_notebooks_d_g(tmp_path, monkeypatch):
    """The D_g of notebook 01 carries the cache key of cofee pretrain: build_corpora does not rebuild it."""
    from cofee_lib import gazetteers, pipeline

    built = corpora.general_corpus(tmp_path, [EN_XML], lang="en", min_anchors=4, max_len=250, sweep_from=1,
                                   progress=False)
    before = Path(built["path"]).stat().st_mtime_ns

    def tiny_gazetteers(lang, target=None, fraction=1.0, seed=0, options=None, load_train=None):
        return {"PER": ["Charles Babbage"], "LOC": ["England"], "ORG": ["Royal Society"]}, {
            "lang": lang, "case_sensitive": True, "counts": {"PER": 1, "LOC": 1, "ORG": 1}}

    monkeypatch.setattr(gazetteers, "build_gazetteers", tiny_gazetteers)
    monkeypatch.setattr(pipeline, "build_gazetteers", tiny_gazetteers, raising=False)  # bound at import there
    result = pipeline.build_corpora("wnut16", tmp_path, lang="en", dumps=(str(EN_XML),), min_anchors=4, max_len=250,
                                    progress=False)
    assert Path(result["d_g"]) == Path(built["path"])
    assert Path(built["path"]).stat().st_mtime_ns == before
    assert result["d_g_stats"]["anchor_histogram"] == built["anchor_histogram"]


def test_build_corpora_parses_the_dumps_with_dump_workers(tmp_path, monkeypatch):
    """cofee pretrain's corpora: dump_workers reaches the dump reader, and D_g is the same for 1 and 2 workers."""
    from cofee_lib import gazetteers, pipeline, wiki
    from cofee_lib.presets import stage_settings

    with pytest.raises(CofeeError, match="dump_workers must be >= 1"):
        stage_settings("smoke").updated(dump_workers=0)

    def tiny_gazetteers(lang, target=None, fraction=1.0, seed=0, options=None, load_train=None):
        return {"PER": ["Charles Babbage"], "LOC": ["England"], "ORG": ["Royal Society"]}, {
            "lang": lang, "case_sensitive": True, "counts": {"PER": 1, "LOC": 1, "ORG": 1}}

    monkeypatch.setattr(pipeline, "build_gazetteers", tiny_gazetteers, raising=False)
    seen, real = [], wiki.anchor_sentences

    def spy(*args, **kwargs):
        seen.append(kwargs.get("workers"))
        return real(*args, **kwargs)

    monkeypatch.setattr(wiki, "anchor_sentences", spy)
    texts = []
    for workers in (1, 2):
        result = pipeline.build_corpora("wnut16", tmp_path / f"w{workers}", lang="en", dumps=(str(EN_XML),),
                                        min_anchors=1, max_len=250, workers=workers, progress=False)
        texts.append(Path(result["d_g"]).read_bytes())
    assert seen == [1, 2]
    assert texts[0] == texts[1] and texts[0].count(b"\n") > 10


# --------------------------------------------------------------------------- settings

def test_corpus_settings_come_from_the_preset_and_take_overrides():
    smoke = corpora.corpus_settings("smoke")
    from cofee_lib.presets import get_preset, stage_settings

    pretrain = stage_settings("smoke")
    assert smoke["dumps"] == pretrain.dumps and smoke["min_anchors"] == pretrain.min_anchors
    assert smoke["max_len"] == pretrain.max_words == 250
    assert smoke["workers"] == pretrain.dump_workers == 1
    assert corpora.corpus_settings("paper")["workers"] == stage_settings("paper").dump_workers == 8
    assert smoke["min_anchors"] in smoke["min_anchors_sweep"]
    changed = corpora.corpus_settings(get_preset("default"), dumps="embedded:enwiki", min_anchors=3, limit_pages=0,
                                      max_len=None)
    assert changed["dumps"] == ["embedded:enwiki"] and changed["min_anchors"] == 3
    assert changed["limit_pages"] is None and changed["max_len"] == 250
    with pytest.raises(CofeeError, match="unknown corpus settings"):
        corpora.corpus_settings("smoke", min_anchor=3)
    with pytest.raises(CofeeError, match="no 'corpus' section"):
        corpora.corpus_settings({})
    from cofee_lib.datasets import ENGLISH_TARGETS
    from cofee_lib.presets import PRESET_NAMES

    for name in PRESET_NAMES:
        settings = corpora.corpus_settings(name)
        assert set(settings["matching"]) >= set(ENGLISH_TARGETS)
        assert set(settings["gazetteer_targets"]) == set(ENGLISH_TARGETS)


# --------------------------------------------------------------------------- Matching

GOLD = [
    {"id": "a", "tokens": ["John", "Smith", "flew", "to", "Paris", "for", "Acme", "Corp", "and", "the", "Oscars"],
     "spans": [[0, 1, "PER"], [4, 4, "LOC"], [6, 7, "ORG"], [10, 10, "MISC"]]},
    {"id": "b", "tokens": ["Paris", "Hilton", "in", "Rome"], "spans": [[0, 1, "PER"], [3, 3, "LOC"]]},
]
GAZ = {"PER": ["John Smith"], "LOC": ["Paris", "Rome"], "ORG": ["Acme"]}


def test_matching_scores_by_hand():
    from cofee_lib.datasets import matching_scores

    scores = matching_scores(GOLD, GAZ)
    # predicted: a: John Smith PER (ok), Paris LOC (ok), Acme ORG (wrong span); b: Paris LOC (wrong), Rome LOC (ok)
    assert scores["removed_gold"] == {"MISC": 1}
    assert (scores["tp"], scores["n_pred"], scores["n_gold"]) == (3, 5, 5)
    assert scores["precision"] == pytest.approx(0.6) and scores["recall"] == pytest.approx(0.6)
    assert scores["per_type"]["LOC"]["tp"] == 2 and scores["per_type"]["ORG"]["tp"] == 0
    from cofee_lib.matching import GazetteerMatcher

    assert matching_scores(GOLD, GazetteerMatcher(GAZ, lang="en")) == scores
    assert GOLD[0]["spans"][3] == [10, 10, "MISC"], "the gold records are not changed"
    assert not hasattr(corpora, "matching_scores"), "the corpus layer scores against no dataset"


def test_scores_frame_is_in_percent_with_an_all_row():
    from cofee_lib.datasets import matching_scores

    scores = {"toy": {"test": matching_scores(GOLD, GAZ)}}
    frame = scores_frame(scores)
    assert list(frame.columns[:3]) == ["dataset", "split", "type"]
    all_row = frame[frame.type == "ALL"].iloc[0]
    assert all_row.P == 60.0 and all_row.F1 == 60.0 and all_row.gold == 5
    assert set(frame.type) == {"ALL", "PER", "LOC", "ORG"}


def test_score_matching_reads_only_the_datasets_it_has_gazetteers_for(monkeypatch):
    from cofee_lib import datasets

    read = []

    def fake_splits(name, splits=None, progress=True):
        read.append(name)
        return {split: GOLD for split in splits}

    monkeypatch.setattr(datasets, "load_splits", fake_splits)
    assert datasets.gazetteer_set("wnut16") == "en-wnut16" and datasets.gazetteer_set("msra") == "zh-msra"
    scores = datasets.score_matching({"wnut16": ["dev", "test"], "msra": ["test"]}, {"en-wnut16": GAZ})
    assert read == ["wnut16"] and list(scores) == ["wnut16"] and list(scores["wnut16"]) == ["dev", "test"]
    assert scores["wnut16"]["test"] == datasets.matching_scores(GOLD, GAZ)
    against = datasets.baseline.matching_against_paper(scores_frame(scores), paper_numbers())
    assert list(against.index) == ["paper: Twitter", "kit: wnut16 test"] and list(against.columns) == ["P", "R", "F1"]
    assert against.loc["paper: Twitter", "F1"] == paper_table(3, "twitter").loc["Matching", "F1"]
    assert against.loc["kit: wnut16 test", "F1"] == 60.0
    assert datasets.stand_ins(paper_numbers()["datasets"]) == {"ontonotes4": "msra", "twitter": "wnut16"}
    assert datasets.baseline.paper_matching(paper_numbers(), scores) == {
        "twitter": paper_numbers()["table3"]["twitter"]["Matching"]}


# --------------------------------------------------------------------------- views

def test_render_spans():
    rec = {"id": "x", "tokens": ["Ada", "met", "Charles", "Babbage", "in", "London", "."],
           "spans": [[0, 0, "Entity"], [2, 3, "Entity"], [5, 5, "Entity"]],
           "targets": ["Ada Lovelace", "Charles Babbage", "London"]}
    assert render_spans(rec, label="target") == "[Ada|Ada Lovelace] met [Charles Babbage|Charles Babbage] in [London|London] ."
    assert render_spans(rec) == "[Ada|Entity] met [Charles Babbage|Entity] in [London|Entity] ."
    assert render_spans(rec, label="none", max_tokens=4) == "[Ada] met [Charles Babbage] ..."
    assert render_spans({"id": "y", "tokens": ["no", "entity"], "spans": []}) == "no entity"
    with pytest.raises(ValueError):
        render_spans(rec, label="colour")


# --------------------------------------------------------------------------- paper numbers

def test_paper_numbers_as_printed():
    numbers = paper_numbers()
    assert numbers["corpora"]["en"]["sentences"] == 3911059 and numbers["corpora"]["en"]["anchors"] == 37755176
    assert numbers["corpora"]["zh"]["sentences"] == 1116514 and numbers["corpora"]["zh"]["anchors"] == 6383142
    assert numbers["gazetteers"]["en"] == {"PER": 2795, "ORG": 1825, "LOC": 1408}
    assert numbers["gazetteers"]["zh"] == {"PER": 2314, "ORG": 2649, "GPE": 895, "LOC": 628}
    assert set(numbers["table2"]) == set(numbers["table3"]) == {"ontonotes4", "ecommerce", "twitter"}
    assert paper_table(3, "twitter").loc["Matching", "F1"] == 26.30
    assert paper_table(2, "twitter").loc["CoFEE-MRC", "F1"] == 73.86
    assert list(paper_table(3, "ecommerce").index) == ["Matching", "MRC-NER", "CoFEE-MRC", "-FET", "-FET-ESI"]
    assert paper_table("2").shape == (15, 3)
    with pytest.raises(CofeeError):
        paper_table(4)
    with pytest.raises(CofeeError):
        paper_table(3, "weibo")


def test_paper_f1_is_the_harmonic_mean_except_the_known_misprint():
    """Guards against typos in the copy: F1 = 2PR/(P+R) to rounding, except the two rows the paper prints so."""
    numbers = paper_numbers()
    odd = []
    for table in ("table2", "table3"):
        for dataset, rows in numbers[table].items():
            for model, m in rows.items():
                if m["P"] is None:
                    continue
                f1 = 2 * m["P"] * m["R"] / (m["P"] + m["R"])
                if abs(f1 - m["F1"]) > 0.1:  # P and R are printed with one or two decimals
                    odd.append((table, dataset, model))
    assert odd == [("table3", "ontonotes4", "-FET-ESI"), ("table3", "ecommerce", "Matching")]


@pytest.mark.slow
def test_real_dump_sweep_matches_separate_builds(tmp_path):
    """On the embedded English dump: one pass gives D_g as build_anchor_corpus writes it, and the sweep's ends."""
    info = corpora.build_general_corpus(["embedded:enwiki"], tmp_path / "D_g.jsonl", min_anchors=4, sweep_from=1,
                                        progress=False)
    reference = build_anchor_corpus("embedded:enwiki", tmp_path / "ref.jsonl", lang="en", min_anchors=4, progress=False)
    assert (tmp_path / "D_g.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    assert info["counts"]["sentences_kept"] == reference["sentences_kept"] > 1000
    sweep = {r["min_anchors"]: r for r in corpora.min_anchors_sweep(info["anchor_histogram"], [1, 5])}
    for k in (1, 5):
        stats = build_anchor_corpus("embedded:enwiki", tmp_path / f"k{k}.jsonl", lang="en", min_anchors=k, progress=False)
        assert (sweep[k]["sentences"], sweep[k]["anchors"]) == (stats["sentences_kept"], stats["anchors_kept"])
    assert sweep[1]["anchors"] == info["counts"]["anchors_seen"], "no sentence of the dump is longer than 250 tokens"
