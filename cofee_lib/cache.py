"""A small content-keyed cache for intermediate files (corpora, gazetteers, D_s).

A cached output sits beside a stamp ``<output>.cofee-key.json`` holding the
key it was built with: a digest of the parameters *and* of the contents of
the inputs (files are hashed, never trusted by name; the authors' feature
cache ignored the tokenizer, this one cannot). When the stamp's key equals the
requested key the output is reused; otherwise it is rebuilt atomically and
the stamp rewritten.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

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


def _write_stamp(path: Path, key, info) -> None:
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
    _write_stamp(path, key, info)
    return info


def cached_dir(path, key, build: Callable[[Path], dict]) -> dict:
    """Like :func:`cached_file` for a folder: built into a temporary folder, then renamed into place."""
    path = Path(path)
    hit = lookup(path, key)
    if hit is not None:
        return hit
    path.parent.mkdir(parents=True, exist_ok=True)
    _stamp(path).unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        info = build(tmp)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_stamp(path, key, info)
    return info
