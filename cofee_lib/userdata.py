"""The user's own datasets (the paper's OntoNotes 4.0, E-commerce and Twitter, or any folder): the old import path.

What this module held now lives where its job is:

* describing a user dataset (the registry entries of ``user_datasets.json``,
  ``dir:`` folders, the layout check, the gazetteer folder, the Wikipedia
  dumps of the data root) and reading its splits: :mod:`cofee_lib.datasets.user`;
* one registry for them and the built-in datasets (``load_dataset``,
  ``dataset_types``, ``dataset_lang``, ``is_user_dataset``, and
  :func:`target_arg`, the ``argparse`` type of ``--target``): :mod:`cofee_lib.datasets`;
* the readers of their files (format guessed, scheme detected, ``IMGID:``
  lines and whitespace tokens repaired): :mod:`cofee_lib.formats.columns`;
* their query sets (:func:`user_queries`): :mod:`cofee_lib.queries`;
* copying the user's gazetteers into a work folder (:func:`copy_gazetteers`):
  :mod:`cofee_lib.gazetteers`.

The names below are re-exported so that ``from cofee_lib.userdata import ...``
keeps working; new code imports them from the modules above.
"""
from __future__ import annotations

from .datasets import target_arg
from .datasets.user import (DIR_PREFIX, DIR_SPEC, DOCS, ENTRY_KEYS, FORMAT_ALIASES, FORMATS, LANGS, LAYOUT_KEYS,
                            RESOURCE, SPLITS, USER_REGISTRY, check_layout, is_dir_target, is_user_dataset,
                            load_user_split, load_user_splits, registry, safe_name, user_dataset_lang,
                            user_dataset_names, user_dataset_spec, user_dataset_types, user_gazetteer_dir,
                            wiki_dumps)
from .gazetteers import copy_gazetteers
from .paths import data_root
from .queries import user_queries

__all__ = ["DIR_PREFIX", "DIR_SPEC", "DOCS", "ENTRY_KEYS", "FORMAT_ALIASES", "FORMATS", "LANGS", "LAYOUT_KEYS",
           "RESOURCE", "SPLITS", "USER_REGISTRY", "check_layout", "copy_gazetteers", "data_root", "is_dir_target",
           "is_user_dataset", "load_user_split", "load_user_splits", "registry", "safe_name", "target_arg",
           "user_dataset_lang", "user_dataset_names", "user_dataset_spec", "user_dataset_types",
           "user_gazetteer_dir", "user_queries", "wiki_dumps"]
