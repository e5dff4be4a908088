"""The MRC-NER / CoFEE JSON format: one example per (sentence, entity type).

A file is a JSON array of objects::

    {"context": "EU rejects German call", "query": "Find organizations ...",
     "entity_label": "ORG", "start_position": [0], "end_position": [0],
     "span_position": ["0;0"], "impossible": false, "qas_id": "0.1"}

* ``context``: the sentence's words (or Chinese characters) joined by spaces.
* ``start_position`` / ``end_position``: parallel lists of **word indices**;
  ``span_position``: the same spans as ``"start;end"`` strings. Ends are
  **inclusive**. ``impossible`` is true when the sentence has no entity of
  the type.
* ``qas_id``: ``"{sentence}.{type_index}"``. The writer numbers sentences
  from 0 (record order) and types from 1 (order of the queries mapping).

Reading groups the examples back into one record per sentence (the union of
the types' spans), in order of first appearance; record ids are
``f"{id_prefix or file stem}-{sentence}"``. Writing needs a mapping
``{type: query}``; every record yields one example per type in it, so a file
holds ``len(records) * len(queries)`` examples.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from ..errors import CofeeError, InputError, atomic_open
from ..records import check_encodable, is_index, json_text, make_record, validate_record
from .conll import record_where
from .json_items import iter_json_items, load_json

_POSITION = re.compile(r"\s*(-?[0-9]{1,18})\s*;\s*(-?[0-9]{1,18})\s*")  # "start;end", ASCII digits


def _int_list(ex: dict, key: str, path, line: int, where: str) -> list[int]:
    value = ex.get(key)
    if not isinstance(value, list) or not all(is_index(v) for v in value):
        raise InputError(path, line, f"{where}: {key!r} must be a list of integer word indices (true/false are "
                         f"not indices), got {json_text(value)}")
    return value


def _example_spans(ex: dict, n: int, path, line: int, where: str) -> list[tuple[int, int]]:
    """Check one example's positions and return its (start, end) pairs, inclusive ends."""
    starts = _int_list(ex, "start_position", path, line, where)
    ends = _int_list(ex, "end_position", path, line, where)
    if len(starts) != len(ends):
        raise InputError(path, line, f"{where}: start_position has {len(starts)} items but end_position has "
                         f"{len(ends)}; they must be parallel lists")
    pairs = list(zip(starts, ends))
    if "span_position" in ex:
        raw = ex["span_position"]
        if not isinstance(raw, list):
            raise InputError(path, line, f"{where}: 'span_position' must be a list of \"start;end\" strings")
        pairs = []
        for item in raw:
            match = _POSITION.fullmatch(item) if isinstance(item, str) else None
            if match is None:
                raise InputError(path, line, f"{where}: span_position item {json_text(item)} is not \"start;end\" "
                                 "(two integers)")
            pairs.append((int(match[1]), int(match[2])))
        if sorted(s for s, _ in pairs) != sorted(starts) or sorted(e for _, e in pairs) != sorted(ends):
            raise InputError(path, line, f"{where}: span_position {raw!r} does not match start_position "
                             f"{starts!r} and end_position {ends!r}")
    for s, e in pairs:
        if not 0 <= s <= e < n:
            raise InputError(path, line, f"{where}: span {s};{e} out of range for a context of {n} words "
                             "(expected 0 <= start <= end < words, end inclusive)")
    if len(set(pairs)) != len(pairs):
        raise InputError(path, line, f"{where}: the same span is listed twice")
    if "impossible" in ex:
        if not isinstance(ex["impossible"], bool):
            raise InputError(path, line, f"{where}: 'impossible' must be true or false")
        if ex["impossible"] != (not pairs):
            raise InputError(path, line, f"{where}: 'impossible' is {str(ex['impossible']).lower()} but the "
                             f"example has {len(pairs)} span(s)")
    return pairs


def read_mrc_json(path, id_prefix: str | None = None, queries_out: dict | None = None) -> list[dict]:
    """Read an MRC-NER JSON file into one word-level record per sentence.

    Spans are ``[start, end, type]`` with inclusive ends. If ``queries_out``
    is a dict it is filled with ``{entity_label: query}`` as found in the
    file. Raises :class:`InputError` naming the file and the line of the bad
    example: missing keys, start/end lists of different lengths, indices out
    of range, contexts that differ between examples of one sentence, or the
    same (sentence, type) twice.
    """
    path = Path(path)
    prefix = id_prefix or path.stem
    sentences: dict[str, dict] = {}
    for index, line, ex in iter_json_items(path, "MRC examples"):
        where = f"example {index}"
        if not isinstance(ex, dict):
            raise InputError(path, line, f"{where}: expected an object with context, query, entity_label, "
                             f"start_position, end_position, qas_id; got {type(ex).__name__}")
        for key in ("context", "entity_label", "qas_id", "start_position", "end_position"):
            if key not in ex:
                raise InputError(path, line, f"{where}: missing key {key!r} (expected context, query, entity_label, "
                                 "start_position, end_position, span_position, impossible, qas_id)")
        context, label, qas_id = ex["context"], ex["entity_label"], ex["qas_id"]
        if not isinstance(context, str):
            raise InputError(path, line, f"{where}: 'context' must be a string of space-separated words")
        if not isinstance(label, str) or not label or any(c.isspace() for c in label):
            raise InputError(path, line, f"{where}: 'entity_label' must be a non-empty type name without "
                             f"whitespace, got {json_text(label)}")
        if not isinstance(qas_id, str) or "." not in qas_id or not qas_id.rpartition(".")[0]:
            raise InputError(path, line, f"{where}: 'qas_id' must be \"{{sentence}}.{{type_index}}\", "
                             f"got {json_text(qas_id)}")
        query = ex.get("query")
        if query is not None and not isinstance(query, str):
            raise InputError(path, line, f"{where}: 'query' must be a string")
        sentence = qas_id.rpartition(".")[0]
        tokens = context.split()
        pairs = _example_spans(ex, len(tokens), path, line, where)
        sent = sentences.get(sentence)
        if sent is None:
            sent = sentences[sentence] = {"tokens": tokens, "line": line, "labels": {}, "spans": []}
        elif sent["tokens"] != tokens:
            raise InputError(path, line, f"{where}: sentence {sentence!r} has a different context than on line "
                             f"{sent['line']}; all examples of a sentence must share one context")
        if label in sent["labels"]:
            raise InputError(path, line, f"{where}: sentence {sentence!r} already has a {label!r} example "
                             f"(line {sent['labels'][label]})")
        sent["labels"][label] = line
        sent["spans"].extend((s, e, label) for s, e in pairs)
        if queries_out is not None and query is not None:
            queries_out.setdefault(label, query)
    return [make_record(f"{prefix}-{sentence}", s["tokens"], s["spans"]) for sentence, s in sentences.items()]


