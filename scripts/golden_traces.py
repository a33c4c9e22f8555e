#!/usr/bin/env python3
"""Golden traces: short runs of every family whose bits are committed (tests/golden/*.json) and
checked by the test suite in the portable flavour (docs/reproducibility.md).

A trace holds, as float32 bit patterns, the train loss and global grad norm of every step, the
eval accuracy and loss of every evaluation, and the SHA-256 of the final parameters and AdamW
moments. A portable build of the same source must reproduce all of it bit for bit on any
x86-64-v3 machine with the same toolchain; a change that alters the arithmetic (a new summation
order, a flag) shows up as the first step whose bits differ.

  python3 scripts/golden_traces.py --write   # (re)make tests/golden/*.json with $STATEX_BIN
  python3 scripts/golden_traces.py           # check them, print the first difference per case
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "golden"

# A small common shape (T=64, K=4, V=256) at batch 16; 40 steps, evals at 0/20/40. Each case
# runs in a few seconds on one core.
def _common(threads: int = 1) -> list[str]:
    return ["--mqar.train", "64:4:2000", "--mqar.test", "64:4:200", "--train.steps", "40",
            "--train.batch_size", "16", "--train.warmup_steps", "5", "--train.eval_every", "20",
            "--train.target_accuracy", "0", "--train.lr", "1e-2", "--train.seed", "3",
            "--mqar.seed", "5", "--train.threads", str(threads)]


_COMMON = _common()
CASES: dict[str, list[str]] = {
    "gla": ["--config", "experiments/quickstart.ini", *_COMMON],
    "mamba2": ["--config", "experiments/quickstart_mamba2.ini", *_COMMON],
    "gated_deltanet": ["--config", "experiments/quickstart.ini", "--model.model", "gated_deltanet",
                       *_COMMON],
    "attention": ["--config", "experiments/quickstart.ini", "--model.model", "attention",
                  "--model.heads", "4", *_COMMON],
    # Two threads: the parallel reductions must be fixed-order too.
    "gla_2threads": ["--config", "experiments/quickstart.ini", *_common(threads=2)],
    # A StateX expansion mid-run (head merge, schedule restart, optimizer moments carried over).
    "gla_statex": ["--config", "experiments/quickstart.ini", *_COMMON, "--statex.arm", "statex",
                   "--statex.step", "20"],
    "mamba2_statex": ["--config", "experiments/quickstart_mamba2.ini", *_COMMON, "--statex.arm",
                      "statex", "--statex.step", "20"],
}


def _bits(values) -> list[str]:
    """float32 values as 8-hex-digit bit patterns (exact, and readable in a diff)."""
    a = np.asarray(values, dtype=np.float32).ravel()
    return [f"{int(u):08x}" for u in a.view(np.uint32)]


def _checkpoint_sha256(ck: h5py.File) -> str:
    """SHA-256 over every tensor of a checkpoint (parameters and AdamW moments), by name."""
    names: list[str] = []
    ck.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    h = hashlib.sha256()
    for name in sorted(n for n in names if n != "attr_digests"):  # digests cover wall times
        h.update(name.encode())
        h.update(np.ascontiguousarray(ck[name][()]).tobytes())
    return h.hexdigest()


def flavour(results: h5py.File) -> str:
    b = results["build"].attrs
    return str(b["flavour"]) if "flavour" in b else "unknown (written before flavours)"


def run_case(binary: str, name: str, workdir: Path, prefix: tuple[str, ...] = ()) -> dict:
    """Runs case `name`; `prefix` runs the binary through another program (an emulator)."""
    out, ck = workdir / f"{name}.h5", workdir / f"{name}_ck.h5"
    cmd = [*prefix, binary, "train", *CASES[name], "--out", str(out), "--checkpoint-out", str(ck)]
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: statex train exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    with h5py.File(out, "r") as f, h5py.File(ck, "r") as c:
        b = f["build"].attrs
        trace = {
            "case": name,
            "args": CASES[name],
            "made_by": {k: str(b[k]) for k in ("git_commit", "flavour", "cxx_flags", "cpu_model",
                                                "cpu_isa", "blas", "libc", "compiler") if k in b},
            "flavour": flavour(f),
            "step": [int(s) for s in f["curves/step"][()]],
            "loss": _bits(f["curves/loss"][()]),
            "grad_norm": _bits(f["curves/grad_norm"][()]),
            "eval_step": [int(s) for s in f["eval/step"][()]],
            "eval_accuracy": _bits(f["eval/accuracy"][()]),
            "eval_loss": _bits(f["eval/loss"][()]),
            "params_sha256": _checkpoint_sha256(c),
        }
    return trace


def first_difference(golden: dict, got: dict) -> str | None:
    """The first field / index whose bits differ, in the order a run produces them."""
    for key in ("step", "eval_step"):
        if golden[key] != got[key]:
            return f"{key}: {golden[key]} vs {got[key]}"
    # Interleave by step so the message names the earliest divergence.
    for i, step in enumerate(golden["step"]):
        for key in ("loss", "grad_norm"):
            if golden[key][i] != got[key][i]:
                g = np.uint32(int(golden[key][i], 16)).view(np.float32)
                o = np.uint32(int(got[key][i], 16)).view(np.float32)
                return f"{key} at step {step}: {g!r} (0x{golden[key][i]}) vs {o!r} (0x{got[key][i]})"
    for key in ("eval_accuracy", "eval_loss"):
        if golden[key] != got[key]:
            i = next(j for j, (a, b) in enumerate(zip(golden[key], got[key])) if a != b)
            return f"{key} at eval step {golden['eval_step'][i]}: 0x{golden[key][i]} vs 0x{got[key][i]}"
    if golden["params_sha256"] != got["params_sha256"]:
        return "final parameters / AdamW moments (SHA-256) differ"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="write tests/golden/*.json instead of checking")
    ap.add_argument("--bin", default=os.environ.get("STATEX_BIN", str(ROOT / "build" / "statex")),
                    help="the statex binary (default $STATEX_BIN or build/statex)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    ap.add_argument("--emulate", metavar="CPU", default="",
                    help="check under `qemu-x86_64 -cpu CPU` (e.g. Haswell, EPYC): another CPU "
                         "model, its cpuid, cache sizes and glibc dispatch, on this machine")
    args = ap.parse_args()
    names = [c for c in args.cases.split(",") if c]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        ap.error(f"--cases: unknown {', '.join(unknown)}; choose from {', '.join(CASES)}")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            prefix = ("qemu-x86_64", "-cpu", args.emulate) if args.emulate else ()
            got = run_case(args.bin, name, Path(tmp), prefix)
            if got["flavour"] != "portable":
                print(f"{name}: the binary is the {got['flavour']} flavour; golden traces are made "
                      "and checked with the portable one (cmake -DSTATEX_FLAVOUR=portable)",
                      file=sys.stderr)
                return 2
            path = GOLDEN_DIR / f"{name}.json"
            if args.write:
                GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(got, indent=1) + "\n")
                print(f"{name}: wrote {path.relative_to(ROOT)}")
                continue
            diff = first_difference(json.loads(path.read_text()), got)
            where = f" (on {got['made_by'].get('cpu_model', '?')})"
            print(f"{name}: {'identical' if diff is None else 'DIFFERS: ' + diff}{where}")
            failed += diff is not None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
