"""The redirect table of a dump (title -> target), in memory until it is large, then on disk.

A full English dump has some ten million redirects: a Python dict of them takes gigabytes.
:class:`RedirectTable` behaves like the dict it replaces (``table[title] = target``, ``get``,
``len``; a later entry for the same title wins) but, once it holds more than
``max_in_memory`` entries, moves them into a SQLite file (a temporary file in ``spill_dir``,
removed by :meth:`RedirectTable.close`) and keeps only a bounded batch of new entries in
memory. Lookups after :meth:`RedirectTable.freeze` go through a bounded cache (link targets
repeat a lot). The answers are the same either way, so the output does not depend on
where the table lives.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
from functools import lru_cache

#: Entries kept in a dict before the table moves to disk (~250 bytes each in memory).
MAX_IN_MEMORY = 2_000_000
_BATCH = 100_000
_CACHE = 1 << 18


class RedirectTable:
    """``title -> target`` with dict semantics; spills to SQLite past ``max_in_memory`` entries."""

    def __init__(self, spill_dir=None, max_in_memory: int = MAX_IN_MEMORY):
        self.spill_dir = spill_dir
        self.max_in_memory = max(0, int(max_in_memory))
        self._mem: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None
        self._db_path: str | None = None
        self._lookup = None

    @property
    def on_disk(self) -> bool:
        return self._db is not None

    def __setitem__(self, title: str, target: str) -> None:
        if self._lookup is not None:
            raise RuntimeError("the redirect table is frozen")
        self._mem[title] = target
        if self._db is None:
            if len(self._mem) > self.max_in_memory:
                self._spill()
        elif len(self._mem) >= _BATCH:
            self._flush()

    def _spill(self) -> None:
        fd, self._db_path = tempfile.mkstemp(prefix="cofee-redirects-", suffix=".sqlite", dir=self.spill_dir)
        os.close(fd)
        self._db = sqlite3.connect(self._db_path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE redirects (title TEXT PRIMARY KEY, target TEXT NOT NULL) WITHOUT ROWID")
        self._flush()

    def _flush(self) -> None:
        if not self._mem:
            return
        db = self._db
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO redirects VALUES (?, ?)", self._mem.items())
        db.execute("COMMIT")
        self._mem.clear()

    def freeze(self) -> None:
        """No more entries: flush to disk and start answering lookups through a cache."""
        if self._lookup is not None:
            return
        if self._db is None:
            self._lookup = self._mem.get
            return
        self._flush()
        query = self._db.execute

        @lru_cache(maxsize=_CACHE)
        def lookup(title):
            row = query("SELECT target FROM redirects WHERE title = ?", (title,)).fetchone()
            return None if row is None else row[0]

        self._lookup = lookup

    def get(self, title: str, default=None):
        if self._lookup is None:
            self.freeze()
        value = self._lookup(title)
        return default if value is None else value

    def __len__(self) -> int:
        if self._db is None:
            return len(self._mem)
        self._flush()
        return self._db.execute("SELECT COUNT(*) FROM redirects").fetchone()[0]

    def close(self) -> None:
        """Remove the SQLite file (if any)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._db_path is not None:
            try:
                os.unlink(self._db_path)
            except FileNotFoundError:
                pass
            self._db_path = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
