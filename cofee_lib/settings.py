"""Every setting of the kit, defined once: a typed schema with its default, help text and provenance.

Two schemas, both dataclasses whose fields carry their documentation in ``metadata``:

* :class:`TrainConfig`: how one training run goes (the presets' ``train`` and ``stages``
  sections; :func:`cofee_lib.engine.train` takes one).
* :class:`StageSettings`: the CoFEE pipeline's own settings (the presets' ``pretrain``
  section): the corpora, self-picking (NEE), clustering (FET), epochs per stage and the
  data caps. :func:`cofee_lib.pipeline.pretrain` builds one; the stage functions take
  their values from it and have no defaults of their own.

A field's default is the value of the shipped ``default`` preset; ``resources/presets.json``
lists only the values where a preset differs (:mod:`cofee_lib.presets` checks each key
against the schema, so a mistyped key is an error naming it and the preset). From the same
fields come the command-line flags (:func:`add_flags`, :func:`flag_values`) and the cache
keys (:func:`result_fields`: the fields that change what a run computes).

Adding a setting: one field here (default, ``help``, ``provenance``, and ``results=False``
when it cannot change a result), plus one value in each preset where it differs.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass

from .errors import CofeeError
from .hardware import PRECISIONS, choose_precision

# the start/end probability an MRC span needs to be predicted (paper Sec. 3); TrainConfig.threshold's default
DEFAULT_THRESHOLD = 0.5

# keys a preset section may hold besides settings: prose for readers, never read as settings
META_KEYS = ("about",)


def setting(default, help: str, provenance: str = "kit", *, results: bool = True, stage: str | None = None,
            choices: tuple | None = None, flag: str | bool | None = None):
    """A schema field. ``provenance``: the paper's section or the kit's reason for the default.

    ``results``: whether the value can change what a run computes (then it is part of the run's
    cache key and checkpoint fingerprint). ``stage``: the stage whose cache key holds it (``nee``,
    ``fet``; None = the corpora or every stage). ``flag``: the command-line flag (default
    ``--name-with-dashes``; False: no flag).
    """
    meta = {"help": help, "provenance": provenance, "results": results, "stage": stage,
            "choices": choices, "flag": flag}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Schema:
    """What both schemas share: building from a preset section, validation hooks, documentation."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict, where: str = "settings"):
        """Build from a dict; an unknown key is an error naming it (it is usually a typo)."""
        names = set(cls.names())
        values = {k: v for k, v in values.items() if k not in META_KEYS and not k.startswith("_")}
        unknown = sorted(set(values) - names)
        if unknown:
            raise CofeeError(f"{where}: unknown {cls.KIND} setting(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(names))})")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in values:
                values[f.name] = _coerce(values[f.name], hints[f.name], f"{where}: {f.name}")
        obj = cls(**values)
        return obj.validate()

    def updated(self, where: str = "settings", **overrides):
        """A copy with the non-None ``overrides`` applied (checked like a preset)."""
        values = {**dataclasses.asdict(self), **{k: v for k, v in overrides.items() if v is not None}}
        return type(self).from_dict(values, where=where)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self):
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value not in choices:
                raise CofeeError(f"bad {self.KIND} setting: {f.name} must be one of {', '.join(map(str, choices))}, "
                                 f"got {value!r}")
        for ok, message in self._checks():
            if not ok:
                raise CofeeError(f"bad {self.KIND} setting: {message}")
        return self

    def _checks(self) -> list:
        return []

    @classmethod
    def describe(cls) -> list[dict]:
        """One row per field: name, default, help, provenance (for docs and notebooks)."""
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            rows.append({"name": f.name, "default": default, "help": f.metadata["help"],
                         "provenance": f.metadata["provenance"], "results": f.metadata["results"]})
        return rows


def _members(hint) -> list:
    """The non-None types a hint admits (``int | None`` -> [int]; ``list[str]`` -> [list[str]])."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [t for t in typing.get_args(hint) if t is not type(None)]
    return [hint]


def _coerce(value, hint, where: str):
    """Check a preset value against the field's type (ints are accepted where floats are expected)."""
    if value is None:
        if type(None) in typing.get_args(hint):
            return None
        raise CofeeError(f"{where}: null is not allowed here")
    allowed = _members(hint)
    for t in allowed:
        origin = typing.get_origin(t) or t
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin in (str, bool) and isinstance(value, origin):
            return value
        if origin is list and isinstance(value, (list, tuple)):
            return list(value)
    names = " or ".join(getattr(t, "__name__", str(t)) for t in allowed)
    raise CofeeError(f"{where}: expected {names}, got {value!r}")


# --------------------------------------------------------------------------- training

