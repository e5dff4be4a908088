"""Training settings at the kit's three scales, kept as data in ``resources/presets.json``.

* ``smoke``: the tiny random encoder, for tests and nbval (seconds).
* ``default``: the embedded MiniLM encoder on the embedded real data (the shipped CPU run).
* ``paper``: the paper's settings (bert-base, max length 250+, Sec. 5.4) for a GPU.

Each preset has ``model`` and ``max_len`` (for ``build_backbone``), ``train``
(fields of :class:`cofee_lib.engine.TrainConfig`) and ``stages`` (per-stage
overrides of ``train``: ``esi``, ``nee``, ``fet``, ``finetune``).
"""
from __future__ import annotations

import copy
import functools
import json
from importlib import resources

from .errors import CofeeError

PRESET_NAMES = ("smoke", "default", "paper")


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    text = resources.files("cofee_lib").joinpath("resources/presets.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def preset_names() -> list[str]:
    """The preset names, smallest first."""
    return [n for n in PRESET_NAMES if n in _table()] + sorted(set(_table()) - set(PRESET_NAMES))


def get_preset(name: str) -> dict:
    """A deep copy of one preset (``model``, ``max_len``, ``train``, ``stages``, ...)."""
    table = _table()
    if name not in table:
        raise CofeeError(f"unknown preset {name!r}; expected one of {', '.join(preset_names())}")
    return copy.deepcopy(table[name])


def train_settings(name: str, stage: str | None = None) -> dict:
    """The preset's ``train`` values with the stage's overrides applied (a plain dict)."""
    preset = get_preset(name)
    values = dict(preset["train"])
    if stage is not None:  # a stage without overrides uses the preset's train values
        values.update(preset.get("stages", {}).get(stage, {}))
    return values


def train_config(name: str, stage: str | None = None, **overrides):
    """A :class:`~cofee_lib.engine.TrainConfig` from a preset (and stage), with ``overrides``
    (``None`` values are ignored, so unset command-line flags keep the preset's value)."""
    from .engine import TrainConfig

    values = train_settings(name, stage)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values, where=f"preset {name!r}").validate()
