"""What every numbered notebook calls first: where to write, which preset, seeds, plot style.

A notebook's ``parameters`` cell holds ``preset`` and the three output
folders (``None`` means "the preset's default"). :func:`setup` resolves them,
in this order: an explicit value (papermill ``-p``), then the environment
(``COFEE_PRESET``, ``COFEE_RESULTS_DIR``, ``COFEE_FIGURES_DIR``,
``COFEE_WORK_DIR``: how nbval runs the notebooks at the smoke preset), then
:func:`cofee_lib.reproduce.output_dirs`.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from .errors import atomic_open
from .hardware import choose_precision
from .presets import train_settings


@dataclass
class NotebookRun:
    preset: str
    results_dir: Path
    figures_dir: Path
    work_dir: Path
    settings: dict = field(default_factory=dict)

    def save_json(self, name: str, obj) -> Path:
        """Write ``obj`` to ``<results_dir>/<name>.json`` (atomic) and return the path.

        A results dict gets ``"precision"``: what the preset's training runs use on
        this machine and the hardware facts behind it (the run store keys on it, so
        reused runs were trained the same way)."""
        path = self.results_dir / (name if name.endswith(".json") else f"{name}.json")
        if isinstance(obj, dict) and "precision" not in obj:
            obj = {**obj, "precision": self.precision()}
        with atomic_open(path) as fh:
            json.dump(obj, fh, indent=2, ensure_ascii=False, default=str)
            fh.write("\n")
        return path

    def precision(self) -> dict:
        """:func:`cofee_lib.hardware.choose_precision` for this preset's training runs, as a dict."""
        from .distributed import context  # imports torch

        requested = train_settings(self.preset)["precision"]
        return choose_precision(requested, context().device).to_dict()

    def load_json(self, name: str):
        path = self.results_dir / (name if name.endswith(".json") else f"{name}.json")
        return json.loads(path.read_text(encoding="utf-8"))

    def save_figure(self, fig, name: str) -> list[Path]:
        """Save a matplotlib figure as ``<figures_dir>/<name>.png`` and ``.pdf``."""
        paths = []
        for ext in ("png", "pdf"):
            path = self.figures_dir / f"{name}.{ext}"
            fig.savefig(path, dpi=150 if ext == "png" else None, bbox_inches="tight")
            paths.append(path)
        return paths

    def work(self, *parts) -> Path:
        """A path under the work folder (corpora, checkpoints), parent created."""
        path = self.work_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def setup(preset: str | None = None, results_dir=None, figures_dir=None, work_dir=None,
          seed: int = 0, style: bool = True) -> NotebookRun:
    """Resolve the preset and the output folders, seed python/numpy/torch, set the plot style."""
    from .reproduce import output_dirs

    preset = preset or os.environ.get("COFEE_PRESET") or "default"
    defaults = output_dirs(preset)
    chosen = {
        "results_dir": results_dir or os.environ.get("COFEE_RESULTS_DIR") or defaults["results_dir"],
        "figures_dir": figures_dir or os.environ.get("COFEE_FIGURES_DIR") or defaults["figures_dir"],
        "work_dir": work_dir or os.environ.get("COFEE_WORK_DIR") or defaults["work_dir"],
    }
    paths = {k: Path(v).resolve() for k, v in chosen.items()}
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    try:
        from .presets import get_preset

        settings = get_preset(preset)
    except Exception:  # a preset the table does not know: the notebook will say what it lacks
        settings = {}
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass
    if style:
        import seaborn as sns

        sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    return NotebookRun(preset=preset, settings=settings, **paths)
