"""``cofee tag --model DIR "some text"``: tag raw text with a saved model.

The text is split into words first by :func:`cofee_lib.formats.text.split_words`
(the splitter the ``domain`` stage uses too): English (and any non-CJK script) by a
regular expression (words with inner apostrophes or hyphens, abbreviations
like ``U.S.``, numbers, single punctuation marks); Chinese, Japanese kana and
full-width characters one character per token, as in MSRA and OntoNotes.
Output, per entity: the line number (1-based), the entity text, its type,
``char_start``/``char_end`` character offsets in the input line (``end``
exclusive: ``line[char_start:char_end]`` is the text) and ``word_start``/
``word_end`` word offsets (inclusive end, the kit's convention). With
``--confidence`` each entity also has ``confidence`` (a probability, 6
decimals; see :meth:`cofee_lib.backbones.base.Backbone.predict_with_confidence`:
MRC the lower of its start and end probabilities, tagger the lowest
probability of the tag chosen for one of its words); without it the output
is unchanged. ``--threshold`` is MRC's start/end threshold; taggers ignore it.
"""
from __future__ import annotations

import json
import sys

from ..formats.text import WORD_RE, split_words  # noqa: F401 - the kit's one word splitter, re-exported here
from ..settings import DEFAULT_THRESHOLD


def register(sub):
    p = sub.add_parser("tag", help="tag raw text with a saved model (prints entities)")
    p.add_argument("text", nargs="*", help="text to tag (each argument is one text)")
    p.add_argument("--model", required=True, help="a model directory written by `cofee train` (has cofee.json)")
    p.add_argument("--input", help="a UTF-8 file with one text per line ('-' reads standard input)")
    p.add_argument("--format", choices=("json", "text"), default="json",
                   help="json: one JSON object per entity (default); text: a readable table")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="MRC start/end probability threshold (default %(default)s; taggers ignore it)")
    p.add_argument("--confidence", action="store_true",
                   help="add each entity's confidence (MRC: min of its start and end probabilities; "
                        "tagger: min over its words of the chosen tag's probability)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda if available)")
    p.set_defaults(func=run)


def _read_lines(path) -> list[str]:
    from pathlib import Path

    from ..errors import InputError, check_input

    if path == "-":
        return sys.stdin.read().splitlines()
    p = check_input(Path(path), "UTF-8 text, one text per line")
    try:
        return p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(p, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def tag_texts(model, texts: list[str], threshold: float = DEFAULT_THRESHOLD, batch_size: int = 32,
              confidence: bool = False) -> list[dict]:
    """Entities of each text as dicts (line, text, type, char_start, char_end, word_start, word_end,
    and with ``confidence=True`` confidence: see the module doc)."""
    split = [split_words(t) for t in texts]
    records = [{"id": str(i + 1), "tokens": words, "spans": []} for i, (words, _) in enumerate(split)]
    if confidence:
        preds = model.predict_with_confidence(records, threshold=threshold, batch_size=batch_size)
    else:
        preds = model.predict(records, threshold=threshold, batch_size=batch_size)
    out = []
    for i, (text, (words, offsets), spans) in enumerate(zip(texts, split, preds)):
        for s, e, t, *conf in spans:
            cs, ce = offsets[s][0], offsets[e][1]
            ent = {"line": i + 1, "text": text[cs:ce], "type": t, "char_start": cs, "char_end": ce,
                   "word_start": s, "word_end": e}
            if confidence:
                ent["confidence"] = round(conf[0], 6)
            out.append(ent)
    return out


def run(args):
    from ..backbones import load_backbone
    from ..errors import CofeeError
    from .predict import check_options, resolve_device

    if args.input and args.text:
        raise CofeeError("give the text as arguments or with --input, not both")
    texts = _read_lines(args.input) if args.input else list(args.text)
    if not texts:
        raise CofeeError('nothing to tag: pass "some text" or --input FILE (one text per line)')
    check_options(args)
    model = load_backbone(args.model, device=resolve_device(args.device))
    entities = tag_texts(model, texts, threshold=args.threshold, batch_size=args.batch_size,
                         confidence=args.confidence)
    if args.format == "json":
        for ent in entities:
            print(json.dumps(ent, ensure_ascii=False))
    else:
        conf = f"  {'conf':>6}" if args.confidence else ""
        header = f"{'line':>4}  {'type':<8} {'chars':>11}  {'words':>9}{conf}  text"
        print(header)
        print("-" * len(header))
        for ent in entities:
            conf = f"  {ent['confidence']:>6.3f}" if args.confidence else ""
            print(f"{ent['line']:>4}  {ent['type']:<8} {ent['char_start']:>5}-{ent['char_end']:<5}  "
                  f"{ent['word_start']:>4}-{ent['word_end']:<4}{conf}  {ent['text']}")
        print(f"{len(entities)} entities in {len(texts)} texts", file=sys.stderr)
    return 0
