"""Tag sequences <-> entity spans for IOB1, IOB2 (BIO), BIOES (BILOU) and BMES.

Spans are ``(start, end, type)`` with **token indices and an inclusive end**,
the same convention as :mod:`cofee_lib.records`. Tokens are words (English)
or characters (Chinese). A tag is ``O`` or ``<prefix>-<TYPE>``.

Schemes (names accepted by :func:`normalize_scheme`):

``iob2`` (alias ``bio``)
    ``B-X`` begins every entity, ``I-X`` continues it. An ``I-X`` that does
    not follow ``B-X``/``I-X`` is an error.
``iob1``
    ``I-X`` begins an entity after ``O`` or another type; ``B-X`` is only
    needed to separate two adjacent entities of the same type (CoNLL-2003's
    original release). ``B-X`` anywhere still begins a new entity.
``bioes`` (alias ``bilou``)
    ``B-X I-X* E-X`` for multi-token entities, ``S-X`` for single tokens.
    On input, the BILOU letters ``L`` (= ``E``) and ``U`` (= ``S``) and the
    letter ``M`` (= ``I``) are accepted. An entity left open (``B-X`` not
    closed by ``E-X``) or an ``I-``/``E-`` with nothing to continue is an error.
``bmes``
    Chinese convention: ``B-X M-X* E-X`` and ``S-X``; same rules as BIOES
    with ``M`` for the inside letter (``I`` is accepted on input).

Tags cannot express overlapping or nested entities; :func:`spans_to_tags`
refuses them with a clear error.
"""
from __future__ import annotations

import functools
from typing import Iterable, Sequence

from ..errors import CofeeError, InputError

SCHEMES = ("iob1", "iob2", "bioes", "bmes")
_ALIASES = {"bio": "iob2", "iob": "iob2", "bilou": "bioes", "iobes": "bioes"}

# prefix letter accepted on input -> canonical role: B(egin) I(nside) E(nd) S(ingle)
_INPUT_PREFIXES = {
    "iob1": {"B": "B", "I": "I"},
    "iob2": {"B": "B", "I": "I"},
    "bioes": {"B": "B", "I": "I", "M": "I", "E": "E", "L": "E", "S": "S", "U": "S"},
    "bmes": {"B": "B", "M": "I", "I": "I", "E": "E", "S": "S"},
}
# canonical role -> letter written on output
_OUTPUT_LETTERS = {
    "iob1": {"B": "B", "I": "I"},
    "iob2": {"B": "B", "I": "I"},
    "bioes": {"B": "B", "I": "I", "E": "E", "S": "S"},
    "bmes": {"B": "B", "I": "M", "E": "E", "S": "S"},
}


def normalize_scheme(scheme: str) -> str:
    """Return the canonical scheme name (``iob1``, ``iob2``, ``bioes``, ``bmes``)."""
    key = str(scheme).lower()
    key = _ALIASES.get(key, key)
    if key not in SCHEMES:
        raise CofeeError(f"unknown tagging scheme {scheme!r}; expected one of {', '.join(SCHEMES)} "
                         f"(aliases: {', '.join(sorted(_ALIASES))})")
    return key


@functools.lru_cache(maxsize=4096)
def _bad_type(ttype: str) -> bool:
    """A tag's type that no tag file can hold: empty, or with whitespace (``LOC\\x0b``)."""
    return not ttype or any(c.isspace() for c in ttype)


def _expected_tags(scheme: str) -> str:
    letters = "/".join(sorted(_INPUT_PREFIXES[scheme]))
    return f"'O' or '{{{letters}}}-TYPE' ({scheme.upper()})"


INVALID_POLICIES = ("error", "begin", "drop")


