"""Readers and writers in cofee_lib.formats: tags, CoNLL, char files, MRC JSON, BOND JSON.

Fast tests use the hand-made files in tests/fixtures/formats/ and files
written into tmp_path; the slow tests read the real CoNLL-2003, WNUT-16 and
MSRA files fetched through cofee_lib.sources.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, IOBES, Entities

from cofee_lib.errors import CofeeError, InputError
from cofee_lib.formats import FORMATS, read_records, write_records
from cofee_lib.formats.bond import read_bond, write_bond
from cofee_lib.formats.charfile import read_char_file, write_char_file
from cofee_lib.formats.conll import read_conll, write_conll
from cofee_lib.formats.json_items import iter_json_items
from cofee_lib.formats.mrc_json import generic_queries, read_mrc_json, write_mrc_json
from cofee_lib.formats.tags import normalize_scheme, spans_to_tags, tags_to_spans
from cofee_lib.records import make_record

FIX = Path(__file__).parent / "fixtures" / "formats"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def random_spans(rng: random.Random, n: int, types=("PER", "LOC", "ORG")) -> list[tuple[int, int, str]]:
    """Non-overlapping random spans over n tokens, adjacent same-type entities included."""
    spans, i = [], 0
    while i < n:
        if rng.random() < 0.4:
            length = rng.randint(1, 3)
            end = min(n - 1, i + length - 1)
            spans.append((i, end, rng.choice(types)))
            i = end + 1
        else:
            i += 1
    return spans


# ---------------------------------------------------------------- tags


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "bioes", "bmes"])
def test_spans_tags_round_trip_random(scheme):
    rng = random.Random(13)
    for _ in range(500):
        n = rng.randint(0, 12)
        spans = random_spans(rng, n)
        tags = spans_to_tags(n, spans, scheme)
        assert len(tags) == n
        assert tags_to_spans(tags, scheme) == spans


def test_scheme_letters_and_aliases():
    spans = [(0, 2, "PER"), (3, 3, "LOC"), (4, 4, "LOC")]
    assert spans_to_tags(5, spans, "bio") == ["B-PER", "I-PER", "I-PER", "B-LOC", "B-LOC"]
    assert spans_to_tags(5, spans, "iob1") == ["I-PER", "I-PER", "I-PER", "I-LOC", "B-LOC"]
    assert spans_to_tags(5, spans, "bioes") == ["B-PER", "I-PER", "E-PER", "S-LOC", "S-LOC"]
    assert spans_to_tags(5, spans, "bmes") == ["B-PER", "M-PER", "E-PER", "S-LOC", "S-LOC"]
    assert tags_to_spans(["B-PER", "I-PER", "L-PER", "U-LOC", "U-LOC"], "bilou") == spans
    assert normalize_scheme("BIO") == "iob2" and normalize_scheme("bilou") == "bioes"
    with pytest.raises(CofeeError, match="unknown tagging scheme"):
        normalize_scheme("xml")


def random_tags(rng: random.Random, n: int, letters: str) -> list[str]:
    return ["O" if (c := rng.choice("O" + letters)) == "O" else f"{c}-{rng.choice('XY')}" for _ in range(n)]


def test_invalid_policies_agree_with_seqeval():
    """'drop' reads like seqeval strict mode, 'begin' (IOB2) and IOB1 like conlleval / seqeval default."""
    rng = random.Random(7)
    for _ in range(3000):
        n = rng.randint(0, 10)
        bio = random_tags(rng, n, "BI")
        strict = [(x.start, x.end - 1, x.tag) for x in Entities([bio], IOB2).entities[0]]
        assert tags_to_spans(bio, "iob2", invalid="drop") == sorted(strict)
        lenient = sorted((s, e, t) for t, s, e in get_entities(bio))
        assert tags_to_spans(bio, "iob2", invalid="begin") == lenient
        assert tags_to_spans(bio, "iob1") == lenient
        bioes = random_tags(rng, n, "BIES")
        strict = [(x.start, x.end - 1, x.tag) for x in Entities([bioes], IOBES).entities[0]]
        assert tags_to_spans(bioes, "bioes", invalid="drop") == sorted(strict)
        bmes = [t.replace("I-", "M-") for t in bioes]
        assert tags_to_spans(bmes, "bmes", invalid="drop") == sorted(strict)


@pytest.mark.parametrize("tags,scheme,line,pattern", [
    (["O", "I-PER"], "iob2", 11, "no PER entity to continue"),
    (["B-PER", "I-LOC"], "iob2", 11, "no LOC entity to continue"),
    (["B-PER", "I-PER", "O"], "bioes", 12, "unfinished PER entity"),
    (["O", "E-PER"], "bioes", 11, "no PER entity to continue"),
    (["B-PER", "M-PER"], "bmes", 11, "sentence ends inside a PER entity"),
    (["O", "B-PER", "X-PER"], "iob2", 12, "unknown tag 'X-PER'"),
    (["B-"], "iob2", 10, "unknown tag 'B-'"),
    (["PER"], "iob1", 10, "unknown tag 'PER'"),
    (["S-LOC"], "iob2", 10, "unknown tag 'S-LOC'"),
])
def test_tag_errors_name_file_and_line(tags, scheme, line, pattern):
    with pytest.raises(InputError, match=pattern) as info:
        tags_to_spans(tags, scheme, "data/x.txt", list(range(10, 10 + len(tags))))
    assert str(info.value).startswith(f"data/x.txt:{line}: ")


def test_iob1_allows_i_to_begin():
    assert tags_to_spans(["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "iob1") == [(0, 1, "PER"), (2, 2, "PER"), (4, 4, "LOC")]


def test_overlapping_spans_cannot_be_tags():
    with pytest.raises(CofeeError, match="overlap"):
        spans_to_tags(4, [(0, 2, "ORG"), (1, 1, "LOC")], "iob2", where="rec-7")
    with pytest.raises(CofeeError, match="out of range"):
        spans_to_tags(2, [(1, 2, "ORG")], "iob2")


# ---------------------------------------------------------------- CoNLL


def test_read_conll_four_columns_with_docstart():
    recs = read_conll(FIX / "conll4.txt")
    assert [r["id"] for r in recs] == ["conll4-0", "conll4-1", "conll4-2"]
    assert recs[0]["tokens"][:2] == ["Maria", "Lopez"]
    assert recs[0]["spans"] == [[0, 1, "PER"], [4, 5, "LOC"], [7, 8, "ORG"]]
    assert recs[1]["spans"] == [[0, 0, "LOC"], [1, 1, "LOC"]]
    assert recs[2]["spans"] == []
    # another column as the tag: the chunk column (IOB2 chunk tags)
    chunks = read_conll(FIX / "conll4.txt", tag_col=2, id_prefix="chunks")
    assert chunks[0]["id"] == "chunks-0"
    assert chunks[0]["spans"][0] == [0, 1, "NP"]


def test_read_conll_tab_separated_wnut_style():
    recs = read_conll(FIX / "wnut_style.txt")
    assert recs[0]["tokens"] == ["Maria", "Lopez", "likes", "@acme"]
    assert recs[1]["spans"] == [[1, 2, "movie"], [4, 4, "geo-loc"]]


def test_read_conll_iob1_and_bioes():
    iob1 = read_records(FIX / "iob1.txt", "conll-iob1")
    assert iob1[0]["spans"] == [[0, 1, "PER"], [2, 2, "PER"], [4, 4, "ORG"]]
    assert iob1[1]["spans"] == [[0, 0, "LOC"], [1, 1, "LOC"]]
    bioes = read_records(FIX / "bioes.txt", "conll-bioes")
    assert bioes[0]["spans"] == [[0, 2, "PER"], [4, 4, "PER"], [6, 6, "LOC"], [8, 9, "LOC"]]


@pytest.mark.parametrize("text,line,pattern", [
    ("EU NNP B-ORG\nrejects VBZ O\ncall NN\n", 3, "found 2 column"),           # ragged
    ("a\tO\n\nb\tB-X\tO\n", 3, "found 3 column"),                              # ragged, tab
    ("the O\nNew I-LOC\n", 2, "no LOC entity to continue"),                    # I- with nothing (IOB2)
    ("the O\nNew B-LOCATION\nYork I-LOC\n", 3, "no LOC entity to continue"),
    ("the O\nNew B_LOC\n", 2, "unknown tag 'B_LOC'"),
    ("lonely\n", 1, "expected at least 2"),
])
def test_read_conll_bad_input(tmp_path, text, line, pattern):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(InputError, match=pattern) as info:
        read_conll(path)
    assert str(info.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize("text", ["", "\n\n  \n", "-DOCSTART- -X- O O\n\n"])
def test_read_conll_empty(tmp_path, text):
    path = write(tmp_path / "empty.txt", text)
    with pytest.raises(InputError, match="empty file"):
        read_conll(path)


def test_read_conll_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Bj\u00f6rk B-PER\n".encode("utf-8") + "\nM\u00fcller B-PER\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8") as info:
        read_conll(path)
    assert str(info.value).startswith(f"{path}:3: ")


def test_read_conll_missing_file_and_bad_column(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_conll(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="tag_col=5"):
        read_conll(FIX / "conll4.txt", tag_col=5)


def test_read_conll_invalid_policies(tmp_path):
    path = write(tmp_path / "cut.txt", "Jean B-PER\n\nPaul I-PER\nsang O\n")
    assert [r["spans"] for r in read_conll(path, invalid="drop")] == [[[0, 0, "PER"]], []]
    assert [r["spans"] for r in read_conll(path, invalid="begin")] == [[[0, 0, "PER"]], [[0, 0, "PER"]]]


@pytest.mark.parametrize("fmt", ["conll", "conll-iob1", "conll-bioes", "char", "char-bmes"])
def test_column_writers_round_trip(tmp_path, fmt):
    rng = random.Random(5)
    if fmt.startswith("char"):  # one character per token
        word = lambda i, k: chr(0x4E00 + (i * 15 + k) % 2000)  # noqa: E731
    else:
        word = lambda i, k: f"w{i}_{k}"  # noqa: E731
    records = [make_record(f"t-{i}", [word(i, k) for k in range(n)], random_spans(rng, n))
               for i, n in enumerate(rng.randint(1, 15) for _ in range(60))]
    out = tmp_path / "out.txt"
    assert write_records(out, records, fmt) == 60
    again = read_records(out, fmt, id_prefix="t")
    assert again == records
    # writing what was read gives the same bytes
    out2 = tmp_path / "out2.txt"
    write_records(out2, again, fmt)
    assert out2.read_bytes() == out.read_bytes()


def test_conll_writer_refuses_and_leaves_nothing(tmp_path):
    out = tmp_path / "o.txt"
    ok = make_record("a", ["x", "y"], [(0, 0, "PER")])
    with pytest.raises(CofeeError, match="overlap"):
        write_conll(out, [ok, make_record("b", ["x", "y", "z"], [(0, 1, "ORG"), (1, 2, "LOC")])])
    with pytest.raises(CofeeError, match="whitespace"):
        write_conll(out, [make_record("c", ["New York"], [])])
    with pytest.raises(CofeeError, match="no tokens"):
        write_conll(out, [make_record("d", [], [])])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- char files


def test_read_char_files():
    bio = read_char_file(FIX / "char_bio.txt")
    assert bio[0]["tokens"] == list("张三在北京工作")
    assert bio[0]["spans"] == [[0, 1, "PER"], [3, 4, "LOC"]]
    assert bio[1]["spans"] == [[0, 2, "ORG"]]
    bmes = read_char_file(FIX / "char_bmes.txt", scheme="bmes")  # space separated
    assert bmes[0]["spans"] == [[0, 1, "PER"], [3, 3, "LOC"]]
    assert bmes[1]["spans"] == [[0, 2, "PER"]]


def test_char_file_bio_to_bmes(tmp_path):
    out = tmp_path / "x.bmes"
    write_char_file(out, read_char_file(FIX / "char_bio.txt"), scheme="bmes")
    assert out.read_text(encoding="utf-8").split("\n")[:5] == ["张\tB-PER", "三\tE-PER", "在\tO", "北\tB-LOC", "京\tE-LOC"]
    assert read_char_file(out, "bmes", id_prefix="char_bio") == read_char_file(FIX / "char_bio.txt")


def test_char_file_bad_input(tmp_path):
    path = write(tmp_path / "c.txt", "张\tB-PER\n三\tI-PER\tX\n")
    with pytest.raises(InputError, match=r"found 3 column\(s\), expected 2") as info:
        read_char_file(path)
    assert str(info.value).startswith(f"{path}:2: ")
    path = write(tmp_path / "d.txt", "张\tB-PER\n三\tM-PER\n")
    with pytest.raises(InputError, match="unknown tag 'M-PER'"):
        read_char_file(path, "bio")
    with pytest.raises(InputError, match="sentence ends inside a PER entity"):
        read_char_file(path, "bmes")


# ---------------------------------------------------------------- JSON items


def test_iter_json_items_lines(tmp_path):
    items = list(iter_json_items(FIX / "sample.mrc.json"))
    assert [(i, line) for i, line, _ in items] == [(0, 2), (1, 12), (2, 22), (3, 32), (4, 42), (5, 52)]
    path = write(tmp_path / "x.json", '[{"a": 1},\n {"a": 2}\n {"a": 3}]')
    with pytest.raises(InputError, match="expected ',' or ']'") as info:
        list(iter_json_items(path))
    assert str(info.value).startswith(f"{path}:3: ")
    path = write(tmp_path / "y.json", '[{"a": 1},\n {"a": }]')
    with pytest.raises(InputError, match="not valid JSON") as info:
        list(iter_json_items(path))
    assert str(info.value).startswith(f"{path}:2: ")
    for text in ("", "[]", " [ ] \n"):
        with pytest.raises(InputError, match="empty"):
            list(iter_json_items(write(tmp_path / "e.json", text)))
    path = write(tmp_path / "l.jsonl", '{"a": 1}\n{"a": 2}\n')
    assert [(line, item) for _, line, item in iter_json_items(path)] == [(1, {"a": 1}), (2, {"a": 2})]


# ---------------------------------------------------------------- MRC JSON


def test_read_mrc_fixture_groups_sentences():
    queries = {}
    recs = read_mrc_json(FIX / "sample.mrc.json", id_prefix="s", queries_out=queries)
    assert [r["id"] for r in recs] == ["s-0", "s-1"]
    assert recs[0]["spans"] == [[0, 1, "PER"], [4, 5, "LOC"], [7, 8, "ORG"]]
    assert recs[1]["tokens"] == ["Paris", "and", "Berlin"]
    assert recs[1]["spans"] == [[0, 0, "LOC"], [2, 2, "LOC"]]
    assert list(queries) == ["PER", "LOC", "ORG"]


def test_write_mrc_one_example_per_type(tmp_path):
    queries = json.loads((FIX / "queries.json").read_text(encoding="utf-8"))
    recs = read_conll(FIX / "conll4.txt")
    out = tmp_path / "m.json"
    assert write_mrc_json(out, recs, queries) == 3 * 4
    data = json.loads(out.read_text(encoding="utf-8"))
    first = data[0]
    assert first == {"context": "Maria Lopez flew to New York with Acme Corp .", "query": queries["PER"],
                     "entity_label": "PER", "start_position": [0], "end_position": [1], "span_position": ["0;1"],
                     "impossible": False, "qas_id": "0.1"}
    assert [d["qas_id"] for d in data[4:8]] == ["1.1", "1.2", "1.3", "1.4"]
    assert data[5]["span_position"] == ["0;0", "1;1"] and data[7]["impossible"] is True
    assert read_mrc_json(out, id_prefix="conll4") == recs


def test_mrc_keeps_nested_spans(tmp_path):
    rec = make_record("n-0", ["Bank", "of", "China"], [(0, 2, "ORG"), (2, 2, "LOC")])
    out = tmp_path / "n.json"
    write_mrc_json(out, [rec], {"ORG": "q1", "LOC": "q2"})
    assert read_mrc_json(out, id_prefix="n") == [rec]
    with pytest.raises(CofeeError, match="overlap"):
        write_conll(tmp_path / "n.txt", [rec])


def mrc_example(**changes):
    ex = {"context": "a b c", "query": "q", "entity_label": "PER", "start_position": [0], "end_position": [1],
          "span_position": ["0;1"], "impossible": False, "qas_id": "0.1"}
    ex.update(changes)
    return {k: v for k, v in ex.items() if v is not ...}


@pytest.mark.parametrize("bad,pattern", [
    (mrc_example(end_position=[1, 2]), "start_position has 1 items but end_position has 2"),
    (mrc_example(start_position=[0], end_position=[3], span_position=["0;3"]), "out of range"),
    (mrc_example(start_position=[2], end_position=[1], span_position=["2;1"]), "out of range"),
    (mrc_example(span_position=["0;2"]), "does not match"),
    (mrc_example(span_position=["0-1"]), "is not \"start;end\""),
    (mrc_example(impossible=True), "'impossible' is true"),
    (mrc_example(context=...), "missing key 'context'"),
    (mrc_example(qas_id="7"), "qas_id"),
    (mrc_example(start_position=["0"]), "list of integer"),
    (mrc_example(entity_label="PER", qas_id="1.2"), "already has a 'PER' example"),
    (mrc_example(context="a b d", entity_label="LOC", qas_id="1.2"), "different context"),
    ([1, 2], "expected an object"),
])
def test_read_mrc_bad_input(tmp_path, bad, pattern):
    good0 = mrc_example()
    good1 = mrc_example(qas_id="1.1", context="a b c")
    path = tmp_path / "bad.json"
    path.write_text("[\n" + ",\n".join(json.dumps(x) for x in (good0, good1, bad)) + "\n]\n", encoding="utf-8")
    with pytest.raises(InputError, match=pattern) as info:
        read_mrc_json(path)
    assert str(info.value).startswith(f"{path}:4: example 2")


def test_write_mrc_needs_a_query_per_type(tmp_path):
    out = tmp_path / "m.json"
    with pytest.raises(CofeeError, match="no query for 'ORG'"):
        write_mrc_json(out, read_conll(FIX / "conll4.txt"), {"PER": "q", "LOC": "q"})
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert generic_queries(read_conll(FIX / "conll4.txt")) == {
        "LOC": "Find LOC entities", "ORG": "Find ORG entities", "PER": "Find PER entities"}


# ---------------------------------------------------------------- BOND


def test_read_bond_fixture():
    recs = read_bond(FIX / "bond" / "train.json")
    assert recs == read_conll(FIX / "conll4.txt", id_prefix="train")[:2]


def test_write_bond_shares_and_extends_tag_map(tmp_path):
    recs = read_conll(FIX / "conll4.txt")
    write_bond(tmp_path / "train.json", recs)
    first = json.loads((tmp_path / "tag_to_id.json").read_text(encoding="utf-8"))
    assert first == {"O": 0, "B-LOC": 1, "I-LOC": 2, "B-ORG": 3, "I-ORG": 4, "B-PER": 5, "I-PER": 6}
    extra = [make_record("x", ["Dutch", "cheese"], [(0, 0, "MISC"), (1, 1, "LOC")])]
    write_bond(tmp_path / "dev.json", extra)
    second = json.loads((tmp_path / "tag_to_id.json").read_text(encoding="utf-8"))
    assert second == {**first, "B-MISC": 7, "I-MISC": 8}
    assert read_bond(tmp_path / "train.json", id_prefix="conll4") == recs
    assert read_bond(tmp_path / "dev.json", id_prefix="x")[0]["spans"] == [[0, 0, "MISC"], [1, 1, "LOC"]]


@pytest.mark.parametrize("items,pattern", [
    ([{"str_words": ["a", "b"], "tags": [0]}], "2 words but 1 tags"),
    ([{"str_words": ["a"], "tags": [9]}], "tag id 9 at word 0"),
    ([{"str_words": ["a"], "tags": [2]}], r"'I-LOC' \(token 0\) has no LOC entity to continue"),
    ([{"words": ["a"], "tags": [0]}], "str_words"),
])
def test_read_bond_bad_input(tmp_path, items, pattern):
    (tmp_path / "tag_to_id.json").write_text(json.dumps({"O": 0, "B-LOC": 1, "I-LOC": 2}), encoding="utf-8")
    path = tmp_path / "b.json"
    path.write_text("[\n" + json.dumps({"str_words": ["x"], "tags": [1]}) + ",\n" + json.dumps(items[0]) + "\n]",
                    encoding="utf-8")
    with pytest.raises(InputError, match=pattern) as info:
        read_bond(path)
    assert str(info.value).startswith(f"{path}:3: example 1")


def test_read_bond_needs_tag_map(tmp_path):
    path = write(tmp_path / "b.json", '[{"str_words": ["a"], "tags": [0]}]')
    with pytest.raises(InputError, match="tag_to_id.json"):
        read_bond(path)
    write(tmp_path / "tag_to_id.json", '{"O": 0, "B-X": 0}')
    with pytest.raises(InputError, match="share id 0"):
        read_bond(path)


def test_registry_names():
    assert set(FORMATS) == {"jsonl", "conll", "conll-iob1", "conll-bioes", "char", "char-bmes", "mrc", "bond"}
    with pytest.raises(CofeeError, match="unknown format"):
        read_records(FIX / "conll4.txt", "xml")


def test_user_file_readers_guess_the_format_and_the_scheme(tmp_path):
    from cofee_lib.formats.columns import detect_scheme, guess_format, read_dataset_file

    assert [guess_format(n) for n in ("a.jsonl", "mrc-ner.dev", "x.json", "train.txt")] == ["jsonl", "mrc", "mrc", "conll"]
    assert detect_scheme(["B-PER", "M-PER", "E-PER"]) == "bmes" and detect_scheme(["S-LOC"]) == "bioes"
    assert detect_scheme(["B-PER", "I-PER", "O"]) == "iob2"
    path = tmp_path / "train.txt"
    path.write_text("IMGID:1\nAda\tB-PER\nLovelace\tE-PER\n \tO\nLondon\tS-LOC\n", encoding="utf-8")
    [rec] = read_dataset_file(path, skip_prefixes=["IMGID:"], id_prefix="t")
    assert rec["tokens"] == ["Ada", "Lovelace", " ", "London"] and rec["id"] == "t-0"
    assert rec["spans"] == [[0, 1, "PER"], [3, 3, "LOC"]]


# ---------------------------------------------------------------- real data (slow)


def fetch(name):
    from cofee_lib import sources

    return Path(sources.fetch(name, progress=False))


@pytest.mark.slow
def test_real_conll2003_counts():
    folder = fetch("conll2003")
    expected = {"train": (14041, 23499), "valid": (3250, 5942), "test": (3453, 5648)}
    for split, (n_sent, n_ent) in expected.items():
        recs = read_conll(folder / f"{split}.txt")
        assert (len(recs), sum(len(r["spans"]) for r in recs)) == (n_sent, n_ent)
        assert {s[2] for r in recs for s in r["spans"]} == {"PER", "LOC", "ORG", "MISC"}


@pytest.mark.slow
def test_real_wnut16_counts():
    recs = read_conll(fetch("wnut16"))
    assert len(recs) == 2394
    assert sum(len(r["tokens"]) for r in recs) == 46469
    types = Counter(s[2] for r in recs for s in r["spans"])
    assert sum(types.values()) == 1496
    assert types["person"] == 449 and types["geo-loc"] == 276 and types["movie"] == 34


@pytest.mark.slow
def test_real_msra_counts():
    path = fetch("msra")
    recs = read_char_file(path, invalid="drop")
    assert len(recs) == 55289
    assert Counter(s[2] for r in recs for s in r["spans"]) == {"LOC": 39394, "ORG": 21902, "PER": 19588}
    assert "".join(recs[50658]["tokens"]) == "中共中央致中国致公党十一大的贺词"
    assert Counter(s[2] for r in recs[50658:] for s in r["spans"]) == {"PER": 1973, "LOC": 2877, "ORG": 1331}


@pytest.mark.slow
def test_real_msra_cut_entity_is_an_error_by_default(tmp_path):
    """The file cuts 17 entities at sentence breaks; the first is at line 739,284."""
    lines = fetch("msra").read_text(encoding="utf-8").split("\n")
    bad = 739284 - 1
    start = max(i for i in range(bad) if not lines[i].strip()) + 1
    excerpt = write(tmp_path / "msra_excerpt.txt", "\n".join(lines[start:bad + 5]) + "\n")
    with pytest.raises(InputError, match="'I-PER' has no PER entity to continue") as info:
        read_char_file(excerpt)
    assert str(info.value).startswith(f"{excerpt}:{bad - start + 1}: ")
    assert read_char_file(excerpt, invalid="begin")[0]["spans"][0] == [0, 1, "PER"]


# ---------------------------------------------------------------- user test campaign: refused, located inputs


def jsonl_line(**changes) -> str:
    rec = {"id": "a", "tokens": ["x", "y"], "spans": [[0, 1, "PER"]]}
    rec.update(changes)
    return json.dumps(rec)


@pytest.mark.parametrize("bad,pattern", [
    (jsonl_line(spans=[[True, 1, "PER"]]), "true/false are not indices"),
    (jsonl_line(spans=[[0, False, "PER"]]), "true/false are not indices"),
    (jsonl_line(spans=[[0.0, 1, "PER"]]), "not \\[start:int"),
    (jsonl_line(id=None), "'id' must be a non-empty string, got null"),
    (jsonl_line(id=[1]), r"'id' must be a non-empty string, got \[1\]"),
    (jsonl_line(id={"a": 1}), "'id' must be a non-empty string"),
    (jsonl_line(id=17), "'id' must be a non-empty string, got 17 \\(write \"17\"\\)"),
    (jsonl_line(id=True), "'id' must be a non-empty string, got true$"),
    (jsonl_line(id=""), "'id' must be a non-empty string"),
    ('{"id": "a", "tokens": ["\\ud800"], "spans": []}', "lone surrogate"),
    ('{"id": "a", "tokens": [], "spans": [], "n": ' + "9" * 5000 + "}", "not usable JSON"),
    ("[" * 5000 + "]" * 5000, "not usable JSON"),
])
def test_read_jsonl_refuses_bad_records_with_file_and_line(tmp_path, bad, pattern):
    path = write(tmp_path / "r.jsonl", jsonl_line() + "\n\n" + bad + "\n")
    with pytest.raises(InputError, match=pattern) as info:
        read_records(path, "jsonl")
    assert str(info.value).startswith(f"{path}:3: ")


def test_jsonl_surrogate_pairs_bom_and_cr_line_ends(tmp_path):
    emoji = '{"id": "\\ud83d\\ude00", "tokens": ["x"], "spans": []}'
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (jsonl_line() + "\r" + emoji + "\r\n").encode())
    recs = read_records(path, "jsonl")
    assert [r["id"] for r in recs] == ["a", "\U0001F600"]
    assert recs.path == str(path) and recs.lines == [1, 2]
    path.write_bytes((jsonl_line() + "\r\r" + jsonl_line(id=None) + "\r").encode())
    with pytest.raises(InputError, match="'id'") as info:
        read_records(path, "jsonl")
    assert str(info.value).startswith(f"{path}:3: ")
    path.write_bytes((jsonl_line() + "\r").encode() + b'{"id": "\xff"}\n')
    with pytest.raises(InputError, match="not UTF-8") as info:
        read_records(path, "jsonl")
    assert str(info.value).startswith(f"{path}:2: ")
    with pytest.raises(InputError, match="is a directory"):
        read_records(tmp_path, "jsonl")


@pytest.mark.parametrize("rec,pattern", [
    ({"id": "a", "tokens": ["x"], "spans": [[True, 0, "PER"]]}, "true/false are not indices"),
    ({"id": None, "tokens": ["x"], "spans": []}, "'id' must be a non-empty string"),
    ({"id": "a", "tokens": ["x"]}, "missing key 'spans'"),
])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_writers_validate_records(tmp_path, fmt, rec, pattern):
    out = tmp_path / "o.txt"
    ok = make_record("ok", ["\u5f20"], [])
    with pytest.raises(InputError, match=pattern) as info:
        write_records(out, [ok, rec], fmt, queries={"PER": "q"})
    assert str(info.value).startswith("record 1")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["conll", "conll-iob1", "conll-bioes"])
@pytest.mark.parametrize("tokens,pattern", [
    (["a", "-DOCSTART-"], "token 1 is '-DOCSTART-'"),
    (["a", ""], "token 1 \\(''\\) is empty"),
    (["a", "b\tc"], "holds whitespace"),
    (["a", "b\rc"], "holds whitespace"),
    (["a", "b\nc"], "holds whitespace"),
])
def test_conll_writer_refuses_tokens_it_cannot_give_back(tmp_path, fmt, tokens, pattern):
    out = tmp_path / "o.txt"
    recs = [make_record("first", ["ok"], []), make_record("doc-7", tokens, [])]
    with pytest.raises(InputError, match=pattern) as info:
        write_records(out, recs, fmt)
    assert str(info.value).startswith("record 1 (id 'doc-7'): ")
    assert list(tmp_path.iterdir()) == []


def test_column_writers_refuse_a_leading_byte_order_mark(tmp_path):
    with pytest.raises(InputError, match="byte-order mark"):
        write_conll(tmp_path / "o.txt", [make_record("a", ["\ufeffx"], [])])
    # later in the file it is an ordinary (zero-width) character and round-trips
    recs = [make_record("t-0", ["x"], []), make_record("t-1", ["\ufeffy"], [(0, 0, "PER")])]
    write_conll(tmp_path / "o.txt", recs)
    assert read_conll(tmp_path / "o.txt", id_prefix="t") == recs


@pytest.mark.parametrize("newline", ["\r", "\r\n"])
@pytest.mark.parametrize("fmt,text,tokens", [
    ("conll", "New B-LOC\nYork I-LOC\n\nhi O\n", [["New", "York"], ["hi"]]),
    ("char", "\u5df4\tB-LOC\n\u9ece\tI-LOC\n\n\u597d\tO\n", [["\u5df4", "\u9ece"], ["\u597d"]]),
    ("char-bmes", "\u5df4 B-LOC\n\u9ece E-LOC\n\n\u597d O\n", [["\u5df4", "\u9ece"], ["\u597d"]]),
])
def test_cr_line_ends_are_line_ends(tmp_path, newline, fmt, text, tokens):
    path = tmp_path / "mac.txt"
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    recs = read_records(path, fmt)
    assert [r["tokens"] for r in recs] == tokens
    assert [r["spans"] for r in recs] == [[[0, 1, "LOC"]], []]
    # line numbers count lone \r too
    path.write_bytes(text.replace("\n", newline).encode("utf-8") + b"x\xff\tO\r")
    with pytest.raises(InputError, match="not UTF-8") as info:
        read_records(path, fmt)
    assert str(info.value).startswith(f"{path}:5: ")


def test_cr_line_ends_in_json_formats(tmp_path):
    good = {"context": "a b", "query": "q", "entity_label": "PER", "start_position": [0], "end_position": [1],
            "span_position": ["0;1"], "impossible": False, "qas_id": "0.1"}
    path = tmp_path / "m.json"
    path.write_bytes(("[\r" + json.dumps(good) + ",\r" + json.dumps({**good, "qas_id": 7}) + "\r]").encode())
    with pytest.raises(InputError, match="qas_id") as info:
        read_mrc_json(path)
    assert str(info.value).startswith(f"{path}:3: ")


def test_tag_types_with_whitespace_are_refused_on_reading(tmp_path):
    path = write(tmp_path / "t.txt", "Paris\tB-LOC\x0b\n")
    with pytest.raises(InputError, match="unknown tag 'B-LOC\\\\x0b'.*free of whitespace") as info:
        read_conll(path)
    assert str(info.value).startswith(f"{path}:1: ")


def test_char_files_refuse_tokens_of_two_characters(tmp_path):
    path = write(tmp_path / "c.txt", "\u5f20\tB-PER\n\u4e09\u4e30\tI-PER\n")
    for scheme in ("bio", "bmes"):
        with pytest.raises(InputError, match="'\u4e09\u4e30' is 2 characters") as info:
            read_char_file(path, scheme)
        assert str(info.value).startswith(f"{path}:2: ")
    for fmt in ("char", "char-bmes"):
        with pytest.raises(InputError, match="token 1 \\('ab'\\) has 2 characters") as info:
            write_records(tmp_path / "o.txt", [make_record("z", ["\u5f20", "ab"], [])], fmt)
        assert str(info.value).startswith("record 0 (id 'z'): ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


@pytest.mark.parametrize("changes,pattern", [
    ({"start_position": [True], "end_position": [1]}, "true/false are not indices"),
    ({"span_position": ["--1;1"]}, "is not \"start;end\""),
    ({"span_position": ["\u00b2;1"]}, "is not \"start;end\""),
    ({"span_position": ["\u0660;1"]}, "is not \"start;end\""),  # Arabic-Indic zero: int() takes it, we do not
    ({"span_position": ["9" * 5000 + ";1"]}, "is not \"start;end\""),
    ({"entity_label": "P ER"}, "without whitespace"),
    ({"context": "\ud800"}, "lone surrogate"),
])
def test_read_mrc_refuses_odd_values(tmp_path, changes, pattern):
    path = tmp_path / "bad.json"
    path.write_text("[\n" + json.dumps(mrc_example()) + ",\n" + json.dumps(mrc_example(qas_id="1.1", **changes))
                    + "\n]\n", encoding="utf-8")
    with pytest.raises(InputError, match=pattern) as info:
        read_mrc_json(path)
    assert str(info.value).startswith(f"{path}:3: ")


def test_write_mrc_refuses_what_it_could_not_read_back(tmp_path):
    out = tmp_path / "m.json"
    with pytest.raises(InputError, match="lists the span \\[0, 0, 'PER'\\] twice"):
        write_mrc_json(out, [make_record("d", ["a"], [(0, 0, "PER"), (0, 0, "PER")])], {"PER": "q"})
    with pytest.raises(CofeeError, match="without whitespace"):
        write_mrc_json(out, [make_record("d", ["a"], [])], {"P ER": "q"})
    with pytest.raises(InputError, match="empty or holds whitespace"):
        write_mrc_json(out, [make_record("d", ["a\u2028b"], [])], {"PER": "q"})
    with pytest.raises(InputError, match="lone surrogate"):
        write_mrc_json(out, [make_record("d", ["\udc00"], [])], {"PER": "q"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text,pattern", [
    ('{"O": 0, "B-X": true}', "has id true"),
    ('{"O": ' + "9" * 5000 + "}", "not usable JSON"),
    ("[" * 5000, "not usable JSON"),
    ('{"O": 0, "B-\\udc00": 1}', "lone surrogate"),
])
def test_read_tag_map_refuses_odd_values(tmp_path, text, pattern):
    write(tmp_path / "tag_to_id.json", text)
    write(tmp_path / "b.json", '[{"str_words": ["a"], "tags": [0]}]')
    with pytest.raises(InputError, match=pattern) as info:
        read_bond(tmp_path / "b.json")
    assert info.value.path == str(tmp_path / "tag_to_id.json")


def test_read_bond_refuses_boolean_tag_ids(tmp_path):
    write(tmp_path / "tag_to_id.json", '{"O": 0, "B-X": 1}')
    path = write(tmp_path / "b.json", '[{"str_words": ["a"], "tags": [0]},\n{"str_words": ["a"], "tags": [true]}]')
    with pytest.raises(InputError, match="tag id true at word 0") as info:
        read_bond(path)
    assert str(info.value).startswith(f"{path}:2: example 1")


def test_read_queries_refuses_odd_values(tmp_path):
    from cofee_lib.formats.mrc_json import read_queries

    for text, pattern in [('{"P ER": "q"}', "without whitespace"), ('{"PER": "\\ud800"}', "lone surrogate"),
                          ("[" * 5000, "not usable JSON"), ('{"PER": ""}', "non-empty string")]:
        with pytest.raises(InputError, match=pattern):
            read_queries(write(tmp_path / "q.json", text))
