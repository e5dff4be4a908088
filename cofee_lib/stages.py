"""The three CoFEE pre-training stages (paper Sec. 4, Algorithm 1) and fine-tuning.

Each stage is one call to the training engine (:func:`cofee_lib.engine.train`)
with the stage's data and, for NEE and FET, a :class:`~cofee_lib.engine.TrainHooks`
that plugs the stage's extra step into the loop:

* **ESI** (:func:`run_esi`): train on D_g, every anchor an entity of the one
  type ``Entity``; MRC asks "Find Entities". Dev: the target dev set with its
  types collapsed to ``Entity`` (span identification on the target domain).
* **NEE** (:func:`run_nee`): train on D_s; after every epoch the dev score
  decides whether this is the best model so far (then D_s^best is the label
  set this epoch trained on), and :class:`SelfPicking` relabels D_s from the
  model's own predictions at probability threshold delta (Algorithm 1, lines
  6-13).
* **FET** (:func:`run_fet`): train on D_s^best with ``L_MRC + gamma * L_clus``
  (Eq. 8-10): :class:`FineGrainedTyping` clusters the sum-pooled span states
  of D_s^best's entities with k-means on the device, weights each cluster by
  ``alpha_k = softmax(1 / V_k)`` and re-clusters with the current model after
  every epoch (Algorithm 1, lines 14-23).

Every stage selects its checkpoint on **dev** only and writes
``<out>/best/`` (loadable by :func:`cofee_lib.backbones.load_backbone`,
``cofee predict`` and the next stage) and ``<out>/report.json``.

How the K-way head follows the changing cluster ids (DESIGN.md asks to say):
by default (``head_follow="align"``) each new clustering is matched to the
previous one by Hungarian assignment of the centres (nearest centres keep
their id), so the head's rows keep their meaning; ``"reinit"`` instead
re-initialises the head after every clustering.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import torch

from .clustering import align_clusters, kmeans, variance_weights, weighted_cluster_loss
from .engine import TrainHooks, find_checkpoint, train
from .errors import CofeeError, atomic_open
from .metrics import evaluate_spans
from .records import JsonlRecords, keep_types, spans_of, write_jsonl  # noqa: F401  (keep_types: re-exported)
from .settings import StageSettings, TrainConfig

ESI_TYPE = "Entity"


# --------------------------------------------------------------------------- data helpers

def untyped(rec: dict, type_name: str = ESI_TYPE) -> dict:
    """A copy of ``rec`` with every span's type replaced by ``type_name`` (duplicates merged)."""
    spans = sorted({(s, e) for s, e, _ in rec["spans"]})
    return {**rec, "spans": [[s, e, type_name] for s, e in spans]}


def as_untyped(records, type_name: str = ESI_TYPE):
    """:func:`untyped` of every record: a list, or, for records streamed from a file
    (:class:`~cofee_lib.records.JsonlRecords`), the same stream with the types replaced as it is read."""
    if isinstance(records, JsonlRecords):
        return records.mapped(lambda rec: untyped(rec, type_name))
    return [untyped(rec, type_name) for rec in records]


def label_set_stats(records: list[dict], types) -> dict:
    """Entities per type and sentences with at least one entity."""
    counts = {t: 0 for t in types}
    with_entity = 0
    for rec in records:
        if rec["spans"]:
            with_entity += 1
        for _, _, t in rec["spans"]:
            counts[t] = counts.get(t, 0) + 1
    return {"sentences": len(records), "sentences_with_entities": with_entity,
            "entities": sum(counts.values()), "per_type": counts}


def _json_default(obj):
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def write_report(path, report: dict) -> None:
    with atomic_open(path) as fh:
        json.dump(report, fh, indent=2, default=_json_default, ensure_ascii=False)
        fh.write("\n")


# --------------------------------------------------------------------------- NEE: self-picking

