"""Tables computed from the runs frame (analysis.load_runs) and the long eval frames.

Conventions, used by every table and figure (docs/analysis.md):
  * Aggregates are per CELL (cells.py): runs identical in every option except the seeds. Runs that
    differ in steps, lr, d_model ... are never pooled; each table's `attrs["caption"]` says which
    options were grouped over and which varied.
  * Per cell: n, median with its order-statistic interval and that interval's real coverage
    (>= 95%, or less with n <= 5 seeds: stats.py), mean, std, min, max and the plateau-escape
    counts (plateau.py). Cells with n < 3 get no interval and a warning.
  * Every table is a function of the set of runs, not of their order: cells.assign_cells sorts
    the runs and stats.py sorts the values of each cell.
  * A run's accuracy for the scaling table is its BEST eval accuracy; StateX arms and the
    ablation use the end-of-training accuracy. Where cells differ only in train.lr, the one with
    the highest median is shown and the lrs tried are listed.
  * State size: recurrent state only (conv state apart) by default, `recurrent+conv` (the conv
    state too) or `zoology` (Zoology's own state_size() per family), state_conventions.py
    (use_state_convention / --state); bytes = 4 x scalars (fp32). Every label, table header and
    report index says which.
  * Only completed runs enter aggregates; every other run is listed by failures_table.
"""
from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd

from . import cells, families, lr_select, state_conventions, stats

BYTES_PER_SCALAR = 4
STATE_UNITS = ("bytes", "scalars")
STATE_CONVENTIONS = state_conventions.CONVENTIONS  # recurrent (default), recurrent+conv, zoology
SPREADS = ("ci", "minmax", "std")  # band: interval of the median, min-max, mean ± std
LR_COL, SEED_COL = "train.lr", "train.seed"
ARMS = ("statex", "control", "scratch")


class TableError(ValueError):
    """A bad table request (unknown column in --where / --group-by, bad unit ...)."""


# ---------------------------------------------------------------- units and selection

def state_column(runs: pd.DataFrame, unit: str) -> pd.Series:
    """State size of each run (in the convention use_state_convention chose) in `unit`
    (bytes = 4 x scalars, fp32)."""
    if unit not in STATE_UNITS:
        raise TableError(f"--state-unit must be one of {', '.join(STATE_UNITS)}, not '{unit}'")
    scalars = pd.to_numeric(runs["state_scalars"], errors="coerce")
    return scalars * BYTES_PER_SCALAR if unit == "bytes" else scalars


_convention = {"name": state_conventions.DEFAULT}


def use_state_convention(runs: pd.DataFrame, convention: str) -> pd.DataFrame:
    """Runs whose `state_scalars`, StateX before / after sizes (and every table and label after
    them) follow `convention`: `recurrent` (ours, the default), `recurrent+conv` (conv state
    counted too) or `zoology` (Zoology's state_size()); state_conventions.py."""
    if convention not in STATE_CONVENTIONS:
        raise TableError(f"--state must be one of {', '.join(STATE_CONVENTIONS)}, "
                         f"not '{convention}'")
    _convention["name"] = convention
    runs = runs.copy()
    if runs.empty:
        runs["state_convention"] = pd.Series(dtype=object)
        return runs
    rows = [state_conventions.apply(dict(r), convention) for r in runs.to_dict("records")]
    for col in ("recurrent_state_scalars", "state_scalars", "state_convention",
                *state_conventions.STATEX_COLUMNS,
                *(f"{c}_recurrent" for c in state_conventions.STATEX_COLUMNS)):
        values = [r[col] for r in rows]
        runs[col] = values if col == "state_convention" else pd.to_numeric(values, errors="coerce")
    runs["state_bytes"] = runs["state_scalars"] * BYTES_PER_SCALAR
    return runs


def state_convention() -> str:
    """The convention the tables and labels show now (use_state_convention)."""
    return _convention["name"]


def table_convention(table: pd.DataFrame) -> str:
    """The convention a table's state sizes were computed in (its `state_convention` column,
    else the current one)."""
    if "state_convention" in table and len(table):
        return str(table["state_convention"].iloc[0])
    return _convention["name"]


def state_header(unit: str, convention: str | None = None) -> str:
    """Column header / legend title of a state size: convention and unit."""
    return f"{state_conventions.LABEL[convention or _convention['name']]} ({unit})"


