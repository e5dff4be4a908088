"""``cofee export --format hf``: a tagger as a transformers token-classification folder, and the
condition under which ``pipeline(aggregation_strategy="simple")`` gives ``cofee tag``'s entities.

The taggers here are the tiny random encoder trained in seconds on a few English sentences,
with a WordPiece vocabulary of single characters and a handful of frequent words, so that
almost every entity word is several sub-tokens: the case where the pipeline (which groups the
labels of every sub-token) and the kit (which reads each word's first sub-token) can differ.
"""
import json
import os

import pytest

import cli_subset
import torch

from cofee_lib.commands.tag import split_words

TYPES = ["PER", "LOC", "ORG"]
# (text, entities as (first word, last word, type) over the words cofee tag splits the text into)
SENTENCES = [
    ("Angela Merkel met Emmanuel Macron in Brussels on Thursday .", [(0, 1, "PER"), (3, 4, "PER"), (6, 6, "LOC")]),
    ("Shares of Volkswagen fell 3.5 percent in Frankfurt after the report .", [(2, 2, "ORG"), (7, 7, "LOC")]),
    ("Zwingelberg scored twice as Schalke beat Dortmund 2-1 .", [(0, 0, "PER"), (4, 4, "ORG"), (6, 6, "ORG")]),
    ("The U.S. embassy in Nairobi was closed , officials said .", [(1, 1, "LOC"), (4, 4, "LOC")]),
    ("Jacqueline Kowalczyk works for Siemens in Munich .", [(0, 1, "PER"), (4, 4, "ORG"), (6, 6, "LOC")]),
    ("Microsoft and Google opened offices in Dublin last year .", [(0, 0, "ORG"), (2, 2, "ORG"), (6, 6, "LOC")]),
    ("Nothing much happened here today .", []),
    ("Barack Obama visited Tokyo and Seoul with Hillary Clinton .",
     [(0, 1, "PER"), (3, 3, "LOC"), (5, 5, "LOC"), (7, 8, "PER")]),
]
TEXTS = [text for text, _ in SENTENCES]


def main(argv):
    """``cofee`` with the real parsers of the commands under test only (tests/cli_subset.py)."""
    from cofee_lib.commands import export, finetune, predict, tag, train

    return cli_subset.run(argv, export, finetune, predict, tag, train)


@pytest.fixture(scope="module")
def records():
    return [{"id": str(i), "tokens": split_words(text)[0], "spans": [list(s) for s in spans]}
            for i, (text, spans) in enumerate(SENTENCES)]


@pytest.fixture(scope="module")
def tokenizer(records):
    from cofee_lib.encoders import build_vocab, wordpiece_tokenizer

    return wordpiece_tokenizer(build_vocab(records, size=200))   # ~190 character pieces + 7 words


def tiny_tagger(tokenizer, subtoken_labels="first"):
    """A tagger on the tiny random encoder (:data:`cofee_lib.encoders.TINY_CONFIG`) over ``tokenizer``."""
    from transformers import BertConfig, BertModel

    from cofee_lib.backbones.tagger import TaggerBackbone
    from cofee_lib.encoders import TINY_CONFIG

    config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **TINY_CONFIG)
    return TaggerBackbone(BertModel(config, add_pooling_layer=False), tokenizer, TYPES, max_len=96,
                          encoder_name="tiny (test)", subtoken_labels=subtoken_labels)


