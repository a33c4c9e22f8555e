#!/usr/bin/env python3
"""Fills the learning rates of a sweep template from an lr selection (docs/sweeps.md, "Learning
rates from a selection"; issue 26's budget check, experiments/lr_window/budget_check.ini.in).

Each `{{lr KEY=VALUE ...}}` in the template is replaced by the `lr` of the one row of the
selection CSV (`python3 -m analysis report` writes it as tables/lr_selection.csv) whose columns
match every KEY=VALUE (`model=gla` reads the `model` column; `model.d_model=32` the option
column; numbers compare as numbers). The written file starts with a header that records, per
placeholder, the lr, the selection statistic's value, n and the source CSV.

Refused (exit 2, nothing written): a placeholder that matches no row or several, a row whose lr
was chosen on the test numbers (`selected_on` = test: the runs had no validation split), and a
row whose choice is at the edge of its lr grid (`grid_edge` set: the window was not resolved;
extend the grid, or pass --allow-edge to proceed and say so in the header).

Usage: python3 scripts/fill_lr.py TEMPLATE SELECTION.csv [--out FILE] [--allow-edge]
"""
from __future__ import annotations

import argparse
import datetime
import math
import re
import sys
from pathlib import Path

import pandas as pd

PLACEHOLDER = re.compile(r"\{\{lr((?:\s+[^\s=}]+=[^\s}]+)+)\s*\}\}")


class FillError(Exception):
    """A placeholder that cannot be filled honestly."""


def _matches(column: pd.Series, value: str) -> pd.Series:
    numeric = pd.to_numeric(column, errors="coerce")
    try:
        number = float(value)
    except ValueError:
        return column.astype(str) == value
    return pd.Series([not math.isnan(x) and math.isclose(x, number, rel_tol=1e-9)
                      for x in numeric], index=column.index)


def pick(selection: pd.DataFrame, keys: dict[str, str], allow_edge: bool) -> pd.Series:
    """The one selection row matching `keys`, checked."""
    mask = pd.Series(True, index=selection.index)
    for key, value in keys.items():
        column = "model" if key in ("model", "model.model") else key
        if column not in selection:
            raise FillError(f"{{{{lr ...}}}}: the selection has no column '{column}' "
                            f"(columns: {', '.join(selection.columns)})")
        mask &= _matches(selection[column], value)
    rows = selection[mask]
    what = " ".join(f"{k}={v}" for k, v in keys.items())
    if len(rows) != 1:
        raise FillError(f"{{{{lr {what}}}}} matches {len(rows)} rows of the selection; name the "
                        "group by more options" if len(rows) else
                        f"{{{{lr {what}}}}} matches no row of the selection")
    row = rows.iloc[0]
    if row.get("selected_on") != "validation":
        raise FillError(f"{{{{lr {what}}}}}: its lr was chosen on '{row.get('selected_on')}', "
                        "not on a validation split (run the lr sweep with mqar.valid)")
    edge = row.get("grid_edge")
    if isinstance(edge, str) and edge and not allow_edge:
        raise FillError(f"{{{{lr {what}}}}}: the chosen lr {row['lr']:g} is at the edge of its "
                        f"grid ({edge}); extend the grid, or pass --allow-edge")
    return row


def fill(template: str, selection: pd.DataFrame, source: str, allow_edge: bool = False) -> str:
    """The template with every placeholder replaced, and a header recording the choices."""
    notes: list[str] = []

    def replace(match: re.Match) -> str:
        keys = dict(part.split("=", 1) for part in match.group(1).split())
        row = pick(selection, keys, allow_edge)
        edge = row.get("grid_edge")
        edge = f"; AT THE GRID EDGE ({edge})" if isinstance(edge, str) and edge else ""
        notes.append(f"#   {' '.join(f'{k}={v}' for k, v in keys.items())}: lr {row['lr']:g} "
                     f"(validation median {row['selection_median']:.4g} over n = "
                     f"{int(row['n_scored'])} seeds{edge})")
        return f"{row['lr']:g}"

    lines = []  # placeholders outside comments only (the template's header explains them)
    for line in template.splitlines(keepends=True):
        if not line.lstrip().startswith(("#", ";")):
            line = PLACEHOLDER.sub(replace, line)
            if "{{" in line:
                raise FillError(f"a placeholder is malformed: '{line.strip()}' (expected "
                                "{{lr KEY=VALUE ...}})")
        lines.append(line)
    body = "".join(lines)
    if not notes:
        raise FillError("the template has no {{lr KEY=VALUE ...}} placeholder")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = [f"# Filled by scripts/fill_lr.py on {stamp} from {source}: each lr below is the one",
              "# chosen on the validation split for its group (docs/analysis.md):", *notes, ""]
    return "\n".join(header) + body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("template", type=Path)
    ap.add_argument("selection", type=Path, help="tables/lr_selection.csv of an analysis report")
    ap.add_argument("--out", type=Path, help="file to write (default: stdout); never replaced")
    ap.add_argument("--allow-edge", action="store_true",
                    help="accept an lr chosen at the edge of its grid (noted in the header)")
    args = ap.parse_args(argv)
    try:
        text = fill(args.template.read_text(), pd.read_csv(args.selection), str(args.selection),
                    args.allow_edge)
    except (FillError, OSError) as err:
        print(f"fill_lr.py: {err}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
    elif args.out.exists():
        print(f"fill_lr.py: --out {args.out} exists; remove it or choose another", file=sys.stderr)
        return 2
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
