"""Typed gazetteers (named-entity dictionaries) for D_s and the Matching baseline (paper Sec. 4.2, 5.2).

A gazetteer directory holds one file per entity type (``PER.txt``, ``LOC.txt``,
``ORG.txt``), one entry per line, sorted, UTF-8, plus ``provenance.json``
(sources, filters, counts per type, fraction, seed, target, and the
normalisation the matcher must use). :func:`load_gazetteers` reads one back.

An *entry* is a name as written (``New York``, ``Deutsche Bank``, ``北京``).
Matching is exact and token-level (:mod:`cofee_lib.matching`): an English
entry is split into words by :func:`tokenize_entry`, the very tokeniser of
the Wikipedia corpus D_g (CoNLL-2003 style: ``U.S.``, ``Inc.``, ``AT&T``
and ``Coca-Cola`` are one token, a possessive ``'s`` is split off), so that
an anchor and an entry compare token by token; a Chinese entry is a sequence
of characters.

Every choice below was made on the **dev** splits only (WNUT-16 dev,
CoNLL-2003 dev, MSRA dev), never on test. The option values live in
``cofee_lib/resources/gazetteer_choices.json`` together with the dev numbers
that decided them (the Matching baseline with each option changed in turn);
``cofee gazetteer build --set KEY=VALUE`` overrides one, and
``provenance.json`` records the values used.

English (``--lang en``), types PER, LOC, ORG
--------------------------------------------
* **Case** (``case_sensitive``: true). Entries match case-sensitively, as
  written in the text. Case-insensitive matching raises recall a little and
  costs much precision (WNUT-16 dev P 74 -> 59). ``all_caps_title`` (true):
  a text token in capitals that is not itself an entry token is also tried in
  title case, so the capitalised datelines and headlines of news text match
  (``LONDON`` -> ``London``; CoNLL-2003 dev F1 +6).
* **LOC** = GeoNames countries and US states, the ISO 3166-1 names of
  pycountry (``name``, ``common_name``, ``official_name``; names with a comma
  or parenthesis, like ``Korea, Republic of``, are skipped), and GeoNames
  cities with ``population >= geonames_min_population`` (50,000: a
  compromise between the two dev sets, 15,000 is better on WNUT-16, 100,000
  on CoNLL-2003) by main name and, for ``geonames_alternates="latin"``, by
  their alternate names that are Latin script, capitalised, not all
  capitals, at least three characters and start with the main name's first
  letter (``Beograd``, ``Londres``; GeoNames lists codes and fragments such
  as ``BEG``, ``Gold`` or ``But`` as alternate names).
* **ORG** = the company names of the 20 stock indices in pytickersymbols
  (``indices_data.py`` read with :func:`ast.literal_eval`, never imported),
  plus, with ``ticker_variants``, each name without its legal-form suffix
  (``Deutsche Bank AG`` -> ``Deutsche Bank``, ``Apple Inc.`` -> ``Apple``;
  :data:`ORG_SUFFIXES`, and a leading ``The``).
* **PER.** No full-name person dictionary exists on the reachable registries
  (DATA.md). ``--target`` names the dataset the gazetteers will be scored on,
  and PER takes the person surfaces of the **training split of the other
  English dataset**, never of the target: ``--target wnut16`` -> the PER
  spans of CoNLL-2003 train, ``--target conll2003`` -> the person spans of
  the kit's WNUT-16 train split. This module loads no dataset: the caller
  passes ``load_train`` (:func:`cofee_lib.datasets.load_train`), which
  :func:`build_gazetteers` asks for that one training split. Surfaces without
  a capital letter (``lady gaga``) are dropped (``require_capital``).
  Without ``--target`` no dataset names are used (``provenance.json`` says
  so). Added to both: US census full names (``census="pairs"``: every pair
  of the ``census_top`` = 200 most frequent male and 200 female first names
  with the 200 most frequent surnames, ``"John Smith"``; 80,000 entries that
  lift PER recall on both dev sets). Single first names (``"first"``) hurt
  precision and are not used.
* **Common words** (``common_word_min_lower``: 1). A one-word entry of any
  type whose lower-case form occurs at least once as a lower-case word in the
  article text of the embedded Wikipedia dumps is dropped (``Police``,
  ``Union``, ``Next``, ``Federal``, but also ``Apple``). The largest single
  gain on WNUT-16 dev (P 39 -> 74).

Chinese (``--lang zh``), types PER, LOC, ORG
-------------------------------------------
GPE is folded into LOC: MSRA, the only Chinese NER set the kit can reach,
has PER/LOC/ORG (:func:`fold_gpe` does the same to the paper's counts, to
compare sizes). Every entry is all Han characters (jieba noise like
``c++`` is dropped) and at least two characters long.

* **PER** = jieba ``nr`` and ``nrfg`` words of ``jieba_per_min_len`` (3) to 4
  characters, frequency >= ``jieba_min_freq_per``, whose first character is
  one of the ``surname_top`` (300) most frequent first characters of the
  three-character ``nr`` words (``surname_filter``: a surname list learnt
  from the dictionary itself). Two-character ``nr`` words are mostly common
  words jieba tagged ``nr`` (``明白``, ``文明``, ``武功``), hence the length.
* **LOC** = jieba ``ns`` words with frequency >= ``jieba_min_freq_loc`` (10),
  the jionlp China hierarchy down to ``jionlp_china_level`` (2: provinces
  and cities; 3 adds counties, 4 townships; full and short names), and
  jionlp world locations (continents, countries, full names, capitals,
  cities). The Han alternate names of GeoNames cities (``geonames_han``) cost
  precision on MSRA dev and are off.
* **ORG** = jieba ``nt`` words (frequency >= ``jieba_min_freq_org``).

Writing and reading
-------------------
:func:`write_gazetteers` writes a directory, :func:`load_gazetteers` reads
one back (a :class:`Gazetteers`), :func:`make_gazetteers` builds, writes and
reads back in one call, and :func:`copy_gazetteers` writes the user's own
gazetteer folder as the kit writes its own.

Subsampling (``--fraction F --seed S``, Figure 3)
-------------------------------------------------
Each type's entries are ranked by ``sha256(f"{seed}|{type}|{entry}")`` and
the first ``round(F * n)`` are kept. The same seed and F always give the same
list, and for one seed a smaller F's list is a prefix, hence a subset, of a
larger F's list.
"""
from __future__ import annotations

