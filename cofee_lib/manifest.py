"""A saved model folder's manifest: the sha256 and size of each of its files.

:func:`write_manifest` is called by every ``save_pretrained`` of the kit just
before the folder is renamed into place; :func:`verify_manifest` is called by
every load (``load_backbone``, ``--model DIR``), so bytes overwritten in
``best/model.safetensors`` or a truncated head file are refused with the file
named, instead of loading silently or crashing inside safetensors.
"""
from __future__ import annotations

import json
from pathlib import Path

from .cache import file_digest as _sha256
from .errors import CofeeError

MANIFEST_NAME = "cofee_manifest.json"


def write_manifest(directory) -> None:
    """Record the sha256 and size of every file of a saved model in ``cofee_manifest.json``."""
    directory = Path(directory)
    files = {p.name: {"sha256": _sha256(p), "size": p.stat().st_size}
             for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST_NAME}
    (directory / MANIFEST_NAME).write_text(json.dumps({"files": files}, indent=2) + "\n", encoding="utf-8")


def verify_manifest(directory) -> bool:
    """Check a saved model's files against its manifest; False if it has none (saved by an older kit)."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return False
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CofeeError(f"{path}: unreadable manifest ({exc}); the model folder is damaged") from None
    for name, want in files.items():
        f = directory / name
        if not f.is_file():
            raise CofeeError(f"{f}: missing (listed in {MANIFEST_NAME}); the model folder is incomplete")
        size = f.stat().st_size
        if size != want.get("size"):
            raise CofeeError(f"{f}: {size} bytes, the manifest says {want.get('size')} (truncated or replaced); "
                             "retrain or restore the model folder")
        if _sha256(f) != want.get("sha256"):
            raise CofeeError(f"{f}: sha256 differs from {MANIFEST_NAME} (the file was modified or is corrupt); "
                             "retrain or restore the model folder")
    return True
