"""`analysis report`: tables (CSV + Markdown), figures (PNG + SVG) and an index.md linking them."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import lr_select, plots, state_conventions, tables
from .frames import Record, curves_frame, evals_frame, gaps_frame, runs_frame, segments_frame

DEFAULT_DPI = 110  # PNG resolution unless --dpi says otherwise


@dataclass
class Report:
    """What a report holds before it is written: tables and figures by name, with captions."""

    runs: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, plt.Figure] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # figure name -> why not drawn


def _as_bars(spread_text: str) -> str:
    return spread_text.replace("line", "bar").replace("band", "error bar")


def build_report(records: list[Record], unit: str = "bytes", spread: str = "ci") -> Report:
    """Computes every table and figure the data allows; figures without data are listed in
    `skipped` with the reason."""
    if spread not in tables.SPREADS:
        raise tables.TableError(f"--spread must be one of {', '.join(tables.SPREADS)}")
    runs = runs_frame(records)
    tables.state_column(runs, unit)  # validates the unit early
    evals, curves = evals_frame(records), curves_frame(records)
    rep = Report(runs=runs)
    t = rep.tables
    t["summary"] = tables.summary_table(runs, unit)
    t["failures"] = tables.failures_table(runs)
    t["accuracy_vs_state"] = tables.accuracy_vs_state_table(runs, unit)
    t["cells"] = tables.cell_summary_table(runs)
    t["statex_arms"] = tables.arms_table(runs, unit)
    t["statex_differences"] = tables.statex_differences_table(runs)
    t["gap_accuracy"] = tables.gap_table(runs, gaps_frame(records), unit)
    t["segment_accuracy"] = tables.segment_table(runs, segments_frame(records), unit)
    t["statex_ablation"] = tables.ablation_table(runs)
    t["lr_selection"] = lr_select.selection_table(runs, unit)  # sweeps with an lr axis
    t["lr_window"] = lr_select.window_table(runs, unit)
    query_classes = tables.query_class_table(runs)  # task variants only (docs/tasks.md)
    if not query_classes.empty:
        t["query_classes"] = query_classes

    def add(name, has_data, draw, caption, why_empty):
        if not has_data:
            rep.skipped[name] = why_empty
            return
        rep.figures[name] = draw()
        rep.captions[name] = caption

    add("accuracy_vs_state", not t["accuracy_vs_state"].empty,
        lambda: plots.accuracy_vs_state(t["accuracy_vs_state"], unit, spread),
        f"Best eval accuracy vs {tables.state_header(unit)}, log axis, one series per model; "
        f"one point per cell (runs identical except the seeds) at its chosen LR; "
        f"{plots.spread_text(spread, t['accuracy_vs_state'])}.",
        "no completed run without a StateX arm")
    add("statex_arms", not t["statex_arms"].empty,
        lambda: plots.statex_arms(t["statex_arms"], unit, spread),
        "StateX arms per comparison: accuracy just before and after expansion (/statex), and "
        "at the end of training for statex, control and scratch; bars annotated with state "
        f"size; {_as_bars(plots.spread_text(spread, t['statex_arms']))}."
        " Paired differences: tables/statex_differences.",
        "no completed run with arm statex, control or scratch")
    not_completed = set(runs.loc[runs["status"] != "completed", "run"])
    keep = set(tables.series_runs(runs)["run"]) | not_completed
    add("learning_curves", not evals.empty and bool(keep & set(evals["run"])),
        lambda: plots.learning_curves(runs, evals, curves, keep),
        "Eval accuracy and train loss vs step for the best-LR runs (and runs that did not "
        "complete, dashed); dotted verticals mark StateX expansion steps.",
        "no run has /eval data")
    add("gap_accuracy", not t["gap_accuracy"].empty,
        lambda: plots.gap_accuracy(t["gap_accuracy"], unit),
        "Accuracy vs key→query gap bucket at each run's best eval, per cell (chosen LR); "
        f"{plots.spread_text('ci', t['gap_accuracy'])}.",
        "no completed run has /eval/gap_accuracy")
    add("segment_accuracy", not t["segment_accuracy"].empty,
        lambda: plots.segment_accuracy(t["segment_accuracy"], unit),
        "Accuracy per MQAR test segment at each run's best eval, per cell (chosen LR); "
        f"{plots.spread_text('ci', t['segment_accuracy'])}.",
        "no completed run has /eval/segment_accuracy")
    add("statex_ablation", not t["statex_ablation"].empty,
        lambda: plots.ablation_heatmaps(t["statex_ablation"]),
        "StateX ablation: final accuracy by expansion step × expanded layers, one heatmap per "
        "model and mode (median over seeds at the chosen LR; intervals in "
        "tables/statex_ablation).", "no completed statex-arm run")
    add("lr_window", not t["lr_window"].empty,
        lambda: lr_select.plot_window(t["lr_window"], unit),
        "The learning-rate window, one row per model: median accuracy over seeds (left; test "
        "accuracy at each run's best validation eval, failed runs as 0) and escape fraction "
        "(right) against lr (x) and state size (y, one row per lr group); red box = the lr "
        "chosen on the validation split (on the test numbers without one: the panel title "
        "says which), an arrow = the choice is at the grid's edge (extend the grid). "
        "tables/lr_selection and tables/lr_window have every number.",
        "no group of runs differing only in train.lr and the seeds")
    return rep


# Tables shown in index.md itself, in README-ready form (presentable + caption).
README_TABLES = ("accuracy_vs_state", "statex_arms", "statex_differences", "statex_ablation",
                 "lr_selection")
# Per-trial / per-item tables written as they are (their .md is the raw table).
RAW_TABLES = ("summary", "failures", "gap_accuracy", "segment_accuracy", "lr_window")


def _markdown(name: str, table: pd.DataFrame) -> str:
    return tables.to_markdown(table) if name in RAW_TABLES else tables.markdown_table(table)


def write_report(rep: Report, out_dir: str | os.PathLike, formats=("png", "svg"),
                 sources: list[str] | None = None, unit: str = "bytes",
                 spread: str = "ci", dpi: int = DEFAULT_DPI,
                 convention: str | None = None) -> Path:
    """Writes figures/, tables/ and index.md under out_dir; returns the index path. `dpi` is
    the resolution of raster formats (PNG); `convention` is the state-size convention the
    tables were built in (default: the one tables.use_state_convention set)."""
    convention = state_conventions.check(convention or tables.state_convention())
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    for name, table in rep.tables.items():
        table.to_csv(out / "tables" / f"{name}.csv", index=False)
        (out / "tables" / f"{name}.md").write_text(_markdown(name, table))
    for name, fig in rep.figures.items():
        if fig.get_layout_engine() is None:
            fig.tight_layout()  # once per figure; each savefig below is then a single draw
        # SVG text stays text (editable, fast); a fixed id salt and no date make the same
        # figure the same bytes (matplotlib otherwise salts ids with a random uuid)
        with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "statex-sim"}):
            for ext in formats:
                fig.savefig(out / "figures" / f"{name}.{ext}", dpi=dpi,
                            metadata={"Date": None} if ext == "svg" else None)
        plt.close(fig)

    runs = rep.runs
    counts = runs["status"].value_counts().to_dict() if not runs.empty else {}
    lines = ["# statex-sim report", ""]
    if sources:
        # sorted: the report does not depend on the order the paths were given in
        lines += ["Sources: " + ", ".join(f"`{s}`" for s in sorted(set(sources))), ""]
    lines += [f"Runs: {len(runs)} (" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
              + ")", "",
              "Conventions: a cell = runs identical in every option except the seeds (never "
              "pooled across anything else); per cell n, median and its order-statistic "
              "interval (coverage ≥ 95%, or [min, max] at its real coverage where the seeds are "
              "too few for 95%; each table and figure states the coverage); "
              "accuracy of a run = its best eval accuracy, where cells differ only in the "
              "learning rate the one with the highest median is shown (column `lr`); "
              f"figures: {plots.SPREAD_TEXT[spread]}; state size = "
              f"{state_conventions.DESCRIPTION[convention]}, in {unit} (bytes = 4 × scalars, "
              "fp32). StateX arms, paired differences and the "
              "ablation use final (end-of-training) accuracy. Escaped = left the 1/K plateau "
              "(docs/analysis.md).", ""]
    for name in README_TABLES:
        if not rep.tables[name].empty:
            lines += [f"## {name.replace('_', ' ')}", "", _markdown(name, rep.tables[name]), ""]
    lines += ["## Runs that did not complete", ""]
    lines += [tables.to_markdown(rep.tables["failures"]) if not rep.tables["failures"].empty
              else "None.", ""]
    lines += ["## Figures", ""]
    for name, caption in rep.captions.items():
        links = " · ".join(f"[{ext.upper()}](figures/{name}.{ext})" for ext in formats)
        lines += [f"### {name.replace('_', ' ')}", "", caption, "",
                  f"![{name}](figures/{name}.{formats[0]})", "", links, ""]
    for name, why in rep.skipped.items():
        lines += [f"- {name.replace('_', ' ')}: not drawn ({why})"]
    lines += ["", "## Tables", ""]
    for name in rep.tables:
        lines += [f"- {name.replace('_', ' ')}: [CSV](tables/{name}.csv) · "
                  f"[Markdown](tables/{name}.md) ({len(rep.tables[name])} rows)"]
    index = out / "index.md"
    index.write_text("\n".join(lines) + "\n")
    return index