def train_tagger(records, tokenizer, subtoken_labels, steps=150):
    """A tiny tagger fitted to ``records`` (it must reproduce them exactly)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = tiny_tagger(tokenizer, subtoken_labels)
        batch = model.collate(model.featurize(records, train=True))
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(steps):
            loss = model(batch)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
    finally:
        torch.set_num_threads(old)
    assert model.predict(records) == [sorted(r["spans"]) for r in records]
    return model


@pytest.fixture(scope="module")
def tagger_dirs(records, tokenizer, tmp_path_factory):
    """``{"all": DIR, "first": DIR}``: the same tagger trained on every sub-token / on first sub-tokens."""
    root = tmp_path_factory.mktemp("taggers")
    dirs = {}
    for mode in ("all", "first"):
        train_tagger(records, tokenizer, mode).save_pretrained(root / mode)
        dirs[mode] = root / mode
    return dirs


def kit_entities(model_dir, texts, tmp_path, capsys):
    """``cofee tag --input`` on ``texts``: per text, the sorted (char_start, char_end, type) of its entities."""
    f = tmp_path / "texts.txt"
    f.write_text("\n".join(texts) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["tag", "--model", model_dir, "--input", f, "--device", "cpu"]) == 0
    ents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [sorted((e["char_start"], e["char_end"], e["type"]) for e in ents if e["line"] == i + 1)
            for i in range(len(texts))]


def pipeline_entities(folder, texts, strategy="simple"):
    """``transformers.pipeline("token-classification")`` on ``texts``, offline: per text, sorted (start, end, type)."""
    from transformers import pipeline

    os.environ["HF_HUB_OFFLINE"] = "1"
    ner = pipeline("token-classification", model=str(folder), aggregation_strategy=strategy, device="cpu")
    return [sorted((int(e["start"]), int(e["end"]), e["entity_group"]) for e in ner(t)) for t in texts]


def export(model_dir, out, capsys, *extra):
    capsys.readouterr()
    status = main(["export", "--model", model_dir, "--out", out, "--format", "hf", *extra])
    return status, capsys.readouterr()


# ----------------------------------------------------------------------------- the folder

def test_export_writes_a_standard_token_classification_folder(tagger_dirs, tmp_path, capsys):
    from safetensors import safe_open
    from transformers import AutoModelForTokenClassification

    out = tmp_path / "hf"
    status, io = export(tagger_dirs["all"], out, capsys)
    assert status == 0, io.err
    assert "warning" not in io.err and "logits match" in io.out
    config = json.loads((out / "config.json").read_text())
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    assert config["id2label"] == {str(i): label for i, label in enumerate(labels)}
    assert config["label2id"] == {label: i for i, label in enumerate(labels)}
    assert config["architectures"] == ["BertForTokenClassification"]
    assert {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "cofee_export.json", "README.md"} <= \
        {p.name for p in out.iterdir()}
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {"classifier.weight", "classifier.bias"} <= set(f.keys())
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 96
    info = json.loads((out / "cofee_export.json").read_text())
    assert info["subtoken_labels"] == "all" and info["labels"] == labels and info["source"] == str(tagger_dirs["all"])
    assert info["check"]["max_abs_logit_diff"] <= info["check"]["tolerance"]
    assert info["check"]["same_subtokens_as_word_split"] and "warnings" not in info
    model = AutoModelForTokenClassification.from_pretrained(str(out), local_files_only=True)
    assert model.config.num_labels == 7
    assert not list(tmp_path.glob(".hf*")), "no temporary folder is left beside OUT"


def test_the_check_notices_a_tokenizer_that_splits_raw_text_otherwise(tagger_dirs, tmp_path, capsys):
    """'5€': one pre-token (an unknown word) for the tokenizer on raw text, two words for cofee tag."""
    from cofee_lib.backbones import load_backbone
    from cofee_lib.backbones.export import check_export

    assert export(tagger_dirs["all"], tmp_path / "hf", capsys)[0] == 0
    model = load_backbone(tagger_dirs["all"])
    words = lambda text: split_words(text)[0]   # noqa: E731 - what cofee export passes
    same = [check_export(model, tmp_path / "hf", text, words)["same_subtokens_as_word_split"]
            for text in ("Prices rose 5 % in Paris .", "Prices rose 5€ in Paris .")]
    assert same == [True, False]


def test_a_failed_logit_check_writes_nothing(tagger_dirs, tmp_path, monkeypatch):
    from cofee_lib.backbones import export as hf_export
    from cofee_lib.backbones import load_backbone
    from cofee_lib.errors import CofeeError

    real = hf_export.build_token_classifier

    def off_by_a_little(model):
        hf = real(model)
        with torch.no_grad():
            hf.classifier.bias[1] += 0.01
        return hf

    monkeypatch.setattr(hf_export, "build_token_classifier", off_by_a_little)
    with pytest.raises(CofeeError, match="differ from the tagger's by 0.01"):
        hf_export.export_hf(load_backbone(tagger_dirs["all"]), tmp_path / "hf", source="x")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- agreement with cofee tag

def test_pipeline_simple_gives_cofee_tags_entities(tagger_dirs, tokenizer, records, tmp_path, capsys):
    """A tagger trained on every sub-token: the pipeline's entities (types and character offsets)
    are ``cofee tag``'s, on sentences whose entity words are several sub-tokens each."""
    out = tmp_path / "hf"
    assert export(tagger_dirs["all"], out, capsys)[0] == 0
    kit = kit_entities(tagger_dirs["all"], TEXTS, tmp_path, capsys)
    # the comparison has something to find: multi-word entities, and entity words of several sub-tokens
    assert kit == [sorted((split_words(t)[1][s][0], split_words(t)[1][e][1], typ) for s, e, typ in spans)
                   for t, spans in SENTENCES]
    pieces = [len(tokenizer.tokenize(word)) for r in records for s, e, _ in r["spans"] for word in r["tokens"][s:e + 1]]
    assert len(pieces) == 25 and sum(n >= 4 for n in pieces) >= 20
    assert pipeline_entities(out, TEXTS, "simple") == kit
    assert pipeline_entities(out, TEXTS, "first") == kit


