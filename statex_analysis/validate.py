"""Type checks of what the model converters read from outside (config.json, a checkpoint's /model
options, tensor values), so that hostile or hand-edited input is refused naming the field, never
a traceback nor a silently different model.

- config.json must be a JSON object; every field this package reads must have its JSON type
  (integers are integers, not strings, floats or booleans; sizes are positive), and the `statex`
  entry of an export must have the layout export-safetensors writes.
- Model options (a checkpoint's `/model` attributes, or config.json's statex.model_options) must
  be options statex-sim has, each parseable as the C++ parses it: integers as integers, floats
  finite, booleans `true` / `false` / `1` / `0` (the only spellings checkpoint.bool_opt reads: a
  `yes` would be read as false here and as true by the C++).
- Weights must be finite: a NaN or inf is refused naming the tensor and how many values.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .checkpoint import MODEL_DEFAULTS, CheckpointError

MODELS = ("gla", "mamba2", "gated_deltanet", "attention")
INT_OPTIONS = {"vocab_size": 1, "d_model": 1, "n_layers": 1, "mlp_hidden": 0, "heads": 1,
               "conv_width": 1, "gate_low_rank": 1, "expand": 1, "head_dim": 1, "ngroups": 1,
               "d_state": 1}  # name -> smallest value
FLOAT_OPTIONS = {"norm_eps": False, "expand_k": True, "expand_v": True,
                 "gate_logit_normalizer": False, "rope_theta": True}  # name -> must be > 0
BOOL_OPTIONS = ("mlp", "tie_embeddings", "use_short_conv", "rope")
_INT = re.compile(r"[+-]?\d+")

# config.json fields read by hf_*.py: name -> (kind, smallest value). None is allowed where fla /
# transformers write null. Fields not listed are not read.
CONFIG_FIELDS = {
    "vocab_size": ("int", 1), "hidden_size": ("int", 1), "num_hidden_layers": ("int", 1),
    "num_heads": ("int", 1), "num_kv_heads": ("int?", 1), "num_v_heads": ("int?", 1),
    "head_dim": ("int", 1), "conv_size": ("int", 1), "conv_kernel": ("int", 1),
    "expand": ("int", 1), "state_size": ("int", 1), "n_groups": ("int", 1),
    "intermediate_size": ("int?", 1), "hidden_ratio": ("int?", 1),
    "expand_k": ("float", 0), "expand_v": ("float", 0), "norm_eps": ("float", 0),
    "layer_norm_epsilon": ("float", 0), "rope_theta": ("float?", 0),
    "tie_word_embeddings": ("bool", None), "use_short_conv": ("bool", None),
    "use_gate": ("bool", None), "use_output_gate": ("bool", None),
    "allow_neg_eigval": ("bool", None), "elementwise_affine": ("bool?", None),
    "use_bias": ("bool", None), "use_conv_bias": ("bool", None), "rms_norm": ("bool", None),
    "model_type": ("str", None), "hidden_act": ("str", None),
}


def _kind_ok(value, kind: str) -> bool:
    if kind.endswith("?"):
        if value is None:
            return True
        kind = kind[:-1]
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value)
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


_KIND_NAME = {"int": "an integer", "float": "a finite number", "bool": "true or false",
              "str": "a string"}


def check_config(config, where: str) -> dict:
    """config.json as a dict whose known fields have their types; CheckpointError otherwise."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: not a JSON object but a {_json_type(config)}; a model "
                              f"directory's config.json is an object of fields")
    for key, (kind, low) in CONFIG_FIELDS.items():
        if key not in config:
            continue
        value = config[key]
        if not _kind_ok(value, kind):
            raise CheckpointError(f"{where}: {key} = {value!r} is not "
                                  f"{_KIND_NAME[kind.rstrip('?')]}")
        if low is not None and value is not None and value < low:
            raise CheckpointError(f"{where}: {key} = {value!r} must be "
                                  f"{'>= ' + str(low) if kind.startswith('int') else '> 0'}")
        if kind.startswith("float") and value is not None and low == 0 and value <= 0:
            raise CheckpointError(f"{where}: {key} = {value!r} must be > 0")
    limit = config.get("time_step_limit")
    if limit is not None and not (isinstance(limit, list) and len(limit) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in limit)):
        raise CheckpointError(f"{where}: time_step_limit = {limit!r} is not a pair of numbers")
    ours = config.get("statex")
    if ours is not None:
        _check_statex_entry(ours, where)
    return config


def _check_statex_entry(ours, where: str) -> None:
    if not isinstance(ours, dict):
        raise CheckpointError(f"{where}: statex = {ours!r} is not an object")
    options = ours.get("model_options")
    if not isinstance(options, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in options.items()):
        raise CheckpointError(f"{where}: statex.model_options is not an object of option "
                              f"strings (as export-safetensors writes it)")
    for key in ("layer_heads", "layer_d_state"):
        value = ours.get(key)
        if value is not None and not (isinstance(value, list) and all(
                _kind_ok(v, "int") and v >= 0 for v in value)):
            raise CheckpointError(f"{where}: statex.{key} = {value!r} is not a list of "
                                  f"integers >= 0")
    step = ours.get("step", 0)
    if not _kind_ok(step, "int") or step < 0:
        raise CheckpointError(f"{where}: statex.step = {step!r} is not an integer >= 0")
    if not isinstance(ours.get("zero_mlp", False), bool):
        raise CheckpointError(f"{where}: statex.zero_mlp = {ours.get('zero_mlp')!r} is not true "
                              f"or false")


def _json_type(value) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def check_model_options(options: dict, where: str) -> None:
    """CheckpointError naming the first option statex-sim does not have or whose value the C++
    would not parse (or would parse differently)."""
    for name, value in options.items():
        if name not in MODEL_DEFAULTS:
            raise CheckpointError(f"{where}: model.{name} is not a statex-sim model option "
                                  f"(known: {', '.join(MODEL_DEFAULTS)})")
        if not isinstance(value, str):
            raise CheckpointError(f"{where}: model.{name} = {value!r} is not a string")
        if name == "model":
            if value not in MODELS:
                raise CheckpointError(f"{where}: model.model = {value!r}; statex-sim has "
                                      f"{', '.join(MODELS)}")
        elif name in INT_OPTIONS:
            if not _INT.fullmatch(value) or int(value) < INT_OPTIONS[name]:
                raise CheckpointError(f"{where}: model.{name} = {value!r} is not an integer >= "
                                      f"{INT_OPTIONS[name]}")
        elif name in FLOAT_OPTIONS:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number) or number < 0 or (FLOAT_OPTIONS[name] and number == 0):
                raise CheckpointError(f"{where}: model.{name} = {value!r} is not a finite "
                                      f"number {'> 0' if FLOAT_OPTIONS[name] else '>= 0'}")
        elif name in BOOL_OPTIONS and value not in ("true", "false", "1", "0"):
            raise CheckpointError(f"{where}: model.{name} = {value!r} is not true / false")


def check_finite(tensors: dict[str, np.ndarray], where: str) -> None:
    """CheckpointError naming the first tensor holding a NaN or an infinity."""
    for name, value in tensors.items():
        bad = ~np.isfinite(value)
        if bad.any():
            first = np.unravel_index(int(np.argmax(bad)), value.shape)
            raise CheckpointError(f"{where}: '{name}' holds {int(bad.sum())} non-finite "
                                  f"value(s) (the first, {value[first]!r}, at index "
                                  f"{list(map(int, first))}); statex-sim refuses NaN / inf weights")
