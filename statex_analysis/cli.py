"""Command line: `python3 -m analysis summary|report|export-tensorboard|export-wandb PATH...`,
`export-safetensors CK.h5 --out DIR`, `import-safetensors DIR --out CK.h5`.

Exit codes: 0 ok, 1 a file could not be read (FormatError: file and field printed) or a bad
table request, 2 bad usage (argparse), a damaged input file (integrity.IntegrityError: the file
and the damaged object printed), a checkpoint / model directory that cannot be converted, or an
output path that must not or cannot be written (nothing written)."""
from __future__ import annotations

import argparse
import sys
import warnings

from . import lr_select, state_conventions, tables
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
                   help="state size convention: recurrent (recurrent state only; default), "
                        "recurrent+conv (plus the (W-1) x channels conv state) or zoology "
                        "(Zoology's own state_size() per family: GLA counts W x channels of its "
                        "short convs, Mamba2 2*D*N and Gated DeltaNet H*K*V no conv; "
                        "docs/design.md); tables, axis labels and the report index say which")
    p.add_argument("--keep-going", action="store_true",
                   help="list unreadable files as runs with status 'unreadable' instead of "
                        "stopping at the first one")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m analysis", allow_abbrev=False,
                                     description="Read statex-sim results files and sweeps; "
                                                 "move checkpoints and runs to PyTorch, "
                                                 "TensorBoard and W&B.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="print one row per trial")
    _common(s)
    s.add_argument("--group-by", default="", metavar="KEY[,KEY...]",
                   help="sort rows by these columns and print per-group counts and accuracy")
    s.add_argument("--csv", action="store_true", help="print CSV instead of a text table")
    s.add_argument("--machines", action="store_true",
                   help="print instead which machines and builds made the runs: one row per "
                        "distinct CPU / ISA / flavour / flags / BLAS / OpenMP / glibc, with counts")
    r = sub.add_parser("report", help="write figures, tables and index.md")
    _common(r)
    r.add_argument("--out", required=True, metavar="DIR", help="output directory")
    r.add_argument("--spread", choices=tables.SPREADS, default="ci",
                   help="figure bands over seeds: ci = median and its order-statistic "
                        "interval (default; coverage >= 95%%, or [min, max] at its real "
                        "coverage when the seeds are too few, as the titles say), minmax = "
                        "median and min-max, std = mean ± 1 sample std")
    r.add_argument("--formats", default="png,svg", help="figure formats (default png,svg)")
    r.add_argument("--dpi", type=_positive_int, default=110,
                   help="resolution of the PNG figures in dots per inch (default 110)")

    e = sub.add_parser("export-safetensors",
                       help="checkpoint -> model.safetensors + config.json (fla GLA / GatedDeltaNet / "
                            "Transformer, transformers Mamba2 names; docs/pytorch_names.md)")
    e.add_argument("checkpoint", metavar="CK.h5", help="statex checkpoint (train, expand)")
    e.add_argument("--out", required=True, metavar="DIR", help="output model directory")
    e.add_argument("--overwrite", action="store_true", help="replace existing files in DIR")
    i = sub.add_parser("import-safetensors",
                       help="model.safetensors + config.json -> statex checkpoint (for eval, "
                            "expand, train --init-from)")
    i.add_argument("model_dir", metavar="DIR", help="directory with model.safetensors and "
                                                     "config.json")
    i.add_argument("--out", required=True, metavar="CK.h5", help="checkpoint to write")
    i.add_argument("--overwrite", action="store_true", help="replace CK.h5 if it exists")
    for name, what in (("export-tensorboard", "TensorBoard event files, one folder per run"),
                       ("export-wandb", "offline Weights & Biases runs (upload: wandb sync)")):
        t = sub.add_parser(name, help=f"results -> {what}: config, curves, evals, StateX event")
        t.add_argument("paths", nargs="+", metavar="PATH", help="results files or sweep folders")
        t.add_argument("--out", required=True, metavar="DIR", help="output directory")
        t.add_argument("--keep-going", action="store_true",
                       help="skip unreadable files instead of stopping at the first one")
        if name == "export-wandb":
            t.add_argument("--project", default="statex-sim", help="W&B project name")
        t.add_argument("--overwrite", action="store_true",
                       help="replace the runs a previous export wrote (found by their stable run "
                            "id); without it they are refused before anything is written")
    for subparser in sub.choices.values():  # `--out` only as spelled: no `--ou`, `--sp`
        subparser.allow_abbrev = False
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _load(args):
    records = read_records(args.paths, strict=not args.keep_going)
    for rec in records:  # every table and figure reads state_scalars (and the StateX sizes)
        state_conventions.apply(rec.row, args.state)
    runs = tables.use_state_convention(runs_frame(records), args.state)
    if args.where:
        keep = set(tables.filter_runs(runs, args.where)["run"])
        records = [r for r in records if r.row["run"] in keep]
        runs = runs[runs["run"].isin(keep)].reset_index(drop=True)
    return records, runs