import ast
import hashlib
import json
import math
import re
import shutil
import tempfile
import unicodedata
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Iterable

from .errors import CofeeError, InputError

ENGLISH_TYPES = ("PER", "LOC", "ORG")
CHINESE_TYPES = ("PER", "LOC", "ORG")
#: The English target datasets (``--target``), each the other's source of PER names; the one
#: place these names are listed (:data:`cofee_lib.datasets.ENGLISH_TARGETS` is this tuple).
TARGETS = ("wnut16", "conll2003")
#: For a target dataset, the dataset whose TRAINING split gives the PER entries: the other target.
PER_SOURCE_FOR_TARGET = dict(zip(TARGETS, reversed(TARGETS)))
PROVENANCE = "provenance.json"

#: Legal-form suffixes stripped from company names to make extra ORG variants.
ORG_SUFFIXES = (
    "Inc.", "Inc", "Incorporated", "Corp.", "Corp", "Corporation", "Co.", "Co", "Company", "Companies",
    "Ltd.", "Ltd", "Limited", "plc", "PLC", "Plc", "AG", "SE", "SA", "S.A.", "N.V.", "NV", "AB", "ASA",
    "A/S", "Oyj", "Oy", "SpA", "S.p.A.", "KGaA", "GmbH", "Group", "Holdings", "Holding", "L.P.", "LP",
    "Co.,", "& Co.", "& Co", "Aktiengesellschaft", "(publ)",
)

_HAN_RE = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")


def _choices() -> dict:
    with resources.files("cofee_lib").joinpath("resources/gazetteer_choices.json").open(encoding="utf-8") as handle:
        return json.load(handle)


def default_options(lang: str) -> dict:
    """The kit's chosen build options for ``lang`` (from ``resources/gazetteer_choices.json``)."""
    if lang not in ("en", "zh"):
        raise CofeeError(f"language must be 'en' or 'zh', not {lang!r}")
    return dict(_choices()[lang]["options"])


# --------------------------------------------------------------------------- tokens

