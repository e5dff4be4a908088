"""Encoders (tiny, local directories, hub names offline, casing) and the queries table."""
import time

import pytest

from cofee_lib import encoders
from cofee_lib.errors import CofeeError
from cofee_lib.queries import dataset_names, get_queries, queries_for_types


# ------------------------------------------------------------------ queries (Table 1)
def test_table1_queries_exactly_as_printed():
    onto = get_queries("ontonotes4")
    assert onto == {"PER": "人名和虚构的人物形象", "ORG": "组织包括公司, 政府党派, 学校, 政府, 新闻机构",
                    "LOC": "山脉, 河流自然景观的地点", "GPE": "按照国家, 城市, 州县划分的地理区域"}
    ecom = get_queries("ecommerce")
    assert ecom["HP"] == "找出文中的商标, 包括公司, 品牌"
    assert ecom["HC"].startswith("找出文中的产品, 包括商品, 作品,") and ecom["HC"].endswith("科技产品, 其他产品")
    tw = get_queries("twitter")
    assert tw["PER"] == "person entities are named persons or family."
    assert tw["ORG"] == ("organization entities are limited to named corporate, governmental, "
                         "or other organizational entities.")
    assert tw["LOC"].startswith("location entities are the name of politically or geographically defined")
    assert get_queries("wnut16") == tw
    assert get_queries("esi") == {"Entity": "Find Entities"}


def test_dataset_queries_cover_their_types():
    assert set(get_queries("conll2003")) == {"PER", "LOC", "ORG", "MISC"}
    assert set(get_queries("msra")) == {"PER", "LOC", "ORG"}
    assert all("\u4e00" <= q[0] <= "\u9fff" for q in get_queries("msra").values())
    assert get_queries("CoNLL03") == get_queries("conll2003")
    assert {"twitter", "conll2003", "wnut16", "msra", "ontonotes4", "ecommerce", "esi"} <= set(dataset_names())
    with pytest.raises(CofeeError, match="no queries for"):
        get_queries("nope")


def test_queries_for_types():
    assert queries_for_types(["Entity"]) == {"Entity": "Find Entities"}
    assert queries_for_types(["PER", "LOC"], dataset="msra") == {t: get_queries("msra")[t] for t in ("PER", "LOC")}
    assert queries_for_types(["GPE"])["GPE"] == get_queries("ontonotes4")["GPE"]
    with pytest.raises(CofeeError, match="has no query"):
        queries_for_types(["MISC"], dataset="msra")


# ------------------------------------------------------------------ tiny encoder
RECORDS = [{"id": "1", "tokens": ["John", "Smith", "visited", "Paris", "."], "spans": []},
           {"id": "2", "tokens": ["北", "京", "大", "学"], "spans": []}]


def test_tiny_encoder_is_small_deterministic_and_cased():
    import torch

    enc1, tok1, desc = encoders.load_encoder("tiny", records=RECORDS, seed=3, tiny_tokenizer="records")
    enc2, tok2, _ = encoders.load_encoder("tiny", records=RECORDS, seed=3, tiny_tokenizer="records")
    assert "tiny" in desc
    cfg = enc1.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) == (2, 64, 2, 128)
    assert tok1.get_vocab() == tok2.get_vocab()
    for (n1, p1), (n2, p2) in zip(enc1.named_parameters(), enc2.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)
    assert getattr(enc1, "pooler", None) is None
    # cased: "John" and "john" differ; record words are whole pieces; CJK characters known
    assert tok1.tokenize("John") == ["John"]
    assert tok1.tokenize("john") != ["John"]
    assert tok1.unk_token_id not in tok1("北京", add_special_tokens=False)["input_ids"]


def test_cased_tokenizer_keeps_case_and_uncased_lowercases():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Washington", "washington", "visited"]
    cased = encoders.wordpiece_tokenizer(vocab, lowercase=False)
    uncased = encoders.wordpiece_tokenizer(vocab, lowercase=True)
    assert cased.tokenize("Washington visited") == ["Washington", "visited"]
    assert uncased.tokenize("Washington visited") == ["washington", "visited"]
    ids = cased(["Washington"], is_split_into_words=True)["input_ids"]
    assert cased.convert_ids_to_tokens(ids)[1] == "Washington"


def test_local_directory_round_trip(tmp_path):
    enc, tok, _ = encoders.load_encoder("tiny", records=RECORDS, tiny_tokenizer="records")
    enc.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    enc2, tok2, desc = encoders.load_encoder(str(tmp_path))
    assert desc == str(tmp_path)
    assert tok2.tokenize("John visited") == tok.tokenize("John visited")
    assert tok2.is_fast


def test_bad_model_names(tmp_path):
    with pytest.raises(CofeeError, match="directory not found"):
        encoders.load_encoder(str(tmp_path / "missing" / "model"))
    (tmp_path / "file.bin").write_text("x")
    with pytest.raises(CofeeError, match="is a file"):
        encoders.load_encoder(str(tmp_path / "file.bin"))
    with pytest.raises(CofeeError, match="no config.json"):
        encoders.load_encoder(str(tmp_path))
    with pytest.raises(CofeeError, match="unknown embedded"):
        encoders.load_encoder("embedded:bert")


def test_hub_name_fails_fast_when_offline_env_is_set(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.monotonic()
    with pytest.raises(CofeeError, match="--model DIR"):
        encoders.load_encoder("bert-base-cased")
    assert time.monotonic() - t < 10


def test_hub_name_fails_fast_when_hub_unreachable(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(encoders, "HUB_HOST", "hub.invalid")     # RFC 2606: never resolves
    t = time.monotonic()
    with pytest.raises(CofeeError, match="not reachable"):
        encoders.load_encoder("some-org/some-model")
    assert time.monotonic() - t < encoders.HUB_PROBE_SECONDS + 8


@pytest.mark.slow
def test_embedded_minilm_is_uncased():
    enc, tok, desc = encoders.load_encoder("embedded:minilm")
    assert desc.startswith("embedded:minilm")
    assert enc.config.hidden_size == 384 and enc.config.num_hidden_layers == 6
    # its own settings lower-case: "Washington" and "washington" are the same pieces, not [UNK]
    assert tok.tokenize("Washington") == tok.tokenize("washington") == ["washington"]
    assert tok.unk_token not in tok.tokenize("John Smith visited Paris")
