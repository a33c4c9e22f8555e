#!/usr/bin/env python3
"""Train-step throughput of statex-sim's CPU path vs the PyTorch reference (tests/torch).

For each config: the median step time of ours (`statex bench --preset NAME`: forward + backward
+ grad norm + AdamW on one MQAR batch) and of the PyTorch reference's step (forward + backward +
clip_grad_norm_ + AdamW, float32) on the same model config, batch shape and number of labelled
positions, with the same thread count (OMP / torch.set_num_threads). Each measurement runs in its
own subprocess so its peak RSS (ru_maxrss from os.wait4 on that child) is its own. Each side is
measured --repeats times (default 3), alternating ours / torch so both see the same phases of a
shared machine; the table uses each side's fastest measurement (noise on a shared VM only adds
time) and shows the range of all of them.

Prints tokens/s for both and the ratio, peak RSS for both (the driver imports only the standard
library, so a child's ru_maxrss, which Linux seeds with the forking process's RSS, is its own),
the RSS of a bare `import torch` process (part of every torch number), and model GFLOP/s
against an SGEMM peak measured here with torch.matmul and numpy at 2048^3 (the higher of the
two), before and after the configs (the higher of the two runs: one measurement can land in a
slow phase of a shared machine). Progress goes to stderr, the table to stdout at the end.

FLOPs per step (the formula of `statex bench`, docs in sim/cli/cmd_bench.cpp): 3 x forward, with
forward = B*T * sum over layers of (projections 2*in*out, conv 2*W*C, recurrence 4*state;
attention: scores and weighted sum 2*D*(T+1), the causal half of 4*D*T) plus
the LM head 2*D*V per labelled position. Norms and elementwise ops are not counted.

    python3 experiments/bench/bench_vs_torch.py [--threads N] [--steps S] [--configs a,b]
        [--repeats R]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]

# name -> (model, D, V, T, K, B); 2 layers, no MLP, short conv on (our defaults). Same presets as
# `statex bench` (sim/cli/cmd_bench.cpp), which also fixes GLA heads = max(1, D // 64).
CONFIGS = {
    "quickstart-gla": ("gla", 64, 256, 64, 4, 64),
    "quickstart-mamba2": ("mamba2", 64, 256, 64, 4, 64),
    "gla-d128": ("gla", 128, 8192, 256, 16, 64),
    "mamba2-d128": ("mamba2", 128, 8192, 256, 16, 64),
    "gla-d256": ("gla", 256, 8192, 512, 16, 64),
    "mamba2-d256": ("mamba2", 256, 8192, 512, 16, 64),
    "quickstart-attention": ("attention", 64, 256, 64, 4, 64),
    "attention-d128": ("attention", 128, 8192, 256, 16, 64),
    "attention-d256": ("attention", 256, 8192, 512, 16, 64),
}


def model_config(name: str):
    sys.path.insert(0, str(REPO / "tests" / "torch"))
    import statex_ref as ref

    model, D, V, T, K, B = CONFIGS[name]
    cfg = ref.ModelConfig(model=model, d_model=D, vocab_size=V, n_layers=2, mlp=False,
                          heads=max(1, D // 64))
    return ref, cfg, T, K, B


def step_flops(name: str) -> float:
    """Model FLOPs of one train step. Plain arithmetic on purpose: the driver process must not
    import torch, or every child's ru_maxrss would include the driver's RSS at fork time."""
    model, D, V, T, K, B = CONFIGS[name]
    W, layers = 4, 2  # our defaults: conv width 4, short conv on
    if model == "attention":  # q, k, v, o projections; causal QK^T and PV: (T+1)/2 keys per query
        per_layer = 8 * D * D + 2 * W * 3 * D + 2 * D * (T + 1)
    elif model == "mamba2":
        di, N, G, P = 2 * D, 16, 1, 16  # expand 2, d_state 16, 1 group, head_dim 16
        H, conv_dim = di // P, di + 2 * G * N
        in_dim = di + conv_dim + H
        per_layer = 2 * D * in_dim + 2 * di * D + 2 * W * conv_dim + 4 * H * P * N
    else:
        Dk, Dv, r, H = D // 2, D, 16, max(1, D // 64)  # expand_k 0.5, expand_v 1, rank 16
        per_layer = (2 * D * (2 * Dk + 3 * Dv) + 2 * r * (D + Dk) + 4 * Dk * Dv / H
                     + 2 * W * (2 * Dk + Dv))
    labelled = B * K  # one label per query, K queries per example
    return 3.0 * (layers * per_layer * B * T + 2.0 * D * V * labelled)


# ----------------------------------------------------------------------------- workers


def torch_worker(name: str, steps: int, threads: int, chunk: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ref, cfg, T, K, B = model_config(name)
    model = ref.LanguageModel(cfg, chunk=chunk)
    with torch.no_grad():  # init like ours where it shapes the recurrence (decays, dt)
        for mod in model.modules():
            if isinstance(mod, ref.Mamba2):
                mod.A_log.copy_(torch.empty_like(mod.A_log).uniform_(1, 16).log())
                dt = torch.empty_like(mod.dt_bias).uniform_(-6.9078, -2.3026).exp().clamp(min=1e-4)
                mod.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        model.body.token_embedding.weight.normal_(0, 0.02)
    # An MQAR-shaped batch: K labelled query positions per example in the query region.
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
    labels = torch.full((B, T), ref.IGNORE_LABEL)
    for b in range(B):
        pos = 2 * K + 2 * torch.randperm((T - 2 * K) // 2, generator=g)[:K]
        labels[b, pos] = torch.randint(cfg.vocab_size // 2, cfg.vocab_size, (K,), generator=g)
    opt = torch.optim.AdamW(ref.weight_decay_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.95),
                            eps=1e-8)

    def one_step():
        opt.zero_grad(set_to_none=True)
        _, loss = model.loss_at_labels(tokens, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    one_step()  # warm-up
    times = []
    for _ in range(steps):  # median step time, as `statex bench` reports
        t = time.perf_counter()
        one_step()
        times.append(time.perf_counter() - t)
    step_s = statistics.median(times)
    return {"step_s": step_s, "tokens_per_s": B * T / step_s, "threads": torch.get_num_threads()}


def torch_import_worker() -> dict:
    import torch  # noqa: F401

    return {}


def peak_worker(threads: int, n: int = 2048) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    a = torch.full((n, n), 0.01)
    best = 1e30
    for _ in range(4):
        t = time.perf_counter()
        torch.mm(a, a)
        best = min(best, time.perf_counter() - t)
    x = np.full((n, n), 0.01, np.float32)
    best_np = 1e30
    for _ in range(3):
        t = time.perf_counter()
        x @ x
        best_np = min(best_np, time.perf_counter() - t)
    return {"torch_gflops": 2 * n**3 / best / 1e9, "numpy_gflops": 2 * n**3 / best_np / 1e9}


# ----------------------------------------------------------------------------- driver


def run_child(cmd: list[str], env: dict) -> tuple[str, float]:
    """Runs cmd; returns (stdout, peak RSS in MiB of that child alone)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(p.pid, 0)  # reap it ourselves to get its own rusage
        p.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        if code != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{text}\n{err.read()}")
    return text, usage.ru_maxrss / 1024.0  # Linux: KiB


