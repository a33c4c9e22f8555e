"""Files written by the C++ simulator: the C++ writer's own output (tests/python/data/cpp_writer)
and, when present, data/fixtures/ and $STATEX_ANALYSIS_FIXTURES (directories of .h5 files or
sweep directories). Checks invariants that must hold for any real file."""
from pathlib import Path

import h5py
import numpy as np
import pytest

import matplotlib.pyplot as plt

import statex_analysis as analysis
from statex_analysis import plateau
from statex_analysis.cli import main
from statex_analysis.frames import read_records
from statex_analysis.report import build_report
from conftest import HERE, fixture_dirs

CPP_DIR = HERE / "data" / "cpp_writer"
DIRS = [CPP_DIR] + fixture_dirs()


def test_cpp_writer_files_read_as_documented():
    runs = analysis.load_runs([CPP_DIR]).set_index("run")
    ok = runs.loc["real_statex"]
    assert ok["status"] == "completed" and ok["arm"] == "statex" and ok["model"] == "gla"
    assert ok["state_scalars"] == 5120 and ok["state_bytes"] == 20480
    assert ok["best_accuracy"] == pytest.approx(0.9) and ok["best_step"] == 100
    assert ok["final_accuracy"] == pytest.approx(0.5)
    assert ok["statex_layers"] == "1" and ok["statex_mode"] == "inherit"
    assert ok["statex_state_scalars_before"] == 2048 and ok["statex_accuracy_after"] == \
        pytest.approx(0.35)
    assert ok["train.lr"] == pytest.approx(3e-3) and ok["model.d_model"] == 64
    bad = runs.loc["real_failed"]
    assert bad["status"] == "failed" and bad["failure_reason"] == "non-finite loss at step 312"
    assert np.isnan(bad["best_accuracy"]) and np.isnan(bad["best_step"])
    # plateau escape as the C++ writer stored it (K = 4: threshold 0.625; 0.9 at step 100)
    assert ok["escape_source"] == "file" and ok["plateau_num_kv"] == 4
    assert ok["plateau_threshold"] == 0.625 and ok["escape_step"] == 100
    assert bad["escape_source"] == "file" and np.isnan(bad["plateau_threshold"])
    assert np.isnan(bad["escape_step"]) and np.isnan(bad["plateau_num_kv"])
    gaps = analysis.load_gaps([CPP_DIR / "real_statex.h5"])
    assert gaps[gaps["step"] == 0]["accuracy"].isna().tolist() == [False, True, False]


def test_simulator_run_that_escapes_the_plateau():
    """A real `statex train` run (data/fixtures/README.md): the escape step the trainer's results
    writer stored is the first eval above min(3/K, (1+1/K)/2) = 0.625 for K = 4."""
    path = HERE.parents[1] / "data" / "fixtures" / "runs" / "gla_escapes.h5"
    row = analysis.load_runs([path]).iloc[0]
    assert row["escape_source"] == "file"
    assert (row["plateau_num_kv"], row["plateau_threshold"], row["escape_step"]) == (4, 0.625, 250)
    evals = analysis.load_evals([path]).set_index("step")["accuracy"]
    assert evals[200] <= 0.625 < evals[250]


@pytest.mark.filterwarnings("ignore::statex_analysis.cells.PoolingWarning")  # cells of n < 3 here
@pytest.mark.parametrize("directory", DIRS, ids=lambda d: d.name)
def test_fixture_directory_invariants(directory: Path, capsys):
    runs = analysis.load_runs([directory])
    assert len(runs) > 0 and runs["status"].isin(["completed", "failed", "running"]).all()
    for _, row in runs.iterrows():
        if not row["path"]:
            continue
        with h5py.File(row["path"], "r") as f:
            assert row["state_bytes"] == f["model"].attrs["state_bytes"] == 4 * row["state_scalars"]
            acc = f["eval/accuracy"][()] if "eval/accuracy" in f else np.zeros(0)
        if len(acc) and np.isfinite(acc).any():
            assert row["best_accuracy"] == pytest.approx(float(np.nanmax(acc)))
            assert row["final_accuracy"] == pytest.approx(float(acc[-1]), nan_ok=True)
        if row["status"] == "failed":
            assert row["failure_reason"], row["run"]
        _check_escape_matches_the_definition(row)
    assert main(["summary", str(directory)]) == 0
    out = capsys.readouterr().out
    for run in runs["run"]:
        assert run in out  # no run silently dropped
    rep = build_report(read_records([directory]))  # figures built (not rendered: keeps it fast)
    assert set(rep.figures) | set(rep.skipped) == {"accuracy_vs_state", "statex_arms",
                                                   "learning_curves", "gap_accuracy",
                                                   "segment_accuracy", "statex_ablation",
                                                   "lr_window"}
    assert len(rep.tables["failures"]) == int((runs["status"] != "completed").sum())
    for fig in rep.figures.values():
        plt.close(fig)


def _check_escape_matches_the_definition(row):
    """Whether the writer stored it (C++) or the reader computed it, the escape fields follow
    plateau.py's definition, recomputed here from the file's own evals and segments."""
    run = analysis.read_run(row["path"])
    k = plateau.plateau_num_kv(run.segments)
    threshold = plateau.plateau_threshold(k)
    assert row["plateau_threshold"] == pytest.approx(threshold, nan_ok=True), row["run"]
    step = plateau.escape_step(run.evals.get("step", []), run.evals.get("accuracy", []), threshold)
    assert (np.isnan(row["escape_step"]) if step is None else row["escape_step"] == step), \
        row["run"]
