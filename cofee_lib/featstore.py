"""Training features on disk: written once, chunk by chunk, read back one feature at a time.

Why
    ``model.featurize`` returns every feature as a dict of Python lists: about 6.8 MiB per
    1,000 D_g records (MRC, one query, MiniLM tokenizer), so the paper's D_g (3.9M sentences)
    would need ~26 GB of RAM before training starts. A store holds the same features as int32
    on disk (1.34 KB per D_g feature: 311 values, 52 sub-tokens on average; ~5.2 GB for the
    paper's D_g) and the process keeps three small numbers per feature (row start, row size,
    length: 16 bytes, 16 MB for 1M features).

Decision: flat int32 rows + offsets read with ``os.pread``; not Arrow, and no memory map of the values
    Measured on the 2-core machine the kit is developed on, while it ran a training batch
    (relative figures), with a 240,000-feature store of real D_g features (the default D_g's
    1,246 MRC features repeated; 322 MB of values), reading every feature once in random
    batches of 16 as an epoch does, each reader in a fresh process:

    * ``os.pread`` of each feature's row (this module): 17 µs per feature, decode included;
      peak RSS +5 MB, whatever the size of the store.
    * a numpy ``memmap`` of the same values file: 16 µs per feature, but peak RSS +315 MB, the
      whole file: every page an epoch touches stays in the process's resident set. Those pages
      are reclaimable page cache, yet they are RSS, growing with the corpus, which is what the
      store is for (the target is flat peak RSS from 100k to 1M sentences).
    * Arrow (pyarrow is a dependency already; HuggingFace ``datasets`` is Arrow underneath),
      the same features as an IPC file opened with ``pyarrow.memory_map``: a row by
      ``table.slice(i, 1).to_pylist()`` took 2,000 µs (``table.take`` of 16 rows of the
      30-batch table 380 ms per row), and peak RSS grew by 610 MB after 20,000 random rows
      (the same memory-map effect; the file was 632 MB). Its columnar layout buys nothing here:
      the engine reads whole features, never one column of many features.

    So the values file is written with the standard library's ``array`` and read with
    ``os.pread`` + numpy; the index arrays are ``.npy`` files loaded whole.

A store folder
    ``meta.json``   format, count, schema (key -> kind), the strings of str-valued keys,
                    the featurizer's statistics, byte order
    ``values.i32``  every feature's row of int32 values (keys in schema order), back to back
    ``starts.npy``  int64 byte offset of each feature's row, in feature order
    ``sizes.npy``   int32 number of values in each row
    ``lengths.npy`` int32 ``len(input_ids)`` of each feature (what bucketing sorts by)

    Row encoding, per key kind: ``int`` one value; ``str`` one code into
    ``meta["strings"][key]``; ``list`` of ints ``n, v1..vn``; ``list`` of tuples or of lists
    of ints (``entities``: ``(first, last, span index)``; the BiLSTM's ``char_ids``)
    ``n``, then per item ``m, v1..vm``. :meth:`FeatureStore.__getitem__` rebuilds the very dict
    the featurizer made (lists as lists, tuples as tuples), so ``model.collate`` of features read
    back gives the same tensors as of the features in memory. Every value must fit in int32
    (token ids, labels, positions and record indices do); anything else is refused when written.

Feature order
    :func:`build_store` featurises ``chunk_records`` records at a time (peak memory: one
    chunk's features, plus 20 bytes of index per feature) and writes each chunk's features as they come,
    adding the chunk's first record number to ``record_index``. ``featurize`` of the
    transformer backbones orders features by segment first (MRC: entity type), then record,
    then window; chunking would interleave segments, so the index arrays are put back in
    (segment, record, window) order when the store is closed. The store's feature ``i`` is the
    in-memory path's feature ``i``: same batches, same losses. A featurizer whose output for a
    record depends on the other records (a BiLSTM building its vocabulary from them) cannot be
    chunked; the engine keeps such models in memory.

Reading
    :class:`FeatureStore` is a read-only sequence of feature dicts (``len``, ``store[i]``,
    ``store.take(indices)``, ``store.lengths``). Each read is one ``pread`` of one row (the OS
    page cache keeps hot rows); nothing is mapped, so a process reading any number of features
    stays at its size. Processes of a data-parallel run open the same folder and each reads the
    rows of its own shards. A store pickles as its path (a process that unpickles it reopens the
    files).
"""
from __future__ import annotations

