"""A tagger checkpoint as a standard HuggingFace token-classification folder (``cofee export``).

:func:`export_hf` writes a :class:`~cofee_lib.backbones.tagger.TaggerBackbone`
(BERT-Tagger, CoFEE-BERT) as a folder that
``transformers.AutoModelForTokenClassification`` and
``pipeline("token-classification", model=OUT)`` load offline: ``config.json``
(the encoder's config with ``id2label``/``label2id``, the tagger's BIO labels
``O, B-T1, I-T1, ...``), ``model.safetensors`` (the encoder's weights and the
classifier as ``classifier.weight``/``classifier.bias``), the tokenizer files
(``model_max_length`` = the tagger's ``max_len``), ``cofee_export.json`` (where
it came from, how it was checked) and a ``README.md`` model card. The model is
built with ``AutoModelForTokenClassification.from_config``, the weights are
copied in, and before the folder is renamed into place it is loaded back and
its logits compared with the kit's on :data:`CHECK_TEXT` (:data:`TOLERANCE`);
a difference is an error and nothing is written.

When the pipeline agrees with ``cofee tag``. The kit decides each word's tag at
its **first** sub-token; ``aggregation_strategy="simple"`` groups the argmax
labels of **every** sub-token. The two give the same entities (types and
character offsets) when

1. every later sub-token of a word predicts the word's tag with ``B-`` turned
   into ``I-`` (an ``O`` word: ``O``). A tagger trained with
   ``subtoken_labels="all"`` (``cofee train --subtoken-labels all``) is trained
   to do exactly that, and agrees wherever it learned it; one trained with the
   default ``"first"`` never saw a label on those sub-tokens, so their outputs
   are untrained and can split, shorten or add entities. :func:`export_hf`
   exports both and says so (``warnings`` in its result) for ``"first"``;
2. the tokenizer splits the text into the same sub-tokens as the kit does after
   its own word split (true for words, punctuation and numbers; a symbol glued
   to a word, such as ``5€`` or an emoji after a letter, can differ). Checked
   on one sentence at export: a tokenizer that differs there is warned about;
3. the text fits in ``max_len`` sub-tokens: the kit splits longer texts into
   windows, the pipeline truncates them (pass ``stride=`` to the pipeline).

``aggregation_strategy="first"`` reads each word's first sub-token as the kit
does, but its words are the tokenizer's (``U.S.`` or ``Smith-Jones`` are
several), so it needs condition 1 too for such words.

MRC-NER and BiLSTM-CRF models have no standard transformers counterpart:
:func:`refusal` says so and where to go instead.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from ..cache import atomic_dir
from ..errors import CofeeError

EXPORT_NAME = "cofee_export.json"
CHECK_TEXT = "Barack Obama and Angela Merkel met Zwingelberg executives of Volkswagen in Wolfsburg, Germany ."
TOLERANCE = 1e-4   # largest absolute logit difference allowed between the kit and the exported model (float32)
FIRST_WARNING = (
    "this tagger was trained with labels on each word's first sub-token only (subtoken_labels=first, the "
    "default): the later sub-tokens' outputs are untrained, so pipeline(aggregation_strategy='simple') can "
    "split, shorten or add entities where `cofee tag` does not. Retrain with `cofee train --subtoken-labels all` "
    "(or `cofee finetune ... --subtoken-labels all`) for a model whose exported pipeline agrees with the kit")
SPLIT_WARNING = (
    "the tokenizer splits raw text into other sub-tokens than it gives the kit's words (checked on one sentence): "
    "the pipeline, which reads raw text, sees other inputs than `cofee tag` and can give other entities")
_USE_INSTEAD = (
    "Use it as it is: `cofee tag --model {dir} \"some text\"`, `cofee predict --model {dir} --data F --out "
    "PRED.jsonl`, or in Python the kit's one-call API `cofee_lib.backbones.load_backbone('{dir}')`, whose "
    "`.predict(records)` returns each record's spans (and `cofee_lib.commands.tag.tag_texts(model, texts)` "
    "tags raw text as `cofee tag` does). Only tagger models (cofee train --backbone tagger, CoFEE-BERT) export")


def refusal(kind: str, model_dir) -> str | None:
    """Why a model of ``kind`` cannot be exported (None for a tagger)."""
    if kind == "tagger":
        return None
    use = _USE_INSTEAD.format(dir=model_dir)
    if kind == "mrc":
        return (f"{model_dir}: an MRC-NER model (kind mrc) has no standard transformers counterpart: it reads one "
                "query per entity type and predicts, for each type, a start and an end probability per word with "
                "its start/end heads; no transformers pipeline fits per-type start/end heads (token-classification "
                f"expects one label per sub-token, question-answering one answer per question). {use}")
    return (f"{model_dir}: a {kind} model has no transformers architecture (word and character embeddings, a "
            f"BiLSTM and a CRF). {use}")


def build_token_classifier(model):
    """An ``AutoModelForTokenClassification`` with the tagger's encoder weights and classifier."""
    from transformers import AutoModelForTokenClassification

    from ..encoders import quiet_transformers

    config = copy.deepcopy(model.encoder.config)
    config.id2label = dict(enumerate(model.labels))
    config.label2id = {label: i for i, label in enumerate(model.labels)}
    config.architectures = None
    with quiet_transformers():
        try:
            hf = AutoModelForTokenClassification.from_config(config)
        except ValueError as exc:
            raise CofeeError(f"transformers has no token-classification model for the encoder type "
                             f"{config.model_type!r} ({exc})") from None
    encoder_state = model.encoder.state_dict()
    result = hf.base_model.load_state_dict(encoder_state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("pooler.")]
    if missing or result.unexpected_keys:
        raise CofeeError(f"the {config.model_type} token-classification model does not hold the tagger's encoder "
                         f"(missing {missing[:3]}, unexpected {list(result.unexpected_keys)[:3]})")
    head = getattr(hf, "classifier", None)
    if not isinstance(head, torch.nn.Linear) or head.weight.shape != model.classifier.weight.shape:
        raise CofeeError(f"the {config.model_type} token-classification model has no linear 'classifier' of "
                         f"shape {tuple(model.classifier.weight.shape)}; cannot copy the tagger's classifier")
    with torch.no_grad():
        head.weight.copy_(model.classifier.weight)
        head.bias.copy_(model.classifier.bias)
    return hf.to(next(model.encoder.parameters()).dtype).eval()


