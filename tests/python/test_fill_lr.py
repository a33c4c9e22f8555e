"""scripts/fill_lr.py: the budget-check template (experiments/lr_window/budget_check.ini.in) gets
its learning rates from an lr selection, never by hand; choices on test, at a grid edge, or
ambiguous are refused."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "torch"))
import fill_lr  # noqa: E402

TEMPLATE = REPO / "experiments" / "lr_window" / "budget_check.ini.in"


def _selection(changes: dict | None = None) -> pd.DataFrame:
    """An lr_selection table as `analysis report` writes it, one row per family and size."""
    rows = []
    for model, d_model, d_state, lr in (("gla", 16, 16, 1e-2), ("gla", 32, 16, 3e-3),
                                        ("mamba2", 64, 4, 1e-2), ("mamba2", 64, 16, 3e-2),
                                        ("gated_deltanet", 64, 16, 1e-2),
                                        ("attention", 16, 16, 3e-3)):
        rows.append({"group": len(rows), "model": model, "state_scalars": 1000,
                     "model.d_model": d_model, "model.d_state": d_state,
                     "selected_on": "validation", "lr": lr, "selection_median": 0.8,
                     "n_scored": 5, "grid_edge": float("nan")})
    table = pd.DataFrame(rows).astype({"grid_edge": object, "selected_on": object})
    for (model, column), value in (changes or {}).items():
        table.loc[table["model"] == model, column] = value
    return table


def test_fills_the_budget_template_from_the_selection(tmp_path):
    text = fill_lr.fill(TEMPLATE.read_text(), _selection(), "sel.csv")
    assert not [l for l in text.splitlines() if "{{" in l and not l.startswith("#")]
    assert "zip.family.train.lr = 0.003, 0.03, 0.01, 0.003" in text
    assert text.startswith("# Filled by scripts/fill_lr.py")
    assert "model=mamba2 model.d_state=16: lr 0.03 (validation median 0.8 over n = 5" in text
    out = tmp_path / "budget_check.ini"
    out.write_text(text)
    from statex_cli import statex_bin
    listed = subprocess.run([statex_bin(), "sweep", str(out), "--list"], capture_output=True,
                            text=True)
    assert listed.returncode == 0, listed.stderr
    trials = [line.split("\t") for line in listed.stdout.splitlines()[1:] if line.strip()]
    assert len(trials) == 40  # 5 seeds x 2 budgets x 4 families


@pytest.mark.parametrize("changes, words", [
    ({("gla", "selected_on"): "test"}, "not on a validation split"),
    ({("attention", "grid_edge"): "high: extend above 0.1"}, "edge of its grid"),
    ({("gated_deltanet", "model.d_model"): 32}, "matches no row"),
])
def test_refuses_what_is_not_an_honest_choice(changes, words):
    with pytest.raises(fill_lr.FillError, match=words):
        fill_lr.fill(TEMPLATE.read_text(), _selection(changes), "sel.csv")


def test_ambiguous_keys_and_allow_edge():
    with pytest.raises(fill_lr.FillError, match="matches 2 rows"):
        fill_lr.fill("lr = {{lr model=gla}}\n", _selection(), "sel.csv")
    edge = _selection({("attention", "grid_edge"): "low: extend below 0.001"})
    text = fill_lr.fill(TEMPLATE.read_text(), edge, "sel.csv", allow_edge=True)
    assert "AT THE GRID EDGE (low: extend below 0.001)" in text


def test_command_line_writes_once_and_reads_a_report_table(tmp_path):
    sel = tmp_path / "lr_selection.csv"
    _selection().to_csv(sel, index=False)
    out = tmp_path / "filled.ini"
    run = [sys.executable, str(REPO / "scripts" / "fill_lr.py"), str(TEMPLATE), str(sel),
           "--out", str(out)]
    assert subprocess.run(run, capture_output=True, text=True).returncode == 0
    assert "0.03" in out.read_text()
    again = subprocess.run(run, capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr
