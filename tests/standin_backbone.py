"""A small stand-in backbone and toy records for the engine tests (test code, not library code).

``StandInTagger`` implements the :class:`cofee_lib.backbones.base.Backbone`
interface with a hashed word embedding, a width-3 convolution and a BIO
classifier. Its loss is the mean over features of each feature's mean token
cross-entropy, so gradient accumulation and data parallelism give the same
gradient as one big batch (what the engine promises); dropout exercises the
RNG state that checkpoints must restore.

``toy_records`` makes seeded sentences of filler words with capitalised
PER/LOC/ORG names in them: enough signal for a tiny model to learn in seconds.

``install()`` makes ``cofee train`` build this stand-in (for subprocess tests
through the real CLI: ``python tests/standin_cli.py train ...``).
"""
from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

import torch

from cofee_lib.backbones.base import Backbone

VOCAB = 512
FILLER = ("the of and to in a is that for on was with he it as at by from his an were are which this "
          "be has had or not but one have after new first two they been also its who their more year "
          "said when would into about over government people city team world between during").split()
PER = ["John Smith", "Mary Jones", "Ahmed Khan", "Li Wei", "Anna Petrova", "Carlos Diaz", "Maria Rossi",
       "David Brown", "Yuki Tanaka", "Peter Muller"]
LOC = ["Paris", "New York", "Berlin", "Tokyo", "Cairo", "Lima", "Oslo", "Buenos Aires", "Lagos", "Delhi"]
ORG = ["Acme Corp", "United Nations", "Reuters", "Siemens", "Red Cross", "General Motors", "Sony",
       "World Bank", "Toyota", "Nestle"]


