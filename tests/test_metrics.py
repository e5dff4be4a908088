"""cofee_lib.metrics agrees with seqeval (strict mode, IOB2) and ``cofee evaluate`` prints JSON."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from cofee_lib import sources
from cofee_lib.cli import main
from cofee_lib.errors import CofeeError
from cofee_lib.formats.conll import read_conll
from cofee_lib.formats.tags import spans_to_tags
from cofee_lib.metrics import evaluate_records, evaluate_spans
from cofee_lib.records import make_record, spans_of, write_jsonl

FIX = Path(__file__).parent / "fixtures" / "formats"


def seqeval_scores(gold: list[dict], pred: list[dict]) -> dict:
    """P/R/F1 overall and per type from seqeval strict IOB2 on the records' tags."""
    pred_by_id = {r["id"]: r for r in pred}
    y_true = [spans_to_tags(len(r["tokens"]), r["spans"], "iob2") for r in gold]
    y_pred = [spans_to_tags(len(r["tokens"]), pred_by_id[r["id"]]["spans"], "iob2") for r in gold]
    kw = dict(mode="strict", scheme=IOB2, zero_division=0)
    report = classification_report(y_true, y_pred, output_dict=True, **kw)
    per_type = {t: v for t, v in report.items() if not t.endswith(" avg")}
    return {"precision": precision_score(y_true, y_pred, **kw), "recall": recall_score(y_true, y_pred, **kw),
            "f1": f1_score(y_true, y_pred, **kw), "per_type": per_type}


def assert_agrees(ours: dict, theirs: dict) -> None:
    for key in ("precision", "recall", "f1"):
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-9), key
    assert set(ours["per_type"]) == set(theirs["per_type"])
    for t, row in theirs["per_type"].items():
        mine = ours["per_type"][t]
        assert mine["precision"] == pytest.approx(float(row["precision"]), abs=1e-9), t
        assert mine["recall"] == pytest.approx(float(row["recall"]), abs=1e-9), t
        assert mine["f1"] == pytest.approx(float(row["f1-score"]), abs=1e-9), t
        assert mine["n_gold"] == int(row["support"]), t


def perturb(records: list[dict], fraction: float, seed: int) -> list[dict]:
    """Predictions: drop, shift or retype a seeded fraction of gold spans, add some spurious ones.

    Predictions stay non-overlapping (so seqeval can read them as tags): a
    shift that would collide with another span is dropped instead.
    """
    rng = random.Random(seed)
    types = sorted({s[2] for r in records for s in r["spans"]})
    out = []
    for rec in records:
        n = len(rec["tokens"])
        taken = [False] * n
        kept = []
        gold = sorted(spans_of(rec))
        for s, e, t in gold:
            for k in range(s, e + 1):
                taken[k] = True
        for s, e, t in gold:
            roll = rng.random()
            if roll >= fraction:
                kept.append((s, e, t))
                continue
            action = rng.choice(["drop", "shift", "retype"])
            if action == "retype":
                kept.append((s, e, rng.choice([x for x in types if x != t])))
            elif action == "shift":
                ds, de = rng.choice([(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1)])
                ns, ne = s + ds, e + de
                outside = [k for k in range(ns, ne + 1) if not s <= k <= e]
                if 0 <= ns <= ne < n and not any(taken[k] for k in outside):
                    for k in outside:
                        taken[k] = True
                    kept.append((ns, ne, t))
        for k in range(n):  # spurious single-token predictions on free tokens
            if not taken[k] and rng.random() < fraction / 20:
                taken[k] = True
                kept.append((k, k, rng.choice(types)))
        out.append(make_record(rec["id"], rec["tokens"], kept))
    return out


def test_hand_made_cases_agree_with_seqeval():
    tokens = ["a", "b", "c", "d", "e", "f"]
    gold = [make_record("0", tokens, [(0, 1, "PER"), (3, 3, "LOC"), (5, 5, "ORG")]),
            make_record("1", tokens[:3], [(0, 2, "MISC")]),
            make_record("2", tokens[:2], [])]
    pred = [make_record("0", tokens, [(0, 1, "PER"), (3, 4, "LOC"), (5, 5, "PER")]),
            make_record("1", tokens[:3], [(0, 2, "MISC")]),
            make_record("2", tokens[:2], [(1, 1, "DATE")])]
    ours = evaluate_records(gold, pred)
    assert (ours["tp"], ours["n_pred"], ours["n_gold"]) == (2, 5, 4)
    assert ours["precision"] == pytest.approx(2 / 5) and ours["recall"] == pytest.approx(2 / 4)
    assert ours["per_type"]["DATE"]["n_gold"] == 0 and ours["per_type"]["ORG"]["recall"] == 0.0
    assert_agrees(ours, seqeval_scores(gold, pred))


