"""`export-safetensors` / `import-safetensors`: a statex checkpoint <-> a Hugging Face style model
directory (`model.safetensors` + `config.json`) with fla's / transformers' names
(hf_format.py). Both directions are exact: float32 values are copied bit for bit.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import (MODEL_DEFAULTS, CheckpointError, check_layout, in_table_order,
                         read_checkpoint, write_checkpoint)
from .hf_format import from_hf, to_hf
from .outputs import (OutputError, OutputExistsError, atomic_write_all, check_output_dir,
                      check_output_file, make_dir, same_file)
from .safetensors_file import read_safetensors
from .validate import check_config, check_finite, check_model_options

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


@dataclass
class ExportResult:
    weights: Path
    config: Path
    n_tensors: int
    warnings: list[str]


def export_safetensors(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                       overwrite: bool = False) -> ExportResult:
    """Writes out_dir/model.safetensors and out_dir/config.json. Raises CheckpointError (bad
    input, IntegrityError for a damaged one), OutputExistsError (a FileExistsError: output exists
    and not overwrite) or OutputError (an output path that cannot be written, or that is the
    input) before writing anything. Both files are written to temporary files first and renamed
    into place only when both are complete."""
    from safetensors.numpy import save_file

    out = check_output_dir(out_dir, inputs=[checkpoint])
    weights, config_path = out / WEIGHTS_NAME, out / CONFIG_NAME
    for path in (weights, config_path):
        if path.is_dir():
            raise OutputError(f"--out '{out}': '{path}' is a directory, not a file")
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} exists (give --overwrite to replace it)")
        if path.exists() and same_file(path, checkpoint):
            raise OutputError(f"--out '{out}': '{path}' is the input '{checkpoint}': an output "
                              f"never replaces one of the command's inputs")
    ck = read_checkpoint(checkpoint)
    check_model_options(ck.options, str(checkpoint))
    check_layout(ck, str(checkpoint))
    check_finite(ck.params, str(checkpoint))
    tensors, config, warnings = _converted(lambda: to_hf(ck), str(checkpoint))
    make_dir(out)
    contiguous = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    text = json.dumps(config, indent=2, sort_keys=False, allow_nan=False) + "\n"
    # {"format": "pt"}: what transformers writes and expects in the safetensors header.
    atomic_write_all([
        (weights, lambda tmp: save_file(contiguous, tmp, metadata={"format": "pt"})),
        (config_path, lambda tmp: Path(tmp).write_text(text))])
    return ExportResult(weights, config_path, len(tensors), warnings)


def read_hf_dir(model_dir: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors, config) of a model directory, every byte checked (safetensors_file.py,
    validate.py); CheckpointError naming the file and the field or tensor."""
    d = Path(model_dir)
    if not d.is_dir():
        raise CheckpointError(f"{d}: not a directory (a model directory holds {WEIGHTS_NAME} and "
                              f"{CONFIG_NAME})")
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        if not (d / name).is_file():
            raise CheckpointError(f"{d}: no {name} (a directory written by export-safetensors or "
                                  f"by save_pretrained(..., safe_serialization=True))")
    try:
        text = (d / CONFIG_NAME).read_bytes().decode("utf-8")
        config = json.loads(text, parse_constant=_no_constant)
    except OSError as err:
        raise CheckpointError(f"{d / CONFIG_NAME}: cannot read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{d / CONFIG_NAME}: not UTF-8 text ({err.reason})") from err
    except ValueError as err:
        raise CheckpointError(f"{d / CONFIG_NAME}: not JSON: {err}") from err
    check_config(config, str(d / CONFIG_NAME))
    tensors, _ = read_safetensors(d / WEIGHTS_NAME)
    for name, value in tensors.items():
        if value.size == 0:
            raise CheckpointError(f"{d / WEIGHTS_NAME}: tensor '{name}' has no elements (shape "
                                  f"{list(value.shape)}); no statex-sim parameter is empty")
    check_finite(tensors, str(d / WEIGHTS_NAME))
    return tensors, config


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON (Python's json writes it for a non-finite float)")


def _converted(convert, where: str):
    """Runs a converter (hf_format.from_hf / to_hf) on checked input. The checks above and in
    validate.py cover what those read; anything they still trip on is named as bad input
    instead of a traceback. Messages that name `config.json` / `model.safetensors` get the
    directory `where` in front."""
    try:
        return convert()
    except CheckpointError as err:
        text = str(err)
        if text.startswith((CONFIG_NAME + ":", WEIGHTS_NAME + ":")) and os.path.isdir(where):
            raise CheckpointError(str(Path(where) / text)) from err
        raise
    except KeyError as err:
        raise CheckpointError(f"{where}: field or tensor {err} missing") from err
    except (ValueError, TypeError, ZeroDivisionError, IndexError, AttributeError,
            OverflowError) as err:
        raise CheckpointError(f"{where}: cannot be converted ({type(err).__name__}: {err})") \
            from err


def import_safetensors(model_dir: str | os.PathLike, out: str | os.PathLike,
                       overwrite: bool = False) -> tuple[Path, dict]:
    """Writes the statex checkpoint `out`; returns its path and the model options. The output is
    checked first (never one of the directory's files, --overwrite, a writable directory)."""
    d = Path(model_dir)
    out = check_output_file(out, inputs=[d / WEIGHTS_NAME, d / CONFIG_NAME],
                            overwrite=overwrite)
    tensors, config = read_hf_dir(d)
    ck = _converted(lambda: from_hf(tensors, config), str(d))
    check_model_options(ck.options, str(d / CONFIG_NAME))
    check_layout(ck, str(d / WEIGHTS_NAME))
    in_table_order(ck)
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
