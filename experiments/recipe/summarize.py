"""Per-variant plateau escape of the recipe screens (docs/mamba2_recipe.md).

Usage: python3 experiments/recipe/summarize.py SWEEP_DIR [SWEEP_DIR ...] [--threshold 0.375] [--csv OUT]

A run has escaped the 1/K plateau at the first eval whose test accuracy is >= the threshold
(0.375 = statex_analysis's min(3/K, (1+1/K)/2) for K=8; the screen's runs stopped at 0.5). Trials
are grouped by every swept option except train.seed (index.csv columns), so runs that differ in
anything but the seed are never pooled; unlike `python3 -m analysis report`, no best-lr choice
merges variants that differ in lr. Prints per group: escaped / seeds done, the escape steps, and
the best accuracies.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import h5py
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # the repository root
from statex_analysis.plateau import escape_step  # noqa: E402  (one definition of "escaped")


def load(sweep_dir: pathlib.Path, threshold: float) -> pd.DataFrame:
    index = pd.read_csv(sweep_dir / "index.csv", dtype=str)
    rows = []
    for _, r in index.iterrows():
        row = {k: v for k, v in r.items() if k not in ("result_path", "error")}
        row["sweep"] = sweep_dir.name
        path = sweep_dir / str(r["result_path"])
        if r["status"] == "completed" and path.exists():
            with h5py.File(path, "r") as f:
                steps, acc = f["eval/step"][()], f["eval/accuracy"][()]
                row["best_accuracy"] = float(acc.max())
                row["steps_done"] = int(f.attrs["steps_done"])
                row["escape_step"] = escape_step(steps, acc, threshold)
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=pathlib.Path)
    ap.add_argument("--threshold", type=float, default=0.375)
    ap.add_argument("--csv", type=pathlib.Path, help="write one row per trial here")
    args = ap.parse_args()
    runs = pd.concat([load(d, args.threshold) for d in args.dirs], ignore_index=True)
    if args.csv:
        runs.to_csv(args.csv, index=False)
    swept = [c for c in runs.columns
             if c not in ("trial_id", "status", "train.seed", "sweep", "best_accuracy",
                          "steps_done", "escape_step")]
    done = runs[runs["status"] == "completed"]
    rows = []
    for key, g in done.groupby(["sweep", *swept], sort=False, dropna=False):
        esc = sorted(g["escape_step"].dropna().astype(int))
        rows.append({**dict(zip(["sweep", *swept], key)), "escaped": f"{len(esc)}/{len(g)}",
                     "escape_steps": " ".join(map(str, esc)),
                     "best_acc": " ".join(f"{a:.2f}" for a in sorted(g["best_accuracy"])),
                     "median": round(g["best_accuracy"].median(), 3)})
    table = pd.DataFrame(rows)
    varying = [c for c in ["sweep", *swept] if table[c].nunique(dropna=False) > 1]
    print(table[varying + ["escaped", "escape_steps", "median", "best_acc"]].to_string(index=False))

if __name__ == "__main__":
    main()
