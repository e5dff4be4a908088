"""Stream the pages of a MediaWiki ``pages-articles`` XML export in constant memory.

The export may be plain ``.xml``, ``.xml.bz2`` (single- or multi-stream) or ``.xml.gz``;
the compression is recognised from the file's first bytes, not its name. Any export schema
version works (``http://www.mediawiki.org/xml/export-0.10/`` and others): the XML namespace
is read from the root element.

Reading is a pull loop: compressed bytes are read in chunks and decompressed by a
background thread (decompression releases the GIL), fed to
:class:`xml.etree.ElementTree.XMLPullParser`, and every finished ``<page>`` is turned into a
small :class:`Page` and removed from the tree, so memory does not grow with the dump.

A truncated or corrupt dump raises :class:`DumpError` (a :class:`~cofee_lib.errors.CofeeError`)
naming the file and the last complete page; the pages before it have already been yielded.
"""
from __future__ import annotations

import bz2
import gzip
import os
import queue
import sys
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import CofeeError, InputError

CHUNK_BYTES = 1 << 20  # decompressed bytes fed to the XML parser per step
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class DumpError(CofeeError):
    """The dump ended early or is corrupt. Names the file and the last complete page."""

    def __init__(self, path, reason: str, pages_complete: int, last_page: tuple[str, str] | None):
        self.path = str(path)
        self.reason = reason
        self.pages_complete = pages_complete
        self.last_page = last_page
        if last_page is None:
            where = "before the first complete page"
        else:
            where = f"after {pages_complete} complete pages (last complete page: id {last_page[0]}, {last_page[1]!r})"
        super().__init__(f"{self.path}: truncated or corrupt dump ({reason}) {where}")


@dataclass
class Page:
    """One ``<page>`` of the dump. ``redirect`` is the redirect target title, or None."""

    id: str
    title: str
    ns: int
    text: str
    redirect: str | None = None


@dataclass
class SiteInfo:
    """What the dump says about its wiki: language, namespaces (key -> name), title case rule."""

    lang: str | None = None
    namespaces: dict[int, str] = field(default_factory=dict)
    first_letter_case: bool = True
    dbname: str | None = None


@dataclass
class ReadState:
    """Progress of a read, updated while pages are yielded (also readable after an error)."""

    pages: int = 0
    last_page: tuple[str, str] | None = None
    bytes_read: int = 0


def _open_stream(path: Path):
    """Open ``path`` for reading; return (raw compressed file, decompressed stream)."""
    raw = open(path, "rb")
    magic = raw.read(3)
    raw.seek(0)
    if magic == b"BZh":
        return raw, bz2.BZ2File(raw)
    if magic[:2] == b"\x1f\x8b":
        return raw, gzip.GzipFile(fileobj=raw)
    return raw, raw