def tokenize_entry(entry: str, lang: str = "en") -> list[str]:
    """Split a gazetteer entry into the tokens it must match (words for ``en``, characters for ``zh``).

    English entries are tokenised exactly like the Wikipedia text of D_g
    (:func:`cofee_lib.wiki.text.token_offsets`, CoNLL-2003 style), so an
    anchor's tokens and an entry's tokens agree: ``"Apple Inc."`` ->
    ``["Apple", "Inc."]``, ``"McDonald's"`` -> ``["McDonald", "'s"]``,
    ``"Procter & Gamble"`` -> ``["Procter", "&", "Gamble"]``, ``"U.S."`` ->
    ``["U.S."]``. Chinese: every non-space character is a token.
    """
    from .wiki.text import token_offsets

    entry = unicodedata.normalize("NFC", entry).strip()
    if lang == "zh":
        return [ch for ch in entry if not ch.isspace()]
    return [entry[start:end] for start, end in token_offsets(entry, "en")]


def _is_han(text: str) -> bool:
    return bool(_HAN_RE.match(text))


def _is_latin_name(text: str) -> bool:
    """Latin-script letters (any accents), spaces, hyphens, periods, apostrophes; starts upper-case."""
    if not text or not text[0].isupper():
        return False
    for ch in text:
        if ch.isalpha():
            if "LATIN" not in unicodedata.name(ch, ""):
                return False
        elif ch not in " -.'’":
            return False
    return True


def _clean(entry: str) -> str:
    return " ".join(unicodedata.normalize("NFC", entry).split())


# --------------------------------------------------------------------------- English sources

def _read_json(path):
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"not valid JSON ({exc.msg})") from None


def _ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _good_alternate(alt: str, main: str) -> bool:
    """A GeoNames alternate name worth keeping (see :func:`geonames_locations`)."""
    if len(alt) < 3 or not _is_latin_name(alt) or not any(ch.islower() for ch in alt):
        return False
    return _ascii_fold(alt[:1]).upper() == _ascii_fold(main[:1]).upper()


def geonames_locations(geonames_dir, min_population: int = 15000, alternates: str = "latin") -> set[str]:
    """English LOC entries from GeoNames (``cities15000.json``, ``countries.json``, ``us_states.json``).

    Countries and US states by name; cities with ``population >= min_population``
    by name and, for ``alternates="latin"``, by those alternate names that are
    Latin script, start with a capital, are not all capitals (codes such as
    ``NLD``), have at least three characters and start with the same letter
    as the main name (``Beograd`` for Belgrade, ``Londres`` for London; this
    drops the fragments GeoNames lists, such as ``Gold`` for Gold Coast's
    neighbours or ``But`` for Buta). ``"none"``: main names only.
    """
    if alternates not in ("none", "latin"):
        raise CofeeError(f"geonames alternates must be 'none' or 'latin', not {alternates!r}")
    geonames_dir = Path(geonames_dir)
    entries = set()
    for country in _read_json(geonames_dir / "countries.json").values():
        entries.add(_clean(country["name"]))
    for state in _read_json(geonames_dir / "us_states.json").values():
        entries.add(_clean(state["name"]))
    for city in _read_json(geonames_dir / "cities15000.json").values():
        if (city.get("population") or 0) < min_population:
            continue
        main = _clean(city["name"])
        entries.add(main)
        if alternates == "latin":
            entries.update(alt for alt in map(_clean, city.get("alternatenames", ())) if _good_alternate(alt, main))
    return {e for e in entries if e}


def pycountry_locations(iso_file) -> set[str]:
    """ISO 3166-1 country names from pycountry's ``iso3166-1.json`` (names with a comma skipped)."""
    data = _read_json(iso_file)
    entries = set()
    for country in data.get("3166-1", []):
        for key in ("name", "common_name", "official_name"):
            name = country.get(key)
            if name and "," not in name and "(" not in name:
                entries.add(_clean(name))
    return entries


def _read_indices(indices_file) -> dict:
    path = Path(indices_file)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except SyntaxError as exc:
        raise InputError(path, exc.lineno, f"not Python source ({exc.msg})") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "INDICES" for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                raise InputError(path, node.lineno, "INDICES is not a literal dict") from None
    raise InputError(path, None, "expected an assignment INDICES = {...}")


