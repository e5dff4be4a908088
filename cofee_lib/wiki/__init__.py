"""Wikipedia anchors: the general-typed pre-training corpus D_g (paper Sec. 4.1, 5.2).

* :mod:`.dump`: stream the pages of a MediaWiki ``pages-articles`` export (.xml / .xml.bz2).
* :mod:`.multistream`: the ``pages-articles-multistream`` format and its index: independent
  bz2 streams that worker processes decompress and parse in parallel; :func:`write_dump`.
* :mod:`.redirects`: the redirect table, moved to SQLite when it is large.
* :mod:`.wikitext`: wikitext of one article -> plain paragraphs with anchors.
* :mod:`.text`: sentence splitting and tokenisation that never cut an anchor.
* :mod:`.anchors`: the whole pipeline, :func:`anchor_sentences` and :func:`build_anchor_corpus`.

Records are word-level with inclusive span ends (see :mod:`cofee_lib.records`); every span has
type ``"Entity"``.
"""
from .anchors import (ENTITY, STAT_KEYS, anchor_sentences, build_anchor_corpus, page_records,
                      resolve_dump, resolve_target)
from .dump import DumpError, Page, SiteInfo, iter_pages
from .multistream import index_beside, iter_multistream_pages, write_dump
from .redirects import RedirectTable
from .text import split_sentences, token_offsets, tokenize_with_anchors
from .wikitext import SiteConfig, anchored_paragraphs, normalize_title

__all__ = [
    "ENTITY", "STAT_KEYS", "anchor_sentences", "build_anchor_corpus", "page_records", "resolve_dump",
    "resolve_target", "DumpError", "Page", "SiteInfo", "iter_pages", "index_beside", "iter_multistream_pages",
    "write_dump", "RedirectTable", "split_sentences", "token_offsets",
    "tokenize_with_anchors", "SiteConfig", "anchored_paragraphs", "normalize_title",
]