def self_pick(model, records: list[dict], delta: float, mode: str, gazetteer_records: list[dict] | None,
              batch_size: int) -> list[dict]:
    """Relabel ``records`` from the model's own predictions (Algorithm 1, line 12).

    An entity of type y is taken where the start and end probabilities of the
    y-query both exceed ``delta`` (MRC; taggers use their own decoding and
    ignore ``delta``; the prediction threshold ``model.predict`` calls
    ``threshold`` is, here, the picking rate delta). ``mode="replace"`` (the paper) makes the predictions the
    new label set; ``mode="union"`` adds them to the gazetteer labels
    (``gazetteer_records``, aligned with ``records``), the gazetteer label
    winning where a prediction overlaps it. Sentences are never dropped.
    """
    if mode not in ("replace", "union"):
        raise CofeeError(f"self-picking mode must be 'replace' or 'union', got {mode!r}")
    predictions = model.predict(records, threshold=delta, batch_size=batch_size)
    out = []
    for i, (rec, pred) in enumerate(zip(records, predictions)):
        spans = {tuple(sp) for sp in pred}
        if mode == "union":
            base = {tuple(sp) for sp in gazetteer_records[i]["spans"]}
            covered = set()
            for s, e, _ in base:
                covered.update(range(s, e + 1))
            spans = base | {sp for sp in spans if not covered.intersection(range(sp[0], sp[1] + 1))}
        out.append({**rec, "spans": sorted([list(sp) for sp in spans])})
    return out


def label_changes(old: list[dict], new: list[dict]) -> dict:
    """How many entities were added and removed between two aligned label sets."""
    added = removed = 0
    for a, b in zip(old, new):
        sa, sb = spans_of(a), spans_of(b)
        added += len(sb - sa)
        removed += len(sa - sb)
    return {"added": added, "removed": removed}


class SelfPicking(TrainHooks):
    """Iterative self-picking for NEE (Algorithm 1, lines 6-13).

    Holds the current label set D_s. After each epoch's dev evaluation: if the
    epoch was the best so far, the label set it trained on becomes D_s^best;
    then D_s is relabelled by :func:`self_pick` and returned to the engine,
    which trains the next epoch on it. Records per iteration: dev F1, entities
    per type, added/removed against the gazetteer labels and against the
    previous set, and, when ``gold_records`` (aligned human labels for the same
    sentences) are given, the precision/recall of the label set itself.

    One guard the paper does not mention (measured, see the NEE notebook): an
    epoch whose model scores dev F1 = 0 predicts (almost) nothing, and
    relabelling from it empties D_s for good (training then never sees an
    entity again). Such an epoch keeps its labels and says so in the history;
    ``pick_when_dev_zero=True`` relabels anyway, as Algorithm 1 is written.
    """

    def __init__(self, records: list[dict], types, delta: float, mode: str, gold_records: list[dict] | None,
                 batch_size: int, pick_when_dev_zero: bool):
        self.types = list(types)
        self.gazetteer = [dict(r) for r in records]
        self.current = [dict(r) for r in records]
        self.best = self.current
        self.delta = float(delta)
        self.mode = mode
        self.gold = gold_records
        self.batch_size = batch_size
        self.pick_when_dev_zero = pick_when_dev_zero
        self.history: list[dict] = []

    def _quality(self, records) -> dict | None:
        if self.gold is None:
            return None
        res = evaluate_spans([spans_of(g) for g in self.gold], [spans_of(r) for r in records])
        return {"precision": res["precision"], "recall": res["recall"], "f1": res["f1"]}

    def on_epoch_end(self, epoch, model, dev_metrics, is_best):
        if is_best:
            self.best = self.current
        trained_on = self.current
        skipped = not dev_metrics.get("f1") and not self.pick_when_dev_zero
        if skipped:
            new = trained_on  # a model that finds nothing on dev would relabel D_s with nothing
        else:
            was_training = model.training
            model.eval()
            new = self_pick(model, trained_on, self.delta, self.mode, self.gazetteer, self.batch_size)
            model.train(was_training)
        entry = {
            "skipped": "dev F1 is 0: labels kept" if skipped else None,
            "iteration": epoch,
            "dev_f1": dev_metrics.get("f1"),
            "is_best": bool(is_best),
            "trained_on": label_set_stats(trained_on, self.types),
            "trained_on_quality": self._quality(trained_on),
            "relabelled": label_set_stats(new, self.types),
            "relabelled_quality": self._quality(new),
            "vs_gazetteer": label_changes(self.gazetteer, new),
            "vs_previous": label_changes(trained_on, new),
        }
        self.history.append(entry)
        self.current = new
        return None if skipped else new

    def state_dict(self):
        return {"current": self.current, "best": self.best, "history": self.history}

    def load_state_dict(self, state):
        self.current = state["current"]
        self.best = state["best"]
        self.history = state["history"]


