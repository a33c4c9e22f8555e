"""Turns command-line paths into a list of trials to read.

A path may be:
  * a results file (`run.h5`);
  * a sweep directory written by `statex sweep` (holds `index.csv` and `trials/<trial_id>.h5`);
  * a sweep index file (`index.csv`; result paths are relative to its directory);
  * any other directory: every `*.h5` below it (e.g. data/fixtures/, or `runs/` after the
    quickstart), except statex files that are not results (checkpoints, `statex eval` / `grad`
    output): those are skipped with a one-line note on stderr.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .io import RESULTS_FORMAT, FormatError

INDEX_NAME = "index.csv"
INDEX_REQUIRED_COLUMNS = ("trial_id", "status", "result_path")
INDEX_FIXED_COLUMNS = INDEX_REQUIRED_COLUMNS + ("error",)


@dataclass
class Entry:
    """One trial: a results file to read, and/or a row of a sweep index."""

    trial_id: str
    result_path: str | None               # absolute or cwd-relative; None when index has none
    sweep: str = ""                       # sweep directory ("" for a lone file)
    index_status: str = ""                # status column of index.csv ("" for a lone file)
    index_error: str = ""                 # error column of index.csv
    swept: dict[str, str] = field(default_factory=dict)  # swept option -> value (index columns)


def read_index(index_path: str | os.PathLike) -> list[Entry]:
    """Entries of one sweep index.csv. Raises FormatError naming a missing column."""
    index_path = Path(index_path)
    try:
        table = pd.read_csv(index_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise FormatError(str(index_path), None, f"not a readable CSV index: {err}") from err
    for column in INDEX_REQUIRED_COLUMNS:
        if column not in table.columns:
            raise FormatError(str(index_path), f"column '{column}'", "missing from sweep index")
    sweep_dir = index_path.parent
    swept_columns = [c for c in table.columns if c not in INDEX_FIXED_COLUMNS]
    entries = []
    for row in table.to_dict("records"):
        rel = row["result_path"].strip()
        entries.append(Entry(
            trial_id=row["trial_id"],
            result_path=str(sweep_dir / rel) if rel else None,
            sweep=str(sweep_dir),
            index_status=row["status"].strip(),
            index_error=row.get("error", "").strip(),
            swept={c: row[c] for c in swept_columns},
        ))
    return entries


def other_statex_format(path: Path) -> str:
    """The /@format of a statex-sim file that is not a results file ("statex-sim checkpoint",
    "statex-sim eval", ...); "" for results files and anything else (read_run judges those)."""
    from .integrity import open_statex  # never parse a damaged file: read_run names it
    try:
        with open_statex(path) as f:
            fmt = f.attrs.get("format", b"")
    except (FormatError, OSError):
        return ""
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    return fmt if fmt.startswith("statex-sim ") and fmt != RESULTS_FORMAT else ""


def discover(paths: list[str | os.PathLike] | str | os.PathLike) -> list[Entry]:
    """Expands files, sweep directories and index files into trial entries (input order kept)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    entries: list[Entry] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if (path / INDEX_NAME).is_file():
                entries += read_index(path / INDEX_NAME)
                continue
            files = sorted(path.rglob("*.h5"))
            if not files:
                raise FormatError(str(path), None, "directory holds no index.csv and no .h5 files")
            for f in files:
                other = other_statex_format(f)
                if other:
                    print(f"note: skipping {f} ({other}, not a results file)", file=sys.stderr)
                else:
                    entries.append(Entry(trial_id=f.stem, result_path=str(f)))
        elif path.suffix == ".csv":
            entries += read_index(path)
        elif path.exists():
            entries.append(Entry(trial_id=path.stem, result_path=str(path)))
        else:
            raise FormatError(str(path), None, "no such file or directory")
    return entries
