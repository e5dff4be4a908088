"""What every numbered notebook calls first: where to write, which preset, seeds, plot style.

A notebook's ``parameters`` cell holds ``preset`` and the three output
folders (``None`` means "the preset's default"). :func:`setup` resolves them,
in this order: an explicit value (papermill ``-p``), then the environment
(``COFEE_PRESET``, ``COFEE_RESULTS_DIR``, ``COFEE_FIGURES_DIR``,
``COFEE_WORK_DIR``: how nbval runs the notebooks at the smoke preset), then
:func:`cofee_lib.paths.output_dirs`.

Every other parameter is ``None`` too unless given, and means the same: the preset's value.
:meth:`NotebookRun.setting` is the one place that resolves them (a stage setting such as
``delta`` or ``k`` from :func:`cofee_lib.presets.stage_settings`, a training setting from
:func:`cofee_lib.presets.train_config`, anything else from the preset's table);
:meth:`NotebookRun.stage_target` names the dataset the stage runs select on, and
:meth:`NotebookRun.stage_file` finds what a stage wrote from what ``pretrain`` returned.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CofeeError, atomic_open
from .hardware import choose_precision
from .presets import STAGE_NAMES, get_preset, stage_settings, train_config, train_settings
from .settings import StageSettings, TrainConfig


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

    def setting(self, name: str, value=None):
        """A notebook parameter: ``value`` when one was given (not None), else the preset's value of ``name``.

        ``name`` is, looked up in this order:

        * a :class:`~cofee_lib.settings.StageSettings` field (``delta``, ``k``, ``epochs_nee``, ...):
          :func:`cofee_lib.presets.stage_settings` of the preset;
        * a :class:`~cofee_lib.settings.TrainConfig` field (``lr``, ``seed``, ...), or ``STAGE.field``
          for a stage's own config (``esi.lr``): :func:`cofee_lib.presets.train_config`;
        * a key of the preset (``model``) or a dotted path into it (``experiments.figure2.deltas``).
        """
        if value is not None:
            return value
        head, _, rest = name.partition(".")
        if not rest and name in StageSettings.names():
            return getattr(stage_settings(self.preset), name)
        if not rest and name in TrainConfig.names():
            return getattr(train_config(self.preset), name)
        if rest and head in STAGE_NAMES and rest in TrainConfig.names():
            return getattr(train_config(self.preset, head), rest)
        node = self.settings or get_preset(self.preset)
        for i, part in enumerate(name.split(".")):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(name.split(".")[:i]) or "the preset"
                raise CofeeError(f"preset {self.preset!r} has no setting {name!r} ({where} has no {part!r}); "
                                 "give the notebook parameter a value")
            node = node[part]
        return node

    def stage_target(self, target: str | None = None) -> str:
        """The target the stage runs select on: ``target`` when given, else the first of the
        preset's ``experiments.table3_targets``.

        Notebooks 03-05 train CoFEE's stages for it (its dev split selects every checkpoint), and
        Table 3 (notebook 06) reuses that run for the same target."""
        return target or self.setting("experiments.table3_targets")[0]

    def stage_file(self, pretrain_report: dict, stage: str, name: str = "") -> Path:
        """A file or folder one stage of a ``pretrain`` run wrote, from the report ``pretrain`` returned.

        ``name``: ``"best"`` (the stage's checkpoint), ``"report.json"``, ``"ds_best.jsonl"`` (NEE's
        D_s^best), ``"clusters.json"`` (FET's clusterings), ...; ``""`` is the stage's folder (the
        run store's folder, :mod:`cofee_lib.runs`, where the run was reused)."""
        reports = pretrain_report.get("stage_reports", {})
        if stage not in reports:
            raise CofeeError(f"the pretrain run has no {stage} stage (it ran {', '.join(reports) or 'none'})")
        report = reports[stage]
        folder = Path(report["store"]) if report.get("store") else Path(report["best_dir"]).parent
        path = folder / name if name else folder
        if not path.exists():
            raise CofeeError(f"the {stage} stage wrote no {name or 'folder'} ({path})")
        return path

    def work(self, *parts) -> Path:
        """A path under the work folder (corpora, checkpoints), parent created."""
        path = self.work_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def setup(preset: str | None = None, results_dir=None, figures_dir=None, work_dir=None,
          seed: int = 0, style: bool = True) -> NotebookRun:
    """Resolve the preset and the output folders, seed python/numpy/torch, set the plot style."""
    from .paths import output_dirs

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
