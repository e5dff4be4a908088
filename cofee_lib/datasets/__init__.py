"""The dataset registry: every labelled dataset the kit knows, built-in and the user's, by one name.

* the **built-in** datasets ``conll2003``, ``wnut16`` and ``msra`` are fetched
  and verified (:mod:`cofee_lib.datasets.builtin`: their sources, label
  mapping and recorded splits);
* the **user's** datasets are read from the data root: the paper's
  ``ontonotes4``, ``ecommerce`` and ``twitter``, any entry of
  ``<data root>/user_datasets.json``, or a folder named ``dir:/path/to/folder``
  (:mod:`cofee_lib.datasets.user`; docs/paper_preset.md).

Every function here takes either kind: :func:`load_dataset` (one split),
:func:`load_splits` (several, the source read once), :func:`dataset_types`,
:func:`dataset_lang`, :func:`is_user_dataset`, :func:`dataset_names`, and
:func:`target_arg`, the ``argparse`` type of ``--target`` (the English
targets :data:`ENGLISH_TARGETS` or a user dataset). Records follow
:mod:`cofee_lib.records` (``tokens`` are words, or characters for Chinese;
``spans`` are ``[start, end, type]`` with an **inclusive** end) with ids
``"<dataset>-<split>-<n>"``, ``n`` the sentence's 0-based index in its source.

The readers live in :mod:`cofee_lib.formats` (:func:`load_records` reads a
user's single file: JSON lines or CoNLL columns); the Matching baseline's
scores on a dataset are :mod:`cofee_lib.datasets.baseline`; the training
split that gives the English gazetteers their person names is
:func:`load_train` (pass it to :func:`cofee_lib.gazetteers.build_gazetteers`).
"""
from __future__ import annotations

from ..errors import CofeeError
from ..formats import read_file as load_records
from ..formats.splits import (HASH_RULE, SHORT_HASH, apply_split, make_split, save_split, sentence_hash,
                              split_digest, split_indices)
from ..gazetteers import TARGETS as ENGLISH_TARGETS
from .builtin import (DATASETS, LABELS_FILE, MSRA_TEST_FIRST, MSRA_TEST_START, RESOURCES, SPLIT_PLANS, SPLITS_DIR,
                      Dataset, check_split, dataset_info, load_builtin_splits, map_types, read_split, record_split)
from .user import (is_dir_target, is_user_dataset, safe_name, user_dataset_lang, user_dataset_names,
                   user_dataset_types)
from .baseline import matching_scores, restrict_types, score_matching

__all__ = [
    "DATASETS", "ENGLISH_TARGETS", "Dataset", "dataset_info", "dataset_lang", "dataset_names", "dataset_types",
    "gazetteer_set", "is_builtin", "is_dir_target", "is_user_dataset", "load_dataset", "load_records",
    "load_splits", "load_train", "matching_scores", "record_stats", "restrict_types", "safe_name",
    "score_matching", "stand_ins", "target_arg",
    # the built-in datasets' sources and recorded splits (cofee_lib.datasets.builtin, cofee_lib.formats.splits)
    "HASH_RULE", "LABELS_FILE", "MSRA_TEST_FIRST", "MSRA_TEST_START", "RESOURCES", "SHORT_HASH", "SPLITS_DIR",
    "SPLIT_PLANS", "apply_split", "make_split", "map_types", "read_msra", "read_split", "record_split", "save_split",
    "sentence_hash", "split_digest", "split_indices",
]


def __getattr__(name: str):
    """``read_msra`` (:mod:`cofee_lib.formats.charfile`), imported when first asked for: the column
    readers pull in tqdm, and ``cofee --help`` imports this package."""
    if name == "read_msra":
        from ..formats.charfile import read_msra

        return read_msra
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_builtin(name) -> bool:
    """True for ``conll2003``, ``wnut16`` and ``msra``."""
    return isinstance(name, str) and name in DATASETS


def _user(name) -> bool:
    """True for the user's own datasets; never for the built-in names (the user's registry is not read for them)."""
    return not is_builtin(name) and is_user_dataset(name)


