"""Fixtures: synthetic sweeps written with the documented layout (h5_writer.py).

Numbers are chosen so the expected table values are known by construction (see EXPECTED)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))  # `import analysis` without installing

from h5_writer import write_run, write_sweep  # noqa: E402


def _acc(best, final):
    """Eval series (steps 0, 100, 200) whose best is `best` and last is `final`."""
    return dict(eval_steps=(0, 100, 200), eval_acc=(0.05, best, final))


# Scaling sweep. Points (model, state):
#  gla D=32: state 2 layers × (16·32/2) = 512 scalars = 2048 bytes.
#    lr 1e-3: best 0.6 / 0.8 (final = best)   -> mean best 0.70
#    lr 3e-3: best 0.7 / 0.8, final 0.1       -> mean best 0.75: chosen (a last-eval rule would
#                                                pick 1e-3)
#  gla D=64: 2 × (32·64/2) = 2048 scalars = 8192 bytes. lr 1e-3: 0.9 / 0.95 -> chosen;
#    lr 3e-3: seed 0 failed (file, status failed), seed 1 best 0.5.
#  mamba2 D=32, N=16: 2 × (64·16) = 2048 scalars = 8192 bytes. lr 1e-3: 0.4 / 0.6.
#  One more trial failed without a file (index error "out of memory").
SCALING = [
    ("g32a", "gla", 32, 1e-3, 0, _acc(0.6, 0.6)),
    ("g32b", "gla", 32, 1e-3, 1, _acc(0.8, 0.8)),
    ("g32c", "gla", 32, 3e-3, 0, _acc(0.7, 0.1)),
    ("g32d", "gla", 32, 3e-3, 1, _acc(0.8, 0.1)),
    ("g64a", "gla", 64, 1e-3, 0, _acc(0.9, 0.9)),
    ("g64b", "gla", 64, 1e-3, 1, _acc(0.95, 0.95)),
    ("g64d", "gla", 64, 3e-3, 1, _acc(0.5, 0.5)),
    ("m32a", "mamba2", 32, 1e-3, 0, _acc(0.4, 0.4)),
    ("m32b", "mamba2", 32, 1e-3, 1, _acc(0.6, 0.6)),
]

EXPECTED = {
    # (model, state_scalars) -> (lr, mean, std, min, max, n_seeds)
    ("gla", 512): (3e-3, 0.75, 0.0707107, 0.7, 0.8, 2),
    ("gla", 2048): (1e-3, 0.925, 0.0353553, 0.9, 0.95, 2),
    ("mamba2", 2048): (1e-3, 0.5, 0.1414214, 0.4, 0.6, 2),
}


def _options(model, d_model, lr, seed, arm=""):
    return {"model.model": model, "model.d_model": str(d_model), "train.lr": f"{lr:g}",
            "train.seed": str(seed), "statex.arm": arm}


@pytest.fixture(scope="session")
def scaling_sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scaling")
    trials = [dict(id=tid, status="completed", options=_options(m, d, lr, s),
                   run=dict(model=m, d_model=d, lr=lr, seed=s, **acc))
              for tid, m, d, lr, s, acc in SCALING]
    trials.append(dict(id="g64c", status="failed", error="non-finite loss at step 150",
                       options=_options("gla", 64, 3e-3, 0),
                       run=dict(model="gla", d_model=64, lr=3e-3, seed=0, status="failed",
                                failure_reason="non-finite loss at step 150",
                                eval_steps=(0, 100), eval_acc=(0.05, 0.3))))
    trials.append(dict(id="m32c", status="failed", error="out of memory",
                       options=_options("mamba2", 32, 3e-3, 0), run=None))
    return write_sweep(root / "sweep", trials)


# StateX sweep (gla D=32, base state 512 scalars; expansion doubles the expanded layers).
#  Ablation: step {100, 200} × layers {"0", "0,1"} × mode {reinit, inherit}, seeds 0/1/2.
#  Cell value (final accuracy) = 0.5 + 0.1·[step=200] + 0.2·[layers=0,1] + 0.05·[inherit]
#  + 0.02·seed, so the median over seeds = formula + 0.02.
#  control (0.45 + 0.1·seed) and scratch (0.3 + 0.1·seed), 3 seeds each, have the config of the
#  step 200 / layers 0,1 / inherit cell (as `statex sweep` writes them: only statex.arm differs),
#  so they pair with it: statex − control = 0.40, 0.32, 0.24; statex − scratch = 0.55, 0.47, 0.39.
STATEX_SEEDS = (0, 1, 2)
PAIRED_CONFIG = dict(step=200, layers=[0, 1], mode="inherit")
def ablation_value(step, layers, mode, seed):
    return 0.5 + 0.1 * (step == 200) + 0.2 * (layers == [0, 1]) + 0.05 * (mode == "inherit") \
        + 0.02 * seed


@pytest.fixture(scope="session")
def statex_sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("statex")
    trials = []
    for step in (100, 200):
        for layers in ([0], [0, 1]):
            for mode in ("reinit", "inherit"):
                for seed in STATEX_SEEDS:
                    final = ablation_value(step, layers, mode, seed)
                    tid = f"sx{step}_{''.join(map(str, layers))}_{mode}_{seed}"
                    trials.append(dict(
                        id=tid, status="completed", options=_options("gla", 32, 1e-3, seed, "statex"),
                        run=dict(model="gla", d_model=32, lr=1e-3, seed=seed, arm="statex",
                                 eval_steps=(0, 100, 200, 300), eval_acc=(0.05, 0.3, 0.35, final),
                                 statex=dict(step=step, mode=mode, layers=layers, mult=2,
                                             accuracy_before=0.4, accuracy_after=0.2,
                                             accuracy_end=final))))
    paired = {"statex.step": str(PAIRED_CONFIG["step"]), "statex.mode": PAIRED_CONFIG["mode"],
              "statex.count": str(len(PAIRED_CONFIG["layers"])), "model.heads": "2"}
    for arm, base in (("control", 0.45), ("scratch", 0.3)):
        for seed in STATEX_SEEDS:
            trials.append(dict(id=f"{arm}{seed}", status="completed",
                               options=_options("gla", 32, 1e-3, seed, arm),
                               run=dict(model="gla", d_model=32, lr=1e-3, seed=seed, arm=arm,
                                        heads=1 if arm == "scratch" else 2,
                                        eval_steps=(0, 100, 200, 300), extra_config=paired,
                                        eval_acc=(0.05, 0.2, 0.3, base + 0.1 * seed))))
    return write_sweep(root / "sweep", trials)


@pytest.fixture(scope="session")
def scaling_records(scaling_sweep):
    from statex_analysis.frames import read_records
    return read_records([scaling_sweep])


@pytest.fixture(scope="session")
def statex_records(statex_sweep):
    from statex_analysis.frames import read_records
    return read_records([statex_sweep / "index.csv"])  # the index file form of a sweep


@pytest.fixture(scope="session")
def scaling_runs(scaling_records):
    from statex_analysis.frames import runs_frame
    return runs_frame(scaling_records)


@pytest.fixture(scope="session")
def statex_runs(statex_records):
    from statex_analysis.frames import runs_frame
    return runs_frame(statex_records)


@pytest.fixture
def run_file(tmp_path):
    """Factory: run_file(name, **write_run kwargs) -> path."""
    def make(name="run.h5", **kwargs):
        return write_run(tmp_path / name, **kwargs)
    return make


def fixture_dirs() -> list[Path]:
    """Real simulator outputs: data/fixtures/ and $STATEX_ANALYSIS_FIXTURES (os.pathsep list)."""
    dirs = [REPO / "data" / "fixtures"]
    dirs += [Path(p) for p in os.environ.get("STATEX_ANALYSIS_FIXTURES", "").split(os.pathsep) if p]
    return [d for d in dirs if d.is_dir() and any(d.rglob("*.h5"))]
