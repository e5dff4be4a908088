"""Wikitext to plain paragraphs with anchors (character offsets, end exclusive).

:func:`anchored_paragraphs` turns the wikitext of one article into a list of
``(text, anchors)`` pairs, one per paragraph or list item, where each anchor is
``(start, end, target)``: ``text[start:end]`` is the surface the reader sees and ``target``
the linked article title, normalised as MediaWiki does (underscores to spaces, first letter
upper case, ``#section`` dropped) but **not** resolved through redirects (that needs the whole
dump; see :mod:`cofee_lib.wiki.anchors`).

What is kept and what is dropped:

* ``[[target|surface]]``, ``[[target]]``, ``[[target#section|surface]]``, the pipe trick
  ``[[target (x)|]]`` and English link trails ``[[bus]]es`` (the trail joins the surface)
  are anchors to article titles.
* Dropped with their content: templates ``{{..}}`` and ``{{{..}}}`` (nested), tables
  ``{| .. |}``, ``<ref>..</ref>`` / ``<ref/>`` and other non-prose tags (math, gallery, pre,
  code-like blocks), HTML comments, files/images with their captions (``[[File:..]]``,
  ``[[Image:..]]``, ``[[文件:..]]``, ...), categories, interlanguage links (``[[de:..]]``),
  headings, horizontal rules, table leftovers, behaviour switches (``__TOC__``).
* Kept as plain text, not anchors: links into other namespaces or wikis written to be shown
  (``[[:Category:X|x]]``, ``[[wikt:word|word]]``), links to a section of the same page
  (``[[#History|history]]``), external link labels (``[http://x label]`` -> ``label``),
  the inner text of formatting tags (``<b>``, ``<span>``, ``<sub>``), list items without
  their ``*#:;`` markup (each list item is its own paragraph).
* Bold/italic quotes are removed; HTML entities are decoded.
* Consecutive lines form one paragraph in English (MediaWiki joins them); in Chinese every
  line is its own paragraph (a line end ends a sentence).
* Chinese language-conversion markup ``-{..}-`` (``lang="zh"`` only): the first variant is
  kept (``-{zh-hans:计算机;zh-hant:電腦}-`` -> ``计算机``), plain content is kept
  (``-{Foo}-`` -> ``Foo``), hidden rules (flags ``H``, ``T``, ``-``) are dropped.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote

Anchor = tuple[int, int, str]

_OPEN, _MID, _CLOSE = "\ue000", "\ue001", "\ue002"
_PRIVATE = re.compile("[\ue000-\ue002]")
_MARK = re.compile("\ue000([^\ue000-\ue002]*)\ue001(\\d+)\ue002")

# Tags whose content is not prose: dropped with everything inside them.
_DROP_TAGS = ("ref", "references", "math", "chem", "ce", "gallery", "timeline", "imagemap", "score",
              "syntaxhighlight", "source", "pre", "hiero", "graph", "mapframe", "maplink",
              "templatedata", "templatestyles", "includeonly", "inputbox", "categorytree", "table")
_DROP_TAG_RE = re.compile(
    r"<(?P<tag>" + "|".join(_DROP_TAGS) + r")\b[^>]*?(?:/>|>.*?</(?P=tag)\s*>)", re.S | re.I)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_BRACES = re.compile(r"\{{2,}|\}{2,}")
_EXT_LINK = re.compile(r"\[(?:https?:|ftp:|//|mailto:|news:|irc:|ircs:|gopher:|sftp:)[^\s\[\]<>\"]*(?:\s+([^\]\n]*))?\]", re.I)
_BR = re.compile(r"<br\s*/?>", re.I)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>\ue000-\ue002]*)?/?>")
_QUOTES = re.compile(r"'{5}|'''|''")
_MAGIC = re.compile(r"__[A-Z]+__")
_HEADING = re.compile(r"^=+.*=+$")
_LEFTOVER = re.compile(r"\[\[|\]\]|\{\{|\}\}")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\ufeff]")
_SPACES = re.compile(r"\s+")
_CONVERSION = re.compile(r"-\{([^{}]*?)\}-")
_CONV_FLAGS = re.compile(r"\s*([A-Za-z-](?:\s*;\s*[A-Za-z-])*)\s*;?\s*\|(.*)", re.S)
_CONV_VARIANT = re.compile(r"(?:^|;)\s*(zh(?:-[a-z]+)*)\s*:([^;]*)")
_HIDDEN_OPEN = re.compile(r"\[\[\s*([^\[\]|\n:]{1,40}):")
_DOUBLE_BRACKETS = re.compile(r"\[\[|\]\]")
_EMPTY_PARENS = re.compile(r"\s*[(（]\s*(?:[,;:，；、]\s*)*[)）]")
# Every match of _EMPTY_PARENS holds a match of this one, which the regex engine finds much
# faster (it does not try a whitespace run at every position): it decides whether to run it.
_EMPTY_PARENS_HINT = re.compile(r"[(（]\s*(?:[,;:，；、]\s*)*[)）]")
_PARENTHETICAL = re.compile(r"\s*\([^()]*\)\s*$")

# Namespace names and aliases (case-folded) -> "file" | "category" | "other", besides
# whatever the dump's <siteinfo> declares.
_DEFAULT_NAMESPACES = {
    "file": "file", "image": "file", "media": "file",
    "文件": "file", "檔案": "file", "档案": "file", "图像": "file", "圖像": "file", "图片": "file",
    "圖片": "file", "媒体": "file", "媒體": "file", "媒体文件": "file",
    "category": "category", "分类": "category", "分類": "category",
    "template": "other", "模板": "other", "样板": "other", "樣板": "other",
    "wikipedia": "other", "wp": "other", "project": "other", "维基百科": "other", "維基百科": "other",
    "help": "other", "帮助": "other", "幫助": "other", "portal": "other", "主题": "other", "主題": "other",
    "user": "other", "用户": "other", "用戶": "other", "talk": "other", "讨论": "other", "討論": "other",
    "special": "other", "特殊": "other", "draft": "other", "草稿": "other", "module": "other",
    "模块": "other", "模組": "other", "mediawiki": "other", "book": "other", "timedtext": "other",
    "wikiproject": "other",
}

# Wikipedia language editions: [[xx:Title]] (no leading colon) is an interlanguage link.
_LANGUAGE_CODES = frozenset("""
aa ab ace ady af ak als alt am an ang ar arc ary arz as ast atj av avk awa ay az azb ba ban bar
bat-smg bcl be be-tarask be-x-old bg bh bi bjn bm bn bo bpy br bs bug bxr ca cbk-zam cdo ce ceb ch
cho chr chy ckb co cr crh cs csb cu cv cy da de din diq dsb dty dv dz ee el eml en eo es et eu ext
fa ff fi fiu-vro fj fo fr frp frr fur fy ga gag gan gcr gd gl glk gn gom gor got gu gv ha hak haw
he hi hif ho hr hsb ht hu hy hyw hz ia id ie ig ii ik ilo inh io is it iu ja jam jbo jv ka kaa kab
kbd kbp kg ki kj kk kl km kn ko koi kr krc ks ksh ku kv kw ky la lad lb lbe lez lfn lg li lij lld
lmo ln lo lrc lt ltg lv mad mai map-bms mdf mg mh mhr mi min mk ml mn mni mnw mo mr mrj ms mt mus
mwl my myv mzn na nah nap nb nds nds-nl ne new ng nia nl nn no nov nqo nrm nso nv ny oc olo om or
os pa pag pam pap pcd pdc pfl pi pih pl pms pnb pnt ps pt qu rm rmy rn ro roa-rup roa-tara ru rue
rw sa sah sat sc scn sco sd se sg sh shi shn si simple sk skr sl sm smn sn so sq sr srn ss st stq
su sv sw szl szy ta tay tcy te tet tg th ti tk tl tn to tpi tr trv ts tt tum tw ty tyv udm ug uk
ur uz ve vec vep vi vls vo wa war wo wuu xal xh xmf yi yo yue za zea zh zh-classical zh-min-nan
zh-yue zu
""".split())

# Inline interwiki prefixes (sister projects): shown as text, not Wikipedia anchors.
_INTERWIKI = frozenset("""
w wikipedia wikt wiktionary s wikisource b wikibooks q wikiquote n wikinews v wikiversity voy
wikivoyage c commons d wikidata m meta mw mediawikiwiki species wikispecies foundation wmf phab
incubator outreach metawikimedia doi
""".split())

# MediaWiki link trails: letters right after "]]" that join the link's surface.
_LINK_TRAILS = {"en": re.compile(r"[a-z]+")}


@dataclass(frozen=True)
class SiteConfig:
    """How to read links on one wiki: language, namespace prefixes, title case rule."""

    lang: str = "en"
    namespaces: dict = field(default_factory=dict)
    first_letter_case: bool = True

    @classmethod
    def build(cls, lang: str = "en", siteinfo_namespaces: dict | None = None, first_letter_case: bool = True):
        """Combine the default namespace aliases with the dump's own ``{key: name}`` table."""
        names = dict(_DEFAULT_NAMESPACES)
        for key, name in (siteinfo_namespaces or {}).items():
            if not name or key == 0:
                continue
            kind = "file" if key in (6, -2) else "category" if key == 14 else "other"
            names[_fold(name)] = kind
        return cls(lang=lang, namespaces=names, first_letter_case=first_letter_case)

    def prefix_kind(self, prefix: str) -> str | None:
        """``"file"``, ``"category"``, ``"other"``, ``"interlanguage"``, ``"interwiki"`` or None (article)."""
        key = _fold(prefix)
        kind = self.namespaces.get(key)
        if kind:
            return kind
        if key in _LANGUAGE_CODES:
            return "interlanguage"
        if key in _INTERWIKI:
            return "interwiki"
        return None