def state_label(unit: str, convention: str | None = None) -> str:
    """Axis label of a state size: convention and unit."""
    what = state_conventions.AXIS[convention or _convention["name"]]
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


# ---------------------------------------------------------------- cells and their statistics

CELL_STATS = ["n", "median", "ci_low", "ci_high", "ci_coverage", "mean", "std", "min", "max"]
ESCAPE_STATS = ["n_escaped", "n_escape_known", "escape_fraction", "escape_step_median"]
STATEX_CONFIG = ("statex_mode", "statex_step", "statex_layers")
# Options whose effect the /statex record states (mode, step, which layers were expanded).
STATEX_EVENT_OPTIONS = ("statex.mode", "statex.step", "statex.count", "statex.layers")


def _unit_factor(unit: str) -> int:
    return BYTES_PER_SCALAR if unit == "bytes" else 1


def _escape_stats(group: pd.DataFrame) -> dict:
    """Escape counts over the runs whose plateau threshold is known (K found in the file)."""
    if "plateau_threshold" not in group:
        return dict.fromkeys(ESCAPE_STATS, np.nan)
    known = group[pd.to_numeric(group["plateau_threshold"], errors="coerce").notna()]
    if known.empty:
        return dict.fromkeys(ESCAPE_STATS, np.nan)
    return {**stats.escape_summary(pd.to_numeric(known["escape_step"], errors="coerce")),
            "n_escape_known": len(known)}


def cells_table(runs: pd.DataFrame, metric: str = "best_accuracy",
                extra_ignored: tuple[str, ...] = (),
                carry: tuple[str, ...] = ()) -> tuple[pd.DataFrame, cells.Grouping]:
    """One row per cell of the completed runs (cells.py: identical in every option but the
    seeds): the varied options, model, arm, lr, state_scalars, the `carry` columns (first run's
    value), n / median / interval and its coverage / mean / std / min / max of `metric`, the
    plateau-escape counts, cell_label and runs (';'-joined labels, sorted)."""
    done = completed(runs)
    done, grouping = cells.assign_cells(done, extra_ignored)
    columns = ["cell", *grouping.varied, "model", "arm", "lr", "state_scalars", *carry,
               *CELL_STATS, *ESCAPE_STATS, "cell_label", "runs"]
    rows = []
    for cell_id, group in done.groupby("cell", sort=True):
        first = group.iloc[0]
        rows.append({"cell": cell_id, **{o: first[o] for o in grouping.varied},
                     "model": first["model"], "arm": first["arm"],
                     "lr": first[LR_COL] if LR_COL in group else np.nan,
                     "state_scalars": first["state_scalars"], **{c: first[c] for c in carry},
                     **stats.summarize(pd.to_numeric(group[metric], errors="coerce")),
                     **_escape_stats(group), "cell_label": first["cell_label"],
                     "runs": ";".join(group["run"].astype(str))})
    return pd.DataFrame(rows, columns=columns), grouping