@dataclass
class TrainConfig(Schema):
    """Training hyper-parameters of one run (:func:`cofee_lib.engine.train`).

    ``batch_size`` counts features per micro-batch per process; a global batch (one
    optimizer step) is ``batch_size * grad_accum * world_size`` features. ``precision`` is
    what the run may use; :func:`cofee_lib.engine.train` resolves ``"auto"`` at run start
    (:mod:`cofee_lib.hardware`) and records the choice.
    """

    KIND: typing.ClassVar[str] = "training"

    epochs: int = setting(3, "passes over the training data", "kit: sized for the default batch's hour on 2 cores")
    lr: float = setting(5e-5, "peak AdamW learning rate",
                        "kit: inside the paper's search range [1e-6, 1e-4] (Sec. 5.4); the usual rate for a small BERT")
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and LayerNorm)", "kit: BertAdam's usual value")
    warmup_ratio: float = setting(0.1, "share of the steps with linear warm-up",
                                  "kit: BertAdam's default warm-up proportion (the paper's optimizer, Sec. 5.4)")
    max_grad_norm: float | None = setting(1.0, "gradient clipping norm (null: none)", "kit: the usual BERT value")
    batch_size: int = setting(16, "features per micro-batch per process", "kit: the paper does not give batch sizes")
    grad_accum: int = setting(1, "micro-batches per optimizer step")
    eval_batch_size: int = setting(64, "features per batch when predicting", results=False)
    precision: str = setting("auto", "auto: bf16 where the hardware has native bf16, else fp32",
                             "kit: on an AMD EPYC with avx512_bf16, bf16 ran about 1.3x faster than fp32 at the same dev F1; "
                             "on an AVX2-only EPYC one MiniLM step took 19.5 s in bf16 against ~2 s in fp32 "
                             "(cofee_lib/hardware.py)",
                             choices=PRECISIONS)
    seed: int = setting(42, "seed of initialisation, batch order and dropout")
    checkpoint_every: int = setting(200, "optimizer steps between resumable checkpoints (0: epoch ends only)",
                                    results=False)
    max_steps: int | None = setting(None, "stop after this many optimizer steps (null: all epochs)")
    patience: int | None = setting(None, "early stopping: end the run when dev F1 has not improved for this many "
                                   "epochs (null: run every epoch); 'epochs' is then the most it runs",
                                   "kit: select on dev until dev stops improving, so that a sweep point measures "
                                   "its factor, not under-training")
    min_steps: int = setting(0, "optimizer steps a run takes at least: where 'epochs' give fewer, more epochs are "
                             "run, and early stopping waits for them",
                             "kit: a small training set (a 20% share, 45 D_s sentences) gets a few steps per "
                             "epoch; without a floor it never crosses the 0.5 threshold")
    min_dev_f1: float = setting(0.0, "a stage whose best dev F1 ends below this has not started to learn: it is "
                                "trained again from its starting weights with twice the steps (0: never)",
                                "kit (issue 12): at a 20% gazetteer share one NEE seed ended at dev F1 0.012 after "
                                "133 steps (its floor) while the other reached 0.176; a point at 0.0 is a recipe "
                                "failure, not a finding")
    retries: int = setting(2, "how many times a stage below min_dev_f1 is trained again (each doubling min_steps)",
                           "kit: bounds the extra cost at 2 + 4 = 6 times a stage's steps")
    log_path: str | None = setting(None, "where the per-epoch log goes (null: <out>/log.jsonl)", results=False,
                                   flag=False)
    num_threads: int | None = setting(None, "CPU threads (null: the physical cores the process may use)",
                                      results=False, flag="--threads")
    bucketing: bool = setting(True, "sort features by length inside chunks of batches (less padding)")
    bucket_chunk: int = setting(50, "global batches per bucketing chunk")
    threshold: float = setting(DEFAULT_THRESHOLD, "start/end probability threshold for prediction (MRC; taggers ignore it)",
                               "paper: 0.5 for prediction (Sec. 3)")
    adam_eps: float = setting(1e-8, "AdamW epsilon")
    find_unused_parameters: bool = setting(False, "DDP: allow parameters without a gradient in a step")
    keep_checkpoint: bool = setting(False, "keep checkpoint/ after the run finishes", results=False)
    progress: bool = setting(True, "progress bars on stderr", results=False, flag=False)

    def resolved(self, device=None) -> "TrainConfig":
        """A copy whose ``precision`` is the one a run on ``device`` uses (``"fp32"`` or ``"bf16"``)."""
        return dataclasses.replace(self, precision=choose_precision(self.precision, device).precision)

    def _checks(self) -> list:
        return [(self.epochs >= 1, "epochs must be >= 1"), (self.lr > 0, "lr must be > 0"),
                (self.batch_size >= 1, "batch_size must be >= 1"), (self.grad_accum >= 1, "grad_accum must be >= 1"),
                (self.eval_batch_size >= 1, "eval_batch_size must be >= 1"),
                (0 <= self.warmup_ratio <= 1, "warmup_ratio must be in [0, 1]"),
                (self.checkpoint_every >= 0, "checkpoint_every must be >= 0"),
                (self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1"),
                (self.patience is None or self.patience >= 1, "patience must be >= 1 (or null)"),
                (self.min_steps >= 0, "min_steps must be >= 0"),
                (0 <= self.min_dev_f1 < 1, "min_dev_f1 must be in [0, 1)"),
                (self.retries >= 0, "retries must be >= 0"),
                (self.bucket_chunk >= 1, "bucket_chunk must be >= 1"),
                (0 < self.threshold < 1, "threshold must be in (0, 1)")]


# --------------------------------------------------------------------------- the CoFEE stages

@dataclass
class StageSettings(Schema):
    """The CoFEE pipeline's settings (paper Sec. 4-5): corpora, NEE, FET, epochs, data caps."""

    KIND: typing.ClassVar[str] = "pretrain"

    # corpora (Sec. 5.2)
    dumps: list[str] = setting(["embedded:enwiki", "embedded:enwiki-tables"],
                               "Wikipedia dumps D_g is read from (embedded:NAME or a path)",
                               "kit: the embedded dumps are the real data the registries carry")
    dumps_zh: list[str] | None = setting(None, "dumps for Chinese targets (null: the dumps above)")
    min_anchors: int = setting(4, "keep D_g sentences with at least this many anchors",
                               "paper Sec. 5.2: sentences with three or fewer anchors are removed")
    max_words: int = setting(250, "drop D_g sentences longer than this", "paper Sec. 5.2: max sentence length 250")
    dump_workers: int = setting(1, "processes that parse the dumps into D_g (the output is the same for any number; "
                                "a multistream dump with its index splits into independent streams)",
                                "kit: 1 for the embedded dumps, which parse in seconds", results=False)
    gazetteer_fraction: float = setting(1.0, "use this share of each gazetteer (Figure 3)", "paper Sec. 6.3")
    gazetteer_seed: int = setting(0, "seed of the gazetteer share")
    pretrain_fraction: float | None = setting(None, "use this share of D_g and its D_s (Figure 2a; null: all)",
                                              "paper Sec. 6.1")
    # NEE: self-picking (Sec. 4.2, Algorithm 1 lines 6-13)
    delta: float = setting(0.1, "self-picking rate: a span is picked where its start and end probabilities "
                                "exceed delta", "paper Sec. 6.2 / Fig. 2c: best picking rate 0.1", stage="nee")
    relabel: str = setting("replace", "self-picked labels replace D_s, or join the gazetteer labels",
                           "paper Sec. 4.2: the relabelled set replaces the old one", stage="nee",
                           choices=("replace", "union"))
    pick_when_dev_zero: bool = setting(False, "relabel D_s even after an epoch whose dev F1 is 0 "
                                              "(Algorithm 1 as written; empties D_s in practice)",
                                       "kit: measured in notebook 04, see SelfPicking", stage="nee")
    # FET: variance-weighted clustering (Sec. 4.3)
    gamma: float = setting(1.0, "weight of the clustering loss in L_FET (Eq. 8)",
                           "kit: the paper does not give gamma; 1.0 weighs L_clus like L_MRC", stage="fet")
    k: int = setting(8, "number of k-means clusters K",
                     "kit: the paper sets K to the number of fine-grained types (23 on E-commerce); English "
                     "PER/LOC/ORG has no such count, 8 is our choice (Fig. 2d sweeps it)", stage="fet")
    variance: str = setting("sum", "V_k as the paper's sum-variance or the authors' per-feature variance",
                            "paper Eq. 10 with the sum-variance of Sec. 4.3 (DESIGN.md)", stage="fet",
                            choices=("sum", "feature"))
    head_follow: str = setting("align", "how the K-way head follows new cluster ids (see cofee_lib.stages)",
                               "kit: DESIGN.md asks to say; align keeps each head row's meaning", stage="fet",
                               choices=("align", "reinit"))
    kmeans_restarts: int = setting(3, "k-means restarts per clustering (the lowest inertia wins)", stage="fet")
    # the domain stage (beyond the paper): NEE with self-picking on gazetteer-matched in-domain text
    domain_text: str | None = setting(None, "unlabeled in-domain text for the domain stage: a file (JSON lines, "
                                            "CoNLL with the labels ignored, or plain text, one sentence per line) "
                                            "or dataset:NAME (that dataset's train split, its labels dropped)",
                                      "kit (beyond the paper): see cofee_lib.domain", stage="domain")
    domain_max_sentences: int | None = setting(None, "use a seeded sample of this many in-domain sentences "
                                                     "(null: all)", stage="domain")
    domain_negatives: float = setting(0.5, "keep this many unmatched in-domain sentences per matched one, as "
                                           "negatives", "kit: see cofee_lib.domain", stage="domain")
    domain_no_self_picking: bool = setting(False, "train the domain stage on the matched labels only, without "
                                                  "self-picking (BOND's stage I; --no-self-picking turns it off in "
                                                  "every stage)", stage="domain")
    domain_seed: int = setting(0, "seed of the in-domain sample and of the negatives kept", stage="domain")
    # epochs per stage (override the training config's epochs)
    epochs_esi: int = setting(3, "ESI epochs at most (early stopping on dev may end it sooner)",
                              "kit: the paper trains each stage until dev F1 stops improving and prints no epochs; "
                              "the default preset stops a stage after one epoch without a better dev F1 (its "
                              "'stages' patience) and caps the epochs so that the default batch fits 2 CPU cores")
    epochs_nee: int = setting(4, "NEE epochs (self-picking iterations) at most", "kit: as epochs_esi")
    epochs_fet: int = setting(2, "FET epochs (re-clusterings) at most", "kit: as epochs_esi")
    epochs_domain: int = setting(3, "domain-stage epochs (self-picking iterations) at most", "kit: as epochs_esi")
    # data caps (seeded subsets)
    max_dg_sentences: int | None = setting(None, "subsample D_g to this many sentences (null: all)")
    max_ds_sentences: int | None = setting(None, "subsample D_s to this many sentences (null: all)")
    max_dev_sentences: int | None = setting(400, "subsample the target's dev split (null: all)",
                                            "kit: a 2-core CPU scores 400 dev sentences in seconds")
    max_test_sentences: int | None = setting(None, "tables score a seeded subset of the test split (null: all)")
    dev_seed: int = setting(42, "seed of the dev subsample (max_dev_sentences): the same for every training seed",
                            "kit: runs over several seeds are scored on the same dev sentences, so the claims' "
                            "bootstrap can pair them; 42 is the default training seed, whose dev sample it keeps")

    def _checks(self) -> list:
        return [(0 < self.delta < 1, "delta must be in (0, 1)"), (self.k >= 1, "k must be >= 1"),
                (self.kmeans_restarts >= 1, "kmeans_restarts must be >= 1"),
                (0 < self.gazetteer_fraction <= 1, "gazetteer_fraction must be in (0, 1]"),
                (self.pretrain_fraction is None or 0 < self.pretrain_fraction <= 1,
                 "pretrain_fraction must be in (0, 1]"),
                (min(self.epochs_esi, self.epochs_nee, self.epochs_fet, self.epochs_domain) >= 1,
                 "epochs per stage must be >= 1"),
                (self.domain_negatives >= 0, "domain_negatives must be >= 0"),
                (self.domain_max_sentences is None or self.domain_max_sentences >= 1,
                 "domain_max_sentences must be >= 1"),
                (self.min_anchors >= 0, "min_anchors must be >= 0"), (self.max_words >= 1, "max_words must be >= 1"),
                (self.dump_workers >= 1, "dump_workers must be >= 1")]

    def stage_key(self, stage: str) -> dict:
        """The settings that change what ``stage`` computes (part of its run-cache key)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata["results"] and f.metadata["stage"] == stage}


def result_fields(cls) -> tuple[str, ...]:
    """The fields of a schema that change what a run computes (cache keys, checkpoint fingerprints)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata["results"])


