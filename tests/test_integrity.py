"""Damaged weights and runaway training are refused, never saved or loaded silently.

* a run whose loss becomes NaN/inf stops with a CofeeError naming the step, and
  leaves no ``best/``;
* every saved model folder carries ``cofee_manifest.json``; ``load_backbone``
  (and ``--model DIR``) refuse a file that was truncated or overwritten;
* resume checkpoints hold no pickle: safetensors + JSON, restored bit for bit
  (:mod:`cofee_lib.tensorfile`);
* the precision and thread choice of :mod:`cofee_lib.hardware`.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import standin_backbone as sb  # noqa: E402

from cofee_lib import hardware, tensorfile  # noqa: E402
from cofee_lib.backbones import build_backbone, load_backbone  # noqa: E402
from cofee_lib.engine import TrainConfig, train  # noqa: E402
from cofee_lib.errors import CofeeError  # noqa: E402
from cofee_lib.manifest import MANIFEST_NAME  # noqa: E402

TYPES = ["PER", "LOC", "ORG"]
TRAIN = sb.toy_records(60, seed=1, prefix="train")
DEV = sb.toy_records(20, seed=2, prefix="dev")


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=1, lr=1e-2, batch_size=8, num_threads=1, progress=False, seed=7, precision="fp32")
    return TrainConfig(**{**base, **kw})


# ------------------------------------------------------------------ NaN / inf

def test_nan_weights_stop_the_run_at_step_one_without_a_best_model(tmp_path):
    model = sb.StandInTagger(TYPES, dim=16)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(CofeeError, match=r"became nan at step 1 \(epoch 1\)"):
        train(model, TRAIN, DEV, cfg(), tmp_path / "run")
    assert not (tmp_path / "run" / "best").exists()


def test_a_loss_that_overflows_later_is_refused_and_best_removed(tmp_path):
    class Blowup(sb.StandInTagger):
        calls = 0

        def forward(self, batch, **kw):
            out = super().forward(batch, **kw)
            Blowup.calls += 1
            if Blowup.calls > 8:  # the second epoch
                out["loss"] = out["loss"] * float("inf")
            return out

    with pytest.raises(CofeeError, match="became inf at step .* \\(epoch 2\\)"):
        train(Blowup(TYPES, dim=16), TRAIN, DEV, cfg(epochs=2), tmp_path / "run")
    assert not (tmp_path / "run" / "best").exists()


# ------------------------------------------------------------------ manifests

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    recs = sb.toy_records(10, seed=3)
    model = build_backbone("mrc", TYPES, model="tiny", records=recs, tiny_tokenizer="records", max_len=32)
    out = tmp_path_factory.mktemp("saved") / "best"
    model.save_pretrained(out)
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_saved_models_carry_a_manifest_that_loads(saved):
    files = json.loads((saved / MANIFEST_NAME).read_text())["files"]
    assert {"cofee.json", "cofee_heads.safetensors", "model.safetensors", "config.json"} <= set(files)
    assert load_backbone(saved).types == TYPES


@pytest.mark.parametrize("name", ["model.safetensors", "cofee_heads.safetensors"])
def test_overwritten_bytes_are_refused_naming_the_file(saved, tmp_path, name):
    d = _copy(saved, tmp_path / "m")
    with open(d / name, "r+b") as handle:
        handle.seek((d / name).stat().st_size // 2)
        handle.write(b"\x00garbage\x00")
    with pytest.raises(CofeeError, match=f"{name}: sha256 differs"):
        load_backbone(d)
    with pytest.raises(CofeeError, match=f"{name}: sha256 differs"):  # --model DIR for training reads it too
        build_backbone("mrc", TYPES, model=str(d), max_len=32)


@pytest.mark.parametrize("name", ["model.safetensors", "cofee_heads.safetensors"])
def test_truncated_files_are_refused_with_or_without_manifest(saved, tmp_path, name):
    d = _copy(saved, tmp_path / "m")
    with open(d / name, "r+b") as handle:
        handle.truncate((d / name).stat().st_size // 3)
    with pytest.raises(CofeeError, match=f"{name}: .* bytes, the manifest says"):
        load_backbone(d)
    (d / MANIFEST_NAME).unlink()  # a folder from an older kit: the loader's own error, as a CofeeError
    with pytest.raises(CofeeError, match="cannot load"):
        load_backbone(d)


def test_a_folder_with_only_pytorch_model_bin_is_a_clear_error(tmp_path):
    d = tmp_path / "binonly"
    d.mkdir()
    torch.save({"w": torch.zeros(2)}, d / "pytorch_model.bin")
    with pytest.raises(CofeeError, match="no config.json"):
        build_backbone("mrc", TYPES, model=str(d), max_len=32)
    with pytest.raises(CofeeError, match="not a saved CoFEE model"):
        load_backbone(d)
    (d / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CofeeError, match="no tokenizer files"):
        build_backbone("mrc", TYPES, model=str(d), max_len=32)
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")
    with pytest.raises(CofeeError, match="lacks .* of the encoder's tensors"):  # never random weights in silence
        build_backbone("mrc", TYPES, model=str(d), max_len=32)


# ------------------------------------------------------------------ checkpoints without pickles

def test_tensor_tree_round_trips_bit_for_bit(tmp_path):
    random.seed(5)
    np.random.seed(5)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    npy = np.random.get_state()
    tree = {"opt": opt.state_dict(), "rng": {"torch": torch.get_rng_state(), "numpy": npy, "python": random.getstate()},
            "bf16": torch.randn(3, dtype=torch.bfloat16), "scalar": torch.tensor(2.5), "empty": {}, "none": None,
            "nested": [1, 2.000000000000001, "x", (3, [4.5, float("inf")])]}
    paths = tensorfile.save_tree(tmp_path / "t", tree)
    assert sorted(p.name for p in paths) == ["t.json", "t.safetensors"]
    back = tensorfile.load_tree(tmp_path / "t")
    assert back["opt"]["param_groups"][0]["betas"] == opt.state_dict()["param_groups"][0]["betas"]
    assert isinstance(back["opt"]["param_groups"][0]["betas"], tuple)
    assert set(back["opt"]["state"]) == set(opt.state_dict()["state"]) == {0, 1}  # int keys kept
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(back["opt"]["state"][0][k], v) and back["opt"]["state"][0][k].dtype == v.dtype
    assert torch.equal(back["rng"]["torch"], tree["rng"]["torch"])
    assert back["rng"]["numpy"][0] == npy[0] and np.array_equal(back["rng"]["numpy"][1], npy[1])
    random.setstate(back["rng"]["python"])  # a usable generator state
    assert back["bf16"].dtype == torch.bfloat16 and torch.equal(back["bf16"], tree["bf16"])
    assert back["scalar"].shape == () and back["empty"] == {} and back["none"] is None
    assert back["nested"] == [1, 2.000000000000001, "x", (3, [4.5, float("inf")])]
    new = torch.optim.AdamW(torch.nn.Linear(4, 3).parameters(), lr=1e-3)
    new.load_state_dict(back["opt"])  # what the engine does on resume


def test_tensor_tree_refuses_what_it_cannot_store_without_pickle(tmp_path):
    with pytest.raises(TypeError, match="cannot store a object"):
        tensorfile.save_tree(tmp_path / "t", {"x": object()})
    with pytest.raises(TypeError, match="neither str nor int"):
        tensorfile.save_tree(tmp_path / "t", {(1, 2): 3})


def test_checkpoints_hold_no_pickles(tmp_path):
    result = train(sb.StandInTagger(TYPES, dim=16), TRAIN, DEV, cfg(epochs=2, keep_checkpoint=True), tmp_path / "run")
    ckpt = Path(result.out_dir) / "checkpoint"
    names = sorted(p.name for p in ckpt.iterdir())
    assert not [n for n in names if n.endswith((".pt", ".pkl", ".bin"))], names
    assert {"model.safetensors", "model.json", "optimizer.safetensors", "optimizer.json",
            "extra.safetensors", "extra.json", "state.json", "complete"} <= set(names)


# ------------------------------------------------------------------ hardware choice

def test_precision_choice_follows_the_cpu_flags(monkeypatch):
    def fake(flags, model="Test CPU"):
        hardware._choose.cache_clear()
        monkeypatch.setattr(hardware, "cpu_info", lambda: {"model": model, "flags": flags})

    try:
        fake({"sse2", "avx2", "fma"})
        c = hardware.choose_precision("auto")
        assert c.precision == "fp32" and "no native bf16" in c.reason and "Test CPU" in c.hardware
        assert "no avx512_bf16/amx_bf16" in c.hardware
        assert hardware.choose_precision("bf16").precision == "bf16", "forcing still works"
        fake({"sse2", "avx2", "avx512f", "avx512_bf16"})
        assert hardware.choose_precision("auto").precision == "bf16"
        hardware._choose.cache_clear()
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
        assert hardware.choose_precision("auto").precision == "fp32", "oneDNN capped below bf16"
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
        hardware._choose.cache_clear()
        fake({"sse2", "amx_bf16", "amx_tile"})
        assert hardware.choose_precision("auto").precision == "bf16"
        hardware._choose.cache_clear()
        fake(None, model="arm64")
        monkeypatch.setattr(hardware, "probe_bf16_speedup", lambda: 0.4)
        c = hardware.choose_precision("auto")
        assert c.precision == "fp32" and "probe" in c.reason
        hardware._choose.cache_clear()
        monkeypatch.setattr(hardware, "probe_bf16_speedup", lambda: 1.6)
        assert hardware.choose_precision("auto").precision == "bf16"
    finally:
        monkeypatch.undo()
        hardware._choose.cache_clear()
    with pytest.raises(CofeeError, match="not a precision"):
        hardware.choose_precision("fp16")


def test_thread_default_is_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: {0})
    assert hardware.default_threads() == 1
    before = torch.get_num_threads()
    try:
        assert hardware.set_threads(None) == 1 and torch.get_num_threads() == 1
        assert hardware.set_threads(2) == 2
    finally:
        torch.set_num_threads(before)


def test_notebook_results_record_the_precision(tmp_path):
    from cofee_lib.notebook import NotebookRun

    run = NotebookRun("smoke", tmp_path, tmp_path, tmp_path)
    saved = json.loads(run.save_json("x", {"a": 1}).read_text())
    assert saved["precision"]["requested"] == "fp32" and saved["precision"]["precision"] == "fp32"
    assert saved["precision"]["hardware"]
