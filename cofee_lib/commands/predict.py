"""``cofee predict --model DIR --data F --out PRED.jsonl``: tag records with a saved model.

Writes one record per input record (same ids and tokens, extra keys kept) with
the predicted ``spans`` (word indices, inclusive end). With ``--confidence``
each record also gets ``confidences``: one probability per span, in the order
of ``spans`` (6 decimals; MRC: the lower of the span's start and end
probabilities, tagger: the lowest probability of the tag chosen for one of its
words; see :meth:`cofee_lib.backbones.base.Backbone.predict_with_confidence`).
Without it the output is unchanged. The output is written
atomically: on any error nothing is left behind. ``--out -`` writes the
records to standard output (the summary line goes to stderr); ``--out`` may
not be ``--data`` nor a file of ``--model``.
"""
from __future__ import annotations

import sys
import time

from ..settings import DEFAULT_THRESHOLD


def register(sub):
    p = sub.add_parser("predict", help="predict entity spans for a records file with a saved model")
    p.add_argument("--model", required=True, help="a model directory written by `cofee train` (has cofee.json)")
    p.add_argument("--data", required=True,
                   help="records to tag: JSON lines with id, tokens (spans are replaced), or a CoNLL file")
    p.add_argument("--format", choices=("jsonl", "conll", "chars"),
                   help="format of --data (default: jsonl for .jsonl/.json files, else CoNLL columns)")
    p.add_argument("--out", required=True,
                   help="where to write the predicted records (JSON lines; '-': standard output)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="MRC start/end probability threshold (default %(default)s; taggers ignore it)")
    p.add_argument("--confidence", action="store_true",
                   help="add 'confidences' to each record: one probability per span, in the order of 'spans'")
    p.add_argument("--batch-size", type=int, default=32, help="features per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def resolve_device(name: str):
    import torch

    from ..errors import CofeeError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise CofeeError(f"unknown device {name!r}; expected auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CofeeError(f"device {name!r} asked for, but torch sees no CUDA GPU here; use --device cpu")
    return dev


def check_options(args) -> None:
    """``--threshold`` a probability, ``--batch-size`` at least 1 (``cofee tag`` and ``cofee predict``)."""
    from ..errors import CofeeError

    if not 0.0 <= args.threshold <= 1.0:
        raise CofeeError(f"--threshold must be a probability in [0, 1], got {args.threshold}")
    if args.batch_size < 1:
        raise CofeeError(f"--batch-size must be at least 1, got {args.batch_size}")


def read_records(path, format=None):
    """Records to tag: JSON lines, or CoNLL columns / character files through
    :func:`cofee_lib.datasets.load_records` (``format``: jsonl, conll, chars)."""
    from ..datasets import load_records

    return load_records(path, format=format)


def run(args):
    from ..backbones import load_backbone
    from ..errors import check_input, check_output
    from ..records import write_jsonl

    check_input(args.data, "records to tag")
    check_output(args.out, inputs=[args.data, args.model], stdout=True)
    check_options(args)
    records = read_records(args.data, args.format)
    model = load_backbone(args.model, device=resolve_device(args.device))
    start = time.perf_counter()
    predict = model.predict_with_confidence if args.confidence else model.predict
    spans = predict(records, threshold=args.threshold, batch_size=args.batch_size, progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    if args.confidence:
        out = [{**rec, "spans": [sp[:3] for sp in s], "confidences": [round(sp[3], 6) for sp in s]}
               for rec, s in zip(records, spans)]
    else:
        out = [{**rec, "spans": s} for rec, s in zip(records, spans)]
    n = write_jsonl(args.out, out)
    n_spans = sum(len(s) for s in spans)
    stats = model.last_window_stats
    windowed = stats.get("windowed_records", 0)
    print(f"predicted {n_spans} entities in {n} sentences in {elapsed:.1f} s "
          f"({n / max(elapsed, 1e-9):.1f} sentences/s; {windowed} long sentences split into windows) -> {args.out}",
          file=sys.stderr)
    return 0
