"""The same results, named in any order, give the same bytes (issue #29): `summary DIR`,
`summary DIR/*` in shuffled orders and a reversed list of the files print the same tables, and
`report` writes the same CSV, Markdown, index and SVG files. Under the bootstrap the intervals
depended on the order the files were read in."""
import random

import numpy as np
import pytest

from statex_analysis.cli import main
from h5_writer import write_run, write_sweep

SEEDS = range(6)


def _accuracy(rng):
    """Best = final accuracy: arbitrary decimals, so a float mean depends on summation order."""
    acc = float(rng.uniform(0.1, 0.99))
    return dict(eval_steps=(0, 100, 200), eval_acc=(0.05, acc, acc))


def _trial(tid, rng, model="gla", d_model=32, seed=0, arm="", statex=None):
    run = dict(model=model, d_model=d_model, lr=1e-2, seed=seed, arm=arm, statex=statex,
               **_accuracy(rng))
    options = {"model.model": model, "model.d_model": str(d_model), "train.lr": "0.01",
               "train.seed": str(seed), "statex.arm": arm}
    return dict(id=tid, status="completed", options=options, run=run)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """DIR holding two sweeps (index.csv + trials/) and a loose file. The sweeps share trial ids
    (labels then carry the folder), one run repeats the seeds of another (one is dropped), cells
    have 6 and 3 seeds, and StateX arms are paired by seed."""
    root = tmp_path_factory.mktemp("order") / "results"
    rng = np.random.default_rng(29)
    scaling = [_trial(f"t{s}", rng, seed=s) for s in SEEDS]
    scaling += [_trial(f"m{s}", rng, model="mamba2", seed=s) for s in range(3)]
    write_sweep(root / "sweep_a", scaling)
    statex = dict(step=100, mode="reinit", layers=[0, 1], accuracy_before=0.2,
                  accuracy_after=0.1)
    arms = [_trial(f"t{s}", rng, d_model=64, seed=s, arm="statex", statex=statex) for s in SEEDS]
    arms += [_trial(f"c{s}", rng, d_model=64, seed=s, arm="control") for s in SEEDS]
    arms += [_trial("again", rng, seed=2)]  # seeds of sweep_a/t2, another value
    write_sweep(root / "sweep_b", arms)
    write_run(root / "loose.h5", model="gla", d_model=64, lr=1e-2, seed=9, **_accuracy(rng))
    return root


def _orders(root, shuffles=3):
    """Argument lists naming the same results: the folder, its entries in shuffled orders, and
    every file, reversed and shuffled."""
    entries = sorted(str(p) for p in root.iterdir())
    files = sorted(str(p) for p in root.rglob("*.h5"))
    shuffle = random.Random(0)
    orders = {"DIR": [str(root)], "DIR/*": entries, "files reversed": files[::-1]}
    for i in range(shuffles):
        orders[f"DIR/* shuffled {i}"] = shuffle.sample(entries, len(entries))
        orders[f"files shuffled {i}"] = shuffle.sample(files, len(files))
    return orders


def _run(capsys, *args):
    assert main(list(args)) == 0
    captured = capsys.readouterr()
    return captured.out + "\n--- stderr ---\n" + captured.err


@pytest.mark.parametrize("csv", [False, True], ids=["text", "csv"])
def test_summary_does_not_depend_on_input_order(results, capsys, csv):
    outputs = {name: _run(capsys, "summary", *(["--csv"] if csv else []), *paths)
               for name, paths in _orders(results).items()}
    first = outputs["DIR"]
    assert "sweep_a/t2" in first and "sweep_b/t2" in first  # shared ids: labels carry folders
    for name, text in outputs.items():
        assert text == first, name


def _report_files(out):
    """Every file a report wrote, as bytes; the index without its Sources line (it names the
    arguments, which differ between DIR and DIR/*; their order does not matter)."""
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
             if p.is_file()}
    files["index.md"] = b"\n".join(line for line in files["index.md"].splitlines()
                                   if not line.startswith(b"Sources: "))
    return files


def test_report_does_not_depend_on_input_order(results, tmp_path, capsys):
    reports = {}
    for i, (name, paths) in enumerate(_orders(results, shuffles=1).items()):  # ~3 s a report
        out = tmp_path / f"report{i}"
        _run(capsys, "report", *paths, "--out", str(out), "--formats", "svg")
        reports[name] = _report_files(out)
    first = reports["DIR"]
    assert {"tables/cells.csv", "tables/cells.md", "tables/statex_differences.csv",
            "tables/statex_differences.md", "figures/accuracy_vs_state.svg"} <= set(first)
    for name, files in reports.items():
        assert files.keys() == first.keys(), name
        for path, data in files.items():
            assert data == first[path], (name, path)


def test_report_sources_are_listed_in_one_order(results, tmp_path, capsys):
    entries = sorted(str(p) for p in results.iterdir())
    texts = []
    for i, paths in enumerate((entries, entries[::-1])):
        _run(capsys, "report", *paths, "--out", str(tmp_path / f"r{i}"), "--formats", "svg")
        texts.append((tmp_path / f"r{i}" / "index.md").read_text())
    assert texts[0] == texts[1]


@pytest.mark.filterwarnings("ignore::statex_analysis.cells.PoolingWarning")  # the repeated seed
def test_tables_of_a_shuffled_runs_frame_are_the_same(results):
    """The API: tables are a function of the set of runs, not of the frame's row order."""
    import statex_analysis as analysis
    from statex_analysis import tables
    runs = analysis.load_runs([results])
    for i in range(3):
        shuffled = runs.sample(frac=1, random_state=i).reset_index(drop=True)
        for make in (tables.cell_summary_table, tables.accuracy_vs_state_table,
                     tables.arms_table, tables.statex_differences_table):
            want, got = make(runs), make(shuffled)
            assert want.to_csv(index=False) == got.to_csv(index=False), (i, make.__name__)
