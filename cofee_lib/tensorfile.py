"""Nested training state as two plain files, no pickles: ``NAME.safetensors`` + ``NAME.json``.

A resume checkpoint holds more than weights: the optimizer's moments and step
counts, the schedule, every generator's state, the CoFEE hooks' state. All of
it is a tree of dicts, lists, numbers, strings and tensors. :func:`save_tree`
stores every tensor (and numpy array) of the tree in one safetensors file
under the path of its place in the tree, and the rest as JSON with a
placeholder where a tensor was; :func:`load_tree` puts it back together, bit
for bit (dtypes and values are kept; Python floats round-trip exactly through
JSON). Loading never runs code from the files.

Placeholders in the JSON: ``{"__tensor__": key}``, ``{"__ndarray__": key}``,
``{"__tuple__": [...]}``, ``{"__intkeys__": [[k, v], ...]}`` (dicts whose keys
are ints, like an optimizer's ``state``). Dict keys that are neither strings
nor ints are refused.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

_MARKERS = ("__tensor__", "__ndarray__", "__tuple__", "__intkeys__")


def _split(obj, path: str, tensors: dict):
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().to("cpu").clone().contiguous()
        return {"__tensor__": path}
    if isinstance(obj, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__ndarray__": path}
    if isinstance(obj, dict):
        if obj and all(isinstance(k, int) and not isinstance(k, bool) for k in obj):
            return {"__intkeys__": [[k, _split(v, f"{path}.{k}", tensors)] for k, v in obj.items()]}
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise TypeError(f"{path}: dict key {bad[0]!r} is neither str nor int")
        if any(k in _MARKERS for k in obj):
            raise TypeError(f"{path}: dict uses a reserved key ({', '.join(_MARKERS)})")
        return {k: _split(v, f"{path}.{k}", tensors) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return {"__tuple__": [_split(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_split(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"{path}: cannot store a {type(obj).__name__} without pickling")


def _join(obj, tensors: dict):
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (key, value), = obj.items()
        if key == "__tensor__":
            return tensors[value]
        if key == "__ndarray__":
            return tensors[value].numpy()
        if key == "__tuple__":
            return tuple(_join(v, tensors) for v in value)
        if key == "__intkeys__":
            return {int(k): _join(v, tensors) for k, v in value}
    return {k: _join(v, tensors) for k, v in obj.items()}


def save_tree(stem, obj) -> list[Path]:
    """Write ``obj`` as ``<stem>.safetensors`` and ``<stem>.json``; return the two paths."""
    stem = Path(stem)
    tensors: dict = {}
    tree = _split(obj, "root", tensors)
    st_path, js_path = stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")
    save_file(tensors, str(st_path))
    js_path.write_text(json.dumps(tree), encoding="utf-8")
    return [st_path, js_path]


def load_tree(stem):
    """Read what :func:`save_tree` wrote at ``stem`` (``ValueError``/``OSError`` if unreadable)."""
    stem = Path(stem)
    tensors = load_file(str(stem.with_name(stem.name + ".safetensors")))
    tree = json.loads(stem.with_name(stem.name + ".json").read_text(encoding="utf-8"))
    return _join(tree, tensors)
