"""The one way this package opens a statex file (results, checkpoints, token files, eval / grad
outputs): the checks of docs/results_format.md, "Integrity", as the C++ reader does them
(sim/io/h5.cpp: open_file, check_file_crc, verify_digests), before anything is trusted.

1. **The file CRC-32.** A file written by `statex` starts with a 512-byte HDF5 user block holding
   `statex-crc32 <crc32 hex, 8 digits> <length>\\n`, zero-padded, over every byte after the
   block. It is checked before HDF5 (h5py) parses a single byte, so no damaged byte reaches the
   library (HDF5 does not checksum its global heap of strings). The stored line is the block's
   bytes up to the first NUL, compared as text with the line the bytes give now (as the C++
   does: a flipped padding byte past that NUL is harmless and passes).
2. **The per-object digests** `/attr_digests` (int64 [n], Fletcher32): one zlib CRC-32 per
   object, `/` first, then every group and dataset depth first (children in creation order where
   the group tracks it, else by name; `/attr_digests` itself left out), each over the object's
   attributes in name order (name, NUL, '0' + HDF5 type class, then the value: numbers in
   their native type, variable-length strings as text + NUL each) and, for a dataset without
   Fletcher32 (scalars, strings, empty datasets), its data the same way.
3. **Fletcher32** on numeric datasets is verified by HDF5 on every read. A file without the CRC
   line (written by h5py, or before the CRC existed) gets every Fletcher32 dataset read once here,
   so that a damaged chunk is reported by name and not as an OSError halfway through a reader.

A file without the user-block line or without `/attr_digests` (written by h5py, or by statex
before these existed) is read **unchecked** by that layer: only HDF5's own checksums (superblock,
object headers and chunk indexes of the 1.10 format, Fletcher32 where present) protect it.
`verify()` says which checks a file had.

Everything that fails raises IntegrityError, one class for every reader: a FormatError (results
readers and `--keep-going` handle it) and a CheckpointError (the export commands handle it); the
CLI prints it as one line naming the file and the damaged object and exits 2 (a damaged input
file, docs/exit_codes.md).

`write_protected` gives files written from Python (import-safetensors' checkpoints) the same
user block and digests, so the C++ reader checks them as its own.
"""
from __future__ import annotations

import os
import re
import zlib
from typing import Callable, NamedTuple

import h5py
import numpy as np

from .checkpoint import CheckpointError
from .io import FormatError

MAGIC = b"statex-crc32"
USER_BLOCK = 512
DIGESTS = "attr_digests"
_CHUNK = 1 << 20


class IntegrityError(FormatError, CheckpointError):
    """A statex file that fails a check (missing, not HDF5, truncated, damaged): `.path` is the
    file, `.field` the damaged object ('/params/<name>', '/@format' ...) or None when only the
    whole-file CRC says so, `.reason` what is wrong."""

    def __init__(self, path: str, damaged: str | None, reason: str):
        FormatError.__init__(self, path, damaged, reason)

    def __str__(self) -> str:
        where = f"'{self.field}' is damaged: " if self.field else ""
        return f"cannot read '{self.path}': {where}{self.reason}"


class Checked(NamedTuple):
    """Which integrity layers a file carried (and passed)."""

    crc: bool       # the user-block CRC-32 of the whole file
    digests: bool   # /attr_digests


# ---------------------------------------------------------------------------- the file CRC

def stored_crc_line(head: bytes) -> bytes:
    """The user block's CRC line (up to the first NUL), b"" when the file has none."""
    if not head.startswith(MAGIC):
        return b""
    end = head.find(b"\0", 0, USER_BLOCK)
    return head[:USER_BLOCK] if end < 0 else head[:end]


def crc_line(crc: int, length: int) -> bytes:
    return b"%s %08x %d\n" % (MAGIC, crc, length)


def _crc_after_block(f) -> tuple[int, int]:
    f.seek(USER_BLOCK)
    crc, length = 0, 0
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            return crc, length
        crc = zlib.crc32(chunk, crc)
        length += len(chunk)


