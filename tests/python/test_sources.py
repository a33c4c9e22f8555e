"""Directories as a newcomer has them: results files next to checkpoints and eval outputs."""
import h5py
import numpy as np

from statex_analysis.checkpoint import Checkpoint, write_checkpoint
from statex_analysis.cli import main
from statex_analysis.sources import discover


def _checkpoint(path):
    write_checkpoint(path, Checkpoint(options={"model": "gla"}, layer_heads=[2, 2],
                                      layer_d_state=[0, 0],
                                      params={"model.norm.weight": np.ones(4, np.float32)}))
    return path


def test_summary_of_a_directory_with_a_checkpoint(run_file, tmp_path, capsys):
    """README quickstart: runs/quickstart.h5 beside runs/quickstart_ck.h5, then
    `python3 -m analysis summary runs/`."""
    run_file("quickstart.h5")
    _checkpoint(tmp_path / "quickstart_ck.h5")
    with h5py.File(tmp_path / "eval.h5", "w") as f:
        f.attrs["format"] = "statex-sim eval"
    assert main(["summary", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "1 runs, 0 not completed" in out
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2 and all(line.startswith("note: skipping ") for line in notes), err
    assert "quickstart_ck.h5 (statex-sim checkpoint, not a results file)" in err


def test_named_checkpoint_is_still_an_error(tmp_path, capsys):
    """Only directory scans skip; a checkpoint named on the command line is a mistake."""
    ck = _checkpoint(tmp_path / "ck.h5")
    assert [e.result_path for e in discover(ck)] == [str(ck)]
    assert main(["summary", str(ck)]) == 1
    assert "is a checkpoint" in capsys.readouterr().err


def test_foreign_and_broken_h5_files_are_not_skipped(run_file, tmp_path):
    run_file("a.h5")
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    assert sorted(e.trial_id for e in discover(tmp_path)) == ["a", "broken"]
