"""Reads and writes statex-sim checkpoints (docs/results_format.md, "Checkpoint files") in Python.

Only what a checkpoint needs to be trained on, evaluated or expanded by the C++ binary: the
/model options and per-layer shapes, and /params in the order of the C++ parameter table
(sim/model/param_layout.cpp), which the binary uses as the flat buffer's layout. Optimizer
moments are not written (`statex train --init-from` starts a fresh optimizer anyway).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

CHECKPOINT_FORMAT = "statex-sim checkpoint"
CHECKPOINT_VERSION = 1

# C++ ModelConfig defaults (sim/core/config.h); a checkpoint's /model attrs override them.
MODEL_DEFAULTS = {
    "model": "gla", "vocab_size": "256", "d_model": "64", "n_layers": "2", "mlp": "false",
    "mlp_hidden": "0", "tie_embeddings": "true", "norm_eps": "1e-05", "heads": "2",
    "expand_k": "0.5", "expand_v": "1", "use_short_conv": "true", "conv_width": "4",
    "gate_low_rank": "16", "gate_logit_normalizer": "16", "expand": "2", "head_dim": "16",
    "ngroups": "1", "d_state": "16", "rope": "false", "rope_theta": "10000",
}


class CheckpointError(Exception):
    """A checkpoint that cannot be read or written; the message names the file and the field."""


@dataclass
class Checkpoint:
    """Model options (option name without the `model.` prefix -> string, as in the file),
    per-layer shapes, and parameters in file (= C++ table) order."""

    options: dict[str, str]
    layer_heads: list[int]
    layer_d_state: list[int]
    params: dict[str, np.ndarray]          # name -> float32 array, insertion order = table order
    step: int = 0
    # /expansion attrs (layers, mode, source): where per-layer shapes came from. `statex train
    # --init-from` accepts per-layer shapes only from a checkpoint that has them.
    expansion: dict | None = None

    def opt(self, name: str) -> str:
        return self.options.get(name, MODEL_DEFAULTS[name])

    def int_opt(self, name: str) -> int:
        return int(self.opt(name))

    def bool_opt(self, name: str) -> bool:
        return self.opt(name) in ("true", "1")

    @property
    def model(self) -> str:
        return self.opt("model")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    path = str(path)
    from .integrity import FormatError, open_statex  # CRC-32 and digests checked first
    try:
        f = open_statex(path)
    except CheckpointError:  # IntegrityError: damaged, named
        raise
    except FormatError as err:  # missing, not HDF5
        raise CheckpointError(f"{path}: cannot open as HDF5: {err.reason}") from err
    with f:
        fmt = _text(f.attrs.get("format", ""))
        if fmt != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: field '/@format' is {fmt!r}, expected "
                                  f"'{CHECKPOINT_FORMAT}' (is this a results file?)")
        version = int(f.attrs.get("format_version", -1))
        if version != CHECKPOINT_VERSION:
            raise CheckpointError(f"{path}: field '/@format_version' is {version}; this package "
                                  f"reads version {CHECKPOINT_VERSION}")
        for name in ("model", "params", "model/layer_heads", "model/layer_d_state"):
            if name not in f:
                raise CheckpointError(f"{path}: field '/{name}' missing")
        options = {k.removeprefix("model."): _text(v) for k, v in f["model"].attrs.items()}
        params = {name: np.asarray(ds[()], dtype=np.float32) for name, ds in f["params"].items()}
        expansion = None
        if "expansion" in f:
            x = f["expansion"].attrs
            expansion = {"layers": [int(v) for v in np.atleast_1d(x["layers"])],
                         "mode": _text(x["mode"]), "source": _text(x["source"])}
        return Checkpoint(options=options,
                          layer_heads=[int(x) for x in f["model/layer_heads"][()]],
                          layer_d_state=[int(x) for x in f["model/layer_d_state"][()]],
                          params=params, step=int(f.attrs.get("step", 0)), expansion=expansion)


def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> None:
    # Chunked with HDF5's Fletcher32 checksum: corruption is detected on read. A 0-d array
    # cannot be chunked; /attr_digests covers it.
    if data.ndim == 0 or data.size == 0:
        group.create_dataset(name, data=data)
    else:  # chunks of up to ~4 MiB along the first axis, as the C++ writes them
        row_bytes = max(1, data.nbytes // data.shape[0])
        chunks = (max(1, min(data.shape[0], (4 << 20) // row_bytes)),) + data.shape[1:]
        group.create_dataset(name, data=data, chunks=chunks, fletcher32=True)


def write_checkpoint(path: str | os.PathLike, ck: Checkpoint) -> None:
    """Writes atomically (temporary file in the same directory, flushed, then renamed), with the
    integrity layers the C++ writes (integrity.write_protected: HDF5 1.10 format, the user-block
    CRC-32, /attr_digests), so `statex` checks the file as one of its own. Parameters must be in
    C++ table order and have the table's shapes (check with param_layout first)."""
    from .integrity import write_protected
    from .outputs import OutputError, commit, temp_beside

    path = Path(path)
    tmp = temp_beside(path)

    def fill(f: h5py.File) -> None:
        f.attrs["format"] = CHECKPOINT_FORMAT
        f.attrs["format_version"] = np.int32(CHECKPOINT_VERSION)
        f.attrs["step"] = np.int64(ck.step)
        f.attrs["step_unit"] = "steps"
        m = f.create_group("model")
        for key, value in ck.options.items():
            m.attrs[f"model.{key}"] = value
        _dataset(m, "layer_heads", np.asarray(ck.layer_heads, np.int32))
        _dataset(m, "layer_d_state", np.asarray(ck.layer_d_state, np.int32))
        p = f.create_group("params", track_order=True)  # the binary reads creation order
        for name, value in ck.params.items():
            _dataset(p, name, np.ascontiguousarray(value, dtype=np.float32))
        if ck.expansion is not None:  # typed as sim/io/checkpoint.cpp writes them
            x = f.create_group("expansion")
            x.attrs["layers"] = np.asarray(ck.expansion["layers"], np.int64)
            x.attrs["mode"] = ck.expansion["mode"]
            x.attrs["source"] = ck.expansion["source"]

    try:
        write_protected(str(tmp), fill)
        commit(tmp, path)
    except OSError as err:
        raise OutputError(f"cannot write '{path}': {err.strerror or err}") from err
    finally:
        if tmp.exists():
            tmp.unlink()


