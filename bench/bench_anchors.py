"""Benchmark 3: Wikipedia anchor extraction (`cofee corpus anchors`) against bzcat and wikiextractor.

Throughput is in MB/s of **compressed** dump (the file size divided by the wall time of the
whole command, interpreter start-up included). On the same dump, in the same run:

* ``bzcat DUMP > /dev/null``: decompression alone, the ceiling of any tool that reads the
  file (one process);
* ``cofee corpus anchors --workers W`` for each W: the kit (one process that decompresses,
  parses the XML, parses wikitext and writes; with W > 1 the wikitext goes to a pool of W
  worker processes and the main process keeps the rest);
* the kit's reading alone (``cofee_lib.wiki.iter_pages``: decompression + XML, no wikitext):
  where the kit's own time goes;
* ``wikiextractor --processes W`` (the PyPI package users reach for; it writes plain text,
  not anchors, and expands templates by default). Skipped, with a note, when it is not
  installed (``pip install wikiextractor``: a benchmark-only tool, not a kit dependency).
  Its latest release, 3.0.6, does not start on Python 3.11 or later (``re.error: global
  flags not at the start of the expression``), so there the row has no reference.

Peak memory is ``ru_maxrss`` of the command's process tree (the largest single process, not a
sum), on the dump and on the dump repeated ``repeat`` times: a valid dump whose pages appear
``repeat`` times with the titles of copies 2.. renamed (``Title (copy 2)``) and page ids made
unique, so that the redirect table also grows. Memory that stays flat means streaming.

**Multistream** (settings ``multistream``): the same pages (the dump once, and ``repeat``
times, same renaming) written as a Wikimedia ``pages-articles-multistream.xml.bz2`` (streams
of :data:`PAGES_PER_STREAM` pages: the compressed size of a real dump's streams) with its
index beside it (:func:`multistream_dump`), so that ``cofee corpus
anchors`` reads it in parallel streams: each worker decompresses and parses whole streams.
The same commands run on it (bzcat reads it too; ``kit_read_only`` is
``iter_multistream_pages``); its rows carry the issue's targets: one process at least
50% of bzcat, ``--workers 2`` at least 1.7x ``--workers 1``. ``--size multistream`` measures
only these (the full dump, no wikiextractor).

Each command runs ``repeats`` times; the best time and the largest memory are kept.
"""
from __future__ import annotations

import argparse
import bz2
import importlib.util
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

NAME = "anchors"
SIZES = {
    "tiny": {"dump": "enwiki-tables", "repeat": 4, "workers": [1, 2], "repeats": 1, "wikiextractor_processes": [1],
             "plain": True, "multistream": True},
    "full": {"dump": "enwiki", "repeat": 4, "workers": [1, 2], "repeats": 2, "wikiextractor_processes": [1, 2],
             "plain": True, "multistream": True},
    "multistream": {"dump": "enwiki", "repeat": 4, "workers": [1, 2], "repeats": 2, "wikiextractor_processes": [],
                    "plain": False, "multistream": True},
}
TARGET_SHARE_OF_BZCAT = 0.5
TARGET_SCALING = 1.7  # --workers 2 / --workers 1 on the multistream dump
# Wikimedia puts 100 pages in a stream: of the order of 100 kB compressed on average over a full
# enwiki dump (roughly 20 GB over 20-odd million pages, most of them short redirects; an estimate,
# not a measurement). The embedded dump's pages are larger (~8 kB compressed each), so 16 of them
# make a stream of about that size (~130 kB), and the parallel reader gets as many tasks per MB.
PAGES_PER_STREAM = 16
TARGET_MEMORY_GROWTH = 1.2  # peak(dump x repeat) / peak(dump) at most this: "flat"
_TITLE = re.compile(r"<title>(.*?)</title>")
_PAGE_ID = re.compile(r"(<ns>-?\d+</ns>\s*<id>)(\d+)(</id>)")


