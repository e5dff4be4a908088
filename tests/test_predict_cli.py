"""``cofee predict`` and ``cofee tag`` on a tiny model trained in seconds."""
import json

import pytest

import cli_subset
import torch

from cofee_lib.commands.tag import split_words
from cofee_lib.records import read_jsonl, write_jsonl

TYPES = ["PER", "LOC"]
SENTENCES = [
    ("John Smith lives in Paris .", [[0, 1, "PER"], [4, 4, "LOC"]]),
    ("Mary Jones went to Berlin yesterday .", [[0, 1, "PER"], [4, 4, "LOC"]]),
    ("the weather in Paris was fine .", [[3, 3, "LOC"]]),
    ("John Smith met Mary Jones .", [[0, 1, "PER"], [3, 4, "PER"]]),
    ("nothing happened here .", []),
    ("Berlin is far from Paris .", [[0, 0, "LOC"], [4, 4, "LOC"]]),
]


def main(argv):
    """``cofee`` with the real parsers of the commands under test only (tests/cli_subset.py)."""
    from cofee_lib.commands import predict, tag

    return cli_subset.run(argv, predict, tag)


@pytest.fixture(scope="module")
def records():
    return [{"id": f"s{i}", "tokens": t.split(), "spans": s} for i, (t, s) in enumerate(SENTENCES)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, records):
    from cofee_lib.backbones import build_backbone

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        m = build_backbone("tagger", TYPES, model="tiny", records=records, tiny_tokenizer="records")
        batch = m.collate(m.featurize(records, train=True))
        opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
        m.train()
        for _ in range(80):
            loss = m(batch)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.eval()
        assert m.predict(records) == [r["spans"] for r in records]
        path = tmp_path_factory.mktemp("cli") / "model"
        m.save_pretrained(path)
    finally:
        torch.set_num_threads(old)
    return path


