"""scripts/reproduce.sh end to end on a tiny canonical folder (STATEX_CANONICAL_DIR): it runs every
sweep, writes the report with one cell per setting over the seeds, records the commit and the
binary, reuses finished trials on a rerun (keeping the earlier provenance record), and refuses an
unknown --only name.

Needs the statex binary ($STATEX_BIN, else ./build/statex; scripts/test.sh sets it)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "torch"))
from statex_cli import statex_bin  # noqa: E402

# Tiny versions of the two kinds of canonical file: recall against state (two sizes) and the
# StateX three arms. MQAR T=16 K=2 V=32; 20 steps, a few seconds per trial.
BASE = """device = cpu

[model]
model = gla
vocab_size = 32
n_layers = 2
use_short_conv = true
mlp = false
{model}
[mqar]
train = 16:2:2000
test = 16:2:64

[train]
steps = 20
batch_size = 8
lr = 1e-2
warmup_steps = 2
eval_every = 10
{train}
[sweep]
name = {name}
grid.train.seed = 0, 1, 2, 3
{grid}
"""
RECALL = BASE.format(name="tiny_recall", model="heads = 1\n", train="",
                     grid="grid.model.d_model = 8, 16")
ARMS = BASE.format(name="tiny_arms", model="d_model = 16\nheads = 2\n", train="",
                   grid="grid.statex.arm = statex, control, scratch").replace(
    "[sweep]", "[statex]\nstep = 10\ncount = 2\nmode = reinit\ngla_heads = 1\nwarmup_steps = 2\n\n[sweep]")


def _reproduce(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, STATEX_BIN=statex_bin(), STATEX_CANONICAL_DIR=str(tmp_path / "canon"),
               OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")
    return subprocess.run(["bash", "scripts/reproduce.sh", "--out", str(tmp_path / "out"), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture
def canon(tmp_path: Path) -> Path:
    d = tmp_path / "canon"
    d.mkdir()
    (d / "tiny_recall.ini").write_text(RECALL)
    (d / "tiny_arms.ini").write_text(ARMS)
    return d


def test_quick_run_reports_cells_over_seeds_and_records_provenance(tmp_path, canon):
    r = _reproduce(tmp_path, "--quick", "--jobs", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "out"
    # --quick keeps seeds 0-2 of the file's 0-3: 2 sizes x 3 seeds and 3 arms x 3 seeds.
    assert len(list((out / "runs" / "tiny_recall" / "trials").glob("*.h5"))) == 6
    assert len(list((out / "runs" / "tiny_arms" / "trials").glob("*.h5"))) == 9

    prov = (out / "PROVENANCE.md").read_text()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert "QUICK" in prov and f"commit: {head}" in prov
    assert "- tiny_recall: sweep finished" in prov and "- tiny_arms: sweep finished" in prov
    assert "result files by build and machine:" in prov and "provenance 1: 15 result files" in prov
    assert "flavour: portable" in prov and "cpu_model: " in prov
    assert "- finished: " in prov

    tables = out / "report" / "tables"
    recall = pd.read_csv(tables / "accuracy_vs_state.csv")
    assert sorted(recall["model.d_model"]) == [8, 16]  # one cell per size, seeds not pooled away
    assert list(recall["n"]) == [3, 3]
    diffs = pd.read_csv(tables / "statex_differences.csv")
    assert set(diffs["difference"]) == {"statex − control", "statex − scratch"}
    assert list(diffs["n_pairs"]) == [3, 3]


def test_rerun_reuses_finished_trials(tmp_path, canon):
    first = _reproduce(tmp_path, "--quick", "--only", "tiny_recall")
    assert first.returncode == 0, first.stdout + first.stderr
    trials = tmp_path / "out" / "runs" / "tiny_recall" / "trials"
    stamps = {p.name: p.stat().st_mtime_ns for p in trials.glob("*.h5")}
    first_record = (tmp_path / "out" / "PROVENANCE.md").read_text()
    again = _reproduce(tmp_path, "--quick", "--only", "tiny_recall")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "6 already completed, 0 to run" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in trials.glob("*.h5")} == stamps
    # The first invocation's record is kept beside the new one, not overwritten.
    assert (tmp_path / "out" / "PROVENANCE.earlier-1.md").read_text() == first_record
    assert "- finished: " in (tmp_path / "out" / "PROVENANCE.md").read_text()


def test_only_names_an_unknown_file(tmp_path, canon):
    r = _reproduce(tmp_path, "--only", "tiny_recall,no_such_file")
    assert r.returncode == 2
    assert "--only: no " in r.stderr and "no_such_file.ini" in r.stderr
    assert not (tmp_path / "out" / "runs" / "tiny_recall").exists()  # refused before running


@pytest.mark.parametrize("args, message", [
    (["--only"], "--only needs a value"),             # used to die on an unbound variable
    (["--only", ""], "--only needs a value"),         # used to run every file
    (["--only", ","], "an empty name"),               # used to run none, then fail in the analysis
    (["--only", "tiny_recall,"], "an empty name"),
    (["--only", "tiny_recall,,tiny_arms"], "an empty name"),
    (["--out"], "--out needs a value"),
    (["--jobs", "0"], "--jobs must be a positive integer"),
    (["--threads", "x"], "--threads must be a positive integer"),
])
def test_bad_arguments_refused_before_anything_runs(tmp_path, canon, args, message):
    """Refused with exit 2 and one line naming the option, before any folder is made. The binary
    is /bin/false, so a wrongly accepted argument shows as another exit code, fast."""
    env = dict(os.environ, STATEX_BIN="/bin/false", STATEX_CANONICAL_DIR=str(canon))
    r = subprocess.run(["bash", "scripts/reproduce.sh", "--out", str(tmp_path / "out"), *args],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "unbound variable" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_dir_reads_another_folder_of_sweep_files(tmp_path, canon):
    """--dir (e.g. experiments/lr_window) replaces experiments/canonical and wins over
    STATEX_CANONICAL_DIR; a folder that does not exist is refused before anything runs."""
    env = dict(os.environ, STATEX_BIN=statex_bin(), STATEX_CANONICAL_DIR=str(tmp_path / "nowhere"),
               OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")
    run = ["bash", "scripts/reproduce.sh", "--out", str(tmp_path / "out"), "--quick"]
    r = subprocess.run(run + ["--dir", str(canon), "--only", "tiny_recall"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(list((tmp_path / "out" / "runs" / "tiny_recall" / "trials").glob("*.h5"))) == 6
    assert f"sweep files: {canon}/" in (tmp_path / "out" / "PROVENANCE.md").read_text()
    bad = subprocess.run(run + ["--dir", str(tmp_path / "missing")], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--dir: no folder" in bad.stderr