import array
import itertools
import json
import os
import sys
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import CofeeError, atomic_open

STORE_FORMAT = 1
VALUES = "values.i32"
META = "meta.json"
INDEX = ("starts", "sizes", "lengths")
DEFAULT_CHUNK_RECORDS = 2048

_INT32 = (-2 ** 31, 2 ** 31 - 1)


def iter_chunks(items: Iterable, size: int) -> Iterator[list]:
    """Lists of at most ``size`` consecutive items of ``items`` (the last one may be shorter)."""
    if size < 1:
        raise CofeeError("chunk size must be at least 1")
    it = iter(items)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


# ----------------------------------------------------------------------------- writing

class _Schema:
    """Key -> kind of the features of one store, learnt from the first feature (list items on first sight)."""

    def __init__(self, feature: dict):
        self.keys = list(feature)
        self.key_set = frozenset(feature)
        self.kinds = {}
        self.items = {}                   # list key -> "int" | "list" | "tuple" | None (not seen yet)
        self.strings = {}                 # str key -> {string: code}
        for key, value in feature.items():
            if isinstance(value, bool) or not isinstance(value, (int, str, list, tuple)):
                raise CofeeError(f"feature key {key!r}: a {type(value).__name__} cannot be stored "
                                 "(ints, strings and lists of ints or of int tuples only)")
            if isinstance(value, int):
                self.kinds[key] = "int"
            elif isinstance(value, str):
                self.kinds[key] = "str"
                self.strings[key] = {}
            else:
                if isinstance(value, tuple):
                    raise CofeeError(f"feature key {key!r}: a top-level tuple cannot be stored; use a list")
                self.kinds[key] = "list"
                self.items[key] = None

    def item_kind(self, key: str, value: list) -> str:
        kind = self.items[key]
        first = value[0]
        seen = "int" if isinstance(first, int) and not isinstance(first, bool) else (
            "tuple" if isinstance(first, tuple) else "list" if isinstance(first, list) else None)
        if seen is None:
            raise CofeeError(f"feature key {key!r}: list items of type {type(first).__name__} cannot be stored")
        if kind is None:
            self.items[key] = kind = seen
        elif kind != seen:
            raise CofeeError(f"feature key {key!r}: list items are {seen}s here and {kind}s in earlier features")
        return kind

    def to_json(self) -> dict:
        return {"keys": self.keys, "kinds": self.kinds, "items": self.items,
                "strings": {k: list(v) for k, v in self.strings.items()}}