@pytest.mark.parametrize("gold_spans,pred_spans,expected", [
    ([], [], (0.0, 0.0, 0.0)),                                   # nothing anywhere
    ([(0, 0, "PER")], [], (0.0, 0.0, 0.0)),                      # empty predictions
    ([], [(0, 0, "PER")], (0.0, 0.0, 0.0)),                      # empty gold
    ([(0, 0, "PER"), (2, 3, "LOC")], [(0, 0, "PER"), (2, 3, "LOC")], (1.0, 1.0, 1.0)),
])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # seqeval averages empty arrays when nothing exists
def test_empty_gold_and_empty_predictions(gold_spans, pred_spans, expected):
    gold = [make_record("x", ["a", "b", "c", "d"], gold_spans)]
    pred = [make_record("x", ["a", "b", "c", "d"], pred_spans)]
    ours = evaluate_records(gold, pred)
    assert (ours["precision"], ours["recall"], ours["f1"]) == expected
    assert_agrees(ours, seqeval_scores(gold, pred))


def test_boundary_and_type_must_match_exactly():
    result = evaluate_spans([{(0, 2, "ORG")}], [{(0, 1, "ORG"), (0, 2, "LOC")}])
    assert result["tp"] == 0 and result["n_pred"] == 2 and result["n_gold"] == 1


def test_pairing_errors():
    gold = [make_record("a", ["x"], []), make_record("b", ["y"], [])]
    with pytest.raises(CofeeError, match="no prediction"):
        evaluate_records(gold, gold[:1])
    with pytest.raises(CofeeError, match="no gold sentence"):
        evaluate_records(gold[:1], gold)
    with pytest.raises(CofeeError, match="tokens"):
        evaluate_records(gold[:1], [make_record("a", ["x", "z"], [])])
    with pytest.raises(CofeeError, match="duplicate id 'a'"):
        evaluate_records(gold, gold + [make_record("a", ["x"], [(0, 0, "PER")])])
    with pytest.raises(CofeeError, match="duplicate id 'b'"):
        evaluate_records(gold + gold[1:], gold)
    with pytest.raises(CofeeError, match="sentences"):
        evaluate_spans([set()], [])


def test_perturbed_fixture_agrees_with_seqeval():
    gold = read_conll(FIX / "conll4.txt")
    for seed in range(20):
        pred = perturb(gold, 0.6, seed)
        assert_agrees(evaluate_records(gold, pred), seqeval_scores(gold, pred))


def test_cofee_evaluate_prints_json(tmp_path, capsys):
    gold = read_conll(FIX / "conll4.txt")
    pred = [make_record(r["id"], r["tokens"], r["spans"][:1]) for r in gold]
    write_jsonl(tmp_path / "gold.jsonl", gold)
    write_jsonl(tmp_path / "pred.jsonl", pred)
    status = main(["evaluate", "--gold", str(tmp_path / "gold.jsonl"), "--pred", str(tmp_path / "pred.jsonl"),
                   "--out", str(tmp_path / "scores.json")])
    assert status in (0, None)
    printed = json.loads(capsys.readouterr().out)
    assert printed["tp"] == 2 and printed["n_gold"] == 5 and printed["n_pred"] == 2
    assert printed["precision"] == 1.0 and printed["recall"] == pytest.approx(0.4)
    assert printed["per_type"]["PER"]["tp"] == 1
    assert json.loads((tmp_path / "scores.json").read_text(encoding="utf-8")) == printed
    # a prediction file missing a sentence: exit 2 and a clear message
    write_jsonl(tmp_path / "short.jsonl", pred[:1])
    assert main(["evaluate", "--gold", str(tmp_path / "gold.jsonl"), "--pred", str(tmp_path / "short.jsonl")]) == 2
    assert "no prediction" in capsys.readouterr().err


@pytest.mark.slow
def test_conll2003_valid_perturbed_agrees_with_seqeval():
    gold = read_conll(Path(sources.fetch("conll2003", progress=False)) / "valid.txt")
    assert len(gold) == 3250
    for fraction, seed in [(0.05, 1), (0.2, 2), (0.5, 3)]:
        pred = perturb(gold, fraction, seed)
        ours = evaluate_records(gold, pred)
        assert 0.0 < ours["f1"] < 1.0
        assert_agrees(ours, seqeval_scores(gold, pred))


