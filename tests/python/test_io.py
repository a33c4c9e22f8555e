"""Reading files: summary values, and clear errors for files the package does not know."""
import h5py
import numpy as np
import pytest

import statex_analysis as analysis
from statex_analysis import FormatError
from statex_analysis.cli import main


def test_summary_values_from_eval_not_attrs(run_file):
    path = run_file(eval_steps=(0, 50, 100, 150), eval_acc=(0.1, 0.7, 0.9, 0.6))
    with h5py.File(path, "a") as f:  # stale summary attrs must not win over /eval
        f.attrs["best_accuracy"] = 0.123
    run = analysis.read_run(path)
    assert run.summary["best_accuracy"] == pytest.approx(0.9)
    assert run.summary["best_step"] == 100
    assert run.summary["final_accuracy"] == pytest.approx(0.6)
    assert run.summary["final_step"] == 150
    assert run.config["model.model"] == "gla"


def test_load_runs_flattens_config_and_units(run_file):
    path = run_file(model="mamba2", d_model=32, d_state=8, lr=0.01, seed=3)
    runs = analysis.load_runs([path])
    row = runs.iloc[0]
    assert row["model"] == "mamba2"
    assert row["model.d_model"] == 32 and row["train.lr"] == pytest.approx(0.01)
    assert row["train.seed"] == 3
    assert row["state_scalars"] == 2 * (2 * 32 * 8)  # L · d_inner · N
    assert row["state_bytes"] == 4 * row["state_scalars"]
    assert row["n_layers"] == 2


def test_load_curves_and_evals(run_file):
    path = run_file(eval_steps=(0, 100), eval_acc=(0.1, 0.5))
    runs = analysis.load_runs(path)
    evals = analysis.load_evals(runs)
    assert evals["step"].tolist() == [0, 100]
    assert evals["accuracy"].tolist() == pytest.approx([0.1, 0.5])
    curves = analysis.load_curves([path])
    assert curves["step"].tolist() == list(range(10, 101, 10))
    assert set(curves.columns) >= {"run", "loss", "lr", "grad_norm", "tokens_per_s"}
    gaps = analysis.load_gaps([path])
    assert gaps[gaps["step"] == 100]["gap_lo"].tolist() == [0, 4, 16]
    assert np.isinf(gaps["gap_hi"].iloc[2])
    segs = analysis.load_segments([path])
    assert segs[segs["step"] == 100]["seq_len"].tolist() == [64, 128]


@pytest.mark.parametrize("kwargs, field, words", [
    (dict(format_version=2), "/@format_version", "unsupported format_version 2"),
    (dict(fmt="someone else's results"), "/@format", "unknown format"),
    (dict(fmt="statex-sim checkpoint"), "/@format", "checkpoint"),
    (dict(drop={"/@format_version"}), "/@format_version", "missing"),
    (dict(drop={"/@status"}), "/@status", "missing"),
    (dict(drop={"/model/@state_scalars"}), "/model/@state_scalars", "missing"),
    (dict(drop={"/eval/accuracy"}), "/eval/accuracy", "missing"),
])
def test_bad_files_name_file_and_field(run_file, kwargs, field, words):
    path = run_file("bad.h5", **kwargs)
    with pytest.raises(FormatError) as info:
        analysis.read_run(path)
    assert info.value.path == str(path)
    assert info.value.field == field
    assert words in str(info.value) and str(path) in str(info.value)


def test_failed_run_may_lack_evals(run_file):
    path = run_file(status="failed", failure_reason="non-finite loss at step 3",
                    drop={"/eval"})
    run = analysis.read_run(path)
    assert run.summary["status"] == "failed"
    assert run.summary["failure_reason"] == "non-finite loss at step 3"
    assert run.evals == {}


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("hello")
    with pytest.raises(FormatError, match="not an HDF5 file"):
        analysis.load_runs([path])


def test_index_missing_column(tmp_path):
    (tmp_path / "index.csv").write_text("trial_id,status\nabc,completed\n")
    with pytest.raises(FormatError) as info:
        analysis.load_runs([tmp_path])
    assert info.value.field == "column 'result_path'"


@pytest.mark.parametrize("command", ["summary", "report"])
def test_cli_bad_file_exits_nonzero_and_names_it(run_file, tmp_path, capsys, command):
    path = run_file("v9.h5", format_version=9)
    args = [command, str(path)] + (["--out", str(tmp_path / "rep")] if command == "report" else [])
    assert main(args) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "format_version" in err and "9" in err


def test_keep_going_lists_unreadable(run_file, tmp_path):
    good = run_file("good.h5")
    bad = tmp_path / "junk.h5"
    bad.write_bytes(b"\x00" * 64)
    runs = analysis.load_runs([good, bad], strict=False)
    row = runs[runs["run"] == "junk"].iloc[0]
    assert row["status"] == "unreadable" and "not an HDF5 file" in row["failure_reason"]


def test_duplicate_trial_ids_get_unique_labels(tmp_path):
    from h5_writer import write_run
    a = write_run(tmp_path / "a" / "run.h5")
    b = write_run(tmp_path / "b" / "run.h5")
    runs = analysis.load_runs([a, b])
    assert runs["run"].is_unique and len(runs) == 2