def strip_org_suffixes(name: str) -> str:
    """``Deutsche Bank AG`` -> ``Deutsche Bank``; ``The Walt Disney Company`` -> ``Walt Disney``.

    Legal-form suffixes (:data:`ORG_SUFFIXES`) are stripped repeatedly with
    any comma before them; a leading ``The`` is stripped. Returns ``name``
    itself when nothing is stripped or nothing would be left.
    """
    current = _clean(name)
    changed = True
    while changed:
        changed = False
        for suffix in sorted(ORG_SUFFIXES, key=len, reverse=True):
            if current.endswith(" " + suffix):
                stripped = current[: -len(suffix)].rstrip(" ,")
                if stripped:
                    current, changed = stripped, True
                    break
    if current.startswith("The ") and len(current) > 4:
        current = current[4:]
    return current


def ticker_organisations(indices_file, variants: bool = True) -> set[str]:
    """Company names of the stock indices in pytickersymbols' ``indices_data.py``.

    With ``variants``, each name also without its legal-form suffix (see
    :func:`strip_org_suffixes`), unless that leaves a single lower-case word.
    """
    entries = set()
    for index in _read_indices(indices_file).values():
        for company in index.get("companies", []):
            name = _clean(company.get("name") or "")
            if not name:
                continue
            entries.add(name)
            if variants:
                short = strip_org_suffixes(name)
                if short and short != name and not (" " not in short and short.islower()):
                    entries.add(short)
    return entries


def census_names(census_dir, mode: str = "none", top: int = 100) -> set[str]:
    """Person names from the 1990 US census files (``dist.male.first``, ``dist.female.first``, ``dist.all.last``).

    ``mode``: ``"none"``; ``"first"``: the ``top`` most frequent male and
    ``top`` female first names, title-cased; ``"pairs"``: every pair of those
    first names with the ``top`` most frequent surnames (``"John Smith"``).
    """
    if mode == "none":
        return set()
    if mode not in ("first", "pairs"):
        raise CofeeError(f"census mode must be none, first or pairs, not {mode!r}")
    census_dir = Path(census_dir)

    def ranked(name):
        path = census_dir / name
        if not path.exists():
            raise InputError(path, None, "file not found")
        out = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise InputError(path, lineno, "expected 4 columns: NAME freq cumulative rank")
            out.append(parts[0].title())
        return out[:top]

    firsts = ranked("dist.male.first") + ranked("dist.female.first")
    if mode == "first":
        return set(firsts)
    lasts = ranked("dist.all.last")
    return {f"{first} {last}" for first in firsts for last in lasts}


def span_surfaces(records: Iterable[dict], types=("PER",)) -> set[str]:
    """The surfaces (tokens joined by a space) of the spans of the given types."""
    out = set()
    for rec in records:
        for start, end, span_type in rec["spans"]:
            if span_type in types:
                out.add(_clean(" ".join(rec["tokens"][start:end + 1])))
    return {e for e in out if any(ch.isalpha() for ch in e)}


def lowercase_word_counts(dumps: Iterable) -> Counter:
    """How often each all-lower-case word occurs in the article text of Wikipedia dumps.

    Used to find entries that are common words (``Police``, ``Union``,
    ``Next``): article text only (namespace 0, no redirects), tokenised like
    D_g.
    """
    from .wiki.dump import iter_pages
    from .wiki.text import token_offsets
    from .wiki.wikitext import anchored_paragraphs

    counts = Counter()
    for dump in dumps:
        for page in iter_pages(dump, progress=False):
            if page.ns != 0 or page.redirect:
                continue
            for text, _ in anchored_paragraphs(page.text):
                for start, end in token_offsets(text, "en"):
                    word = text[start:end]
                    if word.isalpha() and word.islower():
                        counts[word] += 1
    return counts


def drop_common_words(entries: set[str], lower_counts: Counter, min_count: int) -> set[str]:
    """Drop one-word entries whose lower-case form occurs at least ``min_count`` times in ``lower_counts``."""
    if min_count <= 0:
        return set(entries)
    return {e for e in entries if " " in e or lower_counts.get(e.lower(), 0) < min_count}


# --------------------------------------------------------------------------- Chinese sources

def read_jieba_dict(dict_file) -> list[tuple[str, int, str]]:
    """``(word, frequency, pos)`` triples from jieba's ``dict.txt`` (``word freq pos`` lines)."""
    path = Path(dict_file)
    if not path.exists():
        raise InputError(path, None, "file not found")
    out = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3 or not parts[1].isdigit():
                raise InputError(path, lineno, "expected 'word frequency pos'")
            out.append((parts[0], int(parts[1]), parts[2]))
    return out


