"""Tables computed from the runs frame (analysis.load_runs) and the long eval frames.

Conventions, used by every table and figure:
  * A run's accuracy for selection is its BEST eval accuracy (highest /eval/accuracy), not the
    last one. Learning rate is selected per point: the LR whose runs have the highest mean best
    accuracy over seeds; the chosen LR is recorded (column `lr`).
  * Seeds at the chosen LR are aggregated as mean, std (sample, ddof=1; NaN for one seed), min
    and max. Figures draw the band the caller picks (min-max by default).
  * State size: recurrent state only (conv state apart) by default, or Zoology's convention
    `recurrent+conv` (use_state_convention / --state); bytes = 4 x scalars (fp32). Every label
    says which.
  * Only completed runs enter aggregates; every other run is listed by failures_table.
"""
from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd

BYTES_PER_SCALAR = 4
STATE_UNITS = ("bytes", "scalars")
STATE_CONVENTIONS = ("recurrent", "recurrent+conv")  # ours / Zoology's (conv state included)
SPREADS = ("minmax", "std")
LR_COL, SEED_COL = "train.lr", "train.seed"
ARMS = ("statex", "control", "scratch")


class TableError(ValueError):
    """A bad table request (unknown column in --where / --group-by, bad unit ...)."""


# ---------------------------------------------------------------- units and selection

def state_column(runs: pd.DataFrame, unit: str) -> pd.Series:
    """Recurrent state size of each run in `unit` (bytes = 4 x scalars, fp32)."""
    if unit not in STATE_UNITS:
        raise TableError(f"--state-unit must be one of {', '.join(STATE_UNITS)}, not '{unit}'")
    scalars = pd.to_numeric(runs["state_scalars"], errors="coerce")
    return scalars * BYTES_PER_SCALAR if unit == "bytes" else scalars


_convention = {"name": "recurrent"}


def use_state_convention(runs: pd.DataFrame, convention: str) -> pd.DataFrame:
    """Runs whose `state_scalars` (and every table and label after it) follow `convention`:
    `recurrent` (ours, the default) or `recurrent+conv` (Zoology's: short-conv state counted)."""
    if convention not in STATE_CONVENTIONS:
        raise TableError(f"--state must be one of {', '.join(STATE_CONVENTIONS)}, "
                         f"not '{convention}'")
    _convention["name"] = convention
    if convention == "recurrent":
        return runs
    runs = runs.copy()
    runs["state_scalars"] = pd.to_numeric(runs["state_with_conv_scalars"], errors="coerce")
    runs["state_bytes"] = runs["state_scalars"] * BYTES_PER_SCALAR
    return runs


def state_label(unit: str) -> str:
    what = "recurrent+conv state size (Zoology)" if _convention["name"] == "recurrent+conv" \
        else "recurrent state size"
    return f"{what} (bytes, fp32 = 4 B/scalar)" if unit == "bytes" else f"{what} (scalars)"


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "completed"]


