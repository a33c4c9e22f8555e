"""The plateau-escape metric: threshold, escape step on constructed curves (never, at step s,
ties at the threshold), and what the reader takes from the file versus computes."""
import math

import numpy as np
import pytest

import statex_analysis as analysis
from statex_analysis import plateau


@pytest.mark.parametrize("k, threshold", [
    (8, 3 / 8),      # 3/K
    (16, 3 / 16),
    (64, 3 / 64),
    (5, 0.6),        # 3/K = (1 + 1/K)/2: where the cap starts
    (4, 0.625),      # (1 + 1/4)/2: 3/4 would leave little room below perfect recall
    (2, 0.75),       # 3/2 is unreachable
    (1, 1.0),        # no plateau to leave: nothing is strictly above
])
def test_threshold(k, threshold):
    assert plateau.plateau_threshold(k) == pytest.approx(threshold)
    assert plateau.plateau_threshold(k) > 1 / k or k == 1


def test_threshold_without_k_is_nan():
    assert math.isnan(plateau.plateau_threshold(None))


def test_smallest_k_of_the_test_segments():
    assert plateau.plateau_num_kv(["128:16:100", "64:4:100", "96:8:50"]) == 4
    assert plateau.plateau_num_kv(["64:8:1000"]) == 8
    assert plateau.plateau_num_kv(["", "segment0", "64:x:1"]) is None
    assert plateau.plateau_num_kv([]) is None


STEPS = [0, 100, 200, 300, 400]


def test_never_escapes():
    assert plateau.escape_step(STEPS, [0.0, 0.12, 0.14, 0.13, 0.15], 0.375) is None


def test_escapes_at_the_first_eval_above():
    assert plateau.escape_step(STEPS, [0.0, 0.12, 0.5, 0.3, 0.9], 0.375) == 200


def test_a_tie_with_the_threshold_stays_on_the_plateau():
    acc = np.array([0.0, 0.375, 0.375, 0.3760, 0.9], dtype=np.float32)  # 0.375 exact in float32
    assert plateau.escape_step(STEPS, acc, 0.375) == 300


def test_nan_evals_never_escape():
    assert plateau.escape_step(STEPS, [np.nan, np.nan, 0.1, 0.8, 0.9], 0.375) == 300
    assert plateau.escape_step([], [], 0.375) is None
    assert plateau.escape_step(STEPS, [0.9] * 5, float("nan")) is None


def test_reader_computes_escape_for_files_without_it(run_file):
    # write_run's segments default to 64:4 and 128:8: K = 4, threshold 0.625
    path = run_file("old.h5", eval_steps=(0, 100, 200, 300), eval_acc=(0.1, 0.62, 0.625, 0.7))
    row = analysis.load_runs([path]).iloc[0]
    assert row["escape_source"] == "computed"
    assert row["plateau_num_kv"] == 4 and row["plateau_threshold"] == pytest.approx(0.625)
    assert row["escape_step"] == 300 and bool(row["escaped"])  # 0.625 at step 200 is a tie


def test_reader_prefers_what_the_writer_stored(run_file):
    path = run_file("new.h5", eval_steps=(0, 100), eval_acc=(0.1, 0.9),
                    plateau=dict(num_kv=8, threshold=0.375, escape_step=-1))
    row = analysis.load_runs([path]).iloc[0]
    assert row["escape_source"] == "file" and row["plateau_num_kv"] == 8
    assert np.isnan(row["escape_step"]) and not bool(row["escaped"])


def test_unknown_k_leaves_escape_unknown(run_file):
    path = run_file("nok.h5", segments=("segment0",), extra_config={"mqar.test": ""})
    row = analysis.load_runs([path]).iloc[0]
    assert np.isnan(row["plateau_threshold"]) and np.isnan(row["escape_step"])
    assert np.isnan(row["escaped"])