def generic_queries(records: Iterable[dict]) -> dict[str, str]:
    """``{type: "Find {type} entities"}`` for every type in ``records``, sorted by type.

    A fallback for when no dataset queries (Table 1 of the paper) are given.
    """
    types = sorted({span[2] for rec in records for span in rec["spans"]})
    return {t: f"Find {t} entities" for t in types}


def mrc_examples(rec: dict, sentence, queries: dict[str, str], where: str | None = None) -> list[dict]:
    """The MRC examples of one record, one per type of ``queries`` (in its order).

    Raises :class:`InputError` naming ``where`` (default: the record's id) for
    what the reader could not give back: a token that is empty or holds
    whitespace (the context joins words with spaces), the same span twice, a
    type with no query.
    """
    where = where or f"record {rec.get('id')!r}"
    validate_record(rec, where)
    tokens = rec["tokens"]
    for i, tok in enumerate(tokens):
        if not tok or any(c.isspace() for c in tok):
            raise InputError(where, None, f"token {i} ({tok!r}) is empty or holds whitespace; "
                             "an MRC context joins words with spaces")
    by_type: dict[str, list[tuple[int, int]]] = {t: [] for t in queries}
    for s, e, t in sorted((s, e, t) for s, e, t in rec["spans"]):
        if t not in by_type:
            raise InputError(where, None, f"has a {t!r} entity but there is no query for {t!r} "
                             f"(queries given for: {', '.join(queries) or 'none'})")
        if (s, e) in by_type[t][-1:]:
            raise InputError(where, None, f"lists the span [{s}, {e}, {t!r}] twice")
        by_type[t].append((s, e))
    context = " ".join(tokens)
    out = []
    for type_index, (label, query) in enumerate(queries.items(), 1):
        pairs = by_type[label]
        out.append({
            "context": context,
            "query": query,
            "entity_label": label,
            "start_position": [s for s, _ in pairs],
            "end_position": [e for _, e in pairs],
            "span_position": [f"{s};{e}" for s, e in pairs],
            "impossible": not pairs,
            "qas_id": f"{sentence}.{type_index}",
        })
    return out


def _check_queries(queries) -> None:
    if not queries:
        raise CofeeError("no queries given: the MRC format needs a query for every entity type")
    for label, query in queries.items():
        if not isinstance(label, str) or not label or any(c.isspace() for c in label) or not isinstance(query, str):
            raise CofeeError(f"queries must map type names (non-empty, without whitespace) to query strings; "
                             f"got {label!r}: {query!r}")


def write_mrc_json(path, records: Iterable[dict], queries: dict[str, str]) -> int:
    """Write one MRC example per (record, type of ``queries``) as a JSON array (atomic).

    Sentences are numbered from 0 in record order, types from 1 in the order
    of ``queries``. One example per line, so errors and diffs point at lines.
    Returns the number of examples. A record with a type missing from
    ``queries`` (or another problem, see :func:`mrc_examples`) raises
    :class:`CofeeError` and nothing is written.
    """
    _check_queries(queries)
    count = 0
    with atomic_open(path) as handle:
        handle.write("[")
        for sentence, rec in enumerate(records):
            where = record_where(rec, sentence)
            for ex in mrc_examples(rec, sentence, queries, where):
                text = check_encodable(json.dumps(ex, ensure_ascii=False), where)
                handle.write(("\n" if count == 0 else ",\n") + text)
                count += 1
        if count == 0:
            raise CofeeError("no records to write: an MRC file needs at least one sentence")
        handle.write("\n]\n")
    return count


def read_queries(path) -> dict[str, str]:
    """Read a ``{type: query}`` JSON object (for ``cofee convert --to mrc --queries``)."""
    data = load_json(path, "an object {type: query}")
    if not isinstance(data, dict) or not data:
        raise InputError(path, 1, "expected a non-empty JSON object mapping each entity type to its query")
    for label, query in data.items():
        if not label or any(c.isspace() for c in label):
            raise InputError(path, None, f"type {label!r} must be non-empty and without whitespace")
        if not isinstance(query, str) or not query.strip():
            raise InputError(path, None, f"the query for {label!r} must be a non-empty string")
    return data
