"""BiLSTM-CRF baseline (Huang et al., 2015; Table 2).

Words only, no sub-tokens: a word embedding (vocabulary of lower-cased
training words; unknown words map to ``<unk>``), a character CNN over the
cased characters of each word (so case and shape survive lower-casing and
unknown words still get a representation), a bidirectional LSTM, a linear
layer to BIO emission scores over ``2 * len(types) + 1`` tags and a CRF
(``torchcrf.CRF`` from pytorch-crf; no hand-written Viterbi). One feature per
record (no windows: the LSTM has no length limit). The vocabularies are built
from the training records given to :meth:`BiLSTMCRFBackbone.build`
(``records=``); if none are given they are built on the first
``featurize(..., train=True)`` call (create the optimizer after that). They are
saved with the model (``vocab.json``). Span embeddings sum the BiLSTM states.
"""
from __future__ import annotations

import collections
import json
import logging
import math
from pathlib import Path

import torch

from ..cache import atomic_dir
from ..errors import CofeeError
from ..manifest import write_manifest
from ..settings import DEFAULT_THRESHOLD
from .base import CONFIG_NAME, DEFAULT_MAX_LEN, DEFAULT_STRIDE, Backbone, progress_bar
from .decoding import bio_labels, decode_bio, encode_bio

log = logging.getLogger("cofee")

WEIGHTS_NAME = "model.safetensors"
VOCAB_NAME = "vocab.json"
PAD, UNK = "<pad>", "<unk>"
MAX_WORD_CHARS = 20


def build_vocabularies(records, max_words: int = 50000, max_chars: int = 2000) -> tuple[list[str], list[str]]:
    """(lower-cased word vocabulary, cased character vocabulary), most frequent first
    (ties alphabetical), each starting with ``<pad>``, ``<unk>``."""
    words: collections.Counter = collections.Counter()
    chars: collections.Counter = collections.Counter()
    for rec in records:
        for w in rec["tokens"]:
            words[w.lower()] += 1
            chars.update(w[:MAX_WORD_CHARS])
    order = lambda c: [k for k, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]  # noqa: E731
    return [PAD, UNK] + order(words)[:max_words], [PAD, UNK] + order(chars)[:max_chars]


