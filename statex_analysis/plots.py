"""Figures. Each function takes tables from analysis.tables (or the long frames) and returns a
matplotlib Figure whose legend labels name the series, so tests can inspect them. Nothing here
reads files or picks runs; selection lives in tables.py.

Every function takes `ax=`: an Axes (or an array of Axes, one per panel, for the multi-panel
figures) to draw into, e.g. a panel of a figure of your own; without it a new figure is made."""
from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")  # headless: reports are files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import families  # noqa: E402
from .tables import (ARMS, PHASES, STATEX_EVENT_OPTIONS, coverage_text,  # noqa: E402
                     state_header, state_label, table_convention)

SPREAD_TEXT = {"ci": "line = median, band = order-statistic interval of the median",
               "minmax": "line = median, band = min-max over seeds",
               "std": "line = mean, band = ±1 std over seeds (ddof=1)"}
# Also used in index.md. Curves per panel of the learning-curve figure (one colour each from
# tab20); a panel with more runs says so in its title instead of dropping them silently.
MAX_CURVES_PER_MODEL = 20


def spread_text(spread: str, table: pd.DataFrame | None = None) -> str:
    """SPREAD_TEXT[spread]; for 'ci' with the real coverage of the intervals drawn from `table`
    (column ci_coverage: one value, or the range when cells have different n)."""
    text = SPREAD_TEXT[spread]
    if spread != "ci" or table is None or "ci_coverage" not in table:
        return text
    covered = coverage_text(table["ci_coverage"])
    return f"{text}, coverage {covered}" if covered else f"{text} (none: n < 3)"


def _axes(ax, nrows: int, ncols: int, figsize, **kwargs):
    """(figure, [nrows, ncols] array of Axes): the caller's `ax` when given, else new ones."""
    if ax is None:
        return plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **kwargs)
    axes = np.asarray(ax, dtype=object)
    if axes.size != nrows * ncols:
        raise ValueError(f"ax: this figure has {nrows} x {ncols} panels, got {axes.size} Axes")
    axes = axes.reshape(nrows, ncols)
    return axes.flat[0].figure, axes


