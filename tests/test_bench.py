"""The benchmark suite of bench/: its parts on hand-made inputs, and a tiny-size run of every benchmark.

The fast tests check the pieces the figures rest on (the FLOP formula, the authors' fixed
padding, the repeated dump, the reference matcher, memory of a subprocess, the table, the
command's errors). The slow tests run each benchmark at ``size="tiny"`` on the real data
(fetched through cofee_lib.sources.fetch) to prove it works end to end; they check that
the measurements are there and consistent, never the speeds themselves, which depend on the
machine. The full-size suite is not a test: ``make bench``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import common, run_all  # noqa: E402
from bench.bench_anchors import repeated_dump  # noqa: E402
from bench.bench_match import NaiveMatcher  # noqa: E402
from bench.bench_train import pad_batch, sequence_flops  # noqa: E402
from cofee_lib.errors import CofeeError  # noqa: E402

WIKI_BZ2 = REPO / "tests" / "fixtures" / "wiki" / "enwiki-sample.xml.bz2"


# --------------------------------------------------------------------------- fast: the pieces

def test_sequence_flops_is_the_documented_formula():
    # 6 * P * n + 12 * L * n^2 * h per sequence: P=10, L=2, h=4, n=3 and n=5
    assert sequence_flops(10, 2, 4, [3, 5]) == 6 * 10 * 8 + 12 * 2 * 4 * (9 + 25)
    assert sequence_flops(10, 2, 4, []) == 0.0


def test_pad_batch_pads_to_the_fixed_length_and_keeps_the_useful_tokens(tiny_mrc):
    model, records = tiny_mrc
    features = model.featurize(records, train=True)
    batch = model.collate(features)
    padded = pad_batch(batch, 150, model._pad_id)
    for key in ("input_ids", "attention_mask", "word_index", "start_labels", "end_labels"):
        assert padded[key].shape == (len(features), 150)
    assert int(padded["n_useful"]) == int(batch["n_useful"]) == int(batch["attention_mask"].sum())
    t = batch["input_ids"].shape[1]
    assert (padded["start_labels"][:, t:] == -100).all() and (padded["attention_mask"][:, t:] == 0).all()
    assert (padded["input_ids"][:, t:] == model._pad_id).all()
    # a shorter fixed length cuts, as the authors' truncation did
    cut = pad_batch(batch, 3, model._pad_id)
    assert cut["input_ids"].shape == (len(features), 3) and int(cut["n_useful"]) == 3 * len(features)
    # the padded batch trains: the loss is finite
    assert float(model(padded)["loss"].detach()) > 0


def test_flops_of_batches_counts_useful_and_executed_tokens(tiny_mrc):
    from bench.bench_train import flops_of_batches, non_embedding_parameters

    model, _ = tiny_mrc
    total = sum(p.numel() for p in model.parameters())
    embeddings = sum(p.numel() for p in model.encoder.embeddings.parameters())
    assert non_embedding_parameters(model) == total - embeddings
    tight = flops_of_batches(model, [{"padded_len": 5, "lengths": [5, 5]}])
    assert tight["model_flops"] == tight["executed_flops"] > 0
    loose = flops_of_batches(model, [{"padded_len": 10, "lengths": [5, 5]}])
    assert loose["model_flops"] == tight["model_flops"] and loose["executed_flops"] > 2 * loose["model_flops"]


def test_repeated_dump_is_a_valid_dump_with_unique_pages(tmp_path):
    from cofee_lib.wiki import anchor_sentences, iter_pages

    out = repeated_dump(WIKI_BZ2, 3, tmp_path / "x3.xml.bz2")
    once = list(iter_pages(WIKI_BZ2, progress=False))
    thrice = list(iter_pages(out, progress=False))
    assert len(thrice) == 3 * len(once)
    assert len({p.title for p in thrice}) == len(thrice) and len({p.id for p in thrice}) == len(thrice)
    assert {p.title for p in thrice[:len(once)]} == {p.title for p in once}
    stats_one, stats_three = {}, {}
    n_one = sum(1 for _ in anchor_sentences(WIKI_BZ2, progress=False, stats=stats_one))
    n_three = sum(1 for _ in anchor_sentences(out, progress=False, stats=stats_three))
    assert n_three == 3 * n_one > 0
    assert stats_three["redirects"] == 3 * stats_one["redirects"]


def test_repeated_dump_rejects_a_file_without_pages(tmp_path):
    import bz2

    bad = tmp_path / "bad.xml.bz2"
    bad.write_bytes(bz2.compress(b"<mediawiki></mediawiki>"))
    with pytest.raises(CofeeError, match="no <page>"):
        repeated_dump(bad, 2, tmp_path / "out.xml.bz2")
    assert not (tmp_path / "out.xml.bz2").exists()


def test_reference_matcher_agrees_with_the_kit_on_tricky_cases():
    from cofee_lib.gazetteers import Gazetteers
    from cofee_lib.matching import GazetteerMatcher

    gaz = Gazetteers({"LOC": {"New York", "York", "Paris", "Georgia"},
                      "ORG": {"New York Stock Exchange", "Apple"},
                      "PER": {"Georgia", "John Smith"}},  # Georgia is ambiguous: skipped
                     lang="en", case_sensitive=True, all_caps_title=True)
    sentences = [["The", "New", "York", "Stock", "Exchange", "opened"],
                 ["NEW", "YORK", "and", "PARIS", "are", "cities"],
                 ["John", "Smith", "visited", "Georgia", "and", "York"],
                 ["apple", "Apple", "new", "york", "New", "Yorker"], []]
    kit = GazetteerMatcher(gaz).find_many(sentences)
    ref = [NaiveMatcher(gaz).find(s) for s in sentences]
    assert ref == kit
    assert ref[0] == [(1, 4, "ORG")] and ref[1] == [(0, 1, "LOC"), (3, 3, "LOC")]
    assert ref[2] == [(0, 1, "PER"), (5, 5, "LOC")]


def test_run_command_reports_time_and_the_memory_of_the_command_itself():
    small = common.run_command(common.python_command("-c", "pass"))
    big = common.run_command(common.python_command("-c", "x = bytearray(300 * 2**20); x[::4096] = b'1' * len(x[::4096])"))
    assert small["seconds"] > 0 and small["max_rss_mb"] < 100  # not the size of this (large) test process
    assert big["max_rss_mb"] > 300
    with pytest.raises(RuntimeError, match="exit 3"):
        common.run_command(common.python_command("-c", "import sys; sys.exit(3)"))


def test_matmul_peak_and_table_rendering():
    import torch

    peak = common.matmul_peak(torch.float32, 64, repeats=2)
    assert peak["gflops"] > 0 and peak["n"] == 64
    rows = [common.row("1 x", "rate", 2000.0, 1000.0, "tok/s", 2.0, ">= 2x", True),
            common.row("1 x", "share", 5.0, 100.0, "GFLOP/s", 0.05, ">= 45%", False, share=True),
            common.row("2 y", "gpu", None, None, "", None, "runs", None)]
    table = common.markdown_table(rows).splitlines()
    assert table[0].startswith("| benchmark | metric | kit | reference | ratio | target | met? |")
    assert "2,000 tok/s" in table[2] and "2.00x" in table[2] and table[2].endswith("| yes |")
    assert "5.0%" in table[3] and "**no**" in table[3]
    assert table[4].count("n/a") == 4


def test_only_names_are_checked_and_put_in_suite_order():
    assert run_all.parse_only(None) == list(run_all.BENCHMARKS)
    assert run_all.parse_only(["match,train", "kmeans"]) == ["train", "kmeans", "match"]
    with pytest.raises(CofeeError, match="unknown benchmark"):
        run_all.parse_only(["train,fast"])


def test_cofee_bench_errors_are_one_line_with_status_2(tmp_path, cofee_cli):
    missing = tmp_path / "none.json"
    res = cofee_cli("bench", "--show", "--out", str(missing))
    assert res.returncode == 2 and "no results yet" in res.stderr and "Traceback" not in res.stderr
    res = cofee_cli("bench", "--only", "nope", "--out", str(tmp_path / "b.json"))
    assert res.returncode == 2 and "unknown benchmark(s) nope" in res.stderr
    assert not (tmp_path / "b.json").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = cofee_cli("bench", "--show", "--out", str(bad))
    assert res.returncode == 2 and "not valid JSON" in res.stderr


# --------------------------------------------------------------------------- slow: tiny runs on real data

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A shared work folder (derived inputs are cached there) and one torch thread: on a busy
    2-core machine a second OpenMP thread mostly waits, and these runs only prove that things work."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path_factory.mktemp("bench-work")
    torch.set_num_threads(threads)


def _check_summary(result, name):
    assert result["name"] == name and result["size"] == "tiny" and result["summary"]
    for r in result["summary"]:
        assert set(r) >= {"benchmark", "metric", "kit", "reference", "ratio", "target", "met"}
        if r["kit"] is not None and r["reference"] is not None and r["ratio"] is not None:
            assert r["ratio"] > 0


@pytest.mark.slow
@pytest.mark.bf16
def test_train_benchmark_tiny(work):
    from bench import bench_train

    res = bench_train.run("tiny", work)
    _check_summary(res, "train")
    v = res["datasets"]["wnut16"]["variants"]
    for name in ("reference_pad150_fp32", "kit_fp32", "kit_bf16"):
        assert v[name]["steps"] == bench_train.SIZES["tiny"]["steps"]
        assert v[name]["useful_tokens"] > 0 and v[name]["seconds"] > 0
        assert v[name]["executed_flops"] >= v[name]["model_flops"] > 0
    # the engine's own token count is the one the hook saw; the same batches in fp32 and bf16
    assert v["kit_fp32"]["useful_tokens"] == v["kit_fp32"]["useful_tokens_recorded"]
    assert v["kit_fp32"]["useful_tokens"] == v["kit_bf16"]["useful_tokens"]
    assert v["reference_pad150_fp32"]["padding_fraction"] > v["kit_fp32"]["padding_fraction"]
    assert res["peaks"]["used"]["bf16"]["gflops"] > 0


@pytest.mark.slow
def test_kmeans_benchmark_tiny(work):
    from bench import bench_kmeans

    res = bench_kmeans.run("tiny", work)
    _check_summary(res, "kmeans")
    assert res["vectors"]["shape"][0] == bench_kmeans.SIZES["tiny"]["n"]
    assert res["sklearn"]["inertia"] > 0 and res["kit_cpu"]["inertia"] > 0
    # the two solve the same problem: inertias within a few percent of each other
    assert 0.9 < res["inertia_ratio_kit_over_sklearn"] < 1.1


@pytest.mark.slow
def test_anchors_benchmark_tiny(work):
    from bench import bench_anchors

    res = bench_anchors.run("tiny", work)
    _check_summary(res, "anchors")
    tools = res["results"]["x4"]["tools"]
    for name in ("bzcat", "kit_read_only", "kit_workers1", "kit_workers2"):
        assert tools[name]["mb_per_s"] > 0 and tools[name]["max_rss_mb"] > 0
    assert res["results"]["x4"]["compressed_mb"] > res["results"]["x1"]["compressed_mb"]


@pytest.mark.slow
def test_match_benchmark_tiny(work):
    from bench import bench_match

    res = bench_match.run("tiny", work)
    _check_summary(res, "match")
    assert res["reference"]["agreement"] == 1.0  # the hand-written matcher finds the same spans
    assert res["corpus_match"]["sentences_out"] == res["corpus_match"]["reference"]["sentences_out"]
    assert set(res["gazetteers"]["entries"]) == {"PER", "LOC", "ORG"}


@pytest.mark.slow
@pytest.mark.bf16
def test_predict_benchmark_tiny(work):
    from bench import bench_predict

    res = bench_predict.run("tiny", work)
    _check_summary(res, "predict")
    assert res["sentences"] == bench_predict.SIZES["tiny"]["sentences"]
    for kind in ("mrc", "tagger"):
        r = res["results"][kind]
        assert r["kit"]["sentences_per_s"] > 0 and r["reference"]["sentences_per_s"] > 0
    assert res["results"]["mrc"]["kit"]["features"] == res["results"]["mrc"]["reference"]["features"]
    assert "sentences/s" in res["results"]["mrc"]["cli"]["message"][0]


@pytest.mark.slow
def test_scale_benchmark_tiny(work):
    from bench import bench_scale

    res = bench_scale.run("tiny", work)
    _check_summary(res, "scale")
    sizes = bench_scale.SIZES["tiny"]
    for n in sizes["sentences"]:
        entry = res["results"][str(n)]
        feat, epoch = entry["featurise"], entry["epoch"]
        assert feat["records"] == n and feat["features"] >= n and feat["features_per_s"] > 0
        assert epoch["features"] == feat["features"] and epoch["useful_tokens"] == feat["tokens"]
        assert feat["max_rss_mb"] > 0 and epoch["max_rss_mb"] > 0
        assert not (work / "bench" / "scale" / f"run-{n}").exists()        # the store is removed after each size
    first = res["results"][str(sizes["in_memory"][0])]
    assert first["in_memory"]["features"] == first["featurise"]["features"]
    assert first["in_memory"]["epoch"]["batches_sha256"] == first["epoch"]["batches_sha256"]
    flat = [r for r in res["summary"] if r["target"] == f"<= {bench_scale.TARGET_FLAT}x"]
    assert len(flat) == 2 and all(r["met"] is not None and "200 -> 1,000 sentences" in r["metric"] for r in flat)
    assert [r["met"] for r in res["summary"] if r["target"] == "identical"] == [True]


def test_synthetic_d_g_repeats_the_records_with_fresh_ids(tmp_path):
    from bench.bench_scale import synthetic_d_g
    from cofee_lib.records import read_jsonl, write_jsonl

    source = tmp_path / "src.jsonl"
    write_jsonl(source, [{"id": str(i), "tokens": ["w"] * (i + 1), "spans": [[0, 0, "X"]]} for i in range(3)])
    out = read_jsonl(synthetic_d_g(source, 7, tmp_path / "x7.jsonl"))
    assert [r["id"] for r in out] == ["0~0", "1~0", "2~0", "0~1", "1~1", "2~1", "0~2"]
    assert [len(r["tokens"]) for r in out] == [1, 2, 3, 1, 2, 3, 1]


@pytest.mark.slow
def test_cofee_bench_command_writes_results_and_keeps_other_entries(work, tmp_path, capsys):
    from cofee_lib import cli

    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"format": run_all.RESULTS_FORMAT, "size": "tiny",
                               "benchmarks": {"match": {"name": "match", "summary": [], "kept": True}}}))
    status = cli.main(["bench", "--size", "tiny", "--only", "kmeans", "--out", str(out), "--work-dir", str(work)])
    assert status == 0
    data = json.loads(out.read_text())
    assert set(data["benchmarks"]) == {"kmeans", "match"} and data["benchmarks"]["match"]["kept"]
    assert data["summary"] and data["summary"][0]["benchmark"].startswith("2 k-means")
    assert "| 2 k-means CPU |" in capsys.readouterr().out
    assert data["benchmarks"]["kmeans"]["machine"]["cores"] >= 1


def _scale_entry(n=1000, features=1100, tokens=44_000, sum_sq=2_200_000):
    return {"machine": {"cpu": "test CPU", "cores": 2}, "finished": "2026-12-02T00:00:00+00:00",
            "results": {"10": {"featurise": {}}, str(n): {
                "d_g_bytes": 300 * n, "epoch": {"max_rss_mb": 500.0},
                "featurise": {"records": n, "features": features, "tokens": tokens, "sum_sq_tokens": sum_sq,
                              "value_bytes": 8 * tokens, "features_per_s": 1000.0, "max_rss_mb": 600.0,
                              "query_tokens": {"Entity": 2, "PER": 10, "LOC": 30, "ORG": 20}}}}}


def test_paper_scale_extrapolation_follows_its_formulas():
    from bench import paper_scale

    m = paper_scale.measured(_scale_entry())
    assert m["sentences"] == 1000 and m["features_per_sentence"] == pytest.approx(1.1)
    assert m["tokens_per_feature"] == pytest.approx(40.0) and m["sq_tokens_per_feature"] == pytest.approx(2000.0)
    ex = paper_scale.extrapolate(m, d_s_share=0.25, epochs={"esi": 5, "nee": 6, "fet": 5})
    esi, nee = ex["stages"]["esi"], ex["stages"]["nee"]
    n_g = paper_scale.PAPER_D_G_SENTENCES
    assert esi["features"] == pytest.approx(1.1 * n_g)
    p, layers, hidden = (paper_scale.BERT_BASE[k] for k in ("non_embedding_parameters", "layers", "hidden"))
    assert esi["flops"] == pytest.approx(5 * 1.1 * n_g * (6 * p * 40 + 12 * layers * hidden * 2000))
    # NEE: a quarter of D_g, three types, each with its own query in place of ESI's (2 sub-tokens)
    assert nee["features"] == pytest.approx(3 * 0.25 * 1.1 * n_g)
    assert nee["tokens_per_feature"] == pytest.approx(40 + (8 + 28 + 18) / 3)
    per_type = [(40 + d, 2000 + 2 * d * 40 + d * d) for d in (8, 28, 18)]
    want = sum(0.25 * 1.1 * n_g * (6 * p * t + 12 * layers * hidden * sq) for t, sq in per_type)
    assert nee["flops"] == pytest.approx(6 * want * (1 + 1 / 3))
    assert ex["context_tokens_per_feature"] == pytest.approx(40 - 2 - 3)


def test_paper_scale_table_is_written_between_its_markers_only(tmp_path):
    from bench import paper_scale

    results = tmp_path / "results"
    results.mkdir()
    (results / "corpus.json").write_text(json.dumps({"counts": {"sentences_kept": 1000}}))
    (results / "nee.json").write_text(json.dumps({"target": "wnut16", "gazetteer_labels": {"sentences": 200}}))
    block = paper_scale.table(_scale_entry(), results)
    assert block.count("\n| ") >= 4 and "| ESI |" in block and "20.0%" in block and "test CPU" in block
    doc = tmp_path / "doc.md"
    doc.write_text(f"before\n{paper_scale.BEGIN}\nold\n{paper_scale.END}\nafter\n")
    paper_scale.write_doc(doc, block)
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text and "| ESI |" in text
    with pytest.raises(CofeeError, match="no .* block to replace"):
        paper_scale.write_doc(tmp_path / "results" / "corpus.json", block)
    old = _scale_entry()
    del old["results"]["1000"]["featurise"]["sum_sq_tokens"]
    with pytest.raises(SystemExit, match="rerun"):
        paper_scale.measured(old)


def test_bench_readme_block_lists_the_rows_and_where_each_ran(tmp_path, monkeypatch):
    row = common.row("2 k-means CPU", "speed", 1.0, 2.0, "s", 2.0, ">= 1.43x", True)
    results = {"summary": [row], "benchmarks": {"kmeans": {
        "finished": "2026-12-02T19:00:00+00:00", "wall_seconds": 90.0, "summary": [row],
        "machine": {"cpu": "AMD EPYC", "cores": 2, "torch_threads": 1, "gpu": None, "load_average_end": [1.25, 1, 1]}}}}
    block = run_all.readme_block(results)
    assert "| 2 k-means CPU | speed | 1 s | 2 s | 2.00x | >= 1.43x | yes |" in block
    assert "- kmeans: 2026-12-02, AMD EPYC, 2 cores, 1 torch thread(s), load average 1.2 at its end, 1.5 min" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{run_all.README_BEGIN}\nstale\n{run_all.README_END}\ntail\n")
    monkeypatch.setattr(common, "REPO", tmp_path)
    run_all._write_readme(type("A", (), {"readme": True})(), results)
    text = readme.read_text()
    assert "stale" not in text and block in text and text.endswith("tail\n")