def self_cmd(*args: str) -> list[str]:
    return [sys.executable, str(pathlib.Path(__file__).resolve()), *args]


def ours(statex: str, name: str, steps: int, threads: int, env: dict) -> dict:
    out, rss = run_child([statex, "bench", "--preset", name, "--steps", str(steps),
                          "--train.threads", str(threads), "--peak-n", "256"], env)
    row = next(line for line in out.splitlines() if line.startswith(name + " "))
    cols = row.split()
    return {"step_s": float(cols[7]) / 1e3, "tokens_per_s": float(cols[8]),
            "gflops": float(cols[9]), "rss_mib": rss}


def fastest(runs: list[dict]) -> dict:
    return dict(min(runs, key=lambda r: r["step_s"]))


def spread(runs: list[dict]) -> str:
    tps = sorted(r["tokens_per_s"] for r in runs)
    return f"{tps[0]:.0f}-{tps[-1]:.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=3, help="timed steps (quickstart configs: 5x)")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--repeats", type=int, default=3,
                    help="measurements per side and config, alternating ours / torch; the table "
                         "uses each side's fastest (a shared machine only ever adds time)")
    ap.add_argument("--torch-chunk", type=int, default=16, help="chunk length of the torch scans")
    ap.add_argument("--statex-bin", default=os.environ.get("STATEX_BIN", str(REPO / "build" / "statex")))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:  # child process: print one JSON line
        kind, _, name = args.worker.partition(":")
        if kind == "torch":
            res = torch_worker(name, args.steps, args.threads, args.torch_chunk)
        elif kind == "import":
            res = torch_import_worker()
        else:
            res = peak_worker(args.threads)
        print(json.dumps(res))
        return 0

    names = args.configs.split(",")
    for n in names:
        if n not in CONFIGS:
            ap.error(f"--configs: unknown config {n!r} (known: {', '.join(CONFIGS)})")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    t_arg = ["--threads", str(args.threads)]

    def measure_peak() -> float:  # the machine's best measured SGEMM (torch's or numpy's)
        out, _ = run_child(self_cmd("--worker", "peak", *t_arg), env)
        p = json.loads(out.strip().splitlines()[-1])
        return max(p["torch_gflops"], p["numpy_gflops"])

    # The peak is measured before and after the configs and the higher one is used: on a shared
    # VM a single measurement can land in a slow phase and inflate every "% of peak" figure.
    peak_before = measure_peak()
    _, import_rss = run_child(self_cmd("--worker", "import:", *t_arg), env)
    load = os.getloadavg()
    rows = []
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    for name in names:
        steps = args.steps * (5 if name.startswith("quickstart") else 1)
        o_runs, t_runs = [], []
        for _ in range(args.repeats):  # alternate, so both sides see the same phases of the VM
            o_runs.append(ours(args.statex_bin, name, steps, args.threads, env))
            t_out, t_rss = run_child(self_cmd("--worker", "torch:" + name, "--steps", str(steps),
                                              "--torch-chunk", str(args.torch_chunk), *t_arg), env)
            t_runs.append(dict(json.loads(t_out.strip().splitlines()[-1]), rss_mib=t_rss))
        o, t = fastest(o_runs), fastest(t_runs)
        rows.append((name, o, t, max(r["rss_mib"] for r in t_runs)))
        o["rss_mib"] = max(r["rss_mib"] for r in o_runs)
        o["spread"], t["spread"] = spread(o_runs), spread(t_runs)
        print(f"[{len(rows)}/{len(names)}] {name}: ours {o['tokens_per_s']:.0f} tok/s, "
              f"torch {t['tokens_per_s']:.0f} tok/s (fastest of {args.repeats} each; tok/s "
              f"spread ours {o['spread']}, torch {t['spread']})", file=sys.stderr, flush=True)
    peak_after = measure_peak()
    pk = max(peak_before, peak_after)

    print(f"{args.repeats} alternating measurements per side and config, each a median step "
          f"time; the table shows each side's fastest, peak RSS the largest")
    print(f"{args.threads} threads; SGEMM 2048^3 peak (best of torch and numpy): "
          f"{peak_before:.1f} GFLOP/s before the configs, {peak_after:.1f} after; %pk uses "
          f"{pk:.1f}; load average {load[0]:.1f} (a loaded machine slows both sides)")
    print(f"RSS of a process that only imports torch: {import_rss:.0f} MiB (included in torch RSS)")
    hdr = (f"{'config':18s} {'ours tok/s':>11s} {'torch tok/s':>11s} {'ratio':>6s} "
           f"{'ours GF/s':>9s} {'torch GF/s':>10s} {'ours %pk':>8s} {'torch %pk':>9s} "
           f"{'ours RSS':>9s} {'torch RSS':>9s} {'ours tok/s range':>17s} "
           f"{'torch tok/s range':>17s}")
    print(hdr)
    for name, o, t, t_rss in rows:
        flops = step_flops(name)
        o_gf, t_gf = flops / o["step_s"] / 1e9, flops / t["step_s"] / 1e9
        print(f"{name:18s} {o['tokens_per_s']:11.0f} {t['tokens_per_s']:11.0f} "
              f"{o['tokens_per_s'] / t['tokens_per_s']:6.2f} {o_gf:9.2f} {t_gf:10.2f} "
              f"{100 * o_gf / pk:7.1f}% {100 * t_gf / pk:8.1f}% {o['rss_mib']:6.0f}MiB "
              f"{t_rss:6.0f}MiB {o['spread']:>17s} {t['spread']:>17s}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