# --------------------------------------------------------------------------- FET: clustering

class FineGrainedTyping(TrainHooks):
    """Fine-grained entity typing (Sec. 4.3): variance-weighted cluster classification.

    ``cluster(model)`` embeds every entity of the training records (sum-pooled
    last-layer states, :meth:`Backbone.span_embeddings`), runs k-means with K
    clusters on the training device, computes ``V_k`` and ``alpha_k``
    (:func:`cofee_lib.clustering.variance_weights`, ``variance="sum"`` is the
    paper's formula, ``"feature"`` the authors' code), and stores each
    entity's cluster id as its pseudo label. During training the engine asks
    the backbone for its hidden states; :meth:`extra_loss` pools the batch's
    entities the same way, applies the K-way head ``W_c e + b_c`` and returns
    ``gamma * L_clus`` (Eq. 9). After every epoch the entities are
    re-clustered with the current model.
    """

    wants_hidden = True

    def __init__(self, records: list[dict], hidden_size: int, k: int, gamma: float, variance: str,
                 head_follow: str, restarts: int, seed: int, batch_size: int, device=None):
        if head_follow not in ("align", "reinit"):
            raise CofeeError(f"head_follow must be 'align' or 'reinit', got {head_follow!r}")
        n_entities = sum(len(r["spans"]) for r in records)
        if n_entities < k:
            raise CofeeError(f"FET needs at least K={k} entities to cluster, D_s^best has {n_entities}")
        self.records = records
        self.k = int(k)
        self.gamma = float(gamma)
        self.variance = variance
        self.head_follow = head_follow
        self.restarts = restarts
        self.seed = seed
        self.batch_size = batch_size
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        generator = torch.Generator().manual_seed(seed)
        self.head = torch.nn.Linear(hidden_size, self.k)
        with torch.no_grad():
            bound = 1 / math.sqrt(hidden_size)
            self.head.weight.uniform_(-bound, bound, generator=generator)
            self.head.bias.zero_()
        offsets, total = [], 0
        for r in records:
            offsets.append(total)
            total += len(r["spans"])
        self.offsets = torch.tensor(offsets, dtype=torch.long)
        self.labels = torch.full((total,), -1, dtype=torch.long)
        self.alpha = torch.full((self.k,), 1.0 / self.k)
        self.centers: torch.Tensor | None = None
        self.n_clusterings = 0
        self.history: list[dict] = []
        self.entity_index: list[list[int]] = []   # (record, span) of each embedded entity, in embedding order
        self.assignments: list[list[int]] = []    # the cluster id of each entity, one list per clustering

    def to(self, device):
        self.device = torch.device(device)
        self.head.to(self.device)

    def parameters(self):
        return list(self.head.parameters())

    @torch.no_grad()
    def cluster(self, model, epoch: int = 0, dev_f1: float | None = None) -> dict:
        """(Re-)cluster the entities with ``model``; returns the statistics it records."""
        was_training = model.training
        model.eval()
        start = time.perf_counter()
        emb, index = model.span_embeddings(self.records, batch_size=self.batch_size)
        model.train(was_training)
        emb = emb.to(self.device)
        km = kmeans(emb, self.k, n_init=self.restarts, seed=self.seed + self.n_clusterings)
        labels, centers = km.labels, km.centers
        if self.centers is not None and self.head_follow == "align":
            perm = align_clusters(self.centers, centers).to(labels.device)
            labels = perm[labels]
            reordered = torch.empty_like(centers)
            reordered[perm] = centers
            centers = reordered
        elif self.centers is not None:  # reinit: a fresh head for the fresh ids
            bound = 1 / math.sqrt(self.head.in_features)
            self.head.weight.uniform_(-bound, bound)
            self.head.bias.zero_()
        alpha, v = variance_weights(emb, labels, centers, mode=self.variance)
        flat = torch.tensor([self.offsets[r].item() + s for r, s in index], dtype=torch.long)
        self.labels[flat] = labels.cpu()
        self.alpha = alpha.to(self.device)
        self.centers = centers
        self.n_clusterings += 1
        self.entity_index = [[int(r), int(sp)] for r, sp in index]
        self.assignments.append(labels.cpu().tolist())
        sizes = torch.bincount(labels, minlength=self.k).tolist()
        entry = {"epoch": epoch, "dev_f1": dev_f1, "entities": int(emb.shape[0]), "inertia": km.inertia,
                 "kmeans_iterations": km.n_iter, "sizes": sizes, "variance": v.tolist(),
                 "alpha": alpha.tolist(), "seconds": round(time.perf_counter() - start, 3)}
        self.history.append(entry)
        return entry

    def extra_loss(self, model, batch, outputs):
        if "entity_batch_index" not in batch or batch["entity_batch_index"].numel() == 0:
            return None
        e = model.pool_spans(outputs["hidden"], batch)
        rec = batch["entity_record_index"].cpu()
        span = batch["entity_span_index"].cpu()
        y = self.labels[self.offsets[rec] + span].to(e.device)
        keep = y >= 0
        if not bool(keep.any()):
            return None
        logits = self.head(e[keep].to(self.head.weight.dtype))
        return self.gamma * weighted_cluster_loss(logits, y[keep], self.alpha)

    def on_epoch_end(self, epoch, model, dev_metrics, is_best):
        self.cluster(model, epoch=epoch, dev_f1=dev_metrics.get("f1"))
        return None

    def state_dict(self):
        return {"head": {k: v.cpu() for k, v in self.head.state_dict().items()}, "labels": self.labels,
                "alpha": self.alpha.cpu(), "centers": None if self.centers is None else self.centers.cpu(),
                "n_clusterings": self.n_clusterings, "history": self.history,
                "entity_index": self.entity_index, "assignments": self.assignments}

    def load_state_dict(self, state):
        self.head.load_state_dict(state["head"])
        self.head.to(self.device)
        self.labels = state["labels"]
        self.alpha = state["alpha"].to(self.device)
        self.centers = None if state["centers"] is None else state["centers"].to(self.device)
        self.n_clusterings = state["n_clusterings"]
        self.history = state["history"]
        self.entity_index = state.get("entity_index", [])
        self.assignments = state.get("assignments", [])

    def clusters_file(self, best_epoch: int | None) -> dict:
        """What ``clusters.json`` holds: every clustering's assignment of the entities, and which
        one the best epoch trained with (epoch e trains with the clustering made after epoch e-1;
        the first, "epoch 0", is made with the model FET starts from)."""
        entities = [[r, sp, *self.records[r]["spans"][sp]] for r, sp in self.entity_index]
        epochs = [h["epoch"] for h in self.history]
        trained_with = epochs.index(best_epoch - 1) if best_epoch and (best_epoch - 1) in epochs else None
        return {"k": self.k, "entities": entities, "entity_fields": ["record", "span", "start", "end", "type"],
                "record_ids": [r.get("id") for r in self.records], "clusterings": [
                    {"epoch": e, "labels": labels} for e, labels in zip(epochs, self.assignments)],
                "best_epoch": best_epoch, "best_epoch_trained_with": trained_with}


