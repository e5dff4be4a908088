"""The settings schema: each setting defined once, presets checked against it, flags and cache keys from it."""
from __future__ import annotations

import argparse
import copy
import dataclasses

import pytest

from cofee_lib import presets
from cofee_lib.errors import CofeeError
from cofee_lib.settings import (DEFAULT_THRESHOLD, FINGERPRINT_FIELDS, StageSettings, TrainConfig, add_flags,
                                flag_values, result_fields, setting)


@pytest.mark.parametrize("schema", [TrainConfig, StageSettings])
def test_every_field_has_help_and_provenance(schema):
    for row in schema.describe():
        assert row["help"] and row["provenance"], row["name"]


def test_schema_defaults_are_the_default_preset():
    """The default preset lists no value of its own: what it runs is the schema's defaults."""
    stored = presets.get_preset("default")
    assert {k for k in stored["train"] if not k.startswith("_")} == set()
    assert presets.train_config("default") == TrainConfig()
    assert presets.stage_settings("default") == StageSettings()
    assert TrainConfig().threshold == DEFAULT_THRESHOLD == 0.5


def test_presets_list_only_their_differences():
    for name in presets.preset_names():
        stored = presets.get_preset(name)
        for key, value in stored["pretrain"].items():
            if key in StageSettings.names():
                assert value != getattr(StageSettings(), key), f"{name}.pretrain.{key} repeats the schema default"
        for key, value in stored["train"].items():
            if key in TrainConfig.names():
                assert value != getattr(TrainConfig(), key), f"{name}.train.{key} repeats the schema default"


@pytest.mark.parametrize("section, key", [("pretrain", "detla"), ("train", "learning_rate"), ("pretrain", "K")])
def test_a_mistyped_preset_key_is_an_error_naming_it_and_the_preset(section, key):
    bad = copy.deepcopy(presets.get_preset("smoke"))
    bad[section][key] = 0.2
    with pytest.raises(CofeeError, match=rf"preset 'smoke'.*{key}"):
        presets._check("smoke", bad)


def test_a_mistyped_stage_name_and_a_wrong_type_are_errors():
    bad = copy.deepcopy(presets.get_preset("smoke"))
    bad["stages"] = {"nees": {"lr": 1e-3}}
    with pytest.raises(CofeeError, match="unknown stage 'nees'"):
        presets._check("smoke", bad)
    with pytest.raises(CofeeError, match="delta: expected float"):
        StageSettings.from_dict({"delta": "0.1"}, where="test")
    with pytest.raises(CofeeError, match="relabel must be one of replace, union"):
        StageSettings.from_dict({"relabel": "merge"}, where="test")
    with pytest.raises(CofeeError, match="delta must be in"):
        StageSettings.from_dict({"delta": 1.5}, where="test")


def test_overrides_keep_the_preset_where_none():
    s = presets.stage_settings("smoke", delta=0.3, k=None)
    assert s.delta == 0.3 and s.k == presets.get_preset("smoke")["pretrain"]["k"]
    assert presets.train_config("paper", "nee", lr=None).lr == 3e-5


def test_flags_are_generated_from_the_schema_and_reach_the_settings():
    from cofee_lib.commands import pretrain as cmd

    parser = argparse.ArgumentParser()
    cmd.add_stage_flags(parser)
    flags = {a.dest for a in parser._actions}
    assert set(StageSettings.names()) <= flags, "every stage setting has a flag"
    args = parser.parse_args(["--delta", "0.3", "--relabel", "union", "--pick-when-dev-zero", "--k", "4",
                              "--dumps", "a.xml.bz2", "b.xml.bz2", "--threads", "1", "--no-bf16"])
    over = cmd.stage_overrides(args)
    assert over == {"delta": 0.3, "relabel": "union", "pick_when_dev_zero": True, "k": 4,
                    "dumps": ["a.xml.bz2", "b.xml.bz2"]}
    assert cmd.train_overrides(args) == {"num_threads": 1, "precision": "fp32"}
    settings = presets.stage_settings("default", **over)
    assert (settings.delta, settings.relabel, settings.k) == (0.3, "union", 4)
    with pytest.raises(SystemExit):
        parser.parse_args(["--relabel", "merge"])


def test_cache_keys_come_from_the_fields_that_change_results():
    s = StageSettings()
    assert s.stage_key("nee") == {"delta": 0.1, "relabel": "replace", "pick_when_dev_zero": False}
    assert set(s.stage_key("fet")) == {"gamma", "k", "variance", "head_follow", "kmeans_restarts"}
    assert "num_threads" not in FINGERPRINT_FIELDS and "checkpoint_every" not in FINGERPRINT_FIELDS
    assert {"lr", "seed", "precision", "threshold"} <= set(FINGERPRINT_FIELDS)


def test_adding_a_setting_is_one_field():
    """A new field appears in preset checking, flags and its stage's cache key with no other edit."""
    @dataclasses.dataclass
    class Extended(StageSettings):
        tau: float = setting(0.7, "a made-up NEE setting", "kit: test", stage="nee")

    assert Extended.from_dict({"tau": 0.2}, where="p").tau == 0.2
    with pytest.raises(CofeeError, match="taux"):
        Extended.from_dict({"taux": 0.2}, where="p")
    parser = argparse.ArgumentParser()
    add_flags(parser, Extended)
    assert flag_values(parser.parse_args(["--tau", "0.4"]), Extended) == {"tau": 0.4}
    assert Extended().stage_key("nee")["tau"] == 0.7
    assert "tau" in result_fields(Extended)
