"""export-tensorboard / export-wandb are keyed by stable run ids (issue #31): a rerun updates
instead of duplicating, distinct runs never share a folder, and every refusal comes before
anything is written. Before: export-wandb run twice wrote every run twice, and two run labels
that map to one TensorBoard folder stopped the export half-written (or, with --overwrite, the
second run silently replaced the first)."""
from __future__ import annotations

import glob
import json
import shutil
from pathlib import Path

import pytest

from statex_analysis.cli import main
from statex_analysis.frames import read_records
from statex_analysis.tracking import MARKER, run_ids


def snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def two_runs(run_file):
    """Two distinct runs whose labels ('a b', 'a_b') map to one TensorBoard folder name."""
    return [run_file("a b.h5", seed=1, eval_acc=(0.1, 0.2, 0.3)),
            run_file("a_b.h5", seed=2, eval_acc=(0.1, 0.6, 0.9))]


def ids_of(paths) -> dict:
    records = [r for r in read_records([str(p) for p in paths]) if r.data]
    return {r.row["path"]: rid for r, rid in zip(records, run_ids(records))}


def test_run_ids_are_stable_and_distinct(two_runs, run_file, tmp_path):
    a, b = two_runs
    both = ids_of([a, b])
    assert ids_of([b, a]) == both and ids_of([a])[str(a)] == both[str(a)]
    assert len(set(both.values())) == 2
    # the same run again (rewritten with the same config) keeps its id: a rerun updates
    again = run_file("a b.h5", seed=1, eval_acc=(0.1, 0.2, 0.35))
    assert ids_of([again])[str(again)] == both[str(a)]
    # copies of one file are two entries with one config: told apart, deterministically
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    shutil.copy(a, tmp_path / "x" / "r.h5")
    shutil.copy(a, tmp_path / "y" / "r.h5")
    copies = ids_of([tmp_path / "x" / "r.h5", tmp_path / "y" / "r.h5"])
    assert len(set(copies.values())) == 2
    assert copies == ids_of([tmp_path / "x" / "r.h5", tmp_path / "y" / "r.h5"])


def _event_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("events.out.tfevents.*"))


def test_tensorboard_labels_that_collide_get_distinct_folders(two_runs, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    out = tmp_path / "tb"
    ids = ids_of(two_runs)
    assert main(["export-tensorboard", *map(str, two_runs), "--out", str(out)]) == 0
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert [f.name for f in folders] == sorted(f"a_b-{rid[:8]}" for rid in ids.values())
    for folder in folders:
        assert len(_event_files(folder)) == 1
        marker = json.loads((folder / MARKER).read_text())
        assert marker["run_id"] in ids.values() and folder.name.endswith(marker["run_id"][:8])
    # a rerun (inputs in the other order) updates the same folders: one event file each
    before = snapshot(out)
    assert main(["export-tensorboard", *map(str, reversed(two_runs)), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and snapshot(out) == before
    assert main(["export-tensorboard", *map(str, reversed(two_runs)), "--out", str(out),
                 "--overwrite"]) == 0
    assert sorted(p for p in out.iterdir() if p.is_dir()) == folders
    assert all(len(_event_files(f)) == 1 for f in folders)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left


def test_tensorboard_keeps_a_run_in_its_folder_and_never_takes_anothers(two_runs, run_file,
                                                                       tmp_path, capsys):
    """A run exported alone gets its plain label; exported again beside a run whose label
    collides, it keeps that folder (found by its id) and the other run gets a suffixed one.
    A folder of another run is never written into."""
    pytest.importorskip("tensorboard")
    a, b = two_runs
    out = tmp_path / "tb"
    assert main(["export-tensorboard", str(a), "--out", str(out)]) == 0
    assert [p.name for p in out.iterdir()] == ["a_b"]
    first = snapshot(out)
    assert main(["export-tensorboard", str(b), "--out", str(out)]) == 0  # another run: new folder
    ids = ids_of([a, b])
    assert sorted(p.name for p in out.iterdir()) == sorted(["a_b", f"a_b-{ids[str(b)][:8]}"])
    assert all(snapshot(out)[p] == v for p, v in first.items())  # a's folder untouched
    assert main(["export-tensorboard", str(a), str(b), "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["a_b", f"a_b-{ids[str(b)][:8]}"])
    # refusals come before anything is written: a new run and an old one without --overwrite
    c = run_file("c.h5", seed=3)
    assert main(["export-tensorboard", str(c), str(a), "--out", str(out)]) == 2
    assert not (out / "c").exists()


def test_tensorboard_output_paths(two_runs, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["export-tensorboard", str(two_runs[0]), "--out", str(a_file)]) == 2
    assert "is not a directory" in capsys.readouterr().err and a_file.read_text() == "x"


def _wandb_run_ids(out: Path) -> list[str]:
    return sorted(Path(p).name[len("run-"):-len(".wandb")]
                  for p in glob.glob(str(out / "wandb" / "offline-run-*" / "run-*.wandb")))


def test_wandb_rerun_updates_instead_of_duplicating(two_runs, tmp_path, capsys):
    pytest.importorskip("wandb")
    out = tmp_path / "wb"
    ids = sorted(ids_of(two_runs).values())
    assert main(["export-wandb", *map(str, two_runs), "--out", str(out)]) == 0
    assert _wandb_run_ids(out) == ids
    before = snapshot(out / "wandb")
    assert main(["export-wandb", *map(str, two_runs), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert snapshot(out / "wandb") == before
    assert main(["export-wandb", *map(str, reversed(two_runs)), "--out", str(out),
                 "--overwrite"]) == 0
    assert _wandb_run_ids(out) == ids  # one offline run per run, same ids: wandb sync updates
    assert len(glob.glob(str(out / "wandb" / "offline-run-*"))) == 2
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["export-wandb", str(two_runs[0]), "--out", str(a_file)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_report_output_directory_is_checked_first(two_runs, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["report", str(two_runs[0]), "--out", str(a_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "exists and is not a directory" in err
    assert a_file.read_text() == "x"