def surname_characters(jieba_words: list[tuple[str, int, str]], top: int = 300) -> set[str]:
    """The ``top`` most frequent first characters of three-character ``nr`` words (a surname list)."""
    counts = Counter(word[0] for word, _, pos in jieba_words if pos == "nr" and len(word) == 3 and _is_han(word))
    return {ch for ch, _ in counts.most_common(top)}


def jieba_entities(jieba_words: list[tuple[str, int, str]], options: dict) -> dict[str, set[str]]:
    """PER / LOC / ORG entries from jieba's tagged dictionary, filtered as the module docstring says."""
    surnames = surname_characters(jieba_words, options["surname_top"]) if options["surname_filter"] else None
    per, loc, org = set(), set(), set()
    for word, freq, pos in jieba_words:
        if not _is_han(word) or len(word) < 2:
            continue
        if pos in ("nr", "nrfg"):
            if (options["jieba_per_min_len"] <= len(word) <= 4 and freq >= options["jieba_min_freq_per"]
                    and (surnames is None or word[0] in surnames)):
                per.add(word)
        elif pos == "ns":
            if freq >= options["jieba_min_freq_loc"]:
                loc.add(word)
        elif pos == "nt":
            if freq >= options["jieba_min_freq_org"]:
                org.add(word)
    return {"PER": per, "LOC": loc, "ORG": org}


def jionlp_china_locations(china_file, max_level: int = 3) -> set[str]:
    """Names from jionlp's ``china_location.txt`` down to ``max_level`` (1 province ... 5 village).

    Lines are tab-indented by level: ``full<TAB>code<TAB>short`` for provinces,
    cities and counties, a bare name for townships and villages. Both the full
    and the short name are entries.
    """
    path = Path(china_file)
    if not path.exists():
        raise InputError(path, None, "file not found")
    entries = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            level = len(line) - len(line.lstrip("\t")) + 1
            if level > max_level:
                continue
            fields = line.strip().split("\t")
            for name in (fields[0], fields[2] if len(fields) >= 3 else ""):
                if _is_han(name) and len(name) >= 2:
                    entries.add(name)
    return entries


def jionlp_world_locations(world_file) -> set[str]:
    """Names from jionlp's ``world_location.txt``: continents, countries (short, full), capitals, cities."""
    path = Path(world_file)
    if not path.exists():
        raise InputError(path, None, "file not found")
    entries = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            for field in line.strip().rstrip(":：").split("\t"):
                for name in field.split("/"):
                    name = name.strip()
                    if _is_han(name) and len(name) >= 2:
                        entries.add(name)
    return entries


def geonames_han_names(geonames_dir) -> set[str]:
    """Han-character alternate names of the GeoNames cities (population >= 15,000)."""
    entries = set()
    for city in _read_json(Path(geonames_dir) / "cities15000.json").values():
        for name in city.get("alternatenames", ()):
            name = name.strip()
            if _is_han(name) and len(name) >= 2:
                entries.add(name)
    return entries


# --------------------------------------------------------------------------- subsampling

def _rank_key(seed: int, gaz_type: str, entry: str) -> bytes:
    return hashlib.sha256(f"{seed}|{gaz_type}|{entry}".encode("utf-8")).digest()


def subsample(entries: Iterable[str], fraction: float, seed: int, gaz_type: str) -> list[str]:
    """Keep ``round(fraction * n)`` entries, chosen by a seeded hash rank; returned sorted.

    For one ``seed`` and ``gaz_type``, a smaller fraction's list is a subset
    of a larger fraction's list (it is a prefix of the same ranking).
    """
    if not 0.0 < fraction <= 1.0:
        raise CofeeError(f"fraction must be in (0, 1], not {fraction}")
    entries = sorted(set(entries))
    if fraction == 1.0:
        return entries
    keep = int(math.floor(fraction * len(entries) + 0.5))
    ranked = sorted(entries, key=lambda e: _rank_key(seed, gaz_type, e))
    return sorted(ranked[:keep])


# --------------------------------------------------------------------------- building

def _fetch(name):
    from .sources import fetch

    return fetch(name)


def _source(name: str, used: str, entries: set[str]) -> dict:
    """A provenance item: the fetched source (package and version from ``sources.json``), what was used, how many."""
    from .sources import source_info

    info = source_info(name)
    return {"source": name, "package": f"{info['package']}=={info['version']}", "used": used, "entries": len(entries)}


