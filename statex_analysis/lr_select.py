"""Learning-rate selection on a validation split, and the learning-rate window
(docs/analysis.md, "Learning-rate selection").

An **lr group** is the set of runs identical in every option except the seeds and `train.lr`
(cells.py with train.lr ignored): one (family, state size, ...) point of a sweep with an lr axis.
Within a group every lr is scored over its seeds and one lr is chosen:

  * score of a run: its best VALIDATION accuracy (max of /valid/accuracy) when the runs have a
    validation split (`mqar.valid`), else its best test accuracy (the choice is then made on the
    numbers it reports: `selected_on = test`, optimistic by the best-of-k margin);
  * a run whose trainer failed (results status `failed`, e.g. a non-finite loss) scores 0: a
    diverging lr is a bad lr, not a missing one; unfinished runs are left out;
  * statistic: the MEDIAN of the scores over the seeds of an lr; ties: the higher mean, then the
    smaller lr;
  * reported: the TEST accuracy of the runs at the chosen lr, per run at the eval where its
    validation accuracy was best (`test_at_best_valid`), so no number the table reports took part
    in any choice (n, median and interval over the completed seeds, as every table);
  * grid edge: when the chosen lr is the smallest or the largest lr scored in the group, the
    window touches the edge of the grid (`grid_edge`: "low: extend below" / "high: extend
    above"): the optimum may lie outside it.

`sim/sweep/best_lr.cpp` (a sweep's best_lr.csv) applies the same rule; this module's
`lr_selection` table is the record. The `lr_window` table and figure show every lr of every
group: median accuracy and escape fraction against lr x state size, chosen lr marked.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import cells, stats

LR_COL = "train.lr"
FAILED_SCORE = 0.0
SELECTION_STATISTIC = {
    "validation": "median over seeds of the best validation accuracy (failed runs = 0)",
    "test": "median over seeds of the best test accuracy (failed runs = 0; no validation split: "
            "chosen on the numbers shown)",
}
CELL_STATS = ["n", "median", "ci_low", "ci_high", "ci_coverage", "mean", "std", "min", "max"]
ESCAPE_STATS = ["n_escaped", "n_escape_known", "escape_fraction", "escape_step_median"]


def _flag(column: pd.Series) -> pd.Series:
    return column.map(lambda v: v is True or (isinstance(v, (bool, np.bool_)) and bool(v))
                      or (isinstance(v, (int, float, np.integer, np.floating))
                          and not pd.isna(v) and bool(v)))


def reported_accuracy(runs: pd.DataFrame) -> pd.Series:
    """Per run, the accuracy a table reports: the test accuracy at the eval of best validation
    accuracy for runs with a validation split, else the best test accuracy."""
    has_valid = _flag(runs.get("has_valid", pd.Series(False, index=runs.index)))
    at_valid = pd.to_numeric(runs.get("test_at_best_valid", np.nan), errors="coerce")
    best = pd.to_numeric(runs["best_accuracy"], errors="coerce")
    return pd.Series(np.where(has_valid, at_valid, best), index=runs.index)


def _scored(runs: pd.DataFrame) -> tuple[pd.DataFrame, cells.Grouping]:
    """Completed runs and runs the trainer failed (read from their file: their options are
    known), with `group` (lr group id), `group_label`, `score`, `reported`, `valid` (bool),
    `failed` (bool)."""
    read = runs["format_version"].notna() if "format_version" in runs else \
        pd.Series(True, index=runs.index)
    keep = runs[runs["status"].isin(["completed", "failed"]) & read]
    if keep.empty or LR_COL not in keep:
        return pd.DataFrame(columns=["run", "group", "group_label", "lr", "score", "reported",
                                     "valid", "failed"]), cells.Grouping()
    keep, grouping = cells.assign_cells(keep.drop(columns=["cell", "cell_label"],
                                                  errors="ignore"), extra_ignored=(LR_COL,))
    failed = keep["status"] == "failed"
    valid = _flag(keep.get("has_valid", pd.Series(False, index=keep.index)))
    best_valid = pd.to_numeric(keep.get("best_valid_accuracy", np.nan), errors="coerce")
    best = pd.to_numeric(keep["best_accuracy"], errors="coerce")
    score = pd.Series(np.where(valid, best_valid, best), index=keep.index)
    keep = keep.assign(group=keep["cell"], group_label=keep["cell_label"], failed=failed,
                       valid=valid, score=score.where(~failed, FAILED_SCORE),
                       reported=reported_accuracy(keep),
                       lr=pd.to_numeric(keep[LR_COL], errors="coerce"))
    return keep.drop(columns=["cell", "cell_label"]), grouping


def _lr_rows(group: pd.DataFrame) -> list[dict]:
    """One dict per lr of a group: scores and the reported test statistics."""
    rows = []
    for lr, at in group.groupby("lr", sort=True, dropna=False):
        scores = at["score"].to_numpy(float)
        scores = scores[~np.isnan(scores)]
        done = at[~at["failed"]]
        known = done[pd.to_numeric(done.get("plateau_threshold", np.nan),
                                   errors="coerce").notna()] if "plateau_threshold" in done \
            else done.iloc[0:0]
        escape = ({**stats.escape_summary(pd.to_numeric(known["escape_step"], errors="coerce")),
                   "n_escape_known": len(known)} if len(known)
                  else dict.fromkeys(ESCAPE_STATS, np.nan))
        # The window counts a failed run as accuracy 0 and not escaped.
        window_acc = np.concatenate([done["reported"].to_numpy(float),
                                     np.zeros(int(at["failed"].sum()))])
        window_acc = window_acc[~np.isnan(window_acc)]
        n_known = len(known) + int(at["failed"].sum())
        rows.append({
            "lr": lr, "n_scored": len(scores), "n_failed": int(at["failed"].sum()),
            "selection_median": float(np.median(scores)) if len(scores) else math.nan,
            "selection_mean": float(np.mean(scores)) if len(scores) else math.nan,
            **stats.summarize(done["reported"]), **escape,
            "window_median": float(np.median(window_acc)) if len(window_acc) else math.nan,
            "window_escape_fraction": (escape["n_escaped"] / n_known
                                       if n_known and not pd.isna(escape["n_escaped"])
                                       else (0.0 if n_known else math.nan)),
            "runs": ";".join(done["run"].astype(str)),
        })
    return rows


def _choose(lr_rows: list[dict]) -> tuple[dict | None, str]:
    """The chosen lr row (highest selection median; ties: higher mean, then smaller lr) and the
    grid-edge flag."""
    scored = [r for r in lr_rows if r["n_scored"] > 0]
    if not scored:
        return None, ""
    best = sorted(scored, key=lambda r: (-r["selection_median"], -r["selection_mean"],
                                         r["lr"]))[0]
    lrs = [r["lr"] for r in scored]
    if len(set(lrs)) < 2:
        edge = ""
    elif best["lr"] == min(lrs):
        edge = f"low: extend below {best['lr']:g}"
    elif best["lr"] == max(lrs):
        edge = f"high: extend above {best['lr']:g}"
    else:
        edge = ""
    return best, edge


def _groups(runs: pd.DataFrame):
    """Yields (group id, its scored runs, lr rows, chosen row, edge, selected_on, grouping)."""
    scored, grouping = _scored(runs)
    for gid, group in scored.groupby("group", sort=True):
        rows = _lr_rows(group)
        best, edge = _choose(rows)
        done = group[~group["failed"]]
        on_valid = len(done) > 0 and bool(done["valid"].all())
        yield gid, group, rows, best, edge, ("validation" if on_valid else "test"), grouping


def choices(runs: pd.DataFrame) -> pd.DataFrame:
    """Per scored run of a group with at least two lrs: run, group, lr, chosen (the run is at its
    group's chosen lr), selected_on, grid_edge. What tables.choose_lr applies."""
    out = []
    for _, group, rows, best, edge, on, _ in _groups(runs):
        if best is None or len(rows) < 2:
            continue
        for run, lr in zip(group["run"], group["lr"]):
            out.append({"run": run, "group": group["group"].iloc[0], "lr": lr,
                        "chosen": lr == best["lr"], "selected_on": on, "grid_edge": edge})
    return pd.DataFrame(out, columns=["run", "group", "lr", "chosen", "selected_on",
                                      "grid_edge"])


def _score_text(rows: list[dict]) -> str:
    parts = []
    for r in rows:
        if not r["n_scored"]:
            parts.append(f"{r['lr']:g}: - (0)")
            continue
        failed = f", {r['n_failed']} failed" if r["n_failed"] else ""
        parts.append(f"{r['lr']:g}: {r['selection_median']:.3f} ({r['n_scored']}{failed})")
    return "; ".join(parts)


def _first(group: pd.DataFrame, column: str):
    return group[column].iloc[0] if column in group else np.nan


def selection_table(runs: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """One row per lr group with at least two lrs: the options naming the group, selected_on,
    the statistic, the chosen `lr`, `lrs_tried`, every lr's score (`lr_scores`: "lr: median
    (n[, f failed])"), the chosen lr's selection median / mean, n_scored and n_failed,
    `grid_edge`, then the reported TEST accuracy at the chosen lr (n, median, 95% interval ...
    over its completed seeds; test_at_best_valid with a validation split) and its escape counts."""
    rows, grouping = [], cells.Grouping()
    for gid, group, lr_rows, best, edge, on, grouping in _groups(runs):
        if best is None or len(lr_rows) < 2:
            continue
        rows.append({
            "group": gid, **{o: _first(group, o) for o in grouping.varied},
            "model": _first(group, "model"), "arm": _first(group, "arm"),
            "state_scalars": pd.to_numeric(group["state_scalars"], errors="coerce").median(),
            "selected_on": on, "statistic": SELECTION_STATISTIC[on], "lr": best["lr"],
            "lrs_tried": ";".join(f"{r['lr']:g}" for r in lr_rows),
            "lr_scores": _score_text(lr_rows),
            "selection_median": best["selection_median"],
            "selection_mean": best["selection_mean"], "n_scored": best["n_scored"],
            "n_failed": best["n_failed"], "grid_edge": edge,
            **{k: best[k] for k in CELL_STATS + ESCAPE_STATS}, "group_label": group[
                "group_label"].iloc[0], "runs": best["runs"]})
    named = [o for o in grouping.varied if o not in (LR_COL, "model.model")]
    columns = ["group", "model", "state_scalars", *named, "arm", "selected_on", "statistic",
               "lr", "lrs_tried", "lr_scores", "selection_median", "selection_mean", "n_scored",
               "n_failed", "grid_edge", *CELL_STATS, *ESCAPE_STATS, "group_label", "runs"]
    table = pd.DataFrame(rows, columns=columns)
    if not table.empty:
        table = table.sort_values(["model", "state_scalars", *named], kind="stable")
    if not table["arm"].fillna("").astype(str).ne("").any():
        table = table.drop(columns="arm")  # plain runs only
    table = _with_state(table.reset_index(drop=True), unit)
    table.attrs["caption"] = (
        f"{grouping.describe()} An lr group = runs identical in every option except the seeds "
        "and `train.lr`. The lr is chosen per group on `selected_on`: the highest median over "
        "seeds of each run's best validation accuracy (`validation`; `test` when the runs have "
        "no validation split: then chosen on the numbers shown), ties: higher mean, then the "
        "smaller lr; a run whose trainer failed (e.g. non-finite loss) scores 0 (`n_failed`). "
        "`lr_scores`: every lr's median score (n seeds). Reported: test accuracy at the chosen "
        "lr, each run's at its eval of best validation accuracy (never chosen on test), over "
        "its completed seeds. `grid_edge`: the chosen lr is the grid's smallest or largest: the "
        "window touches the edge, extend the grid. " + _stats_text())
    return table


def window_table(runs: pd.DataFrame, unit: str = "bytes") -> pd.DataFrame:
    """One row per (lr group with at least two lrs, lr): the window. `window_median` = median
    accuracy over the seeds (reported accuracy: test at the best validation eval; failed runs
    count 0), `window_escape_fraction` (failed runs count as not escaped), the selection
    median, `chosen`, `grid_edge`, and the completed runs' n / median / interval."""
    rows = []
    for gid, group, lr_rows, best, edge, on, grouping in _groups(runs):
        if best is None or len(lr_rows) < 2:
            continue
        for r in lr_rows:
            rows.append({"group": gid, "model": _first(group, "model"),
                         "state_scalars": pd.to_numeric(group["state_scalars"],
                                                        errors="coerce").median(),
                         "group_label": group["group_label"].iloc[0], "selected_on": on,
                         "chosen": r["lr"] == best["lr"], "grid_edge": edge if r["lr"] ==
                         best["lr"] else "", **{k: v for k, v in r.items() if k != "runs"},
                         "runs": r["runs"]})
    columns = ["group", "model", "state_scalars", "group_label", "selected_on", "lr", "chosen",
               "grid_edge", "n_scored", "n_failed", "selection_median", "selection_mean",
               "window_median", "window_escape_fraction", *CELL_STATS, *ESCAPE_STATS, "runs"]
    table = _with_state(pd.DataFrame(rows, columns=columns), unit)
    table.attrs["caption"] = (
        "The learning-rate window: every lr of every lr group (runs identical except the seeds "
        "and `train.lr`). window_median = median over seeds of the reported accuracy (test "
        "accuracy at each run's best validation eval; without a validation split its best test "
        "accuracy), failed runs (e.g. non-finite loss) counted as 0; window_escape_fraction = "
        "share of seeds that left the 1/K plateau (failed runs: not escaped); selection_median = "
        "the median validation score the choice used; chosen = the lr selected for the group. "
        + _stats_text())
    return table


def _stats_text() -> str:
    from .tables import STATS_TEXT  # tables imports this module: resolve at call time
    return STATS_TEXT


def _with_state(table: pd.DataFrame, unit: str) -> pd.DataFrame:
    at = list(table.columns).index("state_scalars") + 1
    table = table.copy()
    scalars = pd.to_numeric(table["state_scalars"], errors="coerce")
    table.insert(at, "state_bytes", scalars * 4)
    table.insert(at + 1, "state", scalars * (4 if unit == "bytes" else 1))
    table.insert(at + 2, "state_unit", unit)
    return table


# ---------------------------------------------------------------- the window figure

def _label_parts(label: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in str(label).split(", ") if "=" in p)


def _row_labels(sub: pd.DataFrame, groups: list, unit: str) -> list[str]:
    """Per group of one model: its state size, and the options that differ between that model's
    groups besides the ones setting the state size (e.g. `train.steps`)."""
    from .families import STATE_SHAPE_OPTIONS
    parts = {g: _label_parts(sub.loc[sub["group"] == g, "group_label"].iloc[0]) for g in groups}
    keys = sorted({k for p in parts.values() for k in p})
    differ = [k for k in keys if k not in STATE_SHAPE_OPTIONS and k != "model.model"
              and len({p.get(k) for p in parts.values()}) > 1]
    labels = []
    for g in groups:
        state = sub.loc[sub["group"] == g, "state"].iloc[0]
        text = "" if pd.isna(state) else f"{int(state):,} {'B' if unit == 'bytes' else 'sc.'}"
        labels.append(", ".join([text, *(f"{k.split('.')[-1]}={parts[g].get(k, '')}"
                                         for k in differ)]))
    return labels


def plot_window(window: pd.DataFrame, unit: str, ax=None):
    """Per family (row): heatmaps of median accuracy (left) and escape fraction (right) against
    lr (x) x state size (y; one row per lr group), each cell annotated with its value and n; the
    chosen lr outlined in red, a choice at the grid's edge marked "<- extend" / "extend ->"."""
    import matplotlib.patches as patches

    from .plots import _axes
    from .tables import state_label

    models = sorted(window["model"].astype(str).unique())
    lrs = sorted(window["lr"].dropna().unique())
    max_rows = max(int(window[window["model"].astype(str) == m]["group"].nunique())
                   for m in models)
    fig, axes = _axes(ax, len(models), 2, (4.0 + 0.85 * len(lrs) * 2,
                                           0.8 + len(models) * (1.6 + 0.45 * max_rows)),
                      layout="constrained")
    panels = (("window_median", "median accuracy (test at best valid. eval)", "viridis"),
              ("window_escape_fraction", "escape fraction (left the 1/K plateau)", "magma"))
    for row, model in enumerate(models):
        sub = window[window["model"].astype(str) == model]
        groups = (sub.sort_values(["state_scalars", "group_label"])["group"]
                  .drop_duplicates().tolist())
        for col, (value, title, cmap) in enumerate(panels):
            a = axes[row, col]
            grid = np.full((len(groups), len(lrs)), np.nan)
            for _, r in sub.iterrows():
                grid[groups.index(r["group"]), lrs.index(r["lr"])] = r[value]
            image = a.imshow(grid, vmin=0, vmax=1, cmap=cmap, aspect="auto", origin="lower")
            for _, r in sub.iterrows():
                y, x = groups.index(r["group"]), lrs.index(r["lr"])
                v = r[value]
                text = "-" if pd.isna(v) else f"{v:.2f}"
                n = f"\nn={int(r['n_scored'])}" + (f" ({int(r['n_failed'])} failed)"
                                                   if r["n_failed"] else "")
                a.text(x, y, text + n, ha="center", va="center", fontsize=6.5,
                       color="white" if pd.isna(v) or v < 0.6 else "black")
                if r["chosen"]:
                    a.add_patch(patches.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False,
                                                  edgecolor="red", linewidth=2.2))
                    edge = str(r["grid_edge"])
                    if edge:  # the window touches the grid's edge: say where to extend it
                        low = edge.startswith("low")
                        a.text(x - 0.45 if low else x + 0.45, y - 0.42,
                               "\u2190 extend" if low else "extend \u2192", fontsize=6,
                               color="red", ha="left" if low else "right", va="bottom",
                               bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none",
                                         alpha=0.85))
            a.set_xticks(range(len(lrs)))
            a.set_xticklabels([f"{lr:g}" for lr in lrs], fontsize=7)
            a.set_yticks(range(len(groups)))
            a.set_yticklabels(_row_labels(sub, groups, unit), fontsize=7)
            a.set_xlabel("peak learning rate (train.lr)", fontsize=8)
            if col == 0:  # attention's "state" is its KV cache at the test length T
                a.set_ylabel(f"{model}\n" + (f"KV cache at length T ({unit})"
                                             if model == "attention" else state_label(unit)),
                             fontsize=7)
            selected = sub["selected_on"].iloc[0]
            a.set_title(f"{model}: {title}\nred box = lr chosen on {selected}", fontsize=8)
            fig.colorbar(image, ax=a, fraction=0.05, pad=0.02)
    return fig
