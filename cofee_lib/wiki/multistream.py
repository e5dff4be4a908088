"""MediaWiki *multistream* dumps: independent bz2 streams that workers read in parallel.

Wikimedia publishes ``…-pages-articles-multistream.xml.bz2`` with an index
``…-pages-articles-multistream-index.txt.bz2``. The dump is a concatenation of independent
bz2 streams: the first holds the XML header (``<mediawiki …>`` and ``<siteinfo>``), each of
the next ones holds whole ``<page>`` elements (about 100), and the last one the closing
``</mediawiki>``. Every line of the index is ``byte_offset:page_id:title``, where
``byte_offset`` is where the stream holding that page starts in the compressed file (so the
offsets repeat, and never decrease).

What this module gives:

* :func:`resolve_index`: the index to use for a dump (given, found beside it, ``"scan"``, or
  none: then the dump is read as one stream by :func:`cofee_lib.wiki.dump.iter_pages`).
* :func:`open_multistream`: reads the header stream and returns a :class:`Multistream`:
  the pages of the header stream (normally none), the :class:`StreamContext` that lets any
  other stream be parsed on its own, and the :class:`Unit` s (byte ranges of whole streams,
  about :data:`UNIT_BYTES` of compressed data each) in dump order.
* :func:`unit_pages`: decompress and parse one unit, anywhere (a worker process): the pages
  it holds, in order.
* :func:`iter_multistream_pages`: all pages of a multistream dump in one process (what
  ``iter_pages`` yields for the same file, page for page).
* :func:`write_dump`: write pages as a multistream dump plus its index (or as a plain
  single-stream ``.xml.bz2``): for tests and for the scale benchmark.

Without an index, ``index="scan"`` finds the stream starts by scanning the compressed bytes
for a bz2 stream header (``BZh1``-``BZh9`` then the block or end-of-stream magic) that
directly follows the end-of-stream marker of the stream before (its 48-bit magic, CRC and
zero padding bits): a chance match needs some 130 bits to agree. Every boundary, found
either way, is checked again when the stream is decompressed (the stream before must end
exactly there), and every unit must begin and end at a page boundary; a file whose streams
cut pages (``pbzip2`` output) is refused with a clear error, and reads fine as a plain dump.

Errors: a malformed index line is an :class:`~cofee_lib.errors.InputError` naming the index
and the line; a stream that is truncated or corrupt, or an index offset that points past the
file or into the middle of a stream, is a :class:`~cofee_lib.wiki.dump.DumpError` naming the
dump, the byte offset and (for the index) the line.
"""
from __future__ import annotations

import bz2
import os
import queue
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator
from xml.sax.saxutils import escape, quoteattr

from ..errors import CofeeError, InputError, atomic_open
from .dump import XML_LANG, DumpError, Page, ReadState, SiteInfo, local_name, read_page, read_siteinfo

#: Compressed bytes of whole streams handed to one worker task (at least one stream).
UNIT_BYTES = 256 << 10
#: Decompressed bytes produced per step, and compressed bytes read per step.
OUT_CHUNK = 1 << 20
IN_CHUNK = 1 << 20
#: How far :func:`scan_offsets` reads per step.
SCAN_CHUNK = 8 << 20

_BLOCK_MAGIC = b"\x31\x41\x59\x26\x53\x59"  # pi: the start of a compressed block
_EOS_MAGIC = b"\x17\x72\x45\x38\x50\x90"  # sqrt(pi): the end of a stream
_EOS_INT = int.from_bytes(_EOS_MAGIC, "big")
_MASK48 = (1 << 48) - 1
_XML_DECL = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*(<\?xml\s[^>]*\?>)")
_ROOT_OPEN = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?mediawiki)(?=[\s/>])[^>]*>")
_PAGE_OPEN = re.compile(rb"\s*<page[\s>]")
_HOLD = 64  # the last decompressed bytes of a unit kept, to check how it ends
INDEX_HELP = "'byte_offset:page_id:title' (a MediaWiki multistream index)"


