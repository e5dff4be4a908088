"""CoNLL-style column files: one token per line, a blank line between sentences.

Reading (:func:`read_conll`) accepts any number of columns, the token first
and the tag last by default (CoNLL-2003's ``token POS chunk NER``, WNUT-16's
``token<TAB>tag``). Columns are separated by tabs when a line has a tab and by
runs of spaces otherwise. ``-DOCSTART-`` lines (and the blank line after them)
are skipped. Every token line of a file must have the same number of columns.
Lines may end in ``\\n``, ``\\r\\n`` or a lone ``\\r`` (old Mac files); a ``\\r``
never ends up in a token or a tag.

Records are word-level with inclusive span ends (see :mod:`cofee_lib.records`);
ids are ``f"{id_prefix or file stem}-{index}"`` with a 0-based sentence index.

Writing (:func:`write_conll`) emits ``token<TAB>tag`` lines, atomically. It
refuses (:class:`~cofee_lib.errors.InputError` naming the record) what the
reader could not give back: an empty sentence, an empty token, a token holding
a space, tab or line break, a token ``-DOCSTART-`` (read as a document marker)
and a byte-order mark at the very start of the file.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Iterable

from tqdm.auto import tqdm

from ..errors import InputError, atomic_open
from ..records import check_encodable, make_record, validate_record
from .tags import normalize_scheme, spans_to_tags, tags_to_spans

DOCSTART = "-DOCSTART-"
_LINE_END_BYTES = re.compile(rb"\r\n|\r|\n")
_UNWRITABLE = re.compile(r"[ \t\n\r]")


def read_text(path) -> str:
    """Read a whole file as UTF-8 text; :class:`InputError` with the line if it is not UTF-8.

    A leading byte-order mark is dropped and every line ends in ``\\n``
    (``\\r\\n`` and a lone ``\\r`` are turned into ``\\n``).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "file not found")
    if path.is_dir():
        raise InputError(path, None, "is a directory, expected a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"cannot read it ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = len(_LINE_END_BYTES.findall(data, 0, exc.start)) + 1
        raise InputError(path, line, f"not UTF-8 text ({exc.reason}, byte 0x{data[exc.start]:02x} at offset "
                         f"{exc.start}); convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    text = text[1:] if text.startswith("\ufeff") else text
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


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


def record_where(rec, index: int) -> str:
    """``record 3 (id 'x')``: how writer errors name a record (its 0-based place in the input, its id)."""
    rid = rec.get("id") if isinstance(rec, dict) else None
    return f"record {index}" + (f" (id {rid!r})" if isinstance(rid, str) else "")


def check_writable_tokens(rec: dict, where: str, chars: bool = False, first: bool = False) -> None:
    """Refuse tokens that a one-token-per-line file cannot give back; :class:`InputError` naming ``where``.

    Refused: an empty sentence, an empty token, a token holding a space, a tab
    or a line break (they separate columns and lines), the token
    ``-DOCSTART-`` (read back as a document marker) and, when ``first`` (the
    file's first token), a leading byte-order mark U+FEFF (dropped on
    reading). ``chars``: every token must be one character (character files).
    """
    tokens = rec["tokens"]
    if not tokens:
        raise InputError(where, None, "has no tokens; a column file cannot hold an empty sentence")
    for i, tok in enumerate(tokens):
        if not tok or _UNWRITABLE.search(tok):
            raise InputError(where, None, f"token {i} ({tok!r}) is empty or holds whitespace (a space, tab or "
                             "line break); a column file cannot hold it")
        if chars and len(tok) != 1:
            raise InputError(where, None, f"token {i} ({tok!r}) has {len(tok)} characters; a character-per-line "
                             "file holds exactly one character per line")
        if tok == DOCSTART:
            raise InputError(where, None, f"token {i} is {DOCSTART!r}, which a CoNLL reader skips as a document "
                             "marker; it cannot be written as a token")
    if first and tokens[0].startswith("\ufeff"):
        raise InputError(where, None, "token 0 begins with U+FEFF, which at the start of a file is read as a "
                         "byte-order mark and dropped; it cannot be written first")


def write_column_records(path, records: Iterable[dict], scheme: str, chars: bool = False) -> int:
    """Write records as ``token<TAB>tag`` lines, a blank line after each sentence (atomic).

    Every record is validated (:func:`~cofee_lib.records.validate_record`),
    its spans encoded as tags, then its tokens checked
    (:func:`check_writable_tokens`). Returns the number of sentences.
    """
    scheme = normalize_scheme(scheme)
    count = 0
    with atomic_open(path) as handle:
        for rec in records:
            where = record_where(rec, count)
            validate_record(rec, where)
            tags = spans_to_tags(len(rec["tokens"]), rec["spans"], scheme, where=where)
            check_writable_tokens(rec, where, chars=chars, first=count == 0)
            handle.write(check_encodable("".join(f"{tok}\t{tag}\n" for tok, tag in zip(rec["tokens"], tags)),
                                         where))
            handle.write("\n")
            count += 1
    return count


def write_conll(path, records: Iterable[dict], scheme: str = "iob2") -> int:
    """Write records as ``token<TAB>tag`` lines, a blank line after each sentence (atomic).

    Returns the number of sentences written. Overlapping spans raise
    :class:`CofeeError`; tokens the reader could not give back (empty
    sentences, tokens with whitespace, ``-DOCSTART-``, see
    :func:`check_writable_tokens`) raise :class:`InputError` naming the
    record; either way nothing is written.
    """
    return write_column_records(path, records, scheme)