def _squash_spaces(text: str) -> str:
    """``re.sub(r"\\s+", " ", text)``, faster: ``str.split`` and the regex ``\\s`` agree on
    what whitespace is (both ``Py_UNICODE_ISSPACE``)."""
    parts = text.split()
    if not parts:
        return " " if text else ""
    out = " ".join(parts)
    if text[0].isspace():
        out = " " + out
    if text[-1].isspace():
        out += " "
    return out


@lru_cache(maxsize=1 << 12)
def _fold(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).casefold()


@lru_cache(maxsize=1 << 16)
def normalize_title(title: str, first_letter_case: bool = True) -> str:
    """A link target as MediaWiki stores it: entities and %-escapes decoded, underscores to
    spaces, runs of spaces collapsed, no leading colon or ``#section``, first letter upper case."""
    title = html.unescape(title)
    if "%" in title:
        title = unquote(title)
    title = " ".join(title.replace("_", " ").split())
    title = title.lstrip(":").strip()
    title = title.split("#", 1)[0].strip()
    if first_letter_case and title:
        first = title[0].upper()
        if len(first) == 1:
            title = first + title[1:]
    return title


def strip_templates(text: str) -> str:
    """Remove ``{{..}}`` templates and ``{{{..}}}`` parameters, nested to any depth.

    Closing braces with no opening are kept as text; an opening that is never closed is
    dropped (its braces only) and the text after it is kept and scanned again.
    """
    if "{{" not in text and "}}" not in text:  # no run of two or more braces: nothing to remove
        return text
    out: list[str] = []
    start = 0
    while True:
        stack: list[int] = []
        pos = start
        outer_end = start
        for m in _BRACES.finditer(text, start):
            run = m.group()
            n = len(run)
            if run[0] == "{":
                if not stack:
                    out.append(text[pos:m.start()])
                    outer_end = m.end()
                while n >= 2:
                    size = 3 if (n == 3 or n >= 5) else 2
                    stack.append(size)
                    n -= size
                pos = m.end()
            elif stack:
                while n >= 2 and stack:
                    size = stack.pop()
                    n = max(0, n - size) if n >= size else n - 2
                if not stack:
                    pos = m.end() - n
        if not stack:
            out.append(text[pos:])
            return "".join(out)
        start = outer_end  # unclosed: keep what follows its opening braces


