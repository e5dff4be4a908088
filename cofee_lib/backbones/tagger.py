"""BERT tagger backbone (BERT-Tagger of Table 2; CoFEE-BERT when pre-trained by CoFEE).

The encoder + a linear classifier over ``2 * len(types) + 1`` BIO tags
(``O, B-T1, I-T1, B-T2, ...``) on the first sub-token of every word; other
sub-tokens, [CLS], [SEP] and padding are ignored (label -100). Same windowing
as MRC: each word's logits come from the window where it is most central, and
the record-level argmax tags are decoded with
:func:`~cofee_lib.backbones.decoding.decode_bio` (an ``I-X`` with nothing to
continue begins an entity, the conlleval repair). Nested or overlapping gold
spans cannot be expressed in BIO: the later one is left out of the labels.

``subtoken_labels`` says which sub-tokens carry a training label (a tagger
built from a saved kit tagger keeps the saved one unless told otherwise): ``"first"``
(the default, and what every result of the kit uses) labels only each word's
first sub-token; ``"all"`` also trains the other sub-tokens of a word, with
the word's tag turned from ``B-X`` into ``I-X`` (an ``I-X`` or ``O`` word keeps
its tag), as ``run_ner.py --label_all_tokens`` does. Decoding reads the first
sub-tokens in both cases, so the setting changes what the model learns, not
how its outputs are read; ``"all"`` is what makes the HuggingFace pipeline's
``aggregation_strategy="simple"``, which reads every sub-token, agree with the
kit on an exported model (:mod:`cofee_lib.backbones.export`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..errors import CofeeError
from .base import CONFIG_NAME, DEFAULT_MAX_LEN, DEFAULT_STRIDE, read_config
from .decoding import bio_labels, decode_bio, encode_bio
from .transformer import TransformerBackbone

log = logging.getLogger("cofee")

SUBTOKEN_LABELS = ("first", "all")   # which sub-tokens of a word carry a training label; see module doc


def continuation_tag(tag_id: int) -> int:
    """The tag a word's later sub-tokens get under ``subtoken_labels="all"``: ``B-X`` -> ``I-X``, else the same."""
    return tag_id + 1 if tag_id % 2 == 1 else tag_id


class TaggerBackbone(TransformerBackbone):
    """Encoder + BIO token classifier (see module doc)."""

    kind = "tagger"
    _LABEL_KEYS = ("labels",)

    def __init__(self, encoder, tokenizer, types, max_len: int = DEFAULT_MAX_LEN,
                 stride: int = DEFAULT_STRIDE, dropout: float = 0.1, encoder_name: str = "",
                 subtoken_labels: str = "first"):
        super().__init__(encoder, tokenizer, types, max_len=max_len, stride=stride, dropout=dropout,
                         encoder_name=encoder_name)
        if subtoken_labels not in SUBTOKEN_LABELS:
            raise CofeeError(f"subtoken_labels must be one of {', '.join(SUBTOKEN_LABELS)}, got {subtoken_labels!r}")
        self.subtoken_labels = subtoken_labels
        self.labels = bio_labels(self.types)
        self.classifier = torch.nn.Linear(self.hidden_size, len(self.labels))

    @classmethod
    def build(cls, types, model="tiny", queries=None, max_len=DEFAULT_MAX_LEN, stride=DEFAULT_STRIDE,
              dropout=0.1, records=None, seed=0, max_span_len=None, subtoken_labels=None, **kw):
        """A tagger over ``model``'s encoder; ``subtoken_labels`` None keeps a saved kit tagger's, else "first"."""
        from ..encoders import load_encoder

        if subtoken_labels is None:
            subtoken_labels = cls._saved_subtoken_labels(model)

        tiny_tokenizer = kw.pop("tiny_tokenizer", "auto")
        if kw:
            log.warning("%s backbone: ignoring options %s", cls.kind, sorted(kw))
        encoder, tokenizer, desc = load_encoder(model, records=records, seed=seed, tiny_tokenizer=tiny_tokenizer)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(encoder, tokenizer, [str(t) for t in types], max_len=max_len, stride=stride,
                       dropout=dropout, encoder_name=desc, subtoken_labels=subtoken_labels)

    @staticmethod
    def _saved_subtoken_labels(model) -> str:
        """The sub-token labelling of a kit tagger saved in folder ``model`` ("first" for anything else)."""
        folder = Path(str(model))
        if (folder / CONFIG_NAME).is_file():
            cfg = read_config(folder)
            if cfg.get("kind") == "tagger":
                return cfg.get("subtoken_labels", "first")
        return "first"

    @classmethod
    def _from_config(cls, encoder, tokenizer, cfg, name):
        return cls(encoder, tokenizer, cfg["types"], max_len=cfg["max_len"], stride=cfg["stride"],
                   dropout=cfg.get("dropout", 0.1), encoder_name=cfg.get("encoder", name),
                   subtoken_labels=cfg.get("subtoken_labels", "first"))

    def config_dict(self) -> dict:
        cfg = super().config_dict()
        cfg.update({"queries": None, "label_map": list(self.labels), "subtoken_labels": self.subtoken_labels})
        return cfg

    def _segments(self):
        return [(None, None)]

    def _labels(self, feat, rec, window, positions):
        tags = encode_bio(len(rec["tokens"]), rec["spans"], self.types)
        labels = [(-100 if w < 0 else tags[w]) for w in positions]
        if self.subtoken_labels == "all":   # the word's later sub-tokens: positions first+1 .. word_last
            a = window[0]
            for p, w in enumerate(positions):
                if w >= 0:
                    for q in range(p + 1, feat["word_last"][w - a] + 1):
                        labels[q] = continuation_tag(tags[w])
        feat["labels"] = labels

    def _heads(self, hidden):
        return {"logits": self.classifier(hidden)}

    def _loss(self, logits, batch):
        labels = batch["labels"].to(logits["logits"].device).reshape(-1)
        lg = logits["logits"].float().reshape(-1, len(self.labels))
        if not (labels != -100).any():
            return lg.sum() * 0.0
        return torch.nn.functional.cross_entropy(lg, labels, ignore_index=-100)

    def _feature_scores(self, logits):
        return {"logp": logits["logits"].float().log_softmax(-1).cpu()}

    def _span_confidence(self, rec_scores, start, end, typ):
        """The lowest, over the span's words, of the probability of the tag chosen for the word
        (its argmax tag, read at its first sub-token): the weakest decision the entity rests on."""
        logp = rec_scores[0]["logp"][start:end + 1]
        return float(logp.max(-1).values.exp().min())

    def _decode(self, rec_scores, n_words, threshold):
        sc = rec_scores.get(0)
        if sc is None or n_words == 0:
            return []
        tags = sc["logp"].argmax(-1).tolist()
        return sorted([s, e, t] for s, e, t in decode_bio(tags, self.types))
