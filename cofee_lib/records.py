"""The kit's one interchange format: JSON lines of word-level records.

One record per line::

    {"id": "conll2003-train-17", "tokens": ["EU", "rejects", "German", "call"],
     "spans": [[0, 0, "ORG"], [2, 2, "MISC"]]}

* ``id`` is a **non-empty string**. Numbers, ``null``, lists and objects are
  refused rather than converted, so an id reads the same after every write
  and read (``17``, ``17.0`` and ``"17"`` never get confused); write
  ``"17"``. (:func:`make_record`, for code that builds records, turns its
  ``id`` argument into a string.)
* ``tokens`` are strings: words (English) or characters (Chinese).
* ``spans`` are ``[start, end, type]`` with **word indices and an inclusive
  end**: ``[2, 3, "PER"]`` covers ``tokens[2]`` and ``tokens[3]``. ``start``
  and ``end`` are integers with ``0 <= start <= end < len(tokens)``; JSON
  ``true``/``false`` are not indices (Python would take them for 1 and 0)
  and neither are ``1.0`` or ``"1"``. ``type`` is a string.
* Extra keys are allowed and kept (for example ``targets`` on Wikipedia
  anchors: the link target of each span, in the same order).
* Text is UTF-8; a leading byte-order mark is ignored; lines may end in
  ``\\n``, ``\\r\\n`` or a lone ``\\r``. A ``\\ud800``-style escape that is not
  half of a surrogate pair is refused: it is not Unicode text and could not
  be written back.

Records are plain dicts; :func:`validate_record` is the one place these rules
are checked (every reader and writer of :mod:`cofee_lib.formats` calls it).
:func:`read_jsonl` returns a :class:`RecordList`, which remembers the file and
the line of each record so later checks (``cofee evaluate``) can name them.
:func:`iter_jsonl` streams records one at a time, and :class:`JsonlRecords` is a file's
records as an iterable that streams them again on every pass (with a ``len``), for
consumers that only iterate, such as the training engine's feature store.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import InputError, atomic_open

Span = tuple[int, int, str]

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_STR = {str}


def is_index(value) -> bool:
    """True for an integer that is not a bool (``True`` is an ``int`` in Python, not an index)."""
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def make_record(id: str, tokens: list[str], spans: Iterable, **extra) -> dict:
    """Build a record dict with spans as ``[start, end, type]`` lists, sorted."""
    rec = {"id": str(id), "tokens": list(tokens), "spans": sorted([int(s), int(e), str(t)] for s, e, t in spans)}
    rec.update(extra)
    return rec


def validate_record(rec, path="<record>", line: int | None = None) -> dict:
    """Check one record against the rules above; raise :class:`InputError` naming ``path:line`` if wrong."""
    if not isinstance(rec, dict):
        raise InputError(path, line, f"expected a JSON object with id, tokens, spans; got {type(rec).__name__}")
    for key in ("id", "tokens", "spans"):
        if key not in rec:
            raise InputError(path, line, f"missing key {key!r} (expected id, tokens, spans)")
    if not isinstance(rec["id"], str) or not rec["id"]:
        raise InputError(path, line, f"'id' must be a non-empty string, got {json_text(rec['id'])}"
                         + (f' (write "{rec["id"]}")' if is_index(rec["id"]) else ""))
    tokens = rec["tokens"]
    if not isinstance(tokens, list) or (set(map(type, tokens)) - _STR and not all(isinstance(t, str) for t in tokens)):
        raise InputError(path, line, "'tokens' must be a list of strings")
    if not isinstance(rec["spans"], list):
        raise InputError(path, line, "'spans' must be a list of [start, end, type]")
    n = len(tokens)
    for span in rec["spans"]:
        if (not isinstance(span, (list, tuple)) or len(span) != 3 or not is_index(span[0])
                or not is_index(span[1]) or not isinstance(span[2], str)):
            raise InputError(path, line, f"span {json_text(span)} is not [start:int, end:int, type:str] "
                             "(true/false are not indices)")
        if not (0 <= span[0] <= span[1] < n):
            raise InputError(path, line, f"span {json_text(span)} out of range for {n} tokens (end is inclusive)")
    return rec


def json_text(value, limit: int = 80) -> str:
    """``value`` as JSON (``true``, ``null``, ``[1]``) for messages, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_unicode(value, path, line: int | None, raw: str | None = None) -> None:
    """Refuse decoded JSON holding a lone surrogate (a ``\\ud800`` escape with no pair).

    ``raw`` is the JSON text the value came from: when it has no such escape
    the (costly) walk over the value is skipped.
    """
    if raw is not None and ("\\u" not in raw or not _SURROGATE_ESCAPE.search(raw)):
        return
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(path, line, f"holds {exc.object[exc.start:exc.end]!r}, a lone surrogate escape: "
                         "not Unicode text (expected each \\ud800-\\udbff escape to be followed by a "
                         "\\udc00-\\udfff one)") from None


