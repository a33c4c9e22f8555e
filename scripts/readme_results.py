#!/usr/bin/env python3
"""Puts the tables, figures and provenance of one `scripts/reproduce.sh` output folder into the
README, so that every canonical number there comes from that one run.

The README marks each generated block:
    <!-- reproduce:NAME -->
    ...replaced...
    <!-- /reproduce:NAME -->
NAME is a table of OUT/report/tables (accuracy_vs_state, statex_arms, statex_differences, ...) or
`provenance` (OUT/PROVENANCE.md without its title). The figures of OUT/report/figures are copied
to --figures. Nothing is written unless every marked block can be filled.

Usage: python3 scripts/readme_results.py OUT [--readme README.md] [--figures docs/figures/canonical]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

BLOCK = re.compile(r"(<!-- reproduce:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /reproduce:(?P=name) -->)",
                   re.S)


class MissingOutput(Exception):
    """A marked block whose file the reproduction folder does not have."""


def source(out: Path, name: str) -> Path:
    """The file that fills block NAME."""
    return out / "PROVENANCE.md" if name == "provenance" else out / "report" / "tables" / f"{name}.md"


def block_text(out: Path, name: str) -> str:
    if name == "provenance":
        lines = source(out, name).read_text().splitlines()
        # Its title is dropped and its own headings become bold lines: the README's outline stays.
        lines = [f"**{l[3:].strip()}**" if l.startswith("## ") else l
                 for l in lines if not l.startswith("# ")]
        return "\n".join(lines).strip() + "\n"
    return source(out, name).read_text().rstrip() + "\n"


def fill(readme: str, out: Path) -> tuple[str, list[str]]:
    """README text with every marked block replaced; the names filled, in order."""
    names = [m["name"] for m in BLOCK.finditer(readme)]
    missing = [n for n in names if not source(out, n).is_file()]
    if missing:
        raise MissingOutput(f"readme_results.py: {out} has no output for block(s) {', '.join(missing)}"
                         " (run scripts/reproduce.sh into that folder first)")
    text = BLOCK.sub(lambda m: m.group(1) + block_text(out, m["name"]) + m.group(4), readme)
    return text, names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="output folder of scripts/reproduce.sh")
    ap.add_argument("--readme", type=Path, default=Path("README.md"))
    ap.add_argument("--figures", type=Path, default=Path("docs/figures/canonical"))
    args = ap.parse_args(argv)
    if not (args.out / "PROVENANCE.md").is_file():
        print(f"readme_results.py: {args.out}/PROVENANCE.md not found: OUT must be a folder "
              "written by scripts/reproduce.sh", file=sys.stderr)
        return 2
    try:
        text, names = fill(args.readme.read_text(), args.out)
    except MissingOutput as e:
        print(e, file=sys.stderr)
        return 2
    if not names:
        print(f"readme_results.py: {args.readme} has no <!-- reproduce:NAME --> blocks",
              file=sys.stderr)
        return 2
    # Atomic replace: a failure leaves the README as it was.
    fd, tmp = tempfile.mkstemp(dir=args.readme.parent, prefix=".readme.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, args.readme)
    args.figures.mkdir(parents=True, exist_ok=True)
    figures = sorted((args.out / "report" / "figures").glob("*.png"))
    for fig in figures:
        shutil.copy2(fig, args.figures / fig.name)
    print(f"{args.readme}: filled {', '.join(names)}; {len(figures)} figures -> {args.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
