"""CoNLL-style column files: one token per line, a blank line between sentences.

Reading (:func:`read_conll`) accepts any number of columns, the token first
and the tag last by default (CoNLL-2003's ``token POS chunk NER``, WNUT-16's
``token<TAB>tag``). Columns are separated by tabs when a line has a tab and by
runs of spaces otherwise. ``-DOCSTART-`` lines (and the blank line after them)
are skipped. Every token line of a file must have the same number of columns.

Records are word-level with inclusive span ends (see :mod:`cofee_lib.records`);
ids are ``f"{id_prefix or file stem}-{index}"`` with a 0-based sentence index.

Writing (:func:`write_conll`) emits ``token<TAB>tag`` lines, atomically.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from ..errors import CofeeError, InputError, atomic_open
from ..records import make_record
from .tags import normalize_scheme, spans_to_tags, tags_to_spans

DOCSTART = "-DOCSTART-"


def read_text(path) -> str:
    """Read a whole file as UTF-8 text; :class:`InputError` with the line if it is not UTF-8.

    A leading byte-order mark is dropped.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "file not found")
    if path.is_dir():
        raise InputError(path, None, "is a directory, expected a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(path, line, f"not UTF-8 text ({exc.reason}, byte 0x{data[exc.start]:02x} at offset "
                         f"{exc.start}); convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    return text[1:] if text.startswith("\ufeff") else text


def split_fields(line: str) -> list[str]:
    """Split a column line: on tabs if it has one, else on runs of spaces; empty fields dropped."""
    if "\t" in line:
        parts = line.split("\t")
        if " " in line or "" in parts:
            parts = [p.strip(" ") for p in parts if p.strip(" ")]
        return parts
    parts = line.split(" ")
    return [p for p in parts if p] if "" in parts else parts


def read_column_sentences(path, columns: int | None = None, what: str = "token and tag"):
    """Parse a column file into sentences of ``(fields, line_number)`` pairs.

    ``columns``: the exact number of columns required (``None``: at least two,
    the same on every token line). ``-DOCSTART-`` lines are skipped. Raises
    :class:`InputError` (file, line, what was expected) on ragged columns, an
    empty file or non-UTF-8 bytes.
    """
    text = read_text(path)
    sentences: list[list[tuple[list[str], int]]] = []
    current: list[tuple[list[str], int]] = []
    n_cols, first_line = columns, None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    # a progress bar (stderr) for big files such as MSRA's 2.3M lines; updated every 2**17 lines
    bar = tqdm(total=len(lines), unit="line", desc=f"reading {Path(path).name}", leave=False,
               disable=len(lines) < 500_000, file=sys.stderr)
    for lineno, line in enumerate(lines, 1):
        if not lineno & 0x1FFFF:
            bar.update(0x20000)
        if not line or line.isspace():
            if current:
                sentences.append(current)
                current = []
            continue
        fields = split_fields(line)
        if fields[0] == DOCSTART:
            if current:
                sentences.append(current)
                current = []
            continue
        if n_cols is None:
            if len(fields) < 2:
                raise InputError(path, lineno, f"found {len(fields)} column(s), expected at least 2 ({what}) "
                                 "separated by a tab or spaces")
            n_cols, first_line = len(fields), lineno
        elif len(fields) != n_cols:
            since = f"as on line {first_line}" if first_line else f"({what})"
            raise InputError(path, lineno, f"found {len(fields)} column(s), expected {n_cols} {since}; "
                             "every token line needs the same columns")
        current.append((fields, lineno))
    bar.close()
    if current:
        sentences.append(current)
    if not sentences:
        raise InputError(path, 1, f"empty file: no sentences found (expected {what} columns, "
                         "a blank line between sentences)")
    return sentences


def read_conll(path, scheme: str = "iob2", token_col: int = 0, tag_col: int = -1,
               id_prefix: str | None = None, invalid: str = "error") -> list[dict]:
    """Read a CoNLL column file into word-level records (spans with inclusive ends).

    ``scheme`` is the file's tagging scheme (``iob2``/``bio``, ``iob1``,
    ``bioes``/``bilou``, ``bmes``); ``token_col`` and ``tag_col`` pick the
    columns (negative counts from the end). ``invalid`` says what to do with
    ill-formed tag sequences (``"error"``, ``"begin"`` or ``"drop"``, see
    :func:`~cofee_lib.formats.tags.tags_to_spans`). Bad input raises
    :class:`InputError` naming the file and the line.
    """
    scheme = normalize_scheme(scheme)
    path = Path(path)
    sentences = read_column_sentences(path)
    n_cols = len(sentences[0][0][0])
    for col, name in ((token_col, "token_col"), (tag_col, "tag_col")):
        if not -n_cols <= col < n_cols:
            raise InputError(path, sentences[0][0][1], f"{name}={col} but the file has {n_cols} columns")
    prefix = id_prefix or path.stem
    records = []
    for index, sent in enumerate(sentences):
        tokens = [fields[token_col] for fields, _ in sent]
        tags = [fields[tag_col] for fields, _ in sent]
        lines = [lineno for _, lineno in sent]
        spans = tags_to_spans(tags, scheme, path, lines, invalid=invalid)
        records.append(make_record(f"{prefix}-{index}", tokens, spans))
    return records


def check_writable_tokens(rec: dict, where: str) -> None:
    """Refuse tokens that a one-token-per-line file cannot hold (empty, or with whitespace)."""
    if not rec["tokens"]:
        raise CofeeError(f"{where}: record {rec['id']!r} has no tokens; a column file cannot hold an empty sentence")
    for i, tok in enumerate(rec["tokens"]):
        if not tok or any(c in tok for c in " \t\n\r"):
            raise CofeeError(f"{where}: record {rec['id']!r} token {i} ({tok!r}) is empty or holds whitespace; "
                             "a column file cannot hold it")


def write_conll(path, records: Iterable[dict], scheme: str = "iob2") -> int:
    """Write records as ``token<TAB>tag`` lines, a blank line after each sentence (atomic).

    Returns the number of sentences written. Overlapping spans, empty
    sentences and tokens with whitespace raise :class:`CofeeError`, and
    nothing is written.
    """
    scheme = normalize_scheme(scheme)
    count = 0
    with atomic_open(path) as handle:
        for rec in records:
            where = f"record {count}"
            check_writable_tokens(rec, where)
            tags = spans_to_tags(len(rec["tokens"]), rec["spans"], scheme, where=f"{where} ({rec['id']!r})")
            for tok, tag in zip(rec["tokens"], tags):
                handle.write(f"{tok}\t{tag}\n")
            handle.write("\n")
            count += 1
    return count