def repeated_dump(source: Path, times: int, out: Path) -> Path:
    """Write a valid bz2 dump holding the pages of ``source`` ``times`` times (see module doc)."""
    from cofee_lib.errors import atomic_open

    text = bz2.decompress(source.read_bytes()).decode("utf-8")
    first = text.find("<page>")
    last = text.rfind("</page>")
    if first < 0 or last < 0:
        from cofee_lib.errors import InputError

        raise InputError(source, None, "no <page> element: expected a MediaWiki pages-articles dump")
    first = text.rfind("\n", 0, first) + 1
    end = last + len("</page>\n")
    head, body, tail = text[:first], text[first:end], text[end:]
    parts = [head, body]
    for k in range(2, times + 1):
        copy = _TITLE.sub(lambda m: f"<title>{m.group(1)} (copy {k})</title>", body)
        copy = _PAGE_ID.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + k * 10 ** 9}{m.group(3)}", copy)
        parts.append(copy)
    parts.append(tail)
    with atomic_open(out, "wb") as handle:
        handle.write(bz2.compress("".join(parts).encode("utf-8"), 9))
    return out


def _renamed_copies(source: Path, times: int, info=None):
    """The pages of ``source``, then ``times - 1`` renamed copies (the recipe of :func:`repeated_dump`)."""
    from dataclasses import replace

    from cofee_lib.wiki import iter_pages

    for k in range(1, times + 1):
        for page in iter_pages(source, info if k == 1 else None, progress=False):
            if k == 1:
                yield page
            else:
                yield replace(page, title=f"{page.title} (copy {k})", id=str(int(page.id) + k * 10 ** 9))


def multistream_dump(source: Path, times: int, out: Path, pages_per_stream: int = PAGES_PER_STREAM) -> dict:
    """Write the pages of ``source`` ``times`` times (renamed as :func:`repeated_dump` does) as a
    multistream dump ``out`` (name it ``…-multistream.xml.bz2``) with its index beside it.

    Pages are streamed (memory does not grow with ``times``). Returns what
    :func:`cofee_lib.wiki.write_dump` returns.
    """
    from cofee_lib.wiki import SiteInfo, iter_pages, write_dump

    info = SiteInfo()
    for _ in iter_pages(source, info, progress=False, limit_pages=1):  # the siteinfo, before writing
        break
    return write_dump(_renamed_copies(source, times), out, info, pages_per_stream=pages_per_stream)


def _dumps(settings: dict, work_dir) -> dict[str, Path]:
    from cofee_lib import cache
    from cofee_lib.sources import fetch

    one = Path(fetch(settings["dump"], progress=False))
    times = settings["repeat"]
    dumps = {}
    if settings.get("plain", True):
        big = common.work_subdir(work_dir) / f"{settings['dump']}-x{times}.xml.bz2"
        key = {"source": cache.file_digest(one), "times": times,
               "recipe": "titles of copies renamed, page ids unique; v1"}

        def build(path: Path) -> dict:
            common.say(f"anchors: writing {path.name} ({times} x {one.name})")
            repeated_dump(one, times, path)
            return {"bytes": path.stat().st_size}

        cache.cached_file(big, key, build)
        dumps.update({"x1": one, f"x{times}": big})
    if settings.get("multistream"):
        for n in (1, times):
            path = common.work_subdir(work_dir) / f"{settings['dump']}-x{n}-pages-articles-multistream.xml.bz2"
            key = {"source": cache.file_digest(one), "times": n, "pages_per_stream": PAGES_PER_STREAM,
                   "recipe": "multistream + index; titles of copies renamed, page ids unique; v1"}

            def build_multi(p: Path, n=n) -> dict:
                common.say(f"anchors: writing {p.name} ({n} x {one.name}, multistream, "
                           f"{PAGES_PER_STREAM} pages per stream, with its index)")
                made = multistream_dump(one, n, p)
                return {"bytes": p.stat().st_size, "streams": made["streams"], "pages": made["pages"],
                        "index_sha256": cache.file_digest(Path(made["index"]))}

            from cofee_lib.wiki import index_beside

            info = cache.lookup(path, key)
            if info is not None and (index_beside(path) is None
                                     or cache.file_digest(index_beside(path)) != info.get("index_sha256")):
                path.unlink()  # its index is missing or not the one written with it: build both again
            cache.cached_file(path, key, build_multi)
            dumps[f"x{n}-multistream"] = path
    return dumps


