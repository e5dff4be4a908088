"""cofee_lib.claims on hand-made results whose verdicts are known, and the claims.json contract."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cofee_lib import claims
from cofee_lib.errors import CofeeError


def constant(f1, n):
    """Counts giving micro F1 ``f1`` on every one of ``n`` sentences (1000 gold, 1000 predicted each)."""
    return np.tile([round(f1 * 1000), 1000, 1000], (n, 1)).tolist()


def noisy(f1, n, seed):
    rng = np.random.default_rng(seed)
    right = (rng.random(n) < f1).astype(int)
    return np.stack([right, np.ones(n, int), np.ones(n, int)], axis=1).tolist()


def write_table3(folder, target, f1s: dict, n=200, seeds=(42, 43, 44), counts=constant):
    rows, per_row = {}, {}
    for name, value in f1s.items():
        if name == "Gazetteer Matching":
            per_row[name] = {"-": counts(value, n) if counts is constant else counts(value, n, 0)}
            rows[name] = {"F1": value, "n_seeds": 0, "seeds": []}
        else:
            per_row[name] = {str(s): (counts(value, n) if counts is constant else counts(value, n, s)) for s in seeds}
            rows[name] = {"F1": value, "n_seeds": len(seeds), "seeds": list(seeds)}
    (folder / f"table3_{target}.json").write_text(json.dumps({"table": 3, "target": target, "rows": rows,
                                                               "preset": "default", "machine": "test"}))
    (folder / "counts").mkdir(exist_ok=True)
    (folder / "counts" / f"table3_{target}.json").write_text(json.dumps(
        {"split": "test", "target": target, "sentences": n, "rows": per_row}))


ORDERED = {"Gazetteer Matching": 0.20, "MRC-NER": 0.25, "CoFEE-MRC": 0.40, "-FET": 0.35, "-FET-ESI": 0.30}


def by_id(judged, target=None):
    return {c["id"]: c for c in judged if target is None or c["target"] == target}


def test_clear_differences_give_the_verdicts_known_by_hand(tmp_path):
    write_table3(tmp_path, "wnut16", ORDERED)
    judged, not_run = claims.judge_all(tmp_path)
    got = by_id(judged)
    assert set(got) == {"C1", "C2", "C3", "C4", "C5"}
    for cid in ("C1", "C2", "C3", "C4", "C5"):
        assert got[cid]["verdict"] == "reproduced", got[cid]
    assert got["C1"]["estimate"] == pytest.approx(0.05) and got["C2"]["estimate"] == pytest.approx(0.05)
    # the sweeps, Table 2 and the in-domain rows were not run: said, not invented
    assert {n["id"] for n in not_run} == {"C6", "C7", "C8", "C9", "C10", "C11", "C12", "C13", "C14"}
    reasons = {n["id"]: n["reason"] for n in not_run}
    assert "no row CoFEE-MRC + in-domain NEE, no self-picking" in reasons["C12"]


IN_DOMAIN = {"MRC-NER on in-domain distant labels": 0.30, "CoFEE-MRC + in-domain NEE, no self-picking": 0.45,
             "CoFEE-MRC + in-domain NEE": 0.50}


def test_in_domain_claims_are_judged_when_their_rows_exist(tmp_path):
    write_table3(tmp_path, "conll2003", {**ORDERED, **IN_DOMAIN})
    got = by_id(claims.judge_all(tmp_path)[0])
    assert got["C12"]["estimate"] == pytest.approx(0.15) and got["C12"]["verdict"] == "reproduced"
    assert got["C13"]["estimate"] == pytest.approx(0.05) and got["C13"]["verdict"] == "reproduced"
    assert got["C14"]["estimate"] == pytest.approx(0.30) and got["C14"]["verdict"] == "reproduced"
    assert got["C2"]["estimate"] == pytest.approx(0.05)   # the paper's C2 compares the paper's rows only
    assert got["C12"]["paper"]["where"].startswith("beyond the paper")


def test_reversed_rows_are_contradicted_and_equal_ones_inconclusive(tmp_path):
    reversed_rows = {"Gazetteer Matching": 0.40, "MRC-NER": 0.30, "CoFEE-MRC": 0.20, "-FET": 0.25, "-FET-ESI": 0.35}
    write_table3(tmp_path, "conll2003", reversed_rows)
    got = by_id(claims.judge_all(tmp_path)[0])
    assert got["C1"]["verdict"] == got["C2"]["verdict"] == got["C3"]["verdict"] == "contradicted"
    same = tmp_path / "same"
    same.mkdir()
    write_table3(same, "wnut16", {k: 0.3 for k in ORDERED}, n=150, counts=noisy)
    for c in claims.judge_all(same)[0]:
        assert c["verdict"] == "inconclusive", c   # independent draws of one F1: no claim can be made


def test_claims_json_contract_and_markdown(tmp_path):
    write_table3(tmp_path, "wnut16", ORDERED, counts=noisy, n=300)
    written = claims.write_claims(tmp_path)
    data = json.loads((tmp_path / "claims.json").read_text())
    assert isinstance(data, list) and data
    for c in data:
        assert c["id"] in {f"C{i}" for i in range(1, 12)} and c["target"] == "wnut16"
        assert c["verdict"] in claims.VERDICTS
        low, high = c["ci95"]
        assert low <= c["estimate"] <= high or c["statistic"] == "best_of"
        assert c["rows"] and all("seeds" in r for r in c["rows"].values())
    # the paper's own estimate, computed from paper_numbers.json (Twitter: MRC-NER 48.62 vs Matching 26.30)
    c1 = by_id(data)["C1"]
    assert c1["paper"]["estimates"]["twitter"] == pytest.approx(0.2232)
    assert "ecommerce" not in c1["paper"]["holds_on"]
    md = (tmp_path / "claims.md").read_text()
    assert "| C1 |" in md and "Not run at this preset" in md and written["not_run"]


def test_sweep_claims(tmp_path):
    n = 100
    panels = {"a": [{"x": x, "row": None, "seed": s, "counts": constant(0.1 + 0.3 * x, n)}
                    for x in (0.2, 0.6, 1.0) for s in (42, 43)],
              "b": [{"x": x, "row": r, "seed": s, "counts": constant(f, n)}
                    for x, gain in ((0.2, 0.2), (1.0, 0.05)) for s in (42, 43)
                    for r, f in (("MRC-NER", 0.3), ("CoFEE-MRC", 0.3 + gain))],
              "c": [{"x": d, "row": None, "seed": 42, "counts": constant(f, n)}
                    for d, f in ((0.05, 0.3), (0.1, 0.35), (0.3, 0.2), (0.5, 0.1))],
              "d": [{"x": k, "row": None, "seed": 42, "counts": constant(0.3 + 0.001 * k, n)} for k in (2, 8, 32)]}
    (tmp_path / "figure2.json").write_text(json.dumps({"target": "wnut16", "preset": "default", "a": [], "b": []}))
    (tmp_path / "counts").mkdir()
    (tmp_path / "counts" / "figure2.json").write_text(json.dumps({"split": "dev", "target": "wnut16",
                                                                   "sentences": n, "panels": panels}))
    got = by_id(claims.judge_all(tmp_path)[0])
    assert got["C7"]["estimate"] == pytest.approx(0.3, abs=1e-3) and got["C7"]["verdict"] == "reproduced"
    assert got["C8"]["estimate"] == pytest.approx(0.15, abs=1e-3) and got["C8"]["verdict"] == "reproduced"
    assert got["C9"]["estimate"] == pytest.approx(0.15, abs=1e-3) and got["C9"]["verdict"] == "reproduced"
    assert got["C10"]["estimate"] == pytest.approx(0.03, abs=1e-3) and got["C10"]["verdict"] == "reproduced"
    assert got["C7"]["split"] == "dev"

    # panels run at different times (notebook 08 -p panels d): a panel without counts is listed, not judged
    only_d = {"split": "dev", "target": "wnut16", "sentences": n, "panels": {"a": [], "b": [], "c": [], "d": panels["d"]}}
    (tmp_path / "counts" / "figure2.json").write_text(json.dumps(only_d))
    judged, not_run = claims.judge_all(tmp_path)
    assert [c["id"] for c in judged] == ["C10"]
    assert {r["id"]: r["reason"] for r in not_run}["C9"] == "figure2.json has no per-sentence counts for panel c (results/counts/)"


def test_results_without_counts_are_listed_not_judged(tmp_path):
    (tmp_path / "table3_wnut16.json").write_text(json.dumps({"table": 3, "target": "wnut16", "rows": {}}))
    judged, not_run = claims.judge_all(tmp_path)
    assert not judged and all("per-sentence counts" in n["reason"] for n in not_run if n["id"] in ("C1", "C2"))
    with pytest.raises(CofeeError, match="no table or sweep results"):
        claims.write_claims(tmp_path)


def test_readme_block_is_replaced_between_markers(tmp_path):
    write_table3(tmp_path, "wnut16", ORDERED)
    judged, _ = claims.judge_all(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{claims.README_BEGIN}\nold\n{claims.README_END}\nrest\n")
    assert claims.sync_readme(readme, judged)
    text = readme.read_text()
    assert "old" not in text and "| C1: " in text and text.endswith("rest\n") and "Reproduced: C1 (wnut16)" in text
    assert not claims.sync_readme(readme, judged)   # unchanged the second time


def test_cofee_claims_command(tmp_path, cofee_cli):
    write_table3(tmp_path, "wnut16", ORDERED)
    proc = cofee_cli("claims", "--results", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "reproduced: C1 (wnut16)" in proc.stdout and (tmp_path / "claims.md").is_file()
    proc = cofee_cli("claims", "--results", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "no results folder" in proc.stderr


def test_malformed_results_are_clear_errors_and_nothing_is_written(tmp_path, cofee_cli):
    write_table3(tmp_path, "wnut16", ORDERED)
    (tmp_path / "counts" / "table3_wnut16.json").write_text('{"rows": []}')
    with pytest.raises(CofeeError, match=r"counts/table3_wnut16.json: not a counts file"):
        claims.judge_all(tmp_path)
    write_table3(tmp_path, "wnut16", ORDERED)   # a good counts file again; now a bad sweep file
    (tmp_path / "figure2.json").write_text("[1, 2]")
    proc = cofee_cli("claims", "--results", str(tmp_path))
    assert proc.returncode == 2 and "figure2.json: expected a JSON object" in proc.stderr
    assert not (tmp_path / "claims.json").exists() and not (tmp_path / "claims.md").exists()
