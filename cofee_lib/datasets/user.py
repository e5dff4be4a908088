"""The user's own datasets, by path: the paper's OntoNotes 4.0, E-commerce and Twitter, or any folder.

The paper's datasets cannot be fetched (LDC licence, GitHub-only releases), so
the ``paper`` preset reads the user's copies from a **data root**:
``$COFEE_DATA_DIR``, by default ``<repo>/data`` (``./data`` outside a
checkout). What goes where is data, in ``resources/user_datasets.json`` (one
entry per dataset: language, types, file format and tagging scheme, the file
of each split, the query set, the gazetteer folder); docs/paper_preset.md
explains it for people::

    data/ontonotes4/{train,dev,test}.char.bmes     (or mrc-ner.{train,dev,test})
    data/ecommerce/{train,dev,test}.txt.bieos      + gazetteers/{HC,HP}.txt
    data/twitter/{train,dev or valid,test}.txt
    data/<name>/gazetteers/TYPE.txt                (optional, the user's gazetteers)
    data/wiki/{en,zh}wiki-*-pages-articles.xml.bz2

A user adds a dataset with one entry in ``<data root>/user_datasets.json``
(same keys), or names any folder as the target ``dir:/path/to/folder``: it
holds ``train``/``dev``/``test`` files (``.jsonl``, ``.txt``, ``.conll``,
``.char.bmes``, ``mrc-ner.<split>`` ...) and optionally a ``dataset.json``
with the same keys as an entry (``lang``, ``types``, ``format``, ``scheme``,
``files``, ``queries`` ...). Without one, the format follows the file name,
the tagging scheme the tags' letters, the types the train file, and the
language the characters (the readers are :mod:`cofee_lib.formats.columns`).

This module describes and reads them; the registry
(:mod:`cofee_lib.datasets`) answers for them and for the built-in datasets
(conll2003, wnut16, msra), which are never user datasets. Records follow
:mod:`cofee_lib.records` (inclusive span ends) with ids
``"<name>-<split>-<n>"``. A missing file is a :class:`CofeeError` naming the
exact path expected; a malformed one is the readers' :class:`InputError`
(file and line).
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

from ..errors import CofeeError, InputError
from ..paths import data_root
from .builtin import DATASETS

RESOURCE = Path(__file__).parents[1] / "resources" / "user_datasets.json"
USER_REGISTRY = "user_datasets.json"   # optional, in the data root: the user's own entries
DIR_PREFIX = "dir:"
DIR_SPEC = "dataset.json"
DOCS = "docs/paper_preset.md"
SPLITS = ("train", "dev", "test")
FORMATS = ("chars", "conll", "mrc", "jsonl")
FORMAT_ALIASES = {"char": ("chars", "iob2"), "char-bmes": ("chars", "bmes"), "conll-iob1": ("conll", "iob1"),
                  "conll-bioes": ("conll", "bioes"), "columns": ("conll", None)}
LANGS = ("en", "zh")
ENTRY_KEYS = {"description", "source", "lang", "types", "drop", "map", "queries", "folder", "layouts", "gazetteers",
              "gazetteers_required", "kit_gazetteers_as", "paper", "splits"}
LAYOUT_KEYS = {"about", "format", "scheme", "invalid", "skip_prefixes", "files"}
# files looked for in a dir: folder without dataset.json, per split, in this order
_DIR_NAMES = {"train": ("train",), "dev": ("dev", "valid", "val"), "test": ("test",)}
_DIR_SUFFIXES = (".jsonl", ".char.bmes", ".bmes", ".txt.bieos", ".bieos", ".bio", ".txt", ".conll", ".tsv")


# --------------------------------------------------------------------------- where

def _where_hint() -> str:
    return (f"data root {data_root()} (set COFEE_DATA_DIR to move it); the layout is in {DOCS} "
            "and `cofee paper-data` prints it")


def _read_json_file(path: Path, what: str):
    from ..formats.conll import read_text

    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"not valid JSON ({exc.msg}, column {exc.colno}); expected {what}") from None


def registry() -> dict[str, dict]:
    """The named user datasets: ``resources/user_datasets.json`` plus ``<data root>/user_datasets.json``.

    Returns ``{name: entry}``; each entry gains a ``_file`` key naming the
    file it came from. The user's file wins on a name both define. The
    built-in datasets' names are refused there.
    """
    out = {}
    for path in (RESOURCE, data_root() / USER_REGISTRY):
        if path is not RESOURCE and not path.is_file():
            continue
        table = _read_json_file(path, "an object {name: dataset entry}")
        if not isinstance(table, dict):
            raise InputError(path, 1, "expected a JSON object {name: dataset entry}")
        for name, entry in table.items():
            if name.startswith("_"):
                continue
            if name in _builtin_names():
                raise InputError(path, None, f"{name!r} is a built-in dataset of the kit; give yours another name")
            if not isinstance(entry, dict):
                raise InputError(path, None, f"entry {name!r}: expected an object (lang, types, layouts, ...)")
            out[name] = {**entry, "_file": str(path)}
    return out


def _builtin_names() -> tuple[str, ...]:
    return tuple(DATASETS)


def is_dir_target(name) -> bool:
    return isinstance(name, str) and name.startswith(DIR_PREFIX)


def is_user_dataset(name) -> bool:
    """True for ``dir:<folder>`` targets and the names of :func:`registry` (never for conll2003/wnut16/msra)."""
    if not isinstance(name, str) or name in _builtin_names():
        return False
    return is_dir_target(name) or name in registry()


def user_dataset_names() -> list[str]:
    """The named user datasets, in registry order (the paper's three first)."""
    return list(registry())


def safe_name(name: str) -> str:
    """A name usable in file names and record ids: the name itself, or ``dir-<folder>-<hash>`` for ``dir:``."""
    if not is_dir_target(name):
        return name
    folder = _dir_folder(name)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.name) or "root"
    return f"dir-{slug}-{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}"