def check_encodable(text: str, where) -> str:
    """Return ``text``; :class:`InputError` (naming ``where``) if it cannot be written as UTF-8."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(where, None, f"holds {exc.object[exc.start:exc.end]!r}, a lone surrogate: "
                             "not Unicode text, it cannot be written as UTF-8") from None
    return text


class RecordList(list):
    """A list of records that remembers where they were read: ``path`` and ``lines`` (1-based, per record).

    It is a plain list otherwise (compares equal to one, pickles, dumps as JSON).
    """

    def __init__(self, records: Iterable[dict] = (), path=None, lines: Iterable[int] | None = None):
        super().__init__(records)
        self.path = None if path is None else str(path)
        self.lines = list(lines) if lines is not None else None

    def where(self, index: int, default: str = "<records>") -> tuple[str, int | None]:
        """``(path, line)`` of record ``index``: ``(default, None)`` when unknown."""
        line = self.lines[index] if self.lines is not None and 0 <= index < len(self.lines) else None
        return (self.path or default), line


def read_jsonl(path) -> RecordList:
    """Read and validate a JSON-lines file of records (a :class:`RecordList` with each record's line)."""
    lines, records = [], []
    for lineno, rec in iter_jsonl_lines(path):
        lines.append(lineno)
        records.append(rec)
    return RecordList(records, path, lines)


def iter_jsonl(path) -> Iterator[dict]:
    """Stream validated records from a JSON-lines file (blank lines are skipped)."""
    for _, rec in iter_jsonl_lines(path):
        yield rec


class JsonlRecords:
    """The records of a JSON-lines file, read from the file each time they are iterated, never held whole.

    What to pass where a list of records would only be iterated (and counted): training
    records for :func:`cofee_lib.engine.train`, whose feature store featurises them a chunk
    at a time (:mod:`cofee_lib.featstore`), digests, counts. Each ``iter()`` streams the file
    again through :func:`iter_jsonl` (so every record is validated, and a file changed
    between two passes is read as it is then); ``len()`` is counted once by a pass and kept.
    Memory: one record at a time, whatever the size of the file. Indexing is not offered:
    ``list(records)`` or :func:`read_jsonl` when a list is wanted. ``transform`` (a function
    of one record returning one record, e.g. replacing span types) is applied to each record
    as it is read, on every pass.
    """

    def __init__(self, path, transform: Callable[[dict], dict] | None = None, positions=None):
        self.path = Path(path)
        self.transform = transform
        #: when set, only the records at these (sorted, 0-based) positions of the file are yielded
        self.positions = None if positions is None else sorted(int(i) for i in positions)
        self._len: int | None = None if positions is None else len(self.positions)
        if not self.path.exists():  # the same refusal read_jsonl gives, now rather than at the first pass
            raise InputError(self.path, None, "file not found")

    def select(self, positions) -> "JsonlRecords":
        """The records at ``positions`` of this sequence (0-based, any order; yielded in file order)."""
        positions = sorted(int(i) for i in positions)
        if self.positions is not None:
            positions = [self.positions[i] for i in positions]
        return JsonlRecords(self.path, self.transform, positions)

    def mapped(self, fn: Callable[[dict], dict]) -> "JsonlRecords":
        """The same records with ``fn`` applied to each (after this sequence's own ``transform``)."""
        inner = self.transform
        return JsonlRecords(self.path, fn if inner is None else (lambda rec: fn(inner(rec))), self.positions)

    def __iter__(self) -> Iterator[dict]:
        count = 0
        transform = self.transform
        wanted = None if self.positions is None else iter(self.positions)
        target = None if wanted is None else next(wanted, None)
        for index, rec in enumerate(iter_jsonl(self.path)):
            if wanted is not None:
                if target is None:
                    break
                if index != target:
                    continue
                target = next(wanted, None)
            count += 1
            yield rec if transform is None else transform(rec)
        self._len = count

    def __len__(self) -> int:
        if self._len is None:  # the non-blank lines: what a pass yields (a bad line fails that pass)
            with open(self.path, "rb") as handle:
                self._len = sum(1 for _, raw in _binary_lines(handle) if raw.decode("utf-8", "replace").strip())
        return self._len

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"JsonlRecords({str(self.path)!r})"


def _binary_lines(handle) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` of a binary file, without a leading byte-order mark;
    ``\\n``, ``\\r\\n`` and a lone ``\\r`` end a line."""
    lineno = 0
    for raw in handle:
        if lineno == 0 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if b"\r" not in raw:
            lineno += 1
            yield lineno, raw
            continue
        body = raw[:-1] if raw.endswith(b"\n") else raw
        for part in (body[:-1] if body.endswith(b"\r") else body).split(b"\r"):
            lineno += 1
            yield lineno, part


def iter_jsonl_lines(path) -> Iterator[tuple[int, dict]]:
    """Stream ``(line number, record)`` from a JSON-lines file, each record validated."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "file not found")
    if path.is_dir():
        raise InputError(path, None, "is a directory, expected a JSON lines file")
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputError(path, None, f"cannot read it ({exc.strerror})") from None
    seen_any = False
    with handle:
        for lineno, raw in _binary_lines(handle):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(path, lineno, f"not UTF-8 text ({exc.reason}, byte 0x{raw[exc.start]:02x} at "
                                 f"column {exc.start + 1}); convert the file to UTF-8") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, lineno, f"not valid JSON ({exc.msg}); expected one record per line") from None
            except (ValueError, RecursionError) as exc:  # a 5,000-digit number, arrays nested 1,000 deep
                raise InputError(path, lineno, f"not usable JSON ({str(exc)[:80] or 'nested too deeply'}); "
                                 "expected one record per line") from None
            check_unicode(rec, path, lineno, raw=line)
            seen_any = True
            yield lineno, validate_record(rec, path, lineno)
    if not seen_any:
        raise InputError(path, None, "empty file: expected JSON lines with id, tokens, spans")


def write_jsonl(path, records: Iterable[dict]) -> int:
    """Write records atomically (all or nothing); return how many were written."""
    count = 0
    with atomic_open(path) as handle:
        for rec in records:
            handle.write(check_encodable(json.dumps(rec, ensure_ascii=False), f"record {count}") + "\n")
            count += 1
    return count


def spans_of(rec: dict) -> set[Span]:
    """The record's spans as a set of ``(start, end, type)`` tuples."""
    return {(int(s), int(e), str(t)) for s, e, t in rec["spans"]}


def keep_types(records: Iterable[dict], types) -> list[dict]:
    """Copies of ``records`` holding only the spans whose type is in ``types`` (other keys kept)."""
    wanted = set(types)
    return [{**rec, "spans": [list(sp) for sp in rec["spans"] if sp[2] in wanted]} for rec in records]
