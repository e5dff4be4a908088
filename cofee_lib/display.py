"""Small views of records and scores for the notebooks: marked-up sentences and tidy tables.

Records follow :mod:`cofee_lib.records` (word-level tokens, spans with an
**inclusive** end). Scores are the dicts of :func:`cofee_lib.metrics.evaluate_records`
(fractions in [0, 1]); tables show them in percent, like the paper.
"""
from __future__ import annotations


def render_spans(record: dict, label: str = "type", max_tokens: int | None = None) -> str:
    """The sentence with every span marked as ``[surface|LABEL]``, tokens joined by one space.

    ``label``: ``"type"`` (``[Paris|LOC]``), ``"target"`` (the link target of a
    Wikipedia anchor, ``record["targets"][i]``: ``[self-governed|Self-governance]``)
    or ``"none"`` (``[Paris]``). Overlapping spans are not expected (records
    never have them); a span that starts inside another is shown unmarked.
    ``max_tokens`` cuts the sentence after that many tokens (``...`` marks the cut).
    """
    if label not in ("type", "target", "none"):
        raise ValueError(f"label must be 'type', 'target' or 'none', not {label!r}")
    tokens = list(record["tokens"])
    targets = record.get("targets") or []
    starts = {}
    for i, (start, end, span_type) in enumerate(record["spans"]):
        name = span_type if label == "type" else (targets[i] if label == "target" and i < len(targets) else None)
        starts.setdefault(int(start), (int(end), name))
    out, i = [], 0
    limit = len(tokens) if max_tokens is None else min(len(tokens), max_tokens)
    while i < limit:
        if i in starts:
            end, name = starts[i]
            surface = " ".join(tokens[i:end + 1])
            out.append(f"[{surface}|{name}]" if name is not None else f"[{surface}]")
            i = end + 1
        else:
            out.append(tokens[i])
            i += 1
    if limit < len(tokens):
        out.append("...")
    return " ".join(out)


def scores_frame(scores: dict, names=("dataset", "split"), digits: int = 2):
    """A pandas table of nested scores: one row per (names..., type), P/R/F1 in percent, and counts.

    ``scores`` nests ``len(names)`` levels of dicts (e.g. ``{dataset: {split:
    metrics}}``) around :func:`~cofee_lib.metrics.evaluate_records` results.
    Each metrics dict gives an ``ALL`` row (the micro average) and one row per type.
    """
    import pandas as pd

    names = tuple(names)
    rows = []

    def walk(node, keys):
        if len(keys) == len(names):
            for name, m in [("ALL", node), *sorted(node["per_type"].items())]:
                rows.append((*keys, name, 100 * m["precision"], 100 * m["recall"], 100 * m["f1"],
                             m["n_gold"], m["n_pred"], m["tp"]))
            return
        for key, child in node.items():
            walk(child, (*keys, key))

    walk(scores, ())
    frame = pd.DataFrame(rows, columns=[*names, "type", "P", "R", "F1", "gold", "predicted", "correct"])
    return frame.round(digits)


class SourceView:
    """The source of one function or class, as :func:`show_source` returns it.

    Jupyter shows it as Markdown (a heading naming the object and its file, then a Python code
    block); anywhere else ``str()``/``repr()`` give the same as plain text.
    """

    def __init__(self, name: str, path: str, first_line: int, source: str):
        self.name, self.path, self.first_line, self.source = name, path, first_line, source

    @property
    def last_line(self) -> int:
        return self.first_line + self.source.count("\n") - (1 if self.source.endswith("\n") else 0)

    def heading(self) -> str:
        return f"{self.name} ({self.path}, lines {self.first_line}-{self.last_line})"

    def _repr_markdown_(self) -> str:
        fence = "```"
        while fence in self.source:
            fence += "`"
        return (f"**`{self.name}`** ({self.path}, lines {self.first_line}-{self.last_line})\n\n"
                f"{fence}python\n{self.source.rstrip()}\n{fence}\n")

    def __str__(self) -> str:
        return f"# {self.heading()}\n{self.source.rstrip()}\n"

    __repr__ = __str__


def show_source(obj) -> SourceView:
    """The code that implements a step, read from the installed kit at call time (``inspect.getsource``).

    ``obj`` is a function, method, class or module (e.g. ``SelfPicking.on_epoch_end``). The
    notebooks call it instead of quoting code, so what they show is always the code that ran.
    The file is named relative to the folder holding the package (``cofee_lib/stages.py``).
    """
    import inspect
    import textwrap
    from pathlib import Path

    target = inspect.unwrap(obj)
    lines, first = inspect.getsourcelines(target)
    source = textwrap.dedent("".join(lines))
    module = inspect.getmodule(target)
    qualname = getattr(target, "__qualname__", None)
    name = module.__name__ if inspect.ismodule(target) else f"{module.__name__}.{qualname or target.__name__}"
    file = Path(inspect.getsourcefile(target)).resolve()
    top = Path(__file__).resolve().parent.parent  # the folder holding cofee_lib/
    try:
        path = file.relative_to(top).as_posix()
    except ValueError:
        path = file.name
    return SourceView(name, path, max(first, 1), source)
