"""Token files (`statex data`, `statex eval --tokens`, `statex train --data.train/--data.test`;
docs/results_format.md, "Token file") read through the integrity checks of integrity.py.

    data = read_tokens("te.h5")
    data.arrays["tokens"], data.arrays["labels"]   # int32 [N, T]
    data.attrs["segments"], data.attrs["vocab_size"]
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from .integrity import open_statex
from .io import FormatError, _decode

REQUIRED = ("tokens", "labels")  # what any generator's file holds (Zoology, h5py)


@dataclass
class TokenFile:
    path: str
    arrays: dict[str, np.ndarray]           # every root dataset: tokens, labels, lengths, ...
    attrs: dict[str, Any] = field(default_factory=dict)  # root attributes, decoded


def read_tokens(path: str | os.PathLike) -> TokenFile:
    """Every root dataset and attribute of a token file, after the file's CRC-32 and digests
    are checked (IntegrityError names a damaged one); FormatError when /tokens or /labels is
    missing."""
    path = str(path)
    with open_statex(path) as f:
        arrays = {name: np.asarray(obj[()]) for name, obj in f.items()
                  if isinstance(obj, h5py.Dataset) and name != "attr_digests"}
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
    for name in REQUIRED:
        if name not in arrays:
            raise FormatError(path, f"/{name}", "missing required dataset (a token file)")
    if arrays["tokens"].shape != arrays["labels"].shape:
        raise FormatError(path, "/labels", f"shape {list(arrays['labels'].shape)} differs from "
                          f"/tokens {list(arrays['tokens'].shape)}")
    return TokenFile(path=path, arrays=arrays, attrs=attrs)
