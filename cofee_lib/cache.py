"""A small content-keyed cache for intermediate files (corpora, gazetteers, D_s).

A cached output sits beside a stamp ``<output>.cofee-key.json`` holding the
key it was built with: a digest of the parameters *and* of the contents of
the inputs (files are hashed, never trusted by name; the authors' feature
cache ignored the tokenizer, this one cannot). When the stamp's key equals the
requested key the output is reused; otherwise it is rebuilt atomically and
the stamp rewritten.

It also holds the kit's one way of writing a folder atomically,
:func:`atomic_dir` (built under a temporary name beside the target, then
swapped in by :func:`replace_dir`), used for cached folders, saved models and
training checkpoints.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from . import __version__
from .errors import atomic_open


def file_digest(path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def dir_digest(path) -> str:
    """sha256 over a folder's files (relative names and contents), in sorted order."""
    h = hashlib.sha256()
    root = Path(path)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        h.update(file_digest(f).encode())
    return h.hexdigest()


def key_digest(key) -> str:
    """A stable digest of a JSON-able key (plus the kit version)."""
    text = json.dumps({"key": key, "kit": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".cofee-key.json")


def lookup(path, key) -> dict | None:
    """The info recorded with a cached output whose key matches, else None."""
    path = Path(path)
    stamp = _stamp(path)
    if not (path.exists() and stamp.is_file()):
        return None
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data.get("info") if data.get("digest") == key_digest(key) else None


def write_stamp(path, key, info) -> None:
    """Record that ``path`` was built with ``key`` (what :func:`lookup` checks), with ``info``."""
    path = Path(path)
    with atomic_open(_stamp(path)) as fh:
        json.dump({"digest": key_digest(key), "key": key, "info": info}, fh, indent=2, default=str)


def cached_file(path, key, build: Callable[[Path], dict]) -> dict:
    """Reuse ``path`` if it was built with ``key``; else ``build(path)`` (which writes it) and stamp it."""
    path = Path(path)
    hit = lookup(path, key)
    if hit is not None:
        return hit
    path.parent.mkdir(parents=True, exist_ok=True)
    _stamp(path).unlink(missing_ok=True)
    info = build(path)
    write_stamp(path, key, info)
    return info


def cached_dir(path, key, build: Callable[[Path], dict]) -> dict:
    """Like :func:`cached_file` for a folder: built into a temporary folder, then renamed into place."""
    path = Path(path)
    hit = lookup(path, key)
    if hit is not None:
        return hit
    path.parent.mkdir(parents=True, exist_ok=True)
    _stamp(path).unlink(missing_ok=True)
    with atomic_dir(path) as tmp:
        info = build(tmp)
    write_stamp(path, key, info)
    return info


# ----------------------------------------------------------------------------- atomic folders

def tmp_prefix(final) -> str:
    """The name prefix of the temporary folders :func:`atomic_dir` builds ``final`` in."""
    return f".{Path(final).name}.tmp-"


def old_dir(final) -> Path:
    """Where :func:`replace_dir` parks the previous ``final`` between its two renames."""
    final = Path(final)
    return final.parent / f".{final.name}.old"


def remove_tmp_dirs(final) -> None:
    """Delete the temporary folders a killed :func:`atomic_dir` for ``final`` left behind."""
    final = Path(final)
    for stale in final.parent.glob(tmp_prefix(final) + "*"):
        shutil.rmtree(stale, ignore_errors=True)


def make_tmp_dir(parent, prefix: str) -> Path:
    """A fresh temporary folder in ``parent`` with the permissions of an ordinary mkdir."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def replace_dir(tmp, final) -> None:
    """Move the finished folder ``tmp`` onto ``final`` (two renames).

    An existing ``final`` is first renamed to :func:`old_dir` (removed once the
    new one is in place), so a kill at any moment leaves a complete folder at
    ``final`` or, between the renames, at ``old_dir(final)``.
    """
    tmp, final = Path(tmp), Path(final)
    old = old_dir(final)
    if old.exists() and final.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``final``; when the block succeeds it replaces
    ``final`` (:func:`replace_dir`), when it fails it is deleted and ``final`` is untouched.

    ``final``'s parent is created if needed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_tmp_dir(final.parent, tmp_prefix(final))
    try:
        yield tmp
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
