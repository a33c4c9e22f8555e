"""Which machines and builds made a set of results: the /build attributes every results file
carries (CPU model and ISA, build flavour and flags, BLAS and its kernel, Eigen, OpenMP, glibc;
docs/reproducibility.md), grouped so that runs made alike share one row.

`python3 -m analysis summary PATH... --machines` prints this table; scripts/reproduce.sh writes
it into PROVENANCE.md."""
from __future__ import annotations

import collections
import os

import pandas as pd

from .sources import discover

# The /build attributes that decide a run's bits, in the order shown. Files written before they
# were recorded show "(not recorded)".
FIELDS = ("git_commit", "flavour", "cpu_model", "cpu_isa", "cxx_flags", "blas", "eigen",
          "openmp", "libc", "compiler", "omp_threads")
NOT_RECORDED = "(not recorded)"


def read_build(path: str | os.PathLike) -> dict[str, str]:
    """The provenance fields of one results file (or checkpoint)."""
    from .integrity import open_statex
    with open_statex(path) as f:
        attrs = f["build"].attrs if "build" in f else {}
        out = {}
        for name in FIELDS:
            value = attrs.get(name, NOT_RECORDED)
            out[name] = value.decode() if isinstance(value, bytes) else str(value)
        return out


def machines_table(paths) -> pd.DataFrame:
    """One row per distinct provenance, with the number of runs that share it; rows sorted so
    the table does not depend on the order the paths were given in."""
    counts: collections.Counter = collections.Counter()
    for entry in discover(paths):
        if entry.result_path and os.path.isfile(entry.result_path):
            counts[tuple(read_build(entry.result_path).items())] += 1
    rows = [{**dict(key), "runs": n} for key, n in counts.items()]
    table = pd.DataFrame(rows, columns=[*FIELDS, "runs"])
    return table.sort_values(list(FIELDS), kind="stable").reset_index(drop=True)


def machines_markdown(table: pd.DataFrame) -> str:
    """The table as a Markdown list (one block per provenance; the fields are too long for a
    table row)."""
    lines = []
    for i, row in enumerate(table.to_dict("records"), 1):
        lines.append(f"- provenance {i}: {row['runs']} result files")
        lines += [f"  - {name}: {row[name]}" for name in FIELDS]
    return "\n".join(lines)