def toy_records(n: int, seed: int, prefix: str = "toy") -> list[dict]:
    """``n`` seeded records (5-30 words, 0-3 entities each) with word-level inclusive spans."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tokens, spans = [], []
        for _ in range(rng.randint(0, 3)):
            tokens += [rng.choice(FILLER) for _ in range(rng.randint(1, 8))]
            typ, names = rng.choice([("PER", PER), ("LOC", LOC), ("ORG", ORG)])
            name = rng.choice(names).split()
            spans.append([len(tokens), len(tokens) + len(name) - 1, typ])
            tokens += name
        tokens += [rng.choice(FILLER) for _ in range(rng.randint(1 if tokens else 5, 10))]
        out.append({"id": f"{prefix}-{i}", "tokens": tokens, "spans": spans})
    return out


def _word_id(word: str) -> int:
    return 2 + zlib.crc32(word.lower().encode("utf-8")) % (VOCAB - 2)


class StandInTagger(Backbone):
    """Hashed embeddings + capitalisation flag -> conv(3) -> ReLU -> dropout -> BIO logits."""

    kind = "tagger"

    def __init__(self, types, dim: int = 32, dropout: float = 0.1, max_len: int = 128):
        super().__init__(types, max_len=max_len, stride=0)
        self.dim, self.dropout_p = dim, dropout
        self.tags = ["O"] + [f"{p}-{t}" for t in self.types for p in ("B", "I")]
        self.embed = torch.nn.Embedding(VOCAB, dim, padding_idx=0)
        self.caps = torch.nn.Embedding(3, dim, padding_idx=0)
        self.conv = torch.nn.Conv1d(dim, dim, 3, padding=1)
        self.drop = torch.nn.Dropout(dropout)
        self.out = torch.nn.Linear(dim, len(self.tags))

    @property
    def hidden_size(self) -> int:
        return self.dim

    def featurize(self, records, train):
        feats = []
        tag_id = {t: i for i, t in enumerate(self.tags)}
        for r, rec in enumerate(records):
            words = rec["tokens"]
            labels = ["O"] * len(words)
            for s, e, t in rec["spans"]:
                if t in self.types:
                    labels[s] = f"B-{t}"
                    for k in range(s + 1, e + 1):
                        labels[k] = f"I-{t}"
            f = {"input_ids": [_word_id(w) for w in words], "caps": [1 + w[:1].isupper() for w in words],
                 "labels": [tag_id[x] for x in labels], "record_index": r, "n_useful": len(words)}
            if train:
                f["entities"] = [(s, e, j) for j, (s, e, t) in enumerate(rec["spans"]) if t in self.types]
            feats.append(f)
        return feats

    def collate(self, features):
        width = max(len(f["input_ids"]) for f in features)
        pad = lambda key, v: torch.tensor([f[key] + [v] * (width - len(f[key])) for f in features])  # noqa: E731
        batch = {"input_ids": pad("input_ids", 0), "caps": pad("caps", 0), "labels": pad("labels", -100),
                 "n_useful": torch.tensor(sum(f["n_useful"] for f in features))}
        if "entities" in features[0]:
            ents = [(b, s, e) for b, f in enumerate(features) for s, e, _ in f["entities"]]
            batch["entity_batch_index"] = torch.tensor([x[0] for x in ents], dtype=torch.long)
            batch["entity_start"] = torch.tensor([x[1] for x in ents], dtype=torch.long)
            batch["entity_end"] = torch.tensor([x[2] for x in ents], dtype=torch.long)
        return batch

    def _hidden(self, batch):
        x = self.embed(batch["input_ids"]) + self.caps(batch["caps"])
        h = torch.relu(self.conv(x.transpose(1, 2)).transpose(1, 2))
        return self.drop(h)

    def forward(self, batch, return_hidden=False):
        batch = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        hidden = self._hidden(batch)
        logits = self.out(hidden).float()
        labels = batch["labels"]
        token_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100,
                                                       reduction="none")
        mask = (labels != -100).float()
        per_feature = (token_loss * mask).sum(1) / mask.sum(1).clamp(min=1)
        out = {"loss": per_feature.mean()}
        if return_hidden:
            out["hidden"] = hidden
        return out

    @torch.no_grad()
    def predict(self, records, threshold=0.5, batch_size=32, progress=False):
        self.eval()
        feats = self.featurize(records, train=False)
        out = []
        for start in range(0, len(feats), batch_size):
            chunk = feats[start:start + batch_size]
            batch = {k: v.to(self.device) for k, v in self.collate(chunk).items()}
            with self.autocast():
                tags = self.out(self._hidden(batch)).float().argmax(-1).tolist()
            for f, row in zip(chunk, tags):
                out.append(self._decode([self.tags[t] for t in row[:len(f["input_ids"])]]))
        return out

    @staticmethod
    def _decode(tags):
        spans, start, typ = [], None, None
        for i, tag in enumerate(tags + ["O"]):
            if start is not None and not (tag.startswith("I-") and tag[2:] == typ):
                spans.append([start, i - 1, typ])
                start = None
            if tag.startswith("B-") or (tag.startswith("I-") and start is None):
                start, typ = i, tag[2:]
        return spans

    @torch.no_grad()
    def span_embeddings(self, records, batch_size=32):
        feats = self.featurize(records, train=True)
        batch = self.collate(feats)
        hidden = self._hidden({k: v.to(self.device) for k, v in batch.items()})
        keys = [(f["record_index"], j) for f in feats for _, _, j in f["entities"]]
        return self.pool_spans(hidden, batch).cpu(), keys

    def save_pretrained(self, directory):
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous().cpu() for k, v in self.state_dict().items()}, directory / "model.safetensors")
        (directory / "cofee.json").write_text(json.dumps({"kind": "standin", "types": self.types, "dim": self.dim,
                                                         "dropout": self.dropout_p}), encoding="utf-8")


def load_standin(directory) -> StandInTagger:
    from safetensors.torch import load_file

    cfg = json.loads((Path(directory) / "cofee.json").read_text(encoding="utf-8"))
    model = StandInTagger(cfg["types"], dim=cfg["dim"], dropout=cfg["dropout"])
    model.load_state_dict(load_file(Path(directory) / "model.safetensors"))
    return model


def build_standin(kind, types, model="tiny", queries=None, max_len=128, **kw):
    """Same signature as ``build_backbone``; ``model`` may be ``standin[:DIM[:DROPOUT]]``."""
    parts = str(model).split(":")
    dim = int(parts[1]) if len(parts) > 1 and parts[1] else 32
    dropout = float(parts[2]) if len(parts) > 2 else 0.1
    return StandInTagger(types, dim=dim, dropout=dropout, max_len=max_len)


def install() -> None:
    """Make ``cofee_lib.backbones.build_backbone`` build the stand-in (``--model standin...``)."""
    import cofee_lib.backbones as backbones

    real = backbones.build_backbone

    def build(kind, types, model="tiny", **kw):
        if str(model).startswith("standin"):
            return build_standin(kind, types, model=model, **kw)
        return real(kind, types, model=model, **kw)

    backbones.build_backbone = build
