"""The public loading API: results files / sweeps -> pandas DataFrames.

    runs = load_runs(["runs/sweep1", "runs/extra.h5"])   # one row per trial
    curves = load_curves(runs)                            # long: run, step, loss, lr, ...
    evals = load_evals(runs)                              # long: run, step, loss, accuracy

`run` is a label unique within the frame (the trial id, prefixed by its folder if two trials
share an id). Failed trials are rows like any other (status 'failed', failure_reason set);
nothing is dropped. Rows are in the order of their files' paths, whatever order the paths were
given in (`summary DIR` and `summary DIR/*` list the same rows in the same order).
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .io import FormatError, RunData, read_run
from .sources import Entry, discover

# Index statuses that mean the sweep itself already knows the trial did not complete.
NOT_COMPLETED_INDEX_STATUSES = {"failed", "unreadable", "missing", "pending", "running"}

ID_COLUMNS = ["run", "trial_id", "status", "failure_reason", "arm", "model"]
# Summary columns every frame has (NaN where a trial has no readable file).
SUMMARY_COLUMNS = ["path", "sweep", "format_version", "n_params", "n_layers", "state_scalars",
                   "conv_state_scalars", "state_with_conv_scalars", "zoology_state_scalars",
                   "steps_done", "tokens_seen",
                   "wall_time_s",
                   "final_accuracy", "final_step", "best_accuracy", "best_step", "statex_step",
                   "statex_mode", "statex_layers", "statex_state_scalars_before",
                   "statex_state_scalars_after", "statex_params_before", "statex_params_after",
                   "statex_accuracy_before", "statex_accuracy_after", "statex_accuracy_end",
                   "plateau_num_kv", "plateau_threshold", "escape_step", "escaped",
                   "escape_source", "has_valid", "best_valid_accuracy", "best_valid_step",
                   "final_valid_accuracy", "test_at_best_valid"]


@dataclass
class Record:
    """One trial: its summary row and its data (None when there is no readable file)."""

    row: dict
    data: RunData | None


def _row_from_index_only(entry: Entry, reason: str, status: str) -> dict:
    row = {"status": status, "failure_reason": reason,
           "arm": entry.swept.get("statex.arm", ""), "model": entry.swept.get("model.model", "")}
    return row


def _record(entry: Entry, strict: bool) -> Record:
    base = {"trial_id": entry.trial_id, "path": entry.result_path or "", "sweep": entry.sweep}
    index_says_bad = entry.index_status in NOT_COMPLETED_INDEX_STATUSES
    exists = entry.result_path is not None and os.path.exists(entry.result_path)
    if not exists:
        status = entry.index_status or "missing"
        if status == "completed":  # the index says done but the file is gone
            status = "missing"
        reason = entry.index_error or (f"result file not found: {entry.result_path}"
                                       if entry.result_path else "no result file")
        row = {**base, **_row_from_index_only(entry, reason, status)}
        return Record({**row, **entry.swept}, None)
    try:
        data = read_run(entry.result_path)
    except FormatError as err:
        # A sweep that already flagged the trial keeps it as a row; otherwise a bad file is an error.
        if strict and not index_says_bad:
            raise
        status = entry.index_status if index_says_bad else "unreadable"
        row = {**base, **_row_from_index_only(entry, str(err), status)}
        return Record({**row, **entry.swept}, None)
    row = {**base, **data.summary}
    if entry.index_status == "failed" and row["status"] != "failed":
        row["status"] = "failed"
        row["failure_reason"] = entry.index_error or row["failure_reason"]
    if not row["arm"]:
        row["arm"] = data.config.get("statex.arm", "") or entry.swept.get("statex.arm", "")
    if not row["arm"] and row.get("statex_mode") not in (None, "", "none") \
            and pd.notna(row.get("statex_step")):
        row["arm"] = "statex"  # unlabelled run that did expand: it is the StateX arm
    return Record({**row, **entry.swept, **data.config}, data)


def _folder(row: dict) -> str:
    """The folder that tells apart trials with one id: the one holding the file, or the sweep's
    for `<sweep>/trials/<id>.h5` (so a sweep's trial has one label whether it was found through
    its index.csv or as a file below a folder)."""
    folder = Path(row["path"]).resolve().parent if row["path"] else \
        Path(row["sweep"] or ".").resolve()
    return (folder.parent if folder.name == "trials" else folder).name


def _unique_labels(records: list[Record]) -> None:
    counts = Counter(r.row["trial_id"] for r in records)
    seen: Counter = Counter()
    for rec in records:
        label = rec.row["trial_id"]
        if counts[label] > 1:
            label = f"{_folder(rec.row)}/{label}"
            seen[label] += 1
            if seen[label] > 1:
                label = f"{label}#{seen[label]}"
        rec.row["run"] = label


def _entry_key(entry: Entry) -> tuple:
    """Sort key of a trial: its file's real path (a trial without one: where it would be), then
    the rest of the entry, so that even one file reached twice sorts the same way every time."""
    where = entry.result_path or os.path.join(entry.sweep, entry.trial_id)
    return (os.path.realpath(where), entry.trial_id, entry.sweep, entry.index_status,
            entry.index_error, sorted(entry.swept.items()))


def read_records(paths, strict: bool = True) -> list[Record]:
    """Reads every trial under `paths`, sorted by file path (_entry_key): the records, their
    labels and every table made from them do not depend on the order of `paths` or of the rows
    of an index.csv. strict=False turns unreadable files into rows with status 'unreadable'
    instead of raising FormatError."""
    records = [_record(e, strict) for e in sorted(discover(paths), key=_entry_key)]
    _unique_labels(records)
    return records


def _coerce(column: pd.Series) -> pd.Series:
    """Config values are strings in the file; make a column numeric when every value is."""
    values = column.replace("", np.nan)
    if values.isna().all():
        return column
    try:
        numeric = pd.to_numeric(values)
    except (ValueError, TypeError):
        return column
    return numeric


def runs_frame(records: list[Record]) -> pd.DataFrame:
    frame = pd.DataFrame([r.row for r in records])
    if frame.empty:
        return pd.DataFrame(columns=ID_COLUMNS + SUMMARY_COLUMNS + ["state_bytes"])
    for col in SUMMARY_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    for col in ("statex_mode", "statex_layers"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), "").astype(str)
    config_cols = sorted(c for c in frame.columns if "." in c)
    for col in config_cols:
        frame[col] = _coerce(frame[col].astype(object).where(frame[col].notna(), ""))
    for col in ("failure_reason", "arm", "model"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), "").astype(str)
    for col in ("best_accuracy", "final_accuracy", "best_step", "state_scalars", "statex_step",
                "plateau_num_kv", "plateau_threshold", "escape_step"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame["state_bytes"] = frame["state_scalars"] * 4  # fp32 (docs/results_format.md)
    if "model.model" in frame:  # rows without a file take the model from the config columns
        frame["model"] = frame["model"].where(frame["model"] != "", frame["model.model"].astype(str))
    first = ["run", "trial_id", "status", "failure_reason", "arm", "model"]
    rest = [c for c in frame.columns if c not in first and c not in config_cols]
    return frame[first + rest + config_cols].reset_index(drop=True)


def _as_records(paths_or_runs, strict: bool = True) -> list[Record]:
    if isinstance(paths_or_runs, pd.DataFrame):
        records = []
        for row in paths_or_runs.to_dict("records"):
            path = row.get("path") or ""
            data = read_run(path) if path and os.path.exists(path) and \
                row.get("status") not in ("unreadable",) else None
            records.append(Record(row, data))
        return records
    return read_records(paths_or_runs, strict)


def load_runs(paths, strict: bool = True) -> pd.DataFrame:
    """One row per trial: flattened /config options (columns 'model.d_model', 'train.lr', ...,
    numeric where every value is) plus summary columns (status, failure_reason, arm, model,
    n_params, n_layers, state_scalars, state_bytes, final/best accuracy and step, statex_*)."""
    return runs_frame(read_records(paths, strict))


def _long(records: Iterable[Record], build) -> pd.DataFrame:
    parts = [build(r) for r in records if r.data is not None]
    parts = [p for p in parts if p is not None and not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def curves_frame(records) -> pd.DataFrame:
    def build(rec: Record):
        c = rec.data.curves
        if "step" not in c:
            return None
        out = pd.DataFrame({k: v for k, v in c.items()})
        out.insert(0, "run", rec.row["run"])
        return out
    return _long(records, build)


def evals_frame(records) -> pd.DataFrame:
    def build(rec: Record):
        e = rec.data.evals
        if "step" not in e:
            return None
        out = pd.DataFrame({k: e[k] for k in ("step", "loss", "accuracy") if k in e})
        out.insert(0, "run", rec.row["run"])
        return out
    return _long(records, build)


def gaps_frame(records) -> pd.DataFrame:
    """Long: run, step, bucket (index), gap_lo, gap_hi (exclusive; inf for the last), accuracy,
    count. One row per (eval, bucket)."""
    def build(rec: Record):
        e, edges = rec.data.evals, rec.data.gap_edges
        if "gap_accuracy" not in e or len(edges) == 0:
            return None
        acc = np.atleast_2d(e["gap_accuracy"])
        counts = np.atleast_2d(e["gap_count"]) if "gap_count" in e else np.full(acc.shape, np.nan)
        hi = np.append(edges[1:].astype(float), np.inf)
        rows = []
        for i, step in enumerate(e["step"]):
            for b in range(acc.shape[1]):
                rows.append((rec.row["run"], int(step), b, int(edges[b]), hi[b],
                             float(acc[i, b]), counts[i, b]))
        return pd.DataFrame(rows, columns=["run", "step", "bucket", "gap_lo", "gap_hi",
                                           "accuracy", "count"])
    return _long(records, build)


def segments_frame(records) -> pd.DataFrame:
    """Long: run, step, segment ('T:K:count'), seq_len, num_kv, accuracy."""
    def build(rec: Record):
        e = rec.data.evals
        if "segment_accuracy" not in e:
            return None
        acc = np.atleast_2d(e["segment_accuracy"])
        names = rec.data.segments or [f"segment{j}" for j in range(acc.shape[1])]
        rows = []
        for i, step in enumerate(e["step"]):
            for j, name in enumerate(names[: acc.shape[1]]):
                parts = name.split(":")
                t = int(parts[0]) if len(parts) == 3 and parts[0].isdigit() else np.nan
                k = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else np.nan
                rows.append((rec.row["run"], int(step), name, t, k, float(acc[i, j])))
        return pd.DataFrame(rows, columns=["run", "step", "segment", "seq_len", "num_kv",
                                           "accuracy"])
    return _long(records, build)


def load_curves(paths_or_runs) -> pd.DataFrame:
    """Training curves, long format: run, step, loss, lr, grad_norm, tokens_per_s."""
    return curves_frame(_as_records(paths_or_runs))


def load_evals(paths_or_runs) -> pd.DataFrame:
    """Evaluations, long format: run, step, loss, accuracy (step 0 = before training)."""
    return evals_frame(_as_records(paths_or_runs))


def load_gaps(paths_or_runs) -> pd.DataFrame:
    """Accuracy per query-gap bucket, long format (see gaps_frame)."""
    return gaps_frame(_as_records(paths_or_runs))


def load_segments(paths_or_runs) -> pd.DataFrame:
    """Accuracy per MQAR test segment, long format (see segments_frame)."""
    return segments_frame(_as_records(paths_or_runs))
