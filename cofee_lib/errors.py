"""Errors the kit raises for the user, and safe, atomic output files.

Every error a user can cause (bad input file, wrong hash, missing source) is a
:class:`CofeeError`. The command line prints it as one line and exits with
status 2. Input errors name the file and the line (1-based) and say what was
expected.

Output files follow one set of rules, kept here and used by every command:

* :func:`check_output` is called by a command before it does any work: it
  refuses an output that resolves to one of the command's inputs (same real
  path, or same device and inode: symlinks, ``..`` and hard links included),
  a directory where a file is expected (or a file where a directory is), a
  special file other than a character device or a FIFO, ``-`` where standard
  output makes no sense, and a place the user cannot write (read-only file
  system, ``/proc``, no permission), naming the path and the OS reason.
  :func:`check_input` refuses a missing input or a directory.
* :func:`atomic_open` / :func:`atomic_path` write a temporary file next to
  the target and rename it onto the target only when the block succeeds, so a
  failed command never leaves a half-written output. ``-`` is standard output
  (the text is held back until the block succeeds). A symlink is written
  through: its resolved target is replaced, the link stays. A character device
  or a FIFO (``/dev/null``, a named pipe) is written straight to, with no
  temporary file and no rename; other special files are refused.
* :func:`removed_on_error` removes an output directory that the command
  created itself when the command then fails with a :class:`CofeeError`.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

STDOUT = "-"
"""The output name that means standard output (for commands whose output is one text stream)."""

# errno values of a write that failed for want of room or rights, raised without a file name
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}
# directory names that make a failed run folder worth keeping (it can be resumed or holds a model)
RESUMABLE = ("checkpoint", ".checkpoint.old", "best")


class CofeeError(Exception):
    """An error caused by the user's input or environment; exit status 2."""

    exit_status = 2


class InputError(CofeeError):
    """Bad input data: names the file, the line (1-based, optional) and what was expected."""

    def __init__(self, path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


class FetchError(CofeeError):
    """A data source could not be fetched or did not verify."""


def is_stdout(path) -> bool:
    """True for the output name ``-`` (standard output)."""
    return path is not None and str(path) == STDOUT


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISFIFO, "a FIFO")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def _target(path: Path) -> Path:
    """Where writing ``path`` lands: a symlink's resolved target, else ``path`` itself.

    A link to a device or a pipe (``/dev/stdout`` -> ``/proc/self/fd/1`` -> ``pipe:[...]``)
    stays as it is: it is opened, not resolved.
    """
    if not os.path.islink(path):
        return path
    with contextlib.suppress(OSError):
        if _is_stream(os.stat(path)):
            return path
    return Path(os.path.realpath(path))


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise InputError(path, None, f"cannot look at it ({exc.strerror})") from None


def _is_stream(st: os.stat_result | None) -> bool:
    """A character device or a FIFO: written straight to, never replaced."""
    return st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode))


def _check_file_kind(path, st: os.stat_result | None) -> None:
    if st is None or stat.S_ISREG(st.st_mode) or _is_stream(st):
        return
    if stat.S_ISDIR(st.st_mode):
        raise InputError(path, None, "is a directory; expected an output file path")
    raise InputError(path, None, f"is {_kind(st.st_mode)}; expected a regular file, a character device or a FIFO")


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(target: Path, folder: Path) -> bool:
    real, base = os.path.realpath(target), os.path.realpath(folder)
    return os.path.commonpath([real, base]) == base and os.path.exists(real)


def _check_not_input(path, inputs: Iterable) -> None:
    """Refuse an output that is (or, for a directory input, is an existing file inside) an input."""
    out = Path(path)
    for inp in inputs:
        if inp is None or is_stdout(inp) or str(inp).startswith("dataset:"):
            continue
        inp = Path(inp)
        if _same_file(out, inp):
            raise CofeeError(f"{path}: is (or resolves to) the input {inp}; writing it would destroy that input "
                             "(expected a different output path)")
        if inp.is_dir() and _inside(out, inp):
            raise CofeeError(f"{path}: is an existing file in the input folder {inp}; writing it would "
                             "change that input (expected a path outside it)")


def _existing_ancestor(folder: Path) -> Path:
    """``folder`` if it exists, else the nearest existing path above it."""
    base = Path(os.path.abspath(folder))
    while not base.exists() and base != base.parent:
        base = base.parent
    return base


