"""The backbone interface shared by the training engine and the stages.

A backbone is a ``torch.nn.Module`` that turns word-level records (see
:mod:`cofee_lib.records`: word indices, **inclusive** span ends) into model
features, computes a training loss, and predicts word-level spans. Three kinds:

* ``"mrc"``: MRC-NER (paper Sec. 3): ``[CLS] query [SEP] context [SEP]``, a
  start head and an end head (each d x 2, softmax), one feature per
  (record, type, window). Module :mod:`cofee_lib.backbones.mrc`.
* ``"tagger"``: BERT tagger / CoFEE-BERT: encoder + linear BIO classifier over
  ``2 * len(types) + 1`` tags, one feature per (record, window).
  Module :mod:`cofee_lib.backbones.tagger`.
* ``"bilstm-crf"``: the Table 2 baseline: word + character embeddings, BiLSTM,
  CRF (``pytorch-crf``); one feature per record. Module
  :mod:`cofee_lib.backbones.bilstm_crf`.

Conventions every backbone follows:

* Sub-word tokens are internal. Labels and decisions sit on the **first
  sub-token of each word**; everything returned is at word level.
* Contexts longer than ``max_len`` sub-tokens are split into overlapping
  windows of whole words (``stride`` = overlap in sub-tokens, rounded to
  whole words); never truncated. At prediction time each word's scores come
  from the window where that word is most central, and spans are decoded on the
  merged, record-level scores, so spans crossing a window border are kept.
* ``featurize`` returns plain dicts of python lists (cheap to pickle for
  DataLoader workers / DDP); ``collate`` pads dynamically and returns CPU
  tensors; ``forward`` moves the batch to the module's device itself.

Checkpoints (``save_pretrained``) are a directory holding the encoder in the
HuggingFace format (``config.json`` + ``model.safetensors``, loadable by
``AutoModel.from_pretrained``), the tokenizer files, the task heads in
``cofee_heads.safetensors`` and ``cofee.json`` (kind, types, queries, max_len,
stride, label map, kit version, ...), and ``cofee_manifest.json``: the
sha256 and size of every other file. :func:`cofee_lib.backbones.load_backbone` checks the
manifest (a truncated or overwritten file is refused, naming it) and reads the
model back in one call.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..errors import CofeeError
from ..settings import DEFAULT_THRESHOLD

log = logging.getLogger("cofee")

KINDS = ("mrc", "tagger", "bilstm-crf")
DEFAULT_MAX_LEN = 128       # sub-tokens per window, query and special tokens included
DEFAULT_STRIDE = 32         # overlap between consecutive windows, in sub-tokens (whole words)
DEFAULT_MAX_SPAN_LEN = 30   # longest span (in words) the MRC decoder returns
CONFIG_NAME = "cofee.json"
HEADS_NAME = "cofee_heads.safetensors"


def progress_bar(iterable, total, desc, enabled):
    """A tqdm bar over ``iterable`` (widgets in Jupyter, text elsewhere), or the iterable itself."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False)