def key_dim(ck: Checkpoint) -> int:  # Dk; C++ multiplies a float by an int in float32
    return int(np.float32(ck.opt("expand_k")) * np.float32(ck.int_opt("d_model")))


def value_dim(ck: Checkpoint) -> int:  # Dv
    return int(np.float32(ck.opt("expand_v")) * np.float32(ck.int_opt("d_model")))


def hidden_mlp(ck: Checkpoint) -> int:  # F: 0 = 8D/3 rounded up to a multiple of 8
    D, F = ck.int_opt("d_model"), ck.int_opt("mlp_hidden")
    return F if F > 0 else ((8 * D // 3 + 7) // 8) * 8


def param_layout(ck: Checkpoint) -> dict[str, tuple[int, ...]]:
    """name -> shape of every parameter, in the C++ table's order (sim/model/param_layout.cpp)."""
    D, V, L, W = (ck.int_opt(k) for k in ("d_model", "vocab_size", "n_layers", "conv_width"))
    mamba = ck.model == "mamba2"
    if ck.model not in ("gla", "mamba2", "gated_deltanet", "attention"):
        raise CheckpointError(f"model.model = {ck.model!r}: this package knows gla, mamba2, "
                              f"gated_deltanet and attention")
    prefix = "backbone.layers." if mamba else "model.layers."
    out: dict[str, tuple[int, ...]] = {
        ("backbone.embedding.weight" if mamba else "model.embeddings.weight"): (V, D)}
    for i in range(L):
        lp = f"{prefix}{i}."
        out[lp + ("norm.weight" if mamba else "attn_norm.weight")] = (D,)
        if mamba:
            di, G, P = ck.int_opt("expand") * D, ck.int_opt("ngroups"), ck.int_opt("head_dim")
            N, H = ck.layer_d_state[i], di // P
            conv = di + 2 * G * N
            mixer = {"in_proj.weight": (2 * di + 2 * G * N + H, D), "conv1d.weight": (conv, 1, W),
                     "conv1d.bias": (conv,), "dt_bias": (H,), "A_log": (H,), "D": (H,),
                     "norm.weight": (di,), "out_proj.weight": (D, di)}
        elif ck.model == "gated_deltanet":
            Dk, Dv, H = key_dim(ck), value_dim(ck), ck.layer_heads[i]
            mixer = {"q_proj.weight": (Dk, D), "k_proj.weight": (Dk, D),
                     "v_proj.weight": (Dv, D), "g_proj.weight": (Dv, D), "a_proj.weight": (H, D),
                     "b_proj.weight": (H, D), "A_log": (H,), "dt_bias": (H,),
                     "o_norm.weight": (Dv // H,), "o_proj.weight": (D, Dv)}
        elif ck.model == "attention":
            Dk = Dv = D
            mixer = {f"{n}_proj.weight": (D, D) for n in "qkvo"}
        else:
            Dk, Dv, r = key_dim(ck), value_dim(ck), ck.int_opt("gate_low_rank")
            mixer = {"q_proj.weight": (Dk, D), "k_proj.weight": (Dk, D),
                     "v_proj.weight": (Dv, D), "g_proj.weight": (Dv, D),
                     "gk_proj.0.weight": (r, D), "gk_proj.1.weight": (Dk, r),
                     "gk_proj.1.bias": (Dk,), "o_proj.weight": (D, Dv),
                     "g_norm.weight": (Dv // ck.layer_heads[i],)}
        if not mamba and ck.bool_opt("use_short_conv"):
            mixer.update({"q_conv1d.weight": (Dk, 1, W), "k_conv1d.weight": (Dk, 1, W),
                          "v_conv1d.weight": (Dv, 1, W)})
        mixer_prefix = lp + ("mixer." if mamba else "attn.")
        out.update({mixer_prefix + k: v for k, v in mixer.items()})
        if ck.bool_opt("mlp"):
            F = hidden_mlp(ck)
            out[lp + ("norm2.weight" if mamba else "mlp_norm.weight")] = (D,)
            out[lp + "mlp.gate_proj.weight"] = (F, D)
            out[lp + "mlp.up_proj.weight"] = (F, D)
            out[lp + "mlp.down_proj.weight"] = (D, F)
    out["backbone.norm_f.weight" if mamba else "model.norm.weight"] = (D,)
    if not ck.bool_opt("tie_embeddings"):
        out["lm_head.weight"] = (V, D)
    return out


def check_layout(ck: Checkpoint, where: str) -> None:
    """Raises CheckpointError naming the first missing, extra or misshapen parameter."""
    want = param_layout(ck)
    for name, shape in want.items():
        if name not in ck.params:
            raise CheckpointError(f"{where}: parameter '{name}' missing (expected shape "
                                  f"{list(shape)})")
        if tuple(ck.params[name].shape) != shape:
            raise CheckpointError(f"{where}: parameter '{name}' has shape "
                                  f"{list(ck.params[name].shape)}, expected {list(shape)}")
    extra = [n for n in ck.params if n not in want]
    if extra:
        raise CheckpointError(f"{where}: {len(extra)} unexpected parameter(s), e.g. '{extra[0]}'")


def in_table_order(ck: Checkpoint) -> Checkpoint:
    """The same checkpoint with params reordered as the C++ table (after check_layout)."""
    ck.params = {name: ck.params[name] for name in param_layout(ck)}
    return ck
