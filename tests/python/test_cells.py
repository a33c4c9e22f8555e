"""The no-pooling rule: runs are pooled as seeds only when every other option is identical."""
import numpy as np
import pytest

import statex_analysis as analysis
from statex_analysis import tables
from statex_analysis.cells import PoolingWarning, assign_cells


def _runs(run_file, specs):
    """specs: (name, kwargs for write_run) -> runs frame of completed runs."""
    paths = [run_file(f"{name}.h5", **kwargs) for name, kwargs in specs]
    return analysis.load_runs(paths)


def test_readme_trap_60_and_900_steps_are_two_cells_not_two_seeds(run_file):
    """The README's trap: a 60-step run and the 900-step quickstart averaged as 'n_seeds 2'."""
    runs = _runs(run_file, [
        ("short", dict(seed=0, eval_steps=(0, 30, 60), eval_acc=(0.0, 0.1, 0.2))),
        ("quickstart", dict(seed=1, eval_steps=(0, 450, 900), eval_acc=(0.0, 0.5, 0.99))),
    ])
    assert sorted(runs["train.steps"]) == [60, 900]
    with pytest.warns(PoolingWarning, match="2 of 2 cells have n < 3"):
        table = tables.accuracy_vs_state_table(runs)
    assert len(table) == 2 and table["n"].tolist() == [1, 1]
    assert sorted(table["median"]) == pytest.approx([0.2, 0.99])
    assert "train.steps" in table.columns  # the option that differs is shown
    assert "`train.steps`" in table.attrs["caption"]


def test_seeds_are_pooled(run_file):
    runs = _runs(run_file, [(f"s{seed}", dict(seed=seed, extra_config={"mqar.seed": str(10 + seed)},
                                              eval_acc=(0.0, 0.5, 0.6 + 0.1 * seed)))
                            for seed in range(3)])
    table = tables.accuracy_vs_state_table(runs)
    assert len(table) == 1 and table["n"].iloc[0] == 3
    assert table["median"].iloc[0] == pytest.approx(0.7)
    assert table["ci_low"].iloc[0] <= 0.7 <= table["ci_high"].iloc[0]
    cells, grouping = assign_cells(runs)
    assert grouping.grouped_over == ["train.seed", "mqar.seed"] and grouping.varied == []


@pytest.mark.parametrize("option, values", [
    ("train.lr", ("0.001", "0.003")),
    ("model.d_model", ("64", "128")),
    ("train.threads", ("1", "2")),          # a run is a function of its thread count too
    ("train.warmup_steps", ("10", "100")),
])
def test_runs_differing_in_one_option_are_separate_cells(run_file, option, values):
    specs = [(f"{option}-{v}-{seed}", dict(seed=seed, extra_config={option: v}))
             for v in values for seed in (0, 1, 2)]
    runs = _runs(run_file, specs)
    cells, grouping = assign_cells(runs)
    assert grouping.varied == [option]
    assert cells.groupby("cell").size().tolist() == [3, 3]
    for _, group in cells.groupby("cell"):
        assert group[option].nunique() == 1


def test_lr_is_chosen_among_cells_that_differ_only_in_lr(run_file):
    specs = [(f"lr{lr}-{seed}", dict(seed=seed, extra_config={"train.lr": lr},
                                     eval_acc=(0.0, 0.1, acc + 0.01 * seed)))
             for lr, acc in (("0.001", 0.5), ("0.003", 0.8)) for seed in (0, 1, 2)]
    specs += [(f"steps-{seed}", dict(seed=seed, extra_config={"train.lr": "0.01"},
                                     eval_steps=(0, 50, 100), eval_acc=(0.0, 0.1, 0.95)))
              for seed in (0, 1, 2)]  # best median overall, but a different train.steps
    table = tables.accuracy_vs_state_table(_runs(run_file, specs))
    assert len(table) == 2
    by_steps = table.set_index("train.steps")
    assert by_steps.loc[200, "lr"] == pytest.approx(0.003)
    assert by_steps.loc[200, "lrs_tried"] == "0.001;0.003"
    assert by_steps.loc[200, "median"] == pytest.approx(0.81)
    assert by_steps.loc[100, "lr"] == pytest.approx(0.01) and by_steps.loc[100, "n"] == 3