def _center_band(table: pd.DataFrame, spread: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(center, low, high) per row: the median with its interval (NaN band where n < 3) or
    min-max, or the mean ± sample std."""
    if spread == "std":
        mean = table["mean"].to_numpy(float)
        std = np.nan_to_num(table["std"].to_numpy(float))
        return mean, mean - std, mean + std
    low, high = ("ci_low", "ci_high") if spread == "ci" else ("min", "max")
    return (table["median"].to_numpy(float), table[low].to_numpy(float),
            table[high].to_numpy(float))


def _series_key(points: pd.DataFrame) -> list[str]:
    """Columns that split the scaling figure into series: the model, and every varied option
    that does not set the state size (families.STATE_SHAPE_OPTIONS: those move a point along
    x) and is not the lr (chosen per point): e.g. model.vocab_size or train.steps."""
    return ["model", *[c for c in points.columns if "." in str(c) and c != "model.model"
                       and c not in families.STATE_SHAPE_OPTIONS and c != "train.lr"]]


KV_CACHE_MODELS = {"attention"}  # models whose "state" is a KV cache that grows with T


def _state_text(value: float, unit: str) -> str:
    return f"{int(value):,} {'B' if unit == 'bytes' else 'scalars'}"


def accuracy_vs_state(points: pd.DataFrame, unit: str, spread: str = "ci",
                      ax=None) -> plt.Figure:
    """Best eval accuracy vs state size (log x; the table's convention), one series per model (and per value
    of any non-shape option that varied, e.g. train.steps), one point per cell at its chosen lr:
    the median with the interval band (`spread`) and error bars."""
    keys = _series_key(points)
    groups = list(points.groupby(keys, sort=True, dropna=False))
    long_labels = len(keys) > 1
    # constrained layout keeps a legend placed under the axes inside the figure
    fig, axes = _axes(ax, 1, 1, (6.4, 4.2 + (0.5 * len(groups) if long_labels else 0)),
                      layout="constrained")
    ax = axes[0, 0]
    for key, series in groups:
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join([str(key[0])] + [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                           for k, v in zip(keys[1:], key[1:])])
        label = textwrap.fill(label, 90, subsequent_indent="  ")
        series = series.sort_values("state")
        x = series["state"].to_numpy(float)
        if key[0] in KV_CACHE_MODELS:  # no fixed state: x is the KV cache at the test length T
            label = label.replace(str(key[0]), f"{key[0]} (KV cache at length T)", 1)
        center, low, high = _center_band(series, spread)
        (line,) = ax.plot(x, center, marker="o", label=label)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.errorbar(x, center, yerr=_yerr(center, low, high), fmt="none",
                    ecolor=line.get_color(), capsize=3, linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel(state_label(unit, table_convention(points)))
    ax.set_ylabel("best eval accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"MQAR accuracy vs state size\n({spread_text(spread, points)})", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if long_labels:  # series named by varied options: below the axes, where there is room
        ax.legend(title="model, and the options that differ between series", fontsize=7,
                  title_fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    else:
        ax.legend(title="model")
    return fig


def _yerr(center: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """[2, n] error-bar lengths below and above `center`; 0 where the band is undefined."""
    return np.vstack([np.nan_to_num(center - low), np.nan_to_num(high - center)]).clip(min=0)


def statex_arms(arms: pd.DataFrame, unit: str, spread: str = "ci", ax=None) -> plt.Figure:
    """One panel per StateX comparison (column `comparison`): bars for StateX before/after
    expansion, StateX end, control end and scratch end (median, or mean for spread 'std'), with
    the interval as error bars, each annotated with its state size."""
    comparisons = sorted(arms["comparison"].unique())
    fig, axes = _axes(ax, 1, len(comparisons), (5.2 * len(comparisons), 4.2))
    colors = {p[0]: f"C{i}" for i, p in enumerate(PHASES)}
    for ax, comparison in zip(axes[0], comparisons):
        table = arms[arms["comparison"] == comparison].reset_index(drop=True)
        model = table["model"].iloc[0]
        center, low, high = _center_band(table, spread)
        yerr = _yerr(center, low, high)
        for i, row in table.iterrows():
            ax.bar(i, center[i], yerr=yerr[:, i : i + 1], capsize=3, color=colors[row["phase"]],
                   label=row["phase"])
            if not np.isnan(row["state"]):
                ax.text(i, min(max(np.nan_to_num(high[i]), center[i]), 1.0) + 0.02,
                        _state_text(row["state"], unit), ha="center", fontsize=7, rotation=90,
                        va="bottom")
        ax.set_xticks(range(len(table)))
        ax.set_xticklabels([p.replace(" ", "\n") for p in table["phase"]], fontsize=7)
        ax.set_ylim(0, 1.4)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel("eval accuracy")
        config = next((c for c in table.get("statex_config", []) if c), "")  # statex arm's choice
        bars = spread_text(spread, table).replace("line", "bar").replace("band", "error bar")
        differ = "".join(f", {k}={v:g}" if isinstance(v, float) else f", {k}={v}"
                         for k, v in table.iloc[0].items() if ("." in str(k) or k == "lr")
                         and arms.loc[arms["model"] == model, k].nunique(dropna=False) > 1)
        ax.set_title(f"{model}{differ}: StateX arms ({state_header(unit, table_convention(arms))})"
                     f"\n{bars}"
                     + (f"\nStateX: {config}" if config else ""), fontsize=7)
        ax.legend(fontsize=7, loc="upper left")
    return fig


# Options that differ between runs without being part of the experiment.
NOT_SWEPT = {"train.threads", "device", "train.checkpoint_every", "train.eval_every"}
ALWAYS_SHOWN = ("train.lr", "train.seed")  # shown even when equal across the panel


def swept_columns(runs: pd.DataFrame) -> list[str]:
    """Config options (`section.name` columns) whose values differ between these runs, plus
    the state size when it differs, and lr and seed: what a legend must show to tell the runs
    apart."""
    def varies(column: str) -> bool:
        return column in runs and runs[column].astype(str).nunique(dropna=False) > 1
    options = [c for c in runs.columns if "." in c and c not in NOT_SWEPT
               and c not in ALWAYS_SHOWN and not c.startswith("statex.arm") and varies(c)]
    state = ["state_scalars"] if varies("state_scalars") else []
    return options + state + [c for c in ALWAYS_SHOWN if c in runs]


def _short(column: str) -> str:
    """d_model, lr, seed, statex.step, mqar.train ...: the section is kept where it helps."""
    if column == "state_scalars":
        return "state"
    section, _, name = column.partition(".")
    return name if section in ("model", "train") else column


def _curve_label(run: pd.Series, columns: list[str]) -> str:
    """"<arm>: d_model=32, state=512, lr=0.01, seed=0" (the swept values, not the trial id)."""
    parts = []
    for column in columns:
        value = run.get(column, np.nan)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not (isinstance(value, float) and np.isnan(value)) and value != "":
            parts.append(f"{_short(column)}={value:g}" if isinstance(value, float)
                         else f"{_short(column)}={value}")
    if run["status"] != "completed":
        parts.append(run["status"])
    return f"{run.get('arm') or 'plain'}: {', '.join(parts)}"


def _family(arm: str) -> str:
    return "StateX arms" if arm in ARMS else "plain runs"


def learning_curves(runs: pd.DataFrame, evals: pd.DataFrame, curves: pd.DataFrame,
                    keep: set[str] | None = None, ax=None) -> plt.Figure:
    """One row per (model, plain runs | StateX arms); left: eval accuracy vs step, right: train
    loss vs step, legend at the right. One line per run (only runs in `keep` when given; at most
    MAX_CURVES_PER_MODEL per row), dashed for runs that did not complete; a dotted vertical
    marks each StateX expansion step."""
    shown = runs[runs["run"].isin(evals["run"].unique() if not evals.empty else [])]
    if keep is not None:
        shown = shown[shown["run"].isin(keep)]
    shown = shown.assign(_family=shown["arm"].map(_family))
    panels = sorted(shown.groupby(["model", "_family"]).groups)
    n = max(len(panels), 1)
    fig, axes = _axes(ax, n, 2, (13, 3.6 * n))
    colors = plt.get_cmap("tab20").colors
    for (ax_acc, ax_loss), (model, family) in zip(axes, panels):
        group = shown[(shown["model"] == model) & (shown["_family"] == family)]
        marked: set[float] = set()
        columns = swept_columns(group)
        labels = {r["run"]: _curve_label(r, columns) for _, r in group.iterrows()}
        repeated = {v for v in labels.values() if list(labels.values()).count(v) > 1}
        for i, (_, run) in enumerate(group.head(MAX_CURVES_PER_MODEL).iterrows()):
            style = "-" if run["status"] == "completed" else "--"
            e = evals[evals["run"] == run["run"]]
            label = labels[run["run"]]
            if label in repeated:  # runs that differ in nothing shown: name the trial too
                label += f" [{run['run']}]"
            (line,) = ax_acc.plot(e["step"], e["accuracy"], style, marker=".",
                                  color=colors[i % len(colors)], label=label)
            if not curves.empty:
                c = curves[curves["run"] == run["run"]]
                ax_loss.plot(c["step"], c["loss"], style, color=line.get_color(), linewidth=0.8)
            step = run.get("statex_step", np.nan)
            if pd.notna(step):
                label = None if step in marked else f"StateX expansion (step {int(step)})"
                marked.add(step)
                for ax in (ax_acc, ax_loss):
                    ax.axvline(step, color="k", linestyle=":", linewidth=1,
                               label=label if ax is ax_acc else None)
        hidden = len(group) - min(len(group), MAX_CURVES_PER_MODEL)
        more = f" (first {MAX_CURVES_PER_MODEL} of {len(group)} runs shown)" if hidden else ""
        ax_acc.set_title(f"{model}, {family}: eval accuracy{more}", fontsize=9)
        ax_acc.set_xlabel("training step")
        ax_acc.set_ylabel("eval accuracy")
        ax_acc.set_ylim(-0.02, 1.02)
        ax_loss.set_title(f"{model}, {family}: train loss", fontsize=9)
        ax_loss.set_xlabel("training step")
        ax_loss.set_ylabel("train loss (CE)")
        handles, labels = ax_acc.get_legend_handles_labels()
        ax_loss.legend(handles, labels, fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        for ax in (ax_acc, ax_loss):
            ax.grid(True, alpha=0.3)
    return fig


def _series_label(row: pd.Series, unit: str) -> str:
    arm = f", {row['arm']}" if row["arm"] else ""
    return f"{_state_text(row['state'], unit)}{arm}"


def _per_item(table: pd.DataFrame, unit: str, item: str, item_labels, xlabel: str,
              title: str, ax=None) -> plt.Figure:
    """Shared layout of the gap and segment figures: panel per model, series per state size,
    categorical x (one tick per bucket / segment)."""
    models = sorted(table["model"].unique())
    fig, axes = _axes(ax, 1, len(models), (5.6 * len(models), 4))
    for ax, model in zip(axes[0], models):
        sub = table[table["model"] == model]
        items = sorted(sub[item].unique(), key=item_labels[1])
        pos = {v: i for i, v in enumerate(items)}
        per_label = sub.groupby(["arm", "state"])["cell"].nunique()
        for (arm, state, cell), series in sub.groupby(["arm", "state", "cell"], sort=True):
            series = series.assign(_x=series[item].map(pos)).sort_values("_x")
            x = series["_x"].to_numpy(float)
            center, low, high = _center_band(series, "ci")
            label = _series_label(series.iloc[0], unit)
            if per_label[(arm, state)] > 1:  # same state and arm, other options: name the cell
                label += f", cell {cell} (tables/cells)"
            (line,) = ax.plot(x, center, marker="o", label=label)
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_xticks(range(len(items)))
        ax.set_xticklabels([item_labels[0](sub, v) for v in items], fontsize=7, rotation=30)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy at best eval")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{model}: {title}", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(title=state_header(unit, table_convention(table)), fontsize=7)
    return fig


def _gap_text(sub: pd.DataFrame, lo) -> str:
    hi = sub.loc[sub["gap_lo"] == lo, "gap_hi"].iloc[0]
    return f"≥{int(lo)}" if np.isinf(hi) else f"[{int(lo)},{int(hi)})"


def gap_accuracy(gaps: pd.DataFrame, unit: str, ax=None) -> plt.Figure:
    """Accuracy vs key→query distance bucket, per model, one series per state size."""
    return _per_item(gaps, unit, "gap_lo", (_gap_text, lambda v: v),
                     "key→query gap (tokens; bucket [lo, hi))",
                     f"accuracy vs query gap\n({spread_text('ci', gaps)})", ax)


def _segment_key(name: str):
    parts = name.split(":")
    return tuple(int(p) if p.isdigit() else 0 for p in parts) if len(parts) == 3 else (0, 0, 0)


def segment_accuracy(segments: pd.DataFrame, unit: str, ax=None) -> plt.Figure:
    """Accuracy per MQAR test segment (T, K), per model, one series per state size."""
    def text(_sub, name):
        parts = name.split(":")
        return f"T={parts[0]} K={parts[1]}" if len(parts) == 3 else name
    return _per_item(segments, unit, "segment", (text, _segment_key), "MQAR test segment",
                     f"accuracy per test segment\n({spread_text('ci', segments)})", ax)


# Options that the ablation heatmap's axes (or the lr choice) already account for.
ABLATION_AXES_OPTIONS = (*STATEX_EVENT_OPTIONS, "train.lr")


def ablation_heatmaps(ablation: pd.DataFrame, ax=None) -> plt.Figure:
    """One heatmap per (model, mode): expansion step (x) × expanded layers (y), colour = median
    final accuracy over seeds at the chosen LR; each cell annotated (blank = not run)."""
    # Any other option that differs between cells gets panels of its own: a square is one cell.
    keys = ["model", "statex_mode", *[c for c in ablation.columns if "." in str(c)
                                      and c not in ABLATION_AXES_OPTIONS]]
    panels = list(ablation.groupby(keys, sort=True, dropna=False))
    fig, axes = _axes(ax, 1, len(panels), (4.8 * len(panels), 3.8),
                      layout="constrained")  # constrained: room for the shared colorbar
    image = None
    for ax, (key, sub) in zip(axes[0], panels):
        model, mode, *others = key
        grid = sub.pivot_table(index="statex_layers", columns="statex_step", values="median",
                               aggfunc="first")
        image = ax.imshow(grid.to_numpy(float), vmin=0, vmax=1, cmap="viridis", aspect="auto",
                          origin="lower")
        for (i, j), value in np.ndenumerate(grid.to_numpy(float)):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                        color="w" if value < 0.6 else "k")
        ax.set_xticks(range(grid.shape[1]))
        ax.set_xticklabels([str(int(s)) for s in grid.columns])
        ax.set_yticks(range(grid.shape[0]))
        ax.set_yticklabels(list(grid.index))
        ax.set_xlabel("expansion step")
        ax.set_ylabel("expanded layers")
        same_model = ablation[ablation["model"] == model]
        extra = "".join(f", {k}={v:g}" if isinstance(v, float) else f", {k}={v}"
                        for k, v in zip(keys[2:], others)
                        if same_model[k].nunique(dropna=False) > 1)  # what tells panels apart
        ax.set_title(textwrap.fill(f"{model} / {mode}{extra}", 60), fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), label="final accuracy (median over seeds, chosen LR)")
    return fig
