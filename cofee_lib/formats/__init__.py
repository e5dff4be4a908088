"""Readers and writers for NER file formats, and a registry of them by name.

Every reader returns word-level records and every writer takes them (see
:mod:`cofee_lib.records`: ``tokens``, and ``spans`` as ``[start, end, type]``
with an **inclusive** end). Registered formats (``FORMATS``):

=============  ==============================================================
``jsonl``      the kit's own JSON lines records (:mod:`cofee_lib.records`)
``conll``      CoNLL columns, token first, tag last, IOB2/BIO tags (CoNLL-2003, WNUT-16)
``conll-iob1`` the same with IOB1 tags
``conll-bioes`` the same with BIOES tags (BILOU accepted on input)
``char``       Chinese character-per-line ``char<TAB>tag``, BIO tags (MSRA)
``char-bmes``  the same with BMES tags (Chinese OntoNotes, Weibo, E-commerce)
``mrc``        MRC-NER / CoFEE JSON, one example per (sentence, type); needs queries to write
``bond``       BOND JSON ``{"str_words", "tags"}`` + ``tag_to_id.json`` beside it
=============  ==============================================================

:func:`read_records` and :func:`write_records` dispatch on these names;
:func:`read_file` reads a user's file by the short names ``jsonl``, ``conll``
and ``chars`` plus a tagging scheme (``cofee data``, ``cofee match``). The
other modules: :mod:`~cofee_lib.formats.splits` (recorded split files),
:mod:`~cofee_lib.formats.columns` (a user dataset's files as they come).

Every reader either returns records or raises :class:`~cofee_lib.errors.InputError`
naming the file and the line (never another exception); every writer checks
each record with :func:`cofee_lib.records.validate_record` and refuses, naming
the record (``record 3 (id 'x')``), what its reader could not give back, so
writing then reading returns the same tokens and spans (and ids, for
``jsonl``). tests/test_fuzz_formats.py checks both with hypothesis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from ..errors import CofeeError


@dataclass(frozen=True)
class Format:
    """A named file format: ``read(path, **options)`` and ``write(path, records, **options)``."""

    name: str
    description: str
    read: Callable[..., list[dict]]
    write: Callable[..., int]


def _read_jsonl(path, **_):
    from ..records import read_jsonl

    return read_jsonl(path)


def _write_jsonl(path, records, **_):
    from ..records import validate_record, write_jsonl
    from .conll import record_where

    def checked():
        for index, rec in enumerate(records):
            yield validate_record(rec, record_where(rec, index))

    return write_jsonl(path, checked())


def _conll(scheme: str):
    def read(path, id_prefix=None, invalid="error", **_):
        from .conll import read_conll

        return read_conll(path, scheme=scheme, id_prefix=id_prefix, invalid=invalid)

    def write(path, records, **_):
        from .conll import write_conll

        return write_conll(path, records, scheme=scheme)

    return read, write


def _char(scheme: str):
    def read(path, id_prefix=None, invalid="error", **_):
        from .charfile import read_char_file

        return read_char_file(path, scheme=scheme, id_prefix=id_prefix, invalid=invalid)

    def write(path, records, **_):
        from .charfile import write_char_file

        return write_char_file(path, records, scheme=scheme)

    return read, write


def _read_mrc(path, id_prefix=None, queries_out=None, **_):
    from .mrc_json import read_mrc_json

    return read_mrc_json(path, id_prefix=id_prefix, queries_out=queries_out)


def _write_mrc(path, records, queries=None, **_):
    from .mrc_json import write_mrc_json

    if queries is None:
        raise CofeeError("writing the mrc format needs queries: a {type: query} mapping")
    return write_mrc_json(path, records, queries)


def _read_bond(path, id_prefix=None, invalid="error", tag_map=None, **_):
    from .bond import read_bond

    return read_bond(path, tag_map=tag_map, id_prefix=id_prefix, invalid=invalid)


def _write_bond(path, records, tag_map=None, **_):
    from .bond import write_bond

    return write_bond(path, records, tag_map=tag_map)


FORMATS: dict[str, Format] = {}
for _name, _desc, _rw in [
    ("jsonl", "the kit's JSON lines records: {id, tokens, spans} (inclusive ends)", (_read_jsonl, _write_jsonl)),
    ("conll", "CoNLL columns (token first, tag last; tab or space separated), IOB2/BIO tags", _conll("iob2")),
    ("conll-iob1", "CoNLL columns with IOB1 tags", _conll("iob1")),
    ("conll-bioes", "CoNLL columns with BIOES tags (BILOU letters accepted on input)", _conll("bioes")),
    ("char", "Chinese character-per-line char<TAB>tag, BIO tags (MSRA)", _char("iob2")),
    ("char-bmes", "Chinese character-per-line char<TAB>tag, BMES tags", _char("bmes")),
    ("mrc", "MRC-NER / CoFEE JSON: one example per (sentence, type); writing needs queries", (_read_mrc, _write_mrc)),
    ("bond", "BOND JSON [{str_words, tags}] with tag_to_id.json beside it (BIO)", (_read_bond, _write_bond)),
]:
    FORMATS[_name] = Format(_name, _desc, *_rw)


def get_format(name: str) -> Format:
    """The registered :class:`Format` called ``name``; :class:`CofeeError` if unknown."""
    try:
        return FORMATS[name]
    except KeyError:
        raise CofeeError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}") from None


def read_records(path, fmt: str, **options) -> list[dict]:
    """Read ``path`` in format ``fmt`` into records. Options: ``id_prefix``,
    ``invalid`` (tag files), ``tag_map`` (bond), ``queries_out`` (mrc)."""
    return get_format(fmt).read(path, **options)


def write_records(path, records: Iterable[dict], fmt: str, **options) -> int:
    """Write records to ``path`` in format ``fmt`` (atomic). Options: ``queries``
    (mrc, required), ``tag_map`` (bond)."""
    return get_format(fmt).write(path, records, **options)


def read_file(path, format: str | None = None, scheme: str = "iob2") -> list[dict]:
    """Read a user's file: JSON lines (``.jsonl``/``.json``) or CoNLL columns (anything else).

    ``format``: ``jsonl``, ``conll`` (token first, tag last) or ``chars``
    (Chinese character-per-line); guessed from the extension when None.
    ``scheme``: the tagging scheme of a column file (``iob2``, ``iob1``,
    ``bioes``, ``bmes``). (``cofee data``, ``cofee match``, ``cofee predict``
    read their inputs with it, as :func:`cofee_lib.datasets.load_records`.)
    """
    from pathlib import Path

    path = Path(path)
    if format is None:
        format = "jsonl" if path.suffix.lower() in (".jsonl", ".json") else "conll"
    if format == "jsonl":
        from ..records import read_jsonl

        return read_jsonl(path)
    if format == "conll":
        from .conll import read_conll

        return read_conll(path, scheme=scheme)
    if format == "chars":
        from .charfile import read_char_file

        return read_char_file(path, scheme=scheme)
    raise CofeeError(f"unknown format {format!r}; expected jsonl, conll or chars")