def test_first_subtoken_tagger_exports_with_a_warning_and_the_pipeline_disagrees(tagger_dirs, tmp_path, capsys):
    """The default training (labels on first sub-tokens only): cofee tag is right, the pipeline's
    'simple' grouping of untrained sub-token outputs is not; the export says so."""
    out = tmp_path / "hf"
    status, io = export(tagger_dirs["first"], out, capsys)
    assert status == 0
    assert "warning:" in io.err and "--subtoken-labels all" in io.err and "aggregation_strategy='simple'" in io.err
    info = json.loads((out / "cofee_export.json").read_text())
    assert info["subtoken_labels"] == "first" and "--subtoken-labels all" in info["warnings"][0]
    assert "WARNING" in (out / "README.md").read_text()
    kit = kit_entities(tagger_dirs["first"], TEXTS, tmp_path, capsys)
    assert kit == kit_entities(tagger_dirs["all"], TEXTS, tmp_path, capsys)   # both taggers fit the sentences
    assert pipeline_entities(out, TEXTS, "simple") != kit


@pytest.mark.slow
def test_pipeline_agrees_on_conll2003_dev_sentences(tmp_path, capsys):
    """Real sentences (CoNLL-2003 dev) and a real WordPiece vocabulary (MiniLM's): a tiny tagger fitted to
    them with --subtoken-labels all, exported, gives cofee tag's entities through the pipeline."""
    from cofee_lib import sources
    from cofee_lib.backbones import build_backbone
    from cofee_lib.datasets import load_dataset

    if not (sources.is_cached("conll2003") and sources.is_cached("minilm")):
        pytest.skip("CoNLL-2003 or MiniLM is not in the cache (cofee fetch conll2003 minilm)")
    dev = [r for r in load_dataset("conll2003", "dev", progress=False)
           if r["spans"] and len(r["tokens"]) <= 30 and split_words(" ".join(r["tokens"]))[0] == r["tokens"]]
    recs = [{**r, "spans": [s for s in r["spans"] if s[2] in TYPES]} for r in dev[:12]]
    torch.manual_seed(0)
    model = build_backbone("tagger", TYPES, model="tiny", tiny_tokenizer="minilm", max_len=96,
                           subtoken_labels="all")
    batch = model.collate(model.featurize(recs, train=True))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(200):
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(tmp_path / "tagger")
    texts = [" ".join(r["tokens"]) for r in recs]
    assert export(tmp_path / "tagger", tmp_path / "hf", capsys)[0] == 0
    kit = kit_entities(tmp_path / "tagger", texts, tmp_path, capsys)
    assert sum(map(len, kit)) >= 12
    assert pipeline_entities(tmp_path / "hf", texts, "simple") == kit


