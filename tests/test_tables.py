"""results/tables.md from the results files: every number traced to a file, the paper's from paper_numbers.json."""
from __future__ import annotations

import csv
import json

import pytest

from cofee_lib import experiments
from cofee_lib.errors import CofeeError
from cofee_lib.paper import paper_numbers
from cofee_lib.pipeline import fraction_subset
from cofee_lib.tables import collect, paper_dataset_for, write_tables


def _row(p, r, f1, dev=None, seeds=(42,)):
    per_seed = [{"seed": s, "P": p, "R": r, "F1": f1 + 0.01 * i, "dev_F1": dev, "per_type": {}} for i, s in enumerate(seeds)]
    return experiments.aggregate(per_seed)


def _table3(tmp_path, target="wnut16"):
    result = {"table": 3, "target": target, "preset": "default", "model": "embedded:minilm", "machine": "test box",
              "finished": "2026-11-25 06:00:00", "types": ["PER", "LOC", "ORG"],
              "data": {"d_g": {"sentences": 1232}, "d_s": {"sentences": 253}},
              "rows": {"Gazetteer Matching": {"P": 0.4, "R": 0.1, "F1": 0.16, "dev_F1": None, "n_seeds": 0, "seeds": []},
                       "MRC-NER": _row(0.5, 0.2, 0.3, 0.25), "CoFEE-MRC": _row(0.5, 0.3, 0.35, 0.3, seeds=(42, 43, 44)),
                       "-FET": _row(0.4, 0.3, 0.33, 0.3), "-FET-ESI": _row(0.4, 0.2, 0.25, 0.2)}}
    (tmp_path / f"table3_{target}.json").write_text(json.dumps(result))
    return result


def test_aggregate_means_and_sample_std():
    row = _row(0.5, 0.3, 0.35, seeds=(1, 2, 3))
    assert row["n_seeds"] == 3 and row["seeds"] == [1, 2, 3]
    assert row["F1"] == pytest.approx(0.36) and row["F1_std"] == pytest.approx(0.01)
    assert _row(0.5, 0.3, 0.35)["F1_std"] == 0.0
    assert experiments.mean_std([]) == (None, None)


def test_stand_ins():
    assert paper_dataset_for("wnut16") == "twitter"
    assert paper_dataset_for("msra") == "ontonotes4"
    assert paper_dataset_for("twitter") == "twitter"
    assert paper_dataset_for("conll2003") is None


def test_rows_carry_the_paper_numbers_and_the_difference(tmp_path):
    _table3(tmp_path)
    _table3(tmp_path, "conll2003")
    (tmp_path / "table3_wnut16_cofee_nee_report.json").write_text(json.dumps({"stage": "nee"}))  # not a table: skipped
    rows = {(r["dataset"], r["model"]): r for r in collect(tmp_path)}
    printed = paper_numbers()["table3"]["twitter"]
    matching = rows[("wnut16", "Gazetteer Matching")]
    assert matching["paper_F1"] == printed["Matching"]["F1"] and matching["F1"] == 16.0
    assert matching["F1_minus_paper"] == pytest.approx(16.0 - printed["Matching"]["F1"])
    cofee = rows[("wnut16", "CoFEE-MRC")]
    assert cofee["n_seeds"] == 3 and cofee["seeds"] == "42 43 44" and cofee["F1"] == pytest.approx(36.0)
    assert cofee["paper_F1"] == printed["CoFEE-MRC"]["F1"]
    assert "stands in for the paper's Twitter" in cofee["differs"] and "bert-base-cased" in cofee["differs"]
    assert "1,232" in cofee["differs"]
    conll = rows[("conll2003", "CoFEE-MRC")]
    assert conll["paper_F1"] is None and conll["F1_minus_paper"] is None
    assert "reports no conll2003 result" in conll["differs"]


