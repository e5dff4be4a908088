"""``cofee evaluate --gold FILE --pred FILE``: entity-level micro P/R/F1 as JSON."""
from __future__ import annotations

import json


def register(sub):
    p = sub.add_parser("evaluate", help="score predictions against gold (entity-level exact match, JSON out)")
    p.add_argument("--gold", required=True, help="gold records (JSON lines: id, tokens, spans)")
    p.add_argument("--pred", required=True, help="predicted records, same ids")
    p.add_argument("--out", help="also write the JSON here")
    p.set_defaults(func=run)


def run(args):
    from ..errors import atomic_open
    from ..metrics import evaluate_records
    from ..records import read_jsonl

    result = evaluate_records(read_jsonl(args.gold), read_jsonl(args.pred))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with atomic_open(args.out) as handle:
            handle.write(text + "\n")