# ----------------------------------------------------------------------------- what is refused

def test_mrc_and_bilstm_models_are_refused_with_where_to_go(tiny_mrc, records, tmp_path, capsys):
    from cofee_lib.backbones import build_backbone

    mrc, _ = tiny_mrc
    mrc.save_pretrained(tmp_path / "mrc")
    status, io = export(tmp_path / "mrc", tmp_path / "out", capsys)
    assert status == 2
    assert "MRC-NER" in io.err and "no transformers pipeline fits per-type start/end heads" in io.err
    assert "cofee tag --model" in io.err and "cofee_lib.backbones.load_backbone" in io.err
    build_backbone("bilstm-crf", TYPES, records=records, word_dim=8, char_dim=4, hidden=8).save_pretrained(
        tmp_path / "bilstm")
    status, io = export(tmp_path / "bilstm", tmp_path / "out", capsys)
    assert status == 2 and "no transformers architecture" in io.err and "cofee tag --model" in io.err
    assert not (tmp_path / "out").exists()


def test_out_rules(tagger_dirs, tmp_path, capsys):
    model = tagger_dirs["all"]
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    status, io = export(model, taken, capsys)
    assert status == 2 and "exists" in io.err and "--overwrite" in io.err
    status, io = export(model, taken, capsys, "--overwrite")
    assert status == 2 and "not an earlier cofee export" in io.err
    assert (taken / "notes.txt").read_text() == "mine"
    out = tmp_path / "hf"
    assert export(model, out, capsys)[0] == 0
    assert export(model, out, capsys)[0] == 2
    (out / "stale.txt").write_text("old")
    assert export(model, out, capsys, "--overwrite")[0] == 0           # an earlier export: replaced whole
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(model, empty, capsys, "--overwrite")[0] == 0
    status, io = export(model, model, capsys, "--overwrite")
    assert status == 2 and "would destroy that input" in io.err
    for bad in (model / "hf", model.parent):                           # inside, or holding, the model
        status, io = export(model, bad, capsys, "--overwrite")
        assert status == 2 and "lies inside the --model folder" in io.err
    assert not (model / "hf").exists()
    (tmp_path / "file").write_text("x")
    status, io = export(model, tmp_path / "file", capsys)
    assert status == 2 and "expected an output directory" in io.err
    status, io = export(tmp_path / "nowhere", tmp_path / "o", capsys)
    assert status == 2 and "not a saved CoFEE model" in io.err


def test_unknown_format_is_an_argparse_error(tagger_dirs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "--model", tagger_dirs["all"], "--out", tmp_path / "o", "--format", "onnx"])
    assert exc.value.code == 2 and "invalid choice: 'onnx'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the training option

def test_subtoken_labels_all_labels_later_subtokens_with_the_words_i_tag(records, tokenizer):
    from cofee_lib.backbones.decoding import encode_bio
    from cofee_lib.backbones.tagger import continuation_tag

    first, every = tiny_tagger(tokenizer), tiny_tagger(tokenizer, "all")
    assert first.subtoken_labels == "first"
    for f_first, f_all, rec in zip(first.featurize(records, True), every.featurize(records, True), records):
        tags = encode_bio(len(rec["tokens"]), rec["spans"], TYPES)
        word = None
        for pos, (a, b, w) in enumerate(zip(f_first["labels"], f_all["labels"], f_first["word_index"])):
            if w >= 0:                                  # a word's first sub-token: the same label in both
                word = w
                assert a == b == tags[w]
            elif b == -100:                             # [CLS] / [SEP]
                assert a == -100
                word = None
            else:                                       # a later sub-token: trained only under "all"
                assert a == -100 and b == continuation_tag(tags[word])
    assert [continuation_tag(t) for t in range(7)] == [0, 2, 2, 4, 4, 6, 6]