def strip_tables(text: str) -> str:
    """Remove wiki tables ``{| .. |}`` (nested), line by line."""
    out = []
    depth = 0
    for line in text.split("\n"):
        s = line.lstrip(" \t:*#")
        if s.startswith("{|"):
            depth += 1
            continue
        if depth:
            if s.startswith("|}"):
                depth -= 1
            continue
        out.append(line)
    return "\n".join(out)


def _conversion(m) -> str:
    body = m.group(1)
    flags = _CONV_FLAGS.match(body)
    if flags:
        letters = {f.strip() for f in flags.group(1).split(";")}
        if letters & {"H", "T", "-"}:
            return ""
        body = flags.group(2)
    variants = _CONV_VARIANT.findall(body)
    if variants:
        return variants[0][1].strip()
    return body


def strip_conversions(text: str) -> str:
    """Replace Chinese conversion markup ``-{..}-`` by its first variant or plain content."""
    for _ in range(4):
        new = _CONVERSION.sub(_conversion, text)
        if new == text:
            break
        text = new
    return text


def _unmark(text: str) -> str:
    if _OPEN not in text:  # no marker: nothing to replace
        return text
    return _MARK.sub(lambda m: m.group(1), text)


class _LinkResolver:
    """Replaces ``[[..]]`` links innermost-first; article links become anchor markers."""

    def __init__(self, site: SiteConfig):
        self.site = site
        self.targets: list[str] = []
        trail = _LINK_TRAILS.get(site.lang)
        trail_src = f"({trail.pattern})?" if trail else "()"
        self.pattern = re.compile(r"\[\[([^\[\]]*)\]\]" + trail_src)

    def __call__(self, m) -> str:
        inner, trail = m.group(1), m.group(2) or ""
        target, bar, label = inner.partition("|")
        t = target.strip()
        shown = t.startswith(":")
        if shown:
            t = t[1:].strip()
        head, colon, _rest = t.partition(":")
        kind = self.site.prefix_kind(head) if colon else None
        if kind is not None:
            if not shown and kind in ("file", "category", "interlanguage"):
                return trail if kind == "category" else ""
            surface = label if bar else t
            return _unmark(surface) + trail
        page = t.split("#", 1)[0].strip()
        if not page or any(c in page for c in "<>{}"):
            return _unmark(label if bar else t) + trail
        if bar:
            surface = label
            if not surface.strip():  # pipe trick: [[Queen (band)|]] -> "Queen", [[Boston, Mass.|]] -> "Boston"
                surface = _PARENTHETICAL.sub("", page) if _PARENTHETICAL.search(page) else page.split(",", 1)[0]
        else:
            surface = t.replace("_", " ")
        surface = _unmark(surface + trail).replace("\n", " ")
        idx = len(self.targets)
        self.targets.append(normalize_title(page, self.site.first_letter_case))
        return f"{_OPEN}{surface}{_MID}{idx}{_CLOSE}"

    def drop_hidden(self, text: str) -> str:
        """Drop file, category and interlanguage links up to their matching ``]]``, whatever
        their captions hold (nested links, single brackets)."""
        out = []
        pos = 0
        for m in _HIDDEN_OPEN.finditer(text):
            if m.start() < pos or self.site.prefix_kind(m.group(1)) not in ("file", "category", "interlanguage"):
                continue
            depth = 0
            for b in _DOUBLE_BRACKETS.finditer(text, m.start()):
                depth += 1 if b.group() == "[[" else -1
                if depth == 0:
                    out.append(text[pos:m.start()])
                    pos = b.end()
                    break
        out.append(text[pos:])
        return "".join(out)

    def run(self, text: str) -> str:
        text = self.drop_hidden(text)
        for _ in range(6):  # innermost first: file captions may hold links
            if "[[" not in text:  # nothing left to replace: a pass would change nothing
                break
            text, n = self.pattern.subn(self, text)
            if not n:  # a replacement never equals what it replaces (that holds "[["), so n == 0 <=> unchanged
                break
        return text