# --------------------------------------------------------------------------- command-line flags

def add_flags(group, cls, names=None) -> None:
    """Add one flag per schema field (or per field in ``names``) to an argparse group.

    Flags default to None (= the preset's value); help and choices come from the schema.
    Booleans become ``store_true`` flags, lists take one or more values.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = f.metadata["flag"]
        if flag is False or (names is not None and f.name not in names):
            continue
        flag = flag or "--" + f.name.replace("_", "-")
        member = _members(hints[f.name])[0]
        base = typing.get_origin(member) or member
        prov = f.metadata["provenance"]
        kw = {"dest": f.name, "default": None,
              "help": f.metadata["help"] + (f" ({prov.split(':')[0]})" if prov.startswith("paper") else "")}
        if base is bool:
            group.add_argument(flag, action="store_true", **kw)
        elif base is list:
            group.add_argument(flag, nargs="+", metavar="VALUE", **kw)
        else:
            group.add_argument(flag, type=base, choices=f.metadata["choices"], **kw)


def flag_values(args: argparse.Namespace, cls) -> dict:
    """The schema's flags that were given on the command line (None = not given)."""
    return {n: getattr(args, n) for n in cls.names() if getattr(args, n, None) is not None}


FINGERPRINT_FIELDS = result_fields(TrainConfig)