def test_predict_writes_records_with_spans(model_dir, records, tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    write_jsonl(data, [{**r, "spans": [], "extra": 1} for r in records])
    out = tmp_path / "pred.jsonl"
    assert main(["predict", "--model", str(model_dir), "--data", str(data), "--out", str(out),
                 "--no-progress", "--device", "cpu"]) == 0
    pred = read_jsonl(out)
    assert [p["id"] for p in pred] == [r["id"] for r in records]
    assert [p["tokens"] for p in pred] == [r["tokens"] for r in records]
    assert [p["spans"] for p in pred] == [r["spans"] for r in records]
    assert all(p["extra"] == 1 for p in pred)
    assert "sentences/s" in capsys.readouterr().err


def test_predict_bad_input_names_file_and_line(model_dir, tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": "a", "tokens": ["x"], "spans": []}\n{"id": "b", "tokens": "x y"}\n')
    out = tmp_path / "pred.jsonl"
    assert main(["predict", "--model", str(model_dir), "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{data}:2" in err and "spans" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [data]


def test_predict_bad_model_and_options(tmp_path, records, capsys):
    data = tmp_path / "data.jsonl"
    write_jsonl(data, records)
    assert main(["predict", "--model", str(tmp_path), "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    assert "not a saved CoFEE model" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path), "--data", str(data), "--out", str(tmp_path / "o"),
                 "--threshold", "2"]) == 2


def test_split_words_offsets():
    text = "John Smith-Jones visited the U.S. in 2019, paying 3.5 dollars. 北京大学"
    words, offsets = split_words(text)
    assert words[:6] == ["John", "Smith-Jones", "visited", "the", "U.S.", "in"]
    assert "3.5" in words and words[-4:] == ["北", "京", "大", "学"]
    assert all(text[a:b] == w for w, (a, b) in zip(words, offsets))


def test_tag_json_and_text(model_dir, capsys):
    text = "John Smith  lives in Berlin ."
    assert main(["tag", "--model", str(model_dir), "--device", "cpu", text]) == 0
    ents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert ents, "the trained tiny model should find John Smith and Berlin"
    for e in ents:
        assert text[e["char_start"]:e["char_end"]] == e["text"]
        assert e["line"] == 1 and e["type"] in TYPES and e["word_start"] <= e["word_end"]
    assert {"text": "John Smith", "type": "PER"} in [{k: e[k] for k in ("text", "type")} for e in ents]
    assert main(["tag", "--model", str(model_dir), "--format", "text", text]) == 0
    out = capsys.readouterr().out
    assert "John Smith" in out and "PER" in out and "chars" in out


def test_tag_input_file(model_dir, tmp_path, capsys):
    f = tmp_path / "texts.txt"
    f.write_text("Mary Jones lives in Paris .\n\nBerlin is far .\n", encoding="utf-8")
    assert main(["tag", "--model", str(model_dir), "--input", str(f)]) == 0
    ents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["line"] for e in ents} <= {1, 3} and any(e["line"] == 3 for e in ents)
    assert main(["tag", "--model", str(model_dir), "--input", str(tmp_path / "none.txt")]) == 2
    assert main(["tag", "--model", str(model_dir)]) == 2


def test_cli_entry_point_exit_status(model_dir, tmp_path, cofee_cli):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    proc = cofee_cli("predict", "--model", model_dir, "--data", bad, "--out", tmp_path / "o.jsonl")
    assert proc.returncode == 2
    assert f"{bad}:1" in proc.stderr and not (tmp_path / "o.jsonl").exists()


# ----------------------------------------------------------------------------- confidences

def test_tag_confidence_adds_one_field_and_changes_nothing_else(model_dir, capsys):
    text = "John Smith  lives in Berlin ."
    assert main(["tag", "--model", str(model_dir), "--device", "cpu", text]) == 0
    plain = capsys.readouterr().out
    assert main(["tag", "--model", str(model_dir), "--device", "cpu", "--confidence", text]) == 0
    scored = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert scored and all(0.0 < e["confidence"] <= 1.0 for e in scored)
    assert [{k: v for k, v in e.items() if k != "confidence"} for e in scored] == \
        [json.loads(line) for line in plain.splitlines()]
    assert "confidence" not in plain
    assert main(["tag", "--model", str(model_dir), "--format", "text", "--confidence", text]) == 0
    assert "conf" in capsys.readouterr().out
    assert main(["tag", "--model", str(model_dir), "--threshold", "1.5", text]) == 2
    assert "--threshold must be a probability" in capsys.readouterr().err


def test_predict_confidence_is_one_probability_per_span(model_dir, records, tmp_path):
    data = tmp_path / "data.jsonl"
    write_jsonl(data, [{**r, "spans": []} for r in records])
    plain, scored = tmp_path / "plain.jsonl", tmp_path / "scored.jsonl"
    assert main(["predict", "--model", str(model_dir), "--data", str(data), "--out", str(plain), "--no-progress"]) == 0
    assert main(["predict", "--model", str(model_dir), "--data", str(data), "--out", str(scored), "--no-progress",
                 "--confidence", "--threshold", "0.3"]) == 0
    a, b = read_jsonl(plain), read_jsonl(scored)
    assert [r["spans"] for r in a] == [r["spans"] for r in b]
    assert all("confidences" not in r for r in a)
    assert all(len(r["confidences"]) == len(r["spans"]) and all(0 < c <= 1 for c in r["confidences"]) for r in b)


def test_tagger_confidence_is_the_weakest_chosen_tag_probability(model_dir, records):
    from cofee_lib.backbones import load_backbone

    model = load_backbone(model_dir)
    scored = model.predict_with_confidence(records)
    assert [[sp[:3] for sp in rec] for rec in scored] == model.predict(records)
    scores = model.word_scores(records)
    for rec_scores, rec in zip(scores, scored):
        probs = rec_scores[0]["logp"].exp()
        for s, e, _, conf in rec:
            assert conf == pytest.approx(min(float(probs[w].max()) for w in range(s, e + 1)))


def test_mrc_confidence_is_min_of_start_and_end_and_spans_are_predicts(tiny_mrc):
    model, recs = tiny_mrc
    for threshold in (0.3, 0.5, 0.6):      # a random model: some spans pass at 0.3 and few at 0.6
        scored = model.predict_with_confidence(recs, threshold=threshold)
        assert [[sp[:3] for sp in rec] for rec in scored] == model.predict(recs, threshold=threshold)
        scores = model.word_scores(recs)
        for rec_scores, rec in zip(scores, scored):
            for s, e, t, conf in rec:
                sc = rec_scores[model.types.index(t)]
                assert conf == pytest.approx(min(float(sc["start"][s]), float(sc["end"][e])))
                assert conf > threshold
    assert any(scored for scored in model.predict_with_confidence(recs, threshold=0.3))


def test_bilstm_crf_has_no_confidence(records, tmp_path, capsys):
    from cofee_lib.backbones import build_backbone
    from cofee_lib.errors import CofeeError

    model = build_backbone("bilstm-crf", TYPES, records=records, word_dim=8, char_dim=4, hidden=8)
    with pytest.raises(CofeeError, match="reports no per-entity confidence"):
        model.predict_with_confidence(records)
    model.save_pretrained(tmp_path / "bilstm")
    assert main(["tag", "--model", str(tmp_path / "bilstm"), "--confidence", "John Smith"]) == 2
    assert "no per-entity confidence" in capsys.readouterr().err
