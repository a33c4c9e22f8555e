"""export-tensorboard and export-wandb: written files read back with each tracker's own reader
(tensorboard's EventAccumulator; the W&B offline run's record log) and compared with the
results file's values."""
from __future__ import annotations

import glob
import json
import struct

import numpy as np
import pytest

from statex_analysis.cli import main

STATEX = dict(step=100, mode="reinit", layers=[0, 1], accuracy_before=0.4, accuracy_after=0.05)


@pytest.fixture
def statex_run(run_file):
    return run_file("sx.h5", arm="statex", lr=1e-2, seed=3, eval_steps=(0, 100, 200),
                    eval_acc=(0.1, 0.4, 0.9), statex=STATEX)


def test_tensorboard_export_reads_back(statex_run, tmp_path, capsys):
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util import tensor_util

    assert main(["export-tensorboard", str(statex_run), "--out", str(tmp_path / "tb")]) == 0
    assert "wrote 1 runs" in capsys.readouterr().out
    # a second export would double every point: refused unless --overwrite replaces the files
    assert main(["export-tensorboard", str(statex_run), "--out", str(tmp_path / "tb")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export-tensorboard", str(statex_run), "--out", str(tmp_path / "tb"),
                 "--overwrite"]) == 0
    assert len(list((tmp_path / "tb" / "sx").glob("events.out.tfevents.*"))) == 1
    ea = ea_mod.EventAccumulator(str(tmp_path / "tb" / "sx"), size_guidance={"tensors": 0})
    ea.Reload()

    def series(tag):
        return [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in ea.Tensors(tag)]

    acc = series("eval/accuracy")
    assert [s for s, _ in acc] == [0, 100, 200]
    np.testing.assert_allclose([v for _, v in acc], [0.1, 0.4, 0.9], rtol=1e-6)
    loss = series("train/loss")
    assert len(loss) == 20 and loss[0] == (10, 5.0) and loss[-1] == (200, 1.0)
    np.testing.assert_allclose([v for _, v in series("train/lr")], 1e-2, rtol=1e-6)
    segment = series("eval/segment/128:8:100")
    np.testing.assert_allclose([v for _, v in segment], [0.09, 0.36, 0.81], rtol=1e-6)
    assert series("statex/accuracy_before") == [(100, pytest.approx(0.4))]
    assert series("statex/accuracy_after") == [(100, pytest.approx(0.05))]
    state = series("statex/state_scalars")
    assert state[0][0] == 0 and state[1] == (100, 2 * state[0][1])  # both layers doubled
    assert series("summary/best_accuracy") == [(200, pytest.approx(0.9))]
    event = ea.Tensors("statex/event")[0]
    assert event.step == 100 and b"mode reinit, layers 0,1" in event.tensor_proto.string_val[0]
    # hparams: the run's config as the HParams plugin's session-start info
    content = ea.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    hp = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hp["train.lr"].number_value == pytest.approx(1e-2)
    assert hp["train.seed"].number_value == 3
    assert hp["model.model"].string_value == "gla" and hp["arm"].string_value == "statex"


def _wandb_records(run_dir):
    """Records of an offline run's .wandb file (a LevelDB-style log of protobuf records:
    7-byte file header, 32 KiB blocks, 7-byte chunk headers: crc32, length, type)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = glob.glob(f"{run_dir}/run-*.wandb")
    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    block, pos, chunk, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer: padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            records.append(wandb_internal_pb2.Record.FromString(chunk))
            chunk = b""
    return records


def test_wandb_export_is_an_offline_run(statex_run, tmp_path, capsys):
    pytest.importorskip("wandb")
    assert main(["export-wandb", str(statex_run), "--out", str(tmp_path / "wb"),
                 "--project", "p1"]) == 0
    assert "wandb sync" in capsys.readouterr().out
    (run_dir,) = glob.glob(str(tmp_path / "wb" / "wandb" / "offline-run-*"))
    records = _wandb_records(run_dir)
    kinds = [r.WhichOneof("record_type") for r in records]
    assert "run" in kinds, kinds
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.project == "p1" and run.display_name == "sx"
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["train.lr"] == pytest.approx(1e-2) and config["arm"] == "statex"
    history = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            row = {".".join(i.nested_key) or i.key: json.loads(i.value_json)
                   for i in r.history.item}
            history[row["_step"]] = row
    assert sorted(history)[:2] == [0, 10] and max(history) == 200
    assert history[100]["eval/accuracy"] == pytest.approx(0.4)
    assert history[100]["statex/accuracy_after"] == pytest.approx(0.05)
    assert history[200]["train/loss"] == pytest.approx(1.0)
    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            for u in r.summary.update:
                summary[".".join(u.nested_key) or u.key] = json.loads(u.value_json)
    assert summary["best_accuracy"] == pytest.approx(0.9)
    assert "StateX at step 100" in summary["statex/event"]


def test_tracking_export_needs_out(statex_run, capsys):
    with pytest.raises(SystemExit) as err:
        main(["export-tensorboard", str(statex_run)])
    assert err.value.code == 2 and "--out" in capsys.readouterr().err
