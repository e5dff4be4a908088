"""``results/tables.md`` (and ``tables.csv``, ``tables.json``): the kit's Tables 2 and 3 beside the paper's.

Nothing here is typed by hand: the kit's numbers come from the results files
the notebooks wrote (``table2_<target>.json``, ``table3_<target>.json``), the
paper's from ``resources/paper_numbers.json`` (:mod:`cofee_lib.paper`), the
wall times from ``timings.json``. Every row says what differs between the
kit's run and the paper's (data, encoder, scale) and which seeds it ran with;
rows run over several seeds give mean ± sample standard deviation.
"""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from .errors import CofeeError, atomic_open
from .paper import paper_numbers

# the kit's row names -> the paper's (Table 3 prints "Matching")
PAPER_ROW = {"Gazetteer Matching": "Matching"}
ENCODERS = {"embedded:minilm": "all-MiniLM-L6-v2 (6 layers, 384 dims, uncased)", "tiny": "a 2-layer random BERT (smoke)"}
PAPER_ENCODER = {"en": "bert-base-cased", "zh": "bert-base-chinese"}


def paper_dataset_for(target: str) -> str | None:
    """The paper's dataset a kit target stands in for (``wnut16`` -> ``twitter``), or the target itself."""
    datasets = paper_numbers()["datasets"]
    if target in datasets:
        return target
    return next((name for name, d in datasets.items() if d.get("kit_stand_in") == target), None)


def differences(result: dict) -> str:
    """What separates a kit result from the paper's number: data, encoder, scale (one line)."""
    target = result["target"]
    paper = paper_dataset_for(target)
    parts = []
    if paper is None:
        parts.append(f"data: {target} (the paper reports no {target} result)")
    elif paper != target:
        parts.append(f"data: {target} stands in for the paper's {paper_numbers()['datasets'][paper]['name']}")
    model = result.get("model") or ""
    lang = paper_numbers()["datasets"].get(paper or "", {}).get("lang", "en")
    if model != PAPER_ENCODER[lang]:
        parts.append(f"encoder: {ENCODERS.get(model, model)} for {PAPER_ENCODER[lang]}")
    data = result.get("data") or {}
    if data.get("d_g"):
        paper_sentences = paper_numbers()["corpora"][lang]["sentences"]
        parts.append(f"scale: D_g {data['d_g']['sentences']:,} sentences for {paper_sentences:,}, "
                     f"D_s {data['d_s']['sentences']:,}")
    if result.get("train_sentences"):
        parts.append(f"scale: {result['train_sentences']:,} labelled training sentences")
    if result.get("preset") not in (None, "paper"):
        parts.append(f"preset {result['preset']}")
    return "; ".join(parts)


def _pct(value) -> float | None:
    return None if value is None else round(100 * value, 2)


def collect(results_dir) -> list[dict]:
    """One flat row per (table, target, model) from the results files in ``results_dir``."""
    results_dir = Path(results_dir)
    rows = []
    numbers = paper_numbers()
    for table in (2, 3):
        for path in sorted(results_dir.glob(f"table{table}_*.json")):
            try:
                result = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise CofeeError(f"{path}: not a results file ({exc})") from None
            if result.get("table") != table or "rows" not in result:
                continue  # e.g. a stage report copied beside the table
            paper = paper_dataset_for(result["target"])
            printed = numbers[f"table{table}"].get(paper, {}) if paper else {}
            diff = differences(result)
            for model, row in result["rows"].items():
                theirs = printed.get(PAPER_ROW.get(model, model), {})
                f1 = _pct(row.get("F1"))
                rows.append({
                    "table": table, "dataset": result["target"], "paper_dataset": paper, "model": model,
                    "P": _pct(row.get("P")), "R": _pct(row.get("R")), "F1": f1,
                    "F1_std": _pct(row.get("F1_std")), "n_seeds": row.get("n_seeds", 0),
                    "seeds": " ".join(str(s) for s in row.get("seeds") or []),
                    "dev_F1": _pct(row.get("dev_F1")),
                    "paper_P": theirs.get("P"), "paper_R": theirs.get("R"), "paper_F1": theirs.get("F1"),
                    "F1_minus_paper": None if f1 is None or theirs.get("F1") is None else round(f1 - theirs["F1"], 2),
                    "differs": diff, "preset": result.get("preset"),
                    "encoder": ENCODERS.get(result.get("model") or "", result.get("model")),
                    "types": list(result.get("types") or []),
                    "domain_sentences": ((result.get("in_domain") or {}).get("corpus") or {}).get("sentences_in"),
                    # a row merged in later (rows="in-domain") carries its own machine, precision and date
                    "machine": row.get("machine", result.get("machine")),
                    "precision": precision_line(row.get("precision", result.get("precision"))),
                    "finished": row.get("finished", result.get("finished")), "source": path.name,
                })
    return rows