class Backbone(torch.nn.Module):
    """Common base of the three backbones.

    Attributes: ``kind`` ("mrc" | "tagger" | "bilstm-crf"), ``types`` (entity
    types, e.g. ``["PER", "LOC", "ORG"]``), ``max_len``, ``stride``,
    ``use_bf16`` (set by the engine: prediction then runs under
    ``torch.autocast(bfloat16)``), ``hidden_size`` (d, the size of the
    states that :meth:`pool_spans` sums), ``last_window_stats`` (how many
    records / windows the last ``featurize`` call made).
    """

    kind: str = ""

    def __init__(self, types, max_len: int = DEFAULT_MAX_LEN, stride: int = DEFAULT_STRIDE):
        super().__init__()
        types = [str(t) for t in types]
        if not types:
            raise CofeeError("a backbone needs at least one entity type")
        if len(set(types)) != len(types):
            raise CofeeError(f"entity types must be unique, got {types}")
        self.types: list[str] = types
        self.max_len = int(max_len)
        self.stride = int(stride)
        self.use_bf16 = False
        self.last_window_stats: dict = {}

    # ----------------------------------------------------------------- interface
    def featurize(self, records: list[dict], train: bool) -> list[dict]:
        """Turn word-level records into model features (plain dicts of python lists).

        MRC: one feature per (record, type, window); tagger/bilstm: one per
        (record, window). Each feature has at least ``"input_ids"``
        (list[int]), ``"record_index"`` (int), ``"n_useful"`` (int,
        non-padding tokens) and the labels the loss needs; MRC features also
        ``"type"``. Contexts longer than the window are split into overlapping
        windows (never truncated). With ``train=True`` features carry
        ``"entities"``: ``(first_subtoken_index, last_subtoken_index_of_last_word,
        record_span_index)`` for the record's gold spans inside the window (MRC:
        of that feature's type); each span is listed in exactly one window (the
        one where it is most central), so FET never counts it twice.
        """
        raise NotImplementedError

    def collate(self, features: list[dict]) -> dict:
        """Pad to the longest feature in the batch; return CPU tensors.

        Includes ``"n_useful"`` (0-dim LongTensor, total non-padding tokens) and,
        when features have ``"entities"``, ``"entity_batch_index"``,
        ``"entity_start"``, ``"entity_end"`` (LongTensors, sub-token positions,
        inclusive end) plus ``"entity_record_index"`` and ``"entity_span_index"``
        (which record span each entity is).
        """
        raise NotImplementedError

    def forward(self, batch: dict, return_hidden: bool = False) -> dict:
        """Return ``{"loss": scalar}`` (+ ``"hidden"``: last-layer states [B, T, d])."""
        raise NotImplementedError

    def pool_spans(self, hidden: torch.Tensor, batch: dict) -> torch.Tensor:
        """Sum-pool ``hidden`` [B, T, d] over each entity's sub-tokens -> [M, d] float32.

        Uses ``batch["entity_batch_index"]``, ``["entity_start"]`` and
        ``["entity_end"]`` (inclusive). This is the paper's e_i (Sec. 4.3).
        """
        dev = hidden.device
        b = batch["entity_batch_index"].to(dev)
        start = batch["entity_start"].to(dev)
        end = batch["entity_end"].to(dev)
        if b.numel() == 0:
            return hidden.new_zeros((0, hidden.shape[-1]), dtype=torch.float32)
        csum = hidden.float().cumsum(dim=1)                      # [B, T, d]
        upto_end = csum[b, end]
        before = torch.where((start > 0).unsqueeze(-1), csum[b, (start - 1).clamp(min=0)],
                             torch.zeros_like(upto_end))
        return upto_end - before

    def _batches(self, features: list[dict], batch_size: int):
        """Prediction batches: features sorted by length (least padding), ``(indices, collated batch)``."""
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            yield idx, self.collate([features[j] for j in idx])

    @torch.no_grad()
    def _pool_entities(self, records: list[dict], feats: list[dict], batch_size: int):
        """Sum the pooled states of every record span over the features holding it (``span_embeddings``)."""
        keys = [(ri, si) for ri, rec in enumerate(records) for si in range(len(rec["spans"]))]
        slot = {k: i for i, k in enumerate(keys)}
        result = torch.zeros((len(keys), self.hidden_size), dtype=torch.float32)
        was_training = self.training
        self.eval()
        try:
            for _, batch in self._batches([f for f in feats if f.get("entities")], batch_size):
                with self.autocast():
                    hidden = self.encode(batch)
                pooled = self.pool_spans(hidden, batch).cpu()
                rows = torch.tensor([slot[(int(r), int(s))] for r, s in
                                     zip(batch["entity_record_index"], batch["entity_span_index"])], dtype=torch.long)
                result.index_add_(0, rows, pooled)
        finally:
            self.train(was_training)
        return result, keys

    @torch.no_grad()
    def predict(self, records, threshold: float = DEFAULT_THRESHOLD, batch_size: int = 32,
                progress: bool = False) -> list[list[list]]:
        """Word-level spans ``[start, end, type]`` (inclusive end) for each record.

        ``threshold`` is the start/end probability threshold of MRC (0.5 for
        prediction, delta for self-picking); taggers ignore it.
        """
        raise NotImplementedError

    def predict_with_confidence(self, records, threshold: float = DEFAULT_THRESHOLD, batch_size: int = 32,
                                progress: bool = False) -> list[list[list]]:
        """:meth:`predict`'s spans, each with its confidence: ``[start, end, type, confidence]``.

        The spans (and their order) are exactly :meth:`predict`'s; the confidence is read from
        the same scores after decoding (MRC: the lower of the span's start and end
        probabilities; tagger: the lowest probability of the tag chosen for one of its words).
        Backbones without per-entity probabilities (the BiLSTM-CRF) raise :class:`CofeeError`.
        """
        raise CofeeError(f"a {self.kind} model reports no per-entity confidence (its CRF decodes whole tag "
                         "sequences, with no probability per entity); MRC and tagger models do")

    @torch.no_grad()
    def span_embeddings(self, records, batch_size: int = 32) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Sum-pooled encoder states of every span of every record.

        Returns ``([M, d] float32 on CPU, [(record_index, span_index), ...])``
        in record order then span order. Every span is returned (a span longer
        than a window is pooled word by word over the windows that hold it).
        """
        raise NotImplementedError

    def save_pretrained(self, directory) -> None:
        """Write weights (safetensors), encoder config, tokenizer files and cofee.json."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def hidden_size(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def autocast(self):
        """``torch.autocast(bfloat16)`` when ``use_bf16`` is set, else a no-op context."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=bool(self.use_bf16))

    def config_dict(self) -> dict:
        """What ``cofee.json`` records (subclasses add their own keys)."""
        from .. import __version__

        return {"kind": self.kind, "types": list(self.types), "max_len": self.max_len,
                "stride": self.stride, "kit_version": __version__}


def read_config(directory) -> dict:
    """Read ``cofee.json`` of a saved backbone, with a clear error if it is not one."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CofeeError(f"{directory}: not a saved CoFEE model (no {CONFIG_NAME}); "
                         "pass a directory written by save_pretrained / cofee train")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CofeeError(f"{path}: not valid JSON ({exc.msg})") from None
    if cfg.get("kind") not in KINDS:
        raise CofeeError(f"{path}: unknown kind {cfg.get('kind')!r}; expected one of {', '.join(KINDS)}")
    return cfg