def check_columns(runs: pd.DataFrame, keys, option: str) -> None:
    for key in keys:
        if key not in runs.columns:
            close = difflib.get_close_matches(key, [str(c) for c in runs.columns], n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise TableError(f"{option}: unknown column '{key}'{hint}")


_WHERE = re.compile(r"^\s*([^=!<>]+?)\s*(==|=|!=|>=|<=|>|<)\s*(.*?)\s*$")


def filter_runs(runs: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Keeps rows matching every condition 'key=value' ('!=', '<', '<=', '>', '>=' too).
    Numbers compare numerically (train.lr=0.003 matches 3e-3; equality to 1e-6 relative, as
    accuracies are float32), anything else as text."""
    mask = pd.Series(True, index=runs.index)
    for text in conditions:
        match = _WHERE.match(text)
        if not match:
            raise TableError(f"--where '{text}': expected KEY=VALUE (or !=, <, <=, >, >=)")
        key, op, value = match.groups()
        check_columns(runs, [key], "--where")
        column = runs[key]
        numeric = pd.to_numeric(column, errors="coerce")
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None and numeric.notna().any():
            left, right = numeric, number
            equal = pd.Series(np.isclose(numeric.fillna(np.inf), number, rtol=1e-6, atol=0),
                              index=runs.index)
        else:
            if op not in ("=", "==", "!="):
                raise TableError(f"--where '{text}': '{op}' needs a number")
            left, right = column.fillna("").astype(str), value
            equal = left == right
        ops = {"=": equal, "==": equal, "!=": ~equal}
        if op in ops:
            mask &= ops[op]
        else:
            mask &= {">": left > right, "<": left < right,
                     ">=": (left > right) | equal, "<=": (left < right) | equal}[op]
    return runs[mask]


def _spread_stats(values: pd.Series) -> dict:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return {"mean": v.mean(), "std": v.std(ddof=1) if len(v) > 1 else np.nan,
            "min": v.min(), "max": v.max(), "n_seeds": len(v)}


def best_lr_points(runs: pd.DataFrame, keys: list[str], metric: str = "best_accuracy",
                   select_by: str = "best_accuracy", choice: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per distinct `keys` among completed runs: the LR (and `choice` columns, e.g. the
    StateX config) with the highest mean `select_by` over seeds, then mean/std/min/max of
    `metric` over that choice's runs. Columns: *keys, lr, *choice, n_seeds, mean, std, min,
    max, lrs_tried, runs (labels, ';'-joined)."""
    columns = [*keys, "lr", *choice, "n_seeds", "mean", "std", "min", "max", "lrs_tried", "runs"]
    done = completed(runs)
    done = done[pd.to_numeric(done[select_by], errors="coerce").notna()]
    if done.empty:
        return pd.DataFrame(columns=columns)
    lr = pd.to_numeric(done[LR_COL], errors="coerce") if LR_COL in done else \
        pd.Series(np.nan, index=done.index)
    done = done.assign(_lr=lr.fillna(-1.0))
    cand_cols = ["_lr", *choice]
    rows = []
    for point, group in done.groupby(keys, dropna=False, sort=True):
        point = point if isinstance(point, tuple) else (point,)
        by_cand = group.groupby(cand_cols, dropna=False)[select_by].mean()
        chosen = by_cand.idxmax()
        chosen = chosen if isinstance(chosen, tuple) else (chosen,)
        mask = pd.Series(True, index=group.index)
        for col, value in zip(cand_cols, chosen):
            mask &= (group[col] == value) | (group[col].isna() & pd.isna(value))
        pick = group[mask]
        lrs = sorted(set(group["_lr"]) - {-1.0})
        rows.append({**dict(zip(keys, point)),
                     "lr": np.nan if chosen[0] == -1.0 else chosen[0],
                     **dict(zip(choice, chosen[1:])),
                     **_spread_stats(pick[metric]),
                     "lrs_tried": ";".join(f"{x:g}" for x in lrs),
                     "runs": ";".join(pick["run"].astype(str))})
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------- tables for the CLI / report

def _fmt_state(value: float) -> str:
    return "" if pd.isna(value) else f"{int(value):,}"


def summary_table(runs: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """One row per trial: model, sizes, state size, lr, seed, arm, final/best accuracy, status."""
    def col(name):
        return runs[name] if name in runs else pd.Series(np.nan, index=runs.index)

    status = runs["status"].astype(str)
    reason = runs["failure_reason"].fillna("").astype(str)
    status = status.where(reason == "", status + ": " + reason)
    table = pd.DataFrame({
        "run": runs["run"],
        "model": runs["model"],
        "d_model": col("model.d_model"),
        "layers": col("model.n_layers").where(col("model.n_layers").notna(), col("n_layers")),
        "params": col("n_params"),
        (f"state ({unit})" if _convention["name"] == "recurrent"
         else f"recurrent+conv state ({unit})"): state_column(runs, unit),
        "lr": col(LR_COL),
        "seed": col(SEED_COL),
        "arm": runs["arm"].replace("", "-"),
        "final_acc": col("final_accuracy"),
        "best_acc": col("best_accuracy"),
        "best_step": col("best_step"),
        "status": status,
    })
    # Per-task query classes (docs/tasks.md): final accuracy on forgetting kept / updated keys and
    # compositional shared / unique first tokens, where any run has them.
    for name in sorted(c for c in runs.columns if str(c).startswith("class_acc_")):
        if pd.to_numeric(runs[name], errors="coerce").notna().any():
            table[name.replace("class_acc_", "acc_")] = runs[name]
    return table


def group_table(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys`: run counts by status and best-accuracy stats of completed runs."""
    check_columns(runs, keys, "--group-by")
    rows = []
    for point, group in runs.groupby(keys, dropna=False, sort=True):
        point = point if isinstance(point, tuple) else (point,)
        done = completed(group)
        best = pd.to_numeric(done["best_accuracy"], errors="coerce")
        rows.append({**dict(zip(keys, point)), "runs": len(group), "completed": len(done),
                     "failed": int((group["status"] == "failed").sum()),
                     "other": int((~group["status"].isin(["completed", "failed"])).sum()),
                     "best_acc_mean": best.mean(), "best_acc_std": best.std(ddof=1),
                     "best_acc_max": best.max(),
                     "best_run": done.loc[best.idxmax(), "run"] if best.notna().any() else ""})
    return pd.DataFrame(rows)


def accuracy_vs_state_table(runs: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """Scaling points from plain runs (no StateX arm): per (model, state size), best LR, seeds
    aggregated. Accuracy = best eval accuracy of each run."""
    plain = runs[runs["arm"].fillna("") == ""]
    points = best_lr_points(plain, ["model", "state_scalars"])
    points.insert(2, "state_bytes", points["state_scalars"] * BYTES_PER_SCALAR)
    points.insert(3, "state", points["state_scalars"] * (BYTES_PER_SCALAR if unit == "bytes" else 1))
    points.insert(4, "state_unit", unit)
    return points


PHASES = (  # (label, arm, accuracy column, state column)
    ("StateX before expansion", "statex", "statex_accuracy_before", "statex_state_scalars_before"),
    ("StateX after expansion", "statex", "statex_accuracy_after", "statex_state_scalars_after"),
    ("StateX end", "statex", "final_accuracy", "state_scalars"),
    ("control end", "control", "final_accuracy", "state_scalars"),
    ("scratch end", "scratch", "final_accuracy", "state_scalars"),
)


STATEX_CONFIG = ("statex_mode", "statex_step", "statex_layers")


def arms_table(runs: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """StateX arms side by side per model: before/after expansion (from /statex) and the end
    (last eval, equal total steps) of statex, control and scratch. Per arm the LR is chosen by
    mean best accuracy over seeds; for the statex arm the StateX config (mode, step, layers) is
    chosen with it when several were run (the ablation table shows them all)."""
    arm_runs = completed(runs[runs["arm"].isin(ARMS)])
    rows = []
    for (model, arm), group in arm_runs.groupby(["model", "arm"], sort=True):
        choice = STATEX_CONFIG if arm == "statex" else ()
        pick = best_lr_points(group, ["model"], choice=choice).iloc[0]
        chosen = group[group["run"].isin(pick["runs"].split(";"))]
        config = (f"{pick['statex_mode']}, step {int(pick['statex_step'])}, layers "
                  f"{pick['statex_layers']}" if arm == "statex" else "")
        for label, phase_arm, acc_col, state_col in PHASES:
            if phase_arm != arm:
                continue
            state = pd.to_numeric(chosen[state_col], errors="coerce").mean()
            rows.append({"model": model, "phase": label, "arm": arm, "lr": pick["lr"],
                         "statex_config": config, "state_scalars": state,
                         "state": state * (BYTES_PER_SCALAR if unit == "bytes" else 1),
                         "state_unit": unit, **_spread_stats(chosen[acc_col]),
                         "best_acc_mean": pd.to_numeric(chosen["best_accuracy"]).mean(),
                         "runs": ";".join(chosen["run"].astype(str))})
    table = pd.DataFrame(rows)
    if not table.empty:
        order = {p[0]: i for i, p in enumerate(PHASES)}
        table = (table.assign(_o=table["phase"].map(order)).sort_values(["model", "_o"])
                 .drop(columns="_o").reset_index(drop=True))
    return table


def series_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Best-LR runs per (model, arm, state size): the series of the gap and segment figures."""
    points = best_lr_points(runs, ["model", "arm", "state_scalars"], choice=STATEX_CONFIG)
    rows = [{"model": p["model"], "arm": p["arm"], "state_scalars": p["state_scalars"], "lr": p["lr"],
             "run": r} for _, p in points.iterrows() for r in p["runs"].split(";")]
    return pd.DataFrame(rows, columns=["model", "arm", "state_scalars", "lr", "run"])


def _at_best_step(runs: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    best = runs.set_index("run")["best_step"]
    long = long[long["run"].isin(best.index)]
    return long[long["step"] == long["run"].map(best)]


def gap_table(runs: pd.DataFrame, gaps: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """Accuracy per query-gap bucket at each run's best eval, mean/min/max over seeds, per
    (model, arm, state size) at the best LR. NaN buckets (no queries) are ignored."""
    return _per_series(runs, gaps, ["gap_lo", "gap_hi"], unit)


def segment_table(runs: pd.DataFrame, segments: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """Accuracy per MQAR test segment at each run's best eval (same aggregation as gap_table)."""
    return _per_series(runs, segments, ["segment", "seq_len", "num_kv"], unit)


def _per_series(runs, long, item_cols, unit) -> pd.DataFrame:
    series = series_runs(runs)
    if long.empty or series.empty:
        return pd.DataFrame(columns=["model", "arm", "state_scalars", "state", "state_unit", "lr",
                                     *item_cols, "mean", "min", "max", "n_seeds"])
    at_best = _at_best_step(runs, long).merge(series, on="run")
    out = (at_best.groupby(["model", "arm", "state_scalars", "lr", *item_cols], dropna=False)
           ["accuracy"].agg(mean="mean", min="min", max="max", n_seeds="count").reset_index())
    out.insert(3, "state", out["state_scalars"] * (BYTES_PER_SCALAR if unit == "bytes" else 1))
    out.insert(4, "state_unit", unit)
    return out


def ablation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """StateX ablation cells: per (model, mode, expansion step, expanded layers) among statex-arm
    runs, best LR, then final accuracy (end of training) aggregated over seeds."""
    statex = runs[(runs["arm"] == "statex") & runs["statex_step"].notna()]
    return best_lr_points(statex, ["model", *STATEX_CONFIG], metric="final_accuracy")


def failures_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run that did not complete (failed, running, unreadable, missing ...), with reason."""
    bad = runs[runs["status"] != "completed"]
    cols = [c for c in ("run", "status", "failure_reason", "model", "arm", LR_COL, SEED_COL, "path")
            if c in bad]
    return bad[cols].reset_index(drop=True)


# ---------------------------------------------------------------- text rendering

def _cell(value) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{int(value):,}" if abs(value) >= 1000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return ""
        if float(value).is_integer() and abs(value) < 1e15:
            return f"{int(value):,}" if abs(value) >= 1000 else str(int(value))
        return f"{value:.4g}"
    return str(value)


def to_text(table: pd.DataFrame) -> str:
    """Fixed-width terminal table (numbers right-aligned, text left-aligned)."""
    if table.empty:
        return "(no rows)"
    cells = [[_cell(v) for v in row] for row in table.itertuples(index=False)]
    headers = [str(c) for c in table.columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]

    def line(values):
        return "  ".join(v.rjust(w) if n else v.ljust(w)
                         for v, w, n in zip(values, widths, numeric)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def to_markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no rows)\n"
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    sep = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(table[c]) else "---"
                         for c in table.columns) + "|"
    body = ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |"
            for row in table.itertuples(index=False)]
    return "\n".join([header, sep, *body]) + "\n"
