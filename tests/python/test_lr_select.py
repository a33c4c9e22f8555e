"""Learning-rate selection on the validation split (statex_analysis/lr_select.py, docs/analysis.md
"Learning-rate selection"): the choice is made on validation, the table reports the test
accuracy at that lr (each run's at its best validation eval), failed runs score 0, a choice at
the grid's edge is flagged, and `report` draws the window.

Synthetic sweep (GLA, 5 seeds, eval steps 0 / 100 / 200; d = 0.01 x seed, so a median over the
5 seeds is the base value + 0.02):
  D=32 (state 512 scalars), the honest-selection case:
    lr 1e-3: test 0.95+d at step 100 (the best TEST lr: median best test 0.97), valid 0.40+d
    lr 3e-3: valid 0.80+d at step 100 (the best VALIDATION lr: median 0.82), test 0.70+d there
             and 0.72+d at step 200 (best test); reported = test at the best validation eval,
             median 0.72 (not 0.74, its best test; not 0.97, the best-on-test lr's)
    lr 1e-2: valid = test = 0.60+d
  D=64 (2048): lr 1e-2 best on validation (0.90+d; seed 4 failed: scores 0, median over
    0.90, 0.91, 0.92, 0.93, 0 = 0.91), the grid's largest lr: "high" edge
  D=16 (128): lr 3e-3 has valid 0.90 on seeds 0-1 but seeds 2-4 failed (median score 0);
    lr 1e-3 (valid 0.50+d) wins, the grid's smallest lr: "low" edge; lr 1e-2 valid 0.30+d
"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from h5_writer import write_sweep
from statex_analysis import lr_select, tables
from statex_analysis.frames import read_records, runs_frame
from statex_analysis.report import build_report, write_report

SEEDS = range(5)
LRS = (1e-3, 3e-3, 1e-2)


def _series(lr, d_model, seed):
    """(test accuracies, validation accuracies) at steps 0, 100, 200; None = the run failed."""
    d = 0.01 * seed
    if d_model == 32:
        return {1e-3: ((0.05, 0.95 + d, 0.90), (0.05, 0.40 + d, 0.35)),
                3e-3: ((0.05, 0.70 + d, 0.72 + d), (0.05, 0.80 + d, 0.78 + d)),
                1e-2: ((0.05, 0.60 + d, 0.60 + d), (0.05, 0.60 + d, 0.60 + d))}[lr]
    if d_model == 64:
        if lr == 1e-2 and seed == 4:
            return None
        return {1e-3: ((0.05, 0.3, 0.3), (0.05, 0.30 + d, 0.30)),
                3e-3: ((0.05, 0.5, 0.5), (0.05, 0.50 + d, 0.50)),
                1e-2: ((0.05, 0.88 + d, 0.89 + d), (0.05, 0.90 + d, 0.90))}[lr]
    if lr == 3e-3:
        return None if seed >= 2 else ((0.05, 0.9, 0.9), (0.05, 0.90, 0.90))
    return {1e-3: ((0.05, 0.45 + d, 0.45 + d), (0.05, 0.50 + d, 0.50)),
            1e-2: ((0.05, 0.3, 0.3), (0.05, 0.30 + d, 0.30))}[lr]


def _trials(with_valid: bool):
    trials = []
    for d_model in (16, 32, 64):
        for lr in LRS:
            for seed in SEEDS:
                tid = f"g{d_model}_{lr:g}_{seed}"
                options = {"model.model": "gla", "model.d_model": str(d_model),
                           "train.lr": f"{lr:g}", "train.seed": str(seed), "statex.arm": ""}
                run = dict(model="gla", d_model=d_model, lr=lr, seed=seed,
                           segments=("64:8:1000",), plateau=None)
                series = _series(lr, d_model, seed)
                if series is None:  # the trainer failed: a file with status failed
                    run.update(status="failed", failure_reason="non-finite loss at step 150",
                               eval_steps=(0, 100), eval_acc=(0.05, 0.1),
                               extra_config={"train.steps": "200"},  # as configured
                               valid_acc=(0.05, 0.1) if with_valid else None)
                    trials.append(dict(id=tid, status="failed", options=options, run=run,
                                       error="non-finite loss at step 150"))
                    continue
                test, valid = series
                run.update(eval_steps=(0, 100, 200), eval_acc=test,
                           valid_acc=valid if with_valid else None)
                trials.append(dict(id=tid, status="completed", options=options, run=run))
    return trials


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory):
    return write_sweep(tmp_path_factory.mktemp("lrwin") / "sweep", _trials(with_valid=True))


@pytest.fixture(scope="module")
def lr_runs(lr_sweep):
    return runs_frame(read_records([lr_sweep]))


def _row(table, d_model):
    rows = table[table["model.d_model"] == d_model]
    assert len(rows) == 1, table
    return rows.iloc[0]


def test_run_columns_read_the_validation_split(lr_runs):
    run = lr_runs[lr_runs["run"] == "g32_0.003_1"].iloc[0]
    assert bool(run["has_valid"])
    assert run["best_valid_accuracy"] == pytest.approx(0.81, abs=1e-6)
    assert run["best_valid_step"] == 100
    assert run["test_at_best_valid"] == pytest.approx(0.71, abs=1e-6)  # not its best test, 0.73
    assert run["best_accuracy"] == pytest.approx(0.73, abs=1e-6)
    assert run["final_valid_accuracy"] == pytest.approx(0.79, abs=1e-6)


def test_table_reports_the_validation_choice_and_its_test_accuracy(lr_runs):
    """The honest selection: the best-on-test lr (1e-3) differs from the best-on-validation lr
    (3e-3); the table shows 3e-3 and the test accuracy of its runs at their best validation
    eval."""
    table = tables.accuracy_vs_state_table(lr_runs, "scalars")
    row = _row(table, 32)
    assert row["lr"] == pytest.approx(3e-3)
    assert row["lr_selected_on"] == "validation"
    assert row["lrs_tried"] == "0.001;0.003;0.01"
    assert row["n"] == 5
    assert row["median"] == pytest.approx(0.72, abs=1e-6)
    assert row["max"] == pytest.approx(0.74, abs=1e-6)
    assert "validation" in table.attrs["caption"]
    sel = _row(lr_select.selection_table(lr_runs, "scalars"), 32)
    assert sel["lr"] == pytest.approx(3e-3)
    assert sel["selected_on"] == "validation"
    assert sel["selection_median"] == pytest.approx(0.82, abs=1e-6)
    assert sel["median"] == pytest.approx(0.72, abs=1e-6)  # reported: test, at the chosen lr
    assert sel["n_scored"] == 5 and sel["n_failed"] == 0
    assert sel["grid_edge"] == ""
    assert sel["lr_scores"] == "0.001: 0.420 (5); 0.003: 0.820 (5); 0.01: 0.620 (5)"


@pytest.mark.filterwarnings("ignore::statex_analysis.cells.PoolingWarning")  # D=16: 2 seeds
def test_without_validation_the_choice_is_on_test_and_says_so(tmp_path):
    runs = runs_frame(read_records([write_sweep(tmp_path / "sweep", _trials(False))]))
    table = tables.accuracy_vs_state_table(runs, "scalars")
    row = _row(table, 32)
    assert row["lr"] == pytest.approx(1e-3)  # the best-on-test lr: what the numbers shown favour
    assert row["median"] == pytest.approx(0.97, abs=1e-6)
    assert "lr_selected_on" not in table  # canonical tables keep their columns
    assert "validation" not in table.attrs["caption"]
    sel = _row(lr_select.selection_table(runs, "scalars"), 32)
    assert sel["selected_on"] == "test"
    assert sel["lr"] == pytest.approx(1e-3)


def test_failed_runs_score_zero_and_edges_are_flagged(lr_runs):
    sel = lr_select.selection_table(lr_runs, "scalars")
    high = _row(sel, 64)
    assert high["lr"] == pytest.approx(1e-2)
    assert high["n_failed"] == 1 and high["n_scored"] == 5
    assert high["selection_median"] == pytest.approx(0.91, abs=1e-6)
    assert high["n"] == 4  # reported over the completed seeds
    assert high["grid_edge"].startswith("high")
    low = _row(sel, 16)
    assert low["lr"] == pytest.approx(1e-3), "3e-3 lost 3 of 5 seeds to divergence"
    assert low["grid_edge"].startswith("low")
    assert "0.003: 0.000 (5, 3 failed)" in low["lr_scores"]
    table = tables.accuracy_vs_state_table(lr_runs, "scalars")
    assert _row(table, 64)["lr_grid_edge"].startswith("high")
    assert _row(table, 16)["lr_grid_edge"].startswith("low")
    assert _row(table, 32)["lr_grid_edge"] == ""


def test_window_table_has_every_lr_and_marks_the_choice(lr_runs):
    window = lr_select.window_table(lr_runs, "scalars")
    assert len(window) == 9  # 3 groups x 3 lrs
    chosen = window[window["chosen"]]
    assert sorted(zip(chosen["state_scalars"], chosen["lr"])) == [(128, 1e-3), (512, 3e-3),
                                                                 (2048, 1e-2)]
    cell = window[(window["state_scalars"] == 2048) & (window["lr"] == 1e-2)].iloc[0]
    # test at the best validation eval (step 100): 0.88, 0.89, 0.90, 0.91 and the failed seed 0
    assert cell["window_median"] == pytest.approx(0.89, abs=1e-6)
    assert cell["window_escape_fraction"] == pytest.approx(4 / 5)  # the failed seed: not escaped
    diverged = window[(window["state_scalars"] == 128) & (window["lr"] == 3e-3)].iloc[0]
    assert diverged["window_median"] == 0 and diverged["n_failed"] == 3


def test_report_draws_the_window_with_the_chosen_lr_marked(lr_sweep, tmp_path):
    records = read_records([lr_sweep])
    rep = build_report(records, unit="scalars")
    assert "lr_window" in rep.figures, rep.skipped
    fig = rep.figures["lr_window"]
    acc_ax = fig.axes[0]
    boxes = [p for p in acc_ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(boxes) == 3  # one chosen lr per state size
    texts = [t.get_text() for t in acc_ax.texts]
    assert sum("extend" in t for t in texts) == 2  # D=16 (low edge) and D=64 (high edge)
    assert "\u2190 extend" in texts and "extend \u2192" in texts
    assert "validation" in acc_ax.get_title()
    index = write_report(rep, tmp_path / "report", formats=("png",))
    assert (tmp_path / "report" / "figures" / "lr_window.png").stat().st_size > 10_000
    selection = pd.read_csv(tmp_path / "report" / "tables" / "lr_selection.csv")
    assert set(selection["selected_on"]) == {"validation"}
    text = index.read_text()
    assert "## lr selection" in text and "lr_window" in text


def test_summary_prints_validation_columns_and_the_selection(lr_sweep, capsys):
    from statex_analysis.cli import main
    assert main(["summary", str(lr_sweep)]) == 0
    out = capsys.readouterr().out
    assert "best_valid_acc" in out and "test_at_best_valid" in out
    assert "Learning-rate selection" in out
    assert "validation" in out


def test_no_lr_axis_no_selection(scaling_runs):
    """Runs without a second lr in any group: no lr_selection rows (and nothing breaks)."""
    sel = lr_select.selection_table(scaling_runs[scaling_runs["model"] == "mamba2"])
    assert sel.empty
    assert not math.isnan(len(lr_select.window_table(scaling_runs)))
