"""The numbers the paper reports, kept as data in ``resources/paper_numbers.json``.

Sec. 5.2 (corpus and gazetteer sizes), Table 2 (supervised) and Table 3
(weakly supervised) as printed, P/R/F1 in percent. Tables are
``{dataset: {model: {"P", "R", "F1"}}}`` with datasets ``ontonotes4``,
``ecommerce`` and ``twitter``; ``datasets[name]["kit_stand_in"]`` names the
kit's dataset that stands in for it (WNUT-16 for Twitter, MSRA for OntoNotes).
"""
from __future__ import annotations

import copy
import functools
import json
from importlib import resources

from .errors import CofeeError


@functools.lru_cache(maxsize=1)
def _numbers() -> dict:
    text = resources.files("cofee_lib").joinpath("resources/paper_numbers.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=1)
def _related() -> dict:
    text = resources.files("cofee_lib").joinpath("resources/related_numbers.json").read_text(encoding="utf-8")
    return json.loads(text)


def related_numbers() -> dict:
    """A deep copy of ``related_numbers.json``: other work's published figures (BOND) and the in-domain goal."""
    return copy.deepcopy(_related())


def paper_numbers() -> dict:
    """A deep copy of everything in ``paper_numbers.json``."""
    return copy.deepcopy(_numbers())


def paper_table(table: str, dataset: str | None = None):
    """Table 2 or 3 as a pandas DataFrame (rows: models; columns P, R, F1), for one dataset or all."""
    import pandas as pd

    numbers = _numbers()
    key = {"2": "table2", "3": "table3"}.get(str(table), str(table))
    if key not in ("table2", "table3"):
        raise CofeeError(f"the paper's tables here are 2 and 3, not {table!r}")
    data = numbers[key]
    names = [dataset] if dataset else list(data)
    for name in names:
        if name not in data:
            raise CofeeError(f"Table {key[-1]} has no dataset {name!r}; expected one of {', '.join(data)}")
    rows = [{"dataset": name, "model": model, **values} for name in names for model, values in data[name].items()]
    frame = pd.DataFrame(rows)
    return frame.drop(columns="dataset").set_index("model") if dataset else frame.set_index(["dataset", "model"])