class BiLSTMCRFBackbone(Backbone):
    """Word + char-CNN embeddings, BiLSTM, CRF (see module doc)."""

    kind = "bilstm-crf"

    def __init__(self, types, word_vocab=None, char_vocab=None, word_dim: int = 100, char_dim: int = 30,
                 char_filters: int = 50, hidden: int = 200, dropout: float = 0.5, word_dropout: float = 0.05,
                 max_len: int = DEFAULT_MAX_LEN, stride: int = DEFAULT_STRIDE):
        from torchcrf import CRF

        super().__init__(types, max_len=max_len, stride=stride)
        self.labels = bio_labels(self.types)
        self.dims = {"word_dim": int(word_dim), "char_dim": int(char_dim), "char_filters": int(char_filters),
                     "hidden": int(hidden), "dropout": float(dropout), "word_dropout": float(word_dropout)}
        if hidden % 2:
            raise CofeeError(f"BiLSTM hidden size must be even (two directions), got {hidden}")
        self.word_vocab: list[str] | None = None
        self.char_vocab: list[str] | None = None
        self.char_cnn = torch.nn.Conv1d(char_dim, char_filters, kernel_size=3, padding=1)
        self.lstm = torch.nn.LSTM(word_dim + char_filters, hidden // 2, batch_first=True, bidirectional=True)
        self.drop = torch.nn.Dropout(dropout)
        self.emit = torch.nn.Linear(hidden, len(self.labels))
        self.crf = CRF(len(self.labels), batch_first=True)
        if word_vocab is not None:
            self.set_vocabularies(word_vocab, char_vocab)

    def set_vocabularies(self, word_vocab, char_vocab) -> None:
        """Install vocabularies and (re)create the embedding tables for them."""
        self.word_vocab, self.char_vocab = list(word_vocab), list(char_vocab)
        self._word_index = {w: i for i, w in enumerate(self.word_vocab)}
        self._char_index = {c: i for i, c in enumerate(self.char_vocab)}
        dev = self.emit.weight.device
        self.word_emb = torch.nn.Embedding(len(self.word_vocab), self.dims["word_dim"], padding_idx=0).to(dev)
        self.char_emb = torch.nn.Embedding(len(self.char_vocab), self.dims["char_dim"], padding_idx=0).to(dev)

    @classmethod
    def build(cls, types, model="none", queries=None, max_len=DEFAULT_MAX_LEN, stride=DEFAULT_STRIDE,
              records=None, seed=0, word_dim=100, char_dim=30, char_filters=50, hidden=200, dropout=0.5,
              word_dropout=0.05, max_span_len=None, **kw):
        if model not in (None, "none", "tiny"):
            log.info("bilstm-crf has no pretrained encoder; ignoring model=%r", model)
        if kw:
            log.warning("bilstm-crf backbone: ignoring options %s", sorted(kw))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            m = cls([str(t) for t in types], word_dim=word_dim, char_dim=char_dim, char_filters=char_filters,
                    hidden=hidden, dropout=dropout, word_dropout=word_dropout, max_len=max_len, stride=stride)
            if records is not None:
                m.set_vocabularies(*build_vocabularies(records))
        if records is None:
            log.warning("bilstm-crf built without records: its vocabulary will come from the first "
                        "featurize(train=True) call")
        return m

    @property
    def hidden_size(self) -> int:
        return self.dims["hidden"]

    # ---------------------------------------------------------------- features
    def featurize(self, records, train: bool) -> list[dict]:
        records = list(records)
        if self.word_vocab is None:
            if not train:
                raise CofeeError("bilstm-crf has no vocabulary yet: featurize training records first")
            self.set_vocabularies(*build_vocabularies(records))
        return self._featurize(records, "whole" if train else None)

    def _featurize(self, records, entity_mode):
        feats = []
        unk_w, unk_c = 1, 1
        for ri, rec in enumerate(records):
            toks = rec["tokens"] or [UNK]      # an empty record still gets one (ignored) position
            ids = [self._word_index.get(w.lower(), unk_w) for w in toks]
            chars = [[self._char_index.get(c, unk_c) for c in w[:MAX_WORD_CHARS]] or [unk_c] for w in toks]
            tags = encode_bio(len(rec["tokens"]), rec["spans"], self.types) or [0]
            f = {"input_ids": ids, "char_ids": chars, "record_index": ri, "n_useful": len(ids),
                 "labels": tags, "n_words": len(rec["tokens"])}
            if entity_mode:
                f["entities"] = [(int(s), int(e), si) for si, (s, e, _) in enumerate(rec["spans"])]
            feats.append(f)
        self.last_window_stats = {"records": len(records), "windowed_records": 0, "windows": len(records),
                                  "features": len(feats)}
        return feats

    def collate(self, features: list[dict]) -> dict:
        B = len(features)
        T = max(len(f["input_ids"]) for f in features)
        C = max(len(c) for f in features for c in f["char_ids"])
        ids = torch.zeros((B, T), dtype=torch.long)
        chars = torch.zeros((B, T, C), dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        labels = torch.zeros((B, T), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            mask[i, :n] = 1
            labels[i, :n] = torch.tensor(f["labels"])
            for j, c in enumerate(f["char_ids"]):
                chars[i, j, :len(c)] = torch.tensor(c)
        batch = {"input_ids": ids, "char_ids": chars, "attention_mask": mask, "labels": labels,
                 "record_index": torch.tensor([f["record_index"] for f in features]),
                 "n_useful": torch.tensor(sum(f["n_useful"] for f in features))}
        if any("entities" in f for f in features):
            ent = [(i, s, e, f["record_index"], si) for i, f in enumerate(features) for s, e, si in f.get("entities", ())]
            cols = list(zip(*ent)) if ent else [(), (), (), (), ()]
            for key, vals in zip(("entity_batch_index", "entity_start", "entity_end", "entity_record_index",
                                  "entity_span_index"), cols):
                batch[key] = torch.tensor(list(vals), dtype=torch.long)
        return batch

    # ----------------------------------------------------------------- model
    def encode(self, batch) -> torch.Tensor:
        """BiLSTM states [B, T, hidden]."""
        dev = self.device
        ids = batch["input_ids"].to(dev)
        chars = batch["char_ids"].to(dev)
        mask = batch["attention_mask"].to(dev)
        if self.training and self.dims["word_dropout"] > 0:
            drop = (torch.rand(ids.shape, device=dev) < self.dims["word_dropout"]) & (ids > 1)
            ids = ids.masked_fill(drop, 1)
        B, T, C = chars.shape
        ce = self.char_emb(chars.view(B * T, C)).transpose(1, 2)          # [BT, char_dim, C]
        ce = self.char_cnn(ce).masked_fill((chars.view(B * T, 1, C) == 0), -1e4).max(dim=2).values
        ce = ce.masked_fill(ce <= -1e4 + 1, 0.0).view(B, T, -1)
        x = self.drop(torch.cat([self.word_emb(ids), ce], dim=-1))
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        return out

    def forward(self, batch: dict, return_hidden: bool = False) -> dict:
        if self.word_vocab is None:
            raise CofeeError("bilstm-crf has no vocabulary yet: featurize training records first")
        hidden = self.encode(batch)
        emissions = self.emit(self.drop(hidden)).float()
        out = {"emissions": emissions}
        if "labels" in batch:
            mask = batch["attention_mask"].to(emissions.device).bool()
            out["loss"] = -self.crf(emissions, batch["labels"].to(emissions.device), mask=mask,
                                    reduction="token_mean")
        if return_hidden:
            out["hidden"] = hidden
        return out

    @torch.no_grad()
    def predict(self, records, threshold: float = DEFAULT_THRESHOLD, batch_size: int = 32, progress: bool = False):
        records = list(records)
        was = self.training
        self.eval()
        feats = self._featurize(records, None)
        result = [[] for _ in records]
        try:
            n_batches = math.ceil(len(feats) / batch_size)
            for idx, batch in progress_bar(self._batches(feats, batch_size), n_batches, "predict", progress):
                with self.autocast():
                    hidden = self.encode(batch)
                    emissions = self.emit(hidden).float()
                paths = self.crf.decode(emissions, mask=batch["attention_mask"].to(emissions.device).bool())
                for fi, tags in zip(idx, paths):
                    n = feats[fi]["n_words"]
                    result[feats[fi]["record_index"]] = sorted([s, e, t] for s, e, t in decode_bio(tags[:n], self.types))
        finally:
            self.train(was)
        return result

    @torch.no_grad()
    def span_embeddings(self, records, batch_size: int = 32):
        records = list(records)
        return self._pool_entities(records, self._featurize(records, "whole"), batch_size)

    # ------------------------------------------------------------ checkpoints
    def config_dict(self) -> dict:
        cfg = super().config_dict()
        cfg.update({"encoder": "none", "queries": None, "label_map": list(self.labels), **self.dims,
                    "vocab_file": VOCAB_NAME})
        return cfg

    def save_pretrained(self, directory) -> None:
        from safetensors.torch import save_file

        if self.word_vocab is None:
            raise CofeeError("bilstm-crf has no vocabulary yet: nothing to save")
        directory = Path(directory)
        with atomic_dir(directory) as tmp:  # written beside, renamed into place: never half a model
            save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp / WEIGHTS_NAME))
            (tmp / VOCAB_NAME).write_text(json.dumps({"words": self.word_vocab, "chars": self.char_vocab},
                                                     ensure_ascii=False) + "\n", encoding="utf-8")
            (tmp / CONFIG_NAME).write_text(json.dumps(self.config_dict(), indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
            write_manifest(tmp)

    @classmethod
    def from_pretrained(cls, directory, cfg: dict):
        from safetensors.torch import load_file

        directory = Path(directory)
        for name in (VOCAB_NAME, WEIGHTS_NAME):
            if not (directory / name).is_file():
                raise CofeeError(f"{directory}: missing {name} (a bilstm-crf model has {VOCAB_NAME}, "
                                 f"{WEIGHTS_NAME}, {CONFIG_NAME})")
        vocab = json.loads((directory / VOCAB_NAME).read_text(encoding="utf-8"))
        dims = {k: cfg[k] for k in ("word_dim", "char_dim", "char_filters", "hidden", "dropout", "word_dropout")
                if k in cfg}
        m = cls(cfg["types"], vocab["words"], vocab["chars"], max_len=cfg.get("max_len", DEFAULT_MAX_LEN),
                stride=cfg.get("stride", DEFAULT_STRIDE), **dims)
        m.load_state_dict(load_file(str(directory / WEIGHTS_NAME)))
        return m
