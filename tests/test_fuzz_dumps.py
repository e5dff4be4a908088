"""Property-based tests (hypothesis) for the readers issue 14 added: the multistream dump, its index, the feature store.

Any bytes (or a valid file with some of its bytes overwritten or cut off) either read as
valid data or raise a :class:`CofeeError` that names the file: never another exception
(ValueError, KeyError, EOFError, OSError, IndexError, ...). Small and derandomized, like
tests/test_fuzz_formats.py; ``COFEE_FUZZ_EXAMPLES=2000`` searches deeper.
"""
from __future__ import annotations

import bz2
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cofee_lib import featstore
from cofee_lib.errors import CofeeError
from cofee_lib.wiki.dump import SiteInfo, iter_pages
from cofee_lib.wiki.multistream import index_offsets, iter_multistream_pages, scan_offsets, write_dump

_DEEP = int(os.environ.get("COFEE_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(max_examples=_DEEP or 60, deadline=None, derandomize=not _DEEP, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
FIXTURE = Path(__file__).parent / "fixtures" / "wiki" / "enwiki-sample.xml.bz2"
NAME = "enwiki-20200401-pages-articles-multistream.xml.bz2"

# index lines that look almost right: offsets, ids and titles drawn from a small alphabet with colons
INDEX_TEXT = st.lists(st.text(alphabet="0123456789:ab \n-", max_size=24), max_size=12).map("\n".join)


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="cofee-fuzz-"))


def _refused_cleanly(exc: CofeeError, path: Path) -> None:
    assert str(path) in str(exc) or path.name in str(exc), f"the error does not name the file: {exc}"


@SETTINGS
@given(data=st.one_of(st.binary(max_size=400), INDEX_TEXT.map(str.encode)), compressed=st.booleans())
def test_any_index_reads_as_nondecreasing_offsets_or_is_refused(data, compressed):
    path = _scratch() / ("index.txt.bz2" if compressed else "index.txt")
    path.write_bytes(bz2.compress(data) if compressed else data)
    try:
        offsets = [offset for offset, _ in index_offsets(path)]
    except CofeeError as exc:
        _refused_cleanly(exc, path)
        return
    assert offsets and offsets == sorted(set(offsets))


@SETTINGS
@given(data=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=300))
def test_a_corrupt_bz2_index_is_refused_with_its_name(data, cut):
    path = _scratch() / "index.txt.bz2"
    path.write_bytes(bz2.compress(b"600:1:A\n" + data)[:cut + 4])   # always starts with the bz2 magic
    try:
        list(index_offsets(path))
    except CofeeError as exc:
        _refused_cleanly(exc, path)


@SETTINGS
@given(data=st.binary(max_size=600))
def test_scanning_any_bytes_for_streams_finds_increasing_offsets_or_refuses(data):
    path = _scratch() / NAME
    path.write_bytes(data)
    try:
        offsets = [offset for offset, _ in scan_offsets(path)]
    except CofeeError as exc:
        _refused_cleanly(exc, path)
        return
    assert offsets[0] == 0 and offsets == sorted(set(offsets)) and offsets[-1] < len(data)


@pytest.fixture(scope="module")
def dump_bytes():
    folder = _scratch()
    info = SiteInfo()
    pages = list(iter_pages(FIXTURE, info, progress=False))
    written = write_dump(pages, folder / NAME, info, pages_per_stream=2)
    return Path(written["dump"]).read_bytes(), Path(written["index"]).read_bytes(), len(pages)


@SETTINGS
@given(where=st.floats(min_value=0, max_value=1), junk=st.binary(min_size=1, max_size=16),
       truncate=st.booleans(), index=st.sampled_from(["auto", "scan"]))
def test_a_damaged_multistream_dump_reads_or_is_refused(dump_bytes, where, junk, truncate, index):
    dump, index_bytes, n_pages = dump_bytes
    at = int(where * (len(dump) - 1))
    damaged = dump[:at] if truncate else dump[:at] + junk + dump[at + len(junk):]
    folder = _scratch()
    path = folder / NAME
    path.write_bytes(damaged)
    (folder / NAME.replace(".xml.bz2", "-index.txt.bz2")).write_bytes(index_bytes)
    try:
        pages = list(iter_multistream_pages(path, index=index))
    except CofeeError as exc:
        _refused_cleanly(exc, path)
        return
    assert len(pages) <= n_pages + 1 and all(p.title for p in pages)


@pytest.fixture(scope="module")
def store_files():
    folder = _scratch() / "store"
    features = [{"input_ids": list(range(n + 2)), "label": n % 3, "spans": [(0, n), (1, n + 1)]} for n in range(12)]
    featstore.build_store(folder, lambda chunk: [features[r["i"]] for r in chunk], ({"i": i} for i in range(12)),
                          chunk_records=5)
    return {p.name: p.read_bytes() for p in folder.iterdir()}, features


JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 50) | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@SETTINGS
@given(data=st.data())
def test_a_damaged_feature_store_reads_or_is_refused(store_files, data):
    files, features = store_files
    name = data.draw(st.sampled_from(sorted(files)))
    original = files[name]
    how = data.draw(st.sampled_from(["truncate", "overwrite", "json"] if name == featstore.META
                                    else ["truncate", "overwrite"]))
    if how == "json":
        meta = json.loads(original)
        key = data.draw(st.sampled_from(sorted(meta)))
        meta[key] = data.draw(JSON)
        damaged = json.dumps(meta).encode()
    elif how == "truncate":
        damaged = original[:data.draw(st.integers(0, max(0, len(original) - 1)))]
    else:
        at = data.draw(st.integers(0, max(0, len(original) - 1)))
        junk = data.draw(st.binary(min_size=1, max_size=8))
        damaged = original[:at] + junk + original[at + len(junk):]
    folder = _scratch() / "store"
    folder.mkdir()
    for other, content in files.items():
        (folder / other).write_bytes(damaged if other == name else content)
    try:
        with featstore.FeatureStore(folder) as store:
            read = list(store)
    except CofeeError as exc:
        assert str(folder) in str(exc), f"the error does not name the store: {exc}"
        return
    assert len(read) == len(store) and all(isinstance(f, dict) for f in read)


def test_the_undamaged_store_reads_back_exactly(store_files):
    files, features = store_files
    folder = _scratch() / "store"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    with featstore.FeatureStore(folder) as store:
        assert list(store) == [{**f, "spans": [tuple(s) for s in f["spans"]]} for f in features]
