"""Table numbers: best-LR selection, seed aggregation, units, filters, failures."""
import numpy as np
import pytest

import statex_analysis as analysis
from statex_analysis import tables
from statex_analysis.cells import PoolingWarning
from statex_analysis.frames import segments_frame
from conftest import EXPECTED, ablation_value


def test_best_lr_uses_best_accuracy_and_aggregates_seeds(scaling_runs):
    with pytest.warns(PoolingWarning, match="3 of 3 cells have n < 3"):
        points = tables.accuracy_vs_state_table(scaling_runs, "bytes")
    assert len(points) == len(EXPECTED)
    for (model, scalars), (lr, mean, std, lo, hi, n) in EXPECTED.items():
        row = points[(points["model"] == model) & (points["state_scalars"] == scalars)].iloc[0]
        assert row["lr"] == pytest.approx(lr), (model, scalars)
        assert row["mean"] == pytest.approx(mean) and row["median"] == pytest.approx(mean)
        assert row["std"] == pytest.approx(std, rel=1e-5)
        assert (row["min"], row["max"], row["n"]) == (pytest.approx(lo), pytest.approx(hi), n)
        assert np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])  # n = 2: no interval
        assert row["state"] == 4 * scalars and row["state_bytes"] == 4 * scalars
    gla32 = points[points["state_scalars"] == 512].iloc[0]
    assert gla32["lrs_tried"] == "0.001;0.003"
    assert sorted(gla32["runs"].split(";")) == ["g32c", "g32d"]
    assert "`train.seed`" in points.attrs["caption"] and "`model.d_model`" in points.attrs["caption"]


@pytest.mark.filterwarnings("ignore::statex_analysis.cells.PoolingWarning")  # cells of n < 3 here
def test_state_units(scaling_runs):
    bytes_ = tables.state_column(scaling_runs, "bytes")
    scalars = tables.state_column(scaling_runs, "scalars")
    ok = scalars.notna()
    assert (bytes_[ok] == 4 * scalars[ok]).all()
    pts = tables.accuracy_vs_state_table(scaling_runs, "scalars")
    assert sorted(pts["state"].unique()) == [512, 2048]
    with pytest.raises(tables.TableError):
        tables.state_column(scaling_runs, "kilobytes")


def test_failed_runs_kept_and_listed(scaling_runs):
    assert len(scaling_runs) == 11  # 9 completed + 2 failed
    failures = tables.failures_table(scaling_runs)
    reasons = dict(zip(failures["run"], failures["failure_reason"]))
    assert reasons == {"g64c": "non-finite loss at step 150", "m32c": "out of memory"}
    assert set(failures["status"]) == {"failed"}
    summary = tables.summary_table(scaling_runs)
    row = summary[summary["run"] == "m32c"].iloc[0]
    assert row["status"] == "failed: out of memory" and row["model"] == "mamba2"
    # failed runs never enter aggregates: g64 at lr 3e-3 has only the completed seed
    cells, _ = tables.cells_table(scaling_runs)
    g64 = cells[(cells["model"] == "gla") & (cells["state_scalars"] == 2048)
                & (cells["lr"] == 3e-3)].iloc[0]
    assert g64["n"] == 1 and np.isnan(g64["std"]) and g64["runs"] == "g64d"


def test_filter_and_group(scaling_runs):
    gla = tables.filter_runs(scaling_runs, ["model.model=gla"])
    assert set(gla["model"]) == {"gla"} and len(gla) == 8
    both = tables.filter_runs(scaling_runs, ["train.lr=0.003", "model.d_model=32"])
    assert sorted(both["run"]) == ["g32c", "g32d", "m32c"]
    assert len(tables.filter_runs(scaling_runs, ["best_accuracy>=0.9"])) == 2
    assert len(tables.filter_runs(scaling_runs, ["status!=completed"])) == 2
    with pytest.raises(tables.TableError, match="model.modle"):
        tables.filter_runs(scaling_runs, ["model.modle=gla"])
    groups = tables.group_table(scaling_runs, ["model"]).set_index("model")
    assert groups.loc["gla", "runs"] == 8 and groups.loc["gla", "failed"] == 1
    assert groups.loc["gla", "cells"] == 4 and groups.loc["mamba2", "cells"] == 1
    assert "best_acc_mean" not in groups  # a group of several cells has no mean over "seeds"
    assert groups.loc["gla", "best_acc_max"] == pytest.approx(0.95)
    assert groups.loc["mamba2", "best_run"] == "m32b"