def _dir_folder(name: str) -> Path:
    raw = name[len(DIR_PREFIX):]
    if not raw.strip():
        raise CofeeError(f"{name!r}: give a folder after dir:, e.g. dir:/path/to/my_dataset")
    return Path(raw).expanduser().resolve()


# --------------------------------------------------------------------------- specs

def _check_entry(entry: dict, where: Path, name: str, dir_mode: bool) -> None:
    """Refuse unknown keys and wrong values of a registry entry or dataset.json, naming the file."""
    allowed = ENTRY_KEYS | ({"files", "format", "scheme", "invalid", "skip_prefixes"} if dir_mode else set())
    unknown = set(entry) - allowed - {"_file"}
    if unknown:
        raise InputError(where, None, f"{name}: unknown key(s) {', '.join(sorted(unknown))}; expected some of "
                         f"{', '.join(sorted(allowed))}")
    if entry.get("lang") is not None and entry["lang"] not in LANGS:
        raise InputError(where, None, f"{name}: lang must be one of {', '.join(LANGS)}, not {entry['lang']!r}")
    for key in ("types", "drop", "skip_prefixes"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(t, str) and t for t in value)):
            raise InputError(where, None, f"{name}: {key} must be a list of non-empty strings")
    if entry.get("map") is not None and not (isinstance(entry["map"], dict)
                                             and all(isinstance(v, str) for v in entry["map"].values())):
        raise InputError(where, None, f"{name}: map must be an object {{source type: type}}")
    queries = entry.get("queries")
    if queries is not None and not isinstance(queries, (str, dict)):
        raise InputError(where, None, f"{name}: queries must name a query set of resources/queries.json "
                         "or be an object {type: query}")
    splits = entry.get("splits")
    if splits is not None and (not isinstance(splits, list) or not splits or set(splits) - set(SPLITS)):
        raise InputError(where, None, f"{name}: splits must be a non-empty list of {', '.join(SPLITS)}")
    if not dir_mode and not isinstance(entry.get("layouts"), list):
        raise InputError(where, None, f"{name}: expected layouts, a list of {{format, scheme, files}}")
    target = entry.get("kit_gazetteers_as")
    if target is not None:
        from ..gazetteers import TARGETS

        if target not in TARGETS:
            raise InputError(where, None, f"{name}: kit_gazetteers_as must be null or one of {', '.join(TARGETS)}")