def precision_line(choice: dict | None) -> str:
    """``bf16 (the CPU has native bf16 arithmetic; AMD EPYC, flags: avx512_bf16)`` from a results file."""
    if not choice:
        return "not recorded (results from before the kit recorded it)"
    return f"{choice['precision']} ({choice['reason']}; {choice['hardware']})"


def _cell(value, std=None, n=None) -> str:
    if value is None:
        return "–"
    if std is not None and n and n > 1:
        return f"{value:.2f} ± {std:.2f}"
    return f"{value:.2f}"


def markdown(rows: list[dict], timings: dict | None = None) -> str:
    """The tables as markdown: one block per (table, dataset), then the notebooks' wall times."""
    out = ["# Tables 2 and 3: the kit's numbers beside the paper's", "",
           "Generated by `cofee_lib.tables.write_tables` from the results files named in each block "
           "(written by notebooks 06 and 07); the paper's numbers come from `cofee_lib/resources/paper_numbers.json`. "
           "P/R/F1 in % on the **test** split, read once after model selection on dev. "
           "`±` is the sample standard deviation over the seeds listed.", ""]
    blocks: dict = {}
    for r in rows:
        blocks.setdefault((r["table"], r["dataset"]), []).append(r)
    # Table 3 first (as in the README), datasets the paper reports first
    for (table, dataset), items in sorted(blocks.items(), key=lambda kv: (-kv[0][0], kv[1][0]["paper_dataset"] is None,
                                                                          kv[0][1])):
        first = items[0]
        setting = "weakly supervised" if table == 3 else "supervised"
        paper = first["paper_dataset"]
        out.append(f"## Table {table} ({setting}): {dataset}" + (f" (paper: {paper})" if paper else ""))
        out.append("")
        out.append(f"Source `{first['source']}`, preset `{first['preset']}`, finished {first['finished']} on {first['machine']}; "
                   f"precision {first['precision']}.")
        out.append(f"What differs from the paper: {first['differs']}.")
        for r in items:
            if (r["machine"], r["precision"], r["finished"]) != (first["machine"], first["precision"], first["finished"]):
                out.append(f"Row {r['model']}: run separately, finished {r['finished']} on {r['machine']}; "
                           f"precision {r['precision']}.")
        out.append("")
        out.append("| model | P | R | F1 | seeds | dev F1 | paper P | paper R | paper F1 | F1 − paper |")
        out.append("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
        for r in items:
            delta = "–" if r["F1_minus_paper"] is None else f"{r['F1_minus_paper']:+.2f}"
            out.append(f"| {r['model']} | {_cell(r['P'])} | {_cell(r['R'])} | {_cell(r['F1'], r['F1_std'], r['n_seeds'])} "
                       f"| {r['seeds'] or '–'} | {_cell(r['dev_F1'])} | {_cell(r['paper_P'])} | {_cell(r['paper_R'])} "
                       f"| {_cell(r['paper_F1'])} | {delta} |")
        out.append("")
    if timings:
        out.append("## Wall time per notebook")
        out.append("")
        out.append("| notebook | preset | seconds | finished | machine |")
        out.append("|---|---|---:|---|---|")
        for name, t in sorted(timings.items()):
            out.append(f"| {name} | {t.get('preset')} | {t.get('seconds', 0):,.0f} | {t.get('finished')} | {t.get('machine')} |")
        # a part of a notebook run again with -p overrides is not another notebook of the batch
        total = sum(t.get("seconds", 0) for name, t in timings.items() if " -p " not in name)
        out.append(f"| **all** (whole notebooks; runs with `-p` are parts run again) | | **{total:,.0f}** | | |")
        out.append("")
    return "\n".join(out)


def write_tables(results_dir) -> dict:
    """Write ``tables.md``, ``tables.csv`` and ``tables.json`` into ``results_dir``; return the paths."""
    results_dir = Path(results_dir)
    rows = collect(results_dir)
    timings_path = results_dir / "timings.json"
    timings = json.loads(timings_path.read_text(encoding="utf-8")) if timings_path.is_file() else {}
    paths = {"md": results_dir / "tables.md", "csv": results_dir / "tables.csv", "json": results_dir / "tables.json"}
    with atomic_open(paths["md"]) as fh:
        fh.write(markdown(rows, timings) + "\n")
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    with atomic_open(paths["csv"]) as fh:
        fh.write(buf.getvalue())
    with atomic_open(paths["json"]) as fh:
        json.dump({"generated": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows, "timings": timings}, fh, indent=2)
        fh.write("\n")
    return paths


README_BEGIN = "<!-- tables:begin (generated by `cofee reproduce --tables`; do not edit by hand) -->"
README_END = "<!-- tables:end -->"


def in_domain_lines(rows: list[dict]) -> list[str]:
    """Per dataset with the in-domain rows: the best of them against Matching, the goal, and BOND's published F1."""
    from .paper import related_numbers

    related = related_numbers()
    goal, bond = related["in_domain_goal"], related["bond"]
    by = {(r["dataset"], r["model"]): r for r in rows}
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        ours, base = by.get((dataset, goal["row"])), by.get((dataset, goal["over"]))
        if ours is None or base is None or ours["F1"] is None:
            continue
        gain = ours["F1"] - base["F1"]
        verdict = "met" if gain >= goal["margin_F1"] else "not met"
        line = (f"In-domain on {dataset}: {goal['row']} {_cell(ours['F1'], ours['F1_std'], ours['n_seeds'])} test F1 "
                f"({ours['n_seeds']} seeds) against {goal['over']} {base['F1']:.2f}: {gain:+.2f} F1; the goal of "
                f"+{goal['margin_F1']} ({goal['where'].split(':')[0]}) is {verdict}.")
        if dataset in bond["F1"]:
            kit = ", ".join([f"the kit: {ours['encoder']}",
                             *([f"{ours['domain_sentences']:,} training sentences"] if ours["domain_sentences"] else []),
                             *([f"scored on {', '.join(ours['types'])}"] if ours["types"] else [])])
            line += (f" BOND's published {bond['F1'][dataset]:.2f} is {bond['F1'][dataset] - ours['F1']:.2f} higher; "
                     f"it differs in: {bond['setup']}; BOND is scored on {bond['types'][dataset]} ({kit}).")
        out += [line, ""]
    return out


def readme_block(results_dir) -> str:
    """The README's copy of the tables: test F1 per model and dataset, the paper's beside it."""
    rows = collect(results_dir)
    if not rows:
        return "No results yet: run `make reproduce`."
    out = []
    for table in (3, 2):
        items = [r for r in rows if r["table"] == table]
        if not items:
            continue
        datasets = sorted(dict.fromkeys(r["dataset"] for r in items),
                          key=lambda d: (next(r["paper_dataset"] for r in items if r["dataset"] == d) is None, d))
        papers = {d: next(r["paper_dataset"] for r in items if r["dataset"] == d) for d in datasets}
        setting = "weakly supervised" if table == 3 else "supervised"
        out.append(f"**Table {table} ({setting})**, test F1 (%), kit (paper):")
        out.append("")
        out.append("| model | " + " | ".join(f"{d}" + (f" ({papers[d]})" if papers[d] else "") for d in datasets) + " |")
        out.append("|---|" + "---:|" * len(datasets))
        by = {(r["model"], r["dataset"]): r for r in items}
        for model in dict.fromkeys(r["model"] for r in items):
            cells = []
            for d in datasets:
                r = by.get((model, d))
                if r is None:
                    cells.append("–")
                    continue
                paper = "" if r["paper_F1"] is None else f" ({r['paper_F1']:.2f})"
                cells.append(_cell(r["F1"], r["F1_std"], r["n_seeds"]) + paper)
            out.append(f"| {model} | " + " | ".join(cells) + " |")
        out.append("")
        if table == 3:
            out += in_domain_lines(items)
    first = rows[0]
    others = [r for r in rows if r["precision"] != first["precision"]]
    if others:
        runs = dict.fromkeys((r["precision"], r["machine"]) for r in others)
        out.append("Rows run separately at another precision: " + "; ".join(
            ", ".join(f"{r['model']} ({r['dataset']})" for r in others if (r["precision"], r["machine"]) == run)
            + f": precision {run[0]}, {run[1]}" for run in runs) + ".")
        out.append("")
    out.append(f"Preset `{first['preset']}`, {first['machine']}, precision {first['precision']}, "
               f"finished {max(r['finished'] or '' for r in rows)}. "
               "Seeds, dev F1, P/R and what differs from the paper: [results/tables.md](results/tables.md).")
    return "\n".join(out)


def replace_block(readme, begin: str, end: str, block: str) -> bool:
    """Replace the text between the markers ``begin`` and ``end`` of ``readme``; return whether it changed."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        raise CofeeError(f"{readme}: no generated-block markers ({begin} ... {end})")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{begin}\n{block}\n{end}{tail}"
    if new == text:
        return False
    with atomic_open(readme) as fh:
        fh.write(new)
    return True


def sync_readme(readme, results_dir) -> bool:
    """Replace the README's generated tables block; return whether the file changed."""
    return replace_block(readme, README_BEGIN, README_END, readme_block(results_dir))
