"""Chinese character-per-line files: ``char<TAB>tag`` (or ``char tag``), blank line between sentences.

This is the layout of MSRA (BIO tags, see DATA.md) and of the usual Chinese
OntoNotes / Weibo / E-commerce releases (BIO or BMES). A record's ``tokens``
are the characters; spans are ``(start, end, type)`` over character indices
with an **inclusive end** (see :mod:`cofee_lib.records`). Ids are
``f"{id_prefix or file stem}-{index}"`` with a 0-based sentence index.

A "character" is one Unicode code point: a line whose first column holds two
or more is refused on reading and on writing (:class:`~cofee_lib.errors.InputError`
naming the file and line, or the record). Lines may end in ``\\n``, ``\\r\\n``
or a lone ``\\r``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import InputError
from ..records import make_record
from .conll import read_column_sentences, write_column_records
from .tags import normalize_scheme, tags_to_spans


def read_char_file(path, scheme: str = "bio", id_prefix: str | None = None,
                   invalid: str = "error") -> list[dict]:
    """Read a character-per-line file into records (character indices, inclusive ends).

    ``scheme``: ``bio`` (= ``iob2``, MSRA) or ``bmes`` (also ``bioes``,
    ``iob1``). ``invalid``: ``"error"``, ``"begin"`` or ``"drop"`` for
    ill-formed tag sequences (see :func:`~cofee_lib.formats.tags.tags_to_spans`;
    the real MSRA file needs ``"drop"`` or ``"begin"``: 17 of its sentences
    are cut inside an entity). Exactly two columns per line; bad input raises
    :class:`~cofee_lib.errors.InputError` naming the file and line.
    """
    scheme = normalize_scheme(scheme)
    path = Path(path)
    sentences = read_column_sentences(path, columns=2, what="character and tag")
    prefix = id_prefix or path.stem
    records = []
    for index, sent in enumerate(sentences):
        chars = [fields[0] for fields, _ in sent]
        for char, (_, lineno) in zip(chars, sent):
            if len(char) != 1:
                raise InputError(path, lineno, f"{char!r} is {len(char)} characters; a character-per-line "
                                 "file holds one character and its tag per line")
        tags = [fields[1] for fields, _ in sent]
        spans = tags_to_spans(tags, scheme, path, [lineno for _, lineno in sent], invalid=invalid)
        records.append(make_record(f"{prefix}-{index}", chars, spans))
    return records


def write_char_file(path, records: Iterable[dict], scheme: str = "bio") -> int:
    """Write records as ``char<TAB>tag`` lines, a blank line after each sentence (atomic).

    Returns the number of sentences. Overlapping spans, tokens that are not
    exactly one character and tokens holding whitespace raise
    :class:`~cofee_lib.errors.CofeeError` naming the record; nothing is written.
    """
    return write_column_records(path, records, scheme, chars=True)


def read_msra(path) -> list[dict]:
    """Read MSRA's ``dh_msra.txt`` (``char<TAB>tag``, BIO) into character-level records ``msra-<n>``.

    An ``I-X`` tag that continues no ``X`` entity (the second piece of an
    entity that the file cut at a sentence break) is read as ``O``: that
    fragment is not an entity. Spans have inclusive ends.
    """
    path = Path(path)
    records = []
    for index, sent in enumerate(read_column_sentences(path, columns=2, what="character and tag")):
        chars = [fields[0] for fields, _ in sent]
        tags = []
        for fields, _ in sent:
            tag = fields[1]
            if tag.startswith("I-") and (not tags or tags[-1][2:] != tag[2:]):
                tag = "O"  # a fragment continuing an entity of the previous sentence
            tags.append(tag)
        spans = tags_to_spans(tags, "iob2", path, [lineno for _, lineno in sent])
        records.append(make_record(f"msra-{index}", chars, spans))
    return records
