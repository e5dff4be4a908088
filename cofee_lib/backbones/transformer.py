"""What the two transformer backbones (MRC-NER and the BIO tagger) share.

Windowing, tokenisation with word alignment, padding, length-sorted batched
prediction, span embeddings and checkpoints. The subclasses say what a
"segment" is (MRC: one per entity type, with its query; tagger: one, no
query), which labels a feature carries, the heads, the loss and the decoder.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import torch

from ..cache import atomic_dir
from ..errors import CofeeError
from ..manifest import write_manifest
from ..settings import DEFAULT_THRESHOLD
from .base import CONFIG_NAME, DEFAULT_MAX_LEN, DEFAULT_STRIDE, HEADS_NAME, Backbone, progress_bar
from .windows import plan_windows, span_window, word_windows

log = logging.getLogger("cofee")


class TransformerBackbone(Backbone):
    """An encoder (``AutoModel``) + tokenizer + task heads; see the subclasses."""

    def __init__(self, encoder, tokenizer, types, max_len: int = DEFAULT_MAX_LEN,
                 stride: int = DEFAULT_STRIDE, dropout: float = 0.1, encoder_name: str = ""):
        super().__init__(types, max_len=max_len, stride=stride)
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.encoder_name = encoder_name
        self.dropout = torch.nn.Dropout(float(dropout))
        self.dropout_p = float(dropout)
        limit = getattr(encoder.config, "max_position_embeddings", None)
        if limit:
            # RoBERTa-style models reserve positions for padding
            offset = 2 if getattr(encoder.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else 0
            if self.max_len > limit - offset:
                log.warning("max_len %d exceeds what %s can encode; using %d", self.max_len,
                            encoder_name or "the encoder", limit - offset)
                self.max_len = limit - offset
        self._uses_token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    # ------------------------------------------------------------- subclass API
    def _segments(self) -> list[tuple[str | None, list[str] | None]]:
        """[(type or None, query words or None)]: one feature family per segment."""
        raise NotImplementedError

    def _labels(self, feature: dict, rec: dict, window, positions: list[int]) -> None:
        """Add label lists to ``feature`` (positions: record word index per token, -1 if none)."""
        raise NotImplementedError

    def _heads(self, hidden):
        """Task logits from the last layer: a dict of tensors."""
        raise NotImplementedError

    def _loss(self, logits: dict, batch: dict):
        raise NotImplementedError

    def _decode(self, rec_scores: dict, n_words: int, threshold: float) -> list[list]:
        raise NotImplementedError

    def _feature_scores(self, logits: dict) -> dict:
        """Per-token scores to merge across windows (float32 CPU tensors [B, T, ...])."""
        raise NotImplementedError

    def _span_confidence(self, rec_scores: dict, start: int, end: int, typ: str) -> float:
        """The confidence of one decoded span, from the record's word scores (see the subclasses)."""
        raise NotImplementedError

    # ------------------------------------------------------------ featurize
    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    def _word_lengths(self, token_lists: list[list[str]]) -> tuple[list[list[str]], list[list[int]]]:
        """Sub-token count of every word. Words the tokenizer turns into nothing
        (empty strings, control characters) are replaced by the unknown token so
        that every word has a first sub-token to carry its label."""
        unk = self.tokenizer.unk_token or "[UNK]"
        cleaned, lengths = [], []
        chunk = 512
        for i in range(0, len(token_lists), chunk):
            part = [t if t else [] for t in token_lists[i:i + chunk]]
            enc = self.tokenizer([p if p else [unk] for p in part], is_split_into_words=True,
                                 add_special_tokens=False)
            for j, words in enumerate(part):
                counts = [0] * len(words)
                if words:
                    for wid in enc.word_ids(j):
                        if wid is not None:
                            counts[wid] += 1
                fixed = [w if c > 0 else unk for w, c in zip(words, counts)]
                cleaned.append(fixed)
                lengths.append([c if c > 0 else 1 for c in counts])
        return cleaned, lengths

    def _featurize(self, records, train: bool, entity_mode: str | None) -> list[dict]:
        """Features for records; ``entity_mode``: None, "whole" (spans held whole by a
        window, each once) or "pieces" (also split spans no window holds whole)."""
        records = list(records)
        words, lengths = self._word_lengths([r["tokens"] for r in records])
        segments = self._segments()
        pair = any(q is not None for _, q in segments)
        n_special = self.tokenizer.num_special_tokens_to_add(pair=pair)
        features: list[dict] = []
        stats = {"records": len(records), "windowed_records": 0, "windows": 0, "features": 0}
        for seg_index, (typ, query) in enumerate(segments):
            q_len = 0
            if query is not None:
                q_len = len(self.tokenizer(query, is_split_into_words=True, add_special_tokens=False)["input_ids"])
            budget = self.max_len - n_special - q_len
            if budget < 8:
                used = f"the query for {typ!r} takes {q_len} sub-tokens and " if query is not None else ""
                raise CofeeError(f"max_len={self.max_len} is too small: {used}{n_special} special tokens leave "
                                 f"{budget} sub-tokens for the context (at least 8 needed); raise --max-len"
                                 + (" or shorten the query" if query is not None else ""))
            overlap = max(0, min(self.stride, budget - 1))
            jobs = []   # (record index, window)
            plans = []
            for ri, lens in enumerate(lengths):
                wins = plan_windows(lens, budget, overlap)
                plans.append(wins)
                if seg_index == 0:
                    stats["windows"] += len(wins)
                    stats["windowed_records"] += len(wins) > 1
                jobs.extend((ri, wi) for wi in range(len(wins)))
            seg_features = self._encode_jobs(records, words, plans, jobs, typ, seg_index, query)
            if entity_mode:
                self._attach_entities(seg_features, records, plans, typ, entity_mode)
            features.extend(seg_features)
        stats["features"] = len(features)
        self.last_window_stats = stats
        if stats["windowed_records"]:
            log.info("%d of %d records longer than max_len=%d were split into windows (%d windows in all)",
                     stats["windowed_records"], stats["records"], self.max_len, stats["windows"])
        return features

    def _encode_jobs(self, records, words, plans, jobs, typ, seg_index, query) -> list[dict]:
        out = []
        chunk = 256
        for i in range(0, len(jobs), chunk):
            part = jobs[i:i + chunk]
            ctx = []
            for ri, wi in part:
                a, b = plans[ri][wi]
                w = words[ri][a:b]
                ctx.append(w if w else [self.tokenizer.unk_token])     # empty record: one [UNK]
            if query is not None:
                enc = self.tokenizer([query] * len(part), ctx, is_split_into_words=True,
                                     truncation="only_second", max_length=self.max_len)
                ctx_seq = 1
            else:
                enc = self.tokenizer(ctx, is_split_into_words=True, truncation=True, max_length=self.max_len)
                ctx_seq = 0
            for j, (ri, wi) in enumerate(part):
                a, b = plans[ri][wi]
                ids = enc["input_ids"][j]
                wids = enc.word_ids(j)
                sids = enc.sequence_ids(j)
                positions = [-1] * len(ids)
                last = [-1] * max(b - a, 0)
                prev = None
                for p, (wid, sid) in enumerate(zip(wids, sids)):
                    if sid != ctx_seq or wid is None or b == a:
                        prev = None
                        continue
                    if wid != prev:
                        positions[p] = a + wid
                    last[wid] = p
                    prev = wid
                feat = {"input_ids": ids, "record_index": ri, "window": [a, b], "word_index": positions,
                        "word_last": last, "n_useful": len(ids), "segment": seg_index}
                if self._uses_token_types and "token_type_ids" in enc:
                    feat["token_type_ids"] = enc["token_type_ids"][j]
                if typ is not None:
                    feat["type"] = typ
                self._labels(feat, records[ri], (a, b), positions)
                out.append(feat)
        return out

    def _attach_entities(self, feats, records, plans, typ, mode):
        by_key = {(f["record_index"], tuple(f["window"])): f for f in feats}
        for f in feats:
            f["entities"] = []
        for ri, rec in enumerate(records):
            wins = plans[ri]
            for si, (s, e, t) in enumerate(rec["spans"]):
                if typ is not None and t != typ:
                    continue
                wi = span_window(s, e, wins)
                if wi is not None:
                    f = by_key[(ri, tuple(wins[wi]))]
                    self._add_entity(f, s, e, si)
                elif mode == "pieces":
                    owners = word_windows(len(rec["tokens"]), wins)
                    w = s
                    while w <= e:
                        stop = w
                        while stop + 1 <= e and owners[stop + 1] == owners[w]:
                            stop += 1
                        f = by_key[(ri, tuple(wins[owners[w]]))]
                        self._add_entity(f, w, stop, si)
                        w = stop + 1

    @staticmethod
    def _add_entity(f, s, e, si):
        a = f["window"][0]
        first = f["word_index"].index(s) if s in f["word_index"] else -1
        last = f["word_last"][e - a] if 0 <= e - a < len(f["word_last"]) else -1
        if first < 0 or last < 0:       # cut by truncation of an over-long word
            return
        f["entities"].append((first, last, si))

    def featurize(self, records, train: bool) -> list[dict]:
        return self._featurize(records, train, "whole" if train else None)

    # -------------------------------------------------------------- collate
    _LABEL_KEYS: tuple = ()

    def collate(self, features: list[dict]) -> dict:
        T = max(len(f["input_ids"]) for f in features)
        B = len(features)
        ids = torch.full((B, T), self._pad_id, dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        word_index = torch.full((B, T), -1, dtype=torch.long)
        tt = torch.zeros((B, T), dtype=torch.long) if self._uses_token_types else None
        labels = {k: torch.full((B, T), -100, dtype=torch.long) for k in self._LABEL_KEYS if k in features[0]}
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            mask[i, :n] = 1
            word_index[i, :n] = torch.tensor(f["word_index"])
            if tt is not None and "token_type_ids" in f:
                tt[i, :n] = torch.tensor(f["token_type_ids"])
            for k, v in labels.items():
                v[i, :n] = torch.tensor(f[k])
        batch = {"input_ids": ids, "attention_mask": mask, "word_index": word_index,
                 "record_index": torch.tensor([f["record_index"] for f in features]),
                 "segment": torch.tensor([f["segment"] for f in features]),
                 "n_useful": torch.tensor(sum(f["n_useful"] for f in features))}
        if tt is not None:
            batch["token_type_ids"] = tt
        batch.update(labels)
        if any("entities" in f for f in features):
            eb, es, ee, er, ei = [], [], [], [], []
            for i, f in enumerate(features):
                for first, last, si in f.get("entities", ()):
                    eb.append(i)
                    es.append(first)
                    ee.append(last)
                    er.append(f["record_index"])
                    ei.append(si)
            for key, vals in (("entity_batch_index", eb), ("entity_start", es), ("entity_end", ee),
                              ("entity_record_index", er), ("entity_span_index", ei)):
                batch[key] = torch.tensor(vals, dtype=torch.long)
        return batch

    # -------------------------------------------------------------- forward
    def encode(self, batch: dict) -> torch.Tensor:
        dev = self.device
        kwargs = {"input_ids": batch["input_ids"].to(dev), "attention_mask": batch["attention_mask"].to(dev)}
        if "token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["token_type_ids"].to(dev)
        return self.encoder(**kwargs).last_hidden_state

    def forward(self, batch: dict, return_hidden: bool = False) -> dict:
        hidden = self.encode(batch)
        logits = self._heads(self.dropout(hidden))
        out = dict(logits)
        if any(k in batch for k in self._LABEL_KEYS):
            out["loss"] = self._loss(logits, batch)
        if return_hidden:
            out["hidden"] = hidden
        return out

    # -------------------------------------------------------------- predict
    @torch.no_grad()
    def predict(self, records, threshold: float = DEFAULT_THRESHOLD, batch_size: int = 32, progress: bool = False):
        records = list(records)
        scores = self.word_scores(records, batch_size=batch_size, progress=progress)
        return self.decode_scores(scores, records, threshold)

    @torch.no_grad()
    def predict_with_confidence(self, records, threshold: float = DEFAULT_THRESHOLD, batch_size: int = 32,
                                progress: bool = False):
        records = list(records)
        scores = self.word_scores(records, batch_size=batch_size, progress=progress)
        spans = self.decode_scores(scores, records, threshold)
        return [[[s, e, t, self._span_confidence(sc, s, e, t)] for s, e, t in rec_spans]
                for sc, rec_spans in zip(scores, spans)]

    @torch.no_grad()
    def word_scores(self, records, batch_size: int = 32, progress: bool = False) -> list[dict]:
        """Per record, per segment (MRC: type index; tagger: 0): word-level score
        tensors (MRC ``start``/``end`` probabilities [n_words]; tagger ``logp``
        [n_words, n_labels]), each word's taken from the window where it is most central."""
        records = list(records)
        was_training = self.training
        self.eval()
        feats = self._featurize(records, train=False, entity_mode=None)
        n_batches = math.ceil(len(feats) / batch_size) if feats else 0

        def scored():
            for idx, batch in progress_bar(self._batches(feats, batch_size), n_batches, "predict", progress):
                with self.autocast():
                    logits = self._heads(self.encode(batch))
                yield idx, self._feature_scores(logits)

        try:
            return self.merge_scores(records, feats, scored())
        finally:
            self.train(was_training)

    def merge_scores(self, records, feats, scored) -> list[dict]:
        """Merge per-token scores of window features into record-level word scores.

        ``scored`` yields ``(feature indices, {name: tensor [B, T, ...]})``; a
        word's scores are taken at its first sub-token in the window where it is
        most central (see :mod:`.windows`). Words no window scored stay 0.
        """
        out = [dict() for _ in records]
        best = [dict() for _ in records]
        for idx, scores in scored:
            for row, fi in enumerate(idx):
                f = feats[fi]
                ri, seg = f["record_index"], f["segment"]
                n = len(records[ri]["tokens"])
                if seg not in out[ri]:
                    out[ri][seg] = {k: torch.zeros((n, *v.shape[2:])) for k, v in scores.items()}
                    best[ri][seg] = torch.full((n,), -1, dtype=torch.long)
                a, b = f["window"]
                pos = [(p, w) for p, w in enumerate(f["word_index"]) if w >= 0]
                if not pos:
                    continue
                p_idx = torch.tensor([p for p, _ in pos])
                w_idx = torch.tensor([w for _, w in pos])
                cent = torch.minimum(w_idx - a, (b - 1) - w_idx)
                take = cent > best[ri][seg][w_idx]
                if take.any():
                    best[ri][seg][w_idx[take]] = cent[take]
                    for k, v in scores.items():
                        out[ri][seg][k][w_idx[take]] = v[row, p_idx[take]].float()
        return out

    def decode_scores(self, scores: list[dict], records, threshold: float = DEFAULT_THRESHOLD) -> list[list[list]]:
        """Word-level spans from :meth:`word_scores` / :meth:`merge_scores` output."""
        return [self._decode(sc, len(rec["tokens"]), threshold) for sc, rec in zip(scores, records)]

    @torch.no_grad()
    def span_embeddings(self, records, batch_size: int = 32):
        records = list(records)
        prepared = self._embedding_records(records)
        feats = self._featurize(prepared, train=False, entity_mode="pieces")
        return self._pool_entities(records, feats, batch_size)

    def _embedding_records(self, records):
        return records

    # ---------------------------------------------------------- checkpoints
    def _head_state(self) -> dict:
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()
                if not k.startswith("encoder.")}

    def config_dict(self) -> dict:
        cfg = super().config_dict()
        cfg.update({"encoder": self.encoder_name, "dropout": self.dropout_p,
                    "hidden_size": self.hidden_size})
        return cfg

    def save_pretrained(self, directory) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        with atomic_dir(directory) as tmp:  # written beside, renamed into place: never half a model
            from ..encoders import quiet_transformers

            with quiet_transformers():
                self.encoder.save_pretrained(str(tmp))
                self.tokenizer.save_pretrained(str(tmp))
            save_file(self._head_state(), str(tmp / HEADS_NAME))
            (tmp / CONFIG_NAME).write_text(json.dumps(self.config_dict(), indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
            write_manifest(tmp)

    def load_heads(self, directory, strict: bool = True) -> bool:
        """Load ``cofee_heads.safetensors`` from ``directory``; with ``strict=False``
        return False (and load nothing) if the shapes do not match."""
        from safetensors.torch import load_file

        path = Path(directory) / HEADS_NAME
        if not path.is_file():
            if strict:
                raise CofeeError(f"{directory}: missing {HEADS_NAME}")
            return False
        state = load_file(str(path))
        own = self._head_state()
        if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
            if strict:
                raise CofeeError(f"{path}: head weights do not match this model "
                                 f"(expected {sorted(own)}, found {sorted(state)})")
            return False
        self.load_state_dict(state, strict=False)
        return True

    @classmethod
    def from_pretrained(cls, directory, cfg: dict):
        from ..encoders import load_local

        encoder, tokenizer = load_local(directory)
        model = cls._from_config(encoder, tokenizer, cfg, str(directory))
        model.load_heads(directory, strict=True)
        return model
