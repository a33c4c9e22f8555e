"""Output paths of the export commands, checked as the C++ side checks its own (docs/exit_codes.md,
"Outputs never destroy inputs or other outputs"), and written whole or not at all.

- An output is never one of the command's inputs, nor another of its outputs: paths are compared
  after resolving symlinks, `..` and relative paths (and, for existing files, by inode, so a hard
  link is caught too).
- An existing output file is replaced only with `--overwrite` (OutputExistsError, also a
  FileExistsError, names the path and the option).
- A missing directory, a file where a directory is expected, a directory where a file is
  expected, an unwritable directory (checked by creating and removing a file in it, so read-only
  file systems and ACLs count too) and an empty path are OutputErrors naming the path and why,
  raised before anything is written.
- Files are written to a temporary file in the same directory, flushed to disk and renamed over
  the target (`atomic_write`); on any failure the temporary file is removed and the older file is
  left as it was.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable


class OutputError(Exception):
    """An output path that cannot or must not be written; the message names it and why."""


class OutputExistsError(OutputError, FileExistsError):
    """The output exists and `--overwrite` was not given."""


def resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    if resolved(a) == resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def probe_writable(directory: Path) -> None:
    """OutputError unless a file can be created (and removed) in `directory`."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".statex-probe-", dir=directory)
    except OSError as err:
        what = ("is not writable" if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
                else "cannot be written")
        raise OutputError(f"directory '{directory}' {what} ({_reason(err)})") from err
    os.close(fd)
    os.unlink(tmp)


def _check_not_input(path: str | os.PathLike, inputs: Iterable, option: str) -> None:
    for inp in inputs:
        if inp is not None and same_file(path, inp):
            raise OutputError(f"{option} '{path}' is the input '{inp}': an output never replaces "
                              f"one of the command's inputs")


def check_output_file(path: str | os.PathLike, *, inputs: Iterable = (), overwrite: bool = False,
                      option: str = "--out") -> Path:
    """Checks an output file before anything is written; returns it as a Path."""
    if not os.fspath(path):
        raise OutputError(f"{option} is an empty path")
    p = Path(path)
    _check_not_input(p, inputs, option)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"{option} '{p}': directory '{parent}' does not exist")
    if not parent.is_dir():
        raise OutputError(f"{option} '{p}': '{parent}' is not a directory")
    if p.is_dir():
        raise OutputError(f"{option} '{p}' is a directory, not a file")
    if p.exists() and not overwrite:
        raise OutputExistsError(f"{p} exists (give --overwrite to replace it)")
    probe_writable(parent)
    return p


def check_output_dir(path: str | os.PathLike, *, inputs: Iterable = (),
                     option: str = "--out") -> Path:
    """Checks an output directory (created later with make_dir if missing): it is a directory or
    can be created, and is writable."""
    if not os.fspath(path):
        raise OutputError(f"{option} is an empty path")
    p = Path(path)
    _check_not_input(p, inputs, option)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{option} '{p}' exists and is not a directory")
    existing = p
    while not existing.exists():  # the nearest existing ancestor must be a writable directory
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{option} '{p}': '{existing}' is not a directory")
    probe_writable(existing)
    return p


def make_dir(path: Path, option: str = "--out") -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{option} '{path}': cannot create the directory ({_reason(err)})") \
            from err


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_beside(path: Path) -> Path:
    """A new, empty temporary file next to `path` (same file system, so rename is atomic)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OutputError(f"cannot write '{path}': {_reason(err)}") from err
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, path: Path) -> None:
    """Flushes `tmp`, gives it the usual permissions (0666 less the umask; mkstemp makes 0600)
    and renames it over `path`."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """`write(tmp)` fills a temporary file beside `path`, which then replaces `path`. On any
    failure the temporary file is removed and `path` is left unchanged; OSErrors become
    OutputErrors naming `path`."""
    atomic_write_all([(Path(path), write)])


def atomic_write_all(jobs: list[tuple[Path, Callable[[str], None]]]) -> None:
    """Several files: every one is written to its temporary file first, and only when all are
    complete are they renamed into place (so a failure leaves every target as it was)."""
    temps: list[Path] = []
    try:
        for path, write in jobs:
            tmp = temp_beside(path)
            temps.append(tmp)
            try:
                write(str(tmp))
            except OSError as err:
                raise OutputError(f"cannot write '{path}': {_reason(err)}") from err
        for tmp, (path, _) in zip(temps, jobs):
            try:
                commit(tmp, path)
            except OSError as err:
                raise OutputError(f"cannot write '{path}': {_reason(err)}") from err
    finally:
        for tmp in temps:
            if tmp.exists():
                tmp.unlink()