def _check_writable(path, folder: Path) -> None:
    """Refuse when no file can be made in ``folder`` (or the nearest existing folder above it)."""
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise InputError(path, None, f"{base} is not a directory; expected a path in a writable directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".cofee-probe.", dir=base)
    except OSError as exc:
        raise InputError(path, None, f"cannot write in {base} ({exc.strerror}); "
                                     "expected a path in a writable directory") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_output(path, inputs: Iterable = (), *, directory: bool = False, stdout: bool = False) -> None:
    """Refuse an output path before any work is done (see the module docstring for the rules).

    ``inputs``: the command's input files or folders (None, ``-`` and
    ``dataset:NAME`` are skipped); ``directory``: the output is a folder;
    ``stdout``: ``-`` (standard output) is allowed.
    """
    if is_stdout(path):
        if stdout and not directory:
            return
        raise CofeeError(f"{path}: standard output cannot take this output; expected a "
                         f"{'directory' if directory else 'file'} path")
    target = _target(Path(path))
    st = _stat(target)
    if not _is_stream(st):  # writing a device or a pipe destroys no file
        _check_not_input(path, inputs)
    if directory:
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise InputError(path, None, f"exists and is {_kind(st.st_mode)}; expected an output directory")
        _check_writable(path, target)
        return
    _check_file_kind(path, st)
    if _is_stream(st):
        if not os.access(target, os.W_OK):
            raise InputError(path, None, f"cannot write to {_kind(st.st_mode)} (permission denied)")
        return
    _check_writable(path, target.parent)


def check_input(path, what: str = "a file") -> Path:
    """``path`` as a :class:`Path`; :class:`InputError` if it does not exist or is a directory."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, f"file not found (expected {what})")
    if path.is_dir():
        raise InputError(path, None, f"is a directory; expected {what}")
    return path


def _write_error(path, exc: OSError, doing: str = "cannot write it") -> InputError:
    return InputError(path, None, f"{doing} ({exc.strerror or exc})")


def _make_temp(path, target: Path, suffix: str) -> Path:
    """A temporary file next to ``target`` with the usual (or the replaced file's) permissions."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(path, exc, f"cannot create the directory {target.parent}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    except OSError as exc:
        raise _write_error(path, exc, f"cannot create a file in {target.parent}") from None
    os.close(fd)
    try:
        old = os.stat(target).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        old = 0o666 & ~umask  # mkstemp makes 0600; outputs get the usual permissions
    with contextlib.suppress(OSError):  # file systems without modes (vfat) keep theirs
        os.chmod(tmp, old)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file (or directory) is removed and ``path``
    is left as it was, so a failed command never leaves a half-written output.
    A symlink ``path`` is written through (its target is replaced); for a
    character device or a FIFO the path itself is yielded (written straight
    to). A directory or another special file raises :class:`InputError`.
    """
    if is_stdout(path):
        raise CofeeError(f"{path}: standard output cannot take this output; expected a file path")
    target = _target(Path(path))
    st = _stat(target)
    _check_file_kind(path, st)
    if _is_stream(st):
        yield target
        return
    tmp_path = _make_temp(path, target, suffix)
    try:
        yield tmp_path
        try:
            os.replace(tmp_path, target)
        except OSError as exc:
            raise _write_error(path, exc, "cannot replace it") from None
    except BaseException:
        if tmp_path.is_dir() and not tmp_path.is_symlink():
            shutil.rmtree(tmp_path, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def _stdout_handle(mode: str, encoding: str | None):
    """A spooled buffer copied to standard output only when the block succeeds."""
    binary = "b" in mode
    with tempfile.SpooledTemporaryFile(max_size=16 << 20, mode="w+b" if binary else "w+",
                                       encoding=encoding) as buffer:
        yield buffer
        buffer.seek(0)
        sys.stdout.flush()
        shutil.copyfileobj(buffer, sys.stdout.buffer if binary else sys.stdout)
        sys.stdout.flush()


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file for writing that replaces ``path`` only when the block succeeds.

    ``-`` writes to standard output (all at once, when the block succeeds).
    OS errors of the write (no space, read-only file system) raise
    :class:`InputError` naming ``path``.
    """
    if "b" in mode:
        encoding = None
    if is_stdout(path):
        with _stdout_handle(mode, encoding) as handle:
            yield handle
        return
    with atomic_path(path) as tmp:
        try:
            with open(tmp, mode, encoding=encoding) as handle:
                yield handle
        except OSError as exc:
            ours = exc.filename == str(tmp) or (exc.filename is None and exc.errno in _WRITE_ERRNOS)
            if ours:  # not an error of the block's own reading, which names its file
                raise _write_error(path, exc) from None
            raise


@contextlib.contextmanager
def removed_on_error(path, keep: Iterable[str] = RESUMABLE) -> Iterator[Path]:
    """Remove directory ``path`` if the block fails with :class:`CofeeError` and ``path``
    did not exist before, unless it now holds something named in ``keep`` (anywhere inside)."""
    path = Path(path)
    existed = os.path.lexists(path)
    try:
        yield path
    except CofeeError:
        if not existed and path.is_dir() and not path.is_symlink():
            if not any(next(path.rglob(name), None) is not None for name in keep):
                shutil.rmtree(path, ignore_errors=True)
        raise
