"""Exact, token-level gazetteer matching: the Matching baseline and D_s (paper Sec. 4.2, 5.3).

Conventions
-----------
* Everything is **word level** (English) or **character level** (Chinese): a
  gazetteer entry is split into tokens with
  :func:`cofee_lib.gazetteers.tokenize_entry` and matches a text only as a
  whole run of tokens, so ``New York`` never matches inside ``New Yorker``.
  Spans are ``(start, end, type)`` with an **inclusive end**, like every
  record in the kit (:mod:`cofee_lib.records`).
* Tokens are compared after Unicode NFC normalisation and, when the
  gazetteers say so (``case_sensitive`` in ``provenance.json``; the kit's
  English default is case-sensitive, see :mod:`cofee_lib.gazetteers`), after
  case folding. With ``all_caps_title`` (case-sensitive only), a text token
  written in capitals that is not itself an entry token is also tried in
  title case, so the all-capitals datelines and headlines of news text
  (``LONDON``, ``NEW YORK``) match ``London`` and ``New York``.

How it works
------------
One Aho-Corasick automaton (pyahocorasick) is built over the entries' *token
sequences*: every distinct entry token gets a fixed-width code of ``w``
characters from a 64-letter alphabet (``w = 3`` covers 262,143 distinct
tokens) followed by a space, an entry of ``n`` tokens is the key of its ``n``
codes, and a sentence is encoded the same way (a token that occurs in no entry
gets the reserved "unknown" code, which no key contains). Since every code
ends with the one character that is not in the alphabet, a key can only
match where a token's code begins: every match is a whole run of tokens. The
small alphabet keeps the automaton's nodes narrow (pyahocorasick scans a
node's children linearly; one character per token would give the root tens
of thousands of children and be about forty times slower). Many sentences are
matched in one pass of the automaton, separated by a character no key
contains. Speed: about 1.9 million tokens/s on CoNLL-2003 train with the full
English gazetteers (2 CPU cores), plus about 2 s to build the automaton.

Overlapping matches are resolved **longest first, then leftmost**: the longest
candidate in a sentence is taken, candidates overlapping it are discarded, and
so on (ties in length go to the leftmost). So ``New York Stock Exchange`` (ORG)
wins over ``New York`` (LOC) inside it.

An entry that is in two or more types' gazetteers is resolved by the
``conflicts`` policy. ``"skip"`` was a little better than ``"priority"`` on
all three dev sets (F1 WNUT-16 31.6 vs 31.3, CoNLL-2003 39.04 vs 38.99, MSRA
53.9 vs 53.6; ``resources/gazetteer_choices.json``):

* ``"skip"`` (default): the match is ambiguous and yields no entity. It still
  takes part in the longest-first selection, so it also blocks the shorter
  matches inside it (the text names *something* there; we just do not know what
  type it is).
* ``"priority"``: the first type of ``priority`` (default ``PER, ORG, LOC,
  GPE``, then the rest alphabetically) that holds the entry wins.

Public functions: :func:`match_records` (the Matching baseline: the spans of
each record are the gazetteer matches), :func:`label_anchors` /
:func:`iter_label_anchors` (D_s: Wikipedia anchors typed by the gazetteers)
and the :class:`GazetteerMatcher` they share.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Iterable, Iterator, Mapping

from .errors import CofeeError

#: Separates sentences in the encoded text; no key contains it.
SENTENCE_BREAK = "\x01"
#: The alphabet of token codes: 64 characters, ``@`` (0x40) to DEL (0x7f).
ALPHABET_START, ALPHABET_SIZE = 0x40, 64
#: Ends every token code (not in the alphabet).
CODE_END = " "
#: Text tokens whose codes are remembered (cleared when full) to speed up encoding.
MEMO_SIZE = 1_000_000
DEFAULT_PRIORITY = ("PER", "ORG", "LOC", "GPE")
CONFLICT_POLICIES = ("skip", "priority")
#: Sentences per automaton pass in :meth:`GazetteerMatcher.find_many`.
CHUNK = 4096


def _code(index: int, width: int) -> str:
    """The code of token number ``index`` (0 is the unknown token): ``width`` letters and :data:`CODE_END`."""
    chars = []
    for _ in range(width):
        index, digit = divmod(index, ALPHABET_SIZE)
        chars.append(chr(ALPHABET_START + digit))
    return "".join(reversed(chars)) + CODE_END


def normalize_token(token: str, case_sensitive: bool = True) -> str:
    """NFC-normalise a token and, unless ``case_sensitive``, case-fold it."""
    if not token.isascii():
        token = unicodedata.normalize("NFC", token)
    return token if case_sensitive else token.casefold()


class GazetteerMatcher:
    """Exact longest-first token matcher over typed gazetteers.

    ``gazetteers``: ``{type: iterable of entries}`` (for example from
    :func:`cofee_lib.gazetteers.load_gazetteers`). ``lang``,
    ``case_sensitive`` and ``all_caps_title`` default to the attributes of a
    :class:`~cofee_lib.gazetteers.Gazetteers` object (what its
    ``provenance.json`` says); for a plain dict to ``"zh"`` if most entries
    are Han characters, else ``"en"``, and ``True``, ``False``.
    """

    def __init__(self, gazetteers: Mapping[str, Iterable[str]], *, lang: str | None = None,
                 case_sensitive: bool | None = None, all_caps_title: bool | None = None,
                 conflicts: str = "skip", priority: Iterable[str] | None = None):
        import ahocorasick

        from .gazetteers import guess_lang, tokenize_entry

        if conflicts not in CONFLICT_POLICIES:
            raise CofeeError(f"conflicts must be one of {', '.join(CONFLICT_POLICIES)}, not {conflicts!r}")
        self.lang = lang or getattr(gazetteers, "lang", None) or guess_lang(gazetteers)
        if case_sensitive is None:
            case_sensitive = getattr(gazetteers, "case_sensitive", True)
        self.case_sensitive = bool(case_sensitive)
        if all_caps_title is None:
            all_caps_title = getattr(gazetteers, "all_caps_title", False)
        self.all_caps_title = bool(all_caps_title) and self.case_sensitive
        self.conflicts = conflicts
        types = sorted(gazetteers)
        given = list(priority) if priority is not None else list(DEFAULT_PRIORITY)
        self.priority = tuple([t for t in given if t in gazetteers] + [t for t in types if t not in given])
        rank = {t: i for i, t in enumerate(self.priority)}

        key_types: dict[tuple, set] = {}
        for gaz_type in types:
            for entry in gazetteers[gaz_type]:
                tokens = tuple(normalize_token(t, self.case_sensitive) for t in tokenize_entry(entry, self.lang))
                if tokens:
                    key_types.setdefault(tokens, set()).add(gaz_type)
        ids: dict[str, int] = {}
        for tokens in key_types:
            for token in tokens:
                if token not in ids:
                    ids[token] = len(ids) + 1
        self.width = 1
        while ALPHABET_SIZE ** self.width < len(ids) + 1:
            self.width += 1
        self.unknown = _code(0, self.width)
        self.vocab: dict[str, str] = {token: _code(i, self.width) for token, i in ids.items()}
        self._memo: dict[str, str] = dict(self.vocab)
        self.n_keys = len(key_types)
        self.n_ambiguous = sum(1 for v in key_types.values() if len(v) > 1)
        self._keys: dict[str, str | None] = {}
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
        for tokens, found in key_types.items():
            key = "".join(self.vocab[t] for t in tokens)
            resolved = self._resolve(found, rank)
            self._keys[key] = resolved
            self._automaton.add_word(key, (len(key), resolved))
        if self._keys:
            self._automaton.make_automaton()

    def _resolve(self, found: set, rank: dict) -> str | None:
        if len(found) == 1:
            return next(iter(found))
        if self.conflicts == "skip":
            return None
        return min(found, key=lambda t: rank[t])

    def encode(self, tokens: Iterable[str]) -> str:
        """The tokens' codes (``width + 1`` characters per token; unknown tokens get :attr:`unknown`)."""
        memo = self._memo
        get = memo.get
        codes = [get(token) or self._code_of(token) for token in tokens]
        if len(memo) > MEMO_SIZE:
            memo.clear()
            memo.update(self.vocab)
        return "".join(codes)

    def _code_of(self, token: str) -> str:
        """The code of a text token: normalised, then (``all_caps_title``) in title case, else unknown."""
        get = self.vocab.get
        norm = normalize_token(token, self.case_sensitive)
        code = get(norm)
        if code is None and self.all_caps_title and len(norm) > 1 and norm.isupper():
            code = get(norm.title())
        code = code or self.unknown
        self._memo[token] = code
        return code

    def entry_type(self, tokens: Iterable[str]) -> str | None:
        """The type of the entry that is exactly ``tokens`` (``None``: no entry, or ambiguous and skipped)."""
        return self._keys.get(self.encode(tokens))

    def is_entry(self, tokens: Iterable[str]) -> bool:
        """Whether ``tokens`` is exactly some entry (ambiguous ones included)."""
        return self.encode(tokens) in self._keys

    def find(self, tokens: list[str]) -> list[tuple[int, int, str]]:
        """Matches in one sentence: sorted ``(start, end, type)``, inclusive ends, no overlaps."""
        return self.find_many([tokens])[0]

    def find_many(self, sentences: Iterable[list[str]]) -> list[list[tuple[int, int, str]]]:
        """:meth:`find` for many sentences, one automaton pass per :data:`CHUNK` sentences."""
        results: list[list[tuple[int, int, str]]] = []
        chunk: list[list[str]] = []
        for tokens in sentences:
            chunk.append(tokens)
            if len(chunk) >= CHUNK:
                results.extend(self._find_chunk(chunk))
                chunk = []
        if chunk:
            results.extend(self._find_chunk(chunk))
        return results

    def _find_chunk(self, sentences: list[list[str]]) -> list[list[tuple[int, int, str]]]:
        n = len(sentences)
        results: list[list] = [[] for _ in range(n)]
        if not self._keys:
            return results
        encoded = [self.encode(tokens) for tokens in sentences]
        starts = []
        offset = 0
        for text in encoded:
            starts.append(offset)
            offset += len(text) + 1
        candidates: list[list] = [[] for _ in range(n)]
        unit = self.width + 1
        sent = 0
        for end, (length, gaz_type) in self._automaton.iter(SENTENCE_BREAK.join(encoded)):
            start = end - length + 1
            while sent + 1 < n and starts[sent + 1] <= start:
                sent += 1
            first = (start - starts[sent]) // unit
            candidates[sent].append((first, first + length // unit - 1, gaz_type))
        for i, cands in enumerate(candidates):
            if cands:
                results[i] = _select(cands)
        return results


def _select(cands: list[tuple[int, int, str | None]]) -> list[tuple[int, int, str]]:
    """Longest first, then leftmost; drop overlaps; drop ambiguous (type ``None``) winners."""
    if len(cands) == 1:
        start, end, gaz_type = cands[0]
        return [] if gaz_type is None else [(start, end, gaz_type)]
    chosen: list[tuple[int, int, str | None]] = []
    for start, end, gaz_type in sorted(cands, key=lambda c: (c[0] - c[1], c[0])):
        if all(end < s or start > e for s, e, _ in chosen):
            chosen.append((start, end, gaz_type))
    return sorted((s, e, t) for s, e, t in chosen if t is not None)


def _as_matcher(gazetteers, options: dict) -> GazetteerMatcher:
    if isinstance(gazetteers, GazetteerMatcher):
        if options:
            raise CofeeError("pass matcher options when building the GazetteerMatcher, not here")
        return gazetteers
    return GazetteerMatcher(gazetteers, **options)


def match_records(records: Iterable[dict], gazetteers, **options) -> list[dict]:
    """The Gazetteer Matching baseline: each record's spans become the gazetteer matches.

    The input's spans (gold) are ignored; the output records have the same
    ``id`` and ``tokens`` and ``spans`` = exact longest-first matches
    (word/character indices, inclusive ends). ``gazetteers`` is a
    ``{type: entries}`` mapping or a :class:`GazetteerMatcher`; ``options`` go
    to :class:`GazetteerMatcher`.
    """
    matcher = _as_matcher(gazetteers, options)
    records = list(records)
    found = matcher.find_many([rec["tokens"] for rec in records])
    return [{"id": rec["id"], "tokens": rec["tokens"], "spans": [list(span) for span in spans]}
            for rec, spans in zip(records, found)]


def iter_label_anchors(records: Iterable[dict], gazetteers, counts: Counter | None = None,
                       **options) -> Iterator[dict]:
    """Stream D_s from D_g: type each anchor by the gazetteer entry its surface equals.

    Each span of a D_g record (an anchor, type ``Entity``) whose tokens are
    exactly an entry of type ``y`` (same normalisation as matching; an entry
    in several types follows the ``conflicts`` policy) becomes ``[start, end,
    y]``; anchors that match no entry are dropped, and a record with no
    matched anchor is left out. ``targets`` (link targets, one per span) are
    kept for the kept spans, in the same order as the sorted spans. Other keys
    are kept as they are.

    ``counts`` (a :class:`collections.Counter`), when given, is updated with
    ``sentences_in``, ``sentences_out``, ``anchors_in``, ``anchors_matched``,
    ``anchors_ambiguous`` and ``matched:<type>``.
    """
    matcher = _as_matcher(gazetteers, options)
    counts = counts if counts is not None else Counter()
    for rec in records:
        counts["sentences_in"] += 1
        tokens = rec["tokens"]
        targets = rec.get("targets")
        kept = []
        for i, (start, end, _) in enumerate(rec["spans"]):
            counts["anchors_in"] += 1
            surface = tokens[start:end + 1]
            gaz_type = matcher.entry_type(surface)
            if gaz_type is None:
                if matcher.is_entry(surface):
                    counts["anchors_ambiguous"] += 1
                continue
            counts["anchors_matched"] += 1
            counts[f"matched:{gaz_type}"] += 1
            target = targets[i] if targets is not None and i < len(targets) else None
            kept.append(([int(start), int(end), gaz_type], target))
        if not kept:
            continue
        kept.sort(key=lambda pair: pair[0])
        out = dict(rec)
        out["spans"] = [span for span, _ in kept]
        if targets is not None:
            out["targets"] = [target for _, target in kept]
        counts["sentences_out"] += 1
        yield out


def label_anchors(records: Iterable[dict], gazetteers, counts: Counter | None = None, **options) -> list[dict]:
    """D_s as a list: see :func:`iter_label_anchors`."""
    return list(iter_label_anchors(records, gazetteers, counts, **options))
