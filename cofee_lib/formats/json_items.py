"""Read a JSON array (or JSON lines) item by item, keeping each item's line number.

``json.load`` gives no positions, so errors in the 5,000th example could not
name a line. :func:`iter_json_items` decodes one array element at a time with
:meth:`json.JSONDecoder.raw_decode` and yields ``(index, line, item)``.
"""
from __future__ import annotations

import json
from typing import Iterator

from ..errors import InputError
from ..records import check_unicode
from .conll import read_text

_WS = " \t\n\r"


def iter_json_items(path, what: str = "objects") -> Iterator[tuple[int, int, object]]:
    """Yield ``(index, line, item)`` for each element of the file's top-level JSON array.

    A file whose first character is ``{`` is read as JSON lines (one object per
    line). ``index`` is 0-based, ``line`` is the 1-based line where the item
    starts. Raises :class:`InputError` (file, line) for invalid JSON, a
    top-level value that is not an array, or an empty array, and for text
    that is not Unicode (a lone ``\\ud800`` escape).
    """
    text = read_text(path)
    has_escapes = "\\u" in text
    decoder = json.JSONDecoder()
    n = len(text)
    pos, line, counted = 0, 1, 0

    def skip_ws(i: int) -> int:
        while i < n and text[i] in _WS:
            i += 1
        return i

    def line_at(i: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, i)
        counted = i
        return line

    def decode(i: int):
        try:
            item, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise InputError(path, exc.lineno, f"not valid JSON ({exc.msg}, column {exc.colno}); "
                             f"expected a JSON array of {what}") from None
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number, arrays nested 1,000 deep
            raise InputError(path, line_at(i), f"not usable JSON ({str(exc)[:80] or 'nested too deeply'}); "
                             f"expected a JSON array of {what}") from None
        if has_escapes:
            check_unicode(item, path, line_at(i), raw=text[i:end])
        return item, end

    pos = skip_ws(pos)
    if pos >= n:
        raise InputError(path, 1, f"empty file: expected a JSON array of {what}")
    index = 0
    if text[pos] == "{":  # JSON lines
        while pos < n:
            item, end = decode(pos)
            yield index, line_at(pos), item
            index += 1
            pos = skip_ws(end)
        return
    if text[pos] != "[":
        raise InputError(path, line_at(pos), f"expected a JSON array of {what} (starting with '['), "
                         f"found {text[pos]!r}")
    pos = skip_ws(pos + 1)
    if pos < n and text[pos] == "]":
        if skip_ws(pos + 1) < n:
            raise InputError(path, line_at(skip_ws(pos + 1)), "extra data after the JSON array")
        raise InputError(path, line_at(pos), f"empty file: the JSON array holds no {what}")
    while True:
        if pos >= n:
            raise InputError(path, line_at(n), "the JSON array is not closed with ']'")
        item, end = decode(pos)
        yield index, line_at(pos), item
        index += 1
        pos = skip_ws(end)
        if pos < n and text[pos] == ",":
            pos = skip_ws(pos + 1)
            continue
        if pos < n and text[pos] == "]":
            rest = skip_ws(pos + 1)
            if rest < n:
                raise InputError(path, line_at(rest), "extra data after the JSON array")
            return
        raise InputError(path, line_at(min(pos, n)), "expected ',' or ']' between array items")


def load_json(path, what: str):
    """Decode a whole (small) JSON file; :class:`InputError` (file, line) if it is not JSON of Unicode text."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"not valid JSON ({exc.msg}); expected {what}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(path, None, f"not usable JSON ({str(exc)[:80] or 'nested too deeply'}); "
                         f"expected {what}") from None
    check_unicode(data, path, None, raw=text)
    return data