def test_subtoken_labels_is_saved_and_keeps_old_fingerprints(tagger_dirs, tmp_path):
    from cofee_lib.backbones import load_backbone
    from cofee_lib.checkpoints import fingerprint_parts
    from cofee_lib.errors import CofeeError
    from cofee_lib.settings import TrainConfig
    from cofee_lib.training import TrainRequest, prepare_data

    every, first = load_backbone(tagger_dirs["all"]), load_backbone(tagger_dirs["first"])
    assert every.subtoken_labels == "all" and first.subtoken_labels == "first"
    assert json.loads((tagger_dirs["first"] / "cofee.json").read_text())["subtoken_labels"] == "first"
    parts = {m.subtoken_labels: fingerprint_parts(m, [], [], TrainConfig(), 1, "w") for m in (every, first)}
    assert set(parts["first"]["model"]) == {"class", "kind", "types", "initial_weights"}   # as before the option
    assert parts["all"]["model"]["subtoken_labels"] == "all"
    cfg = json.loads((tagger_dirs["first"] / "cofee.json").read_text())
    del cfg["subtoken_labels"]                               # a tagger saved before the option existed
    (tmp_path / "cofee.json").write_text(json.dumps(cfg))
    from cofee_lib.backbones.tagger import TaggerBackbone

    assert TaggerBackbone._from_config(first.encoder, first.tokenizer, cfg, "old").subtoken_labels == "first"
    with pytest.raises(CofeeError, match="subtoken_labels must be one of first, all"):
        TaggerBackbone(first.encoder, first.tokenizer, TYPES, subtoken_labels="every")
    request = TrainRequest(backbone="mrc", train="x.jsonl", dev="y.jsonl", out=str(tmp_path / "run"),
                           subtoken_labels="all")
    with pytest.raises(CofeeError, match="--subtoken-labels applies to the tagger"):
        prepare_data(request, {"max_len": 64, "model": "tiny"})


def test_cofee_train_subtoken_labels_flag(records, tmp_path, capsys):
    from cofee_lib.records import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", records)
    args = ["train", "--model", "tiny", "--train", tmp_path / "train.jsonl", "--dev", tmp_path / "train.jsonl",
            "--preset", "smoke", "--epochs", "1", "--no-progress", "--threads", "1"]
    assert main([*args, "--backbone", "tagger", "--subtoken-labels", "all", "--out", tmp_path / "run"]) == 0
    assert json.loads((tmp_path / "run" / "best" / "cofee.json").read_text())["subtoken_labels"] == "all"
    assert json.loads((tmp_path / "run" / "train_report.json").read_text())["subtoken_labels"] == "all"
    capsys.readouterr()
    assert main([*args, "--backbone", "mrc", "--subtoken-labels", "all", "--out", tmp_path / "mrc"]) == 2
    assert "--subtoken-labels applies to the tagger" in capsys.readouterr().err
    assert not (tmp_path / "mrc").exists()


def test_cofee_finetune_keeps_the_init_taggers_subtoken_labels(records, tmp_path, capsys):
    """``cofee finetune --init TAGGER`` keeps the tagger's sub-token labelling; ``--subtoken-labels`` overrides it."""
    from cofee_lib.records import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", records)
    data = ["--train", tmp_path / "train.jsonl", "--dev", tmp_path / "train.jsonl", "--preset", "smoke",
            "--epochs", "1", "--no-progress", "--threads", "1"]
    assert main(["train", "--model", "tiny", "--backbone", "tagger", "--subtoken-labels", "all", *data,
                 "--out", tmp_path / "init"]) == 0

    def saved(run):
        return json.loads((tmp_path / run / "best" / "cofee.json").read_text())["subtoken_labels"]

    assert main(["finetune", "--init", tmp_path / "init", *data, "--out", tmp_path / "kept"]) == 0
    assert saved("kept") == "all"
    assert main(["finetune", "--init", tmp_path / "init", *data, "--subtoken-labels", "first",
                 "--out", tmp_path / "first"]) == 0
    assert saved("first") == "first"
