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

import collections
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .frames import Record
from .outputs import (OutputError, OutputExistsError, atomic_write, check_output_dir,
                      make_dir)

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


# ----------------------------------------------------------------------------- run ids

def run_ids(records: list[Record]) -> list[str]:
    """A stable id per record (16 hex digits): a hash of the run's identity, its trial id and
    every resolved /config option (seeds included), so exporting the same results again, alone
    or with other runs, in any order, gives the same id (a rerun updates instead of
    duplicating), and runs that differ in any option or trial id get different ids. Records
    that are still equal (the same run passed twice, or copies of one file) are told apart by
    their unique `run` label."""
    def digest(*parts) -> str:
        text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
    base = [digest(str(r.row["trial_id"]), dict(r.data.config)) for r in records]
    counts = collections.Counter(base)
    return [b if counts[b] == 1 else digest(b, str(r.row["run"]))
            for b, r in zip(base, records)]


def _inputs(records: list[Record]) -> list[str]:
    return [r.row["path"] for r in records if r.row.get("path")]


# ----------------------------------------------------------------------------- TensorBoard

MARKER = "statex_run.json"  # in each TensorBoard run folder: {"run_id", "run", "path"}


def _event_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("events.out.tfevents.*"))


def _marker_id(folder: Path) -> str | None:
    try:
        value = json.loads((folder / MARKER).read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def tensorboard_folders(records: list[Record], out_dir: str | os.PathLike) -> list[Path]:
    """The folder of each record under out_dir, deterministically and never shared: a run
    exported before (its id in a folder's statex_run.json) keeps its folder; otherwise the
    folder is its label made path-safe, or, when that name is shared with another run of this
    export (also ignoring case) or taken by another run's folder, the label plus "-" and the
    first 8 digits of its id."""
    out = Path(out_dir)
    ids = run_ids(records)
    known: dict[str, Path] = {}
    taken: dict[str, str | None] = {}  # casefolded folder name -> the id it holds (None: unknown)
    if out.is_dir():
        for folder in sorted(p for p in out.iterdir() if p.is_dir()):
            rid = _marker_id(folder)
            if rid is not None:
                known.setdefault(rid, folder)
            taken[folder.name.casefold()] = rid
    names = [_safe(str(r.row["run"])) for r in records]
    want = collections.Counter(n.casefold() for i, n in enumerate(names) if ids[i] not in known)
    folders = []
    for name, rid in zip(names, ids):
        if rid in known:
            folders.append(known[rid])
            continue
        holder = taken.get(name.casefold(), rid)
        if want[name.casefold()] > 1 or (holder is not None and holder != rid):
            name = f"{name}-{rid[:8]}"
        folders.append(out / name)
    keys = [f.name.casefold() for f in folders]
    if len(set(keys)) != len(keys):  # a label that already ends in another run's id digits
        folders = [out / f"{f.name}-{rid}" for f, rid in zip(folders, ids)]
    return folders


def export_tensorboard(records: list[Record], out_dir: str | os.PathLike,
                       overwrite: bool = False) -> list[Path]:
    """Writes one event-file folder per record under out_dir (tensorboard_folders); returns
    them. Every check comes first: a folder that already holds event files (they would show
    every point twice) is refused unless `overwrite`, before anything is written. All event
    files are written to a staging folder in out_dir, then moved into place; a replaced run's
    old event files are removed only after its new one is in place."""
    out = check_output_dir(out_dir, inputs=_inputs(records))
    folders = tensorboard_folders(records, out)
    for folder in folders:
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"--out: '{folder}' exists and is not a directory")
    if not overwrite:
        held = [f for f in folders if f.is_dir() and _event_files(f)]
        if held:
            raise OutputExistsError(
                f"{held[0]} already holds event files ({len(held)} of {len(folders)} run folders "
                f"do; give --overwrite to replace them)")
    make_dir(out)
    ids = run_ids(records)
    staging = Path(tempfile.mkdtemp(prefix=".export-tensorboard-", dir=out))
    try:
        staged = [write_events(rec, staging / str(k)) for k, rec in enumerate(records)]
        for rec, rid, folder, new in zip(records, ids, folders, staged):
            old = _event_files(folder) if folder.is_dir() else []
            make_dir(folder)
            target = folder / new.name
            os.replace(new, target)
            marker = json.dumps({"run_id": rid, "run": str(rec.row["run"]),
                                 "path": str(rec.row.get("path", ""))}, indent=1) + "\n"
            atomic_write(folder / MARKER, lambda tmp: Path(tmp).write_text(marker))
            for path in old:
                if path != target:
                    path.unlink()
    except OSError as err:
        raise OutputError(f"cannot write under '{out}': {err.strerror or err}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folders


def write_events(rec: Record, logdir: Path) -> Path:
    """Writes one run's event file into a new folder `logdir`; returns the file."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.hparams import summary_v2 as hparams
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb
    from tensorboard.plugins.text.summary_v2 import text_pb
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir.mkdir(parents=True)
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
    (path,) = _event_files(logdir)
    return path


def write_tensorboard(rec: Record, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """One run (export_tensorboard of one record); returns its folder."""
    return export_tensorboard([rec], out_dir, overwrite)[0]


# ----------------------------------------------------------------------------- W&B

def _wandb_folders(wandb_dir: Path) -> dict[str, list[Path]]:
    """run id -> the offline run folders under wandb_dir holding its run-<id>.wandb."""
    found: dict[str, list[Path]] = collections.defaultdict(list)
    if wandb_dir.is_dir():
        for folder in sorted(p for p in wandb_dir.iterdir()
                             if p.is_dir() and not p.is_symlink()):
            for log in folder.glob("run-*.wandb"):
                found[log.name[len("run-"):-len(".wandb")]].append(folder)
    return found


def write_wandb(records: list[Record], out_dir: str | os.PathLike,
                project: str = "statex-sim", overwrite: bool = False) -> list[Path]:
    """Writes one offline W&B run per record under out_dir/wandb/ with the stable run id of
    run_ids (so `wandb sync` updates the same run, never makes a second); returns their
    folders. A run already exported there is refused unless `overwrite` (checked for every run
    before anything is written), and then replaced: the new runs are written to a staging
    folder in out_dir, and each is moved into place before the old folders with its id are
    removed. The W&B service is shut down before the move: only then are the files complete."""
    out = check_output_dir(out_dir, inputs=_inputs(records))
    wandb_dir = out / "wandb"
    if wandb_dir.exists() and not wandb_dir.is_dir():
        raise OutputError(f"--out: '{wandb_dir}' exists and is not a directory")
    ids = run_ids(records)
    existing = _wandb_folders(wandb_dir)
    if not overwrite:
        held = [(rec, existing[rid][0]) for rec, rid in zip(records, ids) if rid in existing]
        if held:
            rec, folder = held[0]
            raise OutputExistsError(
                f"run '{rec.row['run']}' was exported before ({folder}; {len(held)} of "
                f"{len(records)} runs were): give --overwrite to replace them")
    make_dir(wandb_dir)
    staging = Path(tempfile.mkdtemp(prefix=".export-wandb-", dir=out))
    try:
        import wandb

        try:
            staged = [_write_wandb_run(rec, rid, staging, project)
                      for rec, rid in zip(records, ids)]
        finally:
            wandb.teardown()
        trash = staging / "replaced"
        trash.mkdir()
        folders = []
        for rid, new in zip(ids, staged):
            for k, old in enumerate(existing.get(rid, [])):
                os.replace(old, trash / f"{k}-{old.name}")
            target = wandb_dir / new.name
            os.replace(new, target)
            folders.append(target)
    except OSError as err:
        raise OutputError(f"cannot write under '{out}': {err.strerror or err}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folders


def _write_wandb_run(rec: Record, run_id: str, out_dir: Path, project: str) -> Path:
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    config = {**config_of(rec), "run_id": run_id}
    run = wandb.init(mode="offline", dir=str(out_dir), project=project, id=run_id,
                     name=str(rec.row["run"]), config=config, reinit="create_new",
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