def check_file_crc(path: str) -> bool:
    """True when the file carries a CRC line and it matches; False when it carries none. Raises
    IntegrityError on a mismatch, naming the first numeric dataset whose Fletcher32 check fails
    (read through HDF5, which checksums their metadata and data), if any."""
    try:
        with open(path, "rb") as f:
            line = stored_crc_line(f.read(USER_BLOCK))
            if not line:
                return False
            crc, length = _crc_after_block(f)
    except OSError as err:
        raise IntegrityError(path, None, f"cannot read the file: {err.strerror or err}") from err
    if line == crc_line(crc, length):
        return True
    stored = line.rstrip(b"\n").decode("ascii", "replace")
    m = re.fullmatch(r"statex-crc32 [0-9a-f]{8} (\d+)", stored)
    truncated = m is not None and int(m.group(1)) != length
    damaged = _first_damaged_tensor(path)
    if damaged:
        name, reason = damaged
        raise IntegrityError(path, name, reason + " (the file's CRC-32 does not match either)")
    what = (f"the file is damaged: it has {length} bytes after the user block, its CRC-32 line "
            f"says {m.group(1)} (truncated, extended or edited in place)" if truncated else
            f"the file is damaged: its CRC-32 ({stored!r}) does not match its bytes (damaged "
            f"outside the tensors: metadata, attributes or strings)")
    raise IntegrityError(path, None, what)


def _first_damaged_tensor(path: str) -> tuple[str, str] | None:
    """(path, what is wrong) of the first object that HDF5 cannot open or numeric dataset whose
    read fails, as the C++ names it. Only numeric datasets are read: HDF5 checksums their
    headers, chunk indexes and (with Fletcher32) their data, so this is safe on a damaged file;
    strings (HDF5's unchecksummed global heap) are never touched. None when nothing fails or the
    file cannot be walked at all."""
    try:
        f = h5py.File(path, "r")
    except Exception:  # noqa: BLE001 - a damaged file: the CRC message says enough
        return None
    with f:
        try:
            return _walk_numeric(f.id, "/")
        except Exception:  # noqa: BLE001
            return None


def _walk_numeric(gid, path: str) -> tuple[str, str] | None:
    for name in children(gid):
        p = _join(path, name)
        try:
            oid = h5py.h5o.open(gid, name)
        except Exception:  # noqa: BLE001
            return p, "it cannot be opened (its object header does not match its checksum)"
        if isinstance(oid, h5py.h5g.GroupID):
            found = _walk_numeric(oid, p)
            if found:
                return found
        elif isinstance(oid, h5py.h5d.DatasetID):
            try:
                cls = oid.get_type().get_class()
                n = oid.get_space().get_simple_extent_npoints()
            except Exception:  # noqa: BLE001
                return p, "its type or shape cannot be read"
            if cls in (h5py.h5t.INTEGER, h5py.h5t.FLOAT) and n > 0:
                try:
                    out = np.empty(oid.shape, dtype=np.float64)
                    oid.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
                except Exception:  # noqa: BLE001
                    return p, ("its Fletcher32 checksum does not match its data"
                               if has_fletcher32(oid) else "its data cannot be read")
    return None


# ---------------------------------------------------------------------------- the digests

def children(gid) -> list[bytes]:
    """Link names of a group in the C++ order (sim/io/h5.cpp child_names): creation order when
    the group tracks it, else by name."""
    order = gid.get_create_plist().get_link_creation_order()
    index = (h5py.h5.INDEX_CRT_ORDER if order & h5py.h5p.CRT_ORDER_TRACKED
             else h5py.h5.INDEX_NAME)
    names: list[bytes] = []
    gid.links.iterate(lambda n: names.append(n), idx_type=index, order=h5py.h5.ITER_INC)
    return names


def has_fletcher32(did) -> bool:
    plist = did.get_create_plist()
    return any(plist.get_filter(i)[0] == h5py.h5z.FILTER_FLETCHER32
               for i in range(plist.get_nfilters()))


