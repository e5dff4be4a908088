"""Benchmark 4: gazetteer matching (`cofee match`, `cofee corpus match`) with the full gazetteers.

Gazetteers: the kit's full English gazetteers for target ``conll2003`` (GeoNames, ISO 3166,
stock-index companies, WNUT-16 train persons, census name pairs), built or reused through the
pipeline's content-keyed cache (:func:`cofee_lib.pipeline.build_corpora`), together with D_g
from the default preset's embedded dumps (``tiny``: the small table-markup dump only and a
10% sample of each gazetteer, to prove the code in seconds).

Measured, in one process unless said otherwise (tokens are words of the input sentences):

* **cofee match, matching only**: :func:`cofee_lib.matching.match_records` (what
  ``cofee match`` calls) on CoNLL-2003 train, automaton already built. Each pass starts
  with an empty token-code memo, as a fresh ``cofee match`` does; the best of ``passes``.
* **reference**: a hand-written matcher with the same rules (same token normalisation,
  every n-gram looked up in a dict of entry token tuples with prefix pruning, longest
  first then leftmost, ambiguous entries skipped) on the same sentences; the share of
  sentences where its matches equal the kit's is reported too.
* **cofee corpus match, typing only**: :func:`cofee_lib.matching.iter_label_anchors` over D_g
  repeated ``corpus_repeat`` times (in memory), against the reference's dict lookup of each
  anchor's normalised tokens (it only counts the sentences it would keep).
* **end to end**: the two commands run as subprocesses (interpreter start, gazetteer loading,
  automaton build, JSON reading and writing included), with the JSON-lines round trip alone
  (``json.loads`` + ``json.dumps`` of every line, in process) as the I/O ceiling.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

NAME = "match"
SIZES = {
    "tiny": {"target": "conll2003", "sentences": 300, "passes": 1, "corpus_repeat": 1, "end_to_end": True,
             "dumps": ["embedded:enwiki-tables"], "gazetteer_fraction": 0.1},
    "full": {"target": "conll2003", "sentences": None, "passes": 3, "corpus_repeat": 20, "end_to_end": True,
             "dumps": None, "gazetteer_fraction": 1.0},
}
TARGET_TOKENS_PER_S = 1_000_000


class NaiveMatcher:
    """The reference: exact longest-first matching written the obvious way (see module doc)."""

    def __init__(self, gazetteers):
        from cofee_lib.gazetteers import tokenize_entry
        from cofee_lib.matching import normalize_token

        self.case_sensitive = bool(getattr(gazetteers, "case_sensitive", True))
        self.all_caps_title = bool(getattr(gazetteers, "all_caps_title", False)) and self.case_sensitive
        lang = getattr(gazetteers, "lang", "en")
        found: dict[tuple, set] = {}
        for gaz_type, entries in gazetteers.items():
            for entry in entries:
                key = tuple(normalize_token(t, self.case_sensitive) for t in tokenize_entry(entry, lang))
                if key:
                    found.setdefault(key, set()).add(gaz_type)
        self.table = {k: (next(iter(v)) if len(v) == 1 else None) for k, v in found.items()}
        self.prefixes = {k[:i] for k in self.table for i in range(1, len(k) + 1)}
        self.words = {t for k in self.table for t in k}
        self._normalize = normalize_token

    def _norm(self, token: str) -> str:
        norm = self._normalize(token, self.case_sensitive)
        if norm not in self.words and self.all_caps_title and len(norm) > 1 and norm.isupper():
            return norm.title()
        return norm

    def find(self, tokens: list[str]) -> list[tuple[int, int, str]]:
        norm = [self._norm(t) for t in tokens]
        cands = []
        for i in range(len(norm)):
            for j in range(i + 1, len(norm) + 1):
                key = tuple(norm[i:j])
                if key not in self.prefixes:
                    break
                if key in self.table:
                    cands.append((i, j - 1, self.table[key]))
        chosen = []
        for s, e, t in sorted(cands, key=lambda c: (c[0] - c[1], c[0])):
            if all(e < cs or s > ce for cs, ce, _ in chosen):
                chosen.append((s, e, t))
        return sorted((s, e, t) for s, e, t in chosen if t is not None)


def _resources(settings: dict, work_dir) -> dict:
    from cofee_lib.pipeline import build_corpora
    from cofee_lib.presets import stage_settings

    pre = stage_settings("default")
    dumps = tuple(settings["dumps"] or pre.dumps)
    return build_corpora(settings["target"], common.work_subdir(work_dir, "corpora"), dumps=dumps,
                         min_anchors=pre.min_anchors, max_len=pre.max_words,
                         gazetteer_fraction=settings["gazetteer_fraction"], progress=False)


def _fresh_memo(matcher) -> None:
    """Empty the token-code memo (a fresh ``cofee match`` process starts with an empty one)."""
    matcher._memo = dict(matcher.vocab)


def _json_round_trip(path: Path) -> float:
    t0 = time.perf_counter()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            json.dumps(json.loads(line), ensure_ascii=False)
    return time.perf_counter() - t0


def run(size: str = "full", work_dir="work", progress: bool = True) -> dict:
    from cofee_lib.datasets import load_dataset
    from cofee_lib.gazetteers import load_gazetteers
    from cofee_lib.matching import GazetteerMatcher, iter_label_anchors, match_records
    from cofee_lib.records import read_jsonl, write_jsonl

    settings = common.check_size(size, SIZES)
    res = _resources(settings, work_dir)
    gazetteers = load_gazetteers(res["gazetteers"])
    counts = {t: len(v) for t, v in gazetteers.items()}
    common.say(f"match: gazetteers {counts}; building the automaton")
    t0 = time.perf_counter()
    matcher = GazetteerMatcher(gazetteers)
    build_seconds = time.perf_counter() - t0

    records = load_dataset("conll2003", "train", progress=False)
    if settings["sentences"]:
        records = records[:settings["sentences"]]
    n_tokens = sum(len(r["tokens"]) for r in records)
    common.say(f"match: {len(records):,} CoNLL-2003 train sentences ({n_tokens:,} tokens), "
               f"{settings['passes']} pass(es): kit, then the hand-written reference")
    best = float("inf")
    for _ in range(settings["passes"]):
        _fresh_memo(matcher)
        t0 = time.perf_counter()
        kit_out = match_records(records, matcher)
        best = min(best, time.perf_counter() - t0)
    kit_match = {"seconds": best, "tokens": n_tokens, "tokens_per_s": n_tokens / best}

    t0 = time.perf_counter()
    naive = NaiveMatcher(gazetteers)
    naive_build = time.perf_counter() - t0
    best = float("inf")
    for _ in range(settings["passes"]):
        t0 = time.perf_counter()
        naive_out = [naive.find(r["tokens"]) for r in records]
        best = min(best, time.perf_counter() - t0)
    agree = sum([tuple(s) for s in k["spans"]] == [tuple(s) for s in n] for k, n in zip(kit_out, naive_out))
    reference = {"seconds": best, "tokens": n_tokens, "tokens_per_s": n_tokens / best, "build_seconds": naive_build,
                 "sentences_agreeing_with_kit": agree, "agreement": agree / max(1, len(records))}

    d_g = read_jsonl(res["d_g"]) * settings["corpus_repeat"]
    g_tokens = sum(len(r["tokens"]) for r in d_g)
    g_anchors = sum(len(r["spans"]) for r in d_g)
    common.say(f"match: typing the anchors of D_g x {settings['corpus_repeat']} ({len(d_g):,} sentences, "
               f"{g_tokens:,} tokens, {g_anchors:,} anchors)")
    _fresh_memo(matcher)
    t0 = time.perf_counter()
    n_out = sum(1 for _ in iter_label_anchors(d_g, matcher))
    seconds = time.perf_counter() - t0
    corpus = {"seconds": seconds, "tokens": g_tokens, "anchors": g_anchors, "sentences_in": len(d_g),
              "sentences_out": n_out, "tokens_per_s": g_tokens / seconds, "anchors_per_s": g_anchors / seconds}
    t0 = time.perf_counter()
    n_ref = sum(1 for r in d_g if any(naive.table.get(tuple(naive._norm(t) for t in r["tokens"][s:e + 1]))
                                      for s, e, _ in r["spans"]))
    seconds = time.perf_counter() - t0
    corpus["reference"] = {"seconds": seconds, "tokens_per_s": g_tokens / seconds, "sentences_out": n_ref}

    end_to_end = None
    if settings["end_to_end"]:
        with tempfile.TemporaryDirectory(prefix="cofee-bench-match-") as tmp:
            tmp = Path(tmp)
            data, corpus_file = tmp / "conll_train.jsonl", tmp / "d_g.jsonl"
            write_jsonl(data, records)
            write_jsonl(corpus_file, d_g)
            common.say("match: the two commands end to end (subprocesses)")
            m = common.run_command(common.python_command("-m", "cofee_lib", "match", "--gazetteers", res["gazetteers"],
                                                          "--data", data, "--out", tmp / "pred.jsonl"), cwd=common.REPO)
            c = common.run_command(common.python_command("-m", "cofee_lib", "corpus", "match", "--corpus", corpus_file,
                                                         "--gazetteers", res["gazetteers"], "--out", tmp / "d_s.jsonl",
                                                         "--quiet"), cwd=common.REPO)
            io_match, io_corpus = _json_round_trip(data), _json_round_trip(corpus_file)
        end_to_end = {
            "cofee_match": {"seconds": m["seconds"], "tokens": n_tokens, "tokens_per_s": n_tokens / m["seconds"],
                            "max_rss_mb": m["max_rss_mb"], "json_round_trip_tokens_per_s": n_tokens / io_match},
            "cofee_corpus_match": {"seconds": c["seconds"], "tokens": g_tokens, "tokens_per_s": g_tokens / c["seconds"],
                                   "max_rss_mb": c["max_rss_mb"], "json_round_trip_tokens_per_s": g_tokens / io_corpus},
        }

    speed = common.ratio(kit_match["tokens_per_s"], reference["tokens_per_s"])
    summary = [
        common.row("4 match", "cofee match, matching only: tokens/s, kit / hand-written matcher",
                   kit_match["tokens_per_s"], reference["tokens_per_s"], "tok/s", speed,
                   f">= {TARGET_TOKENS_PER_S:,} tok/s", kit_match["tokens_per_s"] >= TARGET_TOKENS_PER_S,
                   note=f"same matches in {reference['agreement']:.2%} of sentences"),
        common.row("4 match", "cofee corpus match, typing only: tokens/s of D_g, kit / dict lookup per anchor",
                   corpus["tokens_per_s"], corpus["reference"]["tokens_per_s"], "tok/s",
                   common.ratio(corpus["tokens_per_s"], corpus["reference"]["tokens_per_s"]),
                   f">= {TARGET_TOKENS_PER_S:,} tok/s", corpus["tokens_per_s"] >= TARGET_TOKENS_PER_S,
                   note=f"sentences kept: kit {corpus['sentences_out']:,}, reference {n_ref:,}"),
    ]
    if end_to_end:
        for label, key in (("cofee match", "cofee_match"), ("cofee corpus match", "cofee_corpus_match")):
            e = end_to_end[key]
            summary.append(common.row(
                "4 match", f"{label} end to end: tokens/s, command / JSON round trip alone", e["tokens_per_s"],
                e["json_round_trip_tokens_per_s"], "tok/s",
                common.ratio(e["tokens_per_s"], e["json_round_trip_tokens_per_s"]),
                f">= {TARGET_TOKENS_PER_S:,} tok/s", e["tokens_per_s"] >= TARGET_TOKENS_PER_S,
                note=f"{e['tokens']:,} tokens; includes start-up, loading and a {build_seconds:.1f} s automaton build",
                share=True))
    return {"name": NAME, "size": size, "settings": settings, "gazetteers": {"dir": str(res["gazetteers"]),
            "entries": counts, "automaton_keys": matcher.n_keys, "automaton_build_seconds": build_seconds},
            "cofee_match": kit_match, "reference": reference, "corpus_match": corpus, "end_to_end": end_to_end,
            "summary": summary}


def main(argv=None) -> int:
    return common.script_main(run, SIZES, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
