"""``cofee convert``: round trips between all formats, and bad input -> exit 2, file:line, no output."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cofee_lib.cli import main
from cofee_lib.records import read_jsonl

FIX = Path(__file__).parent / "fixtures" / "formats"


def convert(*args) -> int:
    return main(["convert", *map(str, args)])


def test_round_trip_conll_jsonl_mrc_bond_conll(tmp_path, capsys):
    """conll -> jsonl -> mrc -> jsonl -> bond -> jsonl -> conll gives back the same records and bytes."""
    src = tmp_path / "conll4.conll"
    assert convert(FIX / "conll4.txt", tmp_path / "a.jsonl", "--from", "conll", "--to", "jsonl", "--id-prefix", "s") == 0
    assert convert(tmp_path / "a.jsonl", tmp_path / "b.mrc.json", "--from", "jsonl", "--to", "mrc",
                   "--queries", FIX / "queries.json") == 0
    assert convert(tmp_path / "b.mrc.json", tmp_path / "c.jsonl", "--from", "mrc", "--to", "jsonl", "--id-prefix", "s") == 0
    assert convert(tmp_path / "c.jsonl", tmp_path / "bond" / "d.json", "--from", "jsonl", "--to", "bond") == 0
    assert convert(tmp_path / "bond" / "d.json", tmp_path / "e.jsonl", "--from", "bond", "--to", "jsonl",
                   "--id-prefix", "s") == 0
    assert convert(tmp_path / "e.jsonl", src, "--from", "jsonl", "--to", "conll") == 0
    assert convert(src, tmp_path / "f.jsonl", "--from", "conll", "--to", "jsonl", "--id-prefix", "s") == 0
    first = (tmp_path / "a.jsonl").read_bytes()
    for name in ("c.jsonl", "e.jsonl", "f.jsonl"):
        assert (tmp_path / name).read_bytes() == first, name
    records = read_jsonl(tmp_path / "a.jsonl")
    assert [r["id"] for r in records] == ["s-0", "s-1", "s-2"]
    assert sum(len(r["spans"]) for r in records) == 5
    mrc = json.loads((tmp_path / "b.mrc.json").read_text(encoding="utf-8"))
    assert len(mrc) == 3 * 4 and mrc[0]["query"].startswith("Find persons")
    assert (tmp_path / "bond" / "tag_to_id.json").exists()
    # conll written from conll (token<TAB>tag) round-trips byte for byte
    assert convert(src, tmp_path / "g.conll", "--from", "conll", "--to", "conll") == 0
    assert (tmp_path / "g.conll").read_bytes() == src.read_bytes()
    err = capsys.readouterr().err
    assert "wrote 3 sentences" in err and "wrote 12 examples" in err


def test_scheme_conversions(tmp_path):
    assert convert(FIX / "bioes.txt", tmp_path / "x.iob1", "--from", "conll-bioes", "--to", "conll-iob1") == 0
    assert (tmp_path / "x.iob1").read_text(encoding="utf-8").split("\n")[:5] == [
        "Maria\tI-PER", "de\tI-PER", "Lopez\tI-PER", "met\tO", "Sam\tI-PER"]
    assert convert(FIX / "char_bio.txt", tmp_path / "x.bmes", "--from", "char", "--to", "char-bmes") == 0
    assert convert(tmp_path / "x.bmes", tmp_path / "y.jsonl", "--from", "char-bmes", "--to", "jsonl") == 0
    assert read_jsonl(tmp_path / "y.jsonl")[1]["spans"] == [[0, 2, "ORG"]]


def test_mrc_queries_default_and_kept(tmp_path, capsys):
    assert convert(FIX / "conll4.txt", tmp_path / "g.json", "--from", "conll", "--to", "mrc") == 0
    assert "generic queries" in capsys.readouterr().err
    data = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    assert [d["query"] for d in data[:3]] == ["Find LOC entities", "Find ORG entities", "Find PER entities"]
    # mrc -> mrc keeps the file's own queries and type order
    assert convert(FIX / "sample.mrc.json", tmp_path / "m.json", "--from", "mrc", "--to", "mrc") == 0
    again = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    original = json.loads((FIX / "sample.mrc.json").read_text(encoding="utf-8"))
    assert again == original


def test_help_lists_formats(capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("jsonl", "conll-iob1", "conll-bioes", "char-bmes", "mrc", "bond", "--queries", "Find TYPE entities"):
        assert name in out


def latin1_file(path: Path) -> Path:
    path.write_bytes(b"Paris B-LOC\n\nK\xf6ln B-LOC\n")
    return path


BAD_INPUTS = [
    # (file name, content, --from, expected line, message fragment)
    ("ragged.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-MISC\n", "conll", 3, "found 3 column(s), expected 4"),
    ("orphan.txt", "He O\nlives O\nin O\nNew I-LOC\nYork I-LOC\n", "conll", 4, "no LOC entity to continue"),
    ("unknown.txt", "He O\nis O\nBob B-PERSON\nSmith I-PER\n\nok O\n", "conll", 4, "no PER entity to continue"),
    ("unknown2.txt", "He O\n\nis O\nBob Z-PER\n", "conll", 4, "unknown tag 'Z-PER'"),
    ("unknown3.txt", "张\tB-PER\n三\tE-PER\n", "char", 2, "unknown tag 'E-PER'"),
    ("empty.txt", "", "conll", 1, "empty file"),
    ("blank.txt", "\n\n\n", "char", 1, "empty file"),
    ("empty.json", "[]", "mrc", 1, "empty file"),
    ("latin1.txt", None, "conll", 3, "not UTF-8"),
    ("bond/words.json", '[{"str_words": ["a"], "tags": [0]},\n {"str_words": ["b", "c"], "tags": [1]}]', "bond", 2,
     "2 words but 1 tags"),
    ("mrc.json", '[{"context": "a b", "query": "q", "entity_label": "X", "start_position": [0, 1],\n'
                 ' "end_position": [1], "qas_id": "0.1"}]', "mrc", 1, "start_position has 2 items but end_position has 1"),
    ("bad.jsonl", '{"id": "a", "tokens": ["x"], "spans": []}\n{"id": "b", "tokens": ["x"], "spans": [[0, 1, "PER"]]}\n',
     "jsonl", 2, "out of range"),
]


@pytest.mark.parametrize("name,content,fmt,line,fragment", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
@pytest.mark.parametrize("to", ["jsonl", "conll", "bond"])
def test_bad_input_exit_2_names_file_and_line_writes_nothing(tmp_path, capsys, name, content, fmt, line, fragment, to):
    src_dir = tmp_path / "in"
    path = src_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        latin1_file(path)
    else:
        path.write_text(content, encoding="utf-8")
    if fmt == "bond":
        (path.parent / "tag_to_id.json").write_text('{"O": 0, "B-X": 1, "I-X": 2}', encoding="utf-8")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    status = convert(path, out_dir / "result", "--from", fmt, "--to", to)
    err = capsys.readouterr().err
    assert status == 2
    assert f"{path}:{line}: " in err
    assert fragment in err
    assert list(out_dir.iterdir()) == []  # no output, no temporary file, no tag map


def test_writer_error_exit_2_and_nothing_written(tmp_path, capsys):
    """Nested spans are fine in MRC but cannot become tags: a clear error, no half-written conll or bond."""
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"id": "n", "tokens": ["Bank", "of", "China"], "spans": [[0, 2, "ORG"], [2, 2, "LOC"]]}\n',
                      encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    assert convert(nested, out / "n.json", "--from", "jsonl", "--to", "mrc") == 0
    for fmt in ("conll", "bond", "char"):
        target = tmp_path / "t" / "n.out"
        assert convert(out / "n.json", target, "--from", "mrc", "--to", fmt) == 2
        assert "overlap" in capsys.readouterr().err
        assert not target.parent.exists() or list(target.parent.iterdir()) == []
    queries = tmp_path / "q.json"
    queries.write_text('{"ORG": "find organisations"}', encoding="utf-8")
    assert convert(nested, out / "m.json", "--from", "jsonl", "--to", "mrc", "--queries", queries) == 2
    assert "no query for 'LOC'" in capsys.readouterr().err
    assert not (out / "m.json").exists()


def test_existing_output_is_kept_on_failure(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_text("a O\nb I-PER\n", encoding="utf-8")
    assert convert(bad, out, "--from", "conll", "--to", "jsonl") == 2
    assert out.read_text(encoding="utf-8") == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", "out.jsonl"]


def test_invalid_policy_flag(tmp_path):
    bad = tmp_path / "cut.txt"
    shutil.copy(FIX / "char_bio.txt", bad)
    with open(bad, "a", encoding="utf-8") as handle:
        handle.write("\n党\tI-ORG\n")
    assert convert(bad, tmp_path / "x.jsonl", "--from", "char", "--to", "jsonl") == 2
    assert convert(bad, tmp_path / "x.jsonl", "--from", "char", "--to", "jsonl", "--invalid", "drop") == 0
    assert read_jsonl(tmp_path / "x.jsonl")[-1]["spans"] == []
    assert convert(bad, tmp_path / "y.jsonl", "--from", "char", "--to", "jsonl", "--invalid", "begin") == 0
    assert read_jsonl(tmp_path / "y.jsonl")[-1]["spans"] == [[0, 0, "ORG"]]