def cmd_summary(args) -> int:
    if args.machines:
        from .provenance import machines_table
        table = machines_table(args.paths)
        if args.csv:
            sys.stdout.write(table.to_csv(index=False))
        else:
            for i, row in enumerate(table.to_dict("records"), 1):
                print(f"provenance {i} ({row.pop('runs')} runs)")
                print("\n".join(f"  {k:<11} {v}" for k, v in row.items()))
        return 0
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
    selection = lr_select.selection_table(runs, args.state_unit)  # sweeps with an lr axis
    if not selection.empty:
        print("\nLearning-rate selection (per group of runs differing only in train.lr and the "
              "seeds; docs/analysis.md):")
        print(tables.to_text(tables.presentable(selection)))
        print(selection.attrs["caption"])
    if keys:
        print(f"\nGrouped by {', '.join(keys)}:")
        print(tables.to_text(tables.group_table(runs, keys)))
    return 0


def cmd_report(args) -> int:
    from .outputs import check_output_dir
    from .report import build_report, write_report  # matplotlib only when needed
    check_output_dir(args.out)  # a file there, or an unwritable directory: before any work
    records, _ = _load(args)
    rep = build_report(records, args.state_unit, args.spread)
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    index = write_report(rep, args.out, formats, [str(p) for p in args.paths],
                         args.state_unit, args.spread, dpi=args.dpi, convention=args.state)
    print(f"wrote {index} ({len(rep.figures)} figures, {len(rep.tables)} tables; "
          f"{len(rep.tables['failures'])} runs not completed)")
    return 0


def cmd_export_safetensors(args) -> int:
    from .safetensors_io import export_safetensors
    result = export_safetensors(args.checkpoint, args.out, overwrite=args.overwrite)
    for line in result.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(f"wrote {result.weights} ({result.n_tensors} tensors) and {result.config}")
    return 0


def cmd_import_safetensors(args) -> int:
    from .safetensors_io import import_safetensors, train_options
    out, options = import_safetensors(args.model_dir, args.out, overwrite=args.overwrite)
    model = train_options(options) or "(the default model options)"
    print(f"wrote {out}\ntrain on with: statex train --init-from {out} {model} [other options]")
    return 0


def cmd_export_tracking(args) -> int:
    from . import tracking
    records = [r for r in read_records(args.paths, strict=not args.keep_going) if r.data]
    if args.command == "export-tensorboard":
        written = tracking.export_tensorboard(records, args.out, args.overwrite)
        print(f"wrote {len(written)} runs under {args.out} (view: tensorboard --logdir "
              f"{args.out})")
    else:
        written = tracking.write_wandb(records, args.out, args.project, args.overwrite)
        print(f"wrote {len(written)} offline W&B runs under {args.out}/wandb (upload: wandb sync "
              f"{args.out}/wandb/offline-run-*)")
    return 0


COMMANDS = {"summary": cmd_summary, "report": cmd_report,
            "export-safetensors": cmd_export_safetensors,
            "import-safetensors": cmd_import_safetensors,
            "export-tensorboard": cmd_export_tracking, "export-wandb": cmd_export_tracking}


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .outputs import OutputError
    args = make_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:  # the analysis's warnings, one line each
        warnings.simplefilter("always", PoolingWarning)
        try:
            return COMMANDS[args.command](args)
        except (CheckpointError, FileExistsError, OutputError) as err:
            # a damaged input file (IntegrityError) is a CheckpointError too: exit 2
            option = "--out" if isinstance(err, (FileExistsError, OutputError)) else "input"
            print(f"error ({option}): {err}", file=sys.stderr)
            return 2
        except (FormatError, tables.TableError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        finally:
            for message in dict.fromkeys(str(w.message) for w in caught):  # each once
                print(f"warning: {message}", file=sys.stderr)


def main_exit() -> None:
    """Console-script entry point (`statex-analysis ...`)."""
    sys.exit(main())