@torch.no_grad()
def kit_logits(model, enc) -> torch.Tensor:
    """The tagger's own logits for a tokenised batch (what :meth:`word_scores` reads), on CPU."""
    was_training = model.training
    model.eval()
    try:
        batch = {k: v.to(model.device) for k, v in enc.items()
                 if k in ("input_ids", "attention_mask", "token_type_ids")}
        return model.classifier(model.encoder(**batch).last_hidden_state).float().cpu()
    finally:
        model.train(was_training)


@torch.no_grad()
def check_export(model, folder, text: str = CHECK_TEXT, words_of=str.split) -> dict:
    """Load ``folder`` back with ``AutoModelForTokenClassification`` / ``AutoTokenizer`` and compare it
    with the tagger on ``text``: :class:`CofeeError` when the labels, the sub-tokens of ``text`` or the
    logits (beyond :data:`TOLERANCE`) differ. Returns ``{"text", "max_abs_logit_diff", "tolerance",
    "same_subtokens_as_word_split"}``; the last is False when the tokenizer splits the raw text into other
    sub-tokens than the kit's words, ``words_of(text)`` (condition 2 of the module doc; a warning, not an
    error)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from ..encoders import quiet_transformers

    with quiet_transformers():
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        hf = AutoModelForTokenClassification.from_pretrained(str(folder), local_files_only=True).eval()
    labels = [hf.config.id2label[i] for i in range(hf.config.num_labels)]
    if labels != list(model.labels):
        raise CofeeError(f"export check failed: the written labels {labels} are not the tagger's {model.labels}")
    cut = {"truncation": True, "max_length": model.max_len, "return_tensors": "pt"}
    enc = tok(text, **cut)
    own = model.tokenizer(text, **cut)
    words = model.tokenizer(list(words_of(text)), is_split_into_words=True, **cut)
    if not torch.equal(enc["input_ids"], own["input_ids"]):
        raise CofeeError("export check failed: the written tokenizer splits the check sentence differently from "
                         "the tagger's (nothing was written)")
    theirs = hf(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}).logits
    diff = float((theirs.float() - kit_logits(model, enc)).abs().max())
    if not diff <= TOLERANCE:
        raise CofeeError(f"export check failed: the exported model's logits differ from the tagger's by {diff:.3g} "
                         f"(more than {TOLERANCE:g}) on {text!r}; nothing was written")
    return {"text": text, "max_abs_logit_diff": diff, "tolerance": TOLERANCE,
            "same_subtokens_as_word_split": torch.equal(enc["input_ids"], words["input_ids"])}


def export_hf(model, out, source: str = "", words_of=str.split) -> dict:
    """Write tagger ``model`` to folder ``out`` (replacing it atomically) as described in the module doc.

    ``words_of(text)``: the words ``cofee tag`` splits a text into (the command passes
    :func:`cofee_lib.formats.text.split_words`' words), for the sub-token check of :func:`check_export`.

    Returns what ``cofee_export.json`` records, with ``warnings`` (a list) when the pipeline may disagree
    with ``cofee tag``: a ``subtoken_labels="first"`` tagger, or a tokenizer that splits raw text
    differently. The caller decides whether an existing ``out`` may be replaced.
    """
    from importlib.metadata import version

    from .. import __version__
    from ..encoders import quiet_transformers

    why = refusal(model.kind, source or "the model")
    if why:
        raise CofeeError(why)
    hf = build_token_classifier(model)
    subtoken_labels = getattr(model, "subtoken_labels", "first")
    info = {"format": "hf", "task": "token-classification", "source": str(source), "kit_version": __version__,
            "transformers": version("transformers"), "kind": model.kind, "types": list(model.types),
            "labels": list(model.labels), "subtoken_labels": subtoken_labels, "max_len": model.max_len,
            "encoder": getattr(model, "encoder_name", "")}
    with atomic_dir(out) as tmp:
        tok = model.tokenizer
        old_max = tok.model_max_length
        tok.model_max_length = model.max_len   # the pipeline truncates where the kit would start a window
        try:
            with quiet_transformers():
                hf.save_pretrained(str(tmp))
                tok.save_pretrained(str(tmp))
        finally:
            tok.model_max_length = old_max
        info["check"] = check_export(model, tmp, words_of=words_of)
        warnings = [FIRST_WARNING] if subtoken_labels == "first" else []
        if not info["check"]["same_subtokens_as_word_split"]:
            warnings.append(SPLIT_WARNING)
        if warnings:
            info["warnings"] = warnings
        (tmp / EXPORT_NAME).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(model_card(info), encoding="utf-8")
    return info


def model_card(info: dict) -> str:
    """The exported folder's ``README.md``: what it is, how to load it, when it agrees with ``cofee tag``."""
    agree = ("trained with labels on every sub-token (subtoken_labels=all): the pipeline with "
             "aggregation_strategy='simple' gives `cofee tag`'s entities wherever the model learned to continue "
             "its words")
    if info.get("warnings"):
        agree = " ".join(f"WARNING: {w}." for w in info["warnings"])
    return (f"---\nlibrary_name: transformers\npipeline_tag: token-classification\n---\n\n"
            f"# {'/'.join(info['types'])} tagger exported by the CoFEE kit\n\n"
            f"Labels: {', '.join(info['labels'])} (BIO). Source: `{info['source']}` "
            f"(kit {info['kit_version']}, encoder {info['encoder'] or 'unknown'}). Texts up to "
            f"{info['max_len']} sub-tokens.\n\n"
            "```python\nfrom transformers import pipeline\n"
            "ner = pipeline(\"token-classification\", model=\"PATH/TO/THIS/FOLDER\", aggregation_strategy=\"simple\")\n"
            "ner(\"Barack Obama visited Paris\")\n```\n\n"
            f"Agreement with `cofee tag`: {agree}. See `cofee_lib/backbones/export.py` for the conditions.\n")