class FeatureWriter:
    """Append features to a new store folder; :meth:`close` orders the index and writes ``meta.json``.

    ``add(features, record_offset)`` takes one chunk's features (``record_index`` relative to
    the chunk; ``record_offset`` is added). Features must all have the keys of the first one.
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._values = open(self.directory / VALUES, "wb")
        self._schema: _Schema | None = None
        self._starts = array.array("q")
        self._sizes = array.array("i")
        self._lengths = array.array("i")
        self._segments = array.array("i")
        self._offset = 0                 # bytes written so far
        self.count = 0

    def add(self, features: list[dict], record_offset: int = 0) -> None:
        if not features:
            return
        if self._schema is None:
            self._schema = _Schema(features[0])
            if "input_ids" not in self._schema.kinds or self._schema.kinds["input_ids"] != "list":
                raise CofeeError("features without an 'input_ids' list cannot be stored")
        schema = self._schema
        rows = array.array("i")
        for f in features:
            if f.keys() != schema.key_set:
                raise CofeeError(f"feature {self.count}: keys {sorted(f)} differ from the first feature's "
                                 f"{sorted(schema.keys)}")
            if record_offset and "record_index" in f:
                f = dict(f, record_index=f["record_index"] + record_offset)
            row = self._encode(f, schema)
            try:
                rows.extend(row)
            except (OverflowError, TypeError) as exc:
                raise CofeeError(f"feature {self.count}: a value does not fit a 32-bit integer ({exc})") from None
            self._starts.append(self._offset)
            self._sizes.append(len(row))
            self._lengths.append(len(f["input_ids"]))
            seg = f.get("segment", 0)
            self._segments.append(seg if isinstance(seg, int) else 0)
            self._offset += 4 * len(row)
            self.count += 1
        if sys.byteorder != "little":
            rows.byteswap()
        rows.tofile(self._values)

    @staticmethod
    def _encode(f: dict, schema: _Schema) -> list:
        row = []
        for key in schema.keys:
            kind = schema.kinds[key]
            value = f[key]
            if kind == "int":
                row.append(value)
            elif kind == "str":
                codes = schema.strings[key]
                code = codes.get(value)
                if code is None:
                    if not isinstance(value, str):
                        raise CofeeError(f"feature key {key!r}: expected a string, got {type(value).__name__}")
                    code = codes[value] = len(codes)
                row.append(code)
            else:
                row.append(len(value))
                if not value:
                    continue
                if schema.item_kind(key, value) == "int":
                    row.extend(value)
                else:
                    for item in value:
                        row.append(len(item))
                        row.extend(item)
        return row

    def close(self, stats: dict | None = None, extra: dict | None = None) -> dict:
        """Finish the store: index arrays in (segment, then written) order, ``meta.json``; its info."""
        self._values.close()
        if self._schema is None:
            raise CofeeError("no features to store")
        arrays = {"starts": np.frombuffer(self._starts, dtype=np.int64),
                  "sizes": np.frombuffer(self._sizes, dtype=np.int32),
                  "lengths": np.frombuffer(self._lengths, dtype=np.int32)}
        segments = np.frombuffer(self._segments, dtype=np.int32)
        if (segments[1:] < segments[:-1]).any():  # chunks interleaved the segments: back to segment-major order
            order = np.argsort(segments, kind="stable")
            arrays = {name: values[order] for name, values in arrays.items()}
        for name, values in arrays.items():
            np.save(self.directory / f"{name}.npy", np.ascontiguousarray(values))
        info = {"format": STORE_FORMAT, "count": self.count, "value_bytes": self._offset,
                "tokens": int(arrays["lengths"].sum()), "stats": dict(stats or {}), **(extra or {})}
        meta = {**info, "schema": self._schema.to_json(), "byteorder": "little"}
        with atomic_open(self.directory / META) as handle:
            json.dump(meta, handle, indent=1)
        return info

    def abort(self) -> None:
        self._values.close()


def _add_stats(total: dict, part: dict) -> None:
    for key, value in (part or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


def build_store(directory, featurize: Callable[[list], list], records: Iterable[dict],
                chunk_records: int | None = None, stats_of: Callable[[], dict] | None = None,
                extra: dict | None = None, empty: str = "no features to store") -> dict:
    """Featurise ``records`` ``chunk_records`` (default :data:`DEFAULT_CHUNK_RECORDS`) at a time into a
    store at ``directory``; return its info.

    ``featurize(chunk)`` is the model's ``featurize`` of a list of records; ``stats_of()``
    (optional) returns the featurizer's statistics of the last call (``last_window_stats``),
    summed over chunks into ``info["stats"]``. ``records`` is any iterable (a list, a
    :class:`cofee_lib.records.JsonlRecords`, a generator): it is read once, a chunk at a time.
    The folder should be a fresh one (:func:`cofee_lib.cache.cached_dir` gives one). No
    features at all: :class:`CofeeError` with the message ``empty``.
    """
    writer = FeatureWriter(directory)
    stats: dict = {}
    n_records = 0
    try:
        for chunk in iter_chunks(records, chunk_records or DEFAULT_CHUNK_RECORDS):
            features = featurize(chunk)
            if stats_of is not None:
                _add_stats(stats, stats_of())
            writer.add(features, record_offset=n_records)
            n_records += len(chunk)
            del features
        if writer.count == 0:
            raise CofeeError(empty)
        return writer.close(stats, {"records": n_records, **(extra or {})})
    except BaseException:
        writer.abort()
        raise


# ----------------------------------------------------------------------------- reading

def _load_array(path: Path) -> np.ndarray:
    """One index array of a store; any damage (numpy parses the header as Python literals) is a CofeeError."""
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # ValueError, EOFError, SyntaxError, tokenize.TokenError, OSError, ...
        raise CofeeError(f"{path}: not a readable index array ({type(exc).__name__}: {exc}); "
                         "delete the store's folder and the kit builds it again") from None


class FeatureStore:
    """A store folder as a read-only sequence of feature dicts (see the module doc)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        try:
            meta = json.loads((self.directory / META).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise CofeeError(f"{self.directory}: not a feature store ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise CofeeError(f"{self.directory}: feature store format {found}, expected {STORE_FORMAT}")
        self.meta = meta
        try:
            schema = meta["schema"]
            self._plan = [(key, schema["kinds"][key], schema["items"].get(key), schema["strings"].get(key))
                          for key in schema["keys"]]
            count = meta["count"]
            self._starts, self._sizes, self.lengths = (_load_array(self.directory / f"{name}.npy")
                                                       for name in ("starts", "sizes", "lengths"))
            values_size = (self.directory / VALUES).stat().st_size
        except (KeyError, TypeError, AttributeError, ValueError, OSError, EOFError) as exc:
            raise CofeeError(f"{self.directory}: not a readable feature store ({type(exc).__name__}: {exc}); "
                             "delete the folder and the kit builds it again") from None
        arrays = (self._starts, self._sizes, self.lengths)
        if not (isinstance(count, int) and all(a.ndim == 1 and a.dtype.kind in "iu" and len(a) == count
                                               for a in arrays)):
            raise CofeeError(f"{self.directory}: index arrays do not match the count in {META}")
        if count and (self._starts.min() < 0 or self._sizes.min() < 0
                      or int((self._starts.astype(np.int64) + 4 * self._sizes.astype(np.int64)).max()) > values_size):
            raise CofeeError(f"{self.directory / VALUES}: truncated or corrupt (a feature lies outside the file)")
        self.lengths.setflags(write=False)
        self._dtype = np.dtype("<i4")
        self._lock = threading.Lock()
        self._fd = None
        self._file = None
        self._open()

    def _open(self) -> None:
        path = self.directory / VALUES
        if hasattr(os, "pread"):
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        else:  # pragma: no cover - Windows: seek + read under a lock
            self._file = open(path, "rb")

    @property
    def info(self) -> dict:
        """What the store was built with and holds (``count``, ``records``, ``tokens``, ``stats``, ...)."""
        return {k: v for k, v in self.meta.items() if k not in ("schema", "byteorder")}

    def __len__(self) -> int:
        return int(self.meta["count"])

    def _read_row(self, i: int) -> list:
        start, size = int(self._starts[i]), int(self._sizes[i]) * 4
        if self._fd is not None:
            buf = os.pread(self._fd, size, start)
        else:  # pragma: no cover
            with self._lock:
                self._file.seek(start)
                buf = self._file.read(size)
        if len(buf) != size:
            raise CofeeError(f"{self.directory / VALUES}: truncated (feature {i} ends past the end of the file)")
        return np.frombuffer(buf, dtype=self._dtype).tolist()

    def _decode(self, row: list) -> dict:
        out = {}
        pos = 0
        for key, kind, item, strings in self._plan:
            if kind == "int":
                out[key] = row[pos]
                pos += 1
            elif kind == "str":
                out[key] = strings[row[pos]]
                pos += 1
            else:
                n = row[pos]
                pos += 1
                if item == "int" or n == 0:
                    out[key] = row[pos:pos + n]
                    pos += n
                else:
                    items = []
                    for _ in range(n):
                        m = row[pos]
                        items.append(row[pos + 1:pos + 1 + m])
                        pos += 1 + m
                    out[key] = [tuple(x) for x in items] if item == "tuple" else items
        return out

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = int(index)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"feature {index} out of range for a store of {n}")
        row = self._read_row(i)
        try:
            return self._decode(row)
        except (IndexError, TypeError, KeyError) as exc:
            raise CofeeError(f"{self.directory / VALUES}: feature {i} is corrupt ({type(exc).__name__}: {exc})") from None

    def take(self, indices) -> list[dict]:
        """The features at ``indices``, in that order."""
        return [self[i] for i in indices]

    def __iter__(self) -> Iterator[dict]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._file is not None:  # pragma: no cover
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __getstate__(self):
        return {"directory": str(self.directory)}

    def __setstate__(self, state) -> None:
        self.__init__(state["directory"])

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.directory)!r}, {len(self)} features)"
