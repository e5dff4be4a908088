"""Property-based tests (hypothesis) for every reader and writer of cofee_lib.formats.

(a) Any bytes, read by any reader, give valid records or an InputError naming
    the file: never another exception (UnicodeDecodeError, KeyError,
    TypeError, ValueError, RecursionError, ...).
(b) Any generated record, written by any writer and read back, gives the same
    tokens and spans (and ids for jsonl), or the writer refuses it with a
    CofeeError; records within the format's limits are never refused.

Examples are kept small and few (see SETTINGS) so the file runs in well under
a minute on two slow cores, and the same every run (derandomized). For a
deeper, random search set COFEE_FUZZ_EXAMPLES, e.g.
``COFEE_FUZZ_EXAMPLES=3000 pytest tests/test_fuzz_formats.py``.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cofee_lib.errors import CofeeError, InputError
from cofee_lib.formats import FORMATS, read_records, write_records
from cofee_lib.formats.bond import TAG_MAP_NAME, read_tag_map
from cofee_lib.formats.mrc_json import generic_queries, read_queries
from cofee_lib.metrics import evaluate_records
from cofee_lib.records import iter_jsonl, read_jsonl, validate_record, write_jsonl

_DEEP = int(os.environ.get("COFEE_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(max_examples=_DEEP or 100, deadline=None, derandomize=not _DEEP, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
TAG_FORMATS = ["conll", "conll-iob1", "conll-bioes", "char", "char-bmes", "bond"]
JSON_KEYS = {
    "jsonl": ["id", "tokens", "spans", "targets"],
    "mrc": ["context", "query", "entity_label", "start_position", "end_position", "span_position",
            "impossible", "qas_id"],
    "bond": ["str_words", "tags"],
}
BOND_MAP = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh_dir(workdir: Path) -> Path:
    """A new empty folder per example (hypothesis runs many examples in one test call)."""
    return Path(tempfile.mkdtemp(dir=workdir))


# ---------------------------------------------------------------- (a) any bytes


COLUMN_PIECES = [b"B-PER", b"I-PER", b"E-PER", b"S-LOC", b"M-LOC", b"L-LOC", b"U-X", b"O", b"B-", b"X-PER",
                 b"I-X\x0b", b"x", b"ab", "\u5f20".encode(), b"-DOCSTART-", b"\t", b" ", b"  ", b"\n", b"\n\n",
                 b"\r", b"\r\n", "\ufeff".encode(), "\u2028".encode(), b"\x00", b"\xff", b"\xe5\xbc", b"\x85"]
JSON_PIECES = [b"[", b"]", b"{", b"}", b",", b":", b'"', b'"context"', b'"a b"', b'"0;1"', b'"x"', b"0", b"1",
               b"-1", b"7", b"1.0", b"true", b"false", b"null", b"NaN", b"1e400", b'"\\ud800"',
               b'"\\ud83d\\ude00"', b"\\", b"\n", b"\r", b" ", b"\xff", "\u00e9".encode(),
               "\ufeff".encode()] + [f'"{k}"'.encode() for keys in JSON_KEYS.values() for k in keys]


TEMPLATES = {
    "jsonl": {"id": "a", "tokens": ["x", "y"], "spans": [[0, 1, "PER"]]},
    "mrc": {"context": "a b", "query": "q", "entity_label": "PER", "start_position": [0], "end_position": [1],
            "span_position": ["0;1"], "impossible": False, "qas_id": "0.1"},
    "bond": {"str_words": ["a", "b"], "tags": [1, 2]},
}
# placeholders for JSON that json.dumps will not write: replaced in the dumped text
RAW = {'"@BIG"': "9" * 4400, '"@DEEP"': "[" * 1200 + "]" * 1200, '"@LONE"': '"\\ud800"', '"@PAIR"': '"\\ud83d\\ude00"'}
ODD_VALUES = [True, False, None, 1.0, -1, "", "0;1", "--1;0", "\u00b2;1", "0 ; 1", "1;0", "a b", "0.1", ".1", "B-PER",
              [True], [False, 1], [[True, 0, "X"]], [[0, False, "X"]], [[0, 0, None]], [[0, 0]], [0, "1"], [1.0],
              ["x", 1], [None], {"a": 1}, [[]], "@BIG", ["@BIG"], "@DEEP", "@LONE", ["@LONE"], "@PAIR"]


def json_values(keys: list[str]):
    """JSON values of every kind (and odd ones: booleans as indices, huge numbers, deep nesting)."""
    scalars = (st.none() | st.booleans() | st.integers(-2, 9) | st.floats() | st.text(max_size=4)
               | st.sampled_from(ODD_VALUES))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(keys) | st.text(max_size=2), inner, max_size=3),
                        max_leaves=6)


@st.composite
def near_valid_item(draw, fmt: str):
    """A valid example of ``fmt`` with one to three keys replaced by odd values or removed."""
    item = dict(TEMPLATES[fmt])
    for key in draw(st.lists(st.sampled_from(sorted(item) + ["extra"]), min_size=1, max_size=3)):
        if draw(st.integers(0, 4)) == 0:
            item.pop(key, None)
        else:
            odd = st.sampled_from(ODD_VALUES)
            item[key] = draw(st.one_of(odd, odd, json_values(JSON_KEYS[fmt])))
    return item


def dumped(text: str) -> bytes:
    for placeholder, raw in RAW.items():
        text = text.replace(placeholder, raw)
    return text.encode("utf-8")


def json_documents(fmt: str):
    """Whole files: JSON lines of objects (jsonl), or an array of objects (mrc, bond)."""
    item = near_valid_item(fmt) | st.just(TEMPLATES[fmt]) | json_values(JSON_KEYS[fmt])
    items = st.lists(item, min_size=1, max_size=3)
    if fmt == "jsonl":
        return items.map(lambda xs: dumped("".join(json.dumps(x) + "\n" for x in xs)))
    return items.map(lambda xs: dumped(json.dumps(xs)))


def mutated(base: st.SearchStrategy):
    """Bytes of ``base`` with a few bytes replaced, inserted or removed."""
    edit = st.tuples(st.integers(0, 10_000), st.sampled_from("rid"), st.binary(min_size=1, max_size=2))

    def apply(args):
        data, edits = args
        data = bytearray(data)
        for pos, op, b in edits:
            pos = pos % (len(data) + 1)
            if op == "r" and pos < len(data):
                data[pos:pos + 1] = b
            elif op == "i":
                data[pos:pos] = b
            else:
                del data[pos:pos + 1]
        return bytes(data)

    return st.tuples(base, st.lists(edit, min_size=1, max_size=3)).map(apply)


def any_bytes(fmt: str):
    pieces = COLUMN_PIECES if fmt.startswith(("conll", "char")) else JSON_PIECES
    from_pieces = st.lists(st.sampled_from(pieces), max_size=40).map(b"".join)
    strategies = [st.binary(max_size=200), from_pieces, mutated(from_pieces)]
    if fmt in JSON_KEYS:  # mostly JSON, near-valid examples of the format with odd values
        strategies += [json_documents(fmt)] * 4 + [mutated(json_documents(fmt))]
    return st.one_of(strategies)


def reader(fmt: str):
    """``read(path, invalid)`` for a registered format, plus records.iter_jsonl."""
    if fmt == "iter_jsonl":
        return lambda path, invalid: list(iter_jsonl(path))
    return lambda path, invalid: read_records(path, fmt, invalid=invalid)


@pytest.mark.parametrize("fmt", sorted(FORMATS) + ["iter_jsonl"])
@SETTINGS
@given(data=st.data())
def test_any_bytes_give_records_or_an_input_error(workdir, fmt, data):
    content = data.draw(any_bytes("jsonl" if fmt == "iter_jsonl" else fmt), label="content")
    invalid = data.draw(st.sampled_from(["error", "begin", "drop"]), label="invalid")
    folder = fresh_dir(workdir)
    path = folder / "input.txt"
    path.write_bytes(content)
    if fmt == "bond":
        (folder / TAG_MAP_NAME).write_text(json.dumps(BOND_MAP), encoding="utf-8")
    try:
        records = reader(fmt)(path, invalid)
    except InputError as exc:
        assert exc.path == str(path)
        assert "\r" not in exc.message
        return
    assert records
    for rec in records:
        validate_record(rec)
        assert not any("\r" in tok for tok in rec["tokens"])
        assert not any("\r" in t or not t for _, _, t in rec["spans"])
        if fmt.startswith("char"):
            assert all(len(tok) == 1 for tok in rec["tokens"])


@pytest.mark.parametrize("what", ["tag map", "queries"])
@SETTINGS
@given(content=st.one_of(st.binary(max_size=80), json_values(["O", "B-PER", "PER"]).map(lambda v: dumped(json.dumps(v))),
                         mutated(st.just(json.dumps(BOND_MAP).encode()))))
def test_any_bytes_as_tag_map_or_queries(workdir, what, content):
    path = fresh_dir(workdir) / "side.json"
    path.write_bytes(content)
    try:
        data = read_tag_map(path) if what == "tag map" else read_queries(path)
    except InputError as exc:
        assert exc.path == str(path)
        return
    assert isinstance(data, dict) and data


# ---------------------------------------------------------------- (b) round trips

ODD_TOKENS = ["-DOCSTART-", "", " ", "a b", "a\tb", "\ufeffx", "\r", "x\r\n", "\x0b", "\u2028", "\x85", "\u3000",
              "B-X", "O", "\u5f20\u4e09", "\ud800", "{", '"']
ODD_TYPES = ["PER", "LOC", "B-X", "O", "X Y", "", "LOC\r", "a-b", "\u5730\u540d", "\udc00"]


def odd_text(examples: list[str], max_size: int = 5):
    return st.one_of(st.text(max_size=max_size), st.sampled_from(examples))


def clean_token(fmt: str):
    """Tokens every writer of ``fmt`` must accept."""
    if fmt.startswith("char"):
        return st.characters(codec="utf-8", exclude_characters=" \t\n\r\ufeff")
    if fmt == "mrc":
        return st.text(min_size=1, max_size=5).filter(lambda t: not any(c.isspace() for c in t))
    if fmt.startswith("conll"):
        return st.text(min_size=1, max_size=5).filter(
            lambda t: not any(c in t for c in " \t\n\r") and t != "-DOCSTART-" and not t.startswith("\ufeff"))
    return st.text(max_size=5)


CLEAN_TYPE = st.text(min_size=1, max_size=4).filter(lambda t: not any(c.isspace() for c in t))


@st.composite
def spans_over(draw, n: int, types, overlap: bool):
    """Spans over ``n`` tokens: any in range when ``overlap``, else a left-to-right non-overlapping run."""
    if overlap:
        pairs = draw(st.lists(st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, 3)), max_size=4)) if n else []
        return sorted({(s, min(s + k, n - 1), draw(types)) for s, k in pairs})
    spans, i = [], 0
    while i < n:
        if draw(st.booleans()):
            end = min(n - 1, i + draw(st.integers(0, 2)))
            spans.append((i, end, draw(types)))
            i = end + 1
        else:
            i += draw(st.integers(1, 2))
    return spans


@st.composite
def records_for(draw, fmt: str, clean: bool):
    """A list of 1-4 records: within ``fmt``'s limits when ``clean``, else with odd tokens, types, overlaps."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        if clean:
            tokens = draw(st.lists(clean_token(fmt), min_size=0 if fmt in ("jsonl", "mrc", "bond") else 1,
                                   max_size=7))
            types = CLEAN_TYPE if fmt != "jsonl" else st.text(max_size=4)
        else:
            tokens = draw(st.lists(odd_text(ODD_TOKENS), max_size=6))
            types = odd_text(ODD_TYPES, max_size=3)
        overlap = fmt in ("jsonl", "mrc") or not clean
        spans = draw(spans_over(len(tokens), types, overlap))
        rid = draw(st.text(min_size=1, max_size=6)) if clean else draw(odd_text(["0", "x", "", "\ud800"], 4))
        out.append({"id": rid, "tokens": tokens, "spans": [list(s) for s in sorted(spans)]})
    return out