def _value_bytes(tid, n: int, read: Callable) -> bytes:
    """The C++ value_bytes: variable-length strings as text + NUL each, everything else in its
    native memory type."""
    if n <= 0:
        return b""
    if tid.get_class() == h5py.h5t.STRING and tid.is_variable_str():
        values = np.empty(n, dtype=object)
        read(values, h5py.h5t.py_create(h5py.string_dtype("utf-8")))
        return b"".join((v.encode("utf-8", "surrogateescape") if isinstance(v, str)
                         else bytes(v or b"")) + b"\0" for v in values)
    dtype = tid.dtype
    if dtype.kind in "iufb":
        dtype = dtype.newbyteorder("=")
    values = np.empty(n, dtype=dtype)
    read(values, None)
    return values.tobytes()


def object_digest(oid) -> int:
    """CRC-32 of an object's attributes (by name) and, for a dataset without Fletcher32, its
    data (sim/io/h5.cpp object_digest)."""
    crc = 0
    names: list[bytes] = []
    h5py.h5a.iterate(oid, lambda n: names.append(n), index_type=h5py.h5.INDEX_NAME,
                     order=h5py.h5.ITER_INC)
    for name in names:
        attr = h5py.h5a.open(oid, name)
        tid = attr.get_type()
        crc = zlib.crc32(name + b"\0" + bytes([48 + tid.get_class()]), crc)

        def read_attr(buf, mtype, attr=attr):
            attr.read(buf, mtype=mtype) if mtype is not None else attr.read(buf)
        crc = zlib.crc32(_value_bytes(tid, attr.get_space().get_simple_extent_npoints(),
                                      read_attr), crc)
    if isinstance(oid, h5py.h5d.DatasetID) and not has_fletcher32(oid):
        def read_data(buf, mtype):
            oid.read(h5py.h5s.ALL, h5py.h5s.ALL, buf.reshape(oid.shape), mtype=mtype)
        crc = zlib.crc32(_value_bytes(oid.get_type(),
                                      oid.get_space().get_simple_extent_npoints(), read_data), crc)
    return crc


def _join(path: str, name: bytes) -> str:
    text = name.decode("utf-8", "surrogateescape")
    return "/" + text if path == "/" else f"{path}/{text}"


def object_paths(fid) -> list[str]:
    """`/`, then every group and dataset depth first, `/attr_digests` left out."""
    out = ["/"]

    def walk(gid, path):
        for name in children(gid):
            if path == "/" and name == DIGESTS.encode():
                continue
            p = _join(path, name)
            out.append(p)
            oid = h5py.h5o.open(gid, name)
            if isinstance(oid, h5py.h5g.GroupID):
                walk(oid, p)
    walk(h5py.h5g.open(fid, b"/"), "/")
    return out


def file_digests(f: h5py.File) -> tuple[list[str], list[int]]:
    paths = object_paths(f.id)
    digests = []
    for p in paths:
        try:
            digests.append(object_digest(h5py.h5o.open(f.id, p.encode("utf-8", "surrogateescape"))))
        except Exception as err:  # noqa: BLE001 - an unreadable attribute or string
            raise _Damaged(p, f"its attributes or data cannot be read ({_short(err)})") from err
    return paths, digests


class _Damaged(Exception):
    def __init__(self, obj: str, reason: str):
        super().__init__(reason)
        self.obj, self.reason = obj, reason


def verify_digests(path: str, f: h5py.File) -> bool:
    """True when the file has /attr_digests and every object matches; False when it has none."""
    if DIGESTS not in f:
        return False
    try:
        stored = np.asarray(f[DIGESTS][()]).astype(np.int64).tolist()
    except Exception as err:  # noqa: BLE001 - Fletcher32 of the digests themselves
        raise IntegrityError(path, f"/{DIGESTS}", "its Fletcher32 checksum does not match its "
                             "data" if "filter" in str(err) else _short(err)) from err
    try:
        paths, now = file_digests(f)
    except _Damaged as err:
        raise IntegrityError(path, err.obj, err.reason) from err
    except Exception as err:  # noqa: BLE001 - the object tree itself cannot be walked
        raise IntegrityError(path, None, f"its object tree cannot be read ({_short(err)})") \
            from err
    if len(stored) != len(now):
        raise IntegrityError(path, None, f"the file is damaged: it holds {len(now)} objects but "
                             f"its checksums cover {len(stored)}")
    for p, a, b in zip(paths, stored, now):
        if a != b:
            raise IntegrityError(path, p, "the checksum of its attributes"
                                 + ("" if p == "/" else " or data") + " does not match")
    return True