def test_write_tables_md_csv_json(tmp_path):
    _table3(tmp_path)
    (tmp_path / "timings.json").write_text(json.dumps({"06_table3_weak_supervision.ipynb": {
        "seconds": 600.0, "preset": "default", "finished": "x", "machine": "m"}}))
    paths = write_tables(tmp_path)
    md = paths["md"].read_text()
    assert "## Table 3 (weakly supervised): wnut16 (paper: twitter)" in md
    assert "| CoFEE-MRC | 50.00 | 30.00 | 36.00 ± 1.00 | 42 43 44 |" in md
    assert "06_table3_weak_supervision.ipynb" in md and "**600**" in md
    with open(paths["csv"], newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 5 and {r["model"] for r in table} >= {"Gazetteer Matching", "-FET-ESI"}
    assert json.loads(paths["json"].read_text())["rows"][0]["table"] == 3


def test_a_broken_results_file_is_named(tmp_path):
    (tmp_path / "table2_wnut16.json").write_text("{not json")
    with pytest.raises(CofeeError, match="table2_wnut16.json"):
        collect(tmp_path)


def test_fraction_subsets_are_nested_and_ordered():
    records = [{"id": str(i)} for i in range(50)]
    small, large = fraction_subset(records, 0.2, 7), fraction_subset(records, 0.6, 7)
    assert len(small) == 10 and len(large) == 30
    assert {r["id"] for r in small} <= {r["id"] for r in large}
    assert [int(r["id"]) for r in large] == sorted(int(r["id"]) for r in large)
    assert fraction_subset(records, 1.0, 7) == records
    with pytest.raises(CofeeError):
        fraction_subset(records, 0.0)
    with pytest.raises(CofeeError):
        experiments.check_fractions([0.5, 1.5])


def test_sync_readme_replaces_only_the_marked_block(tmp_path):
    from cofee_lib.tables import README_BEGIN, README_END, sync_readme

    _table3(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold\n{README_END}\noutro\n")
    assert sync_readme(readme, tmp_path) is True
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert "| CoFEE-MRC | 36.00 ± 1.00 (54.56) |" in text
    assert sync_readme(readme, tmp_path) is False, "a second sync changes nothing"
    (tmp_path / "plain.md").write_text("no markers")
    with pytest.raises(CofeeError, match="markers"):
        sync_readme(tmp_path / "plain.md", tmp_path)


def test_the_repository_readme_shows_the_committed_results():
    """No number in the README's tables is typed by hand: they equal what the committed results files give."""
    from cofee_lib.reproduce import repo_root
    from cofee_lib.tables import README_BEGIN, README_END, readme_block

    root = repo_root()
    if not list((root / "results").glob("table*_*.json")):
        pytest.skip("no committed results")
    text = (root / "README.md").read_text(encoding="utf-8")
    block = text.split(README_BEGIN, 1)[1].split(README_END, 1)[0].strip()
    assert block == readme_block(root / "results").strip(), "run `cofee reproduce --tables` after a default run"


def test_no_committed_sweep_point_is_at_zero_and_each_records_its_steps():
    """Issue 12: a point at F1 0.0 is a recipe failure (min_steps, patience and min_dev_f1 are there to prevent it)."""
    from cofee_lib.reproduce import repo_root

    results = repo_root() / "results"
    trained = []
    for name, panels in (("figure2.json", "abcd"), ("figure3.json", "b")):
        if not (results / name).is_file():
            continue
        sweeps = json.loads((results / name).read_text(encoding="utf-8"))
        trained += [(name, panel, p) for panel in panels for p in sweeps.get(panel, []) if p.get("seed") is not None]
    if not trained:
        pytest.skip("no committed sweeps")
    assert all(p["dev_F1"] > 0 for _, _, p in trained), [(n, pa, p.get("seed")) for n, pa, p in trained
                                                         if not p["dev_F1"] > 0]
    assert all(p.get("steps") for _, _, p in trained)
    # a re-run panel names its gazetteers relative to the work dir, not by a machine's path
    assert all(not str(p.get("gazetteers", "")).startswith("/") for n, _, p in trained if n == "figure3.json")


IN_DOMAIN = "CoFEE-MRC + in-domain NEE"
FP32 = {"precision": "fp32", "requested": "auto", "reason": "no native bf16", "hardware": "AMD EPYC, flags: no avx512_bf16"}


def _kept(tmp_path):
    result = _table3(tmp_path)
    result.update(precision={**FP32, "precision": "bf16", "reason": "native"}, test_sentences=3,
                  rows={**result["rows"], IN_DOMAIN: {**_row(0.1, 0.1, 0.1), "beyond_paper": True},
                        "spaCy reference": {"P": 0.6, "R": 0.6, "F1": 0.6, "n_seeds": 0, "seeds": []}},
                  runs={"seed42/cofee": {"seconds": 1.0}}, merged=[{"rows": [IN_DOMAIN], "finished": "old"}])
    (tmp_path / "table3_wnut16.json").write_text(json.dumps(result))
    counts = {"split": "test", "target": "wnut16", "sentences": 3,
              "rows": {name: {"42": [[1, 1, 1]] * 3} for name in result["rows"]}}
    (tmp_path / "counts").mkdir()
    (tmp_path / "counts" / "table3_wnut16.json").write_text(json.dumps(counts))
    return result, counts


def test_in_domain_rows_merge_into_the_kept_table_each_with_its_own_precision(tmp_path):
    kept, kept_counts = _kept(tmp_path)
    assert experiments._kept_table(tmp_path / "table3_wnut16.json", "wnut16", "default") == (kept, kept_counts)
    new = {IN_DOMAIN: _row(0.5, 0.5, 0.5, seeds=(42, 43, 44))}
    stamp = {"command": "notebooks/06", "machine": "other box", "precision": FP32, "finished": "2026-12-03 08:00:00"}
    result, counts = experiments._merged_result(kept, kept_counts, new, {IN_DOMAIN: {"42": [[2, 2, 2]] * 3}},
                                                [{}] * 3, kept["types"], stamp, seeds=[42, 43, 44], seconds=9.5)
    # the paper's rows first, then the merged row, then the reference row; nothing else moved
    assert list(result["rows"]) == ["Gazetteer Matching", "MRC-NER", "CoFEE-MRC", "-FET", "-FET-ESI", IN_DOMAIN,
                                    "spaCy reference"]
    assert all(result["rows"][k] == kept["rows"][k] for k in result["rows"] if k != IN_DOMAIN)
    assert result["rows"][IN_DOMAIN]["precision"] == FP32 and result["rows"][IN_DOMAIN]["beyond_paper"]
    assert result["precision"] == kept["precision"] and result["machine"] == kept["machine"]
    assert result["merged"] == [{**stamp, "rows": [IN_DOMAIN], "seeds": [42, 43, 44], "seconds": 9.5}]
    assert counts["rows"][IN_DOMAIN] == {"42": [[2, 2, 2]] * 3}
    assert counts["rows"]["MRC-NER"] == kept_counts["rows"]["MRC-NER"]
    (tmp_path / "table3_wnut16.json").write_text(json.dumps(result))
    rows = {r["model"]: r for r in collect(tmp_path)}
    assert rows[IN_DOMAIN]["precision"].startswith("fp32") and rows[IN_DOMAIN]["machine"] == "other box"
    assert rows["MRC-NER"]["precision"].startswith("bf16") and rows["MRC-NER"]["machine"] == "test box"
    paths = write_tables(tmp_path)
    assert f"Row {IN_DOMAIN}: run separately, finished 2026-12-03 08:00:00 on other box; precision fp32" \
        in paths["md"].read_text()
    from cofee_lib.tables import readme_block
    assert f"Rows run separately at another precision: {IN_DOMAIN} (wnut16): precision fp32" in readme_block(tmp_path)


def test_in_domain_merge_refuses_a_missing_or_different_table(tmp_path):
    with pytest.raises(CofeeError, match="no Table 3 results to merge"):
        experiments._kept_table(tmp_path / "table3_wnut16.json", "wnut16", "default")
    kept, kept_counts = _kept(tmp_path)
    with pytest.raises(CofeeError, match="not Table 3 for 'wnut16' at preset 'smoke'"):
        experiments._kept_table(tmp_path / "table3_wnut16.json", "wnut16", "smoke")
    with pytest.raises(CofeeError, match="not the same table"):
        experiments._merged_result(kept, kept_counts, {}, {}, [{}] * 5, kept["types"], {}, seeds=[42], seconds=0)
    with pytest.raises(CofeeError, match="needs the in-domain settings"):
        experiments.weak_supervision_table("wnut16", tmp_path, rows="in-domain")
    with pytest.raises(CofeeError, match="rows must be"):
        experiments.weak_supervision_table("wnut16", tmp_path, rows="some")


def test_readme_block_sets_the_in_domain_row_against_matching_and_bond(tmp_path):
    from cofee_lib.paper import related_numbers
    from cofee_lib.tables import readme_block

    result = _table3(tmp_path, "conll2003")
    result["rows"][IN_DOMAIN] = _row(0.5, 0.3, 0.30, seeds=(42, 43, 44))   # F1 30, 31, 32 %
    (tmp_path / "table3_conll2003.json").write_text(json.dumps(result))
    block = readme_block(tmp_path)
    bond = related_numbers()["bond"]["F1"]["conll2003"]
    assert (f"In-domain on conll2003: {IN_DOMAIN} 31.00 ± 1.00 test F1 (3 seeds) against Gazetteer Matching 16.00: "
            f"+15.00 F1; the goal of +10 (issue 13) is met. BOND's published {bond:.2f} is {bond - 31:.2f} higher") in block
    result["rows"][IN_DOMAIN] = _row(0.5, 0.3, 0.20)
    (tmp_path / "table3_conll2003.json").write_text(json.dumps(result))
    assert "BOND is scored on PER, LOC, ORG and MISC (the kit: " in block and "scored on PER, LOC, ORG)." in block
    assert "+4.00 F1; the goal of +10 (issue 13) is not met" in readme_block(tmp_path)
    _table3(tmp_path, "conll2003")   # no in-domain row: no line
    assert "In-domain on" not in readme_block(tmp_path)


def test_the_batch_total_leaves_out_parts_run_again_with_overrides():
    from cofee_lib.tables import markdown

    timings = {"06_x.ipynb": {"seconds": 100, "preset": "default"},
               "07_y.ipynb": {"seconds": 50, "preset": "default"},
               '06_x.ipynb -p rows "in-domain"': {"seconds": 70, "preset": "default"}}
    text = markdown([], timings)
    assert "| 06_x.ipynb -p rows \"in-domain\" | default | 70 |" in text
    assert "**150**" in text and "**220**" not in text