class _Decoder:
    """The state of :func:`tags_to_spans` over one sentence: the spans so far and the open entity."""

    def __init__(self, scheme: str, path, line_numbers, invalid: str):
        self.scheme, self.path, self.line_numbers, self.invalid = scheme, path, line_numbers, invalid
        self.name = scheme.upper()
        self.spans: list[tuple[int, int, str]] = []
        self.start: int | None = None  # start of the open entity
        self.etype: str | None = None
        self.broken = False  # the open entity is ill-formed and will be dropped (invalid="drop")

    def line_of(self, i: int) -> int | None:
        lines = self.line_numbers
        return lines[i] if lines is not None and 0 <= i < len(lines) else None

    def where(self, i: int) -> str:
        return "" if self.line_numbers is not None else f" (token {i})"

    def report(self, i: int, message: str) -> None:
        """An ill-formed sequence at token i: raise, or mark the open entity for dropping."""
        if self.invalid == "error":
            raise InputError(self.path, self.line_of(i), message + " [to read such files anyway, use "
                             "invalid='drop' (seqeval strict) or invalid='begin' (conlleval)]")
        if self.invalid == "drop":
            self.broken = True

    def close(self, end: int) -> None:
        if self.start is not None and not self.broken:
            self.spans.append((self.start, end, self.etype))
        self.start, self.etype, self.broken = None, None, False

    def begin(self, i: int, ttype: str) -> None:
        self.start, self.etype = i, ttype

    def unfinished(self, i: int, what: str) -> None:
        begun = (f"line {self.line_of(self.start)}" if self.line_numbers is not None
                 else f"token {self.start}")
        self.report(i, f"{what}{self.where(i)} follows an unfinished {self.etype} entity (begun on {begun}); "
                    f"{self.name} closes entities with E-{self.etype}")

    def closed_tag(self, i: int, tag: str, role: str, ttype: str) -> None:
        """One ``B/I/E/S-TYPE`` tag of BIOES or BMES."""
        if role in ("B", "S"):
            if self.start is not None:
                self.unfinished(i, f"tag {tag!r}")
                self.close(i - 1)
            if role == "S":
                self.spans.append((i, i, ttype))
            else:
                self.begin(i, ttype)
            return
        if self.start is None or self.etype != ttype:  # I or E with nothing to continue
            if self.start is not None:
                self.unfinished(i, f"tag {tag!r}")
                self.close(i - 1)
            self.begin(i, ttype)
            self.report(i, f"tag {tag!r}{self.where(i)} has no {ttype} entity to continue; "
                        f"{self.name} begins entities with B-{ttype} or S-{ttype}")
        if role == "E":
            self.close(i)

    def open_tag(self, i: int, tag: str, role: str, ttype: str) -> None:
        """One ``B/I-TYPE`` tag of IOB2 or IOB1."""
        if self.scheme == "iob1":
            if role == "B" or self.start is None or self.etype != ttype:
                self.close(i - 1)
                self.begin(i, ttype)
        elif role == "B":
            self.close(i - 1)
            self.begin(i, ttype)
        elif self.start is None or self.etype != ttype:
            self.close(i - 1)
            self.begin(i, ttype)
            self.report(i, f"tag {tag!r}{self.where(i)} has no {ttype} entity to continue "
                        f"(IOB2 begins every entity with B-{ttype})")