# --------------------------------------------------------------------------- stage runners

def run_summary(result, attempts: list | None = None) -> dict:
    """The engine's TrainResult as the fields of a stage report (``attempts``: the runs
    :func:`train_until_learning` made before this one, none where it learned at once)."""
    return {"attempts": attempts or [], "best_f1": result.best_f1, "best_epoch": result.best_epoch,
            "best_metrics": result.best_metrics,
            "history": result.history, "tokens_per_second": result.tokens_per_second,
            "train_seconds": result.train_seconds, "steps": result.steps, "best_dir": result.best_dir,
            "precision": result.precision, "num_threads": result.num_threads, "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early, "dev_sentence_counts": result.best_sentence_counts}


RETRY_FILE = "retry.json"


def train_until_learning(model, train_records, dev_records, config: TrainConfig, out_dir, make_hooks=None,
                         resume: bool = False):
    """:func:`~cofee_lib.engine.train`, trained again where the stage has not started to learn.

    A run whose best dev F1 ends below ``config.min_dev_f1`` (a small share of D_s gives a few
    steps per epoch, and a model that has not yet pushed any span past the 0.5 threshold scores
    ~0) is trained again from the weights it started with, with ``min_steps`` doubled (at least
    twice the steps it took), at most ``config.retries`` times. The last attempt is the result,
    even if it is not better: each attempt is selected on dev, and the earlier ones are recorded
    (``attempts``: their ``min_steps``, ``steps`` and best dev F1; their logs as
    ``log.attempt<N>.jsonl``). ``make_hooks(fresh)`` builds the stage's hooks for each attempt
    (``fresh``: not resuming a checkpoint). Returns ``(result, hooks, attempts)``.

    ``resume`` continues the attempt that was running (``retry.json`` records which).
    """
    out_dir = Path(out_dir)
    retry_path = out_dir / RETRY_FILE
    attempts: list[dict] = []
    if resume and retry_path.exists():
        try:
            saved = json.loads(retry_path.read_text(encoding="utf-8"))
            attempts, min_steps = list(saved["attempts"]), int(saved["min_steps"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CofeeError(f"{retry_path}: expected the retry state this kit writes (a JSON object with "
                             f"'min_steps' and 'attempts'), could not read it ({exc}); start the stage again "
                             f"without --resume") from None
        config = dataclasses.replace(config, min_steps=min_steps)
    start = ({k: v.detach().clone() for k, v in model.state_dict().items()}
             if config.min_dev_f1 > 0 and len(attempts) < config.retries else None)
    while True:
        fresh = not (resume and find_checkpoint(out_dir) is not None)
        hooks = make_hooks(fresh) if make_hooks is not None else None
        result = train(model, train_records, dev_records, config, out_dir, hooks=hooks, resume=resume and not fresh,
                       overwrite=bool(attempts))
        if result.best_f1 >= config.min_dev_f1 or len(attempts) >= config.retries or start is None:
            break
        attempts.append({"attempt": len(attempts) + 1, "min_steps": config.min_steps, "steps": result.steps,
                         "epochs_run": result.epochs_run, "best_f1": result.best_f1, "best_epoch": result.best_epoch})
        print(f"{out_dir.name}: best dev F1 {result.best_f1:.3f} < min_dev_f1 {config.min_dev_f1:g} after "
              f"{result.steps} steps: training again from the start with min_steps "
              f"{2 * max(config.min_steps, result.steps)}", flush=True)
        if (out_dir / "log.jsonl").exists():
            (out_dir / "log.jsonl").replace(out_dir / f"log.attempt{len(attempts)}.jsonl")
        config = dataclasses.replace(config, min_steps=2 * max(config.min_steps, result.steps))
        with atomic_open(retry_path) as fh:
            json.dump({"min_steps": config.min_steps, "attempts": attempts}, fh)
        model.load_state_dict(start)
        resume = False
    retry_path.unlink(missing_ok=True)
    return result, hooks, attempts


def run_esi(model, d_g: list[dict], dev: list[dict], config: TrainConfig, out_dir, resume: bool = False) -> dict:
    """Stage 1: train ``model`` (built for the single type ``Entity``) on D_g; select on untyped dev F1."""
    out_dir = Path(out_dir)
    train_records = as_untyped(d_g)
    dev_records = as_untyped(dev)
    result, _, attempts = train_until_learning(model, train_records, dev_records, config, out_dir, resume=resume)
    report = {"stage": "esi", "train": label_set_stats(train_records, [ESI_TYPE]),
              "dev_sentences": len(dev_records), **run_summary(result, attempts)}
    write_report(out_dir / "report.json", report)
    return report


def run_nee(model, d_s: list[dict], dev: list[dict], config: TrainConfig, out_dir, settings: StageSettings,
            gold_for_d_s: list[dict] | None = None, resume: bool = False) -> dict:
    """Stage 2: NEE with iterative self-picking; writes ``ds_best.jsonl`` (D_s^best) beside ``best/``."""
    out_dir = Path(out_dir)

    def make_hook(fresh):
        return SelfPicking(d_s, model.types, settings.delta, settings.relabel, gold_for_d_s,
                           batch_size=config.eval_batch_size, pick_when_dev_zero=settings.pick_when_dev_zero)

    result, hook, attempts = train_until_learning(model, d_s, keep_types(dev, model.types), config, out_dir,
                                                  make_hook, resume=resume)
    write_jsonl(out_dir / "ds_best.jsonl", hook.best)
    report = {"stage": "nee", "delta": settings.delta, "relabel": settings.relabel,
              "gazetteer_labels": label_set_stats(d_s, model.types),
              "best_label_set": label_set_stats(hook.best, model.types),
              "iterations": hook.history, **run_summary(result, attempts)}
    write_report(out_dir / "report.json", report)
    return report


def run_nee_without_picking(model, d_s: list[dict], dev: list[dict], config: TrainConfig, out_dir,
                            resume: bool = False) -> dict:
    """Table 3's MRC-NER row: NEE on the gazetteer labels of D_s, no self-picking (D_s^best = D_s)."""
    out_dir = Path(out_dir)
    result, _, attempts = train_until_learning(model, d_s, keep_types(dev, model.types), config, out_dir,
                                               resume=resume)
    write_jsonl(out_dir / "ds_best.jsonl", d_s)
    report = {"stage": "nee", "self_picking": False, "gazetteer_labels": label_set_stats(d_s, model.types),
              **run_summary(result, attempts)}
    write_report(out_dir / "report.json", report)
    return report


def run_fet(model, ds_best: list[dict], dev: list[dict], config: TrainConfig, out_dir, settings: StageSettings,
            resume: bool = False) -> dict:
    """Stage 3: FET on D_s^best with L_MRC + gamma * L_clus, re-clustering every epoch."""
    out_dir = Path(out_dir)

    def make_hook(fresh):
        hook = FineGrainedTyping(ds_best, model.hidden_size, settings.k, settings.gamma, settings.variance,
                                 settings.head_follow, settings.kmeans_restarts, seed=config.seed,
                                 batch_size=config.eval_batch_size)
        if fresh:
            hook.to(hook.device)
            hook.cluster(model, epoch=0)  # Algorithm 1, line 15: cluster with theta_best
        return hook

    result, hook, attempts = train_until_learning(model, ds_best, keep_types(dev, model.types), config, out_dir,
                                                  make_hook, resume=resume)
    write_report(out_dir / "clusters.json", hook.clusters_file(result.best_epoch))
    report = {"stage": "fet", "k": settings.k, "gamma": settings.gamma, "variance": settings.variance,
              "head_follow": settings.head_follow, "train": label_set_stats(ds_best, model.types),
              "clusterings": hook.history, **run_summary(result, attempts)}
    write_report(out_dir / "report.json", report)
    return report
