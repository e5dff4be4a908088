"""Reading the files of a user's dataset as they come: format guessed, scheme detected, two repairs.

What :mod:`cofee_lib.datasets` uses for user datasets (``dir:`` folders and
the entries of ``user_datasets.json``):

* :func:`guess_format`: ``jsonl``, ``mrc`` (``mrc-ner.<split>``, ``.json``) or
  ``conll`` from a file name;
* :func:`detect_scheme`: ``bmes``, ``bioes`` or ``iob2`` from the letters of the tags;
* :func:`read_columns`: a CoNLL or character-per-line file, first making two
  fixes that keep line numbers: lines starting with one of ``skip_prefixes``
  (Twitter's ``IMGID:``) become sentence breaks, and a token that is
  whitespace (E-commerce's space characters, ``" \\tO"``) is parsed through a
  placeholder and put back;
* :func:`read_dataset_file`: any of the above by format.

Records follow :mod:`cofee_lib.records` (inclusive span ends); errors are
:class:`~cofee_lib.errors.InputError` naming the original file and line.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from ..errors import InputError

_WS_TOKEN = re.compile(r"^([^\S\t\n]+)\t")   # a line whose token is whitespace (E-commerce's space characters)
_PLACEHOLDER = 0xE000                          # private-use characters stand in for whitespace tokens while parsing
TMP_PREFIX = "cofee-userdata-"


def guess_format(path) -> str:
    """``jsonl`` for ``*.jsonl``, ``mrc`` for ``mrc-ner.*`` and ``*.json``, else ``conll``."""
    lower = Path(path).name.lower()
    if lower.endswith(".jsonl"):
        return "jsonl"
    if lower.startswith("mrc-ner.") or lower.endswith(".json"):
        return "mrc"
    return "conll"


def detect_scheme(tags) -> str:
    """The tagging scheme the tags' letters show.

    ``bmes`` if there is an ``M-``, ``bioes`` for ``E-``/``S-``/``L-``/``U-``, else ``iob2``.
    """
    letters = {t.split("-", 1)[0] for t in tags if "-" in t}
    if "M" in letters:
        return "bmes"
    if letters & {"E", "S", "L", "U"}:
        return "bioes"
    return "iob2"


def _repaired_lines(path: Path, text: str, skip_prefixes) -> tuple[list[str], bool, dict]:
    """The file's lines with skipped prefixes blanked and whitespace tokens replaced; ``(lines, changed, spaces)``."""
    lines = text.replace("\r\n", "\n").split("\n")
    changed, spaces = False, {}
    for i, line in enumerate(lines):
        if skip_prefixes and line.startswith(tuple(skip_prefixes)):
            lines[i], changed = "", True
            continue
        ws = _WS_TOKEN.match(line)
        if ws:
            if ws.group(1) not in spaces:
                spaces[ws.group(1)] = chr(_PLACEHOLDER + len(spaces))
                if spaces[ws.group(1)] in text:
                    raise InputError(path, i + 1, f"holds the private-use character U+{ord(spaces[ws.group(1)]):04X}, "
                                     "which the reader needs as a placeholder for whitespace tokens")
            lines[i], changed = spaces[ws.group(1)] + line[len(ws.group(1)):], True
    return lines, changed, spaces


def read_columns(path, format: str = "conll", scheme: str = "auto", invalid: str = "error", skip_prefixes=(),
                 id_prefix: str | None = None) -> list[dict]:
    """Read a column file (``format`` ``conll``, or ``chars``: one character per line) with the two repairs above.

    ``scheme="auto"``: detected from the tags (:func:`detect_scheme`).
    Errors name the original file and line.
    """
    from .charfile import read_char_file
    from .conll import read_conll, read_text, split_fields

    path = Path(path)
    text = read_text(path)
    lines, changed, spaces = _repaired_lines(path, text, skip_prefixes)
    if scheme == "auto":
        fields = (split_fields(line) for line in lines if line.strip())
        scheme = detect_scheme(f[-1] for f in fields if len(f) >= 2)
    reader = read_char_file if format == "chars" else read_conll
    kwargs = {"scheme": scheme, "id_prefix": id_prefix, "invalid": invalid}
    if not changed:
        return reader(path, **kwargs)
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX) as tmp:
        clean = Path(tmp) / path.name
        clean.write_text("\n".join(lines), encoding="utf-8")
        try:
            records = reader(clean, **kwargs)
        except InputError as exc:
            raise InputError(path, exc.line, exc.message.replace(str(clean), str(path))) from None
    if spaces:
        back = {v: k for k, v in spaces.items()}
        for rec in records:
            rec["tokens"] = [back.get(t, t) for t in rec["tokens"]]
    return records


def read_dataset_file(path, format: str | None = None, scheme: str = "auto", invalid: str = "error",
                      skip_prefixes=(), id_prefix: str | None = None) -> list[dict]:
    """Read one file of a user's dataset: JSON lines, MRC-NER JSON or columns (``format`` None: guessed)."""
    path = Path(path)
    fmt = format or guess_format(path)
    if fmt == "jsonl":
        from ..records import read_jsonl

        return read_jsonl(path)
    if fmt == "mrc":
        from .mrc_json import read_mrc_json

        return read_mrc_json(path, id_prefix=id_prefix)
    return read_columns(path, fmt, scheme, invalid, skip_prefixes, id_prefix)
