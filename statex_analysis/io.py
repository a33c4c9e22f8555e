"""Reads one statex-sim results file (docs/results_format.md, format_version 1) into a RunData.

The plateau-escape attributes are optional (files from before the writer stored them get them
computed by plateau.py).

Everything the package knows about the HDF5 layout lives here: which fields are required, how
strings and arrays are decoded, and the FormatError raised (naming file and field) when a file
is not one we can read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from . import plateau

RESULTS_FORMAT = "statex-sim results"
CHECKPOINT_FORMAT = "statex-sim checkpoint"
SUPPORTED_VERSIONS = (1,)
BYTES_PER_SCALAR = 4  # fp32 state

# Required in every results file, whatever its status.
REQUIRED_ROOT_ATTRS = ("format", "format_version", "status")
REQUIRED_MODEL_ATTRS = ("model", "state_scalars")
# Required once a run says it completed (a failed or running run may stop before any eval).
REQUIRED_WHEN_COMPLETED = ("/eval/step", "/eval/accuracy", "/curves/step", "/curves/loss")


class FormatError(Exception):
    """A file the package cannot read: not HDF5, foreign format, unknown version, missing field."""

    def __init__(self, path: str, field_name: str | None, message: str):
        self.path = str(path)
        self.field = field_name
        self.reason = message
        where = f" field '{field_name}'" if field_name else ""
        super().__init__(f"{self.path}:{where} {message}")


@dataclass
class RunData:
    """Everything one results file holds that the analysis uses. Arrays are numpy, may be empty."""

    path: str
    summary: dict[str, Any]              # status, arm, model, state sizes, accuracies ...
    config: dict[str, str]               # /config attrs, option name -> value string
    curves: dict[str, np.ndarray]        # step, loss, lr, grad_norm, tokens_per_s  [S]
    evals: dict[str, np.ndarray]         # step, loss, accuracy [E]; segment_accuracy [E, nseg];
                                         # gap_accuracy, gap_count [E, nbucket]
    gap_edges: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    segments: list[str] = field(default_factory=list)  # "T:K:count" per segment column
    statex: dict[str, Any] | None = None  # /statex attrs when an expansion happened
    # /valid (validation split, when configured): step, loss, accuracy [E] at the /eval steps
    valid: dict[str, np.ndarray] = field(default_factory=dict)


def _decode(value: Any) -> Any:
    """h5py attribute value -> plain Python (str for strings, scalar for 0-d, list for 1-d)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _decode(value[()])
        return [_decode(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs(obj: h5py.HLObject) -> dict[str, Any]:
    return {k: _decode(v) for k, v in obj.attrs.items()}


def _dataset(f: h5py.File, name: str) -> np.ndarray | None:
    if name not in f:
        return None
    node = f[name]
    if not isinstance(node, h5py.Dataset):
        return None
    return np.asarray(node[()])


def _check_header(path: str, root: dict[str, Any]) -> None:
    if root.get("format") == CHECKPOINT_FORMAT:  # before the results-only attrs it lacks
        raise FormatError(path, "/@format", f"is a checkpoint ('{CHECKPOINT_FORMAT}'), not a "
                          f"results file")
    for name in REQUIRED_ROOT_ATTRS:
        if name not in root:
            raise FormatError(path, f"/@{name}", "missing required attribute")
    fmt = root["format"]
    if fmt != RESULTS_FORMAT:
        raise FormatError(path, "/@format", f"unknown format '{fmt}' (expected '{RESULTS_FORMAT}')")
    version = root["format_version"]
    if not isinstance(version, (int, np.integer)) or int(version) not in SUPPORTED_VERSIONS:
        raise FormatError(path, "/@format_version",
                          f"unsupported format_version {version!r} (this package reads "
                          f"{', '.join(map(str, SUPPORTED_VERSIONS))})")


def _read_statex(f: h5py.File) -> dict[str, Any] | None:
    if "statex" not in f:
        return None
    attrs = _attrs(f["statex"])
    layers = attrs.get("layers", [])
    attrs["layers"] = [int(x) for x in (layers if isinstance(layers, list) else [layers])]
    return attrs


def read_run(path: str | os.PathLike) -> RunData:
    """Reads a results file. Raises FormatError naming the file and field on anything unknown."""
    path = str(path)
    from .integrity import open_statex  # the file CRC-32 and digests, checked before reading
    f = open_statex(path)
    with f:
        root = _attrs(f)
        _check_header(path, root)
        if "config" not in f:
            raise FormatError(path, "/config", "missing required group")
        config = {k: str(v) for k, v in _attrs(f["config"]).items()}
        if "model" not in f:
            raise FormatError(path, "/model", "missing required group")
        model = _attrs(f["model"])
        for name in REQUIRED_MODEL_ATTRS:
            if name not in model:
                raise FormatError(path, f"/model/@{name}", "missing required attribute")
        if root["status"] == "completed":
            for name in REQUIRED_WHEN_COMPLETED:
                if _dataset(f, name) is None:
                    raise FormatError(path, name, "missing required dataset (status is completed)")

        curves = {k: _dataset(f, f"/curves/{k}") for k in
                  ("step", "loss", "lr", "grad_norm", "tokens_per_s")}
        evals = {k: _dataset(f, f"/eval/{k}") for k in
                 ("step", "loss", "accuracy", "segment_accuracy", "gap_accuracy", "gap_count",
                  "class_accuracy", "class_count")}
        curves = {k: v for k, v in curves.items() if v is not None}
        evals = {k: v for k, v in evals.items() if v is not None}
        for arrays, group in ((evals, "/eval"), (curves, "/curves")):
            if "step" not in arrays and arrays:
                raise FormatError(path, f"{group}/step", "missing while other series exist")
        segments: list[str] = []
        if "/eval/segment_accuracy" in f:
            seg_attr = _decode(f["/eval/segment_accuracy"].attrs.get("segments", ""))
            segments = [s for s in str(seg_attr).split(",") if s]
        classes: list[str] = []
        if "/eval/class_accuracy" in f:  # per-task query classes (docs/tasks.md)
            classes = [c for c in str(_decode(f["/eval/class_accuracy"].attrs.get("classes", "")))
                       .split(",") if c]
        edges = _dataset(f, "/eval/gap_bucket_edges")
        layer_state = _dataset(f, "/model/layer_state_scalars")
        if layer_state is not None:
            model["n_layers"] = int(len(layer_state))
        statex = _read_statex(f)
        valid = {k: v for k in ("step", "loss", "accuracy")
                 if (v := _dataset(f, f"/valid/{k}")) is not None} if "valid" in f else {}
        if "valid" in f and ("step" not in valid or "accuracy" not in valid):
            raise FormatError(path, "/valid/step" if "step" not in valid else "/valid/accuracy",
                              "missing in the /valid group")

    summary = _summary(root, model, evals, statex)
    summary.update(_valid_summary(evals, valid))
    summary.update(_class_summary(evals, classes))
    summary.update(_plateau_escape(root, evals, segments, config))
    return RunData(path=path, summary=summary, config=config, curves=curves, evals=evals,
                   gap_edges=np.zeros(0, np.int64) if edges is None else edges.astype(np.int64),
                   segments=segments, statex=statex, valid=valid)


def _valid_summary(evals: dict, valid: dict) -> dict[str, Any]:
    """The validation split's numbers of a run (docs/analysis.md, "Learning-rate selection"):
    has_valid, best_valid_accuracy (max of /valid/accuracy), best_valid_step (its first step),
    final_valid_accuracy, and test_at_best_valid, the test accuracy (/eval) at best_valid_step:
    the number a protocol that chooses on validation alone reports. NaN without a split."""
    out = {"has_valid": bool(valid), "best_valid_accuracy": np.nan, "best_valid_step": np.nan,
           "final_valid_accuracy": np.nan, "test_at_best_valid": np.nan}
    acc, steps = valid.get("accuracy"), valid.get("step")
    if acc is None or steps is None or not len(acc) or not np.isfinite(acc).any():
        return out
    best = int(np.nanargmax(acc))
    out.update(best_valid_accuracy=float(acc[best]), best_valid_step=int(steps[best]),
               final_valid_accuracy=float(acc[-1]))
    test_steps, test_acc = evals.get("step"), evals.get("accuracy")
    if test_steps is not None and test_acc is not None:
        at = np.flatnonzero(np.asarray(test_steps) == steps[best])
        if len(at):
            out["test_at_best_valid"] = float(test_acc[at[0]])
    return out


def _class_summary(evals: dict, classes: list[str]) -> dict[str, Any]:
    """Final-eval token accuracy per query class (`class_acc_<name>`, NaN when the class had no
    query): forgetting kept / updated keys, compositional shared / unique first token."""
    acc, count = evals.get("class_accuracy"), evals.get("class_count")
    if acc is None or count is None or not len(acc) or acc.ndim != 2:
        return {}
    return {f"class_acc_{name}": float(acc[-1, i]) if count[-1, i] > 0 else np.nan
            for i, name in enumerate(classes[:acc.shape[1]])}


def _summary(root: dict, model: dict, evals: dict, statex: dict | None) -> dict[str, Any]:
    """One flat record of a run. Accuracies come from /eval when present (the summary attrs
    on / are only a fallback): best = highest eval accuracy, final = last eval."""
    out: dict[str, Any] = {
        "status": root["status"],
        "failure_reason": root.get("failure_reason", ""),
        "arm": root.get("arm", ""),
        "format_version": int(root["format_version"]),
        "model": model["model"],
        "n_params": model.get("n_params", np.nan),
        "n_layers": model.get("n_layers", np.nan),
        "state_scalars": int(model["state_scalars"]),
        "conv_state_scalars": model.get("conv_state_scalars", np.nan),
        # The recurrent+conv convention: the conv state counted too (docs/results_format.md).
        "state_with_conv_scalars": model.get(
            "state_with_conv_scalars",
            int(model["state_scalars"]) + model.get("conv_state_scalars", np.nan)),
        # The zoology convention: Zoology's own state_size() per family; NaN in files from
        # before it (state_conventions.py then works it out from the config).
        "zoology_state_scalars": model.get("zoology_state_scalars", np.nan),
        # "kv_cache" (attention: state_scalars is the KV cache at length kv_cache_len) or
        # "recurrent"; files written before attention existed have neither attribute.
        "state_kind": model.get("state_kind", "recurrent"),
        "kv_cache_len": model.get("kv_cache_len", 0),
        "steps_done": root.get("steps_done", np.nan),
        "tokens_seen": root.get("tokens_seen", np.nan),
        "wall_time_s": root.get("wall_time_s", np.nan),
    }
    acc = evals.get("accuracy")
    steps = evals.get("step")
    if acc is not None and steps is not None and len(acc) and np.isfinite(acc).any():
        best = int(np.nanargmax(acc))
        out.update(final_accuracy=float(acc[-1]), final_step=int(steps[-1]),
                   best_accuracy=float(acc[best]), best_step=int(steps[best]))
    else:
        best_step = root.get("best_step", np.nan)
        out.update(final_accuracy=root.get("final_accuracy", np.nan), final_step=np.nan,
                   best_accuracy=root.get("best_accuracy", np.nan),
                   best_step=np.nan if best_step is None or best_step < 0 else best_step)
    for key in ("step", "mode", "state_scalars_before", "state_scalars_after", "params_before",
                "params_after", "accuracy_before", "accuracy_after", "accuracy_end"):
        out[f"statex_{key}"] = (statex or {}).get(key, np.nan)
    out["statex_layers"] = ",".join(map(str, statex["layers"])) if statex else ""
    for key in ("statex_accuracy_before", "statex_accuracy_after", "statex_accuracy_end"):
        if isinstance(out[key], (int, float)) and out[key] < 0:  # -1 = not measured
            out[key] = np.nan
    return out


def _plateau_escape(root: dict, evals: dict, segments: list[str], config: dict) -> dict[str, Any]:
    """plateau_num_kv, plateau_threshold, escape_step (NaN = never above the threshold), escaped
    (NaN when K is unknown) and escape_source: 'file' when the writer stored them (attrs on /),
    'computed' (plateau.py, same definition) for files written before it did."""
    if "escape_step" in root and "plateau_threshold" in root:
        k = int(root.get("plateau_num_kv", -1))
        threshold = float(root["plateau_threshold"])
        step = int(root["escape_step"])
        step = None if step == plateau.NOT_ESCAPED else step
        source = "file"
    else:
        k = plateau.plateau_num_kv(segments or config.get("mqar.test", "").split(","))
        threshold = plateau.plateau_threshold(k)
        step = plateau.escape_step(evals.get("step", []), evals.get("accuracy", []), threshold)
        source = "computed"
    known = not np.isnan(threshold)
    return {"plateau_num_kv": k if k is not None and k > 0 else np.nan,
            "plateau_threshold": threshold,
            "escape_step": np.nan if step is None else step,
            "escaped": (step is not None) if known else np.nan,
            "escape_source": source}
