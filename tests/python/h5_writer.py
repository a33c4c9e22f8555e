"""Writes synthetic results files and sweep directories with the layout of
docs/results_format.md (format_version 1), for the analysis tests. Not part of the package."""
from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np

STR = h5py.string_dtype("utf-8")


def gla_layer_state(d_model: int, heads: int, expand_k=0.5, expand_v=1.0) -> int:
    """docs/design.md §1: Dk·Dv/H scalars per layer."""
    return int(expand_k * d_model) * int(expand_v * d_model) // heads


def mamba2_layer_state(d_model: int, d_state: int, expand=2) -> int:
    """docs/design.md §1: d_inner·N scalars per layer."""
    return expand * d_model * d_state


def _str_attr(obj, name, value):
    obj.attrs.create(name, str(value), dtype=STR)


def write_run(path, *, model="gla", d_model=64, n_layers=2, heads=2, d_state=16, lr=3e-3,
              seed=0, arm="", status="completed", failure_reason="",
              eval_steps=(0, 100, 200), eval_acc=(0.1, 0.5, 0.4),
              segments=("64:4:100", "128:8:100"), gap_edges=(0, 4, 16),
              gap_acc=None, statex=None, extra_config=None, fmt="statex-sim results",
              format_version=1, drop=(), plateau=None, valid_acc=None):
    """One results file. `drop` lists paths ('/eval/accuracy', '/@format_version',
    '/model/@state_scalars', ...) to leave out, for the bad-file tests. `plateau`: dict with
    num_kv, threshold, escape_step written as the root attrs of the C++ writer (None: a file
    from before it wrote them). `valid_acc`: validation accuracies at the eval steps (a /valid
    group as the C++ writer's, and mqar.valid in /config); None: no validation split."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    per_layer = (gla_layer_state(d_model, heads) if model == "gla"
                 else mamba2_layer_state(d_model, d_state))
    layer_state = np.full(n_layers, per_layer, dtype=np.int64)
    if statex is not None:  # the final model is the expanded one
        layer_state[statex.get("layers", [0])] *= statex.get("mult", 2)
    eval_steps = np.asarray(eval_steps, dtype=np.int64)
    eval_acc = np.asarray(eval_acc, dtype=np.float32)
    n_eval = len(eval_steps)
    config = {"model.model": model, "model.d_model": str(d_model), "model.n_layers": str(n_layers),
              "model.heads": str(heads), "model.d_state": str(d_state), "train.lr": repr(lr),
              "train.seed": str(seed), "statex.arm": arm, "train.steps": str(int(eval_steps[-1])),
              "mqar.test": ",".join(segments)}
    if statex is not None:
        config.update({"statex.step": str(statex["step"]), "statex.mode": statex["mode"],
                       "statex.count": str(len(statex.get("layers", [0])))})
    if valid_acc is not None:
        config["mqar.valid"] = ",".join(segments)
    config.update(extra_config or {})

    with h5py.File(path, "w") as f:
        root = {"format": fmt, "format_version": format_version, "status": status,
                "failure_reason": failure_reason, "arm": arm}
        for name, value in root.items():
            if f"/@{name}" in drop:
                continue
            if isinstance(value, str):
                _str_attr(f, name, value)
            else:
                f.attrs[name] = np.int64(value)
        if plateau is not None:
            f.attrs["plateau_num_kv"] = np.int64(plateau["num_kv"])
            f.attrs["plateau_threshold"] = np.float64(plateau["threshold"])
            f.attrs["escape_step"] = np.int64(plateau["escape_step"])
        f.attrs["wall_time_s"] = 1.5
        f.attrs["steps_done"] = np.int64(eval_steps[-1])
        f.attrs["tokens_seen"] = np.int64(eval_steps[-1] * 64 * 64)
        if n_eval:
            f.attrs["final_accuracy"] = float(eval_acc[-1])
            f.attrs["best_accuracy"] = float(eval_acc.max())
            f.attrs["best_step"] = np.int64(eval_steps[int(eval_acc.argmax())])
        cfg = f.create_group("config")
        for k, v in config.items():
            _str_attr(cfg, k, v)
        cfg.create_dataset("ini", data="; synthetic\n", dtype=STR)
        m = f.create_group("model")
        _str_attr(m, "model", model)
        m.attrs["n_params"] = np.int64(1000 * d_model)
        if "/model/@state_scalars" not in drop:
            m.attrs["state_scalars"] = np.int64(layer_state.sum())
        m.attrs["state_bytes"] = np.int64(4 * layer_state.sum())
        m.attrs["conv_state_scalars"] = np.int64(12 * d_model)
        m.attrs["conv_state_bytes"] = np.int64(48 * d_model)
        m.create_dataset("layer_state_scalars", data=layer_state)
        m.create_dataset("layer_state_bytes", data=4 * layer_state)

        steps = np.arange(10, int(eval_steps[-1]) + 1, 10, dtype=np.int64)
        curves = {"step": steps, "loss": np.linspace(5, 1, len(steps)).astype(np.float32),
                  "lr": np.full(len(steps), lr, np.float32),
                  "grad_norm": np.ones(len(steps), np.float32),
                  "tokens_per_s": np.full(len(steps), 1e5, np.float32)}
        segment_acc = np.stack([eval_acc * (1.0 - 0.1 * j) for j in range(len(segments))], axis=1)
        if gap_acc is None:  # recall falls with distance
            gap_acc = np.stack([eval_acc * (1.0 - 0.2 * b) for b in range(len(gap_edges))], axis=1)
        evals = {"step": eval_steps, "loss": (1 - eval_acc).astype(np.float32),
                 "accuracy": eval_acc, "segment_accuracy": segment_acc.astype(np.float32),
                 "gap_accuracy": np.asarray(gap_acc, np.float32).reshape(n_eval, len(gap_edges)),
                 "gap_count": np.full((n_eval, len(gap_edges)), 50, np.int64),
                 "gap_bucket_edges": np.asarray(gap_edges, np.int64)}
        for group, data in (("curves", curves), ("eval", evals)):
            if f"/{group}" in drop:
                continue
            for name, value in data.items():
                if f"/{group}/{name}" not in drop:
                    f.create_dataset(f"{group}/{name}", data=value)
        if not {"/eval", "/eval/segment_accuracy"} & set(drop):
            _str_attr(f["eval/segment_accuracy"], "segments", ",".join(segments))
        if valid_acc is not None:
            v = f.create_group("valid")
            valid_acc = np.asarray(valid_acc, dtype=np.float32)
            best = int(np.argmax(valid_acc))
            _str_attr(v, "split", "valid")
            v.attrs["data_seed"] = np.uint64(1)
            v.attrs["best_accuracy"] = np.float32(valid_acc[best])
            v.attrs["best_step"] = np.int64(eval_steps[best])
            v.attrs["final_accuracy"] = np.float32(valid_acc[-1])
            v.attrs["test_accuracy_at_best"] = np.float32(eval_acc[best])
            v.create_dataset("step", data=eval_steps)
            v.create_dataset("loss", data=(1 - valid_acc).astype(np.float32))
            v.create_dataset("accuracy", data=valid_acc)
            v.create_dataset("segment_accuracy", data=np.stack([valid_acc] * len(segments), 1))
            _str_attr(v["segment_accuracy"], "segments", ",".join(segments))
        if statex is not None:
            s = f.create_group("statex")
            s.attrs["step"] = np.int64(statex["step"])
            _str_attr(s, "mode", statex["mode"])
            s.attrs["layers"] = np.asarray(statex.get("layers", [0]), np.int32)
            before = int(per_layer * n_layers)
            s.attrs["state_scalars_before"] = np.int64(before)
            s.attrs["state_scalars_after"] = np.int64(layer_state.sum())
            s.attrs["params_before"] = np.int64(1000 * d_model)
            s.attrs["params_after"] = np.int64(1100 * d_model)
            for key in ("accuracy_before", "accuracy_after", "accuracy_end"):
                s.attrs[key] = np.float32(statex.get(key, -1))
    return path


def write_sweep(sweep_dir, trials, swept=("model.model", "model.d_model", "train.lr",
                                          "train.seed", "statex.arm")):
    """A sweep directory: index.csv + trials/<id>.h5. Each trial is a dict with 'id',
    'status' (index status), optional 'error', 'options' (swept option -> value) and
    'run' (kwargs for write_run, or None for no file)."""
    sweep_dir = Path(sweep_dir)
    (sweep_dir / "trials").mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / "index.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["trial_id", "status", "result_path", "error", *swept])
        for t in trials:
            rel = f"trials/{t['id']}.h5"
            if t.get("run") is not None:
                write_run(sweep_dir / rel, **t["run"])
            writer.writerow([t["id"], t["status"], rel, t.get("error", ""),
                             *[t.get("options", {}).get(k, "") for k in swept]])
    return sweep_dir
