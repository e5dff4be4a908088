"""pipeline.threshold_curve: one scoring pass, decoded at each threshold, consistent with evaluate_once."""
from __future__ import annotations

import pytest

from cofee_lib.pipeline import evaluate_once, threshold_curve


def test_threshold_curve_matches_evaluate_once_and_recall_falls(tiny_mrc, tmp_path):
    model, records = tiny_mrc
    model.save_pretrained(tmp_path / "m")
    points = threshold_curve(tmp_path / "m", records, [0.0001, 0.3, 0.5, 0.7, 0.9999])
    assert [p["threshold"] for p in points] == [0.0001, 0.3, 0.5, 0.7, 0.9999]
    assert points[0]["R"] > 0                           # the lowest threshold decodes spans: the curve is not empty
    assert points[0]["R"] >= points[-1]["R"]            # (start/end pairing makes recall not strictly monotone)
    assert all(0 <= p[m] <= 1 for p in points for m in ("P", "R", "F1"))
    once = evaluate_once(tmp_path / "m", records)
    at_half = points[2]
    assert (at_half["P"], at_half["R"], at_half["F1"]) == pytest.approx((once["precision"], once["recall"], once["f1"]))