def write_options(fmt: str, records: list[dict], folder: Path) -> dict:
    if fmt == "mrc":
        return {"queries": {**generic_queries(records), "EXTRA": "Find extra entities"}}
    if fmt == "bond":
        return {"tag_map": folder / TAG_MAP_NAME}
    return {}


def check_read_back(fmt: str, records: list[dict], path: Path, options: dict) -> None:
    """Read ``path`` (written from ``records``) and compare: same tokens and spans (and ids for jsonl)."""
    queries: dict = {}
    again = read_records(path, fmt, id_prefix="r", queries_out=queries)
    assert [r["tokens"] for r in again] == [r["tokens"] for r in records]
    assert [r["spans"] for r in again] == [sorted(r["spans"]) for r in records]
    if fmt == "jsonl":
        assert again == records
        return
    assert [r["id"] for r in again] == [f"r-{i}" for i in range(len(records))]
    if fmt == "mrc":
        assert queries == options["queries"]
    twice = path.with_name("twice")  # writing what was read gives the same bytes
    write_records(twice, again, fmt, **options)
    assert twice.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@SETTINGS
@given(data=st.data())
def test_records_within_limits_round_trip(workdir, fmt, data):
    records = data.draw(records_for(fmt, clean=True), label="records")
    folder = fresh_dir(workdir)
    options = write_options(fmt, records, folder)
    write_records(folder / "out", records, fmt, **options)
    check_read_back(fmt, records, folder / "out", options)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@SETTINGS