def verify_fletcher32(path: str, f: h5py.File) -> None:
    """Reads every Fletcher32 dataset once; IntegrityError naming the first that fails."""
    def walk(gid, p):
        for name in children(gid):
            q = _join(p, name)
            oid = h5py.h5o.open(gid, name)
            if isinstance(oid, h5py.h5g.GroupID):
                walk(oid, q)
            elif isinstance(oid, h5py.h5d.DatasetID) and has_fletcher32(oid):
                try:
                    f[q][()]
                except Exception as err:  # noqa: BLE001
                    raise IntegrityError(path, q, "its Fletcher32 checksum does not match its "
                                         "data") from err
    try:
        walk(f.id, "/")
    except IntegrityError:
        raise
    except Exception as err:  # noqa: BLE001
        raise IntegrityError(path, None, f"its object tree cannot be read ({_short(err)})") \
            from err


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


# ---------------------------------------------------------------------------- opening

def open_statex(path: str | os.PathLike) -> h5py.File:
    """Opens a statex file read-only after every check above; the caller closes it (`with`).
    Raises IntegrityError naming the file (and the damaged object where one is known), and a
    plain FormatError for a path that is missing, a directory, unreadable or not HDF5."""
    f, _ = _open(str(path))
    return f


def verify(path: str | os.PathLike) -> Checked:
    """Runs every check on a file and says which layers it carried; IntegrityError if one fails."""
    f, checked = _open(str(path))
    f.close()
    return checked


def _open(path: str) -> tuple[h5py.File, Checked]:
    # Not statex files at all: FormatError (as before this module); damage: IntegrityError.
    if not os.path.exists(path):
        raise FormatError(path, None, "no such file")
    if os.path.isdir(path):
        raise FormatError(path, None, "is a directory, not an HDF5 file")
    if not os.access(path, os.R_OK):
        raise FormatError(path, None, "the file is not readable (permissions)")
    crc = check_file_crc(path)  # before HDF5 parses any of it
    try:
        is_h5 = h5py.is_hdf5(path)
    except Exception:  # noqa: BLE001
        is_h5 = False
    if not is_h5:
        raise FormatError(path, None, "not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except Exception as err:  # noqa: BLE001 - truncated, or damaged where HDF5 checks it
        raise IntegrityError(path, None, f"the file is truncated or damaged (HDF5: "
                             f"{_short(err)})") from err
    try:
        digests = verify_digests(path, f)
        if not crc:
            verify_fletcher32(path, f)
    except BaseException:
        f.close()
        raise
    return f, Checked(crc=crc, digests=digests)


# ---------------------------------------------------------------------------- writing

def write_protected(path: str, fill: Callable[[h5py.File], None]) -> None:
    """Writes `path` (not atomically: callers write a temporary file and rename it) as the C++
    write_atomically does: HDF5 1.10 format, a 512-byte user block, `fill(f)`, then
    /attr_digests and the user-block CRC line."""
    with h5py.File(path, "w", libver=("v110", "v110"), userblock_size=USER_BLOCK) as f:
        fill(f)
        _, digests = file_digests(f)
        data = np.asarray(digests, dtype=np.int64)
        f.create_dataset(DIGESTS, data=data, chunks=data.shape, fletcher32=True)
    stamp_file_crc(path)


def stamp_file_crc(path: str) -> None:
    """(Re)writes the user-block CRC line of a closed file that has a 512-byte user block."""
    with open(path, "r+b") as f:
        crc, length = _crc_after_block(f)
        f.seek(0)
        f.write(crc_line(crc, length).ljust(USER_BLOCK, b"\0"))
        f.flush()
        os.fsync(f.fileno())
