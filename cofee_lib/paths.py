"""Where the kit's folders are: the checkout, the user's data, and each preset's outputs.

* :func:`repo_root`: the checkout the kit runs from (it holds ``notebooks/``).
* :func:`output_dirs`: ``results_dir``, ``figures_dir`` and ``work_dir`` of a preset: for
  ``default`` the repository's ``results/``, ``figures/`` and ``work/default/``, for any
  other preset ``results/<preset>/``, ``figures/<preset>/``, ``work/<preset>/``; outside a
  checkout the same names under the current directory.
* :func:`data_root`: the user's datasets: ``$COFEE_DATA_DIR``, else ``<repo>/data``, else
  ``./data``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import CofeeError


def repo_root() -> Path:
    """The checkout the kit runs from (where ``notebooks/`` lives)."""
    here = Path(__file__).resolve().parents[1]
    if (here / "notebooks").is_dir():
        return here
    cwd = Path.cwd()
    if (cwd / "notebooks").is_dir():
        return cwd
    raise CofeeError("cannot find the notebooks/ folder: run from a checkout of the kit")


def base_dir() -> Path:
    """The checkout when there is one, else the current directory."""
    try:
        return repo_root()
    except CofeeError:
        return Path.cwd().resolve()


def output_dirs(preset: str, root: Path | None = None) -> dict:
    """``results_dir``, ``figures_dir`` and ``work_dir`` for a preset (absolute paths)."""
    root = root or base_dir()
    if preset == "default":
        return {"results_dir": str(root / "results"), "figures_dir": str(root / "figures"),
                "work_dir": str(root / "work" / "default")}
    return {"results_dir": str(root / "results" / preset), "figures_dir": str(root / "figures" / preset),
            "work_dir": str(root / "work" / preset)}


def work_dir(preset: str) -> Path:
    """Where a preset's corpora, gazetteers and runs are cached by default."""
    return Path(output_dirs(preset)["work_dir"])


def data_root() -> Path:
    """The folder holding the user's datasets: ``$COFEE_DATA_DIR``, else ``<repo>/data``, else ``./data``."""
    env = os.environ.get("COFEE_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return base_dir() / "data"


def relative(path) -> str:
    """``path`` relative to the checkout (or the current directory) where it lies inside, else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(base_dir()))
    except (ValueError, OSError):
        return str(path)
