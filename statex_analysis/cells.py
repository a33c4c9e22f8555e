"""Cells: the groups of runs that may be pooled as seeds (docs/analysis.md, "Cells").

A cell is the set of completed runs that are identical in EVERY resolved option of their /config
except the seeds (SEED_OPTIONS). Runs that differ in anything else - steps, lr, d_model, thread
count, an option one file has and another lacks - are different cells, never extra seeds of one.
This is the only place that decides what is pooled; every table goes through `assign_cells`.

Two runs of one cell with the same seeds are the same measurement twice (a run is a pure function
of its config and thread count): the first by run label is kept, the others are dropped with a
warning, so n counts distinct seeds.

The runs are sorted by their label first: cells, which duplicate is kept and the order of a
cell's runs depend on the set of runs, not on the order they were read in.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

# Seeds of a run: train.seed (parameter init / batch order) and mqar.seed (train and test data).
SEED_OPTIONS = ("train.seed", "mqar.seed")
MISSING = ""  # an option a run's file lacks (or leaves empty): a value of its own, not a wildcard


class PoolingWarning(UserWarning):
    """A cell with fewer than 3 seeds, or duplicate seeds dropped from a cell."""


def option_columns(runs: pd.DataFrame) -> list[str]:
    """The /config option columns of a runs frame (their names have a dot: 'train.lr')."""
    return sorted(c for c in runs.columns if "." in str(c))


@dataclass
class Grouping:
    """How runs were grouped: `varied` options differ between cells (they name a cell),
    `constant` ones are the same in every run, `grouped_over` are the seed options pooled."""

    varied: list[str] = field(default_factory=list)
    constant: dict = field(default_factory=dict)
    grouped_over: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One paragraph for a table's caption."""
        over = ", ".join(f"`{o}`" for o in self.grouped_over) or "nothing (no seed option)"
        varied = ", ".join(f"`{o}`" for o in self.varied) or "none"
        return (f"Cells pool runs identical in every option except the seeds; grouped over: "
                f"{over}. Options that differ between cells: {varied}. "
                f"{len(self.constant)} other options are the same in every run.")


def _key_values(column: pd.Series) -> pd.Series:
    """Hashable, comparable values: numbers as floats, anything else as text; missing = MISSING."""
    numeric = pd.to_numeric(column, errors="coerce")
    text = column.astype(object).where(column.notna(), MISSING).astype(str)
    return numeric.astype(object).where(numeric.notna(), text)


def assign_cells(runs: pd.DataFrame, extra_ignored: tuple[str, ...] = ()) -> tuple[pd.DataFrame,
                                                                                    Grouping]:
    """Adds `cell` (int, 0.. in sorted key order) and `cell_label` ("opt=value, ..." of the varied
    options) to `runs` (completed runs expected, sorted by `run` here) and returns it with the
    Grouping. Options in `extra_ignored` (besides the seeds) are left out of the key too - only
    for a caller that pairs across them on purpose (the StateX arms: `statex.arm`)."""
    ignored = set(SEED_OPTIONS) | set(extra_ignored)
    if "run" in runs:
        runs = runs.sort_values("run", kind="stable")
    options = [c for c in option_columns(runs) if c not in ignored]
    if runs.empty:
        return runs.assign(cell=pd.Series(dtype=int), cell_label=pd.Series(dtype=str)), \
            Grouping(grouped_over=[s for s in SEED_OPTIONS if s in runs])
    keys = pd.DataFrame({c: _key_values(runs[c]) for c in options}, index=runs.index)
    varied = [c for c in options if keys[c].nunique(dropna=False) > 1]
    constant = {c: keys[c].iloc[0] for c in options if c not in varied}
    if varied:
        key = keys[varied].apply(lambda row: tuple(map(_sortable, row)), axis=1)
    else:
        key = pd.Series([()] * len(runs), index=runs.index)
    order = {k: i for i, k in enumerate(sorted(set(key)))}
    labels = keys[varied].apply(lambda row: ", ".join(f"{c}={_text(v)}" for c, v in row.items()),
                                axis=1) if varied else pd.Series("", index=runs.index)
    out = runs.assign(cell=key.map(order).astype(int), cell_label=labels.astype(str))
    grouping = Grouping(varied=varied, constant=constant,
                        grouped_over=[s for s in SEED_OPTIONS if s in runs])
    same_run = ["cell", *grouping.grouped_over, *[c for c in extra_ignored if c in out], "arm"]
    return _drop_duplicate_seeds(out, [c for c in same_run if c in out]), grouping


def _sortable(value):
    return (0, value, "") if isinstance(value, float) else (1, 0.0, str(value))


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _drop_duplicate_seeds(runs: pd.DataFrame, same_run: list[str]) -> pd.DataFrame:
    """Keeps the first of runs equal in `same_run` (cell, seeds, and what the caller ignored)."""
    dup = runs.duplicated(subset=same_run, keep="first")
    if dup.any():
        names = ", ".join(runs.loc[dup, "run"].astype(str).head(5))
        warnings.warn(f"{int(dup.sum())} run(s) repeat the seeds of another run of the same cell "
                      f"and are left out: {names}", PoolingWarning, stacklevel=3)
    return runs[~dup]


def warn_small_cells(table: pd.DataFrame, what: str, n_column: str = "n",
                     min_n: int = 3) -> None:
    """One line naming how many cells of `table` have n < min_n seeds."""
    if table.empty or n_column not in table:
        return
    small = int((pd.to_numeric(table[n_column], errors="coerce").fillna(0) < min_n).sum())
    if small:
        warnings.warn(f"{what}: {small} of {len(table)} cells have n < {min_n} seeds (no "
                      f"interval; a single-seed value measures luck, not the setting)",
                      PoolingWarning, stacklevel=2)