def build_english(target: str | None, options: dict, load_train=None) -> tuple[dict[str, set[str]], dict]:
    """English PER/LOC/ORG entries and the provenance of each type (fetches the sources).

    With a ``target``, ``load_train(name)`` gives the training records of the
    dataset ``PER_SOURCE_FOR_TARGET[target]`` (see :func:`build_gazetteers`).
    """
    sources: dict[str, list] = {"PER": [], "LOC": [], "ORG": []}
    cities = geonames_locations(_fetch("geonames"), options["geonames_min_population"], options["geonames_alternates"])
    countries = pycountry_locations(_fetch("pycountry"))
    companies = ticker_organisations(_fetch("tickers"), options["ticker_variants"])
    gaz = {"PER": set(), "LOC": cities | countries, "ORG": companies}
    sources["LOC"].append(_source("geonames", "countries, US states, cities with population >= "
                                  f"{options['geonames_min_population']:,}, alternate names: "
                                  f"{options['geonames_alternates']}", cities))
    sources["LOC"].append(_source("pycountry", "ISO 3166-1 name, common_name, official_name", countries))
    sources["ORG"].append(_source("tickers", "company names of 20 stock indices" + (
        ", plus the names without legal-form suffixes" if options["ticker_variants"] else ""), companies))
    if target is not None:
        other = PER_SOURCE_FOR_TARGET[target]
        _check_loader(load_train, target)
        records = load_train(other)
        for gaz_type in options["other_dataset_types"]:
            min_tokens = options["per_min_tokens"] if gaz_type == "PER" else 1
            names = {e for e in span_surfaces(records, (gaz_type,)) if len(tokenize_entry(e)) >= min_tokens}
            if options["require_capital"]:
                names = {e for e in names if any(ch.isupper() for ch in e)}
            gaz[gaz_type] |= names
            sources[gaz_type].append(_source(other, f"{gaz_type} span surfaces of the {other} TRAIN split "
                                             f"(the target, {target}, is never used)", names))
    if options["census"] != "none":
        names = census_names(_fetch("census-names"), options["census"], options["census_top"])
        gaz["PER"] |= names
        sources["PER"].append(_source("census-names", f"1990 US census names, {options['census']} of the "
                                      f"{options['census_top']} most frequent", names))
    if target is None:
        sources["PER"].append({"source": None, "used": "no --target given: no dataset person names", "entries": 0})
    if options["common_word_min_lower"] > 0:
        counts = lowercase_word_counts([_fetch("enwiki"), _fetch("enwiki-tables")])
        for gaz_type in options["common_word_types"]:
            kept = drop_common_words(gaz[gaz_type], counts, options["common_word_min_lower"])
            sources[gaz_type].append({"source": "enwiki, enwiki-tables", "used": (
                f"filter: one-word entries seen as a lower-case word >= {options['common_word_min_lower']} "
                "time(s) in the article text removed"), "removed": len(gaz[gaz_type]) - len(kept)})
            gaz[gaz_type] = kept
    return gaz, sources


def build_chinese(options: dict) -> tuple[dict[str, set[str]], dict]:
    """Chinese PER/LOC/ORG entries (GPE folded into LOC) and their provenance (fetches the sources)."""
    words = read_jieba_dict(_fetch("jieba"))
    jieba = jieba_entities(words, options)
    china = jionlp_china_locations(_fetch("jionlp-china"), options["jionlp_china_level"])
    world = jionlp_world_locations(_fetch("jionlp-world"))
    sources = {
        "PER": [_source("jieba", f"nr/nrfg words of {options['jieba_per_min_len']}-4 characters, frequency >= "
                        f"{options['jieba_min_freq_per']}" + (f", first character among the {options['surname_top']} "
                        "most frequent surname characters" if options["surname_filter"] else ""), jieba["PER"])],
        "LOC": [_source("jieba", f"ns words, frequency >= {options['jieba_min_freq_loc']}", jieba["LOC"]),
                _source("jionlp-china", f"levels 1-{options['jionlp_china_level']}, full and short names", china),
                _source("jionlp-world", "continents, countries, capitals, cities", world)],
        "ORG": [_source("jieba", f"nt words, frequency >= {options['jieba_min_freq_org']}", jieba["ORG"])],
    }
    gaz = {"PER": jieba["PER"], "LOC": jieba["LOC"] | china | world, "ORG": jieba["ORG"]}
    if options["geonames_han"]:
        han = geonames_han_names(_fetch("geonames"))
        gaz["LOC"] |= han
        sources["LOC"].append(_source("geonames", "Han-character alternate names of cities", han))
    return gaz, sources