def _is_stream_start(head: bytes) -> bool:
    """True when ``head`` (at least 10 bytes) begins a bz2 stream: ``BZh1``-``BZh9`` + a block or EOS magic."""
    return (len(head) >= 10 and head[:3] == b"BZh" and 0x31 <= head[3] <= 0x39
            and head[4:10] in (_BLOCK_MAGIC, _EOS_MAGIC))


def _ends_a_stream(before: bytes) -> bool:
    """True when the 11 bytes ``before`` a position end a bz2 stream there (EOS magic, CRC, zero pad)."""
    if len(before) < 11:
        return False
    value = int.from_bytes(before[-11:], "big")
    for pad in range(8):
        if value & ((1 << pad) - 1) == 0 and (value >> (32 + pad)) & _MASK48 == _EOS_INT:
            return True
    return False


# --------------------------------------------------------------------------- index

def index_beside(dump) -> Path | None:
    """The index Wikimedia would publish beside ``dump``, if that file exists.

    ``X-multistream.xml.bz2`` -> ``X-multistream-index.txt.bz2``;
    ``X-multistream3.xml-p1p2.bz2`` -> ``X-multistream-index3.txt-p1p2.bz2``; also
    ``<name without .xml.bz2>-index.txt(.bz2)``.
    """
    dump = Path(dump)
    name = dump.name
    candidates = []
    m = re.fullmatch(r"(.*multistream)(\d*)\.xml(.*)", name)
    if m:
        candidates.append(f"{m.group(1)}-index{m.group(2)}.txt{m.group(3)}")
    stem = name
    for suffix in (".bz2", ".xml"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    candidates += [f"{stem}-index.txt.bz2", f"{stem}-index.txt"]
    for cand in candidates:
        path = dump.with_name(cand)
        if path != dump and path.is_file():
            return path
    return None


def default_index_path(dump) -> Path:
    """Where :func:`write_dump` puts the index of ``dump`` (the name :func:`index_beside` finds)."""
    dump = Path(dump)
    m = re.fullmatch(r"(.*multistream)(\d*)\.xml(.*)", dump.name)
    if m:
        return dump.with_name(f"{m.group(1)}-index{m.group(2)}.txt{m.group(3)}")
    stem = dump.name
    for suffix in (".bz2", ".xml"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return dump.with_name(f"{stem}-index.txt.bz2")


def resolve_index(dump, index=None) -> Path | str | None:
    """The index to read ``dump`` with: a path, ``"scan"``, or None (read as one stream).

    ``index``: None or ``"auto"``: the index beside the dump (:func:`index_beside`) if there is
    one, else None; ``"none"`` or False: None; ``"scan"``: find the streams by scanning; a path:
    that index (it must exist).
    """
    if index is None or index is True or (isinstance(index, str) and index == "auto"):
        return index_beside(dump)
    if index is False or (isinstance(index, str) and index == "none"):
        return None
    if isinstance(index, str) and index == "scan":
        return "scan"
    path = Path(index)
    if not path.is_file():
        raise InputError(path, None, f"index file not found (expected a multistream index of {INDEX_HELP} lines, "
                                     "e.g. …-pages-articles-multistream-index.txt.bz2)")
    return path


def _open_index(path: Path):
    with open(path, "rb") as raw:
        magic = raw.read(3)
    return bz2.open(path, "rb") if magic == b"BZh" else open(path, "rb")


def index_offsets(path) -> Iterator[tuple[int, int]]:
    """The distinct stream offsets of a multistream index, in order: ``(offset, line number)``.

    Reads plain or bz2 text lazily. Raises :class:`InputError` naming the line for a line that
    is not ``offset:page_id:title`` or an offset smaller than the one before.
    """
    path = Path(path)
    previous = -1
    lineno = 0
    handle = _open_index(path)
    try:
        try:
            for lineno, line in enumerate(handle, 1):
                first = line.find(b":")
                second = line.find(b":", first + 1) if first > 0 else -1
                if second < 0:
                    if not line.strip():
                        continue
                    raise InputError(path, lineno, f"malformed index line {line[:80]!r}; expected {INDEX_HELP}")
                head, pid = line[:first], line[first + 1:second]
                if not (head.isdigit() and pid.isdigit()):
                    raise InputError(path, lineno, f"malformed index line {line[:80]!r}: the byte offset and the "
                                                   f"page id must be decimal numbers; expected {INDEX_HELP}")
                offset = int(head)
                if offset != previous:
                    if offset < previous:
                        raise InputError(path, lineno, f"byte offset {offset} is smaller than the one before "
                                                       f"({previous}); the offsets of an index never decrease")
                    previous = offset
                    yield offset, lineno
        except (EOFError, OSError) as exc:
            raise InputError(path, lineno + 1, f"cannot read the index (truncated or corrupt bz2?): {exc}") from None
    finally:
        handle.close()
    if previous < 0:
        raise InputError(path, None, f"the index has no lines; expected {INDEX_HELP}")


def scan_offsets(path) -> Iterator[tuple[int, None]]:
    """The bz2 stream starts of ``path`` found by scanning (see the module doc): ``(offset, None)``."""
    path = Path(path)
    with open(path, "rb") as handle:
        first = handle.read(10)
        if not _is_stream_start(first):
            raise InputError(path, None, "not a bz2 file (no bz2 stream header at byte 0): "
                                         "index='scan' needs a multistream .xml.bz2")
        yield 0, None
        handle.seek(0)
        keep = 32
        tail = b""
        base = 0  # file offset of tail[0]
        last = 0  # the last offset yielded (the tail is scanned again with the next block)
        while True:
            block = handle.read(SCAN_CHUNK)
            buf = tail + block
            at_end = not block
            i = buf.find(b"BZh", 1)
            while i >= 0:
                if i + 10 > len(buf) and not at_end:
                    break  # seen again with the next block
                pos = base + i
                if pos > last and _is_stream_start(buf[i:i + 10]) and i >= 11 and _ends_a_stream(buf[i - 11:i]):
                    last = pos
                    yield pos, None
                i = buf.find(b"BZh", i + 1)
            if at_end:
                return
            cut = max(0, len(buf) - keep)
            base += cut
            tail = buf[cut:]


# --------------------------------------------------------------------------- units

@dataclass(frozen=True)
class Unit:
    """Whole bz2 streams ``[start, end)`` of the dump, read and parsed as one task.

    ``marks``: the stream starts the index (or the scan) names inside it, ``(offset, line)``
    (line None when found by scanning); ``end_line``: the index line of the stream that starts
    at ``end`` (None when ``end`` is the file's size or was found by scanning).
    """

    start: int
    end: int
    marks: tuple = ()
    end_line: int | None = None


@dataclass(frozen=True)
class StreamContext:
    """What any stream needs to be parsed alone: the dump, its XML declaration + root start tag."""

    path: str
    opening: bytes
    closing: bytes
    prefix: str
    source: str  # the index path, or "a scan for bz2 stream headers"


class UnitError(Exception):
    """A unit could not be read; ``reason`` says where and why (turned into a :class:`DumpError`)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _where_next(unit: Unit, source: str) -> str:
    if unit.end_line is not None:
        return f"{source} line {unit.end_line} says the next stream starts there"
    return f"{source} found the next stream there"


def decompress_unit(path, unit: Unit, size: int | None = None, source: str = "the index") -> Iterator[bytes]:
    """The decompressed bytes of the streams of ``unit``, in chunks of at most :data:`OUT_CHUNK`.

    Raises :class:`UnitError` when a stream is truncated or corrupt, when a stream does not end
    exactly at ``unit.end``, or when a stream start named in ``unit.marks`` is not one.
    """
    size = os.path.getsize(path) if size is None else size
    starts = []
    with open(path, "rb") as handle:
        handle.seek(unit.start)
        pos = unit.start  # file offset of the next byte to read
        pending = b""
        while True:
            at = pos - len(pending)
            if at >= unit.end:
                break
            while len(pending) < 10 and pos < unit.end:
                piece = handle.read(min(IN_CHUNK, unit.end - pos))
                if not piece:
                    break
                pending += piece
                pos += len(piece)
            if not _is_stream_start(pending[:10]):
                if starts:  # a stream ended here, before the unit's end, and no other one starts
                    raise UnitError(f"the bz2 stream at byte {starts[-1]} ends at byte {at}, where no other stream "
                                    f"starts, before byte {unit.end}, where {_where_next(unit, source)}: the index "
                                    f"does not match the dump (or the dump is damaged)")
                line = dict(unit.marks).get(at)
                what = (f"{source} line {line} says a bz2 stream starts there" if line
                        else "a bz2 stream should start there")
                raise UnitError(f"the bytes at offset {at} are not the start of a bz2 stream ({what}; "
                                f"the index does not belong to this dump, or the dump is damaged)")
            starts.append(at)
            decomp = bz2.BZ2Decompressor()
            data, pending = pending, b""
            while True:
                try:
                    out = decomp.decompress(data, OUT_CHUNK)
                except (OSError, EOFError, ValueError) as exc:
                    raise UnitError(f"the bz2 stream at byte {at} is corrupt: {exc}") from None
                data = b""
                if out:
                    yield out
                if decomp.eof:
                    pending = decomp.unused_data
                    break
                if decomp.needs_input:
                    if pos >= unit.end:
                        if unit.end >= size:
                            raise UnitError(f"compressed stream ended early: the bz2 stream at byte {at} is cut "
                                            f"at the end of the file (byte {size}; truncated download?)")
                        raise UnitError(f"the bz2 stream at byte {at} runs past byte {unit.end}, where "
                                        f"{_where_next(unit, source)}: the index does not match the dump")
                    data = handle.read(min(IN_CHUNK, unit.end - pos))
                    if not data:
                        raise UnitError(f"compressed stream ended early: the file ends at byte {pos} inside the "
                                        f"bz2 stream at byte {at} (truncated, or changed while being read?)")
                    pos += len(data)
    found = set(starts)
    for offset, line in unit.marks:
        if offset not in found:
            said = f"{source} line {line}" if line else source
            raise UnitError(f"{said} says a bz2 stream starts at byte {offset}, but none does (it lies inside "
                            f"the stream at byte {max(s for s in starts if s < offset)}): the index does not "
                            f"match the dump")


def _units(offsets: Iterable[tuple[int, int | None]], size: int, dump: Path, source: str,
           unit_bytes: int) -> Iterator[Unit | DumpError]:
    """Group the stream offsets after the header stream into units (a :class:`DumpError` item
    marks, in order, an offset past the end of the file; nothing follows it)."""
    start = None
    marks: list = []
    for offset, line in offsets:
        if offset >= size:
            if start is not None:
                yield Unit(start, size, tuple(marks), None)
            where = f"{source} line {line}" if line else source
            yield DumpError(dump, f"{where} says a bz2 stream starts at byte {offset}, past the end of the file "
                                  f"({size} bytes): the dump is truncated, or the index belongs to another dump",
                            0, None)
            return
        if start is None:
            start, marks = offset, [(offset, line)]
        elif offset - start >= unit_bytes:
            yield Unit(start, offset, tuple(marks), line)
            start, marks = offset, [(offset, line)]
        else:
            marks.append((offset, line))
    if start is not None:
        yield Unit(start, size, tuple(marks), None)


@dataclass
class UnitResult:
    """How a unit ended: ``closed`` when it held the closing root tag."""

    closed: bool = False


def unit_pages(ctx: StreamContext, unit: Unit, info: SiteInfo, chunks: Iterable[bytes] | None = None,
               result: UnitResult | None = None) -> Iterator[Page]:
    """The pages of ``unit`` in order (decompressing it unless its decompressed ``chunks`` are given).

    The streams are parsed as an XML fragment inside the dump's own root start tag, so the
    namespace and ``xml:lang`` are those of the dump. Raises :class:`UnitError`.
    """
    result = result if result is not None else UnitResult()
    if chunks is None:
        chunks = decompress_unit(ctx.path, unit, source=ctx.source)
    parser = ET.XMLPullParser(events=("end",))
    parser.feed(ctx.opening)
    page_tag = ctx.prefix + "page"
    root_tag = ctx.prefix + ctx.closing[2:-1].decode("utf-8", "replace").rsplit(":", 1)[-1]
    head = b""  # the first bytes, until they show how the unit begins
    tail = b""  # the last bytes fed
    began = False
    span = f"bytes {unit.start}-{unit.end}"

    def check_start(body: bytes) -> None:
        body = body.lstrip()
        if body and not (_PAGE_OPEN.match(body) or body.startswith(ctx.closing)):
            raise UnitError(f"the bz2 stream at byte {unit.start} does not begin with a <page> "
                            f"(it begins {body[:40]!r}): the dump's streams are not page-aligned "
                            f"(e.g. made by pbzip2); read this dump as one stream (index='none')")

    def pages_so_far():
        for _event, elem in parser.read_events():
            if elem.tag == page_tag:
                page = read_page(elem, ctx.prefix, info)
                elem.clear()
                yield page
            elif elem.tag == root_tag:
                result.closed = True

    try:
        for chunk in chunks:
            if not chunk:
                continue
            if not began:
                head += chunk
                if len(head.lstrip()) < 16 and len(head) < 4096:
                    continue
                began = True
                check_start(head)
                chunk, head = head, b""
            parser.feed(chunk)
            tail = (tail + chunk)[-_HOLD:] if len(chunk) < _HOLD else chunk[-_HOLD:]
            yield from pages_so_far()
        if not began and head:
            check_start(head)
            parser.feed(head)
            tail = head[-_HOLD:]
            yield from pages_so_far()
        end = tail.rstrip()
        if end and not (end.endswith(b"</page>") or end.endswith(ctx.closing)):
            raise UnitError(f"the streams at {span} do not end at a page boundary (they end {end[-40:]!r}): "
                            f"a stream cuts a page (e.g. made by pbzip2, or damaged); read this dump as one stream")
        if not result.closed:
            parser.feed(ctx.closing)
            yield from pages_so_far()
            result.closed = False  # the closing tag was ours
        parser.close()
    except ET.ParseError as exc:
        raise UnitError(f"XML error in the decompressed text of the streams at {span}: {exc}") from None


# --------------------------------------------------------------------------- the header

@dataclass
class Multistream:
    """An opened multistream dump (see :func:`open_multistream`)."""

    path: Path
    size: int
    ctx: StreamContext | None
    head_pages: list
    head_closed: bool
    head_end: int
    units: Iterator  # of Unit, or a DumpError item that ends them
    head_error: DumpError | None = None


def open_multistream(path, index, info: SiteInfo, unit_bytes: int | None = None) -> Multistream:
    """Read the header stream of ``path`` (filling ``info``) and plan the other streams.

    ``index`` is a path or ``"scan"`` (see :func:`resolve_index`). The pages of the header
    stream are returned in ``head_pages`` (a real dump has none there). Raises
    :class:`InputError` for a file that is not a MediaWiki export or a malformed index line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "file not found (expected a MediaWiki pages-articles-multistream .xml.bz2)")
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        if not _is_stream_start(handle.read(10)):
            raise InputError(path, None, "not a bz2 file: a multistream dump is a .xml.bz2 made of bz2 streams "
                                         "(read it without an index, or give the dump that goes with the index)")
    if index == "scan":
        offsets = scan_offsets(path)
        source = "a scan for bz2 stream headers"
    else:
        offsets = index_offsets(index)
        source = str(index)
    offsets = iter(offsets)
    first = next(offsets)
    if first[0] == 0:  # the header stream is listed (always so for a scan): the next offset ends it
        head_end_item = next(offsets, None)
    else:
        head_end_item = first
        first = None
    head_end = size if head_end_item is None or head_end_item[0] >= size else head_end_item[0]
    head_unit = Unit(0, head_end, (first,) if first else (), head_end_item[1] if head_end_item else None)

    def rest():
        if head_end_item is not None:
            yield head_end_item
        yield from offsets

    units = _units(rest(), size, path, source, UNIT_BYTES if unit_bytes is None else unit_bytes)
    pages: list = []
    state = {"closed": False, "ctx": None}
    error = None
    try:
        _parse_head(path, head_unit, size, source, info, pages, state)
    except UnitError as exc:
        error = DumpError(path, exc.reason, 0, None)
    if state["ctx"] is None and error is not None:
        raise error
    return Multistream(path, size, state["ctx"], pages, state["closed"], head_end, units, error)


def _parse_head(path: Path, unit: Unit, size: int, source: str, info: SiteInfo, pages: list, state: dict) -> None:
    parser = ET.XMLPullParser(events=("start", "end"))
    root = None
    prefix = ""
    seen = b""
    try:
        for chunk in decompress_unit(path, unit, size, source):
            if state["ctx"] is None:
                seen += chunk
                decl = _XML_DECL.match(seen)
                m = _ROOT_OPEN.search(seen)
                if m is None:
                    if len(seen) > (1 << 20):
                        raise InputError(path, None, "no <mediawiki> root element in the first MiB; expected a "
                                                     "MediaWiki pages-articles export")
                    parser.feed(chunk)
                else:
                    opening = (decl.group(1) if decl else b"") + m.group(0)
                    state["ctx"] = StreamContext(str(path), opening, b"</" + m.group(1) + b">", "", source)
                    parser.feed(chunk)
                    seen = b""
            else:
                parser.feed(chunk)
            for event, elem in parser.read_events():
                if event == "start":
                    if root is None:
                        root = elem
                        if local_name(root.tag) != "mediawiki":
                            raise InputError(path, None, f"root element is <{local_name(root.tag)}>; expected a "
                                                         "MediaWiki export <mediawiki> with <page> elements")
                        prefix = root.tag[: len(root.tag) - len("mediawiki")]
                        ctx = state["ctx"]
                        state["ctx"] = StreamContext(ctx.path, ctx.opening, ctx.closing, prefix, source)
                        lang = root.get(XML_LANG)
                        if lang and not info.lang:
                            info.lang = lang
                    continue
                if elem is root:
                    state["closed"] = True
                elif elem.tag == prefix + "page":
                    pages.append(read_page(elem, prefix, info))
                    root.clear()
                elif elem.tag == prefix + "siteinfo":
                    read_siteinfo(elem, info)
                    root.clear()
        if root is None:
            raise InputError(path, None, "no XML elements found; expected a MediaWiki pages-articles export")
        if unit.end >= size and not state["closed"]:
            parser.close()  # the whole dump was this stream: raises for an incomplete document
    except ET.ParseError as exc:
        raise UnitError(f"XML error in the decompressed text of the first stream: {exc}") from None


# --------------------------------------------------------------------------- one process

def iter_units_ahead(stream: Multistream, depth: int = 4) -> Iterator:
    """``(unit, chunks)`` for each unit (or a DumpError item), decompressed by a background thread.

    ``chunks`` must be consumed (or closed) before the next item is taken. A :class:`UnitError`
    of the decompression is raised from ``chunks`` at the point where it happened.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()
    ctx = stream.ctx

    def work():
        try:
            for unit in stream.units:
                if stop.is_set():
                    return
                items.put(("unit", unit))
                if isinstance(unit, Unit):
                    try:
                        for chunk in decompress_unit(ctx.path, unit, stream.size, ctx.source):
                            if stop.is_set():
                                return
                            items.put(("chunk", chunk))
                    except UnitError as exc:
                        items.put(("error", exc))
                    items.put(("end", None))
            items.put(("done", done))
        except BaseException as exc:  # an index error: handed to the caller
            items.put(("raise", exc))

    thread = threading.Thread(target=work, name="cofee-multistream-reader", daemon=True)
    thread.start()

    def chunks():
        while True:
            kind, value = items.get()
            if kind == "chunk":
                yield value
            elif kind == "error":
                items.get()  # its "end"
                raise value
            elif kind == "end":
                return
            elif kind == "raise":
                raise value

    try:
        while True:
            kind, value = items.get()
            if kind == "done":
                return
            if kind == "raise":
                raise value
            if kind != "unit":  # leftovers of a unit whose chunks were not all read
                continue
            yield value, (chunks() if isinstance(value, Unit) else None)
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)


def iter_multistream_pages(path, index="auto", info: SiteInfo | None = None, state: ReadState | None = None,
                           limit_pages: int | None = None) -> Iterator[Page]:
    """Every page of a multistream dump in file order, in this process (decompression ahead in a thread).

    The same pages as :func:`~cofee_lib.wiki.dump.iter_pages` over the same file. ``index`` as in
    :func:`resolve_index`; a dump without an index (and not ``"scan"``) raises :class:`CofeeError`.
    """
    path = Path(path)
    info = info if info is not None else SiteInfo()
    state = state if state is not None else ReadState()
    resolved = resolve_index(path, index)
    if resolved is None:
        raise CofeeError(f"{path}: no multistream index given or found beside it "
                         f"(expected {default_index_path(path).name}); use iter_pages, or index='scan'")
    stream = open_multistream(path, resolved, info)

    def emit(page):
        state.pages += 1
        state.last_page = (page.id, page.title)
        return page

    for page in stream.head_pages:
        yield emit(page)
        if limit_pages is not None and state.pages >= limit_pages:
            return
    state.bytes_read = stream.head_end
    if stream.head_error is not None:
        raise DumpError(path, stream.head_error.reason, state.pages, state.last_page)
    closed = stream.head_closed
    for unit, chunks in iter_units_ahead(stream):
        if isinstance(unit, DumpError):
            raise DumpError(path, unit.reason, state.pages, state.last_page)
        if closed:
            raise DumpError(path, f"the XML root is closed before byte {unit.start}, but more streams follow",
                            state.pages, state.last_page)
        result = UnitResult()
        try:
            for page in unit_pages(stream.ctx, unit, info, chunks, result):
                yield emit(page)
                if limit_pages is not None and state.pages >= limit_pages:
                    return
        except UnitError as exc:
            raise DumpError(path, exc.reason, state.pages, state.last_page) from None
        finally:
            for _ in chunks:  # drain what the parser did not read
                pass
        closed = result.closed
        state.bytes_read = unit.end
    if not closed:
        raise DumpError(path, "the XML ends before </mediawiki> (the last stream is missing?)",
                        state.pages, state.last_page)


# --------------------------------------------------------------------------- writing

def _header(info: SiteInfo) -> str:
    lang = info.lang or "en"
    case = "first-letter" if info.first_letter_case else "case-sensitive"
    lines = ['<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
             'xsi:schemaLocation="http://www.mediawiki.org/xml/export-0.10/ '
             'http://www.mediawiki.org/xml/export-0.10.xsd" version="0.10" xml:lang=' + quoteattr(lang) + '>',
             "  <siteinfo>",
             f"    <dbname>{escape(info.dbname or lang + 'wiki')}</dbname>",
             f"    <case>{case}</case>",
             "    <namespaces>"]
    for key, name in sorted(info.namespaces.items()):
        if name:
            lines.append(f'      <namespace key="{key}" case="{case}">{escape(name)}</namespace>')
        else:
            lines.append(f'      <namespace key="{key}" case="{case}" />')
    lines += ["    </namespaces>", "  </siteinfo>", ""]
    return "\n".join(lines)


def _text(value: str) -> str:
    return escape(value).replace("\r", "&#13;")


def page_xml(page: Page) -> str:
    """One ``<page>`` element as a MediaWiki export writes it (id, title, ns, redirect, text)."""
    redirect = "" if page.redirect is None else f"    <redirect title={quoteattr(page.redirect)} />\n"
    return ("  <page>\n"
            f"    <title>{_text(page.title)}</title>\n"
            f"    <ns>{int(page.ns)}</ns>\n"
            f"    <id>{escape(str(page.id))}</id>\n"
            f"{redirect}"
            "    <revision>\n"
            f"      <id>{escape(str(page.id))}</id>\n"
            "      <model>wikitext</model>\n"
            "      <format>text/x-wiki</format>\n"
            f'      <text xml:space="preserve">{_text(page.text)}</text>\n'
            "    </revision>\n"
            "  </page>\n")


def write_dump(pages: Iterable[Page], out, info: SiteInfo | None = None, multistream: bool = True,
               pages_per_stream: int = 100, index=None, level: int = 9) -> dict:
    """Write ``pages`` as a MediaWiki export: a multistream ``.xml.bz2`` and its index, or one stream.

    Multistream (as Wikimedia does): a header stream (``<mediawiki>`` + ``<siteinfo>``),
    streams of ``pages_per_stream`` pages, and a last stream with ``</mediawiki>``; the index
    (default: :func:`default_index_path`, bz2 when its name ends in ``.bz2``) has one
    ``offset:page_id:title`` line per page. ``multistream=False``: the same XML as one bz2
    stream, no index. Both files are written atomically. Returns
    ``{"dump", "index", "streams", "pages"}``.
    """
    if pages_per_stream < 1:
        raise CofeeError("pages_per_stream must be at least 1")
    info = info if info is not None else SiteInfo(lang="en", namespaces={0: ""})
    out = Path(out)
    index_path = None
    if multistream:
        index_path = Path(index) if index is not None else default_index_path(out)
    n_pages = streams = 0
    if not multistream:
        with atomic_open(out, "wb") as handle:
            comp = bz2.BZ2Compressor(level)
            handle.write(comp.compress(_header(info).encode("utf-8")))
            for page in pages:
                handle.write(comp.compress(page_xml(page).encode("utf-8")))
                n_pages += 1
            handle.write(comp.compress(b"</mediawiki>\n"))
            handle.write(comp.flush())
        return {"dump": str(out), "index": None, "streams": 1, "pages": n_pages}
    index_comp = bz2.BZ2Compressor(level) if index_path.name.endswith(".bz2") else None
    with atomic_open(out, "wb") as handle, atomic_open(index_path, "wb") as index_handle:
        offset = 0

        def stream(text: str) -> None:
            nonlocal offset, streams
            data = bz2.compress(text.encode("utf-8"), level)
            handle.write(data)
            offset += len(data)
            streams += 1

        def index_write(data: bytes) -> None:
            index_handle.write(index_comp.compress(data) if index_comp is not None else data)

        stream(_header(info))
        batch: list[Page] = []

        def flush() -> None:
            if batch:
                index_write("".join(f"{offset}:{p.id}:{p.title.replace(chr(10), ' ')}\n"
                                    for p in batch).encode("utf-8"))
                stream("".join(page_xml(p) for p in batch))
                batch.clear()

        for page in pages:
            batch.append(page)
            n_pages += 1
            if len(batch) >= pages_per_stream:
                flush()
        flush()
        stream("</mediawiki>\n")
        if index_comp is not None:
            index_handle.write(index_comp.flush())
    return {"dump": str(out), "index": str(index_path), "streams": streams, "pages": n_pages}
