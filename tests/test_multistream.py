"""Multistream dumps (cofee_lib.wiki.multistream): parallel streams, the same output as one stream.

Every dump here is written by ``write_dump`` from the hand-made fixtures in tests/fixtures/wiki/
(a few pages per stream, so that a 7-page dump has several streams), so the tests take seconds.
"""
from __future__ import annotations

import bz2
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from cofee_lib.errors import CofeeError, InputError
from cofee_lib.records import iter_jsonl
from cofee_lib.wiki import DumpError, SiteInfo, anchor_sentences, build_anchor_corpus, iter_pages
from cofee_lib.wiki import multistream
from cofee_lib.wiki.multistream import (index_beside, iter_multistream_pages, scan_offsets, write_dump)
from cofee_lib.wiki.redirects import RedirectTable

FIXTURES = Path(__file__).parent / "fixtures" / "wiki"
EN_BZ2 = FIXTURES / "enwiki-sample.xml.bz2"
ZH_BZ2 = FIXTURES / "zhwiki-sample.xml.bz2"
NAME = "enwiki-20200401-pages-articles-multistream.xml.bz2"


def _pages(path):
    info = SiteInfo()
    return list(iter_pages(path, info, progress=False)), info


def _index_lines(index: Path) -> list[str]:
    return bz2.decompress(index.read_bytes()).decode("utf-8").splitlines()


def _write_index(index: Path, lines: list[str]) -> None:
    index.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode("utf-8")))


def _copies(pages, times):
    """The pages ``times`` times, titles of copies 2.. renamed and ids made unique (as the benchmark does)."""
    out = list(pages)
    for k in range(2, times + 1):
        out += [replace(p, id=str(int(p.id) + k * 10 ** 6), title=f"{p.title} (copy {k})") for p in pages]
    return out


@pytest.fixture
def en_multi(tmp_path):
    pages, info = _pages(EN_BZ2)
    return write_dump(pages, tmp_path / NAME, info, pages_per_stream=2)


