"""The three state-size conventions (docs/design.md §1 "State accounting", docs/analysis.md).

  recurrent       the recurrent state only (ours, the default; attention: its KV cache 2·T·D)
  recurrent+conv  plus the conv state, (W-1) × channels of each causal conv
  zoology         what HazyResearch/zoology's state_size() methods return, per family:
                  GLA Dk·Dv/H + W·(2Dk + Dv) with its short conv; Mamba2 2·D·N (no conv, whatever
                  expand); Gated DeltaNet H·K·V (its short conv not counted); attention 2·T·D
                  (+ W·3D for our optional short conv, which Zoology's MHA lacks)

Results files record each total (`state_scalars`, `state_with_conv_scalars`,
`zoology_state_scalars`); files from before an attribute existed, and the StateX before / after
sizes (recorded in the recurrent convention only), get it from the recurrent total and the run's
config with the per-family functions below (one for every family: tests check the tables are
complete, and a family they lack gives NaN and a warning, never another family's formula)."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

CONVENTIONS = ("recurrent", "recurrent+conv", "zoology")
DEFAULT = "recurrent"
# What a table header / axis label calls the state size in each convention.
LABEL = {"recurrent": "recurrent state", "recurrent+conv": "recurrent+conv state",
         "zoology": "Zoology state_size()"}
# What an axis calls it.
AXIS = {"recurrent": "recurrent state size", "recurrent+conv": "recurrent+conv state size",
        "zoology": "Zoology state_size()"}
# One sentence for a report's index.
DESCRIPTION = {
    "recurrent": "recurrent state only (convention `recurrent`: conv state not counted; "
                 "attention: its KV cache 2·T·D at the longest test length T)",
    "recurrent+conv": "recurrent state plus conv state (convention `recurrent+conv`: "
                      "(W-1) × channels of each causal conv)",
    "zoology": "Zoology's state_size() (convention `zoology`: GLA Dk·Dv/H + W·(2Dk+Dv) with "
               "its short conv; Mamba2 2·D·N, no conv; Gated DeltaNet H·K·V, no conv; "
               "attention 2·T·D; docs/design.md §1)",
}
# The results-file attribute (summary column) holding the model total of each convention.
RECORDED = {"recurrent": "state_scalars", "recurrent+conv": "state_with_conv_scalars",
            "zoology": "zoology_state_scalars"}
# StateX sizes, recorded in the recurrent convention only.
STATEX_COLUMNS = ("statex_state_scalars_before", "statex_state_scalars_after")


def check(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"--state must be one of {', '.join(CONVENTIONS)}, not '{convention}'")
    return convention


@dataclass
class Shape:
    """The options of a run that the conversions read (config values as written)."""

    L: int       # model.n_layers
    D: int       # model.d_model
    Dk: int      # int(expand_k · D), in float32 as the C++ computes it
    Dv: int      # int(expand_v · D)
    conv: bool   # model.use_short_conv
    W: int       # model.conv_width
    expand: int  # model.expand (Mamba2)
    G: int       # model.ngroups (Mamba2)


def _number(row: dict, key: str) -> float:
    value = row.get(key)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _flag(row: dict, key: str) -> bool | None:
    value = str(row.get(key, "")).strip().lower()
    if value in ("true", "1", "yes", "on", "1.0"):
        return True
    if value in ("false", "0", "no", "off", "0.0"):
        return False
    return None


def shape_of(row: dict) -> Shape | None:
    """The run's Shape, or None when its config lacks an option the conversion needs."""
    keys = ("model.n_layers", "model.d_model", "model.expand_k", "model.expand_v",
            "model.conv_width", "model.expand", "model.ngroups")
    values = {k: _number(row, k) for k in keys}
    conv = _flag(row, "model.use_short_conv")
    if any(math.isnan(v) for v in values.values()) or conv is None:
        return None
    D = int(values["model.d_model"])
    dim = lambda e: int(np.float32(e) * np.float32(D))  # noqa: E731  (ModelConfig::key_dim)
    return Shape(L=int(values["model.n_layers"]), D=D, Dk=dim(values["model.expand_k"]),
                 Dv=dim(values["model.expand_v"]), conv=conv, W=int(values["model.conv_width"]),
                 expand=int(values["model.expand"]), G=int(values["model.ngroups"]))