def _clean_inline(par: str) -> str:
    # each step runs only when the characters it needs are there (the same result, faster)
    if "<" in par:
        par = _BR.sub(" ", par)
        par = _TAG.sub("", par)
    if "''" in par:
        par = _QUOTES.sub("", par)
    if _EMPTY_PARENS_HINT.search(par):
        par = _EMPTY_PARENS.sub("", par)
    if "[[" in par or "]]" in par or "{{" in par or "}}" in par:
        par = _LEFTOVER.sub("", par)
    if "__" in par:
        par = _MAGIC.sub("", par)
    par = html.unescape(par)
    par = _INVISIBLE.sub("", par)
    return _squash_spaces(par)


def _extract(par: str, targets: list[str]) -> tuple[str, list[Anchor]]:
    """Turn a paragraph with anchor markers into (plain text, [(start, end, target)])."""
    out: list[str] = []
    anchors: list[Anchor] = []
    length = 0
    pos = 0
    for m in _MARK.finditer(par):
        before = par[pos:m.start()]
        out.append(before)
        length += len(before)
        surface = m.group(1)
        lead = len(surface) - len(surface.lstrip())
        core = surface.strip()
        if core:
            anchors.append((length + lead, length + lead + len(core), targets[int(m.group(2))]))
        out.append(surface)
        length += len(surface)
        pos = m.end()
    out.append(par[pos:])
    text = "".join(out)
    stripped = text.lstrip()
    shift = len(text) - len(stripped)
    text = stripped.rstrip()
    anchors = [(s - shift, e - shift, t) for s, e, t in anchors if e - shift <= len(text)]
    return text, anchors