def _layout(raw: dict, where: Path, name: str) -> dict:
    """Normalise one layout: format family, scheme, invalid policy, skip prefixes, files per split."""
    from ..formats.tags import INVALID_POLICIES, normalize_scheme

    unknown = set(raw) - LAYOUT_KEYS
    if unknown:
        raise InputError(where, None, f"{name}: unknown layout key(s) {', '.join(sorted(unknown))}; "
                         f"expected some of {', '.join(sorted(LAYOUT_KEYS))}")
    fmt, scheme = raw.get("format"), raw.get("scheme")
    if fmt in FORMAT_ALIASES:
        fmt, implied = FORMAT_ALIASES[fmt]
        scheme = scheme or implied
    if fmt is not None and fmt not in FORMATS:
        raise InputError(where, None, f"{name}: format {raw.get('format')!r} is not one of "
                         f"{', '.join(FORMATS + tuple(FORMAT_ALIASES))}")
    scheme = scheme or "auto"
    if scheme != "auto":
        try:
            scheme = normalize_scheme(scheme)
        except CofeeError as exc:
            raise InputError(where, None, f"{name}: {exc}") from None
    invalid = raw.get("invalid", "error")
    if invalid not in INVALID_POLICIES:
        raise InputError(where, None, f"{name}: invalid must be one of {', '.join(INVALID_POLICIES)}")
    files = raw.get("files")
    if not isinstance(files, dict) or not files:
        raise InputError(where, None, f"{name}: files must be an object {{split: file name or [alternatives]}}")
    out_files = {}
    for split, names in files.items():
        if split not in SPLITS:
            raise InputError(where, None, f"{name}: files has split {split!r}; expected {', '.join(SPLITS)}")
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise InputError(where, None, f"{name}: files.{split} must be a file name or a list of them")
        out_files[split] = names
    return {"format": fmt, "scheme": scheme, "invalid": invalid, "skip_prefixes": list(raw.get("skip_prefixes") or []),
            "files": out_files, "about": raw.get("about")}


def _dir_entry(name: str) -> tuple[dict, Path]:
    """A ``dir:`` target's entry: its dataset.json (if any) with the files found in the folder."""
    folder = _dir_folder(name)
    if not folder.is_dir():
        raise CofeeError(f"{name}: folder {folder} not found (a dir: target names a folder holding train/dev/test "
                         f"files and optionally {DIR_SPEC}; see {DOCS})")
    spec_path = folder / DIR_SPEC
    entry: dict = {}
    if spec_path.is_file():
        entry = _read_json_file(spec_path, "an object with lang, types, format, scheme, files, queries (all optional)")
        if not isinstance(entry, dict):
            raise InputError(spec_path, 1, "expected a JSON object with lang, types, format, scheme, files, queries")
        _check_entry(entry, spec_path, name, dir_mode=True)
    where = spec_path if spec_path.is_file() else folder
    if "layouts" in entry:
        layouts = entry["layouts"]
        if not isinstance(layouts, list):
            raise InputError(where, None, f"{name}: layouts must be a list")
        return {**entry, "layouts": [_layout(raw, where, name) for raw in layouts]}, where
    if "files" in entry:
        raw = {k: entry[k] for k in ("format", "scheme", "invalid", "skip_prefixes", "files") if k in entry}
        return {**entry, "layouts": [_layout(raw, where, name)]}, where
    # no file names given: look for <split>.<suffix> (and mrc-ner.<split>) in the folder
    splits = entry.get("splits") or list(SPLITS)
    files = {}
    for split in splits:
        names = [f"{stem}{suffix}" for stem in _DIR_NAMES[split] for suffix in _DIR_SUFFIXES] + [f"mrc-ner.{split}"]
        found = [n for n in names if (folder / n).is_file()]
        files[split] = found[:1] or [f"{split}.txt"]
    raw = {k: entry[k] for k in ("format", "scheme", "invalid", "skip_prefixes") if k in entry}
    return {**entry, "layouts": [_layout({**raw, "files": files}, where, name)]}, where


