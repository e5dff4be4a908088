"""In-domain distant supervision (beyond the paper): the text and the corpus of the ``domain`` stage.

The paper's NEE stage learns from gazetteer-typed Wikipedia anchors (D_s). A
user of the kit has something else in plenty: unlabeled text of the target
domain. The ``domain`` stage (:func:`cofee_lib.pipeline.stage_domain`) labels
that text by gazetteer matching, with the Matching baseline's rules
(:func:`cofee_lib.matching.match_records`: every token n-gram, exact,
longest first), and trains NEE with self-picking on it, starting from the
previous stage's best checkpoint -- the first stage of BOND (Liang et al.,
2020) with CoFEE's pre-training and self-picking around it.

Where the text comes from (:func:`read_domain_text`):

* ``dataset:NAME``: the **train** split of a dataset the kit knows, its
  labels dropped on reading: each record handed on is ``{"id", "tokens",
  "spans": []}``, built from the tokens alone, and no other split is
  requested. (CoNLL-2003 keeps its splits in separate files, so its test file
  is never opened; WNUT-16's recorded split is applied to the one source file,
  and only the train records leave the loader.)
* a file, by its suffix: ``.jsonl``/``.json``: one JSON object per line with
  ``tokens`` (a list of strings) or ``text`` (a string, split into words by
  :func:`cofee_lib.formats.text.split_words`); ``id`` optional; any ``spans``
  are ignored. ``.conll``/``.bio``/``.iob``/``.iob2``/``.tsv``: CoNLL columns,
  the token first, the other columns (labels) ignored. Any other suffix:
  CoNLL when every one of the first non-blank lines has two or more columns
  and ends in a BIO-style tag, otherwise plain text, one sentence per line.

:func:`distant_corpus` keeps every sentence with a match and a share of the
sentences without one as negatives (``domain_negatives`` matched-to-negative
ratio): the MRC model needs to see sentences where a query has no answer, or
it learns that every sentence holds an entity, but the unmatched sentences of
a gazetteer-matched corpus also hold most of the entities the gazetteers miss
(false negatives), so the kit keeps fewer than all.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

from .datasets import load_train
from .errors import CofeeError, InputError
from .formats.conll import read_column_sentences, read_text
from .formats.text import split_words
from .matching import match_records

DATASET_PREFIX = "dataset:"
CONLL_SUFFIXES = (".conll", ".bio", ".iob", ".iob2", ".tsv")
JSON_SUFFIXES = (".jsonl", ".json")
_TAG = re.compile(r"^(?:O|[BIESLUM](?:[-_].+)?)$")
_SNIFF_LINES = 20


def text_kind(spec: str) -> str:
    """``dataset``, ``jsonl``, ``conll`` or ``text``: how :func:`read_domain_text` reads ``spec``."""
    if str(spec).startswith(DATASET_PREFIX):
        return "dataset"
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        return "jsonl"
    if suffix in CONLL_SUFFIXES:
        return "conll"
    lines = [line for line in read_text(path).split("\n") if line.strip()][:_SNIFF_LINES]
    if lines and all(len(line.split()) >= 2 and _TAG.match(line.split()[-1]) for line in lines):
        return "conll"
    return "text"


def _json_records(path: Path) -> list[dict]:
    records = []
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, lineno, f"not valid JSON ({exc.msg}); expected one object per line with "
                             "'tokens' (a list of strings) or 'text' (a string)") from None
        if not isinstance(obj, dict):
            raise InputError(path, lineno, f"expected a JSON object with 'tokens' or 'text'; got {type(obj).__name__}")
        if "tokens" in obj:
            tokens = obj["tokens"]
            if not isinstance(tokens, list) or not all(isinstance(t, str) and t and not t.isspace() for t in tokens):
                raise InputError(path, lineno, "'tokens' must be a list of non-empty strings")
        elif isinstance(obj.get("text"), str):
            tokens = split_words(obj["text"])[0]
        else:
            raise InputError(path, lineno, "expected 'tokens' (a list of strings) or 'text' (a string)")
        rid = obj.get("id", f"{path.stem}-{lineno}")
        if not isinstance(rid, str) or not rid:
            raise InputError(path, lineno, f"'id' must be a non-empty string, got {json.dumps(rid)}")
        records.append({"id": rid, "tokens": tokens})
    return records


def _conll_records(path: Path) -> list[dict]:
    sentences = read_column_sentences(path, what="token first, then any label columns (ignored)")
    return [{"id": f"{path.stem}-{i}", "tokens": [fields[0] for fields, _ in sentence]}
            for i, sentence in enumerate(sentences)]


def _text_records(path: Path) -> list[dict]:
    return [{"id": f"{path.stem}-{lineno}", "tokens": split_words(line)[0]}
            for lineno, line in enumerate(read_text(path).split("\n"), 1) if split_words(line)[0]]


def read_domain_text(spec: str) -> list[dict]:
    """The in-domain sentences of ``spec`` (see the module doc) as records with no spans, in file order."""
    kind = text_kind(spec)
    if kind == "dataset":
        name = str(spec)[len(DATASET_PREFIX):]
        if not name:
            raise CofeeError("--domain-text dataset:NAME needs a dataset name (e.g. dataset:conll2003)")
        records = [{"id": r["id"], "tokens": list(r["tokens"])} for r in load_train(name)]
    else:
        path = Path(spec)
        records = {"jsonl": _json_records, "conll": _conll_records, "text": _text_records}[kind](path)
    records = [r for r in records if r["tokens"]]
    if not records:
        raise InputError(spec, None, "no sentences found in the domain text")
    seen: Counter = Counter(r["id"] for r in records)
    dup = next((i for i, n in seen.items() if n > 1), None)
    if dup is not None:
        raise InputError(spec, None, f"id {dup!r} occurs {seen[dup]} times; ids must be unique")
    return [{**r, "spans": []} for r in records]


def sample_sentences(records: list[dict], cap: int | None, seed: int) -> list[dict]:
    """At most ``cap`` sentences: a seeded random subset in file order (all when None); nested in ``cap``."""
    if not cap or len(records) <= cap:
        return list(records)
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    return [records[i] for i in sorted(order[:int(cap)])]


def distant_corpus(records: list[dict], gazetteers, types, negatives: float, seed: int) -> tuple[list[dict], dict]:
    """Label ``records`` by gazetteer matching; keep matched sentences and ``negatives`` x as many unmatched ones.

    Only matches of ``types`` are kept. Returns the corpus (file order) and its
    counts: sentences in, matched, negatives available and kept, entities per type.
    """
    wanted = set(types)
    # matched with every type and the gazetteers' own options (case, all-capitals), as the Matching baseline is
    matched = [{**r, "spans": [s for s in r["spans"] if s[2] in wanted]} for r in match_records(records, gazetteers)]
    positive = [i for i, r in enumerate(matched) if r["spans"]]
    unmatched = [i for i, r in enumerate(matched) if not r["spans"]]
    if not positive:
        raise CofeeError(f"no sentence of the {len(records)} in-domain sentences matches a gazetteer entry of "
                         f"{', '.join(types)}: the domain stage has nothing to learn from (check the text's language "
                         "and tokens, and the gazetteers' case)")
    n_neg = min(len(unmatched), round(negatives * len(positive)))
    kept_neg = random.Random(seed).sample(unmatched, n_neg) if n_neg else []
    corpus = [matched[i] for i in sorted(positive + kept_neg)]
    per_type = Counter(s[2] for r in corpus for s in r["spans"])
    stats = {"sentences_in": len(records), "matched_sentences": len(positive),
             "negatives_available": len(unmatched), "negatives_kept": n_neg, "sentences": len(corpus),
             "entities": sum(per_type.values()), "entities_per_type": {t: per_type.get(t, 0) for t in types}}
    return corpus, stats
