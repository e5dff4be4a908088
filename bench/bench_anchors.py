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

Peak memory is ``ru_maxrss`` of the command's process tree (the largest single process, not a
sum), on the dump and on the dump repeated ``repeat`` times: a valid dump whose pages appear
``repeat`` times with the titles of copies 2.. renamed (``Title (copy 2)``) and page ids made
unique, so that the redirect table also grows. Memory that stays flat means streaming.

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
    "tiny": {"dump": "enwiki-tables", "repeat": 4, "workers": [1, 2], "repeats": 1, "wikiextractor_processes": [1]},
    "full": {"dump": "enwiki", "repeat": 4, "workers": [1, 2], "repeats": 2, "wikiextractor_processes": [1, 2]},
}
TARGET_SHARE_OF_BZCAT = 0.5
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


def _dumps(settings: dict, work_dir) -> dict[str, Path]:
    from cofee_lib import cache
    from cofee_lib.sources import fetch

    one = Path(fetch(settings["dump"], progress=False))
    times = settings["repeat"]
    big = common.work_subdir(work_dir) / f"{settings['dump']}-x{times}.xml.bz2"
    key = {"source": cache.file_digest(one), "times": times, "recipe": "titles of copies renamed, page ids unique; v1"}

    def build(path: Path) -> dict:
        common.say(f"anchors: writing {path.name} ({times} x {one.name})")
        repeated_dump(one, times, path)
        return {"bytes": path.stat().st_size}

    cache.cached_file(big, key, build)
    return {"x1": one, f"x{times}": big}


def _commands(dump: Path, settings: dict, tmp: Path) -> dict[str, list[str]]:
    cmds = {}
    bzcat = shutil.which("bzcat")
    cmds["bzcat"] = [bzcat, str(dump)] if bzcat else common.python_command(
        "-c", "import bz2,shutil,sys,os; shutil.copyfileobj(bz2.open(sys.argv[1]), open(os.devnull,'wb'), 1<<20)",
        dump)
    cmds["kit_read_only"] = common.python_command(
        "-c", "import sys; from cofee_lib.wiki import iter_pages\nfor _ in iter_pages(sys.argv[1], progress=False): pass",
        dump)
    for w in settings["workers"]:
        cmds[f"kit_workers{w}"] = common.python_command("-m", "cofee_lib", "corpus", "anchors", "--dump", dump,
                                                        "--out", tmp / f"anchors-w{w}.jsonl", "--quiet",
                                                        "--workers", w)
    if importlib.util.find_spec("wikiextractor") is not None:
        for w in settings["wikiextractor_processes"]:
            cmds[f"wikiextractor_processes{w}"] = common.python_command(
                "-m", "wikiextractor.WikiExtractor", dump, "-o", tmp / f"wikiextractor-p{w}", "-q",
                "--processes", w)
    return cmds


def _measure(dump: Path, settings: dict) -> dict:
    size_mb = dump.stat().st_size / 1e6
    out = {}
    for attempt in range(settings["repeats"]):
        with tempfile.TemporaryDirectory(prefix="cofee-bench-anchors-") as tmp:
            for name, cmd in _commands(dump, settings, Path(tmp)).items():
                res = common.run_command(cmd, cwd=common.REPO)
                best = out.setdefault(name, {"seconds": res["seconds"], "max_rss_mb": res["max_rss_mb"],
                                             "command": " ".join(Path(c).name if i == 0 else str(c)
                                                                 for i, c in enumerate(cmd))})
                best["seconds"] = min(best["seconds"], res["seconds"])
                best["max_rss_mb"] = max(best["max_rss_mb"], res["max_rss_mb"])
    for res in out.values():
        res["mb_per_s"] = size_mb / res["seconds"]
    return {"compressed_mb": size_mb, "tools": out}


def run(size: str = "full", work_dir="work", progress: bool = True) -> dict:
    settings = common.check_size(size, SIZES)
    dumps = _dumps(settings, work_dir)
    results = {}
    for label, dump in dumps.items():
        common.say(f"anchors: {label} dump ({dump.stat().st_size / 1e6:.1f} MB compressed), "
                   f"{settings['repeats']} repeat(s) of each command")
        results[label] = _measure(dump, settings)
    big = f"x{settings['repeat']}"
    t_big, t_one = results[big]["tools"], results["x1"]["tools"]
    w1, wmax = f"kit_workers{min(settings['workers'])}", f"kit_workers{max(settings['workers'])}"
    share = common.ratio(t_big[w1]["mb_per_s"], t_big["bzcat"]["mb_per_s"])
    scaling = common.ratio(t_big[wmax]["mb_per_s"], t_big[w1]["mb_per_s"])
    growth = common.ratio(t_big[w1]["max_rss_mb"], t_one[w1]["max_rss_mb"])
    growth_w = common.ratio(t_big[wmax]["max_rss_mb"], t_one[wmax]["max_rss_mb"])
    summary = [
        common.row("3 anchors", f"MB/s (compressed, {big} dump): kit 1 process / bzcat (the ceiling)",
                   t_big[w1]["mb_per_s"], t_big["bzcat"]["mb_per_s"], "MB/s", share,
                   f">= {TARGET_SHARE_OF_BZCAT:.0%}", share >= TARGET_SHARE_OF_BZCAT, share=True),
    ]
    wx1 = f"wikiextractor_processes{min(settings['wikiextractor_processes'])}"
    if wx1 in t_big:
        vs_wx = common.ratio(t_big[w1]["mb_per_s"], t_big[wx1]["mb_per_s"])
        summary.append(common.row("3 anchors", f"MB/s ({big} dump): kit 1 process / wikiextractor 1 process",
                                  t_big[w1]["mb_per_s"], t_big[wx1]["mb_per_s"], "MB/s", vs_wx, "> 1x", vs_wx > 1.0))
    else:
        summary.append(common.row("3 anchors", "MB/s: kit / wikiextractor", t_big[w1]["mb_per_s"], None, "MB/s",
                                  None, "> 1x", None,
                                  note="wikiextractor is not installed (pip install wikiextractor): not compared"))
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
    return {"name": NAME, "size": size, "settings": settings,
            "dumps": {k: str(v) for k, v in dumps.items()}, "results": results, "summary": summary}


def main(argv=None) -> int:
    return common.script_main(run, SIZES, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