def user_dataset_spec(name: str) -> dict:
    """The resolved description of a user dataset (absolute paths).

    Keys: ``name``, ``safe_name``, ``kind`` (``named``/``dir``), ``folder``,
    ``lang`` (None when not given and not yet guessed), ``types`` (None: from
    the data), ``drop``, ``map``, ``queries``, ``splits``, the chosen layout's
    ``format``/``scheme``/``invalid``/``skip_prefixes``, ``files``
    (``{split: Path or None}``: the file found), ``expected``
    (``{split: [candidate paths]}``), ``gazetteers`` (the folder expected),
    ``gazetteers_required``, ``kit_gazetteers_as``, ``description``,
    ``paper``, ``source`` (the file that describes it).
    """
    if is_dir_target(name):
        entry, where = _dir_entry(name)
        folder, kind = _dir_folder(name), "dir"
        layouts = entry["layouts"]
    else:
        if name in _builtin_names():
            raise CofeeError(f"{name!r} is a built-in dataset, not a user dataset")
        table = registry()
        if name not in table:
            raise CofeeError(f"unknown dataset {name!r}; the user datasets are {', '.join(table) or 'none'} "
                             f"(or a folder: dir:/path/to/folder); built-in: {', '.join(_builtin_names())}")
        entry = table[name]
        where = Path(entry["_file"])
        _check_entry(entry, where, name, dir_mode=False)
        layouts = [_layout(raw, where, name) for raw in entry["layouts"]]
        if not layouts:
            raise InputError(where, None, f"{name}: layouts is empty")
        folder, kind = data_root() / entry.get("folder", name), "named"
    splits = [s for s in SPLITS if s in (entry.get("splits") or SPLITS)]

    def found(layout: dict) -> dict:
        return {s: next((folder / n for n in layout["files"].get(s, []) if (folder / n).is_file()), None)
                for s in splits}

    # the first layout with every split present, else the one with the most, else the first
    scored = [(sum(p is not None for p in found(lay).values()), -i) for i, lay in enumerate(layouts)]
    best = max(range(len(layouts)), key=lambda i: scored[i])
    layout = layouts[best]
    gaz = folder / entry.get("gazetteers", "gazetteers")
    return {
        "name": name, "safe_name": safe_name(name), "kind": kind, "folder": folder,
        "lang": entry.get("lang"), "types": list(entry["types"]) if entry.get("types") else None,
        "drop": list(entry.get("drop") or []), "map": dict(entry.get("map") or {}),
        "queries": entry.get("queries"), "splits": splits,
        "format": layout["format"], "scheme": layout["scheme"], "invalid": layout["invalid"],
        "skip_prefixes": layout["skip_prefixes"], "layout_about": layout["about"],
        "files": found(layout),
        "expected": {s: [folder / n for n in layout["files"].get(s, [])] for s in splits},
        "layouts": layouts,
        "gazetteers": gaz, "gazetteers_required": bool(entry.get("gazetteers_required", False)),
        "kit_gazetteers_as": entry.get("kit_gazetteers_as"),
        "description": entry.get("description", ""), "paper": entry.get("paper", {}),
        "source": str(where),
    }


# --------------------------------------------------------------------------- checking

def check_layout(name: str) -> list[str]:
    """What is missing for a user dataset: one line per missing file or folder (empty: complete).

    Files are not parsed here (:func:`load_user_splits` does that).
    """
    spec = user_dataset_spec(name)
    missing = []
    if spec["kind"] == "dir" and not spec["folder"].is_dir():
        return [f"folder {spec['folder']}"]
    for split in spec["splits"]:
        if spec["files"][split] is None:
            missing.append(f"{split}: {_expected_text(spec, split)}")
    if spec["gazetteers_required"] and user_gazetteer_dir(name) is None:
        missing.append(f"gazetteers: {spec['gazetteers']}/TYPE.txt for "
                       f"{', '.join(spec['types'] or ['each type'])} (one entry per line)")
    return missing


def _expected_text(spec: dict, split: str) -> str:
    paths = [str(p) for p in spec["expected"][split]]
    text = paths[0] + (f" (or {', '.join(Path(p).name for p in paths[1:])})" if len(paths) > 1 else "")
    alt = [n for lay in spec["layouts"] for n in lay["files"].get(split, []) if str(spec["folder"] / n) not in paths]
    if alt:
        text += f"; another accepted layout: {', '.join(alt)}"
    return text


def user_gazetteer_dir(name: str) -> Path | None:
    """The user's gazetteer folder of a dataset (``<folder>/gazetteers`` holding ``TYPE.txt``), or None."""
    gaz = user_dataset_spec(name)["gazetteers"]
    return gaz if gaz.is_dir() and any(gaz.glob("*.txt")) else None


def wiki_dumps(lang: str) -> list[Path]:
    """The Wikipedia dumps of ``lang`` in ``<data root>/wiki`` (``{lang}wiki-*pages-articles*.xml[.bz2]``)."""
    folder = data_root() / "wiki"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{lang}wiki-*pages-articles*.xml*")
                  if p.is_file() and p.name.endswith((".xml", ".xml.bz2")))


