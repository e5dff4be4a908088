"""Sentence splitting and tokenisation that respect anchors.

Conventions: anchors are ``(start, end, target)`` with character offsets and an **exclusive**
end; token spans returned by :func:`tokenize_with_anchors` are word indices with an
**inclusive** end, as in :mod:`cofee_lib.records`.

* English sentences: split after ``.``, ``!`` or ``?`` (plus closing quotes/brackets) when
  whitespace and an upper-case letter, digit or opening quote follow, except after common
  abbreviations (``Mr.``, ``Dr.``, ``St.``, ``e.g.``, month names...), single-letter initials
  (``John F. Kennedy``) and dotted acronyms (``U.S.``); after an acronym or ``Inc.``, ``Ltd.``,
  ``Jr.``, ``etc.``, ``et al.`` it does split when a frequent sentence opener follows (``The``,
  ``In``, ``He``...). Decimals never split (no whitespace follows the point).
* Chinese sentences: split after ``。！？；`` (and ``!?``), plus closing quotes/brackets.
* A split point that falls inside an anchor is never used.
* English tokens: words, with hyphenated words (``well-known``) and inner apostrophes
  (``O'Brien``) kept whole; clitics split off as in the Penn Treebank / CoNLL-2003
  (``Obama's`` -> ``Obama 's``, ``don't`` -> ``do n't``); numbers with ``.,:`` kept whole
  (``3.5``, ``1,000``); dotted acronyms and common abbreviations keep their point (``U.S.``,
  ``Mr.``); every other punctuation mark is its own token (``...`` and ``--`` stay whole).
* Chinese tokens: one token per character; runs of Latin letters and runs of digits (with
  ``.,``) stay one token each (``iPhone``, ``2020``).
* Tokens never cross an anchor boundary: a token that would is split at the boundary.
"""
from __future__ import annotations

import bisect
import re

Anchor = tuple[int, int, str]

ABBREVIATIONS = frozenset("""
mr mrs ms messrs dr prof st jr sr mt ft gen col lt sgt capt cmdr adm maj gov sen rep rev hon pres
supt insp det brig cpl pvt inc ltd co corp bros assn dept univ no nos vol vols p pp ch chap fig
figs ed eds est approx ca c cf e.g i.e vs viz al jan feb mar apr jun jul aug sep sept oct nov dec
ave blvd rd op ph.d b.a m.a u.s u.k u.n a.d b.c n.b
""".split())

