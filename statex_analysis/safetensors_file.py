"""A strict reader of `.safetensors` files (https://github.com/huggingface/safetensors, "Format"):
every field of the header is checked before a byte of tensor data is trusted, and every problem
is a CheckpointError naming the file and the tensor.

Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (an object: tensor name
-> {"dtype", "shape", "data_offsets": [begin, end]} relative to the data that follows, plus an
optional "__metadata__" object of strings), then the data. Checked here: N fits the file (and
the format's 100 MB limit), the header is UTF-8 JSON without duplicate names, each entry has a
known dtype, a shape of integers >= 0 and offsets of integers with begin <= end inside the data,
end - begin = product(shape) x the dtype's size, and the tensors tile the data exactly (no
overlap, no hole, nothing after the last), as the safetensors library itself requires.

statex-sim trains in float32: only F32 tensors are read; any other dtype (BF16, F16, F64, the
integer and FP8 types) is refused by name with the fix (`model.float()` before saving).
"""
from __future__ import annotations

import json
import math
import os
import struct

import numpy as np

from .checkpoint import CheckpointError

MAX_HEADER = 100_000_000  # the safetensors library's limit
DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
               "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4,
               "I64": 8, "U64": 8, "F64": 8, "C64": 8}
DTYPE_NAMES = {"F16": "float16", "BF16": "bfloat16", "F64": "float64", "F32": "float32",
               "I8": "int8", "I16": "int16", "I32": "int32", "I64": "int64", "U8": "uint8",
               "U16": "uint16", "U32": "uint32", "U64": "uint64", "BOOL": "bool",
               "F8_E5M2": "float8_e5m2", "F8_E4M3": "float8_e4m3fn", "F8_E8M0": "float8_e8m0",
               "C64": "complex64"}


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the name {key!r} appears twice")
        out[key] = value
    return out


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_header(path: str | os.PathLike) -> tuple[dict[str, dict], dict, int, int]:
    """(tensor entries, __metadata__, data start, data length) after every header check."""
    path = str(path)

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{path}: not a valid safetensors file: {what}")

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise bad(f"{size} bytes, too short for the 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            if n == 0 or n > size - 8:
                raise bad(f"the header length {n} runs past the end of the file ({size} bytes)")
            if n > MAX_HEADER:
                raise bad(f"the header length {n} exceeds the format's limit of {MAX_HEADER}")
            raw = f.read(n)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read: {err.strerror or err}") from err
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as err:
        raise bad(f"the header is not UTF-8 ({err.reason} at byte {err.start})") from err
    except ValueError as err:
        raise bad(f"the header is not JSON ({err})") from err
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise bad("__metadata__ is not an object of strings")
    start, length = 8 + n, size - 8 - n
    spans = []
    for name, entry in header.items():
        where = f"tensor '{name}'"
        if not isinstance(entry, dict):
            raise bad(f"{where}: its entry is not an object")
        for key in ("dtype", "shape", "data_offsets"):
            if key not in entry:
                raise bad(f"{where}: no '{key}'")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
            raise bad(f"{where}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise bad(f"{where}: shape {shape!r} is not a list of integers >= 0")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))):
            raise bad(f"{where}: data_offsets {offsets!r} is not a pair of integers")
        begin, end = offsets
        if not 0 <= begin <= end <= length:
            raise bad(f"{where}: data_offsets [{begin}, {end}] are not inside the {length} bytes "
                      f"of data")
        nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
        if end - begin != nbytes:
            raise bad(f"{where}: shape {shape} of {dtype} needs {nbytes} bytes, its "
                      f"data_offsets give {end - begin}")
        spans.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise bad(f"tensor '{name}' starts at byte {begin} of the data, expected {position} "
                      f"(tensors overlap or leave a hole)")
        position = end
    if position != length:
        raise bad(f"the tensors end at byte {position} of the data, the file holds {length}")
    return header, metadata, start, length


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """(name -> float32 array, __metadata__), in the header's order."""
    header, metadata, start, _ = read_header(path)
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            dtype = entry["dtype"]
            raise CheckpointError(
                f"{path}: tensor '{name}' is {dtype} ({DTYPE_NAMES.get(dtype, dtype)}); statex-sim "
                f"reads float32 only (convert with model.float() before save_pretrained; a "
                f"float32 copy of {DTYPE_NAMES.get(dtype, dtype)} weights is exact for float16 / "
                f"bfloat16)")
    tensors: dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as f:
            for name, entry in header.items():
                begin, end = entry["data_offsets"]
                f.seek(start + begin)
                data = f.read(end - begin)
                if len(data) != end - begin:
                    raise CheckpointError(f"{path}: tensor '{name}': the file ends inside its data")
                tensors[name] = np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(
                    entry["shape"])
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read: {err.strerror or err}") from err
    return tensors, metadata