def _commands(dump: Path, settings: dict, tmp: Path, multistream: bool = False) -> dict[str, list[str]]:
    cmds = {}
    bzcat = shutil.which("bzcat")
    cmds["bzcat"] = [bzcat, str(dump)] if bzcat else common.python_command(
        "-c", "import bz2,shutil,sys,os; shutil.copyfileobj(bz2.open(sys.argv[1]), open(os.devnull,'wb'), 1<<20)",
        dump)
    reader = "iter_multistream_pages(sys.argv[1])" if multistream else "iter_pages(sys.argv[1], progress=False)"
    cmds["kit_read_only"] = common.python_command(
        "-c", f"import sys; from cofee_lib.wiki import {reader.split('(')[0]}\nfor _ in {reader}: pass", dump)
    for w in settings["workers"]:
        # the index lies beside a multistream dump, so the command finds it (--index auto)
        cmds[f"kit_workers{w}"] = common.python_command("-m", "cofee_lib", "corpus", "anchors", "--dump", dump,
                                                        "--out", tmp / f"anchors-w{w}.jsonl", "--quiet",
                                                        "--workers", w)
    if not multistream and importlib.util.find_spec("wikiextractor") is not None:
        for w in settings["wikiextractor_processes"]:
            cmds[f"wikiextractor_processes{w}"] = common.python_command(
                "-m", "wikiextractor.WikiExtractor", dump, "-o", tmp / f"wikiextractor-p{w}", "-q",
                "--processes", w)
    return cmds


def _measure(dump: Path, settings: dict, multistream: bool = False) -> dict:
    size_mb = dump.stat().st_size / 1e6
    out = {}
    outputs: dict = {}
    for attempt in range(settings["repeats"]):
        with tempfile.TemporaryDirectory(prefix="cofee-bench-anchors-") as tmp:
            for name, cmd in _commands(dump, settings, Path(tmp), multistream).items():
                res = common.run_command(cmd, cwd=common.REPO)
                best = out.setdefault(name, {"seconds": res["seconds"], "max_rss_mb": res["max_rss_mb"],
                                             "command": " ".join(Path(c).name if i == 0 else str(c)
                                                                 for i, c in enumerate(cmd))})
                best["seconds"] = min(best["seconds"], res["seconds"])
                best["max_rss_mb"] = max(best["max_rss_mb"], res["max_rss_mb"])
            if attempt == 0:
                from cofee_lib import cache

                outputs = {w: cache.file_digest(Path(tmp) / f"anchors-w{w}.jsonl") for w in settings["workers"]}
    for res in out.values():
        res["mb_per_s"] = size_mb / res["seconds"]
    # the output must not depend on --workers: a benchmark of a wrong answer is no benchmark
    same = len(set(outputs.values())) <= 1
    if not same:
        raise RuntimeError(f"cofee corpus anchors wrote different outputs for --workers {settings['workers']} "
                           f"on {dump}: {outputs}")
    return {"compressed_mb": size_mb, "tools": out, "output_sha256": next(iter(outputs.values()), None)}


def _speed_ratios(t_big: dict, settings: dict) -> tuple[str, str, float | None, float | None]:
    """``(w1, wmax, kit-1-process / bzcat, wmax / w1)`` for the tools measured on the big dump."""
    w1, wmax = f"kit_workers{min(settings['workers'])}", f"kit_workers{max(settings['workers'])}"
    share = common.ratio(t_big[w1]["mb_per_s"], t_big["bzcat"]["mb_per_s"])
    return w1, wmax, share, common.ratio(t_big[wmax]["mb_per_s"], t_big[w1]["mb_per_s"])


def _share_row(big: str, t_big: dict, w1: str, share: float | None) -> dict:
    return common.row("3 anchors", f"MB/s (compressed, {big} dump): kit 1 process / bzcat (the ceiling)",
                      t_big[w1]["mb_per_s"], t_big["bzcat"]["mb_per_s"], "MB/s", share,
                      f">= {TARGET_SHARE_OF_BZCAT:.0%}", share >= TARGET_SHARE_OF_BZCAT, share=True)


