"""The kit's one interchange format: JSON lines of word-level records.

One record per line::

    {"id": "conll2003-train-17", "tokens": ["EU", "rejects", "German", "call"],
     "spans": [[0, 0, "ORG"], [2, 2, "MISC"]]}

* ``tokens`` are words (English) or characters (Chinese).
* ``spans`` are ``[start, end, type]`` with **word indices and an inclusive
  end**: ``[2, 3, "PER"]`` covers ``tokens[2]`` and ``tokens[3]``.
* Extra keys are allowed and kept (for example ``targets`` on Wikipedia
  anchors: the link target of each span, in the same order).

Records are plain dicts; :func:`validate_record` checks one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from .errors import InputError, atomic_open

Span = tuple[int, int, str]


def make_record(id: str, tokens: list[str], spans: Iterable, **extra) -> dict:
    """Build a record dict with spans as ``[start, end, type]`` lists, sorted."""
    rec = {"id": str(id), "tokens": list(tokens), "spans": sorted([int(s), int(e), str(t)] for s, e, t in spans)}
    rec.update(extra)
    return rec


def validate_record(rec, path="<record>", line: int | None = None) -> dict:
    """Check one record's shape; raise :class:`InputError` naming ``path:line`` if wrong."""
    if not isinstance(rec, dict):
        raise InputError(path, line, f"expected a JSON object with id, tokens, spans; got {type(rec).__name__}")
    for key in ("id", "tokens", "spans"):
        if key not in rec:
            raise InputError(path, line, f"missing key {key!r} (expected id, tokens, spans)")
    tokens = rec["tokens"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise InputError(path, line, "'tokens' must be a list of strings")
    if not isinstance(rec["spans"], list):
        raise InputError(path, line, "'spans' must be a list of [start, end, type]")
    n = len(tokens)
    for span in rec["spans"]:
        if (not isinstance(span, (list, tuple)) or len(span) != 3 or not isinstance(span[0], int)
                or not isinstance(span[1], int) or not isinstance(span[2], str)):
            raise InputError(path, line, f"span {span!r} is not [start:int, end:int, type:str]")
        if not (0 <= span[0] <= span[1] < n):
            raise InputError(path, line, f"span {span!r} out of range for {n} tokens (end is inclusive)")
    return rec


def read_jsonl(path) -> list[dict]:
    """Read and validate a JSON-lines file of records."""
    return list(iter_jsonl(path))


def iter_jsonl(path) -> Iterator[dict]:
    """Stream validated records from a JSON-lines file (blank lines are skipped)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "file not found")
    try:
        with open(path, encoding="utf-8") as handle:
            seen_any = False
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(path, lineno, f"not valid JSON ({exc.msg}); expected one record per line") from None
                seen_any = True
                yield validate_record(rec, path, lineno)
            if not seen_any:
                raise InputError(path, None, "empty file: expected JSON lines with id, tokens, spans")
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def write_jsonl(path, records: Iterable[dict]) -> int:
    """Write records atomically (all or nothing); return how many were written."""
    count = 0
    with atomic_open(path) as handle:
        for rec in records:
            handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
            count += 1
    return count


def spans_of(rec: dict) -> set[Span]:
    """The record's spans as a set of ``(start, end, type)`` tuples."""
    return {(int(s), int(e), str(t)) for s, e, t in rec["spans"]}
