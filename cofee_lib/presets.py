"""The kit's three scales as data: ``resources/presets.json``, checked against the settings schema.

* ``smoke``: the tiny random encoder, for tests and nbval (seconds).
* ``default``: the embedded MiniLM encoder on the embedded real data (the shipped CPU run).
* ``paper``: the paper's settings (bert-base, max length 250+, Sec. 5.4) for a GPU.

A preset holds ``model`` and ``max_len`` (for ``build_backbone``), ``train`` (the values of
:class:`cofee_lib.settings.TrainConfig` where the preset differs from the schema's
defaults), ``stages`` (per-stage overrides of ``train``: ``esi``, ``nee``, ``fet``,
``finetune``), ``pretrain`` (values of :class:`cofee_lib.settings.StageSettings`), and the
``corpus`` and ``experiments`` sections of the notebooks. Every key of ``train``, ``stages``
and ``pretrain`` is checked against the schema when the presets are loaded: a mistyped key is
an error naming the key and the preset.
"""
from __future__ import annotations

import copy
import functools
import json
from importlib import resources

from .errors import CofeeError
from .settings import StageSettings, TrainConfig

PRESET_NAMES = ("smoke", "default", "paper")
STAGE_NAMES = ("esi", "nee", "fet", "domain", "finetune")  # the stages a preset's ``stages`` section may tune


def _check(name: str, preset: dict) -> None:
    where = f"preset {name!r}"
    for key in ("model", "max_len", "train", "pretrain"):
        if key not in preset:
            raise CofeeError(f"{where}: missing {key!r}")
    TrainConfig.from_dict(preset["train"], where=f"{where}, train")
    for stage, values in preset.get("stages", {}).items():
        if stage not in STAGE_NAMES:
            raise CofeeError(f"{where}, stages: unknown stage {stage!r} (known: {', '.join(STAGE_NAMES)})")
        TrainConfig.from_dict({**preset["train"], **values}, where=f"{where}, stages.{stage}")
    StageSettings.from_dict(preset["pretrain"], where=f"{where}, pretrain")


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    text = resources.files("cofee_lib").joinpath("resources/presets.json").read_text(encoding="utf-8")
    table = {k: v for k, v in json.loads(text).items() if not k.startswith("_")}
    for name, preset in table.items():
        _check(name, preset)
    return table


def preset_names() -> list[str]:
    """The preset names, smallest first."""
    return [n for n in PRESET_NAMES if n in _table()] + sorted(set(_table()) - set(PRESET_NAMES))


def get_preset(name: str) -> dict:
    """A deep copy of one preset as stored (``model``, ``max_len``, ``train``, ``stages``, ...).

    ``train`` and ``pretrain`` hold only what the preset changes: read settings with
    :func:`train_config` and :func:`stage_settings`, which add the schema's defaults.
    """
    table = _table()
    if name not in table:
        raise CofeeError(f"unknown preset {name!r}; expected one of {', '.join(preset_names())}")
    return copy.deepcopy(table[name])


def train_config(name: str, stage: str | None = None, **overrides) -> TrainConfig:
    """The :class:`~cofee_lib.settings.TrainConfig` of a preset (and stage), with ``overrides``
    (``None`` values are ignored, so unset command-line flags keep the preset's value)."""
    preset = get_preset(name)
    values = dict(preset["train"])
    if stage is not None:  # a stage without overrides uses the preset's train values
        values.update(preset.get("stages", {}).get(stage, {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values, where=f"preset {name!r}")


def train_settings(name: str, stage: str | None = None) -> dict:
    """:func:`train_config` as a plain dict."""
    return train_config(name, stage).to_dict()


def stage_settings(name: str, **overrides) -> StageSettings:
    """The :class:`~cofee_lib.settings.StageSettings` of a preset, with non-None ``overrides``."""
    values = {**get_preset(name)["pretrain"], **{k: v for k, v in overrides.items() if v is not None}}
    return StageSettings.from_dict(values, where=f"preset {name!r}")
