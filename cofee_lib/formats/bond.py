"""BOND-style JSON: ``[{"str_words": [...], "tags": [ids]}, ...]`` plus ``tag_to_id.json``.

BOND (Liang et al., KDD 2020) stores each split as a JSON array of sentences
whose ``tags`` are integer ids; ``tag_to_id.json`` in the same folder maps
BIO tag strings to those ids (``{"O": 0, "B-LOC": 1, "I-LOC": 2, ...}``) and
is shared by the train, dev and test files of a dataset.

Records are word-level with inclusive span ends (:mod:`cofee_lib.records`);
ids are ``f"{id_prefix or file stem}-{index}"`` (0-based).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ..errors import CofeeError, InputError, atomic_open
from ..records import check_encodable, is_index, json_text, make_record, validate_record
from .conll import record_where
from .json_items import iter_json_items, load_json
from .tags import spans_to_tags, tags_to_spans

TAG_MAP_NAME = "tag_to_id.json"


def read_tag_map(path) -> dict[str, int]:
    """Read a ``{tag: id}`` JSON object and check ids are distinct non-negative integers."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, f"file not found; a BOND file needs its {TAG_MAP_NAME} (tag -> id) beside it "
                         "or given explicitly")
    data = load_json(path, "an object {tag: id}")
    if not isinstance(data, dict) or not data:
        raise InputError(path, 1, "expected a non-empty JSON object mapping BIO tags to integer ids")
    seen: dict[int, str] = {}
    for tag, tid in data.items():
        if not is_index(tid) or tid < 0:
            raise InputError(path, None, f"tag {tag!r} has id {json_text(tid)}; expected a non-negative integer")
        if tid in seen:
            raise InputError(path, None, f"tags {seen[tid]!r} and {tag!r} share id {tid}")
        seen[tid] = tag
    return data


def read_bond(path, tag_map=None, id_prefix: str | None = None, invalid: str = "error") -> list[dict]:
    """Read a BOND JSON file into records (BIO tags decoded to inclusive spans).

    ``tag_map``: path of ``tag_to_id.json`` (default: beside ``path``).
    ``invalid``: how to treat ill-formed BIO sequences (see
    :func:`~cofee_lib.formats.tags.tags_to_spans`). Raises :class:`InputError`
    naming the file, the line and the example index: missing keys, words and
    tags of different lengths, unknown tag ids.
    """
    path = Path(path)
    tag_map_path = Path(tag_map) if tag_map else path.with_name(TAG_MAP_NAME)
    id_to_tag = {tid: tag for tag, tid in read_tag_map(tag_map_path).items()}
    prefix = id_prefix or path.stem
    records = []
    for index, line, ex in iter_json_items(path, 'sentences {"str_words": [...], "tags": [...]}'):
        where = f"example {index}"
        if not isinstance(ex, dict) or "str_words" not in ex or "tags" not in ex:
            raise InputError(path, line, f'{where}: expected an object with "str_words" and "tags"')
        words, tag_ids = ex["str_words"], ex["tags"]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise InputError(path, line, f'{where}: "str_words" must be a list of strings')
        if not isinstance(tag_ids, list):
            raise InputError(path, line, f'{where}: "tags" must be a list of integer tag ids')
        if len(words) != len(tag_ids):
            raise InputError(path, line, f"{where}: {len(words)} words but {len(tag_ids)} tags; "
                             "expected one tag id per word")
        tags = []
        for k, tid in enumerate(tag_ids):
            if not is_index(tid) or tid not in id_to_tag:
                raise InputError(path, line, f"{where}: tag id {json_text(tid)} at word {k} is not in {tag_map_path} "
                                 f"(known ids {min(id_to_tag)}..{max(id_to_tag)})")
            tags.append(id_to_tag[tid])
        try:
            spans = tags_to_spans(tags, "iob2", path, None, invalid=invalid)
        except InputError as exc:
            raise InputError(path, line, f"{where}: {exc.message}") from None
        records.append(make_record(f"{prefix}-{index}", words, spans))
    return records


def bio_tag_map(types: Iterable[str], base: dict[str, int] | None = None) -> dict[str, int]:
    """A ``{tag: id}`` map with ``O`` = 0 and ``B-T``, ``I-T`` for each type (sorted).

    Ids already in ``base`` are kept; missing tags get the next free ids, so a
    map shared by several files only ever grows.
    """
    out = dict(base) if base else {"O": 0}
    if "O" not in out:
        raise CofeeError("the tag map has no 'O' tag")
    next_id = max(out.values()) + 1
    for t in sorted(set(types)):
        for tag in (f"B-{t}", f"I-{t}"):
            if tag not in out:
                out[tag] = next_id
                next_id += 1
    return out


def write_bond(path, records: Iterable[dict], tag_map=None) -> int:
    """Write records as BOND JSON and write/extend the tag map beside it (both atomic).

    ``tag_map``: path of the map (default ``tag_to_id.json`` beside ``path``).
    If it exists its ids are kept and only missing tags are added, so train,
    dev and test files written to one folder share one map. Returns the number
    of sentences. Overlapping spans raise :class:`CofeeError`; nothing is written.
    """
    path = Path(path)
    tag_map_path = Path(tag_map) if tag_map else path.with_name(TAG_MAP_NAME)
    records = list(records)
    if not records:
        raise CofeeError("no records to write: a BOND file needs at least one sentence")
    wheres = [record_where(rec, index) for index, rec in enumerate(records)]
    for rec, where in zip(records, wheres):
        validate_record(rec, where)
    base = read_tag_map(tag_map_path) if tag_map_path.exists() else None
    mapping = bio_tag_map((span[2] for rec in records for span in rec["spans"]), base)
    with atomic_open(tag_map_path) as map_handle, atomic_open(path) as handle:
        handle.write("[")
        for index, (rec, where) in enumerate(zip(records, wheres)):
            tags = spans_to_tags(len(rec["tokens"]), rec["spans"], "iob2", where=where)
            item = {"str_words": rec["tokens"], "tags": [mapping[t] for t in tags]}
            handle.write(("\n" if index == 0 else ",\n") + check_encodable(json.dumps(item, ensure_ascii=False), where))
        handle.write("\n]\n")
        map_handle.write(check_encodable(json.dumps(mapping, ensure_ascii=False, indent=1), tag_map_path) + "\n")
    return len(records)
