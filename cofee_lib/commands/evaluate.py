"""``cofee evaluate --gold FILE --pred FILE``: entity-level micro P/R/F1 as JSON.

The JSON is printed on stdout; ``--out FILE`` also writes it there (atomically;
``--out -`` is stdout, printed once). ``--out`` may not be ``--gold`` or ``--pred``.
"""
from __future__ import annotations

import json


def register(sub):
    p = sub.add_parser("evaluate", help="score predictions against gold (entity-level exact match, JSON out)")
    p.add_argument("--gold", required=True, help="gold records (JSON lines: id, tokens, spans)")
    p.add_argument("--pred", required=True, help="predicted records, same ids")
    p.add_argument("--out", help="also write the JSON here ('-': stdout only)")
    p.set_defaults(func=run)


def run(args):
    from ..errors import atomic_open, check_input, check_output, is_stdout
    from ..metrics import evaluate_records
    from ..records import read_jsonl

    gold, pred = check_input(args.gold, "gold records"), check_input(args.pred, "predicted records")
    if args.out:
        check_output(args.out, inputs=[gold, pred], stdout=True)
    result = evaluate_records(read_jsonl(gold), read_jsonl(pred))
    text = json.dumps(result, indent=2)
    if args.out and not is_stdout(args.out):
        with atomic_open(args.out) as handle:
            handle.write(text + "\n")
    print(text)
    return 0
