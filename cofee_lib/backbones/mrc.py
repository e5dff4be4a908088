"""MRC-NER backbone (paper Sec. 3, Eq. 1-5).

Input ``[CLS] query [SEP] context [SEP]`` (the tokenizer's own pair encoding,
so token type ids are what the model expects), one feature per (record, type,
window). Two heads on the last layer, each d x 2 with softmax: P(start) and
P(end) of every context token (Eq. 1-2). Labels and decisions sit on the first
sub-token of each context word; the loss is CE_start + CE_end, each averaged
over those positions only (query, [CLS], [SEP], padding and non-first
sub-tokens are ignored), Eq. 3-5.

Start and end labels are independent per word: a gold span whose start lies
in a window and whose end lies in the next is still a start in the first and
an end in the second. Decoding (:func:`~cofee_lib.backbones.decoding.decode_start_end`)
runs on record-level probabilities, each word's taken from the window where it
is most central.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..errors import CofeeError
from .base import CONFIG_NAME, DEFAULT_MAX_LEN, DEFAULT_MAX_SPAN_LEN, DEFAULT_STRIDE, read_config
from .decoding import decode_start_end
from .transformer import TransformerBackbone

log = logging.getLogger("cofee")


class MRCBackbone(TransformerBackbone):
    """MRC-NER: query-conditioned start/end prediction (see module doc)."""

    kind = "mrc"
    _LABEL_KEYS = ("start_labels", "end_labels")

    def __init__(self, encoder, tokenizer, types, queries: dict, max_len: int = DEFAULT_MAX_LEN,
                 stride: int = DEFAULT_STRIDE, max_span_len: int = DEFAULT_MAX_SPAN_LEN,
                 dropout: float = 0.1, encoder_name: str = ""):
        super().__init__(encoder, tokenizer, types, max_len=max_len, stride=stride, dropout=dropout,
                         encoder_name=encoder_name)
        missing = [t for t in self.types if not str(queries.get(t, "")).strip()]
        if missing:
            raise CofeeError(f"no query for entity type(s) {missing}; pass queries={{type: query}}")
        self.queries = {t: str(queries[t]) for t in self.types}
        self.max_span_len = int(max_span_len)
        d = self.hidden_size
        self.start_head = torch.nn.Linear(d, 2)    # W_s in R^{d x 2}, b_s in R^2 (Eq. 1)
        self.end_head = torch.nn.Linear(d, 2)      # W_e, b_e (Eq. 2)

    @classmethod
    def build(cls, types, model="tiny", queries=None, max_len=DEFAULT_MAX_LEN, stride=DEFAULT_STRIDE,
              max_span_len=DEFAULT_MAX_SPAN_LEN, dropout=0.1, records=None, seed=0, **kw):
        from ..encoders import load_encoder
        from ..queries import queries_for_types

        types = [str(t) for t in types]
        if queries is None:
            queries = queries_for_types(types)
        tiny_tokenizer = kw.pop("tiny_tokenizer", "auto")
        if kw:
            log.warning("%s backbone: ignoring options %s", cls.kind, sorted(kw))
        # a vocabulary built for "tiny" must hold the query words too
        vocab_records = list(records or []) + [{"tokens": str(queries[t]).split()} for t in types if t in queries]
        encoder, tokenizer, desc = load_encoder(model, records=vocab_records, seed=seed,
                                                tiny_tokenizer=tiny_tokenizer)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            m = cls(encoder, tokenizer, types, queries, max_len=max_len, stride=stride,
                    max_span_len=max_span_len, dropout=dropout, encoder_name=desc)
        # a kit MRC checkpoint: its start/end heads are type-independent, keep them
        path = Path(str(model))
        if path.is_dir() and (path / CONFIG_NAME).is_file():
            if read_config(path)["kind"] == "mrc" and m.load_heads(path, strict=False):
                m.encoder_name = f"{desc} (MRC heads kept)"
        return m

    @classmethod
    def _from_config(cls, encoder, tokenizer, cfg, name):
        return cls(encoder, tokenizer, cfg["types"], cfg["queries"], max_len=cfg["max_len"],
                   stride=cfg["stride"], max_span_len=cfg.get("max_span_len", DEFAULT_MAX_SPAN_LEN),
                   dropout=cfg.get("dropout", 0.1), encoder_name=cfg.get("encoder", name))

    def config_dict(self) -> dict:
        cfg = super().config_dict()
        cfg.update({"queries": dict(self.queries), "max_span_len": self.max_span_len,
                    "label_map": {"start": ["not-start", "start"], "end": ["not-end", "end"]}})
        return cfg

    # ------------------------------------------------------------------
    def _segments(self):
        return [(t, self.queries[t].split()) for t in self.types]

    def _labels(self, feat, rec, window, positions):
        typ = feat["type"]
        starts = {s for s, e, t in rec["spans"] if t == typ}
        ends = {e for s, e, t in rec["spans"] if t == typ}
        feat["start_labels"] = [(-100 if w < 0 else int(w in starts)) for w in positions]
        feat["end_labels"] = [(-100 if w < 0 else int(w in ends)) for w in positions]

    def _heads(self, hidden):
        return {"start_logits": self.start_head(hidden), "end_logits": self.end_head(hidden)}

    def _loss(self, logits, batch):
        dev = logits["start_logits"].device
        total = logits["start_logits"].new_zeros((), dtype=torch.float32)
        for key, lab in (("start_logits", "start_labels"), ("end_logits", "end_labels")):
            labels = batch[lab].to(dev).reshape(-1)
            lg = logits[key].float().reshape(-1, 2)
            if (labels != -100).any():
                total = total + torch.nn.functional.cross_entropy(lg, labels, ignore_index=-100)
            else:
                total = total + lg.sum() * 0.0
        return total

    def _feature_scores(self, logits):
        return {"start": logits["start_logits"].float().softmax(-1)[..., 1].cpu(),
                "end": logits["end_logits"].float().softmax(-1)[..., 1].cpu()}

    def _decode(self, rec_scores, n_words, threshold):
        spans = []
        for seg, typ in enumerate(self.types):
            sc = rec_scores.get(seg)
            if sc is None or n_words == 0:
                continue
            for s, e in decode_start_end(sc["start"].tolist(), sc["end"].tolist(), threshold, self.max_span_len):
                spans.append([s, e, typ])
        return sorted(spans)

    def _span_confidence(self, rec_scores, start, end, typ):
        """min(P(start) of the first word, P(end) of the last word): both must pass the threshold
        for the span to be decoded, so the span is one that any threshold below it lets through
        on its own (lower thresholds may add candidates that pair differently)."""
        sc = rec_scores[self.types.index(typ)]
        return float(min(sc["start"][start], sc["end"][end]))

    def _embedding_records(self, records):
        # spans of a type the model has no query for are encoded with the first type's query
        known = set(self.types)
        out = []
        for rec in records:
            if all(t in known for _, _, t in rec["spans"]):
                out.append(rec)
            else:
                out.append({**rec, "spans": [[s, e, t if t in known else self.types[0]] for s, e, t in rec["spans"]]})
        return out
