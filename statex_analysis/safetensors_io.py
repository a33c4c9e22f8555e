"""`export-safetensors` / `import-safetensors`: a statex checkpoint <-> a Hugging Face style model
directory (`model.safetensors` + `config.json`) with fla's / transformers' names
(hf_format.py). Both directions are exact: float32 values are copied bit for bit.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import (MODEL_DEFAULTS, CheckpointError, check_layout, in_table_order,
                         read_checkpoint, write_checkpoint)
from .hf_format import from_hf, to_hf

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


@dataclass
class ExportResult:
    weights: Path
    config: Path
    n_tensors: int
    warnings: list[str]


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export_safetensors(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                       overwrite: bool = False) -> ExportResult:
    """Writes out_dir/model.safetensors and out_dir/config.json. Raises CheckpointError (bad
    input) or FileExistsError (output exists and not overwrite) before writing anything."""
    from safetensors.numpy import save_file

    ck = read_checkpoint(checkpoint)
    check_layout(ck, str(checkpoint))
    tensors, config, warnings = to_hf(ck)
    out = Path(out_dir)
    weights, config_path = out / WEIGHTS_NAME, out / CONFIG_NAME
    if not overwrite:
        for path in (weights, config_path):
            if path.exists():
                raise FileExistsError(f"{path} exists (give --overwrite to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    contiguous = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    # {"format": "pt"}: what transformers writes and expects in the safetensors header.
    _atomic_write(weights, lambda tmp: save_file(contiguous, tmp, metadata={"format": "pt"}))
    _atomic_write(config_path, lambda tmp: Path(tmp).write_text(
        json.dumps(config, indent=2, sort_keys=False) + "\n"))
    return ExportResult(weights, config_path, len(tensors), warnings)


def read_hf_dir(model_dir: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors, config) of a model directory; CheckpointError naming what is missing."""
    from safetensors.numpy import load_file

    d = Path(model_dir)
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        if not (d / name).is_file():
            raise CheckpointError(f"{d}: no {name} (a directory written by export-safetensors or "
                                  f"by save_pretrained(..., safe_serialization=True))")
    try:
        config = json.loads((d / CONFIG_NAME).read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{d / CONFIG_NAME}: not JSON: {err}") from err
    tensors = load_file(str(d / WEIGHTS_NAME))
    bad = {k: str(v.dtype) for k, v in tensors.items() if v.dtype != np.float32}
    if bad:
        name, dtype = next(iter(bad.items()))
        raise CheckpointError(f"{d / WEIGHTS_NAME}: '{name}' is {dtype}; statex-sim trains in "
                              f"float32 (convert with model.float() before save_pretrained)")
    return tensors, config


def import_safetensors(model_dir: str | os.PathLike, out: str | os.PathLike,
                       overwrite: bool = False) -> tuple[Path, dict]:
    """Writes the statex checkpoint `out`; returns its path and the model options."""
    tensors, config = read_hf_dir(model_dir)
    ck = from_hf(tensors, config)
    check_layout(ck, str(Path(model_dir) / WEIGHTS_NAME))
    in_table_order(ck)
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (give --overwrite to replace it)")
    default_heads, default_state = _default_shape(ck)
    odd = [i for i, (h, n) in enumerate(zip(ck.layer_heads, ck.layer_d_state))
           if h != default_heads or n != default_state]
    if odd:  # lets `statex train --init-from` accept per-layer shapes (sim/train/trainer.cpp)
        ck.expansion = {"layers": odd, "mode": "import", "source": str(model_dir)}
    write_checkpoint(out, ck)
    return out, ck.options


def _default_shape(ck) -> tuple[int, int]:
    """(heads, d_state) the C++ assumes for a layer without per-layer shapes."""
    if ck.model == "mamba2":
        return ck.int_opt("expand") * ck.int_opt("d_model") // ck.int_opt("head_dim"), \
            ck.int_opt("d_state")
    return ck.int_opt("heads"), 0


def train_options(options: dict[str, str]) -> str:
    """The `--model.*` options (those not at their default) that `statex train --init-from`
    needs to match the checkpoint."""
    def same(value: str, default: str) -> bool:
        try:
            return float(value) == float(default)
        except ValueError:
            return value == default
    return " ".join(f"--model.{k} {v}" for k, v in options.items()
                    if k not in MODEL_DEFAULTS or not same(v, MODEL_DEFAULTS[k]))
