"""Command line: `python3 -m analysis summary|report PATH...`.

Exit codes: 0 ok, 1 a file could not be read (FormatError: file and field printed) or a bad
table request, 2 bad usage (argparse)."""
from __future__ import annotations

import argparse
import sys
import warnings

from . import tables
from .cells import PoolingWarning, warn_small_cells
from .frames import read_records, runs_frame
from .io import FormatError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="results .h5 files, sweep directories, index.csv files, or directories "
                        "of .h5 files")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="keep runs where KEY (a config option such as model.model, or a summary "
                        "column such as status) matches; also !=, <, <=, >, >=; repeatable (AND)")
    p.add_argument("--state-unit", choices=tables.STATE_UNITS, default="bytes",
                   help="unit of state sizes: bytes (fp32, 4 x scalars; default) or scalars")
    p.add_argument("--state", choices=tables.STATE_CONVENTIONS, default="recurrent",
                   help="state size convention: recurrent (ours; default) or recurrent+conv "
                        "(Zoology's, short-conv state counted); tables and labels say which")
    p.add_argument("--keep-going", action="store_true",
                   help="list unreadable files as runs with status 'unreadable' instead of "
                        "stopping at the first one")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m analysis",
                                     description="Read statex-sim results files and sweeps.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="print one row per trial")
    _common(s)
    s.add_argument("--group-by", default="", metavar="KEY[,KEY...]",
                   help="sort rows by these columns and print per-group counts and accuracy")
    s.add_argument("--csv", action="store_true", help="print CSV instead of a text table")
    r = sub.add_parser("report", help="write figures, tables and index.md")
    _common(r)
    r.add_argument("--out", required=True, metavar="DIR", help="output directory")
    r.add_argument("--spread", choices=tables.SPREADS, default="ci",
                   help="figure bands over seeds: ci = median and its 95%% bootstrap interval "
                        "(default), minmax = median and min-max, std = mean ± 1 sample std")
    r.add_argument("--formats", default="png,svg", help="figure formats (default png,svg)")
    return parser


def _load(args):
    records = read_records(args.paths, strict=not args.keep_going)
    if args.state == "recurrent+conv":  # every table and figure reads state_scalars
        for rec in records:
            rec.row["state_scalars"] = rec.row.get("state_with_conv_scalars", float("nan"))
    runs = tables.use_state_convention(runs_frame(records), args.state)
    if args.where:
        keep = set(tables.filter_runs(runs, args.where)["run"])
        records = [r for r in records if r.row["run"] in keep]
        runs = runs[runs["run"].isin(keep)].reset_index(drop=True)
    return records, runs


def cmd_summary(args) -> int:
    _, runs = _load(args)
    keys = [k.strip() for k in args.group_by.split(",") if k.strip()]
    if keys:
        tables.check_columns(runs, keys, "--group-by")
        runs = runs.sort_values(keys, kind="stable").reset_index(drop=True)
    table = tables.summary_table(runs, args.state_unit)
    if args.csv:
        sys.stdout.write(table.to_csv(index=False))
        return 0
    print(tables.to_text(table))
    n_bad = int((runs["status"] != "completed").sum())
    print(f"\n{len(runs)} runs, {n_bad} not completed")
    cell_table = tables.cell_summary_table(runs)
    warn_small_cells(cell_table, "cells")
    if not cell_table.empty:
        print("\nCells (runs identical in every option except the seeds):")
        print(tables.to_text(tables.presentable(cell_table)))
        print(cell_table.attrs["caption"])
    if keys:
        print(f"\nGrouped by {', '.join(keys)}:")
        print(tables.to_text(tables.group_table(runs, keys)))
    return 0


def cmd_report(args) -> int:
    from .report import build_report, write_report  # matplotlib only when needed
    records, _ = _load(args)
    rep = build_report(records, args.state_unit, args.spread)
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    index = write_report(rep, args.out, formats, [str(p) for p in args.paths],
                         args.state_unit, args.spread)
    print(f"wrote {index} ({len(rep.figures)} figures, {len(rep.tables)} tables; "
          f"{len(rep.tables['failures'])} runs not completed)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:  # the analysis's warnings, one line each
        warnings.simplefilter("always", PoolingWarning)
        try:
            return {"summary": cmd_summary, "report": cmd_report}[args.command](args)
        except (FormatError, tables.TableError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        finally:
            for message in dict.fromkeys(str(w.message) for w in caught):  # each once
                print(f"warning: {message}", file=sys.stderr)


def main_exit() -> None:
    """Console-script entry point (`statex-analysis ...`)."""
    sys.exit(main())