_SENTENCE_FINAL_ABBR = frozenset("inc ltd co corp bros jr sr etc al".split())
_OPENERS = frozenset("""The In He She It This They His Her After On At During However As By For When Its
There These Their Since Although While From Following Today Other Many Some We Both Later""".split())
_EN_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*(?=\s+["“‘(\[]?[A-Z0-9\u00C0-\u00DE])""")
_ZH_BOUNDARY = re.compile(r"[。！？；!?]+[”’」』）)》\"']*")
_ACRONYM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")

_EN_TOKEN = re.compile(r"""
    (?:[A-Za-z]\.){2,}(?![A-Za-z0-9])        # dotted acronyms: U.S., e.g.
  | \d+(?:[.,:]\d+)+                          # 3.5  1,000  10:30
  | \w+(?:[-'’&]\w+)*                         # words, well-known, O'Brien, AT&T
  | \.{3}|-{2,}                               # ellipsis, dashes
  | [^\w\s]                                   # any other mark
""", re.X)
_CLITIC = re.compile(r"(?i)(?<=\w)(n['’]t|['’](?:s|re|ve|ll|d|m))$")
_TITLE_ABBR = frozenset("Mr Mrs Ms Messrs Dr Prof St Jr Sr Mt Ft Gen Col Lt Sgt Capt Adm Maj Gov Sen Rep Rev Hon Inc Ltd Corp Co Bros Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Ave Blvd Mt vs".split())
_ZH_TOKEN = re.compile(r"[A-Za-z\u00C0-\u024F]+|\d+(?:[.,]\d+)*|\S")


def _inside_anchor(pos: int, anchors: list[Anchor]) -> bool:
    return any(s < pos < e for s, e, _ in anchors)


def _en_split_points(text: str) -> list[int]:
    points = []
    for m in _EN_BOUNDARY.finditer(text):
        run = m.group()
        if run[0] == "." and not run.startswith(".."):
            begin = max(text.rfind(" ", 0, m.start()), text.rfind("\n", 0, m.start())) + 1
            word = text[begin:m.start()].lstrip("([\"'“‘")
            acronym = _ACRONYM.fullmatch(word) is not None
            if word.lower() in ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or acronym:
                # "... in the U.S. The next ...", "... Apple Inc. It ...": an acronym or a
                # company/suffix abbreviation followed by a frequent sentence opener ends a sentence
                nxt = text[m.end():m.end() + 16].split(None, 1)
                opener = nxt[0].lstrip("\"“‘(") if nxt else ""
                if not ((acronym or word.lower() in _SENTENCE_FINAL_ABBR) and opener in _OPENERS):
                    continue
        points.append(m.end())
    return points


def _zh_split_points(text: str) -> list[int]:
    return [m.end() for m in _ZH_BOUNDARY.finditer(text) if m.end() < len(text)]


def split_sentences(text: str, anchors: list[Anchor], lang: str = "en") -> list[tuple[str, list[Anchor]]]:
    """Split one paragraph into ``[(sentence, anchors), ...]``, offsets re-based per sentence.

    Never splits inside an anchor; surrounding whitespace is stripped from each sentence.
    """
    points = _zh_split_points(text) if lang == "zh" else _en_split_points(text)
    cuts = [p for p in points if not _inside_anchor(p, anchors)] + [len(text)]
    out = []
    begin = 0
    for cut in cuts:
        chunk = text[begin:cut]
        lead = len(chunk) - len(chunk.lstrip())
        sent = chunk.strip()
        if sent:
            s0 = begin + lead
            s1 = s0 + len(sent)
            out.append((sent, [(s - s0, e - s0, t) for s, e, t in anchors if s >= s0 and e <= s1]))
        begin = cut
    return out


def _en_tokens(text: str) -> list[tuple[int, int]]:
    spans = []
    append = spans.append
    for m in _EN_TOKEN.finditer(text):
        s, e = m.span()
        if text[e:e + 1] == "." or "'" in text[s:e] or "’" in text[s:e]:
            tok = m.group()
            c = _CLITIC.search(tok) if tok[0].isalpha() else None
            if c and c.start() > 0:
                append((s, s + c.start()))
                append((s + c.start(), e))
                continue
            # keep the point of a title abbreviation, or of an initial followed by a name
            if text[e:e + 1] == "." and text[e + 1:e + 2] != "." and (
                    tok in _TITLE_ABBR or (len(tok) == 1 and tok.isupper() and text[e + 1:e + 2] == " "
                                           and text[e + 2:e + 3].isupper())):
                append((s, e + 1))
                continue
        if spans and s < spans[-1][1]:  # the point already taken by an abbreviation
            continue
        append((s, e))
    return spans


def _zh_tokens(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _ZH_TOKEN.finditer(text)]


def token_offsets(text: str, lang: str = "en", boundaries=()) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` (end exclusive) of the tokens of ``text``.

    Every non-space character belongs to exactly one token. A token is split at every
    position in ``boundaries`` that falls strictly inside it.
    """
    spans = _zh_tokens(text) if lang == "zh" else _en_tokens(text)
    cuts = sorted(set(boundaries))
    if not cuts:
        return spans
    out = []
    for s, e in spans:
        i = bisect.bisect_right(cuts, s)
        while i < len(cuts) and cuts[i] < e:
            if text[s:cuts[i]].strip():
                out.append((s, cuts[i]))
            s = cuts[i]
            i += 1
        if text[s:e].strip():
            out.append((s, e))
    return out


def tokenize_with_anchors(text: str, anchors: list[Anchor], lang: str = "en"):
    """Tokenise a sentence; return ``(tokens, spans, targets)``.

    ``spans`` are ``(start, end)`` word indices, **inclusive end**, one per anchor that covers
    at least one token, aligned exactly to token boundaries; ``targets`` follow the same order.
    """
    bounds = [b for s, e, _ in anchors for b in (s, e)]
    offsets = token_offsets(text, lang, bounds)
    tokens = [text[s:e] for s, e in offsets]
    starts = {s: i for i, (s, _) in enumerate(offsets)}
    ends = {e: i for i, (_, e) in enumerate(offsets)}
    spans, targets = [], []
    for a_s, a_e, target in anchors:
        i = starts.get(a_s)
        j = ends.get(a_e)
        if i is None or j is None or j < i:
            continue
        spans.append((i, j))
        targets.append(target)
    return tokens, spans, targets
