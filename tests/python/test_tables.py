"""Table numbers: best-LR selection, seed aggregation, units, filters, failures."""
import numpy as np
import pytest

import statex_analysis as analysis
from statex_analysis import tables
from statex_analysis.frames import segments_frame
from conftest import EXPECTED, ablation_value


def test_best_lr_uses_best_accuracy_and_aggregates_seeds(scaling_runs):
    points = tables.accuracy_vs_state_table(scaling_runs, "bytes")
    assert len(points) == len(EXPECTED)
    for (model, scalars), (lr, mean, std, lo, hi, n) in EXPECTED.items():
        row = points[(points["model"] == model) & (points["state_scalars"] == scalars)].iloc[0]
        assert row["lr"] == pytest.approx(lr), (model, scalars)
        assert row["mean"] == pytest.approx(mean)
        assert row["std"] == pytest.approx(std, rel=1e-5)
        assert (row["min"], row["max"], row["n_seeds"]) == (pytest.approx(lo), pytest.approx(hi), n)
        assert row["state"] == 4 * scalars and row["state_bytes"] == 4 * scalars
    gla32 = points[points["state_scalars"] == 512].iloc[0]
    assert gla32["lrs_tried"] == "0.001;0.003"
    assert sorted(gla32["runs"].split(";")) == ["g32c", "g32d"]


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
    pts = tables.best_lr_points(scaling_runs[scaling_runs["train.lr"] == 3e-3],
                                ["model", "state_scalars"])
    g64 = pts[(pts["model"] == "gla") & (pts["state_scalars"] == 2048)].iloc[0]
    assert g64["n_seeds"] == 1 and np.isnan(g64["std"])


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
    assert groups.loc["gla", "best_acc_max"] == pytest.approx(0.95)
    assert groups.loc["mamba2", "best_run"] == "m32b"


def test_arms_table(statex_runs):
    arms = tables.arms_table(statex_runs, "scalars")
    assert list(arms["phase"]) == [p[0] for p in tables.PHASES]
    by = arms.set_index("phase")
    # best StateX config by mean best accuracy: step 200, layers 0,1, inherit
    assert by.loc["StateX end", "statex_config"] == "inherit, step 200, layers 0,1"
    assert by.loc["StateX end", "mean"] == pytest.approx(
        ablation_value(200, [0, 1], "inherit", 0) + 0.01)
    assert by.loc["StateX before expansion", "mean"] == pytest.approx(0.4)
    assert by.loc["StateX after expansion", "mean"] == pytest.approx(0.2)
    assert by.loc["StateX before expansion", "state"] == 512
    assert by.loc["StateX after expansion", "state"] == 1024
    assert by.loc["control end", "mean"] == pytest.approx(0.5)
    assert (by.loc["control end", "min"], by.loc["control end", "max"]) == \
        (pytest.approx(0.45), pytest.approx(0.55))
    assert by.loc["scratch end", "state"] == 1024
    assert by.loc["scratch end", "mean"] == pytest.approx(0.35)


def test_ablation_table(statex_runs):
    abl = tables.ablation_table(statex_runs)
    assert len(abl) == 8
    for _, row in abl.iterrows():
        layers = [int(x) for x in row["statex_layers"].split(",")]
        expected = ablation_value(row["statex_step"], layers, row["statex_mode"], 0) + 0.01
        assert row["mean"] == pytest.approx(expected)
        assert row["n_seeds"] == 2


def test_gap_and_segment_tables_use_best_eval(scaling_runs, scaling_records):
    gaps = tables.gap_table(scaling_runs, analysis.load_gaps(scaling_runs))
    g = gaps[(gaps["model"] == "gla") & (gaps["state_scalars"] == 512)].sort_values("gap_lo")
    # writer: bucket b accuracy = eval accuracy × (1 − 0.2 b); best evals 0.7 and 0.8
    assert g["mean"].tolist() == pytest.approx([0.75, 0.6, 0.45])
    assert g["lr"].iloc[0] == pytest.approx(3e-3)
    segs = tables.segment_table(scaling_runs, segments_frame(scaling_records))
    s = segs[(segs["model"] == "mamba2")].sort_values("seq_len")
    assert s["mean"].tolist() == pytest.approx([0.5, 0.45])


def test_text_and_markdown_render(scaling_runs):
    text = tables.to_text(tables.summary_table(scaling_runs))
    assert "failed: out of memory" in text and "state (bytes)" in text
    md = tables.to_markdown(tables.failures_table(scaling_runs))
    assert md.startswith("| run | status |") and "non-finite loss at step 150" in md


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
    assert len(table) == 1 and table["n_seeds"].iloc[0] == 2
    assert table["mean"].iloc[0] == pytest.approx(0.65)
