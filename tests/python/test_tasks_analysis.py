"""Task-variant additions of the analysis (docs/tasks.md): per-class final accuracies in the
summary, and the state-size convention (`--state recurrent|recurrent+conv`)."""
import h5py
import numpy as np
import pandas as pd

from h5_writer import STR, write_run
from statex_analysis import plateau, tables
from statex_analysis.cli import main
from statex_analysis.frames import load_runs

CLASSES = "forgetting_kept,forgetting_updated,compositional_shared_first,compositional_unique_first"


def add_task_fields(path, conv=384, class_acc=(0.9, 0.25, np.nan, np.nan),
                    class_count=(60, 40, 0, 0)):
    """What a run on forgetting MQAR writes beside the plain fields."""
    with h5py.File(path, "a") as f:
        state = int(f["model"].attrs["state_scalars"])
        f["model"].attrs["conv_state_scalars"] = np.int64(conv)
        f["model"].attrs["state_with_conv_scalars"] = np.int64(state + conv)
        n = len(f["eval/step"])
        acc = np.tile(np.asarray(class_acc, np.float32), (n, 1))
        acc[0] = np.nan  # the first eval had other values: only the final one is reported
        d = f["eval"].create_dataset("class_accuracy", data=acc)
        d.attrs.create("classes", CLASSES, dtype=STR)
        counts = np.tile(np.asarray(class_count, np.int64), (n, 1))
        f["eval"].create_dataset("class_count", data=counts)
    return state


def test_class_accuracies_and_both_state_conventions(tmp_path, capsys):
    path = tmp_path / "forget.h5"
    write_run(path, model="gla", d_model=64, heads=4)
    state = add_task_fields(path)
    runs = load_runs([path])
    row = runs.iloc[0]
    assert row["class_acc_forgetting_kept"] == np.float32(0.9)
    assert row["class_acc_forgetting_updated"] == 0.25
    assert np.isnan(row["class_acc_compositional_shared_first"])  # no such query: NaN, not 0
    assert row["state_with_conv_scalars"] == state + 384

    summary = tables.summary_table(tables.use_state_convention(runs, "recurrent"), "scalars")
    assert summary["recurrent state (scalars)"].iloc[0] == state
    assert summary["acc_forgetting_updated"].iloc[0] == 0.25
    assert "acc_compositional_shared_first" not in summary  # no run has the class

    zoo = tables.use_state_convention(runs, "recurrent+conv")
    summary = tables.summary_table(zoo, "scalars")
    assert summary["recurrent+conv state (scalars)"].iloc[0] == state + 384
    assert tables.state_label("bytes").startswith("recurrent+conv")
    tables.use_state_convention(runs, "recurrent")
    assert tables.state_label("bytes").startswith("recurrent state")

    assert main(["summary", str(path), "--state", "recurrent+conv", "--state-unit", "scalars",
                 "--csv"]) == 0
    table = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert table["recurrent+conv state (scalars)"].iloc[0] == state + 384
    tables.use_state_convention(runs, "recurrent")  # module default for the other tests


def test_old_files_without_task_fields_still_read(tmp_path):
    path = tmp_path / "old.h5"
    write_run(path)
    row = load_runs([path]).iloc[0]
    assert not any(str(c).startswith("class_acc_") for c in row.index)
    # Files from before the recurrent+conv attribute: the total comes from the two parts.
    assert row["state_with_conv_scalars"] == row["state_scalars"] + row["conv_state_scalars"]


def test_plateau_k_of_task_segments():
    assert plateau.plateau_num_kv(["forgetting:32:4:300:updates=2", "compositional:96:9:10"]) == 4
    assert plateau.plateau_num_kv(["64:8:10:passes=2", "mqar:64:6:10"]) == 6
    assert plateau.plateau_num_kv(["file:0", "64:4"]) is None


def test_query_class_table_per_cell(tmp_path):
    paths = []
    for seed, updated in enumerate((0.2, 0.4, 0.6)):
        path = tmp_path / f"s{seed}.h5"
        write_run(path, seed=seed)
        add_task_fields(path, class_acc=(0.9, updated, np.nan, np.nan))
        paths.append(path)
    table = tables.query_class_table(load_runs(paths))
    assert list(table["query_class"]) == ["forgetting_kept", "forgetting_updated"]
    row = table.set_index("query_class").loc["forgetting_updated"]
    assert row["n"] == 3 and abs(row["median"] - 0.4) < 1e-6
    assert row["ci_low"] <= 0.4 <= row["ci_high"]
    assert tables.query_class_table(load_runs([tmp_path / "s0.h5"]).drop(
        columns=[c for c in load_runs([tmp_path / "s0.h5"]).columns
                 if c.startswith("class_acc_")])).empty