def choose_lr(table: pd.DataFrame, grouping: cells.Grouping,
              runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Among cells that differ ONLY in train.lr, keeps one and lists the lrs tried. Cells whose
    runs have a validation split keep the lr chosen on it (lr_select.py; `runs` = the runs the
    table was made from); the others the one with the highest median of the table's metric
    (ties: higher mean, then smaller lr): chosen on the numbers shown. Columns
    `lr_selected_on` (validation | test | "" for a single lr) and `lr_grid_edge`. Cells
    differing in anything else stay separate rows."""
    lrs = table["lr"] if "lr" in table else pd.Series(np.nan, index=table.index)
    table = table.assign(lrs_tried=lrs.map(lambda v: "" if pd.isna(v) else f"{v:g}"),
                         lr_selected_on="", lr_grid_edge="")
    if table.empty or LR_COL not in grouping.varied:
        return table
    keys = [o for o in grouping.varied if o != LR_COL] or ["_all"]
    table = table.assign(_all=0)
    tried = table.groupby(keys, dropna=False)["lr"].transform(
        lambda v: ";".join(f"{x:g}" for x in sorted(v.dropna().unique())))
    n_lrs = table.groupby(keys, dropna=False)["lr"].transform("nunique")
    table = table.assign(lrs_tried=tried, lr_selected_on=np.where(n_lrs > 1, "test", ""))
    on_valid = pd.Series(False, index=table.index)
    if runs is not None and "runs" in table:
        picked = lr_select.choices(runs)
        picked = picked[picked["selected_on"] == "validation"].set_index("run")
        first_run = table["runs"].astype(str).str.split(";").str[0]
        on_valid = first_run.isin(picked.index)
        chosen = first_run.map(picked["chosen"].astype(object).to_dict()).eq(True)
        edge = first_run.map(picked["grid_edge"].astype(object).to_dict()).astype(object)
        edge = edge.where(edge.notna(), "")
        table = table.assign(lr_selected_on=table["lr_selected_on"].where(~on_valid,
                                                                          "validation"),
                             lr_grid_edge=edge.where(on_valid, ""))
    ranked = table[~on_valid].sort_values(
        ["median", "mean", "lr"], ascending=[False, False, True], na_position="last")
    best = ranked.groupby(keys, dropna=False, sort=False).head(1)
    if on_valid.any():
        best = pd.concat([best, table[on_valid & chosen]])
    return best.sort_values("cell").drop(columns="_all").reset_index(drop=True)


def _flag_any(runs: pd.DataFrame) -> bool:
    """Whether any run has a validation split."""
    return "has_valid" in runs and bool(lr_select._flag(runs["has_valid"]).any())


def _caption(grouping: cells.Grouping, *sentences: str) -> str:
    return " ".join([grouping.describe(), *sentences, STATS_TEXT])


def _pct(coverage: float) -> str:
    """0.9375 -> '93.8%', 0.75 -> '75%'."""
    return f"{100 * coverage:.1f}".removesuffix(".0") + "%"


def _coverages(values) -> list[float]:
    """The distinct coverages of a table's intervals, ascending (NaN = no interval, left out)."""
    return sorted({round(float(v), 9) for v in values if pd.notna(v)})


def coverage_text(values) -> str:
    """What a label says about a set of intervals: their coverage ('93.8%'), the range when
    they differ ('75–96.9%'), '' when there is no interval."""
    covs = _coverages(values)
    if not covs:
        return ""
    return _pct(covs[0]) if len(covs) == 1 else f"{_pct(covs[0])[:-1]}–{_pct(covs[-1])}"


def _below_confidence() -> list[int]:
    """The n (>= MIN_N_FOR_INTERVAL) whose widest interval, [min, max], is below CONFIDENCE."""
    return [n for n in range(stats.MIN_N_FOR_INTERVAL, 64)
            if stats.median_rank(n)[1] < stats.CONFIDENCE]


STATS_TEXT = (
    f"Per cell: n seeds; median with its distribution-free interval from order statistics, "
    f"[l-th smallest, l-th largest value] with the largest l whose binomial coverage is ≥ "
    f"{_pct(stats.CONFIDENCE)}; with n ≤ {max(_below_confidence())} no interval reaches "
    f"{_pct(stats.CONFIDENCE)} and it is [min, max] at its real coverage ("
    + ", ".join(f"n = {n}: {_pct(stats.median_rank(n)[1])}" for n in _below_confidence())
    + f"). The coverage is in the column header, or after each interval where it varies (CSV: "
    f"`ci_coverage`); no interval when n < {stats.MIN_N_FOR_INTERVAL}. Escaped = runs that left "
    f"the 1/K plateau (docs/analysis.md).")


def _named_options(grouping: cells.Grouping, drop=(LR_COL, "model.model")) -> list[str]:
    return [o for o in grouping.varied if o not in drop]


def _with_state(table: pd.DataFrame, unit: str, after: str = "state_scalars") -> pd.DataFrame:
    at = list(table.columns).index(after) + 1
    table = table.copy()
    table.insert(at, "state_bytes", table["state_scalars"] * BYTES_PER_SCALAR)
    table.insert(at + 1, "state", table["state_scalars"] * _unit_factor(unit))
    table.insert(at + 2, "state_unit", unit)
    table.insert(at + 3, "state_convention", _convention["name"])
    return table


def accuracy_vs_state_table(runs: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """Recall against state size from plain runs (no StateX arm): one row per cell, the learning
    rate chosen per cell among cells that differ only in lr (on the validation split where the
    runs have one: lr_select.py). Accuracy = best eval accuracy; with a validation split, the
    test accuracy at the eval of best validation accuracy."""
    plain = runs[runs["arm"].fillna("") == ""]
    plain = plain.assign(reported_accuracy=lr_select.reported_accuracy(plain))
    table, grouping = cells_table(plain, metric="reported_accuracy")
    table = choose_lr(table, grouping, plain)
    named = _named_options(grouping)
    on_valid = bool((table["lr_selected_on"] == "validation").any())
    selection = ["lr_selected_on", "lr_grid_edge"] if on_valid else []
    columns = ["model", "state_scalars", *named, "lr", "lrs_tried", *selection, *CELL_STATS,
               *ESCAPE_STATS, "cell_label", "runs"]
    table = _with_state(table[columns].sort_values(["model", "state_scalars", *named],
                                                   kind="stable").reset_index(drop=True), unit)
    if not on_valid and not _flag_any(plain):
        how = ("Accuracy = best eval accuracy of a run; where cells differ only in `train.lr` "
               "the one with the highest median is shown (`lrs_tried`).")
    else:
        how = ("Accuracy = best eval accuracy of a run; for runs with a validation split the "
               "test accuracy at the eval of its best validation accuracy. Where cells differ "
               "only in `train.lr`: with a validation split the lr with the highest median best "
               "validation accuracy (`lr_selected_on` validation; failed runs score 0; ties: "
               "higher mean, then the smaller lr), so no number shown took part in the choice; "
               "`lr_grid_edge`: the chosen lr is the grid's smallest or largest (extend the "
               "grid; tables/lr_selection has every lr's score); without one the lr with the "
               "highest median of the numbers shown (`lr_selected_on` test).")
    table.attrs["caption"] = _caption(grouping, how)
    cells.warn_small_cells(table, "accuracy_vs_state")
    return table


PHASES = (  # (label, arm, accuracy column, state column)
    ("StateX before expansion", "statex", "statex_accuracy_before", "statex_state_scalars_before"),
    ("StateX after expansion", "statex", "statex_accuracy_after", "statex_state_scalars_after"),
    ("StateX end", "statex", "final_accuracy", "state_scalars"),
    ("control end", "control", "final_accuracy", "state_scalars"),
    ("scratch end", "scratch", "final_accuracy", "state_scalars"),
)
END_PHASES = {"StateX end", "control end", "scratch end"}
ARM_OPTION = "statex.arm"


def _comparisons(runs: pd.DataFrame):
    """StateX comparisons: groups of completed arm runs identical in every option except the
    seeds and the arm, that hold the statex arm and at least one of control / scratch.
    Yields (comparison id, its runs, grouping)."""
    arm_runs = completed(runs[runs["arm"].isin(ARMS)])
    arm_runs, _ = cells.assign_cells(arm_runs, extra_ignored=(ARM_OPTION,))
    arms = arm_runs.groupby("cell")["arm"].agg(set)
    kept = arms[arms.map(lambda a: "statex" in a and bool(a & {"control", "scratch"}))].index
    # Grouped again over the kept runs only, so `varied` names what differs between the
    # comparisons shown (not between them and unpaired ablation runs).
    kept_runs = arm_runs[arm_runs["cell"].isin(kept)].drop(columns=["cell", "cell_label"])
    kept_runs, grouping = cells.assign_cells(kept_runs, extra_ignored=(ARM_OPTION,))
    for cell_id, group in kept_runs.groupby("cell", sort=True):
        yield cell_id, group, grouping


def _statex_config(group: pd.DataFrame) -> str:
    sx = group[group["arm"] == "statex"]
    if sx.empty or pd.isna(sx["statex_step"].iloc[0]):
        return ""
    first = sx.iloc[0]
    return f"{first['statex_mode']}, step {int(first['statex_step'])}, layers {first['statex_layers']}"


def arms_table(runs: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """The StateX arms per comparison (_comparisons): accuracy just before and after the
    expansion (/statex) and at the end of training (equal total steps) for statex, control and
    scratch, each a cell with n / median / interval and, at the end, the escape counts. A phase
    no run measured has no row."""
    rows, grouping = [], cells.Grouping()
    for cell_id, group, grouping in _comparisons(runs):
        config = _statex_config(group)
        for label, arm, acc_col, state_col in PHASES:
            arm_runs = group[group["arm"] == arm]
            if pd.to_numeric(arm_runs[acc_col], errors="coerce").isna().all():
                continue  # no such arm, or the phase was not measured (-1 in /statex)
            escape = _escape_stats(arm_runs) if label in END_PHASES else \
                dict.fromkeys(ESCAPE_STATS, np.nan)
            rows.append({"comparison": cell_id,
                         **{o: arm_runs[o].iloc[0] for o in grouping.varied},
                         "model": arm_runs["model"].iloc[0], "phase": label, "arm": arm,
                         "lr": arm_runs[LR_COL].iloc[0] if LR_COL in arm_runs else np.nan,
                         "statex_config": config,
                         "state_scalars": pd.to_numeric(arm_runs[state_col]).median(),
                         **stats.summarize(pd.to_numeric(arm_runs[acc_col], errors="coerce")),
                         **escape, "runs": ";".join(arm_runs["run"].astype(str))})
    named = _named_options(grouping)
    columns = ["comparison", *named, "model", "phase", "arm", "lr", "statex_config",
               "state_scalars", *CELL_STATS, *ESCAPE_STATS, "runs"]
    table = _with_state(pd.DataFrame(rows, columns=columns), unit)
    table.attrs["caption"] = _caption(
        grouping, "A comparison pools nothing across options: its arms are runs identical in "
        "every option except the seeds and `statex.arm`. Before/after = accuracy just before and "
        "after the expansion; end = last eval (equal total steps for every arm).")
    cells.warn_small_cells(table, "statex_arms")
    return table


def _seed_key(runs: pd.DataFrame) -> pd.Series:
    seeds = [s for s in cells.SEED_OPTIONS if s in runs]
    return runs[seeds].astype(str).agg("/".join, axis=1) if seeds else runs["run"]


def statex_differences_table(runs: pd.DataFrame, metric: str = "final_accuracy") -> pd.DataFrame:
    """Paired StateX differences per comparison: statex minus control and statex minus scratch,
    paired by seed (train.seed, mqar.seed), `metric` = end-of-training accuracy. Per pair set:
    n_pairs, the median difference with its order-statistic interval and coverage, mean, signs
    and the two-sided
    sign-test p; runs without a partner of the same seeds are counted in `unpaired`; `seeds`
    and `differences` list the pairs (';'-joined, same order)."""
    rows, grouping = [], cells.Grouping()
    for cell_id, group, grouping in _comparisons(runs):
        group = group.assign(_seeds=_seed_key(group))
        sx = group[group["arm"] == "statex"].set_index("_seeds")
        for other in ("control", "scratch"):
            ot = group[group["arm"] == other].set_index("_seeds")
            if ot.empty:
                continue
            common = sorted(set(sx.index) & set(ot.index))
            diff = (pd.to_numeric(sx.loc[common, metric]) - pd.to_numeric(ot.loc[common, metric]))
            rows.append({"comparison": cell_id, **{o: sx[o].iloc[0] for o in grouping.varied},
                         "model": sx["model"].iloc[0],
                         "lr": sx[LR_COL].iloc[0] if LR_COL in sx else np.nan,
                         "statex_config": _statex_config(group), "difference": f"statex − {other}",
                         **stats.paired_summary(diff.to_numpy(float)),
                         "unpaired": len(sx) + len(ot) - 2 * len(common),
                         "seeds": ";".join(common),
                         "differences": ";".join(f"{d:.4f}" for d in diff.to_numpy(float))})
    named = _named_options(grouping)
    paired = ["n_pairs", "median_diff", "diff_ci_low", "diff_ci_high", "diff_ci_coverage",
              "mean_diff", "n_positive", "n_negative", "n_ties", "sign_p"]
    table = pd.DataFrame(rows, columns=["comparison", *named, "model", "lr", "statex_config",
                                        "difference", *paired, "unpaired", "seeds",
                                        "differences"])
    table.attrs["caption"] = _caption(
        grouping, "Differences of end-of-training accuracy, paired by seed "
        f"({', '.join(s for s in cells.SEED_OPTIONS)}); median difference with its "
        "order-statistic interval (as for a cell's median; CSV: `diff_ci_coverage`); sign "
        "test: two-sided binomial test of the positive vs negative differences (ties left "
        "out; with n pairs p >= 2/2^n, so 5 pairs cannot reach p < 0.05).")
    cells.warn_small_cells(table, "statex_differences", "n_pairs")
    return table


def ablation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """StateX ablation: one row per cell of statex-arm runs that expanded (lr chosen among cells
    differing only in lr), end-of-training accuracy."""
    statex = runs[(runs["arm"] == "statex") & runs["statex_step"].notna()]
    table, grouping = cells_table(statex, metric="final_accuracy", carry=STATEX_CONFIG)
    table = choose_lr(table, grouping, statex)
    # the expansion's own record (/statex: mode, step, layers) names these options' effect
    named = _named_options(grouping, drop=(LR_COL, "model.model", *STATEX_EVENT_OPTIONS))
    columns = ["model", *STATEX_CONFIG, *named, "lr", "lrs_tried", "state_scalars", *CELL_STATS,
               *ESCAPE_STATS, "cell_label", "runs"]
    table = table[columns].sort_values(["model", *STATEX_CONFIG], kind="stable")
    table = table.reset_index(drop=True)
    table.attrs["caption"] = _caption(grouping, "Accuracy = end-of-training (last eval).")
    cells.warn_small_cells(table, "statex_ablation")
    return table


def cell_summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every cell of the completed runs (all arms), best eval accuracy: what `summary` prints
    under the run table."""
    table, grouping = cells_table(runs)
    named = [o for o in grouping.varied]
    table = table[["cell", *named, "model", "arm", *CELL_STATS, *ESCAPE_STATS, "runs"]]
    table.attrs["caption"] = _caption(grouping, "Accuracy = best eval accuracy.")
    return table


def query_class_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell and query class of the task variants (docs/tasks.md: forgetting kept / updated
    keys, compositional shared / unique first token): n / median / interval of the final
    per-class accuracy. Empty when no run has a class."""
    frames = []
    for column in sorted(c for c in runs.columns if str(c).startswith("class_acc_")):
        has = completed(runs)[pd.to_numeric(completed(runs)[column], errors="coerce").notna()]
        if has.empty:
            continue
        table, grouping = cells_table(has, metric=column)
        table.insert(table.columns.get_loc("model") + 2, "query_class",
                     column.replace("class_acc_", ""))
        frames.append((table, grouping))
    if not frames:
        return pd.DataFrame()
    grouping = frames[0][1]
    table = pd.concat([t for t, _ in frames], ignore_index=True)
    keep = ["cell", *[o for o in grouping.varied if o in table], "model", "arm", "query_class",
            *CELL_STATS]
    table = table[keep].sort_values(["cell", "query_class"], kind="stable").reset_index(drop=True)
    table.attrs["caption"] = _caption(grouping, "Accuracy = token accuracy of the queries of "
                                      "each class at the last eval (docs/tasks.md).")
    return table


def series_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs drawn as series in the gap / segment / learning-curve figures: every cell of the
    completed runs, lr chosen per cell among cells differing only in lr (best eval accuracy)."""
    table, grouping = cells_table(runs)
    table = choose_lr(table, grouping, runs)
    rows = [{"model": c["model"], "arm": c["arm"], "state_scalars": c["state_scalars"],
             "lr": c["lr"], "cell": c["cell"], "cell_label": c["cell_label"], "run": r}
            for _, c in table.iterrows() for r in c["runs"].split(";")]
    return pd.DataFrame(rows, columns=["model", "arm", "state_scalars", "lr", "cell",
                                       "cell_label", "run"])


def _at_best_step(runs: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    best = runs.set_index("run")["best_step"]
    long = long[long["run"].isin(best.index)]
    return long[long["step"] == long["run"].map(best)]


def gap_table(runs: pd.DataFrame, gaps: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """Accuracy per query-gap bucket at each run's best eval, per cell (series_runs) and bucket:
    n / median / interval over seeds. NaN buckets (no queries) are ignored."""
    return _per_series(runs, gaps, ["gap_lo", "gap_hi"], unit)


def segment_table(runs: pd.DataFrame, segments: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """Accuracy per MQAR test segment at each run's best eval (same aggregation as gap_table)."""
    return _per_series(runs, segments, ["segment", "seq_len", "num_kv"], unit)


def _per_series(runs, long, item_cols, unit) -> pd.DataFrame:
    series = series_runs(runs)
    keys = ["model", "arm", "state_scalars", "lr", "cell", "cell_label"]
    columns = [*keys, *item_cols, *CELL_STATS]
    if long.empty or series.empty:
        return _with_state(pd.DataFrame(columns=columns), unit)
    at_best = _at_best_step(runs, long).merge(series, on="run")
    rows = [{**dict(zip(keys + item_cols, point)), **stats.summarize(group["accuracy"])}
            for point, group in at_best.groupby(keys + item_cols, dropna=False, sort=True)]
    return _with_state(pd.DataFrame(rows, columns=columns), unit)


# ---------------------------------------------------------------- tables for the CLI / report

def _fmt_state(value: float) -> str:
    return "" if pd.isna(value) else f"{int(value):,}"


def summary_table(runs: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """One row per trial: model, sizes, state size, lr, seed, arm, final/best accuracy, the
    plateau-escape step, status."""
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
        state_header(unit): state_column(runs, unit),
        "lr": col(LR_COL),
        "seed": col(SEED_COL),
        "arm": runs["arm"].replace("", "-"),
        "final_acc": col("final_accuracy"),
        "best_acc": col("best_accuracy"),
        "best_step": col("best_step"),
        "escape_step": _escape_text(runs),
        "status": status,
    })
    # The validation split (docs/analysis.md, "Learning-rate selection"), where any run has one:
    # best validation accuracy and the test accuracy at its eval.
    if _flag_any(runs):
        table["best_valid_acc"] = col("best_valid_accuracy")
        table["test_at_best_valid"] = col("test_at_best_valid")
    # Per-task query classes (docs/tasks.md): final accuracy on forgetting kept / updated keys and
    # compositional shared / unique first tokens, where any run has them.
    for name in sorted(c for c in runs.columns if str(c).startswith("class_acc_")):
        if pd.to_numeric(runs[name], errors="coerce").notna().any():
            table[name.replace("class_acc_", "acc_")] = runs[name]
    return table


def _escape_text(runs: pd.DataFrame) -> pd.Series:
    """Per run: the plateau-escape step, 'never' (threshold known, not exceeded) or '' (no K)."""
    if "escape_step" not in runs:
        return pd.Series("", index=runs.index)
    threshold = pd.to_numeric(runs["plateau_threshold"], errors="coerce")
    step = pd.to_numeric(runs["escape_step"], errors="coerce")
    return pd.Series(["" if pd.isna(t) else ("never" if pd.isna(s) else f"{int(s):,}")
                      for t, s in zip(threshold, step)], index=runs.index)


def group_table(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys`: run counts by status, how many cells (cells.py) the group holds, and
    the best single run. No mean over the group: runs that differ in more than the seeds are not
    seeds of one setting (the cell table gives per-cell statistics)."""
    check_columns(runs, keys, "--group-by")
    done_cells, _ = cells.assign_cells(completed(runs))
    rows = []
    for point, group in runs.groupby(keys, dropna=False, sort=True):
        point = point if isinstance(point, tuple) else (point,)
        done = completed(group)
        best = pd.to_numeric(done["best_accuracy"], errors="coerce")
        rows.append({**dict(zip(keys, point)), "runs": len(group), "completed": len(done),
                     "failed": int((group["status"] == "failed").sum()),
                     "other": int((~group["status"].isin(["completed", "failed"])).sum()),
                     "cells": done_cells.loc[done_cells["run"].isin(done["run"]), "cell"].nunique(),
                     "best_acc_max": best.max(),
                     "best_run": done.loc[best.idxmax(), "run"] if best.notna().any() else ""})
    return pd.DataFrame(rows)


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


# ---------------------------------------------------------------- README-ready Markdown

# Raw columns folded into the formatted ones (or too long for a README table).
_FOLDED = {"ci_low", "ci_high", "ci_coverage", "mean", "std", "min", "max", "n_escape_known",
           "escape_fraction", "cell_label", "runs", "comparison", "diff_ci_low", "diff_ci_high",
           "diff_ci_coverage",
           "mean_diff", "n_negative", "n_ties", "state_bytes", "state_scalars", "state_unit",
           "state_convention",
           "seeds", "differences", "group", "group_label", "statistic", "selection_mean"}


def _with_interval(center, low, high, coverage=None) -> str:
    if pd.isna(center):
        return ""
    if pd.isna(low):
        return f"{center:.3f} (no interval: n < {stats.MIN_N_FOR_INTERVAL})"
    text = f"{center:.3f} [{low:.3f}, {high:.3f}]"
    return text if coverage is None else f"{text} ({_pct(coverage)})"


def _interval_column(name: str, center, low, high, coverage) -> tuple[str, list[str]]:
    """Header and cells of a "median [CI]" column: the coverage goes in the header when every
    interval of the table has the same one ("median [93.8% CI]"), else after each interval
    ("median [CI] (coverage)": "0.690 [0.430, 0.780] (97.9%)")."""
    covs = _coverages(coverage)
    if len(covs) > 1:
        return (f"{name} [CI] (coverage)",
                [_with_interval(*v) for v in zip(center, low, high, coverage)])
    header = f"{name} [{_pct(covs[0])} CI]" if covs else f"{name} [CI]"
    return header, [_with_interval(*v) for v in zip(center, low, high)]


def presentable(table: pd.DataFrame) -> pd.DataFrame:
    """The table as a README shows it: "median [CI]" with the interval's real coverage
    (_interval_column), "escaped k/n", the median escape step
    ("not reached" when half or more never escaped), "+/−/0" sign counts and the sign-test p;
    raw columns folded into those are dropped (the CSV keeps them). Caption kept in attrs."""
    out: dict[str, pd.Series] = {}
    t = table
    for col in t.columns:
        if col == "median":
            header, values = _interval_column("median", t["median"], t["ci_low"], t["ci_high"],
                                              t["ci_coverage"])
            out[header] = pd.Series(values, index=t.index, dtype=object)
        elif col == "median_diff":
            header, values = _interval_column("median difference", t["median_diff"],
                                              t["diff_ci_low"], t["diff_ci_high"],
                                              t["diff_ci_coverage"])
            out[header] = pd.Series(values, index=t.index, dtype=object)
        elif col == "n_escaped":
            out["escaped"] = pd.Series(
                ["" if pd.isna(k) else f"{int(k)}/{int(n)}"
                 for k, n in zip(t["n_escaped"], t["n_escape_known"])], index=t.index)
        elif col == "escape_step_median":
            out["median escape step"] = pd.Series(
                ["" if pd.isna(k) else ("not reached" if pd.isna(s) else f"{int(s):,}")
                 for k, s in zip(t["n_escaped"], t["escape_step_median"])], index=t.index)
        elif col == "n_positive":
            out["+/−/0"] = t["n_positive"].astype(str) + "/" + t["n_negative"].astype(str) + \
                "/" + t["n_ties"].astype(str)
        elif col == "sign_p":
            out["sign-test p"] = t["sign_p"].map(lambda p: "" if pd.isna(p) else f"{p:.3g}")
        elif col == "state":
            unit = t["state_unit"].iloc[0] if len(t) else ""
            convention = t["state_convention"].iloc[0] if len(t) and "state_convention" in t \
                else state_conventions.DEFAULT
            out[f"{state_conventions.LABEL[convention]} ({unit})"] = t["state"]
        elif col not in _FOLDED:
            out[col] = t[col]
    frame = _blank_foreign_options(pd.DataFrame(out, index=t.index))
    if "model" in frame:  # the family first: the options after it are read per family
        frame = frame[["model", *[c for c in frame.columns if c != "model"]]]
    frame.attrs = dict(table.attrs)
    return frame


def _blank_foreign_options(frame: pd.DataFrame) -> pd.DataFrame:
    """Empties a `model.*` cell whose row's family does not read that option (families.py), and
    drops a column left empty by that: a GLA row shows no `model.d_state`, a Mamba2 row no
    `model.heads`."""
    if "model" not in frame:
        return frame
    frame = frame.copy()
    for col in [c for c in frame.columns if str(c).startswith("model.")]:
        foreign = ~frame["model"].map(lambda m: families.applies(col, str(m)))
        if foreign.all():
            frame = frame.drop(columns=col)
        elif foreign.any():
            frame[col] = frame[col].astype(object).where(~foreign, "")
    return frame


def markdown_table(table: pd.DataFrame) -> str:
    """presentable(table) as Markdown, followed by its caption (which options were grouped over
    and which varied, the interval and its coverage)."""
    text = to_markdown(presentable(table))
    caption = table.attrs.get("caption", "")
    return text + (f"\n{caption}\n" if caption else "")