def _build(dump, out, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("min_anchors", 1)
    stats = build_anchor_corpus(dump, out, **kw)
    return Path(out).read_bytes(), stats


def _same_counts(a: dict, b: dict) -> bool:
    drop = ("index", "bytes_read")
    return {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}


# ----------------------------------------------------------------------------- the format

def test_written_dump_has_the_wikimedia_layout(en_multi, monkeypatch):
    dump, index = Path(en_multi["dump"]), Path(en_multi["index"])
    assert index.name == "enwiki-20200401-pages-articles-multistream-index.txt.bz2"
    assert index_beside(dump) == index
    pages, _ = _pages(EN_BZ2)
    lines = _index_lines(index)
    assert [line.split(":", 2)[1:] for line in lines] == [[p.id, p.title] for p in pages]
    offsets = sorted({int(line.split(":", 1)[0]) for line in lines})
    assert en_multi["streams"] == 2 + len(offsets) == 6  # header, 4 page streams of <= 2 pages, footer
    data = dump.read_bytes()
    streams = [data[a:b] for a, b in zip([0] + offsets, offsets + [None])]
    header = bz2.decompress(streams[0]).decode("utf-8")
    assert "<siteinfo>" in header and "<page>" not in header
    assert all(s.startswith(b"BZh") for s in streams)
    assert bz2.decompress(data).decode("utf-8").rstrip().endswith("</mediawiki>")
    ET.fromstring(bz2.decompress(data))  # one well-formed XML document
    # every stream start, and nothing else, is found by scanning
    expected = [0] + offsets + [offsets[-1] + _footer_at(streams[-1])]
    assert [o for o, _ in scan_offsets(dump)] == expected
    for chunk in (7, 64, 333):  # stream headers across the scan's read boundaries: each found once
        monkeypatch.setattr(multistream, "SCAN_CHUNK", chunk)
        assert [o for o, _ in scan_offsets(dump)] == expected


def _footer_at(last: bytes) -> int:
    """Where the footer stream starts inside the bytes after the last index offset."""
    decomp = bz2.BZ2Decompressor()
    decomp.decompress(last)
    return len(last) - len(decomp.unused_data)


def test_multistream_pages_equal_one_stream_pages(en_multi):
    pages, info = _pages(EN_BZ2)
    info2 = SiteInfo()
    assert list(iter_multistream_pages(en_multi["dump"], info=info2)) == pages
    assert info2 == info
    assert list(iter_pages(en_multi["dump"], progress=False)) == pages  # a plain reader reads it too
    assert [p.id for p in iter_multistream_pages(en_multi["dump"], limit_pages=3)] == ["101", "102", "103"]


# ----------------------------------------------------------------------------- same output

@pytest.mark.parametrize("unit_bytes", [1, 1 << 20])  # one stream per task / everything in one task
def test_workers_and_one_stream_give_identical_bytes(tmp_path, monkeypatch, en_multi, unit_bytes):
    monkeypatch.setattr(multistream, "UNIT_BYTES", unit_bytes)
    plain, s_plain = _build(EN_BZ2, tmp_path / "plain.jsonl")
    one, s_one = _build(en_multi["dump"], tmp_path / "w1.jsonl", workers=1)
    two, s_two = _build(en_multi["dump"], tmp_path / "w2.jsonl", workers=2)
    none, s_none = _build(en_multi["dump"], tmp_path / "none.jsonl", workers=2, index="none")
    scan, _ = _build(en_multi["dump"], tmp_path / "scan.jsonl", workers=2, index="scan")
    assert plain == one == two == none == scan and len(plain.splitlines()) == 11
    assert s_one == s_two and s_one["index"] == en_multi["index"] and s_none["index"] is None
    assert _same_counts(s_one, s_plain) and s_one["targets_redirected"] == 5
    assert s_one["bytes_read"] == s_none["bytes_read"] == Path(en_multi["dump"]).stat().st_size


def test_many_streams_of_repeated_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(multistream, "UNIT_BYTES", 2000)  # a few streams per task
    pages, info = _pages(EN_BZ2)
    pages = _copies(pages, 4)
    single = write_dump(pages, tmp_path / "x4.xml.bz2", info, multistream=False)
    multi = write_dump(pages, tmp_path / "x4-multistream.xml.bz2", info, pages_per_stream=3)
    assert single["index"] is None and multi["streams"] == 2 + 10
    plain, s_plain = _build(single["dump"], tmp_path / "plain.jsonl")
    one, s_one = _build(multi["dump"], tmp_path / "w1.jsonl", workers=1)
    two, s_two = _build(multi["dump"], tmp_path / "w2.jsonl", workers=2)
    assert plain == one == two and len(plain.splitlines()) == 4 * 11
    assert s_one == s_two and _same_counts(s_one, s_plain) and s_one["redirects"] == 16


def test_chinese_multistream(tmp_path):
    pages, info = _pages(ZH_BZ2)
    multi = write_dump(pages, tmp_path / "zh-multistream.xml.bz2", info, pages_per_stream=1)
    plain, s_plain = _build(ZH_BZ2, tmp_path / "plain.jsonl")
    two, s_two = _build(multi["dump"], tmp_path / "w2.jsonl", workers=2)
    assert plain == two and s_two["lang"] == "zh" and _same_counts(s_plain, s_two)


@pytest.mark.parametrize("limit", [1, 2, 4, 6])
def test_limit_pages_matches_one_stream(tmp_path, monkeypatch, en_multi, limit):
    monkeypatch.setattr(multistream, "UNIT_BYTES", 1)
    plain, s_plain = _build(EN_BZ2, tmp_path / "plain.jsonl", limit_pages=limit)
    one, s_one = _build(en_multi["dump"], tmp_path / "w1.jsonl", limit_pages=limit)
    two, s_two = _build(en_multi["dump"], tmp_path / "w2.jsonl", limit_pages=limit, workers=2)
    assert plain == one == two and s_one == s_two and _same_counts(s_one, s_plain)
    assert s_one["pages"] == limit


def test_header_stream_holding_pages(tmp_path):
    """An index whose first offset is 0: the header stream also holds pages (read by the main process)."""
    pages, info = _pages(EN_BZ2)
    text = bz2.decompress(EN_BZ2.read_bytes())
    cut = text.index(b"<page>", text.index(b"<title>Analytical Engine</title>") - 200)  # pages 101, 102 | rest
    cut = text.rindex(b"\n", 0, cut) + 1
    end = text.rindex(b"</mediawiki>")
    first, second = bz2.compress(text[:cut]), bz2.compress(text[cut:end])
    dump = tmp_path / "odd-multistream.xml.bz2"
    dump.write_bytes(first + second + bz2.compress(text[end:]))
    _write_index(tmp_path / "odd-multistream-index.txt.bz2",
                 [f"0:{p.id}:{p.title}" for p in pages[:2]] + [f"{len(first)}:{p.id}:{p.title}" for p in pages[2:]])
    assert list(iter_multistream_pages(dump)) == pages
    plain, _ = _build(EN_BZ2, tmp_path / "plain.jsonl")
    two, _ = _build(dump, tmp_path / "w2.jsonl", workers=2)
    assert plain == two


def test_redirects_on_disk_give_the_same_output(tmp_path, en_multi):
    plain, s_plain = _build(en_multi["dump"], tmp_path / "mem.jsonl", workers=2)
    disk, s_disk = _build(en_multi["dump"], tmp_path / "disk.jsonl", workers=2, redirects_in_memory=1)
    assert plain == disk and s_plain == s_disk and s_disk["targets_redirected"] == 5
    assert not list(tmp_path.glob("cofee-redirects-*"))  # the SQLite file is removed

    table = RedirectTable(tmp_path, max_in_memory=2)
    for title, target in [("A", "B"), ("C", "D"), ("A", "E"), ("F", "G")]:
        table[title] = target
    assert table.on_disk and len(table) == 3
    table.freeze()
    assert (table.get("A"), table.get("C"), table.get("X"), table.get("X", "y")) == ("E", "D", None, "y")
    table.close()
    assert not list(tmp_path.glob("cofee-redirects-*"))


# ----------------------------------------------------------------------------- broken dumps and indexes

def _stream_offsets(index: Path) -> list[int]:
    return sorted({int(line.split(":", 1)[0]) for line in _index_lines(index)})


@pytest.mark.parametrize("workers", [1, 2])
def test_truncated_multistream_keeps_complete_pages(tmp_path, monkeypatch, en_multi, workers):
    monkeypatch.setattr(multistream, "UNIT_BYTES", 1)
    dump, index = Path(en_multi["dump"]), Path(en_multi["index"])
    offsets = _stream_offsets(index)
    cut_dir = tmp_path / "cut"
    cut_dir.mkdir()
    cut = cut_dir / dump.name
    cut.write_bytes(dump.read_bytes()[: offsets[2] + 40])  # inside the stream of pages 105, 106
    (cut_dir / index.name).write_bytes(index.read_bytes())
    out = tmp_path / "dg.jsonl"
    with pytest.raises(DumpError) as err:
        build_anchor_corpus(cut, out, min_anchors=1, progress=False, workers=workers)
    message = str(err.value)
    assert str(cut) in message and "truncated or corrupt" in message and f"byte {offsets[2]}" in message
    assert "last complete page: id 104, 'Analytical engine'" in message and not out.exists()
    with pytest.raises(CofeeError, match="--keep-partial"):
        build_anchor_corpus(cut, out, min_anchors=1, progress=False, workers=workers, keep_partial=True)
    full = [r["id"] for r in anchor_sentences(EN_BZ2, min_anchors=1, progress=False)]
    partial = [r["id"] for r in iter_jsonl(out)]
    assert partial == full  # the two articles come before the cut


def test_corrupt_stream_names_the_file_and_the_stream(tmp_path, en_multi):
    dump, index = Path(en_multi["dump"]), Path(en_multi["index"])
    offsets = _stream_offsets(index)
    data = bytearray(dump.read_bytes())
    middle = (offsets[1] + offsets[2]) // 2
    data[middle] ^= 0xFF
    dump.write_bytes(bytes(data))
    for workers in (1, 2):
        with pytest.raises(DumpError) as err:
            build_anchor_corpus(dump, tmp_path / "dg.jsonl", progress=False, workers=workers)
        assert str(dump) in str(err.value) and f"stream at byte {offsets[1]}" in str(err.value)
        assert err.value.last_page == ("102", "AE")


def test_index_offset_past_the_end(tmp_path, en_multi):
    dump, index = Path(en_multi["dump"]), Path(en_multi["index"])
    lines = _index_lines(index)
    size = dump.stat().st_size
    lines[-1] = re.sub(r"^\d+", str(size + 100), lines[-1])
    _write_index(index, lines)
    with pytest.raises(DumpError) as err:
        build_anchor_corpus(dump, tmp_path / "dg.jsonl", progress=False, workers=2)
    message = str(err.value)
    assert str(dump) in message and f"{index} line 7" in message and "past the end of the file" in message
    assert err.value.last_page == ("107", "Talk:Ada Lovelace")  # the data up to the end was read


@pytest.mark.parametrize("unit_bytes", [1, 1 << 20])
def test_index_offset_inside_a_stream(tmp_path, monkeypatch, en_multi, unit_bytes):
    monkeypatch.setattr(multistream, "UNIT_BYTES", unit_bytes)
    dump, index = Path(en_multi["dump"]), Path(en_multi["index"])
    lines = _index_lines(index)
    offset = int(lines[2].split(":", 1)[0])
    lines[2:4] = [re.sub(r"^\d+", str(offset + 7), line) for line in lines[2:4]]
    _write_index(index, lines)
    with pytest.raises(DumpError) as err:
        build_anchor_corpus(dump, tmp_path / "dg.jsonl", progress=False, workers=2)
    message = str(err.value)
    assert str(dump) in message and f"{index} line 3" in message and f"byte {offset + 7}" in message
    assert "the index does not match the dump" in message or "not the start of a bz2 stream" in message


@pytest.mark.parametrize("bad, line, what", [
    ("abc:101:Ada Lovelace", 1, "decimal numbers"),
    ("336:Ada Lovelace", 1, "malformed index line"),
    ("DESCENDING", 3, "smaller than the one before"),
])
def test_malformed_index_lines_name_the_line(tmp_path, en_multi, bad, line, what):
    dump, index = Path(en_multi["dump"]), Path(en_multi["index"])
    lines = _index_lines(index)
    if bad == "DESCENDING":
        lines[2] = re.sub(r"^\d+", "5", lines[2])
    else:
        lines[0] = bad
    _write_index(index, lines)
    out = tmp_path / "dg.jsonl"
    with pytest.raises(InputError) as err:
        build_anchor_corpus(dump, out, progress=False, workers=2)
    assert str(err.value).startswith(f"{index}:{line}: ") and what in str(err.value)
    assert not out.exists()


def test_not_page_aligned_streams(tmp_path):
    """A multi-stream bz2 whose streams cut pages (as pbzip2 writes): refused by a scan, fine as one stream."""
    text = bz2.decompress(EN_BZ2.read_bytes())
    dump = tmp_path / "pbzip2.xml.bz2"
    dump.write_bytes(b"".join(bz2.compress(text[i:i + 700]) for i in range(0, len(text), 700)))
    with pytest.raises(DumpError, match="page") as err:
        build_anchor_corpus(dump, tmp_path / "dg.jsonl", progress=False, index="scan")
    assert str(dump) in str(err.value)
    plain, _ = _build(EN_BZ2, tmp_path / "plain.jsonl")
    auto, stats = _build(dump, tmp_path / "auto.jsonl", workers=2)  # no index beside it: one stream
    assert plain == auto and stats["index"] is None


# ----------------------------------------------------------------------------- the command

def _run_cli(argv):
    import argparse

    from cofee_lib.commands import _corpus_anchors

    parser = argparse.ArgumentParser()
    _corpus_anchors.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_command_index_flag(tmp_path, en_multi, capsys):
    dump = en_multi["dump"]
    outs = {}
    for flag in ("auto", en_multi["index"], "scan", "none"):
        out = tmp_path / f"{len(outs)}.jsonl"
        assert _run_cli(["anchors", "--dump", dump, "--out", str(out), "--workers", "2", "--quiet",
                         "--index", flag]) == 0
        outs[flag] = out.read_bytes()
    assert len(set(outs.values())) == 1 and outs["auto"]
    assert "sentences kept                  5" in capsys.readouterr().out
    with pytest.raises(CofeeError, match="index file not found"):
        _run_cli(["anchors", "--dump", dump, "--out", str(tmp_path / "x.jsonl"), "--index", str(tmp_path / "no.txt")])


def test_cofee_main_exit_status_2_on_a_bad_index(tmp_path, en_multi, capsys):
    from cofee_lib.cli import main

    index = Path(en_multi["index"])
    lines = _index_lines(index)
    lines[1] = "oops"
    _write_index(index, lines)
    out = tmp_path / "o.jsonl"
    assert main(["corpus", "anchors", "--dump", en_multi["dump"], "--out", str(out), "--quiet"]) == 2
    assert f"{index}:2:" in capsys.readouterr().err and not out.exists()