def _multistream_rows(results: dict, settings: dict) -> list[dict]:
    big, one = f"x{settings['repeat']}-multistream", "x1-multistream"
    t_big, t_one = results[big]["tools"], results[one]["tools"]
    w1, wmax, share, scaling = _speed_ratios(t_big, settings)
    growth = common.ratio(t_big[wmax]["max_rss_mb"], t_one[wmax]["max_rss_mb"])
    rows = [
        _share_row(big, t_big, w1, share),
        common.row("3 anchors", f"MB/s ({big} dump, parallel streams): --workers {max(settings['workers'])} / "
                                f"--workers {min(settings['workers'])}",
                   t_big[wmax]["mb_per_s"], t_big[w1]["mb_per_s"], "MB/s", scaling, f">= {TARGET_SCALING:g}x",
                   scaling >= TARGET_SCALING),
        common.row("3 anchors", f"peak memory, --workers {max(settings['workers'])}: {big} dump / {one} dump",
                   t_big[wmax]["max_rss_mb"], t_one[wmax]["max_rss_mb"], "MiB", growth,
                   f"<= {TARGET_MEMORY_GROWTH:g}x (flat)", growth <= TARGET_MEMORY_GROWTH),
    ]
    plain = f"x{settings['repeat']}"
    if plain in results:
        same = results[plain]["output_sha256"] == results[big]["output_sha256"]
        rows.append(common.row("3 anchors", f"output of the {big} dump = output of the {plain} dump (one stream)",
                               None, None, "", None, "identical", same,
                               note="sha256 of the D_g files written by --workers 1"))
    return rows


def run(size: str = "full", work_dir="work", progress: bool = True) -> dict:
    settings = common.check_size(size, SIZES)
    dumps = _dumps(settings, work_dir)
    results = {}
    for label, dump in dumps.items():
        common.say(f"anchors: {label} dump ({dump.stat().st_size / 1e6:.1f} MB compressed), "
                   f"{settings['repeats']} repeat(s) of each command")
        results[label] = _measure(dump, settings, multistream=label.endswith("-multistream"))
    if not settings.get("plain", True):
        return {"name": NAME, "size": size, "settings": settings,
                "dumps": {k: str(v) for k, v in dumps.items()}, "results": results,
                "summary": _multistream_rows(results, settings)}
    big = f"x{settings['repeat']}"
    t_big, t_one = results[big]["tools"], results["x1"]["tools"]
    w1, wmax, share, scaling = _speed_ratios(t_big, settings)
    growth = common.ratio(t_big[w1]["max_rss_mb"], t_one[w1]["max_rss_mb"])
    growth_w = common.ratio(t_big[wmax]["max_rss_mb"], t_one[wmax]["max_rss_mb"])
    summary = [_share_row(big, t_big, w1, share)]
    wx1 = f"wikiextractor_processes{min(settings['wikiextractor_processes'])}"
    if wx1 in t_big:
        vs_wx = common.ratio(t_big[w1]["mb_per_s"], t_big[wx1]["mb_per_s"])
        summary.append(common.row("3 anchors", f"MB/s ({big} dump): kit 1 process / wikiextractor 1 process",
                                  t_big[w1]["mb_per_s"], t_big[wx1]["mb_per_s"], "MB/s", vs_wx, "> 1x", vs_wx > 1.0))
    else:
        summary.append(common.row("3 anchors", "MB/s: kit / wikiextractor", t_big[w1]["mb_per_s"], None, "MB/s",
                                  None, "> 1x", None,
                                  note="wikiextractor is not installed (pip install wikiextractor; 3.0.6 fails on "
                                       "Python 3.11+ with a regex error): not compared"))
    summary += [
        common.row("3 anchors", f"MB/s ({big} dump): --workers {max(settings['workers'])} / --workers 1",
                   t_big[wmax]["mb_per_s"], t_big[w1]["mb_per_s"], "MB/s", scaling, "> 1x (scales)",
                   scaling > 1.0),
        common.row("3 anchors", f"peak memory, 1 process: {big} dump / 1x dump", t_big[w1]["max_rss_mb"],
                   t_one[w1]["max_rss_mb"], "MiB", growth, f"<= {TARGET_MEMORY_GROWTH:g}x (flat)",
                   growth <= TARGET_MEMORY_GROWTH),
        common.row("3 anchors", f"peak memory, --workers {max(settings['workers'])}: {big} dump / 1x dump",
                   t_big[wmax]["max_rss_mb"], t_one[wmax]["max_rss_mb"], "MiB", growth_w,
                   f"<= {TARGET_MEMORY_GROWTH:g}x (flat)", growth_w <= TARGET_MEMORY_GROWTH),
    ]
    if settings.get("multistream"):
        summary += _multistream_rows(results, settings)
    return {"name": NAME, "size": size, "settings": settings,
            "dumps": {k: str(v) for k, v in dumps.items()}, "results": results, "summary": summary}


def main(argv=None) -> int:
    return common.script_main(run, SIZES, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