def test_an_option_missing_from_one_file_makes_its_own_cell(run_file):
    runs = _runs(run_file, [("old", dict(seed=0)), ("new", dict(seed=1, extra_config={
        "train.beta2": "0.999"}))])
    cells, grouping = assign_cells(runs)
    assert grouping.varied == ["train.beta2"] and cells["cell"].nunique() == 2


def test_duplicate_seeds_count_once(run_file):
    runs = _runs(run_file, [("a", dict(seed=0)), ("a_again", dict(seed=0)), ("b", dict(seed=1))])
    with pytest.warns(PoolingWarning, match="repeat the seeds"):
        cells, _ = assign_cells(runs)
    assert sorted(cells["run"]) == ["a", "b"]


def test_statex_arms_pair_only_within_identical_configs(run_file):
    """control runs at another lr are a different comparison, never partners of the statex arm."""
    sx = dict(step=100, mode="reinit", layers=[0], mult=2, accuracy_before=0.3,
              accuracy_after=0.1, accuracy_end=0.9)
    common = {"statex.step": "100", "statex.mode": "reinit", "statex.count": "1"}
    specs = [(f"sx{s}", dict(seed=s, arm="statex", statex=sx, eval_acc=(0, 0.5, 0.9)))
             for s in (0, 1, 2)]
    specs += [(f"ctl{s}", dict(seed=s, arm="control", extra_config=common,
                               eval_acc=(0, 0.5, 0.6))) for s in (0, 1, 2)]
    specs += [(f"ctl_lr{s}", dict(seed=s, arm="control", extra_config={**common,
                                                                        "train.lr": "0.01"},
                                  eval_acc=(0, 0.5, 0.1))) for s in (0, 1, 2)]
    runs = _runs(run_file, specs)
    diffs = tables.statex_differences_table(runs)
    assert len(diffs) == 1
    row = diffs.iloc[0]
    assert row["n_pairs"] == 3 and row["median_diff"] == pytest.approx(0.3)
    assert row["seeds"] == "0;1;2" and row["unpaired"] == 0
    arms = tables.arms_table(runs)
    assert set(arms["runs"][arms["arm"] == "control"]) == {"ctl0;ctl1;ctl2"}


def test_unpaired_seeds_are_counted(run_file):
    sx = dict(step=100, mode="reinit", layers=[0], mult=2)
    common = {"statex.step": "100", "statex.mode": "reinit", "statex.count": "1"}
    specs = [(f"sx{s}", dict(seed=s, arm="statex", statex=sx)) for s in (0, 1, 2, 3)]
    specs += [(f"ctl{s}", dict(seed=s, arm="control", extra_config=common)) for s in (1, 2, 3, 4)]
    diffs = tables.statex_differences_table(_runs(run_file, specs))
    assert diffs["n_pairs"].iloc[0] == 3 and diffs["unpaired"].iloc[0] == 2
    assert diffs["seeds"].iloc[0] == "1;2;3"
    assert np.isfinite(diffs["diff_ci_low"].iloc[0])


def test_two_comparisons_of_one_model_are_two_panels_named_by_what_differs(run_file):
    import matplotlib.pyplot as plt
    from statex_analysis import plots
    sx = dict(step=100, mode="reinit", layers=[0], mult=2)
    specs = []
    for lr in ("0.001", "0.01"):
        common = {"statex.step": "100", "statex.mode": "reinit", "statex.count": "1",
                  "train.lr": lr}
        specs += [(f"sx{lr}-{s}", dict(seed=s, arm="statex", statex=sx,
                                       extra_config={"train.lr": lr})) for s in (0, 1, 2)]
        specs += [(f"ctl{lr}-{s}", dict(seed=s, arm="control", extra_config=common))
                  for s in (0, 1, 2)]
    arms = tables.arms_table(_runs(run_file, specs))
    assert arms["comparison"].nunique() == 2
    fig = plots.statex_arms(arms, "bytes")
    titles = sorted(ax.get_title() for ax in fig.axes)
    assert titles[0].startswith("gla, lr=0.001: StateX arms")
    assert titles[1].startswith("gla, lr=0.01: StateX arms")
    plt.close(fig)
