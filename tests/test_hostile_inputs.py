"""Hostile inputs through the real ``cofee`` command line: one error line, exit 2, nothing touched.

Every case runs :func:`cofee_lib.cli.main` in-process (one through ``python -m
cofee_lib``) and checks the kit's promise: exit status 2, exactly one stderr
line ``cofee <command>: error: <file>...`` naming the file, no traceback, no
output file left behind and every file of the test folder unchanged (sha256
of the whole tree before and after). No encoder is loaded and nothing is
fetched: outputs are refused before any work starts, and the training cases
use the stand-in backbone of ``tests/standin_backbone.py``.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import standin_backbone as sb  # noqa: E402

from cofee_lib.cli import main  # noqa: E402
from cofee_lib.errors import CofeeError, atomic_open, atomic_path, check_output  # noqa: E402

RECORDS = [{"id": "a", "tokens": ["John", "Smith", "lives", "in", "Paris"], "spans": [[0, 1, "PER"], [4, 4, "LOC"]]},
           {"id": "b", "tokens": ["Mary", "went", "to", "Berlin"], "spans": [[0, 0, "PER"], [3, 3, "LOC"]]}]


def write_records(path: Path, records=RECORDS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def tree(root: Path) -> dict:
    """Every entry under ``root``: its kind and, for files, its sha256 (symlinks: their target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = ("link", os.readlink(path))
        elif path.is_file():
            out[key] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            out[key] = ("dir" if path.is_dir() else "special", None)
    return out


def cofee(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def refused(capsys, root: Path, *argv, names=()) -> str:
    """Run ``cofee ARGV``; assert exit 2, one error line naming ``names``, and ``root`` unchanged."""
    before = tree(root)
    status, out, err = cofee(capsys, *argv)
    lines = err.splitlines()
    assert status == 2, (status, err)
    assert len(lines) == 1, err
    command = " ".join(map(str, argv[:2])) if argv[0] in ("corpus", "gazetteer") else argv[0]
    assert lines[0].startswith(f"cofee {command}: error: "), lines[0]
    assert "Traceback" not in err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    assert tree(root) == before, "files were created, changed or removed"
    return lines[0]


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_records(tmp_path / "g.jsonl")
    (tmp_path / "gaz").mkdir()
    (tmp_path / "gaz" / "PER.txt").write_text("John Smith\nMary\n", encoding="utf-8")
    (tmp_path / "gaz" / "LOC.txt").write_text("Paris\n", encoding="utf-8")
    return tmp_path


# ---------------------------------------------------------------- 1. no tracebacks

@pytest.mark.parametrize("out, argv", [
    ("/proc/cofee-out.conll", ["convert", "g.jsonl", "OUT", "--from", "jsonl", "--to", "conll"]),
    ("/proc/cofee-out.json", ["evaluate", "--gold", "g.jsonl", "--pred", "g.jsonl", "--out", "OUT"]),
    ("/proc/no-such-dir/out.json", ["evaluate", "--gold", "g.jsonl", "--pred", "g.jsonl", "--out", "OUT"]),
    ("/proc/cofee-run", ["train", "--backbone", "tagger", "--model", "standin", "--train", "g.jsonl",
                         "--dev", "g.jsonl", "--out", "OUT"]),
])
def test_out_where_nothing_can_be_written(work, capsys, out, argv):
    line = refused(capsys, work, *[out if a == "OUT" else a for a in argv], names=[out])
    assert "cannot write in /proc" in line and not os.path.exists(out)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only (chmod 555) directory anyway")
def test_out_in_read_only_directory(work, capsys):
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = refused(capsys, work, "convert", "g.jsonl", ro / "o.conll", "--from", "jsonl", "--to", "conll",
                       names=[ro / "o.conll"])
        assert "Permission denied" in line
    finally:
        ro.chmod(0o755)


def test_out_is_an_existing_directory(work, capsys):
    (work / "d").mkdir()
    line = refused(capsys, work, "convert", "g.jsonl", "d", "--from", "jsonl", "--to", "conll", names=["d"])
    assert "is a directory" in line


def test_out_below_a_regular_file(work, capsys):
    line = refused(capsys, work, "convert", "g.jsonl", "g.jsonl/x.conll", "--from", "jsonl", "--to", "conll",
                   names=["g.jsonl/x.conll"])
    assert "is not a directory" in line


def test_in_is_a_directory(work, capsys):
    line = refused(capsys, work, "convert", ".", "o", "--from", "jsonl", "--to", "conll", names=["."])
    assert "is a directory" in line and not (work / "o").exists()
    refused(capsys, work, "evaluate", "--gold", "gaz", "--pred", "g.jsonl", names=["gaz"])


def test_in_is_a_directory_at_the_real_entry_point(work, cofee_cli):
    proc = cofee_cli("convert", ".", "o", "--from", "jsonl", "--to", "conll", cwd=work)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("cofee convert: error: .: ") and not (work / "o").exists()


@pytest.mark.parametrize("argv", [
    ["train", "--backbone", "tagger", "--model", "standin", "--train", "g.jsonl", "--dev", "g.jsonl"],
    ["pretrain", "--target", "wnut16"],
    ["weak", "--target", "wnut16"],
    ["gazetteer", "build", "--lang", "en"],
])
def test_out_dir_is_a_regular_file(work, capsys, argv):
    (work / "F").write_text("keep me\n")
    line = refused(capsys, work, *argv, "--out", "F", names=["F"])
    assert "expected an output directory" in line


@pytest.mark.parametrize("setting, expected", [
    ("geonames_min_population=abc", "expected an integer"),
    ("geonames_min_population=1.5", "expected an integer"),
    ("case_sensitive=maybe", "expected true or false"),
    ("common_word_types=PER", "expected a JSON list of strings"),
    ("no_such_option=1", "unknown build option"),
])
def test_gazetteer_bad_set_value(work, capsys, setting, expected):
    line = refused(capsys, work, "gazetteer", "build", "--lang", "en", "--out", "gz", "--set", setting,
                   names=[setting.split("=")[0]])
    assert expected in line and not (work / "gz").exists()


# ---------------------------------------------------------------- 2. no destroyed inputs

@pytest.mark.parametrize("out", ["g.jsonl", "link.jsonl", "hard.jsonl", "gaz/../g.jsonl", "./g.jsonl"])
def test_evaluate_out_is_the_gold_file(work, capsys, out):
    os.symlink("g.jsonl", work / "link.jsonl")
    os.link(work / "g.jsonl", work / "hard.jsonl")
    line = refused(capsys, work, "evaluate", "--gold", "g.jsonl", "--pred", "g.jsonl", "--out", out,
                   names=[out, "g.jsonl"])
    assert "destroy" in line


@pytest.mark.parametrize("argv, out", [
    (["convert", "g.jsonl", "g.jsonl", "--from", "jsonl", "--to", "jsonl"], "g.jsonl"),
    (["convert", "g.jsonl", "x/../g.jsonl", "--from", "jsonl", "--to", "conll"], "x/../g.jsonl"),
    (["predict", "--model", "gaz", "--data", "g.jsonl", "--out", "g.jsonl"], "g.jsonl"),
    (["predict", "--model", "gaz", "--data", "g.jsonl", "--out", "gaz/PER.txt"], "gaz/PER.txt"),
    (["match", "--gazetteers", "gaz", "--data", "g.jsonl", "--out", "g.jsonl"], "g.jsonl"),
    (["match", "--gazetteers", "gaz", "--data", "g.jsonl", "--out", "gaz/LOC.txt"], "gaz/LOC.txt"),
    (["corpus", "match", "--corpus", "g.jsonl", "--gazetteers", "gaz", "--out", "g.jsonl"], "g.jsonl"),
])
def test_out_is_an_input(work, capsys, argv, out):
    refused(capsys, work, *argv, names=[out])


def test_dash_is_standard_output(work, capsys):
    status, out, err = cofee(capsys, "evaluate", "--gold", "g.jsonl", "--pred", "g.jsonl", "--out", "-")
    assert status == 0 and json.loads(out)["f1"] == 1.0 and not (work / "-").exists()
    status, out, err = cofee(capsys, "convert", "g.jsonl", "-", "--from", "jsonl", "--to", "conll")
    assert status == 0 and out.startswith("John\tB-PER\nSmith\tI-PER\n") and not (work / "-").exists()
    status, out, err = cofee(capsys, "match", "--gazetteers", "gaz", "--data", "g.jsonl", "--out", "-")
    assert status == 0 and [json.loads(line)["id"] for line in out.splitlines()] == ["a", "b"]
    assert "wrote -" in err and not (work / "-").exists()
    corpus = write_records(work / "dg.jsonl", [dict(r, targets=[f"T{i}" for i in range(len(r["spans"]))])
                                              for r in RECORDS])
    status, out, err = cofee(capsys, "corpus", "match", "--corpus", corpus, "--gazetteers", "gaz", "--out", "-",
                             "--quiet")
    assert status == 0 and json.loads(out.splitlines()[0])["targets"] == ["T0", "T1"] and not (work / "-").exists()


def test_dash_refused_where_there_is_no_single_stream(work, capsys):
    refused(capsys, work, "convert", "g.jsonl", "-", "--from", "jsonl", "--to", "bond", names=["-"])
    refused(capsys, work, "train", "--backbone", "tagger", "--model", "standin", "--train", "g.jsonl",
            "--dev", "g.jsonl", "--out", "-", names=["-"])


def test_symlink_out_is_written_through(work, capsys):
    (work / "target.conll").write_text("old\n")
    (work / "target.conll").chmod(0o640)
    os.symlink("target.conll", work / "out.conll")
    status, _, _ = cofee(capsys, "convert", "g.jsonl", "out.conll", "--from", "jsonl", "--to", "conll")
    assert status == 0 and (work / "out.conll").is_symlink() and os.readlink(work / "out.conll") == "target.conll"
    assert (work / "target.conll").read_text().startswith("John\tB-PER")
    assert stat.S_IMODE((work / "target.conll").stat().st_mode) == 0o640
    assert sorted(p.name for p in work.iterdir()) == ["g.jsonl", "gaz", "out.conll", "target.conll"]


def test_fifo_out_is_written_straight_to(work, capsys):
    fifo = work / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    status, _, _ = cofee(capsys, "convert", "g.jsonl", fifo, "--from", "jsonl", "--to", "conll")
    reader.join(10)
    assert status == 0 and got and got[0].startswith(b"John\tB-PER")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def _char_device(path: Path, minor: int) -> Path:
    """A character device node like /dev/null (minor 3) or /dev/full (minor 7) in the test folder."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except (OSError, AttributeError) as exc:
        pytest.skip(f"cannot make a device node here ({exc})")
    return path


def test_char_device_out_is_written_straight_to(work, capsys):
    null = _char_device(work / "null", 3)
    status, out, _ = cofee(capsys, "evaluate", "--gold", "g.jsonl", "--pred", "g.jsonl", "--out", null)
    assert status == 0 and json.loads(out)["f1"] == 1.0
    assert stat.S_ISCHR(os.lstat(null).st_mode), "the device node was replaced by a regular file"
    assert sorted(p.name for p in work.iterdir()) == ["g.jsonl", "gaz", "null"]


def test_write_error_names_the_file(work, capsys):
    full = _char_device(work / "full", 7)
    line = refused(capsys, work, "convert", "g.jsonl", full, "--from", "jsonl", "--to", "conll", names=[full])
    assert "No space left on device" in line


def test_other_special_files_are_refused(work, capsys):
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind("sock")
        line = refused(capsys, work, "convert", "g.jsonl", "sock", "--from", "jsonl", "--to", "conll", names=["sock"])
    finally:
        sock.close()
    assert "is a socket" in line


def test_library_writers_keep_their_behaviour(tmp_path, capsys):
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
    assert (tmp_path / "a.txt").read_text() == "x"
    with pytest.raises(RuntimeError):
        with atomic_open("-") as handle:
            handle.write("half")
            raise RuntimeError
    assert capsys.readouterr().out == "", "a failed block printed part of its output"
    with atomic_open("-", "wb") as handle:
        handle.write(b"all\n")
    assert capsys.readouterr().out == "all\n"
    with pytest.raises(CofeeError, match="standard output"):
        check_output("-", directory=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


# ---------------------------------------------------------------- 3. bad options are refused

@pytest.mark.parametrize("targets, expected", [
    (["T0"], "has 1 items but the record has 2 spans"),
    ("Paris", "must be a list"),
    (["T0", 7], "is not a string"),
])
def test_corpus_match_bad_targets(work, capsys, targets, expected):
    good, bad = dict(RECORDS[0], targets=["x", "y"]), dict(RECORDS[1], targets=targets)
    # a blank line between the records: the bad one is on line 3
    (work / "dg.jsonl").write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n", encoding="utf-8")
    line = refused(capsys, work, "corpus", "match", "--corpus", "dg.jsonl", "--gazetteers", "gaz", "--out", "ds.jsonl",
                   "--quiet", names=["dg.jsonl:3"])
    assert expected in line


def test_bad_scheme_is_refused(work, capsys):
    line = refused(capsys, work, "match", "--gazetteers", "gaz", "--data", "g.jsonl", "--out", "p.jsonl",
                   "--scheme", "bogus", names=["--scheme", "bogus"])
    assert "iob2" in line and "bioes" in line
    refused(capsys, work, "data", "g.jsonl", "--out", "p.jsonl", "--scheme", "bogus", names=["bogus"])


def _train(*extra):
    return ["train", "--backbone", "tagger", "--model", "standin", "--train", "g.jsonl", "--dev", "g.jsonl",
            "--preset", "smoke", "--no-progress", *extra]


@pytest.fixture
def standin(monkeypatch):
    """``cofee train`` builds the stand-in; its featurize fails like a real encoder's when max_len < 8."""
    real = sb.StandInTagger.featurize

    def featurize(self, records, train):
        if self.max_len < 8:
            raise CofeeError(f"the query for None takes 0 sub-tokens, leaving {self.max_len - 2} of "
                             f"max_len={self.max_len} for the context; raise max_len or shorten the query")
        return real(self, records, train)

    monkeypatch.setattr(sb.StandInTagger, "featurize", featurize)
    monkeypatch.setattr("cofee_lib.backbones.build_backbone", sb.build_standin)


@pytest.mark.parametrize("types, names", [("PER,FOOD", ["FOOD", "g.jsonl"]), ("FOOD,DRINK", ["FOOD,DRINK"]),
                                          ("", ["empty type list"]), (" , ", ["empty type list"])])
def test_train_bad_types(work, capsys, standin, types, names):
    refused(capsys, work, *_train("--out", "run", "--types", types), names=names)


# ---------------------------------------------------------------- 4. nothing half-made

def test_train_resume_without_checkpoint_makes_no_folder(work, capsys, standin):
    line = refused(capsys, work, *_train("--out", "run", "--resume"), names=["run"])
    assert "no checkpoint" in line


def test_train_max_len_too_small_makes_no_folder_and_no_note_first(work, capsys, standin):
    # --types PER leaves LOC spans out: the note about it must not come before the error
    line = refused(capsys, work, *_train("--out", "run", "--max-len", "1", "--types", "PER"), names=["max_len=1"])
    assert "note:" not in line


def test_train_failure_removes_only_a_folder_it_created(work, capsys, standin, monkeypatch):
    def failing_train(model, train, dev, config, out_dir, **kw):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "log.jsonl").write_text("{}\n")
        raise CofeeError("the training records produced no features (empty sentences?)")

    monkeypatch.setattr("cofee_lib.engine.train", failing_train)
    refused(capsys, work, *_train("--out", "run"), names=["no features"])
    (work / "mine").mkdir()
    status, _, err = cofee(capsys, *_train("--out", "mine"))
    assert status == 2 and len(err.splitlines()) == 1 and (work / "mine" / "log.jsonl").exists()


# ---------------------------------------------------------------- 5. messages

def test_no_note_before_an_error_line(work, capsys):
    write_records(work / "ws.jsonl", [{"id": "w", "tokens": ["New York", "is"], "spans": [[0, 0, "LOC"]]}])
    line = refused(capsys, work, "convert", "ws.jsonl", "o.json", "--from", "jsonl", "--to", "mrc")
    assert "generic queries" not in line and not (work / "o.json").exists()


def test_finetune_out_may_not_hold_the_init_model(work, capsys):
    (work / "init" / "best").mkdir(parents=True)
    (work / "init" / "best" / "cofee.json").write_text('{"kind": "tagger"}')
    line = refused(capsys, work, "finetune", "--init", "init", "--train", "g.jsonl", "--dev", "g.jsonl",
                   "--out", "init", names=["init"])
    assert "--init model" in line


def test_an_os_error_a_command_lets_through_is_one_line(work, capsys, monkeypatch):
    def run(args):
        raise PermissionError(13, "Permission denied", "somewhere/file.txt")

    monkeypatch.setattr("cofee_lib.commands.evaluate.run", run)
    line = refused(capsys, work, "evaluate", "--gold", "g.jsonl", "--pred", "g.jsonl", names=["somewhere/file.txt"])
    assert line.endswith("somewhere/file.txt: Permission denied")