@given(data=st.data())
def test_any_records_round_trip_or_are_refused(workdir, fmt, data):
    records = data.draw(records_for(fmt, clean=False), label="records")
    folder = fresh_dir(workdir)
    options = write_options(fmt, records, folder)
    try:
        write_records(folder / "out", records, fmt, **options)
    except CofeeError:
        assert list(folder.iterdir()) == [], "a refused write leaves no file behind"
        return
    check_read_back(fmt, records, folder / "out", options)


@SETTINGS
@given(records=records_for("jsonl", clean=False))
def test_write_jsonl_then_iter_jsonl(workdir, records):
    """records.write_jsonl writes what it is given; what validate_record accepts comes back the same."""
    try:
        for rec in records:
            validate_record(rec)
    except InputError:
        return
    path = fresh_dir(workdir) / "r.jsonl"
    try:
        write_jsonl(path, records)
    except CofeeError:  # a lone surrogate cannot be written as UTF-8
        assert not path.exists()
        return
    assert list(iter_jsonl(path)) == records
    assert read_jsonl(path).lines == list(range(1, len(records) + 1))


@SETTINGS
@given(gold=records_for("jsonl", clean=True), data=st.data())
def test_evaluate_scores_or_names_the_file(workdir, gold, data):
    """Predictions with changed ids or tokens: a score only when they pair up, else an InputError at a file."""
    folder = fresh_dir(workdir)
    for i, rec in enumerate(gold):
        rec["id"] = f"s{i}"
    pred = [dict(rec) for rec in gold]
    k = data.draw(st.integers(0, len(pred) - 1))
    change = data.draw(st.sampled_from(["none", "id", "token", "drop token", "add token"]))
    if change == "id":
        pred[k]["id"] = data.draw(st.text(min_size=1, max_size=3))
    elif change == "token":
        assume(pred[k]["tokens"])
        new = data.draw(st.text(max_size=3))
        pred[k]["tokens"] = [new] + pred[k]["tokens"][1:]
    elif change == "drop token":
        pred[k]["tokens"] = pred[k]["tokens"][:-1]
    elif change == "add token":
        pred[k]["tokens"] = pred[k]["tokens"] + ["extra"]
    try:
        write_jsonl(folder / "gold.jsonl", gold)
        write_jsonl(folder / "pred.jsonl", pred)
        g, p = read_jsonl(folder / "gold.jsonl"), read_jsonl(folder / "pred.jsonl")
    except InputError:  # e.g. a prediction span now out of range
        return
    try:
        scores = evaluate_records(g, p)
    except InputError as exc:
        assert exc.path in (str(folder / "gold.jsonl"), str(folder / "pred.jsonl"))
        assert any(a["id"] != b["id"] or a["tokens"] != b["tokens"] for a, b in zip(g, p))
        return
    assert [r["tokens"] for r in g] == [r["tokens"] for r in p]
    assert 0.0 <= scores["f1"] <= 1.0
