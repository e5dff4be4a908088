"""What the tests share: the ``cofee`` command in a subprocess, a tiny MRC model, stand-in data, markers.

Fixtures (ask for them by name in a test's arguments):

* ``cofee_cli(*args, cwd=..., env=..., timeout=...)``: ``python -m cofee_lib ARGS`` in a
  subprocess, as a user's shell runs it; returns the :class:`subprocess.CompletedProcess`
  (``returncode``, ``stdout``, ``stderr`` as text). ``cwd`` defaults to the repository.
* ``tiny_mrc``: ``(model, records)``, an MRC-NER model on the tiny random encoder with six
  hand-made sentences (one LOC, PER and ORG each); one per test module.
* ``data``: a folder with ``train.jsonl`` (331 records: an odd number, so two data-parallel
  processes get uneven shards) and ``dev.jsonl`` (61) of the stand-in backbone's seeded toy
  sentences (:func:`standin_backbone.toy_records`); written once per session, read only.

Markers (registered, one line each, in ``pyproject.toml``; ``--strict-markers`` refuses others):

* ``slow``, ``network``, ``notebooks``: set in the test files.
* ``bf16``: set in the test files; skipped here, with the reason, on hardware without native bf16.
* ``ddp`` and ``kill``: set here, by test location (:data:`LOCATION_MARKERS`), for the
  multi-process tests; a location that no longer names a test fails the collection.

The nbval settings (``pytest --nbval-lax notebooks/``) are in the repository's root ``conftest.py``.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

if str(TESTS) not in sys.path:  # standin_backbone, standin_cli
    sys.path.insert(0, str(TESTS))

# test location (a file, or file::test) -> marker. These tests start several processes each and
# their cost is process start-up and waiting (torchrun, gloo, a SIGKILL at a timed moment), not data.
LOCATION_MARKERS = {
    "tests/test_ddp.py": "ddp",
    "tests/test_ddp.py::test_ddp_with_accumulation_killed_and_resumed_matches_one_process": "kill",
    "tests/test_resume.py::test_sigkill_then_resume_equals_uninterrupted_run": "kill",
}


# --------------------------------------------------------------------------- markers

def _location_markers(items) -> None:
    for item in items:
        path = item.path.relative_to(REPO).as_posix() if item.path.is_relative_to(REPO) else None
        if path is None:
            continue
        name = item.name.split("[", 1)[0]
        for where, marker in LOCATION_MARKERS.items():
            if where == path or where == f"{path}::{name}":
                item.add_marker(getattr(pytest.mark, marker))
    # a renamed test must not silently lose its marker: a file::test entry must name a test of its module
    modules = {item.path.relative_to(REPO).as_posix(): getattr(item, "module", None)
               for item in items if item.path.is_relative_to(REPO)}
    stale = [w for w in LOCATION_MARKERS if not (REPO / w.split("::")[0]).is_file()
             or ("::" in w and w.split("::")[0] in modules and not hasattr(modules[w.split("::")[0]], w.split("::")[1]))]
    if stale:
        raise pytest.UsageError(f"tests/conftest.py LOCATION_MARKERS names no test: {', '.join(stale)}")


def _skip_bf16_without_hardware(items) -> None:
    marked = [item for item in items if item.get_closest_marker("bf16")]
    if not marked:
        return
    from cofee_lib.hardware import choose_precision

    choice = choose_precision("auto")
    if choice.precision != "bf16":
        skip = pytest.mark.skip(reason=f"no native bf16 on this machine ({choice.hardware}): {choice.reason}")
        for item in marked:
            item.add_marker(skip)


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the markers set here must be selectable
def pytest_collection_modifyitems(config, items):
    _location_markers(items)
    _skip_bf16_without_hardware(items)


# --------------------------------------------------------------------------- fixtures

def run_cofee(*args, cwd=None, env=None, timeout: float = 1200, input: str | None = None):
    """``python -m cofee_lib ARGS`` in a subprocess; the CompletedProcess, output as text."""
    return subprocess.run([sys.executable, "-m", "cofee_lib", *map(str, args)], capture_output=True, text=True,
                          cwd=str(cwd or REPO), env=env, timeout=timeout, input=input)


@pytest.fixture(scope="session")
def cofee_cli():
    """The ``cofee`` command in a subprocess: ``cofee_cli("convert", a, b, cwd=tmp_path).returncode``."""
    return run_cofee


TINY_MRC_RECORDS = [
    {"id": str(i), "tokens": f"In {c} the mayor {p} met {o} staff".split(),
     "spans": [[1, 1, "LOC"], [4, 4, "PER"], [6, 6, "ORG"]]}
    for i, (c, p, o) in enumerate([("Paris", "Anne", "Acme"), ("Rome", "Bob", "Initech"), ("Oslo", "Carl", "Globex"),
                                   ("Lima", "Dana", "Umbrella"), ("Kyiv", "Eve", "Hooli"), ("Nice", "Finn", "Vandelay")])
]


@pytest.fixture(scope="module")
def tiny_mrc():
    """``(model, records)``: MRC-NER (PER, LOC, ORG) on the tiny random encoder, seed 0, max_len 96."""
    import copy

    import torch

    from cofee_lib.backbones import build_backbone

    torch.manual_seed(0)
    recs = copy.deepcopy(TINY_MRC_RECORDS)
    model = build_backbone("mrc", ["PER", "LOC", "ORG"], model="tiny", max_len=96, records=recs, seed=0)
    return model, recs


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """A folder with the stand-in's ``train.jsonl`` (331 toy records, seed 21) and ``dev.jsonl`` (61, seed 22)."""
    import standin_backbone as sb

    from cofee_lib.records import write_jsonl

    d = tmp_path_factory.mktemp("data")
    write_jsonl(d / "train.jsonl", sb.toy_records(331, seed=21, prefix="train"))  # odd: uneven shards under DDP
    write_jsonl(d / "dev.jsonl", sb.toy_records(61, seed=22, prefix="dev"))
    return d
