#!/usr/bin/env python3
"""Bit-for-bit comparison of two statex runs (results file + checkpoint), for
scripts/check_bit_identical.sh.

Compared exactly (same dtype, shape and bytes; NaN equal to NaN in the same place):
  results:    /curves/{step,loss,lr,grad_norm}, every dataset under /eval, the /statex attrs,
              the root attrs status, steps_done, arm;
  checkpoint: every dataset under /params, /optim and /model, and the root attr step.
Not compared: wall times, throughput, build info, the checkpoint's /trainer attrs (bookkeeping
whose encoding may change in a refactor; its effect shows in the curves of resumed runs).
Prints one line; exit code 0 when identical, 1 otherwise.
"""
import argparse
import sys

import h5py
import numpy as np


def datasets(f, group):
    out = {}
    if group not in f:
        return out
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[f"{group}/{name}"] = obj[()]
    f[group].visititems(visit)
    return out


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return a.tobytes() == b.tobytes()
    return np.array_equal(a, b)


def diff(base, new, what):
    bad = []
    for key in sorted(set(base) | set(new)):
        if key not in base or key not in new:
            bad.append(f"{what}{key}: only in {'baseline' if key in base else 'new'}")
        elif not same(base[key], new[key]):
            a, b = np.asarray(base[key]), np.asarray(new[key])
            detail = ""
            if a.shape == b.shape and a.dtype.kind == "f":
                d = np.abs(a.astype(np.float64) - b.astype(np.float64))
                detail = f" (max abs diff {np.nanmax(d):.3g}, {int(np.sum(a != b))} elements)"
            bad.append(f"{what}{key}{detail}")
    return bad


def results_items(path):
    with h5py.File(path, "r") as f:
        items = {k: v for k, v in datasets(f, "/curves").items()
                 if k.split("/")[-1] in ("step", "loss", "lr", "grad_norm")}
        items.update(datasets(f, "/eval"))
        if "statex" in f:
            items.update({f"/statex@{k}": v for k, v in f["statex"].attrs.items()})
        for k in ("status", "steps_done", "arm"):
            items[f"/@{k}"] = f.attrs.get(k)
        return items


def checkpoint_items(path):
    with h5py.File(path, "r") as f:
        items = {}
        for g in ("/params", "/optim", "/model"):
            items.update(datasets(f, g))
        items["/@step"] = f.attrs["step"]
        return items


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base_results")
    p.add_argument("new_results")
    p.add_argument("base_checkpoint")
    p.add_argument("new_checkpoint")
    p.add_argument("--label", default="")
    a = p.parse_args()
    bad = diff(results_items(a.base_results), results_items(a.new_results), "results ")
    bad += diff(checkpoint_items(a.base_checkpoint), checkpoint_items(a.new_checkpoint),
                "checkpoint ")
    with h5py.File(a.new_results, "r") as f:
        steps = int(f.attrs["steps_done"])
        loss = f["/curves/loss"][-1]
    with h5py.File(a.new_checkpoint, "r") as f:
        n = sum(v.size for k, v in datasets(f, "/params").items())
    if bad:
        print(f"{a.label:28s} DIFFERENT: " + "; ".join(bad[:6]) +
              (f" (+{len(bad) - 6} more)" if len(bad) > 6 else ""))
        return 1
    print(f"{a.label:28s} IDENTICAL  {steps} steps, final loss {loss:.6f}, {n} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
