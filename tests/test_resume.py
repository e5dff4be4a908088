"""Checkpoints and --resume: a run killed with SIGKILL and resumed ends exactly like an uninterrupted one.

The runs go through the real command line (``tests/standin_cli.py train`` is
``cofee train`` with the test stand-in backbone installed) in subprocesses.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import standin_backbone as sb  # noqa: E402

from cofee_lib import engine  # noqa: E402
from cofee_lib.engine import TrainConfig  # noqa: E402
from cofee_lib.records import write_jsonl  # noqa: E402

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, str(HERE / "standin_cli.py")]
ENV = dict(os.environ, PYTHONPATH=str(HERE.parent), OMP_NUM_THREADS="1")


def argv(data, out, *extra):
    return ["train", "--backbone", "tagger", "--model", "standin:48:0.1", "--train", str(data / "train.jsonl"),
            "--dev", str(data / "dev.jsonl"), "--out", str(out), "--preset", "smoke", "--epochs", "4",
            "--lr", "0.01", "--batch-size", "8", "--threads", "1", "--checkpoint-every", "7", "--no-progress",
            "--seed", "5", *extra]


def run_cli(args, check=True):
    """``cofee train`` in a subprocess (what a user's shell does)."""
    proc = subprocess.run(CLI + args, env=ENV, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture
def cofee(monkeypatch, capsys):
    """``cofee train`` in this process (no interpreter start-up): returns (status, stderr)."""
    import cofee_lib.backbones
    from cofee_lib.cli import main

    monkeypatch.setattr(cofee_lib.backbones, "build_backbone", sb.build_standin)

    def call(args):
        capsys.readouterr()
        status = main(args)
        return status, capsys.readouterr().err

    return call


def outcome(out: Path):
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    keep = [(e["epoch"], e["train_loss"], e["dev"], e["is_best"], e["global_step"]) for e in log]
    report = json.loads((out / "train_report.json").read_text())
    return keep, report["best_dev_f1"], report["best_epoch"], sb.load_standin(out / "best").state_dict()


def kill_after_checkpoint(args, out: Path, min_step: int, delay: float) -> int:
    """Start a run, SIGKILL it ``delay`` s after a checkpoint at step >= ``min_step`` appears;
    return the step of the newest checkpoint left on disk."""
    proc = subprocess.Popen(CLI + args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            state = out / "checkpoint" / "state.json"
            if (out / "checkpoint" / "complete").exists():
                try:
                    step = json.loads(state.read_text())["global_step"]
                except (OSError, ValueError):  # being swapped right now
                    step = -1
                if step >= min_step:
                    break
            assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
            time.sleep(0.002)
        time.sleep(delay)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    ckpt = engine.find_checkpoint(out)
    return json.loads((ckpt / "state.json").read_text())["global_step"]


def test_sigkill_then_resume_equals_uninterrupted_run(data, tmp_path, cofee):
    straight = tmp_path / "straight"
    assert cofee(argv(data, straight))[0] == 0
    expected = outcome(straight)

    out = tmp_path / "killed"
    # first kill: a few milliseconds after the first checkpoint (mid-epoch 1)
    step1 = kill_after_checkpoint(argv(data, out), out, min_step=7, delay=0.003)
    # second kill, on the resumed run, later in the run (past the first epoch boundary)
    step2 = kill_after_checkpoint(argv(data, out, "--resume"), out, min_step=step1 + 80, delay=0.01)
    assert step2 > step1
    status, err = cofee(argv(data, out, "--resume"))
    assert status == 0 and "resuming from" in err
    got = outcome(out)
    assert got[0] == expected[0]  # per-epoch loss, dev metrics, selection and steps: identical
    assert got[1:3] == expected[1:3]
    for k, v in expected[3].items():
        torch.testing.assert_close(got[3][k], v, rtol=0, atol=1e-6)
    report = json.loads((out / "train_report.json").read_text())
    assert report["resumed_from_step"] == step2
    assert not (out / "checkpoint").exists() and not list(out.glob(".checkpoint*"))


@pytest.fixture(scope="module")
def kept(data, tmp_path_factory):
    """A finished one-epoch run that kept its checkpoint (each test copies it)."""
    import cofee_lib.backbones
    from cofee_lib.cli import main

    out = tmp_path_factory.mktemp("kept") / "run"
    real = cofee_lib.backbones.build_backbone
    cofee_lib.backbones.build_backbone = sb.build_standin
    try:
        assert main(argv(data, out, "--epochs", "1", "--keep-checkpoint")) == 0
    finally:
        cofee_lib.backbones.build_backbone = real
    assert (out / "checkpoint" / "complete").is_file()
    return out


def copy_of(kept, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(kept, out)
    return out


def test_corrupt_checkpoint_is_a_clear_error(data, kept, tmp_path, cofee):
    out = copy_of(kept, tmp_path)
    model_pt = out / "checkpoint" / "model.safetensors"
    with open(model_pt, "r+b") as handle:
        handle.truncate(model_pt.stat().st_size // 2)
    status, err = cofee(argv(data, out, "--epochs", "1", "--resume"))
    assert status == 2 and "corrupt" in err and "model.safetensors" in err and "Traceback" not in err
    (out / "checkpoint" / "complete").unlink()
    status, err = cofee(argv(data, out, "--epochs", "1", "--resume"))
    assert status == 2 and "incomplete" in err


def test_corrupt_checkpoint_exits_2_from_the_shell(data, kept, tmp_path):
    out = copy_of(kept, tmp_path)
    (out / "checkpoint" / "optimizer.safetensors").write_bytes(b"garbage")
    proc = run_cli(argv(data, out, "--epochs", "1", "--resume"), check=False)
    assert proc.returncode == 2 and "optimizer.safetensors" in proc.stderr and "Traceback" not in proc.stderr


def test_mismatched_checkpoint_is_a_clear_error(data, kept, tmp_path, cofee):
    out = copy_of(kept, tmp_path)
    status, err = cofee(argv(data, out, "--epochs", "1", "--resume", "--lr", "0.02"))
    assert status == 2 and "different run" in err and "lr: 0.01 -> 0.02" in err
    other = tmp_path / "other.jsonl"
    write_jsonl(other, sb.toy_records(600, seed=99))
    args = argv(data, out, "--epochs", "1", "--resume")
    args[args.index("--train") + 1] = str(other)
    status, err = cofee(args)
    assert status == 2 and "train records differ" in err
    status, err = cofee(argv(data, out, "--epochs", "1", "--resume", "--model", "standin:64:0.1"))
    assert status == 2 and "initial model weights differ" in err
    # a resume with what it was made with is accepted (the kept final checkpoint: nothing left to train)
    assert cofee(argv(data, out, "--epochs", "1", "--resume"))[0] == 0


def test_resume_without_checkpoint_and_unfinished_run_guard(data, kept, tmp_path, cofee):
    status, err = cofee(argv(data, tmp_path / "nothing", "--resume"))
    assert status == 2 and "no checkpoint" in err
    out = copy_of(kept, tmp_path)
    status, err = cofee(argv(data, out, "--epochs", "1"))
    assert status == 2 and "unfinished run" in err
    assert cofee(argv(data, out, "--epochs", "1", "--overwrite"))[0] == 0
    assert not (out / "checkpoint").exists()


def test_kill_between_the_two_renames_of_a_swap_is_recovered(data, kept, tmp_path, cofee):
    out = copy_of(kept, tmp_path)
    os.replace(out / "checkpoint", out / ".checkpoint.old")  # as if killed right after the first rename
    assert engine.find_checkpoint(out) == out / ".checkpoint.old"
    assert cofee(argv(data, out, "--epochs", "1", "--resume"))[0] == 0
    assert not list(out.glob("*checkpoint*"))


def test_in_process_resume_restores_hook_state_and_records(tmp_path):
    """A hook that replaces the records: the checkpoint carries them and the hook state."""
    from test_engine import TRAIN, DEV, ClusterHook, fresh

    def hook(cls=ClusterHook):
        torch.manual_seed(123)
        return cls(32)

    config = TrainConfig(epochs=3, lr=1e-2, batch_size=8, num_threads=1, progress=False, seed=3,
                         checkpoint_every=5, precision="fp32")
    straight_hook = hook()
    straight = engine.train(fresh(), TRAIN, DEV, config, tmp_path / "a", hooks=straight_hook)

    class Stop(Exception):
        pass

    class StoppingHook(ClusterHook):
        def on_epoch_end(self, epoch, model, dev_metrics, is_best):
            out = super().on_epoch_end(epoch, model, dev_metrics, is_best)
            if epoch == 2:
                raise Stop  # dies after epoch 2's evaluation, before its end-of-epoch checkpoint
            return out

    with pytest.raises(Stop):
        engine.train(fresh(), TRAIN, DEV, config, tmp_path / "b", hooks=hook(StoppingHook))
    saved = engine.load_checkpoint(engine.find_checkpoint(tmp_path / "b"), engine.fingerprint_parts(
        fresh(), TRAIN, DEV, config, 1, engine.weights_digest(fresh())))
    assert saved["records"] is not None and len(saved["records"]) == 50  # the hook's epoch-1 records
    assert saved["epoch"] == 1 and saved["position"] > 0  # a mid-epoch-2 checkpoint
    resumed_hook = ClusterHook(32)  # fresh head: the checkpoint's hook state replaces it
    resumed = engine.train(fresh(), TRAIN, DEV, config, tmp_path / "b", hooks=resumed_hook, resume=True)
    assert metrics_equal(resumed.history, straight.history)
    assert resumed_hook.calls == straight_hook.calls
    torch.testing.assert_close(resumed_hook.head.weight, straight_hook.head.weight, rtol=0, atol=1e-6)


def metrics_equal(a, b) -> bool:
    keep = lambda h: [(e["epoch"], e["train_loss"], e["dev"], e["is_best"], e["train_features"]) for e in h]  # noqa: E731
    return keep(a) == keep(b)
