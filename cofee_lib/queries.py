"""Natural-language queries of MRC-NER (paper Table 1), kept as data.

The queries live in ``resources/queries.json``, one block per dataset name.
:func:`get_queries` returns ``{type: query}`` for a dataset; :func:`queries_for_types`
picks queries for a list of types (used when a backbone is built without
explicit queries); :func:`user_queries` gives a user dataset's (its query set,
its own queries, ``Find <type> entities`` for the rest).
"""
from __future__ import annotations

import functools
import json
from importlib import resources

from .errors import CofeeError, InputError

ALIASES = {"ontonotes": "ontonotes4", "ontonotes-4": "ontonotes4", "e-commerce": "ecommerce",
           "conll03": "conll2003", "conll-2003": "conll2003", "wnut": "wnut16", "wnut-16": "wnut16",
           "general": "esi"}


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    text = resources.files("cofee_lib").joinpath("resources/queries.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def dataset_names() -> list[str]:
    """Names accepted by :func:`get_queries`."""
    return sorted(_table())


def get_queries(name: str) -> dict[str, str]:
    """``{type: query}`` for a dataset (``twitter``, ``conll2003``, ``wnut16``, ``msra``,
    ``ontonotes4``, ``ecommerce``, ``esi``)."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    table = _table()
    if key not in table:
        from .datasets import is_user_dataset

        if is_user_dataset(str(name)):  # the user's own dataset (or dir:<folder>): its query set or own queries
            return user_queries(str(name))
        raise CofeeError(f"no queries for {name!r}; known: {', '.join(sorted(table))}")
    return dict(table[key]["queries"])


def user_queries(name: str) -> dict[str, str]:
    """``{type: query}`` for a user dataset: its query set (or own queries), ``Find <type> entities`` for the rest."""
    from .datasets.user import user_dataset_spec, user_dataset_types

    spec = user_dataset_spec(name)
    types = user_dataset_types(name)
    given = spec["queries"]
    if isinstance(given, str):
        if given not in dataset_names():
            raise InputError(spec["source"], None, f"{name}: queries names {given!r}, which resources/queries.json "
                             f"does not hold (it has {', '.join(dataset_names())}); or give {{type: query}}")
        table = get_queries(given)
    else:
        table = dict(given or {})
    return {t: table.get(t) or f"Find {t} entities" for t in types}


def queries_for_types(types, dataset: str | None = None) -> dict[str, str]:
    """Queries for ``types``: from ``dataset`` if given, else the first dataset
    (English before Chinese: conll2003, esi, ecommerce, ontonotes4) that defines
    each type. Raises :class:`CofeeError` for a type no dataset knows: pass
    explicit queries for it."""
    if dataset is not None:
        table = get_queries(dataset)
        missing = [t for t in types if t not in table]
        if missing:
            raise CofeeError(f"dataset {dataset!r} has no query for type(s) {missing}; it has {sorted(table)}")
        return {t: table[t] for t in types}
    order = ["conll2003", "esi", "ecommerce", "ontonotes4"]
    out = {}
    for t in types:
        for name in order:
            q = get_queries(name)
            if t in q:
                out[t] = q[t]
                break
        else:
            raise CofeeError(f"no default query for entity type {t!r}; pass queries={{type: query}} "
                             f"(known types: {sorted({k for n in order for k in get_queries(n)})})")
    return out
