"""The command line: summary table contents, filters, grouping, report, exit codes."""
import csv
import io
import subprocess
import sys

from statex_analysis.cli import main
from conftest import REPO


def summary(capsys, *args):
    code = main(["summary", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_summary_rows_and_failed_marked(scaling_sweep, capsys):
    code, out, _ = summary(capsys, scaling_sweep)
    assert code == 0
    header = out.splitlines()[0].split()
    assert header == ["run", "model", "d_model", "layers", "params", "recurrent", "state",
                      "(bytes)", "lr",
                      "seed", "arm", "final_acc", "best_acc", "best_step", "escape_step",
                      "status"]
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert "failed: out of memory" in rows["m32c"]
    assert "failed: non-finite loss at step 150" in rows["g64c"]
    assert rows["g32c"].split()[5] == "2,048"  # 512 scalars × 4 bytes
    assert "11 runs, 2 not completed" in out
    # K = 4 (segments 64:4, 128:8): threshold 0.625. g64a's evals 0.05, 0.9, 0.9 escape at 100;
    # g32a's 0.05, 0.6, 0.6 never do.
    assert rows["g64a"].split()[-2:] == ["100", "completed"]
    assert rows["g32a"].split()[-2:] == ["never", "completed"]


def test_summary_prints_cells_with_intervals_and_what_was_grouped(statex_sweep, capsys):
    code, out, err = summary(capsys, statex_sweep)
    assert code == 0
    cells = out.split("Cells (runs identical in every option except the seeds):")[1]
    assert "median [75% CI]" in cells and "escaped" in cells  # 3 seeds: [min, max], 75%
    assert "n = 3: 75%" in cells  # the caption states the coverage rule
    assert "grouped over: `train.seed`" in cells
    assert "Options that differ between cells: `statex.arm`" in cells
    assert "0.550 [0.450, 0.650]" in cells  # control: 0.45, 0.55, 0.65
    assert err == ""  # every cell has 3 seeds: no warning


def test_summary_warns_in_one_line_about_small_cells(scaling_sweep, capsys):
    code, _, err = summary(capsys, scaling_sweep)
    assert code == 0
    assert err.splitlines() == ["warning: cells: 5 of 5 cells have n < 3 seeds (no interval; a "
                                "single-seed value measures luck, not the setting)"]


def test_summary_csv_where_and_units(scaling_sweep, capsys):
    code, out, _ = summary(capsys, scaling_sweep, "--csv", "--where", "model.model=mamba2",
                           "--state-unit", "scalars")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["run"] for r in rows) == ["m32a", "m32b", "m32c"]
    assert {r["recurrent state (scalars)"] for r in rows if r["run"] != "m32c"} == {"2048.0"}
    assert [r["status"] for r in rows if r["run"] == "m32c"] == ["failed: out of memory"]


def test_summary_group_by(scaling_sweep, capsys):
    code, out, _ = summary(capsys, scaling_sweep, "--group-by", "model.model,train.lr")
    assert code == 0
    grouped = out.split("Grouped by model.model, train.lr:")[1].splitlines()
    lines = [l.split() for l in grouped if l.strip()][2:]
    # model, lr, runs, completed, failed, other, ...
    assert [l[:6] for l in lines] == [["gla", "0.001", "4", "4", "0", "0"],
                                     ["gla", "0.003", "4", "3", "1", "0"],
                                     ["mamba2", "0.001", "2", "2", "0", "0"],
                                     ["mamba2", "0.003", "1", "0", "1", "0"]]


def test_bad_where_key_is_a_clear_error(scaling_sweep, capsys):
    code, _, err = summary(capsys, scaling_sweep, "--where", "model.modl=gla")
    assert code == 1 and "unknown column 'model.modl'" in err and "model.model" in err


def test_report_cli(scaling_sweep, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", str(scaling_sweep / "index.csv"), "--out",
                 str(out), "--state-unit", "scalars", "--spread", "std", "--formats", "svg",
                 "--where", "model.model=gla"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (out / "figures" / "accuracy_vs_state.svg").exists()
    assert not (out / "figures" / "accuracy_vs_state.png").exists()  # --formats svg
    index = (out / "index.md").read_text()
    assert "±1 std" in index and "in scalars" in index
    assert "non-finite loss at step 150" in index and "out of memory" not in index  # filtered
    points = list(csv.DictReader(open(out / "tables" / "accuracy_vs_state.csv")))
    assert {p["model"] for p in points} == {"gla"}
    assert sorted(float(p["state"]) for p in points) == [512, 2048]


def test_module_entry_point_exit_code(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    proc = subprocess.run([sys.executable, "-m", "analysis", "summary", str(bad)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f"error: {bad}: not an HDF5 file" in proc.stderr


def test_report_with_only_failed_and_running_runs(run_file, tmp_path, capsys):
    failed = run_file("f.h5", status="failed", failure_reason="non-finite loss at step 7",
                      drop={"/eval"})
    running = run_file("r.h5", status="running", eval_steps=(0, 100), eval_acc=(0.1, 0.2))
    out = tmp_path / "rep"
    assert main(["report", str(failed), str(running), "--out", str(out), "--formats", "png"]) == 0
    index = (out / "index.md").read_text()
    assert "| f | failed | non-finite loss at step 7 |" in index
    assert "| r | running |" in index
    assert "accuracy vs state: not drawn (no completed run without a StateX arm)" in index
    assert "figures/accuracy_vs_state.png" not in index
    # the running run's partial curve is still drawn (dashed), so the figure exists
    assert (out / "figures" / "learning_curves.png").exists()
    assert main(["summary", str(failed), str(running)]) == 0
    text = capsys.readouterr().out
    assert "failed: non-finite loss at step 7" in text and "running" in text
