"""Recorded split files: which source sentences form each split, with a hash of every sentence.

A split is drawn once (:func:`make_split`), written (:func:`save_split`) and
from then on only read (:func:`read_split_file`) and applied
(:func:`apply_split`), which checks every recorded hash, so a changed source
(or reader) is detected with a clear error and the split is never drawn
again. The built-in datasets' split files are ``cofee_lib/resources/splits/<name>.json``
(see :mod:`cofee_lib.datasets`).

A split file is a JSON object: ``n_sentences``, ``pool``, ``seed``, ``carve``,
``hash`` (:data:`HASH_RULE`) and ``splits``: ``{split: {size, sha256, and one or
more of sentences ([index, short hash] pairs), range ([start, end)), rule}}``.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from ..errors import InputError, atomic_open

SHORT_HASH = 16  # hex digits of a sentence's sha256 kept per sentence in a split file
HASH_RULE = ("sentence hash: sha256 of the sentence's tokens joined by one space (UTF-8); per sentence the "
             f"first {SHORT_HASH} hex digits are kept. split sha256: sha256 of the full sentence hashes of "
             "the split, in index order, one per line.")
SPLIT_ORDER = ("train", "dev", "test")


def sentence_hash(tokens: list[str]) -> str:
    """sha256 (hex) of a sentence's tokens joined by one space."""
    return hashlib.sha256(" ".join(tokens).encode("utf-8")).hexdigest()


def split_digest(full_hashes: list[str]) -> str:
    """sha256 of a split's full sentence hashes, in index order, one per line."""
    return hashlib.sha256("\n".join(full_hashes).encode("ascii")).hexdigest()


def _listed(indices: list[int], full: list[str]) -> dict:
    return {"size": len(indices), "sha256": split_digest([full[i] for i in indices]),
            "sentences": [[i, full[i][:SHORT_HASH]] for i in indices]}


def make_split(records: list[dict], carve: dict[str, float], seed: int, rest: str = "train",
               pool_end: int | None = None, ranges: dict[str, list] | None = None,
               list_rest: bool = False, dataset: str | None = None) -> dict:
    """Draw a split once and describe it as a split file (a dict; see :func:`save_split`).

    ``carve``: fractions of the pool ``[0, pool_end)`` (default: all sentences)
    drawn at random with ``seed`` (e.g. ``{"dev": 0.15, "test": 0.15}``); each
    carved split is stored as its sentence indices and short hashes. ``rest``:
    the pool minus the carved splits, stored as a rule (and, with ``list_rest``,
    also as indices and hashes). ``ranges``: fixed
    ``[start, end)`` blocks (``None`` end = the last sentence), e.g. MSRA's
    official test.
    """
    n = len(records)
    pool_end = n if pool_end is None else pool_end
    full = [sentence_hash(r["tokens"]) for r in records]
    order = list(range(pool_end))
    random.Random(seed).shuffle(order)
    splits: dict[str, dict] = {}
    taken: set[int] = set()
    offset = 0
    for split, fraction in carve.items():
        size = round(fraction * pool_end)
        chosen = sorted(order[offset:offset + size])
        offset += size
        taken.update(chosen)
        splits[split] = _listed(chosen, full)
    remaining = [i for i in range(pool_end) if i not in taken]
    splits[rest] = {"size": len(remaining), "sha256": split_digest([full[i] for i in remaining]),
                    "rule": f"the sentences of the pool [0, {pool_end}) in none of: {', '.join(carve)}"}
    if list_rest:
        splits[rest]["sentences"] = [[i, full[i][:SHORT_HASH]] for i in remaining]
    for split, (start, end) in (ranges or {}).items():
        end = n if end is None else end
        splits[split] = {"size": end - start, "sha256": split_digest(full[start:end]), "range": [start, end]}
    splits = dict(sorted(splits.items(), key=lambda kv: SPLIT_ORDER.index(kv[0]) if kv[0] in SPLIT_ORDER
                         else len(SPLIT_ORDER)))
    return {"dataset": dataset, "n_sentences": n, "pool": [0, pool_end], "seed": seed, "carve": carve,
            "list_rest": list_rest, "made_by": "cofee_lib.datasets.make_split", "hash": HASH_RULE,
            "splits": splits}