def test_arms_table(statex_runs):
    arms = tables.arms_table(statex_runs, "scalars")
    assert list(arms["phase"]) == [p[0] for p in tables.PHASES]
    by = arms.set_index("phase")
    # the statex cell with the config control / scratch were run at: step 200, layers 0,1, inherit
    assert by.loc["StateX end", "statex_config"] == "inherit, step 200, layers 0,1"
    assert by.loc["StateX end", "median"] == pytest.approx(
        ablation_value(200, [0, 1], "inherit", 0) + 0.02)
    assert by.loc["StateX end", "runs"] == "sx200_01_inherit_0;sx200_01_inherit_1;sx200_01_inherit_2"
    assert by.loc["StateX before expansion", "median"] == pytest.approx(0.4)
    assert by.loc["StateX before expansion", "ci_low"] == by.loc["StateX before expansion",
                                                                 "ci_high"] == pytest.approx(0.4)
    assert by.loc["StateX after expansion", "median"] == pytest.approx(0.2)
    assert by.loc["StateX before expansion", "state"] == 512
    assert by.loc["StateX after expansion", "state"] == 1024
    control = by.loc["control end"]
    assert (control["n"], control["median"]) == (3, pytest.approx(0.55))
    assert (control["min"], control["max"]) == (pytest.approx(0.45), pytest.approx(0.65))
    assert 0.45 - 1e-6 <= control["ci_low"] <= 0.55 <= control["ci_high"] <= 0.65 + 1e-6
    assert by.loc["scratch end", "state"] == 1024
    assert by.loc["scratch end", "median"] == pytest.approx(0.4)
    # every end-of-training run is above the K=4 threshold 0.625? No: min(3/4, 5/8) = 0.625;
    # the writer's curve (0.05, 0.2, 0.3, final) escapes only at the last eval when final > 0.625.
    assert by.loc["StateX end", "n_escaped"] == 3 and by.loc["StateX end", "escape_step_median"] == 300
    assert by.loc["control end", "n_escaped"] == 1 and np.isnan(by.loc["control end",
                                                                       "escape_step_median"])
    assert np.isnan(by.loc["StateX before expansion", "n_escaped"])


def test_statex_differences_are_paired_by_seed(statex_runs):
    diffs = tables.statex_differences_table(statex_runs).set_index("difference")
    assert list(diffs.index) == ["statex − control", "statex − scratch"]
    control, scratch = diffs.loc["statex − control"], diffs.loc["statex − scratch"]
    assert control["n_pairs"] == 3 and control["unpaired"] == 0
    assert control["median_diff"] == pytest.approx(0.32)
    assert control["mean_diff"] == pytest.approx(0.32)
    assert scratch["median_diff"] == pytest.approx(0.47)
    assert (control["n_positive"], control["n_negative"], control["n_ties"]) == (3, 0, 0)
    assert control["sign_p"] == pytest.approx(0.25)  # 3 of 3 positive: 2 / 2^3
    # the interval of the median of {0.24, 0.32, 0.40} lies within the pairs' range
    assert 0.24 - 1e-6 <= control["diff_ci_low"] <= 0.32 <= control["diff_ci_high"] <= 0.40 + 1e-6
    assert control["seeds"].split(";") == ["0", "1", "2"]  # train.seed (these files have no mqar.seed)
    assert [float(d) for d in control["differences"].split(";")] == pytest.approx(
        [0.40, 0.32, 0.24], abs=1e-4)


def test_ablation_table(statex_runs):
    abl = tables.ablation_table(statex_runs)
    assert len(abl) == 8
    for _, row in abl.iterrows():
        layers = [int(x) for x in row["statex_layers"].split(",")]
        expected = ablation_value(row["statex_step"], layers, row["statex_mode"], 0) + 0.02
        assert row["median"] == pytest.approx(expected)
        assert row["n"] == 3
        assert row["ci_low"] <= row["median"] <= row["ci_high"]
    assert "`statex.step`" in abl.attrs["caption"]


def test_markdown_table_is_readme_ready(statex_runs):
    text = tables.markdown_table(tables.statex_differences_table(statex_runs))
    header = text.splitlines()[0]
    assert header.startswith("| model | lr | statex_config | difference | n_pairs | "
                             "median difference [75% CI] | +/−/0 | sign-test p |")
    assert "| statex − control | 3 | 0.320 [0.240, 0.400] | 3/0/0 | 0.25 |" in text
    assert "`diff_ci_coverage`" in text and "n = 3: 75%" in text  # the caption says why 75%
    assert "grouped over: `train.seed`" in text  # the caption follows the table
    arms = tables.markdown_table(tables.arms_table(statex_runs))
    assert "| control end | control |" in arms and "| 1/3 | not reached |" in arms


def test_gap_and_segment_tables_use_best_eval(scaling_runs, scaling_records):
    gaps = tables.gap_table(scaling_runs, analysis.load_gaps(scaling_runs))
    g = gaps[(gaps["model"] == "gla") & (gaps["state_scalars"] == 512)].sort_values("gap_lo")
    # writer: bucket b accuracy = eval accuracy × (1 − 0.2 b); best evals 0.7 and 0.8
    assert g["median"].tolist() == pytest.approx([0.75, 0.6, 0.45])
    assert g["n"].tolist() == [2, 2, 2]
    assert g["lr"].iloc[0] == pytest.approx(3e-3)
    segs = tables.segment_table(scaling_runs, segments_frame(scaling_records))
    s = segs[(segs["model"] == "mamba2")].sort_values("seq_len")
    assert s["median"].tolist() == pytest.approx([0.5, 0.45])