def write_lines(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_predictions_must_keep_the_gold_tokens(tmp_path):
    """Paired by id, the tokens themselves are compared: the error names the pred file, line and token."""
    from cofee_lib.errors import InputError
    from cofee_lib.records import read_jsonl

    gold = [make_record("a", ["x", "y"], []), make_record("b", ["New", "York"], [(0, 1, "LOC")])]
    gold_path = write_lines(tmp_path / "gold.jsonl", gold)
    cases = [
        (["New", "Jersey"], "sentence 'b': token 1 is \"Jersey\" in the prediction but \"York\" in gold"),
        (["New"], "prediction has 1 tokens, gold has 2; first difference: token 1 is missing in the prediction"),
        (["New", "York", "!"], "token 2 is \"!\" in the prediction but missing in gold"),
    ]
    for tokens, pattern in cases:
        pred = [gold[0], make_record("b", tokens, [])]
        pred_path = write_lines(tmp_path / "pred.jsonl", pred)
        with pytest.raises(InputError, match=pattern) as info:
            evaluate_records(read_jsonl(gold_path), read_jsonl(pred_path))
        assert str(info.value).startswith(f"{pred_path}:2: ")
        assert f"{gold_path}:2" in str(info.value)
    # in-memory records (no file): named as <predictions>
    with pytest.raises(InputError, match="token 1 is \"Jersey\"") as info:
        evaluate_records(gold, [gold[0], make_record("b", ["New", "Jersey"], [])])
    assert info.value.path == "<predictions>"


def test_pairing_errors_name_the_file_and_line(tmp_path):
    from cofee_lib.errors import InputError
    from cofee_lib.records import read_jsonl

    gold = [make_record("a", ["x"], []), make_record("b", ["y"], [])]
    gold_path = write_lines(tmp_path / "gold.jsonl", gold)
    pred_path = write_lines(tmp_path / "pred.jsonl", [gold[0], gold[1], gold[0]])
    with pytest.raises(InputError, match=rf"duplicate id 'a' \(first at {pred_path}:1\)") as info:
        evaluate_records(read_jsonl(gold_path), read_jsonl(pred_path))
    assert str(info.value).startswith(f"{pred_path}:3: ")
    pred_path = write_lines(tmp_path / "pred.jsonl", [gold[0], make_record("c", ["z"], []), gold[1]])
    with pytest.raises(InputError, match="1 predictions have no gold sentence \\(first: 'c'\\)") as info:
        evaluate_records(read_jsonl(gold_path), read_jsonl(pred_path))
    assert str(info.value).startswith(f"{pred_path}:2: ")
    pred_path = write_lines(tmp_path / "pred.jsonl", [gold[1]])
    with pytest.raises(InputError, match=rf"no prediction \(first: 'a', {gold_path}:1\)") as info:
        evaluate_records(read_jsonl(gold_path), read_jsonl(pred_path))
    assert info.value.path == str(pred_path)
    with pytest.raises(InputError, match="needs a string 'id'"):  # in-memory records with an unhashable id
        evaluate_records(gold, [{"id": ["a"], "tokens": ["x"], "spans": []}])


@pytest.mark.parametrize("bad_id", [[1], None, {"a": 1}, 1, True])
def test_cofee_evaluate_refuses_ids_that_are_not_strings(tmp_path, capsys, bad_id):
    gold = write_lines(tmp_path / "gold.jsonl", [make_record("a", ["x"], [])])
    pred = write_lines(tmp_path / "pred.jsonl", [make_record("a", ["x"], []), {"id": bad_id, "tokens": ["x"], "spans": []}])
    assert main(["evaluate", "--gold", str(gold), "--pred", str(pred)]) == 2
    captured = capsys.readouterr()
    assert f"{pred}:2: 'id' must be a non-empty string" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_cofee_evaluate_names_the_first_differing_token(tmp_path, capsys):
    gold = write_lines(tmp_path / "gold.jsonl", [make_record("a", ["x", "y"], [])])
    pred = write_lines(tmp_path / "pred.jsonl", [make_record("a", ["x", "z"], [])])
    assert main(["evaluate", "--gold", str(gold), "--pred", str(pred)]) == 2
    err = capsys.readouterr().err
    assert f"{pred}:1: sentence 'a': token 1 is \"z\" in the prediction but \"y\" in gold ({gold}:1)" in err