def _check_loader(load_train, target: str) -> None:
    if load_train is None:
        raise CofeeError(f"the English gazetteers for target {target!r} take their person names from the "
                         f"{PER_SOURCE_FOR_TARGET[target]} training split: pass load_train "
                         "(cofee_lib.datasets.load_train)")


def build_gazetteers(lang: str, target: str | None = None, fraction: float = 1.0, seed: int = 0,
                     options: dict | None = None, load_train=None) -> tuple[dict[str, list[str]], dict]:
    """Build typed gazetteers from the fetched sources: ``({type: sorted entries}, provenance)``.

    ``options`` override :func:`default_options`; ``target`` (English only)
    picks the dataset the gazetteers will be evaluated on, whose data is then
    never used (see the module docstring). With a ``target``, ``load_train``
    is called once, ``load_train(PER_SOURCE_FOR_TARGET[target])``, for the
    training records of the other English dataset (the registry's
    :func:`cofee_lib.datasets.load_train`; this module loads no dataset).
    """
    opts = default_options(lang)
    unknown = set(options or {}) - set(opts)
    if unknown:
        raise CofeeError(f"unknown gazetteer options for {lang}: {', '.join(sorted(unknown))}")
    opts.update(options or {})
    if target is not None and target not in TARGETS:
        raise CofeeError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if target is not None and lang == "en":
        _check_loader(load_train, target)  # before anything is fetched
    if lang == "en":
        full, sources = build_english(target, opts, load_train)
    else:
        if target is not None:
            raise CofeeError(f"--target is for English ({', '.join(TARGETS)}); Chinese gazetteers do not use it")
        full, sources = build_chinese(opts)
    gaz = {t: subsample(entries, fraction, seed, t) for t, entries in full.items()}
    provenance = {
        "lang": lang,
        "target": target,
        "fraction": fraction,
        "seed": seed,
        "case_sensitive": bool(opts.get("case_sensitive", True)),
        "all_caps_title": bool(opts.get("all_caps_title", False)),
        "tokenization": "words (tokenize_entry)" if lang == "en" else "characters",
        "counts": {t: len(v) for t, v in gaz.items()},
        "counts_full": {t: len(v) for t, v in full.items()},
        "options": opts,
        "sources": sources,
    }
    return gaz, provenance