def _mamba2_zoology(R: float, s: Shape) -> float:
    # Recurrent: Σ d_inner·N_l = expand·D·ΣN; Zoology: Σ 2·D·N_l = 2·D·ΣN.
    n_sum = R / (s.expand * s.D)
    return 2 * s.D * n_sum if float(n_sum).is_integer() else math.nan


def _mamba2_with_conv(R: float, s: Shape) -> float:
    # conv per layer (W-1)·(d_inner + 2·G·N_l): Σ = (W-1)·(L·d_inner + 2·G·ΣN).
    d_inner = s.expand * s.D
    n_sum = R / d_inner
    return R + (s.W - 1) * (s.L * d_inner + 2 * s.G * n_sum) if float(n_sum).is_integer() \
        else math.nan


# The model total in each convention from the recurrent total R, per family.
FROM_RECURRENT: dict[str, dict[str, Callable[[float, Shape], float]]] = {
    "recurrent+conv": {
        "gla": lambda R, s: R + (s.L * (s.W - 1) * (2 * s.Dk + s.Dv) if s.conv else 0),
        "gated_deltanet": lambda R, s: R + (s.L * (s.W - 1) * (2 * s.Dk + s.Dv) if s.conv else 0),
        "mamba2": _mamba2_with_conv,
        "attention": lambda R, s: R + (s.L * (s.W - 1) * 3 * s.D if s.conv else 0),
    },
    "zoology": {  # Zoology's state_size() (zoology/mixers/*.py; docs/design.md §1)
        "gla": lambda R, s: R + (s.L * s.W * (2 * s.Dk + s.Dv) if s.conv else 0),
        "gated_deltanet": lambda R, s: R,
        "mamba2": _mamba2_zoology,
        "attention": lambda R, s: R + (s.L * s.W * 3 * s.D if s.conv else 0),
    },
}

_warned: set[tuple[str, str]] = set()


def from_recurrent(recurrent: float, row: dict, convention: str) -> float:
    """The model total in `convention` of a run whose recurrent total is `recurrent`, from its
    config (`row`: model.* options and `model`). NaN (with a warning) for a family without a
    formula here or a config that lacks the options."""
    check(convention)
    if convention == "recurrent":
        return recurrent
    try:
        recurrent = float(recurrent)
    except (TypeError, ValueError):
        return math.nan
    if math.isnan(recurrent):
        return math.nan
    family = str(row.get("model") or row.get("model.model") or "")
    formula = FROM_RECURRENT[convention].get(family)
    shape = shape_of(row)
    if formula is None or shape is None:
        if (family, convention) not in _warned:
            _warned.add((family, convention))
            why = f"no {convention} formula for model '{family}'" if formula is None else \
                "the run's config lacks the model options it needs"
            warnings.warn(f"state size: {why}; left empty (NaN)", stacklevel=2)
        return math.nan
    return float(formula(recurrent, shape))


def _finite(value) -> bool:
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def apply(row: dict, convention: str) -> dict:
    """Sets the row's `state_scalars` and StateX before / after sizes to `convention` (the
    recorded total where the file has it, else from the recurrent total); the recurrent values
    stay in `recurrent_state_scalars` and `<statex column>_recurrent`. Idempotent."""
    check(convention)
    if "recurrent_state_scalars" not in row:
        row["recurrent_state_scalars"] = row.get("state_scalars", math.nan)
        for col in STATEX_COLUMNS:
            row[f"{col}_recurrent"] = row.get(col, math.nan)
    recurrent = row["recurrent_state_scalars"]
    recorded = row.get(RECORDED[convention], math.nan) if convention != "recurrent" else recurrent
    row["state_scalars"] = recorded if _finite(recorded) else \
        from_recurrent(recurrent, row, convention)
    for col in STATEX_COLUMNS:
        before = row[f"{col}_recurrent"]
        row[col] = from_recurrent(before, row, convention) if _finite(before) else before
    row["state_convention"] = convention
    return row
