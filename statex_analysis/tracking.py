"""Results files -> experiment trackers: TensorBoard event files (the PyPI `tensorboard`
package's event writer; no TensorFlow, no torch) and offline Weights & Biases runs (PyPI `wandb`
in offline mode; `wandb sync DIR/wandb/offline-run-*` uploads them later). Each run gets its
config (as hparams / W&B config), training curves, evals (overall and per MQAR segment), the
StateX event, and its summary.

Tags (both trackers): train/{loss,lr,grad_norm,tokens_per_s}, eval/{accuracy,loss},
eval/segment/<T:K:count>, statex/{accuracy_before,accuracy_after,state_scalars} at the expansion
step, summary/{best_accuracy,final_accuracy} at the last step.
"""
from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

import numpy as np

from .frames import Record

CURVES = ("loss", "lr", "grad_norm", "tokens_per_s")
EVALS = ("accuracy", "loss")


def _value(text: str):
    """A config string as bool / int / float when it is one (trackers filter on types)."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def config_of(rec: Record) -> dict:
    """Every resolved option of the run plus its identity (run label, arm, status)."""
    config = {k: _value(v) for k, v in rec.data.config.items()}
    config.update(run=rec.row["run"], arm=rec.row.get("arm", ""), status=rec.row["status"],
                  n_params=_finite(rec.row.get("n_params")),
                  state_scalars=_finite(rec.row.get("state_scalars")))
    return {k: v for k, v in config.items() if v is not None}


def _finite(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def scalars_of(rec: Record) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every point: curves, evals, segments, StateX, summary."""
    out: list[tuple[str, int, float]] = []
    d = rec.data
    steps = d.curves.get("step", np.zeros(0))
    for key in CURVES:
        if key in d.curves:
            out += [(f"train/{key}", int(s), float(v)) for s, v in zip(steps, d.curves[key])]
    esteps = d.evals.get("step", np.zeros(0))
    for key in EVALS:
        if key in d.evals:
            out += [(f"eval/{key}", int(s), float(v)) for s, v in zip(esteps, d.evals[key])]
    seg = d.evals.get("segment_accuracy")
    if seg is not None and seg.ndim == 2:
        for j, name in enumerate(d.segments[: seg.shape[1]]):
            out += [(f"eval/segment/{name}", int(s), float(v)) for s, v in zip(esteps, seg[:, j])]
    if d.statex:
        step = int(d.statex.get("step", 0))
        for key in ("accuracy_before", "accuracy_after"):
            value = d.statex.get(key)
            if value is not None and value >= 0:  # -1 = not measured
                out.append((f"statex/{key}", step, float(value)))
        for key, at in (("state_scalars_before", 0), ("state_scalars_after", step)):
            if key in d.statex:
                out.append(("statex/state_scalars", at, float(d.statex[key])))
    last = int(max([s for _, s, _ in out], default=0))
    for key in ("best_accuracy", "final_accuracy"):
        value = _finite(rec.row.get(key))
        if value is not None:
            out.append((f"summary/{key}", last, float(value)))
    return [(t, s, v) for t, s, v in out if math.isfinite(v)]


def statex_text(rec: Record) -> str:
    """One line describing the StateX event ("" when the run did not expand)."""
    x = rec.data.statex
    if not x:
        return ""
    return (f"StateX at step {x.get('step')}: mode {x.get('mode')}, layers "
            f"{','.join(map(str, x.get('layers', [])))}; state {x.get('state_scalars_before')} -> "
            f"{x.get('state_scalars_after')} scalars; params {x.get('params_before')} -> "
            f"{x.get('params_after')}")


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_") or "run"


def write_tensorboard(rec: Record, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Writes one run's event file under out_dir/<run>/; returns that folder. Event files already
    there would show every point twice: FileExistsError, or removed with overwrite."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.hparams import summary_v2 as hparams
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb
    from tensorboard.plugins.text.summary_v2 import text_pb
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir = Path(out_dir) / _safe(rec.row["run"])
    old = sorted(logdir.glob("events.out.tfevents.*"))
    if old and not overwrite:
        raise FileExistsError(f"{logdir} already holds event files (give --overwrite to replace them)")
    for path in old:
        path.unlink()
    logdir.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(logdir))
    now = time.time()

    def emit(summary, step: int) -> None:
        writer.add_event(Event(wall_time=now, step=step, summary=summary))

    config = config_of(rec)
    emit(hparams.hparams_pb({k: v for k, v in config.items()
                             if isinstance(v, (bool, int, float, str))},
                            trial_id=str(rec.row["run"])), 0)
    emit(text_pb("config", "\n".join(f"    {k} = {v}" for k, v in sorted(config.items()))), 0)
    for tag, step, value in scalars_of(rec):
        emit(scalar_pb(tag, value), step)
    if rec.data.statex:
        emit(text_pb("statex/event", statex_text(rec)), int(rec.data.statex.get("step", 0)))
    writer.close()
    return logdir


def write_wandb(records: list[Record], out_dir: str | os.PathLike,
                project: str = "statex-sim") -> list[Path]:
    """Writes one offline W&B run per record under out_dir/wandb/; returns their folders. The
    W&B service is shut down at the end: only then are the run files complete on disk."""
    import wandb

    try:
        return [_write_wandb_run(rec, out_dir, project) for rec in records]
    finally:
        wandb.teardown()


def _write_wandb_run(rec: Record, out_dir: str | os.PathLike, project: str) -> Path:
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = wandb.init(mode="offline", dir=str(out), project=project, name=str(rec.row["run"]),
                     config=config_of(rec), reinit="create_new",
                     settings=wandb.Settings(console="off", save_code=False,
                                             x_disable_stats=True, x_disable_meta=True))
    by_step: dict[int, dict[str, float]] = {}
    for tag, step, value in scalars_of(rec):
        by_step.setdefault(step, {})[tag] = value
    for step in sorted(by_step):  # W&B needs increasing steps: one log call per step
        run.log(by_step[step], step=step)
    if rec.data.statex:
        run.summary["statex/event"] = statex_text(rec)
    for key in ("best_accuracy", "final_accuracy", "best_step", "status"):
        value = _finite(rec.row.get(key))
        if value is not None:
            run.summary[key] = value
    folder = Path(run.dir).parent  # .../offline-run-<time>-<id>/files -> the run folder
    run.finish()
    return folder