def dataset_names() -> list[str]:
    """The named datasets: the built-in ones, then the user's (``dir:<folder>`` targets are not listed)."""
    return list(DATASETS) + user_dataset_names()


def dataset_types(name: str) -> list[str]:
    """The entity types a dataset's records carry (from ``resources/labels.json``; user datasets: their spec)."""
    if _user(name):
        return user_dataset_types(name)
    from .builtin import builtin_types

    return builtin_types(name)


def dataset_lang(name: str) -> str:
    """``en`` or ``zh``: the language of a dataset (a user dataset's entry says it, or its characters)."""
    if _user(name):
        return user_dataset_lang(name)
    return dataset_info(name).language


def gazetteer_set(name: str) -> str:
    """The name of the gazetteer set a dataset is matched with: ``<lang>-<dataset>`` (``en-wnut16``, ``zh-msra``).

    The kit builds its gazetteers under ``<work_dir>/gazetteers/<this name>/``
    (:func:`cofee_lib.pipeline.build_corpora`); notebook 02 keys its
    gazetteers and Matching scores by it.
    """
    return f"{dataset_lang(name)}-{name}"


def load_splits(name: str, splits=None, *, split_file=None, progress: bool = True) -> dict[str, list[dict]]:
    """Several splits (default: all) of a dataset, reading its source once; ``{split: records}``.

    ``split_file`` overrides the recorded split of ``wnut16`` / ``msra``
    (``resources/splits/<name>.json``). A user dataset is read from the user's files.
    """
    if _user(name):
        from .user import load_user_splits

        if split_file is not None:
            raise CofeeError(f"split_file applies to wnut16 and msra, not to the user dataset {name!r}")
        return load_user_splits(name, splits, progress=progress)
    return load_builtin_splits(name, splits, split_file=split_file, progress=progress)


def load_dataset(name: str, split: str, *, split_file=None, progress: bool = True) -> list[dict]:
    """Records of one split (``train``/``dev``/``test``) of a dataset: built-in or the user's.

    Fetches a built-in source if needed (see :mod:`cofee_lib.sources`).
    ``split_file`` overrides the recorded split of ``wnut16`` / ``msra``
    (``resources/splits/<name>.json``); CoNLL-2003 has official split files.
    """
    if not _user(name):
        check_split(name, split)
    return load_splits(name, [split], split_file=split_file, progress=progress)[split]


def load_train(name: str) -> list[dict]:
    """The training split of a dataset (what :func:`cofee_lib.gazetteers.build_gazetteers` takes as ``load_train``)."""
    return load_dataset(name, "train")


def record_stats(records: list[dict]) -> dict:
    """Counts for a list of records: sentences, tokens, entities, entities per type."""
    per_type: dict[str, int] = {}
    for rec in records:
        for _, _, etype in rec["spans"]:
            per_type[etype] = per_type.get(etype, 0) + 1
    return {"sentences": len(records), "tokens": sum(len(r["tokens"]) for r in records),
            "entities": sum(per_type.values()), "types": dict(sorted(per_type.items()))}


def stand_ins(paper_datasets: dict, among=None) -> dict[str, str]:
    """``{paper dataset: the kit dataset standing in for it}`` (``twitter`` -> ``wnut16``, ``ontonotes4`` -> ``msra``).

    ``paper_datasets``: ``paper_numbers()["datasets"]`` (:mod:`cofee_lib.paper`),
    whose ``kit_stand_in`` says it; ``among``: keep only these kit datasets.
    """
    return {name: entry["kit_stand_in"] for name, entry in paper_datasets.items()
            if entry.get("kit_stand_in") and (among is None or entry["kit_stand_in"] in among)}


def target_arg(value: str) -> str:
    """An ``argparse`` type for ``--target``: an English target (:data:`ENGLISH_TARGETS`) or a user dataset.

    A user dataset is a name of the user's registry or a ``dir:<folder>``.
    """
    import argparse

    if value in ENGLISH_TARGETS:
        return value
    try:
        if is_user_dataset(value):
            return value
    except CofeeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a target: use {', '.join(ENGLISH_TARGETS)}, a user dataset "
        f"({', '.join(user_dataset_names())}; see `cofee paper-data`), or dir:/path/to/folder")