# --------------------------------------------------------------------------- reading

def _read_file(path: Path, spec: dict, id_prefix: str) -> list[dict]:
    from ..formats.columns import read_dataset_file

    return read_dataset_file(path, spec["format"], spec["scheme"], spec["invalid"], spec["skip_prefixes"], id_prefix)


def _apply_types(records: list[dict], spec: dict, path: Path) -> list[dict]:
    """Rename (``map``) and remove (``drop``) span types; any type not declared is an error naming the file."""
    from ..records import make_record

    mapping, drop, types = spec["map"], set(spec["drop"]), spec["types"]
    out = []
    for index, rec in enumerate(records):
        spans = []
        for start, end, etype in rec["spans"]:
            etype = mapping.get(etype, etype)
            if etype in drop:
                continue
            if types is not None and etype not in types:
                raise InputError(path, None, f"sentence {index} ({' '.join(rec['tokens'])[:40]!r}) has entity type "
                                 f"{etype!r}, which {spec['source']} neither lists in types "
                                 f"({', '.join(types)}) nor drops ({', '.join(sorted(drop)) or 'none'})")
            spans.append((start, end, etype))
        out.append(make_record(rec["id"], rec["tokens"], spans))
    return out


def _split_path(spec: dict, split: str) -> Path:
    if split not in spec["splits"]:
        raise CofeeError(f"dataset {spec['name']!r} has no split {split!r}; its splits are {', '.join(spec['splits'])}")
    path = spec["files"][split]
    if path is None:
        raise CofeeError(f"dataset {spec['name']!r}: the {split} split is missing: expected {_expected_text(spec, split)}; "
                         + _where_hint())
    return path


def load_user_split(name: str, split: str, progress: bool = False) -> list[dict]:
    """Records of one split of a user dataset, types mapped/dropped, ids ``<name>-<split>-<n>``."""
    return load_user_splits(name, [split], progress=progress)[split]


def load_user_splits(name: str, splits=None, progress: bool = False) -> dict[str, list[dict]]:
    """``{split: records}`` for several splits of a user dataset (all of them by default)."""
    from ..records import make_record

    spec = user_dataset_spec(name)
    splits = list(spec["splits"] if splits is None else splits)
    paths = {split: _split_path(spec, split) for split in splits}   # every file checked before any is read
    if spec["types"] is None:
        spec = {**spec, "types": user_dataset_types(name)}
    out = {}
    for split, path in paths.items():
        if progress:
            print(f"cofee: reading {name} {split} from {path}", file=sys.stderr, flush=True)
        records = _apply_types(_read_file(path, spec, f"{spec['safe_name']}-{split}"), spec, path)
        out[split] = [make_record(f"{spec['safe_name']}-{split}-{i}", r["tokens"], r["spans"])
                      for i, r in enumerate(records)]
    return out


_TYPES_CACHE: dict[tuple, list[str]] = {}


def user_dataset_types(name: str) -> list[str]:
    """The entity types of a user dataset: its entry's ``types``, else those found in its train file (sorted)."""
    spec = user_dataset_spec(name)
    if spec["types"] is not None:
        return list(spec["types"])
    split = "train" if "train" in spec["splits"] else spec["splits"][0]
    path = _split_path(spec, split)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, json.dumps([spec["map"], spec["drop"]]))
    if key not in _TYPES_CACHE:
        records = _apply_types(_read_file(path, spec, split), spec, path)
        types = sorted({s[2] for r in records for s in r["spans"]})
        if not types:
            raise InputError(path, None, f"no entities found; give the types in {spec['folder'] / DIR_SPEC}")
        _TYPES_CACHE[key] = types
    return list(_TYPES_CACHE[key])


def user_dataset_lang(name: str) -> str:
    """The language of a user dataset: its entry's ``lang``, else ``zh`` if most tokens are single Han characters."""
    spec = user_dataset_spec(name)
    if spec["lang"]:
        return spec["lang"]
    split = "train" if "train" in spec["splits"] else spec["splits"][0]
    path = _split_path(spec, split)
    tokens = [t for r in _read_file(path, spec, split)[:200] for t in r["tokens"]]
    han = sum(len(t) == 1 and "\u4e00" <= t <= "\u9fff" for t in tokens)
    return "zh" if tokens and han > len(tokens) / 2 else "en"
