"""Plain text into words: the kit's one word splitter for raw text (``cofee tag``, the ``domain`` stage).

English (and any non-CJK script) is split by a regular expression: words with
inner apostrophes or hyphens, abbreviations like ``U.S.``, numbers, single
punctuation marks. Chinese, Japanese kana and full-width characters become one
character per token, as in MSRA and OntoNotes. Offsets are character offsets
in the input string with an exclusive end: ``text[start:end]`` is the word.
"""
from __future__ import annotations

import re

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
WORD_RE = re.compile(
    rf"[{_CJK}]"                                  # one CJK / kana / full-width character
    r"|(?:[A-Za-z]\.){2,}"                        # abbreviations: U.S., e.g.
    r"|\d+(?:[.,:/]\d+)+"                          # numbers: 3.5, 1,000, 10:30
    rf"|[^\W{_CJK}]+(?:['’\-][^\W{_CJK}]+)*"      # words, with inner ' or -
    r"|[^\w\s]"                                   # any other single symbol
)


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words of ``text`` and their ``(start, end)`` character offsets (end exclusive)."""
    words, offsets = [], []
    for m in WORD_RE.finditer(text):
        words.append(m.group())
        offsets.append((m.start(), m.end()))
    return words, offsets
