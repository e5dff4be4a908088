"""The domain stage (beyond the paper): in-domain text readers, the distant corpus, and no gold label reaching training."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cofee_lib import domain
from cofee_lib.errors import CofeeError, InputError

GAZ = {"PER": ["Anne Smith", "Bob"], "LOC": ["Paris", "New York"], "ORG": ["Acme"]}


def test_each_text_format_reads_tokens_and_drops_labels(tmp_path):
    j = tmp_path / "t.jsonl"
    j.write_text(json.dumps({"id": "a", "tokens": ["Bob", "in", "Paris"], "spans": [[0, 0, "ORG"]]}) + "\n\n"
                 + json.dumps({"text": "Anne Smith's U.S. trip, 3.5 days."}) + "\n")
    got = domain.read_domain_text(str(j))
    assert got[0] == {"id": "a", "tokens": ["Bob", "in", "Paris"], "spans": []}   # gold spans never pass
    assert got[1]["id"] == "t-3" and got[1]["tokens"] == ["Anne", "Smith's", "U.S.", "trip", ",", "3.5", "days", "."]
    c = tmp_path / "t.txt"   # CoNLL columns with an unusual suffix: sniffed, labels ignored
    c.write_text("Bob B-PER\nin O\n\nParis B-LOC\n")
    assert domain.text_kind(str(c)) == "conll"
    assert [r["tokens"] for r in domain.read_domain_text(str(c))] == [["Bob", "in"], ["Paris"]]
    p = tmp_path / "plain.txt"
    p.write_text("Bob lives in New York\n\n   \nAcme hired Anne Smith\n")
    assert domain.text_kind(str(p)) == "text"
    recs = domain.read_domain_text(str(p))
    assert [r["id"] for r in recs] == ["plain-1", "plain-4"] and all(r["spans"] == [] for r in recs)


@pytest.mark.parametrize("content, message", [
    ('{"tokens": ["a"]}\nnot json\n', ":2: not valid JSON"),
    ('{"tokens": "abc"}\n', ":1: 'tokens' must be a list"),
    ('{"words": ["a"]}\n', ":1: expected 'tokens'"),
    ('{"id": 3, "tokens": ["a"]}\n', ":1: 'id' must be a non-empty string"),
    ('{"id": "x", "tokens": ["a"]}\n{"id": "x", "tokens": ["b"]}\n', "id 'x' occurs 2 times"),
    ("\n\n", "no sentences"),
])
def test_bad_domain_text_names_the_file_and_line(tmp_path, content, message):
    f = tmp_path / "bad.jsonl"
    f.write_text(content)
    with pytest.raises(InputError) as err:
        domain.read_domain_text(str(f))
    assert message in str(err.value) and str(f) in str(err.value)


def test_missing_file_and_empty_dataset_name_are_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        domain.read_domain_text(str(tmp_path / "nope.txt"))
    with pytest.raises(CofeeError, match="needs a dataset name"):
        domain.read_domain_text("dataset:")


def test_distant_corpus_keeps_matches_and_a_share_of_negatives():
    recs = [{"id": str(i), "tokens": t.split(), "spans": []} for i, t in enumerate(
        ["Bob flew to Paris", "nothing here", "Acme is big", "still nothing", "no entity", "Anne Smith",
         "quiet day"])]
    corpus, stats = domain.distant_corpus(recs, GAZ, ["PER", "LOC"], negatives=0.5, seed=0)
    matched = [r for r in corpus if r["spans"]]
    assert [r["id"] for r in matched] == ["0", "5"]            # ORG is not a wanted type: "Acme" is dropped
    assert matched[0]["spans"] == [[0, 0, "PER"], [3, 3, "LOC"]]
    assert stats["matched_sentences"] == 2 and stats["negatives_kept"] == 1 and stats["negatives_available"] == 5
    assert stats["entities_per_type"] == {"PER": 2, "LOC": 1} and len(corpus) == 3
    assert [r["id"] for r in corpus] == sorted((r["id"] for r in corpus), key=int)   # file order
    again, _ = domain.distant_corpus(recs, GAZ, ["PER", "LOC"], negatives=0.5, seed=0)
    assert again == corpus
    all_neg, s2 = domain.distant_corpus(recs, GAZ, ["PER", "LOC"], negatives=10, seed=0)
    assert s2["negatives_kept"] == 5 and len(all_neg) == 7


def test_distant_corpus_matches_with_the_gazetteers_own_options():
    """All-capitals news text matches title-case entries where the gazetteers say so (CoNLL-2003's)."""
    from cofee_lib.gazetteers import Gazetteers

    recs = [{"id": "1", "tokens": ["PARIS", "1996-08-22"], "spans": []}]
    with pytest.raises(CofeeError, match="matches a gazetteer entry"):
        domain.distant_corpus(recs, Gazetteers(GAZ), ["LOC"], 0.0, 0)
    caps, _ = domain.distant_corpus(recs, Gazetteers(GAZ, all_caps_title=True), ["LOC"], 0.0, 0)
    assert caps[0]["spans"] == [[0, 0, "LOC"]]


def test_text_without_any_match_is_a_clear_error():
    recs = [{"id": "1", "tokens": ["nothing", "here"], "spans": []}]
    with pytest.raises(CofeeError, match="matches a gazetteer entry"):
        domain.distant_corpus(recs, GAZ, ["PER"], 0.5, 0)


def test_unknown_dataset_and_missing_file_fail_before_training(tmp_path):
    from cofee_lib.pipeline import domain_source_key

    with pytest.raises(CofeeError, match="unknown dataset 'nope'"):
        domain_source_key("dataset:nope")
    with pytest.raises(InputError, match="file not found"):
        domain_source_key(str(tmp_path / "x.txt"))
    f = tmp_path / "t.txt"
    f.write_text("Bob in Paris\n")
    g = tmp_path / "t.jsonl"
    g.write_text("Bob in Paris\n")
    assert domain_source_key(str(f))["file"] == domain_source_key(str(g))["file"]
    assert domain_source_key(str(f)) != domain_source_key(str(g))    # same bytes, read another way: another corpus


def test_sample_is_seeded_nested_and_in_file_order():
    recs = [{"id": str(i)} for i in range(50)]
    ten = domain.sample_sentences(recs, 10, 0)
    twenty = domain.sample_sentences(recs, 20, 0)
    assert len(ten) == 10 and {r["id"] for r in ten} <= {r["id"] for r in twenty}
    assert [int(r["id"]) for r in ten] == sorted(int(r["id"]) for r in ten)
    assert domain.sample_sentences(recs, None, 0) == recs


@pytest.mark.network
def test_dataset_text_is_the_train_split_without_labels_and_test_is_never_opened(monkeypatch):
    """dataset:conll2003: the records carry the train tokens only, and the test file is never read."""
    import cofee_lib.formats.conll as conll
    from cofee_lib.datasets import load_dataset

    opened = []
    real = conll.read_conll

    def spy(path, *a, **kw):
        opened.append(str(path))
        return real(path, *a, **kw)

    monkeypatch.setattr(conll, "read_conll", spy)
    recs = domain.read_domain_text("dataset:conll2003")
    assert opened and "test.txt" not in {Path(p).name for p in opened}, opened
    train = load_dataset("conll2003", "train")
    assert len(recs) == len([r for r in train if r["tokens"]])
    assert all(r["spans"] == [] and set(r) == {"id", "tokens", "spans"} for r in recs)
    assert all(r["id"].startswith("conll2003-train") for r in recs)


@pytest.mark.slow
def test_domain_stage_trains_only_on_matched_spans(tmp_path, monkeypatch):
    """End to end at smoke: the records the domain stage trains on are exactly the gazetteer matches of the
    stripped train tokens (no gold label reaches the model), and the stage runs after the others."""
    from cofee_lib import pipeline, stages
    from cofee_lib.datasets import load_dataset
    from cofee_lib.gazetteers import load_gazetteers
    from cofee_lib.matching import match_records

    seen = {}
    real = stages.run_nee

    def spy(model, d_s, *a, **kw):
        seen.setdefault("records", []).append(d_s)
        return real(model, d_s, *a, **kw)

    monkeypatch.setattr(pipeline, "run_nee", spy)
    rep = pipeline.pretrain("nee,domain", "mrc", "wnut16", tmp_path / "out", preset="smoke", work_dir=tmp_path / "w",
                            domain_text="dataset:wnut16", domain_max_sentences=60, domain_negatives=0.25)
    assert rep["stages"] == ["nee", "domain"] and (tmp_path / "out" / "domain" / "best" / "cofee.json").is_file()
    trained = seen["records"][-1]
    stats = rep["data"]["domain"]
    assert stats["sentences_in"] == 60 and len(trained) == stats["sentences"]
    gaz = load_gazetteers(rep["corpora"]["gazetteers"])
    train = {r["id"]: r for r in load_dataset("wnut16", "train")}
    expected = match_records([{**train[r["id"]], "spans": []} for r in trained], gaz)
    types = set(rep["types"])
    assert [[s for s in e["spans"] if s[2] in types] for e in expected] == [r["spans"] for r in trained]
    gold_only = sum(1 for r in trained for s in train[r["id"]]["spans"] if s not in r["spans"])
    assert gold_only > 0   # the gold split has entities the matches miss: had gold leaked, there would be none
    assert rep["stage_reports"]["domain"]["best_f1"] is not None


def test_domain_stage_needs_its_text(tmp_path, cofee_cli):
    run = cofee_cli("pretrain", "--preset", "smoke", "--stages", "esi,nee,fet,domain", "--target", "wnut16",
                    "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert run.returncode == 2 and "--domain-text" in run.stderr
    assert not (tmp_path / "x").exists()
    bad = cofee_cli("pretrain", "--preset", "smoke", "--stages", "domain", "--target", "wnut16", "--domain-text",
                    str(tmp_path / "missing.txt"), "--out", str(tmp_path / "y"), cwd=tmp_path)
    assert bad.returncode == 2 and "missing.txt" in bad.stderr and not (tmp_path / "y").exists()