def tags_to_spans(tags: Sequence[str], scheme: str = "iob2", path="<tags>",
                  line_numbers: Sequence[int] | None = None,
                  invalid: str = "error") -> list[tuple[int, int, str]]:
    """Decode one sentence's tags into ``(start, end, type)`` spans (inclusive end).

    ``path`` and ``line_numbers`` (one 1-based line per tag) are only used for
    error messages, which name the file and the line of the offending tag.
    An unknown tag (bad prefix letter, no ``-TYPE``) always raises
    :class:`InputError`. Ill-formed sequences are handled by ``invalid``:

    * ``"error"`` (default): raise :class:`InputError` on an ``I-``/``M-``/``E-``
      tag with no entity of its type to continue (IOB2, BIOES, BMES; IOB1 lets
      ``I-`` begin an entity) and, for BIOES/BMES, on an entity not closed by ``E-``.
    * ``"begin"``: read as conlleval and seqeval's default mode do: such a tag
      begins a new entity; an unclosed entity ends where the next one begins.
    * ``"drop"``: read as seqeval's strict mode does: ill-formed entities are
      discarded. (The real MSRA file has 17 sentences cut inside an entity;
      ``"drop"`` keeps exactly the entities that start with ``B-``.)
    """
    scheme = normalize_scheme(scheme)
    if invalid not in INVALID_POLICIES:
        raise CofeeError(f"invalid={invalid!r}; expected one of {', '.join(INVALID_POLICIES)}")
    prefixes = _INPUT_PREFIXES[scheme]
    closed_scheme = scheme in ("bioes", "bmes")
    state = _Decoder(scheme, path, line_numbers, invalid)
    on_tag = state.closed_tag if closed_scheme else state.open_tag
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise InputError(path, state.line_of(i), f"tag {tag!r}{state.where(i)} is not a string")
        if tag == "O":
            if closed_scheme and state.start is not None:
                state.unfinished(i, "tag 'O'")
            state.close(i - 1)
            continue
        letter, sep, ttype = tag.partition("-")
        if not sep or letter not in prefixes or _bad_type(ttype):
            raise InputError(path, state.line_of(i), f"unknown tag {tag!r}{state.where(i)}; expected "
                             f"{_expected_tags(scheme)}" + (" with a TYPE free of whitespace" if ttype and sep
                                                             and letter in prefixes else ""))
        on_tag(i, tag, prefixes[letter], ttype)
    if state.start is not None:
        n = len(tags)
        if closed_scheme:
            state.report(n - 1, f"sentence ends inside a {state.etype} entity{state.where(n - 1)}; "
                         f"{state.name} closes entities with E-{state.etype}")
        state.close(n - 1)
    return state.spans


def check_spans(n: int, spans: Iterable, where: str = "record") -> list[tuple[int, int, str]]:
    """Return ``spans`` sorted, after checking they lie in ``[0, n)`` and do not overlap.

    Raises :class:`InputError` naming ``where`` when two spans overlap or nest
    (tags cannot express that), a span is out of range or a type is empty or
    holds whitespace.
    """
    out = sorted((int(s), int(e), str(t)) for s, e, t in spans)
    for s, e, t in out:
        if not 0 <= s <= e < n:
            raise InputError(where, None, f"span [{s}, {e}, {t!r}] out of range for {n} tokens (end is inclusive)")
    for (s1, e1, t1), (s2, e2, t2) in zip(out, out[1:]):
        if s2 <= e1:
            raise InputError(where, None, f"spans [{s1}, {e1}, {t1!r}] and [{s2}, {e2}, {t2!r}] overlap; "
                             "tags cannot express overlapping or nested entities")
    for s, e, t in out:
        if _bad_type(t):
            raise InputError(where, None, f"entity type {t!r} must be non-empty and without whitespace to be "
                             "written as a tag")
    return out


def spans_to_tags(n: int, spans: Iterable, scheme: str = "iob2", where: str = "record") -> list[str]:
    """Encode spans (inclusive end) over ``n`` tokens as a tag list in ``scheme``.

    Raises :class:`CofeeError` (naming ``where``) for overlapping or nested
    spans and for spans out of range.
    """
    scheme = normalize_scheme(scheme)
    letters = _OUTPUT_LETTERS[scheme]
    tags = ["O"] * n
    prev_end, prev_type = -2, None
    for s, e, t in check_spans(n, spans, where):
        if scheme in ("bioes", "bmes"):
            if s == e:
                tags[s] = f"{letters['S']}-{t}"
            else:
                tags[s] = f"{letters['B']}-{t}"
                for k in range(s + 1, e):
                    tags[k] = f"{letters['I']}-{t}"
                tags[e] = f"{letters['E']}-{t}"
        elif scheme == "iob2":
            tags[s] = f"B-{t}"
            for k in range(s + 1, e + 1):
                tags[k] = f"I-{t}"
        else:  # iob1: B- only where an entity directly follows one of the same type
            first = "B" if (prev_end == s - 1 and prev_type == t) else "I"
            tags[s] = f"{first}-{t}"
            for k in range(s + 1, e + 1):
                tags[k] = f"I-{t}"
        prev_end, prev_type = e, t
    return tags
