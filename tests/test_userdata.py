"""The user's own datasets by path (cofee_lib.userdata): the paper preset's OntoNotes 4.0, E-commerce, Twitter.

Every test writes tiny stand-in files in the layout of docs/paper_preset.md
under a temporary data root (``COFEE_DATA_DIR``); nothing is fetched.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cofee_lib import cli, datasets, pipeline, queries, userdata
from cofee_lib.errors import CofeeError, InputError
from cofee_lib.records import read_jsonl

EN_XML = Path(__file__).parent / "fixtures" / "wiki" / "enwiki-sample.xml"

# three sentences of Chinese OntoNotes in Lattice LSTM's char.bmes layout ("char tag", BMES)
ONTO = ("中 B-GPE\n国 E-GPE\n的 O\n张 B-PER\n三 E-PER\n\n"
        "北 B-LOC\n京 M-LOC\n河 E-LOC\n大 O\n\n"
        "新 B-ORG\n华 M-ORG\n社 E-ORG\n说 O\n好 S-PER\n")
# two tweets of the Twitter set of Zhang et al. 2018: IMGID lines, OTHER, a stray I- tag
TWEETS = ("IMGID:32977\nRT\tO\nObama\tB-PER\nvisits\tO\nNew\tB-LOC\nOrleans\tI-LOC\n#WILD\tB-OTHER\n\n"
          "IMGID:1766026\nThe\tI-OTHER\nApple\tB-ORG\nstore\tO\n")
# E-commerce (Ding et al. 2019): char<TAB>tag, BIOES, space characters as tokens
ECOM = "保\tB-HC\n险\tI-HC\n柜\tI-HC\n \tE-HC\n经\tO\n \tO\n太\tB-HP\n极\tE-HP\n\n酒\tS-HC\n"


@pytest.fixture
def root(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("COFEE_DATA_DIR", str(data))
    return data


def put(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def onto(root: Path) -> None:
    for split in ("train", "dev", "test"):
        put(root / "ontonotes4" / f"{split}.char.bmes", ONTO)


def twitter(root: Path, dev: str = "valid.txt") -> None:
    for name in ("train.txt", dev, "test.txt"):
        put(root / "twitter" / name, TWEETS)


# --------------------------------------------------------------------------- the paper's datasets

def test_ontonotes_standin_loads_through_datasets_with_types_and_table1_queries(root):
    onto(root)
    assert userdata.data_root() == root.resolve()
    assert userdata.is_user_dataset("ontonotes4") and not userdata.is_user_dataset("msra")
    assert userdata.check_layout("ontonotes4") == []
    splits = datasets.load_splits("ontonotes4", progress=False)
    assert list(splits) == ["train", "dev", "test"]
    dev = datasets.load_dataset("ontonotes4", "dev", progress=False)
    assert [r["id"] for r in dev] == ["ontonotes4-dev-0", "ontonotes4-dev-1", "ontonotes4-dev-2"]
    assert dev[0]["tokens"] == ["中", "国", "的", "张", "三"]
    assert dev[0]["spans"] == [[0, 1, "GPE"], [3, 4, "PER"]]
    assert dev[1]["spans"] == [[0, 2, "LOC"]] and dev[2]["spans"] == [[0, 2, "ORG"], [4, 4, "PER"]]
    assert datasets.dataset_types("ontonotes4") == ["PER", "ORG", "GPE", "LOC"]
    assert queries.get_queries("ontonotes4")["GPE"] == "按照国家, 城市, 州县划分的地理区域"
    assert userdata.user_dataset_lang("ontonotes4") == "zh"
    spec = userdata.user_dataset_spec("ontonotes4")
    assert spec["files"]["test"] == root.resolve() / "ontonotes4" / "test.char.bmes" and spec["scheme"] == "bmes"


def test_ontonotes_in_mrc_ner_json_is_the_second_layout(root):
    examples = [{"context": "中 国 的 张 三", "query": "q", "entity_label": label, "start_position": s,
                 "end_position": e, "qas_id": f"0.{k}"}
                for k, (label, s, e) in enumerate([("GPE", [0], [1]), ("PER", [3], [4]), ("ORG", [], [])], 1)]
    for split in ("train", "dev", "test"):
        put(root / "ontonotes4" / f"mrc-ner.{split}", json.dumps(examples, ensure_ascii=False))
    spec = userdata.user_dataset_spec("ontonotes4")
    assert spec["format"] == "mrc"
    [rec] = datasets.load_dataset("ontonotes4", "test", progress=False)
    assert rec["spans"] == [[0, 1, "GPE"], [3, 4, "PER"]] and rec["id"] == "ontonotes4-test-0"


def test_twitter_skips_imgid_lines_drops_other_and_reads_dev_from_valid(root):
    twitter(root)
    dev = datasets.load_dataset("twitter", "dev", progress=False)
    assert userdata.user_dataset_spec("twitter")["files"]["dev"].name == "valid.txt"
    assert dev[0]["tokens"] == ["RT", "Obama", "visits", "New", "Orleans", "#WILD"]
    assert dev[0]["spans"] == [[1, 1, "PER"], [3, 4, "LOC"]]          # OTHER dropped
    assert dev[1]["spans"] == [[1, 1, "ORG"]]                          # stray I-OTHER read as conlleval, dropped
    assert datasets.dataset_types("twitter") == ["PER", "LOC", "ORG"]
    assert set(queries.get_queries("twitter")) == {"PER", "LOC", "ORG"}
    assert userdata.user_dataset_lang("twitter") == "en"


def test_ecommerce_keeps_space_characters_as_tokens_and_needs_gazetteers(root):
    for split in ("train", "dev", "test"):
        put(root / "ecommerce" / f"{split}.txt.bieos", ECOM)
    assert userdata.check_layout("ecommerce") == [
        f"gazetteers: {root.resolve() / 'ecommerce' / 'gazetteers'}/TYPE.txt for HC, HP (one entry per line)"]
    first, second = datasets.load_dataset("ecommerce", "train", progress=False)
    assert first["tokens"] == ["保", "险", "柜", " ", "经", " ", "太", "极"]
    assert first["spans"] == [[0, 3, "HC"], [6, 7, "HP"]] and second["spans"] == [[0, 0, "HC"]]
    assert set(queries.get_queries("ecommerce")) == {"HC", "HP"}
    put(root / "ecommerce" / "gazetteers" / "HC.txt", "保险柜\n")
    assert userdata.check_layout("ecommerce") == []
    assert userdata.user_gazetteer_dir("ecommerce") == root.resolve() / "ecommerce" / "gazetteers"


# --------------------------------------------------------------------------- errors

def test_missing_file_names_the_exact_path_and_the_docs(root):
    put(root / "twitter" / "train.txt", TWEETS)
    with pytest.raises(CofeeError) as err:
        datasets.load_dataset("twitter", "test", progress=False)
    assert str(root.resolve() / "twitter" / "test.txt") in str(err.value)
    assert "docs/paper_preset.md" in str(err.value)
    missing = userdata.check_layout("twitter")
    assert missing == [f"dev: {root.resolve() / 'twitter' / 'dev.txt'} (or valid.txt)",
                       f"test: {root.resolve() / 'twitter' / 'test.txt'}"]


def test_malformed_line_is_named_by_file_and_line_even_after_the_imgid_fix(root):
    twitter(root)
    bad = put(root / "twitter" / "test.txt", "IMGID:1\nObama\tB-PER\nParis\tX-LOC\n")
    with pytest.raises(InputError) as err:
        datasets.load_dataset("twitter", "test", progress=False)
    assert err.value.path == str(bad) and err.value.line == 3
    assert "X-LOC" in str(err.value) and "cofee-userdata" not in str(err.value)


def test_an_undeclared_type_is_an_error_naming_the_file(root):
    onto(root)
    bad = put(root / "ontonotes4" / "dev.char.bmes", "中 S-NORP\n")
    with pytest.raises(InputError, match=r"dev.char.bmes: sentence 0 .*'NORP'.*neither lists in types"):
        datasets.load_dataset("ontonotes4", "dev", progress=False)
    assert bad.exists()


def test_builtin_datasets_are_untouched_and_cannot_be_shadowed(root):
    put(root / "user_datasets.json", json.dumps({"wnut16": {"lang": "en", "layouts": []}}))
    assert datasets.dataset_types("wnut16") == ["PER", "LOC", "ORG"]   # the built-in answer, no registry read
    assert not userdata.is_user_dataset("conll2003")
    with pytest.raises(InputError, match="user_datasets.json: 'wnut16' is a built-in dataset"):
        userdata.is_user_dataset("ontonotes4")


# --------------------------------------------------------------------------- your own data

def test_dir_target_with_dataset_json(tmp_path, root):
    folder = tmp_path / "weibo"
    for split in ("train", "dev", "test"):
        put(folder / f"{split}.conll", "张\tB-PER.NAM\n三\tI-PER.NAM\n去\tO\n北\tB-GPE.NAM\n京\tI-GPE.NAM\n")
    put(folder / "dataset.json", json.dumps({
        "lang": "zh", "types": ["PER", "GPE"], "map": {"PER.NAM": "PER", "GPE.NAM": "GPE"},
        "format": "conll", "scheme": "bio", "files": {"train": "train.conll", "dev": "dev.conll", "test": "test.conll"},
        "queries": {"PER": "人名"}}))
    target = f"dir:{folder}"
    assert userdata.is_user_dataset(target) and userdata.check_layout(target) == []
    [rec] = datasets.load_dataset(target, "dev", progress=False)
    name = userdata.safe_name(target)
    assert name.startswith("dir-weibo-") and "/" not in name and rec["id"] == f"{name}-dev-0"
    assert rec["spans"] == [[0, 1, "PER"], [3, 4, "GPE"]]
    assert datasets.dataset_types(target) == ["PER", "GPE"]
    assert queries.get_queries(target) == {"PER": "人名", "GPE": "Find GPE entities"}


def test_the_registry_answers_for_user_datasets_and_the_old_names_still_import(tmp_path, root):
    from cofee_lib import gazetteers
    from cofee_lib.datasets import user

    onto(root)
    twitter(root)
    assert datasets.dataset_lang("ontonotes4") == "zh" and datasets.dataset_lang("twitter") == "en"
    assert datasets.is_user_dataset("twitter") and not datasets.is_builtin("twitter")
    assert datasets.dataset_names() == ["conll2003", "wnut16", "msra", "ontonotes4", "ecommerce", "twitter"]
    assert datasets.gazetteer_set("ontonotes4") == "zh-ontonotes4"
    assert datasets.target_arg("twitter") == "twitter"
    assert userdata.user_dataset_spec is user.user_dataset_spec and userdata.load_user_splits is user.load_user_splits
    assert userdata.user_queries is queries.user_queries and userdata.copy_gazetteers is gazetteers.copy_gazetteers
    assert userdata.target_arg is datasets.target_arg and userdata.is_user_dataset is datasets.is_user_dataset
    with pytest.raises(CofeeError, match="split_file applies to wnut16 and msra"):
        datasets.load_splits("twitter", split_file=tmp_path / "x.json")


def test_dir_target_without_dataset_json_guesses_files_scheme_types_and_language(tmp_path, root):
    folder = tmp_path / "mine"
    put(folder / "train.txt", "Ada B-PER\nLovelace E-PER\nin O\nLondon S-LOC\n")
    put(folder / "valid.txt", "Ada S-PER\n")
    put(folder / "test.jsonl", json.dumps({"id": "x", "tokens": ["Paris"], "spans": [[0, 0, "LOC"]]}) + "\n")
    target = f"dir:{folder}"
    spec = userdata.user_dataset_spec(target)
    assert spec["files"]["dev"] == folder.resolve() / "valid.txt" and spec["scheme"] == "auto"
    assert datasets.load_dataset(target, "train", progress=False)[0]["spans"] == [[0, 1, "PER"], [3, 3, "LOC"]]
    assert datasets.load_dataset(target, "test", progress=False)[0]["spans"] == [[0, 0, "LOC"]]
    assert datasets.dataset_types(target) == ["LOC", "PER"]
    assert userdata.user_dataset_lang(target) == "en"
    assert queries.get_queries(target) == {"LOC": "Find LOC entities", "PER": "Find PER entities"}


def test_bad_dataset_json_and_missing_folder(tmp_path, root):
    put(tmp_path / "d" / "dataset.json", '{"lang": "fr"}')
    with pytest.raises(InputError, match=r"dataset.json: .*lang must be one of en, zh"):
        userdata.user_dataset_spec(f"dir:{tmp_path / 'd'}")
    put(tmp_path / "e" / "dataset.json", '{"lang": "en",\n "typo": 1}')
    with pytest.raises(InputError, match="unknown key"):
        userdata.user_dataset_spec(f"dir:{tmp_path / 'e'}")
    with pytest.raises(CofeeError, match="not found"):
        userdata.user_dataset_spec(f"dir:{tmp_path / 'nowhere'}")


def test_one_entry_in_the_data_roots_registry_adds_a_dataset(root):
    put(root / "user_datasets.json", json.dumps({"weibo": {
        "lang": "zh", "types": ["PER"], "queries": "ontonotes4",
        "layouts": [{"format": "chars", "scheme": "bmes", "files": {"train": "a.txt", "dev": "b.txt", "test": "c.txt"}}]}}))
    for name in ("a.txt", "b.txt", "c.txt"):
        put(root / "weibo" / name, "张 B-PER\n三 E-PER\n")
    assert "weibo" in userdata.user_dataset_names()
    assert datasets.load_dataset("weibo", "test", progress=False)[0]["spans"] == [[0, 1, "PER"]]
    assert queries.get_queries("weibo") == {"PER": "人名和虚构的人物形象"}


# --------------------------------------------------------------------------- the command

def test_paper_data_check_counts_and_exits_2_when_something_is_missing(root, capsys):
    onto(root)
    assert cli.main(["paper-data", "--check", "ontonotes4"]) == 0
    out = capsys.readouterr().out
    assert "train found" in out and "3 sentences, 14 tokens, 5 entities (GPE 1, LOC 1, ORG 1, PER 2)" in out
    assert cli.main(["paper-data", "--check", "ontonotes4", "twitter"]) == 2
    out = capsys.readouterr().out
    assert "MISSING  expected data/twitter/train.txt" in out and "INCOMPLETE" in out
    assert cli.main(["paper-data", "--check", "wiki"]) == 2
    assert "en  MISSING  expected data/wiki/enwiki-YYYYMMDD-pages-articles.xml.bz2" in capsys.readouterr().out
    put(root / "wiki" / "enwiki-20200401-pages-articles.xml.bz2", "x")
    put(root / "wiki" / "zhwiki-20200401-pages-articles.xml.bz2", "x")
    assert cli.main(["paper-data", "--check", "wiki", "--json"]) == 0
    [wiki] = json.loads(capsys.readouterr().out)["results"]
    assert wiki["ok"] and wiki["dumps"]["zh"][0]["file"].endswith("zhwiki-20200401-pages-articles.xml.bz2")
    assert cli.main(["paper-data"]) == 0
    layout = capsys.readouterr().out
    assert "data/ecommerce/train.txt.bieos" in layout and "data/ontonotes4/mrc-ner.train" in layout


def test_cli_errors_exit_2_naming_the_path(root, capsys):
    onto(root)
    put(root / "ontonotes4" / "test.char.bmes", "中 B-GPE\n国 Q\n")
    assert cli.main(["paper-data", "--check", "ontonotes4"]) == 2
    assert "test.char.bmes:2" in capsys.readouterr().out
    assert cli.main(["data", "twitter", "--split", "dev", "--quiet"]) == 2
    assert str(root.resolve() / "twitter" / "dev.txt") in capsys.readouterr().err


# --------------------------------------------------------------------------- corpora

def test_build_corpora_uses_the_users_gazetteers_and_follows_their_content(root, tmp_path, monkeypatch):
    from cofee_lib import gazetteers

    twitter(root)
    gaz = root / "twitter" / "gazetteers"
    put(gaz / "PER.txt", "Charles Babbage\n")
    put(gaz / "LOC.txt", "London\nItaly\n")

    def no_kit_gazetteers(*args, **kwargs):
        raise AssertionError("the kit's gazetteers were built although the user gave theirs")

    monkeypatch.setattr(gazetteers, "build_gazetteers", no_kit_gazetteers)
    monkeypatch.setattr(pipeline, "build_gazetteers", no_kit_gazetteers, raising=False)  # bound at import there
    work = tmp_path / "work"
    result = pipeline.build_corpora("twitter", work, lang="en", dumps=(str(EN_XML),), progress=False)
    assert Path(result["gazetteers"]).name == "user-twitter"
    assert result["gazetteer_counts"] == {"LOC": 2, "PER": 1}
    loaded = gazetteers.load_gazetteers(result["gazetteers"])
    assert loaded == {"PER": {"Charles Babbage"}, "LOC": {"London", "Italy"}} and loaded.lang == "en"
    assert str(gaz.resolve()) in loaded.provenance["source"]
    typed = {(" ".join(r["tokens"][s:e + 1]), t) for r in read_jsonl(result["d_s"]) for s, e, t in r["spans"]}
    assert ("Charles Babbage", "PER") in typed and ("London", "LOC") in typed
    assert {t for _, t in typed} <= {"PER", "LOC"}
    assert pipeline.target_types("twitter", result["gazetteers"]) == ["PER", "LOC"]

    put(gaz / "ORG.txt", "Science Museum\n")       # new content: copied and matched again
    again = pipeline.build_corpora("twitter", work, lang="en", dumps=(str(EN_XML),), progress=False)
    assert again["gazetteer_counts"] == {"LOC": 2, "ORG": 1, "PER": 1}
    half = pipeline.build_corpora("twitter", work, lang="en", dumps=(str(EN_XML),), gazetteer_fraction=0.5,
                                  progress=False)
    assert Path(half["gazetteers"]).name == "user-twitter-f0.5-s0" and half["gazetteer_counts"]["LOC"] == 1


def test_build_corpora_refuses_a_dataset_whose_gazetteers_are_required(root, tmp_path):
    for split in ("train", "dev", "test"):
        put(root / "ecommerce" / f"{split}.txt.bieos", ECOM)
    with pytest.raises(CofeeError, match=r"needs its gazetteers: expected .*ecommerce/gazetteers/TYPE.txt"):
        pipeline.build_corpora("ecommerce", tmp_path / "work", lang="zh", dumps=(str(EN_XML),), progress=False)
    assert not (tmp_path / "work" / "corpus").exists()    # refused before reading any dump


def test_weak_takes_user_datasets_and_folders_as_targets(root, tmp_path, capsys):
    onto(root)
    parser = cli.build_parser()
    assert parser.parse_args(["weak", "--target", "ontonotes4", "--out", "x"]).target == "ontonotes4"
    (tmp_path / "mine").mkdir()
    assert parser.parse_args(["weak", "--target", f"dir:{tmp_path / 'mine'}", "--out", "x"]).target.startswith("dir:")
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["weak", "--target", "nope", "--out", "x"])
    assert exit_.value.code == 2 and "ontonotes4, ecommerce, twitter" in capsys.readouterr().err