def save_split(spec: dict, path) -> None:
    """Write a split file atomically, one ``[index, hash]`` pair per line (readable diffs)."""
    lines = ["{"]
    head = {k: v for k, v in spec.items() if k != "splits"}
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('  "splits": {')
    split_items = list(spec["splits"].items())
    for k, (split, body) in enumerate(split_items):
        lines.append(f"    {json.dumps(split)}: {{")
        fields = [f"      {json.dumps(key)}: {json.dumps(val)}" for key, val in body.items() if key != "sentences"]
        if "sentences" in body:
            pairs = ",\n".join(f"        {json.dumps(p)}" for p in body["sentences"])
            fields.append(f'      "sentences": [\n{pairs}\n      ]')
        lines.append(",\n".join(fields))
        lines.append("    }" + ("," if k < len(split_items) - 1 else ""))
    lines.append("  }")
    lines.append("}")
    with atomic_open(path) as handle:
        handle.write("\n".join(lines) + "\n")


def read_split_file(path, name: str) -> tuple[dict, Path]:
    """Read the split file ``path`` recorded for the dataset ``name``; ``(spec, path)``."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, f"recorded split of {name!r} not found")
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"not valid JSON ({exc.msg})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("splits"), dict) or not isinstance(spec.get("n_sentences"), int):
        raise InputError(path, None, "expected a split file with 'n_sentences' and 'splits' (see cofee_lib.datasets.make_split)")
    return spec, path


def _by_rule(spec: dict, split: str) -> list[int]:
    """The pool's sentences in no other split that lists its sentences (a ``rule`` split)."""
    carved = set()
    for other, other_body in spec["splits"].items():
        if other != split and "sentences" in other_body and "rule" not in other_body:
            carved.update(pair[0] for pair in other_body["sentences"])
    start, end = spec["pool"]
    return [i for i in range(start, end) if i not in carved]


def split_indices(spec: dict, split: str, path="<split file>") -> list[int]:
    """The source sentence indices of one split of a split file (ascending)."""
    splits = spec["splits"]
    if split not in splits:
        raise InputError(path, None, f"no split {split!r} recorded (has {', '.join(splits)})")
    body = splits[split]
    n = spec["n_sentences"]
    indices = None
    if "sentences" in body:
        indices = [pair[0] for pair in body["sentences"]]
    elif "range" in body:
        start, end = body["range"]
        indices = list(range(start, end))
    if "rule" in body:
        by_rule = _by_rule(spec, split)
        if indices is not None and indices != by_rule:
            raise InputError(path, None, f"split {split!r}: the listed sentences differ from its rule ({body['rule']})")
        indices = by_rule
    if indices is None:
        raise InputError(path, None, f"split {split!r} has none of 'sentences', 'range', 'rule'")
    if any(not isinstance(i, int) or not 0 <= i < n for i in indices) or len(set(indices)) != len(indices):
        raise InputError(path, None, f"split {split!r} holds indices out of [0, {n}) or repeated")
    return indices


def apply_split(records: list[dict], spec: dict, split: str, path="<split file>") -> list[tuple[int, dict]]:
    """Select one split's records, checking every recorded hash; ``[(source index, record)]``.

    Raises :class:`InputError` naming the split file when the source does not
    match what the split was made from (sentence count, a sentence's hash or
    the split's overall hash).
    """
    n = spec["n_sentences"]
    if len(records) != n:
        raise InputError(path, None, f"the split was recorded on {n} sentences but the source has {len(records)}; "
                         "the source changed (the split is never drawn again)")
    indices = split_indices(spec, split, path)
    body = spec["splits"][split]
    if body.get("size") is not None and body["size"] != len(indices):
        raise InputError(path, None, f"split {split!r} records size {body['size']} but holds {len(indices)} sentences")
    full = [sentence_hash(records[i]["tokens"]) for i in indices]
    for k, (i, recorded) in enumerate(body.get("sentences", [])):
        if full[k][:len(recorded)] != recorded or not recorded:
            raise InputError(path, None, f"split {split!r}: source sentence {i} hashes to {full[k][:SHORT_HASH]}, "
                             f"but the split file records {recorded!r}; the source or its reader changed "
                             f"(sentence: {' '.join(records[i]['tokens'])[:60]!r})")
    if body.get("sha256") != split_digest(full):
        raise InputError(path, None, f"split {split!r}: the sentences' overall sha256 is {split_digest(full)}, "
                         f"but the split file records {body.get('sha256')}; the source or its reader changed")
    return [(i, records[i]) for i in indices]