def test_text_and_markdown_render(scaling_runs):
    text = tables.to_text(tables.summary_table(scaling_runs))
    assert "failed: out of memory" in text and "recurrent state (bytes)" in text
    md = tables.to_markdown(tables.failures_table(scaling_runs))
    assert md.startswith("| run | status |") and "non-finite loss at step 150" in md


@pytest.mark.filterwarnings("ignore::statex_analysis.cells.PoolingWarning")  # cells of n < 3 here
def test_unlabelled_run_that_expanded_counts_as_statex_arm(tmp_path):
    """A sweep that sets statex.step but not statex.arm: its runs expanded, so they are the StateX
    arm (ablation table); an unlabelled run without an expansion stays unlabelled."""
    from h5_writer import write_sweep
    from statex_analysis.frames import read_records, runs_frame
    from conftest import _options

    trials = [dict(id=f"u{seed}", status="completed", options=_options("gla", 32, 1e-3, seed),
                   run=dict(model="gla", d_model=32, lr=1e-3, seed=seed, arm="",
                            eval_steps=(0, 100, 200), eval_acc=(0.05, 0.3, 0.6 + 0.1 * seed),
                            statex=dict(step=100, mode="reinit", layers=[0], mult=2,
                                        accuracy_before=0.3, accuracy_after=0.0,
                                        accuracy_end=0.6 + 0.1 * seed)))
              for seed in (0, 1)]
    trials.append(dict(id="plain", status="completed", options=_options("gla", 32, 1e-3, 0),
                       run=dict(model="gla", d_model=32, lr=1e-3, seed=0, arm="",
                                eval_steps=(0, 100, 200), eval_acc=(0.05, 0.2, 0.4))))
    runs = runs_frame(read_records([write_sweep(tmp_path / "sweep", trials)]))
    arms = dict(zip(runs["run"], runs["arm"]))
    assert arms == {"u0": "statex", "u1": "statex", "plain": ""}
    table = tables.ablation_table(runs)
    assert len(table) == 1 and table["n"].iloc[0] == 2
    assert table["median"].iloc[0] == pytest.approx(0.65)


def test_presentable_blanks_options_a_family_does_not_read():
    import pandas as pd
    t = pd.DataFrame({"model": ["gla", "mamba2", "attention"],
                      "model.d_model": [32, 64, 16],
                      "model.heads": [1, 2, 4],          # Mamba2 does not read it
                      "model.d_state": [16, 8, 16],       # only Mamba2 reads it
                      "model.gate_low_rank": [16, 16, 16],  # only GLA reads it
                      "model.ngroups": [1, 1, 1]})       # only Mamba2: kept for that row
    t["model.expand"] = [2, 2, 2]
    shown = tables.presentable(t)
    assert list(shown["model.d_model"]) == [32, 64, 16]   # common option: every row
    assert list(shown["model.heads"]) == [1, "", 4]
    assert list(shown["model.d_state"]) == ["", 8, ""]
    assert list(shown["model.gate_low_rank"]) == [16, "", ""]
    # A column no row's family reads disappears.
    only_gla = tables.presentable(t[t["model"] == "gla"])
    assert "model.d_state" not in only_gla and "model.expand" not in only_gla
    assert list(only_gla["model.heads"]) == [1]


def test_interval_columns_state_their_real_coverage():
    """One coverage for the whole table goes in the header; coverages that differ (cells of
    different n) follow each interval; the CSV column ci_coverage keeps the number."""
    import pandas as pd
    from statex_analysis import stats
    cells = [np.linspace(0.1, 0.9, n) for n in (3, 5, 10, 2)]
    t = pd.DataFrame([{"model": "gla", **stats.summarize(v)} for v in cells])
    assert t["ci_coverage"].tolist()[:3] == [0.75, 0.9375, 1 - 2 * 11 / 2**10]
    assert np.isnan(t["ci_coverage"].iloc[3])
    shown = tables.presentable(t)
    assert list(shown.columns) == ["model", "n", "median [CI] (coverage)"]
    assert shown.iloc[:, 2].tolist() == ["0.500 [0.100, 0.900] (75%)",
                                         "0.500 [0.100, 0.900] (93.8%)",
                                         "0.500 [0.189, 0.811] (97.9%)",
                                         "0.500 (no interval: n < 3)"]
    same_n = tables.presentable(t.iloc[[1]])
    assert list(same_n.columns) == ["model", "n", "median [93.8% CI]"]
    assert same_n.iloc[0, 2] == "0.500 [0.100, 0.900]"
    assert tables.coverage_text(t["ci_coverage"]) == "75–97.9%"
