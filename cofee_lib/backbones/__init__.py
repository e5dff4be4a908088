"""Backbones: MRC-NER, BERT tagger, BiLSTM-CRF behind one interface (see :mod:`.base`)."""
from .base import KINDS, Backbone, build_backbone, load_backbone

__all__ = ["KINDS", "Backbone", "build_backbone", "load_backbone"]