def anchored_paragraphs(wikitext: str, site: SiteConfig | None = None) -> list[tuple[str, list[Anchor]]]:
    """Convert one article's wikitext into ``[(text, [(start, end, target), ...]), ...]``.

    Offsets are character offsets into ``text`` with an **exclusive** end; targets are
    normalised titles, not yet resolved through redirects. Paragraphs without text are omitted.
    """
    site = site or SiteConfig.build()
    text = _PRIVATE.sub("", wikitext)
    if "<!--" in text:
        text = _COMMENT.sub("", text)
    text = _DROP_TAG_RE.sub("", text)
    if site.lang == "zh":
        text = strip_conversions(text)
    text = strip_templates(text)
    text = strip_tables(text)
    text = _EXT_LINK.sub(lambda m: m.group(1) or "", text)
    links = _LinkResolver(site)
    text = links.run(text)

    paragraphs: list[tuple[str, list[Anchor]]] = []
    current: list[str] = []

    def flush():
        if current:
            par, anchors = _extract(_clean_inline(" ".join(current)), links.targets)
            if par:
                paragraphs.append((par, anchors))
            current.clear()

    for line in text.split("\n"):
        s = line.strip()
        if not s or (s[0] == "=" and _HEADING.match(s)) or s.startswith("----") or s[0] in "|!":
            flush()
            continue
        if s[0] in "*#:;":
            flush()
            current.append(s.lstrip("*#:;").strip())
            flush()
            continue
        current.append(s)
        if site.lang == "zh":  # Chinese: a line end ends the sentence
            flush()
    flush()
    return paragraphs
