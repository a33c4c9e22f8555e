"""Each figure has the expected series: inspect artists and legend labels, not just files."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import pandas as pd
from matplotlib.collections import LineCollection, PolyCollection

from statex_analysis import plots, tables
from statex_analysis.frames import curves_frame, evals_frame, gaps_frame, segments_frame
from statex_analysis.report import build_report, write_report
from conftest import EXPECTED, ablation_value


def legend_labels(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


@pytest.mark.filterwarnings("ignore::statex_analysis.cells.PoolingWarning")
@pytest.mark.parametrize("unit, factor", [("bytes", 4), ("scalars", 1)])
@pytest.mark.parametrize("spread", ["minmax", "std"])
def test_accuracy_vs_state(scaling_runs, unit, factor, spread):
    points = tables.accuracy_vs_state_table(scaling_runs, unit)
    fig = plots.accuracy_vs_state(points, unit, spread)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert f"({unit}" in ax.get_xlabel()
    assert legend_labels(ax) == ["gla", "mamba2"]
    lines = {l.get_label(): l for l in ax.get_lines()}
    gla = lines["gla"]
    assert gla.get_xdata().tolist() == [512 * factor, 2048 * factor]
    assert gla.get_ydata().tolist() == pytest.approx(  # median = mean for two seeds
        [EXPECTED[("gla", 512)][1], EXPECTED[("gla", 2048)][1]])
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # one spread band per model
    # gla band at each point: min-max of the seeds, or mean ± sample std
    verts = bands[0].get_paths()[0].vertices
    for scalars, (_, mean, std, lo, hi, _) in ((s, EXPECTED[("gla", s)]) for s in (512, 2048)):
        ys = verts[np.isclose(verts[:, 0], scalars * factor), 1]
        want = (lo, hi) if spread == "minmax" else (mean - std, mean + std)
        assert (ys.min(), ys.max()) == (pytest.approx(want[0], rel=1e-5),
                                        pytest.approx(want[1], rel=1e-5))
    assert ("min-max" if spread == "minmax" else "std") in ax.get_title()
    plt.close(fig)


def test_accuracy_vs_state_draws_median_and_interval():
    """Default spread: the line is the median, band and error bars its interval; a cell with
    no interval (n < 3) has a marker and no bar; a varied non-shape option is its own series."""
    points = pd.DataFrame({
        "model": ["gla"] * 4, "train.steps": [900, 900, 900, 60],
        "state": [100.0, 200.0, 400.0, 100.0], "median": [0.3, 0.6, 0.9, 0.1],
        "ci_low": [0.2, 0.5, np.nan, 0.05], "ci_high": [0.35, 0.8, np.nan, 0.2],
        "ci_coverage": [0.75, 0.9375, np.nan, 0.978515625],
        "mean": [0.3, 0.6, 0.9, 0.1], "std": [0.1] * 4, "min": [0.1] * 4, "max": [1.0] * 4})
    fig = plots.accuracy_vs_state(points, "scalars")
    ax = fig.axes[0]
    assert legend_labels(ax) == ["gla, train.steps=60", "gla, train.steps=900"]
    line = {l.get_label(): l for l in ax.get_lines()}["gla, train.steps=900"]
    assert line.get_ydata().tolist() == [0.3, 0.6, 0.9]
    # the real coverage of the bands drawn: they differ with n, so the title gives the range
    assert "order-statistic interval of the median, coverage 75–97.9%" in ax.get_title()
    # error bars: one vertical segment per point, from ci_low to ci_high (zero length at n < 3)
    segments = [seg for c in ax.collections if isinstance(c, LineCollection)
                for seg in c.get_segments()]
    spans = sorted((float(seg[0][0]), float(seg[:, 1].min()), float(seg[:, 1].max()))
                   for seg in segments)
    assert (100.0, 0.2, 0.35) in [tuple(round(v, 6) for v in s) for s in spans]
    assert (200.0, 0.5, 0.8) in [tuple(round(v, 6) for v in s) for s in spans]
    assert (400.0, 0.9, 0.9) in [tuple(round(v, 6) for v in s) for s in spans]
    plt.close(fig)


def test_statex_arms_figure(statex_runs):
    arms = tables.arms_table(statex_runs, "bytes")
    fig = plots.statex_arms(arms, "bytes")
    ax = fig.axes[0]
    assert legend_labels(ax) == [p[0] for p in tables.PHASES]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx(arms["median"].tolist())
    texts = [t.get_text() for t in ax.texts]
    assert "2,048 B" in texts and "4,096 B" in texts  # state before / after expansion
    assert "gla" in ax.get_title() and "StateX: inherit, step 200, layers 0,1" in ax.get_title()
    assert "error bar = order-statistic interval of the median, coverage 75%" in ax.get_title()
    # error bar of the control bar spans its interval
    control = arms.set_index("phase").loc["control end"]
    segments = [seg for c in ax.collections if isinstance(c, LineCollection)
                for seg in c.get_segments()]
    spans = [(round(float(s[:, 1].min()), 6), round(float(s[:, 1].max()), 6)) for s in segments]
    assert (round(control["ci_low"], 6), round(control["ci_high"], 6)) in spans
    plt.close(fig)


def test_learning_curves_mark_expansion(statex_runs, statex_records):
    keep = {"sx100_0_reinit_0", "sx200_01_inherit_1", "control0"}
    fig = plots.learning_curves(statex_runs, evals_frame(statex_records),
                                curves_frame(statex_records), keep)
    ax_acc, ax_loss = fig.axes[:2]
    assert ax_acc.get_title() == "gla, StateX arms: eval accuracy"
    labels = legend_labels(ax_loss)  # legend sits right of the loss panel
    assert "StateX expansion (step 100)" in labels and "StateX expansion (step 200)" in labels
    # legends name the swept values (not the trial ids)
    assert "statex: statex.count=1, statex.mode=reinit, statex.step=100, state=768, lr=0.001, " \
        "seed=0" in labels
    assert sum(l.startswith("statex: ") for l in labels) == 2
    assert any(l.startswith("control: ") and l.endswith("state=512, lr=0.001, seed=0")
               for l in labels), labels
    vlines = [l for l in ax_acc.get_lines() if list(l.get_xdata()) in ([100, 100], [200, 200])]
    assert len(vlines) == 2
    acc = [l for l in ax_acc.get_lines() if "statex.step=100" in l.get_label()][0]
    assert acc.get_xdata().tolist() == [0, 100, 200, 300]
    assert len(ax_loss.get_lines()) >= 3
    plt.close(fig)


def test_learning_curves_say_when_runs_are_left_out(statex_runs, statex_records, monkeypatch):
    monkeypatch.setattr(plots, "MAX_CURVES_PER_MODEL", 2)
    fig = plots.learning_curves(statex_runs, evals_frame(statex_records),
                                curves_frame(statex_records))
    ax_acc = fig.axes[0]
    n = len(statex_runs[statex_runs["model"] == "gla"])
    assert n > 2
    assert "(first 2 of " in ax_acc.get_title() and "runs shown)" in ax_acc.get_title()
    assert sum(1 for l in ax_acc.get_lines() if list(l.get_xdata())[:1] == [0]) == 2
    plt.close(fig)


def test_gap_and_segment_figures(scaling_runs, scaling_records):
    gaps = tables.gap_table(scaling_runs, gaps_frame(scaling_records), "bytes")
    fig = plots.gap_accuracy(gaps, "bytes")
    gla_ax = fig.axes[0]
    assert "gla" in gla_ax.get_title() and "mamba2" in fig.axes[1].get_title()
    assert legend_labels(gla_ax) == ["2,048 B", "8,192 B"]
    assert [t.get_text() for t in gla_ax.get_xticklabels()] == ["[0,4)", "[4,16)", "≥16"]
    line = gla_ax.get_lines()[0]
    assert line.get_ydata().tolist() == pytest.approx([0.75, 0.6, 0.45])  # medians of 2 seeds
    plt.close(fig)
    segs = tables.segment_table(scaling_runs, segments_frame(scaling_records), "scalars")
    fig = plots.segment_accuracy(segs, "scalars")
    assert legend_labels(fig.axes[1]) == ["2,048 scalars"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["T=64 K=4", "T=128 K=8"]
    plt.close(fig)


def test_ablation_heatmaps(statex_runs):
    abl = tables.ablation_table(statex_runs)
    fig = plots.ablation_heatmaps(abl)
    heat_axes = [ax for ax in fig.axes if ax.images]
    assert sorted(ax.get_title() for ax in heat_axes) == ["gla / inherit", "gla / reinit"]
    for ax in heat_axes:
        mode = ax.get_title().split(" / ")[1]
        grid = np.asarray(ax.images[0].get_array())
        assert grid.shape == (2, 2)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "200"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "0,1"]
        for i, layers in enumerate(([0], [0, 1])):
            for j, step in enumerate((100, 200)):
                assert grid[i, j] == pytest.approx(ablation_value(step, layers, mode, 0) + 0.02)
    plt.close(fig)


@pytest.mark.filterwarnings("ignore::statex_analysis.cells.PoolingWarning")  # cells of n < 3 here
def test_report_writes_everything(scaling_records, statex_records, tmp_path):
    rep = build_report(scaling_records + statex_records, "bytes", "minmax")
    assert set(rep.tables) >= {"accuracy_vs_state", "statex_arms", "statex_differences",
                               "statex_ablation", "cells"}
    assert set(rep.figures) == {"accuracy_vs_state", "statex_arms", "learning_curves",
                                "gap_accuracy", "segment_accuracy", "statex_ablation",
                                "lr_window"}  # gla D=32 and D=64 at two lrs each
    assert not rep.skipped
    index = write_report(rep, tmp_path, ("png", "svg"))
    text = index.read_text()
    for name in rep.captions:
        for ext in ("png", "svg"):
            assert f"figures/{name}.{ext}" in text
            assert (tmp_path / "figures" / f"{name}.{ext}").stat().st_size > 1000
    for name in rep.tables:
        assert f"tables/{name}.csv" in text and (tmp_path / "tables" / f"{name}.md").exists()
    assert "out of memory" in text and "non-finite loss at step 150" in text  # failures table
    chosen = (tmp_path / "tables" / "accuracy_vs_state.csv").read_text()
    header = chosen.splitlines()[0]
    assert "lr" in header and "ci_low,ci_high,ci_coverage" in header
    readme = (tmp_path / "tables" / "statex_differences.md").read_text()
    assert "median difference [75% CI]" in readme and "grouped over: `train.seed`" in readme
    assert "## statex differences" in text  # README-ready tables inline in index.md


def test_learning_curve_legends_show_what_was_swept(scaling_runs, scaling_records):
    """A recall-vs-state sweep's curves differ in d_model (and so state), lr and seed: each
    legend entry says which."""
    fig = plots.learning_curves(scaling_runs, evals_frame(scaling_records),
                                curves_frame(scaling_records))
    labels = legend_labels(fig.axes[1])  # gla, plain runs
    for want in (("d_model=32", "state=512", "lr=0.001", "seed=0"),
                 ("d_model=64", "state=2048", "lr=0.001", "seed=1")):
        assert any(all(part in label for part in want) for label in labels), (want, labels)
    assert not any("g32a" in l for l in labels)  # no trial ids when the values tell runs apart
    assert len(set(labels)) == len(labels)
    plt.close(fig)


@pytest.mark.filterwarnings("ignore:accuracy_vs_state")  # 2 seeds per cell: expected
def test_plot_functions_draw_into_given_axes(scaling_runs, statex_runs, statex_records):
    fig, (left, right) = plt.subplots(1, 2)
    points = tables.accuracy_vs_state_table(scaling_runs, "bytes")
    assert plots.accuracy_vs_state(points, "bytes", ax=right) is fig
    assert right.get_xscale() == "log" and not left.lines
    arms = tables.arms_table(statex_runs, "bytes")
    assert plots.statex_arms(arms, "bytes", ax=left) is fig and left.patches
    with pytest.raises(ValueError, match="ax: this figure has 1 x 2 panels"):
        plots.learning_curves(statex_runs, evals_frame(statex_records),
                              curves_frame(statex_records), ax=left)
    plt.close(fig)


def test_report_dpi_sets_png_resolution(scaling_sweep, tmp_path, capsys):
    import struct

    from statex_analysis.cli import main

    widths = {}
    for dpi in (40, 80):
        out = tmp_path / f"dpi{dpi}"
        assert main(["report", str(scaling_sweep), "--out", str(out), "--formats", "png",
                     "--dpi", str(dpi)]) == 0
        header = (out / "figures" / "accuracy_vs_state.png").read_bytes()[16:24]
        widths[dpi] = struct.unpack(">II", header)[0]  # PNG IHDR: width, height
    assert widths[40] == pytest.approx(6.4 * 40, abs=2) and widths[80] == pytest.approx(512, abs=2)
    with pytest.raises(SystemExit):
        main(["report", str(scaling_sweep), "--out", str(tmp_path / "x"), "--dpi", "0"])
    assert "--dpi" in capsys.readouterr().err


def test_accuracy_vs_state_vocabulary_is_a_series_and_width_moves_along_x():
    """model.vocab_size does not set the state size: another vocabulary is its own series, while
    d_model / d_state (state-shape options) are points along one series."""
    points = pd.DataFrame({
        "model": ["mamba2"] * 3, "model.d_state": [8, 16, 16], "model.d_model": [64] * 3,
        "model.vocab_size": [256, 256, 1024], "state": [100.0, 200.0, 200.0],
        "median": [0.5, 0.8, 0.6], "ci_low": [0.4] * 3, "ci_high": [0.9] * 3,
        "mean": [0.5] * 3, "std": [0.1] * 3, "min": [0.1] * 3, "max": [1.0] * 3})
    fig = plots.accuracy_vs_state(points, "scalars")
    ax = fig.axes[0]
    assert legend_labels(ax) == ["mamba2, model.vocab_size=256", "mamba2, model.vocab_size=1024"]
    line = {l.get_label(): l for l in ax.get_lines()}["mamba2, model.vocab_size=256"]
    assert line.get_xdata().tolist() == [100.0, 200.0]
    plt.close(fig)