def write_gazetteers(out_dir, gazetteers: dict[str, Iterable[str]], provenance: dict) -> Path:
    """Write ``TYPE.txt`` files (sorted, one entry per line) and ``provenance.json`` into ``out_dir``.

    Files are written to a temporary directory first and moved in at the end,
    so a failure leaves ``out_dir`` as it was.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CofeeError(f"{out_dir}: exists and is not a directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for gaz_type, entries in gazetteers.items():
            lines = sorted(set(entries))
            for entry in lines:
                if "\n" in entry or "\r" in entry or not entry.strip():
                    raise CofeeError(f"gazetteer {gaz_type}: entry {entry!r} is empty or spans lines")
            (tmp / f"{gaz_type}.txt").write_text("".join(e + "\n" for e in lines), encoding="utf-8")
        (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        out_dir.mkdir(exist_ok=True)
        for stale in list(out_dir.glob("*.txt")) + [out_dir / PROVENANCE]:
            if stale.exists():
                stale.unlink()
        for item in tmp.iterdir():
            item.replace(out_dir / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def guess_lang(gazetteers) -> str:
    """``"zh"`` if most entries are all Han characters, else ``"en"``."""
    entries = [e for v in gazetteers.values() for e in v]
    return "zh" if sum(_is_han(e) for e in entries) * 2 > len(entries) else "en"


class Gazetteers(dict):
    """``{type: set of entries}`` with the matching normalisation read from ``provenance.json``.

    Attributes: ``lang`` (``"en"``: word tokens, ``"zh"``: characters),
    ``case_sensitive``, ``all_caps_title`` (an all-capitals text token also
    matches its title-case form: ``LONDON`` -> ``London``), ``provenance``
    (the parsed JSON, ``{}`` if absent).
    """

    def __init__(self, data=(), lang: str = "en", case_sensitive: bool = True, all_caps_title: bool = False,
                 provenance: dict | None = None):
        super().__init__(data)
        self.lang = lang
        self.case_sensitive = case_sensitive
        self.all_caps_title = all_caps_title
        self.provenance = provenance or {}


def load_gazetteers(directory) -> Gazetteers:
    """Read a gazetteer directory: every ``TYPE.txt`` (type = file stem) and ``provenance.json``.

    Blank lines are skipped. Without ``provenance.json`` the language is
    guessed (``zh`` if most entries are Han characters) and matching is
    case-sensitive. A missing directory, one without ``*.txt`` files, or one
    whose files hold no entries is an error naming the directory.
    """
    directory = Path(directory)
    if not directory.exists():
        raise InputError(directory, None, "gazetteer directory not found (build one with `cofee gazetteer build`)")
    if not directory.is_dir():
        raise InputError(directory, None, "expected a gazetteer directory holding TYPE.txt files")
    files = sorted(directory.glob("*.txt"))
    if not files:
        raise InputError(directory, None, "no TYPE.txt gazetteer files (expected e.g. PER.txt, LOC.txt, ORG.txt)")
    data = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        data[path.stem] = {_clean(line) for line in text.splitlines() if line.strip()}
    if not any(data.values()):
        raise InputError(directory, None, "all gazetteer files are empty (expected one entry per line)")
    provenance = {}
    if (directory / PROVENANCE).exists():
        provenance = _read_json(directory / PROVENANCE)
    lang = provenance.get("lang") or guess_lang(data)
    return Gazetteers(data, lang=lang, case_sensitive=bool(provenance.get("case_sensitive", True)),
                      all_caps_title=bool(provenance.get("all_caps_title", False)), provenance=provenance)


def make_gazetteers(out_dir, lang: str, target: str | None = None, fraction: float = 1.0, seed: int = 0,
                    options: dict | None = None, load_train=None) -> Gazetteers:
    """Build gazetteers (:func:`build_gazetteers`), write them into ``out_dir`` and read them back.

    E.g. ``make_gazetteers(work / "gazetteers" / "zh-msra", "zh")``: the Chinese
    gazetteers notebook 02 scores on MSRA. Not cached: every call builds.
    """
    entries, provenance = build_gazetteers(lang, target=target, fraction=fraction, seed=seed, options=options,
                                           load_train=load_train)
    return load_gazetteers(write_gazetteers(out_dir, entries, provenance))


def copy_gazetteers(source, dest, lang: str, fraction: float = 1.0, seed: int = 0) -> dict:
    """Write the user's gazetteer folder ``source`` into ``dest`` as the kit writes its own; ``{type: count}``.

    Entries are read by :func:`load_gazetteers` (blank lines skipped,
    whitespace normalised), ``fraction`` of each type kept by
    :func:`subsample` (Figure 3), and a ``provenance.json`` says where they
    came from. The user's own ``provenance.json`` (matching options such as
    ``case_sensitive``) is kept; without one the language is ``lang`` (the
    dataset's).
    """
    gaz = load_gazetteers(source)
    kept = {t: subsample(entries, fraction, seed, t) for t, entries in gaz.items()}
    provenance = {**gaz.provenance,
                  "lang": gaz.provenance.get("lang") or lang,
                  "case_sensitive": gaz.case_sensitive, "all_caps_title": gaz.all_caps_title,
                  "source": f"the user's gazetteers, {Path(source).resolve()}",
                  "fraction": fraction, "seed": seed,
                  "counts": {t: len(v) for t, v in kept.items()},
                  "counts_full": {t: len(v) for t, v in gaz.items()}}
    write_gazetteers(dest, kept, provenance)
    return provenance["counts"]


def fold_gpe(counts: dict) -> dict:
    """``{type: n}`` with ``GPE`` added into ``LOC`` (and no ``GPE`` key), as the kit's Chinese gazetteers fold it.

    MSRA, and so the kit's Chinese gazetteers, have PER, LOC and ORG only;
    the paper's Chinese gazetteers (Sec. 5.2) also have GPE. Folded, the two
    compare type by type: ``fold_gpe({"PER": 1, "GPE": 2, "LOC": 3})`` ->
    ``{"PER": 1, "LOC": 5}``.
    """
    out = {t: n for t, n in counts.items() if t != "GPE"}
    if "GPE" in counts:
        out["LOC"] = out.get("LOC", 0) + counts["GPE"]
    return out