def _read_ahead(stream, size: int = CHUNK_BYTES, depth: int = 4):
    """Yield ``stream.read(size)`` chunks (the last one empty), read by a background thread.

    Decompression (bz2, gzip) releases the GIL, so it overlaps with XML parsing and the
    wikitext work of the calling thread. At most ``depth`` chunks wait in memory. An error
    of the read is raised here, in the caller's thread.
    """
    chunks: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work():
        try:
            while not stop.is_set():
                chunk = stream.read(size)
                chunks.put(chunk)
                if not chunk:
                    return
        except BaseException as exc:  # handed to the caller
            chunks.put(exc)

    thread = threading.Thread(target=work, name="cofee-dump-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = chunks.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if not item:
                return
    finally:
        stop.set()
        while thread.is_alive():  # unblock a put() and wait for the read in progress
            try:
                chunks.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_siteinfo(elem, info: SiteInfo) -> None:
    for child in elem:
        name = local_name(child.tag)
        if name == "dbname":
            info.dbname = (child.text or "").strip()
        elif name == "case":
            info.first_letter_case = (child.text or "").strip() != "case-sensitive"
        elif name == "namespaces":
            for ns in child:
                try:
                    key = int(ns.get("key", ""))
                except ValueError:
                    continue
                info.namespaces[key] = (ns.text or "").strip()


def read_page(elem, prefix: str, info: SiteInfo) -> Page:
    title = pid = text = redirect = None
    ns = None
    for child in elem:
        tag = child.tag
        if tag == prefix + "title":
            title = child.text or ""
        elif tag == prefix + "ns":
            try:
                ns = int((child.text or "0").strip())
            except ValueError:
                ns = 0
        elif tag == prefix + "id":
            pid = (child.text or "").strip()
        elif tag == prefix + "redirect":
            redirect = child.get("title") or ""
        elif tag == prefix + "revision":
            node = child.find(prefix + "text")
            if node is not None:
                text = node.text or ""
    title = title or ""
    if ns is None:  # very old schemas have no <ns>: infer it from the title's prefix
        ns = 0
        head, colon, _ = title.partition(":")
        if colon:
            for key, name in info.namespaces.items():
                if name and name.casefold() == head.strip().casefold():
                    ns = key
                    break
    return Page(id=pid or "", title=title, ns=ns, text=text or "", redirect=redirect)


def iter_pages(path, info: SiteInfo | None = None, state: ReadState | None = None,
               progress: bool = True, limit_pages: int | None = None) -> Iterator[Page]:
    """Yield every ``<page>`` of the dump at ``path`` in file order (all namespaces).

    ``info`` is filled from ``<siteinfo>`` and the root's ``xml:lang`` before the first page
    is yielded. ``state`` counts complete pages. A tqdm bar (stderr) follows the compressed
    bytes read. ``limit_pages`` stops after that many pages. Raises :class:`InputError` if
    the file is missing or not a MediaWiki export, :class:`DumpError` if it is cut short.
    """
    path = Path(path)
    info = info if info is not None else SiteInfo()
    state = state if state is not None else ReadState()
    if not path.is_file():
        raise InputError(path, None, "file not found (expected a MediaWiki pages-articles .xml or .xml.bz2)")
    total = os.path.getsize(path)
    from tqdm.auto import tqdm

    raw, stream = _open_stream(path)
    parser = ET.XMLPullParser(events=("start", "end"))
    root = None
    prefix = ""
    bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"reading {path.name}",
               disable=not progress, file=sys.stderr, leave=False)
    chunks = _read_ahead(stream)
    try:
        while True:
            try:
                chunk = next(chunks)
                if not chunk:
                    parser.close()  # raises ParseError if the XML is incomplete
                    break
                parser.feed(chunk)
                events = parser.read_events()
                for event, elem in events:
                    if event == "start":
                        if root is None:
                            root = elem
                            if local_name(root.tag) != "mediawiki":
                                raise InputError(path, None, f"root element is <{local_name(root.tag)}>; expected a MediaWiki export <mediawiki> with <page> elements")
                            prefix = root.tag[: len(root.tag) - len("mediawiki")]
                            lang = root.get(XML_LANG)
                            if lang and not info.lang:
                                info.lang = lang
                        continue
                    tag = elem.tag
                    if tag == prefix + "page":
                        page = read_page(elem, prefix, info)
                        root.clear()
                        state.pages += 1
                        state.last_page = (page.id, page.title)
                        yield page
                        if limit_pages is not None and state.pages >= limit_pages:
                            return
                    elif tag == prefix + "siteinfo":
                        read_siteinfo(elem, info)
                        root.clear()
            except (EOFError, OSError, ET.ParseError, ValueError) as exc:
                reason = str(exc) or type(exc).__name__
                if isinstance(exc, ET.ParseError):
                    reason = f"XML error in the decompressed text: {exc}"
                elif isinstance(exc, EOFError):
                    reason = f"compressed stream ended early: {exc}"
                raise DumpError(path, reason, state.pages, state.last_page) from None
            finally:
                pos = raw.tell() if not raw.closed else total
                bar.update(max(0, pos - state.bytes_read))
                state.bytes_read = pos
    finally:
        chunks.close()
        bar.close()
        stream.close()
        raw.close()
    if root is None:
        raise InputError(path, None, "no XML elements found; expected a MediaWiki pages-articles export")
