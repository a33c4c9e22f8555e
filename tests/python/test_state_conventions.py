"""The state-size conventions in the analysis (statex_analysis/state_conventions.py, `--state
recurrent|recurrent+conv|zoology`). Expected numbers are worked out by hand from Zoology's own
state_size() methods (zoology/mixers/{gla,mamba2,gated_delta_net,attention}.py; fla's
ShortConvolution.state_size = hidden_size x kernel_size), written next to each case.

The end-to-end tests train tiny models with the real binary ($STATEX_BIN, else ./build/statex;
skipped without one) and check the C++ record, the Python derivation and the hand count agree."""
from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import pytest

from h5_writer import write_run
from statex_analysis import families, state_conventions, tables
from statex_analysis.cli import main
from statex_analysis.frames import load_runs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "torch"))
from statex_cli import statex_bin  # noqa: E402


def config(model, D, L, *, heads=2, conv=True, W=4, expand_k=0.5, expand_v=1.0, expand=2,
           ngroups=1, d_state=16):
    """A run row as read from a results file: every model option as a string."""
    return {"model": model, "model.model": model, "model.d_model": str(D),
            "model.n_layers": str(L), "model.heads": str(heads),
            "model.use_short_conv": "true" if conv else "false", "model.conv_width": str(W),
            "model.expand_k": repr(expand_k), "model.expand_v": repr(expand_v),
            "model.expand": str(expand), "model.ngroups": str(ngroups),
            "model.d_state": str(d_state)}


def test_every_family_has_a_formula_in_every_convention():
    for convention, table in state_conventions.FROM_RECURRENT.items():
        assert set(table) == set(families.FAMILY_OPTIONS), convention
    assert set(state_conventions.FROM_RECURRENT) == set(state_conventions.CONVENTIONS) - {
        "recurrent"}
    assert set(state_conventions.LABEL) == set(state_conventions.CONVENTIONS)
    assert set(state_conventions.AXIS) == set(state_conventions.CONVENTIONS)
    assert set(state_conventions.DESCRIPTION) == set(state_conventions.CONVENTIONS)
    assert tables.STATE_CONVENTIONS == ("recurrent", "recurrent+conv", "zoology")


# (row, recurrent total, Zoology's total): Zoology's numbers by hand.
ZOOLOGY_CASES = [
    # Quickstart GLA (issue #29): per layer key_dim·head_v_dim = 32·32 = 1,024 and three
    # ShortConvolutions 4·32 + 4·32 + 4·64 = 512: 2·1,536 = 3,072 (Zoology logs ×4 = 12,288).
    (config("gla", 64, 2), 2 * 1024, 3072),
    # D 60, 3 heads: 30·20 = 600, convs 4·(30+30+60) = 480; 3 layers.
    (config("gla", 60, 3, heads=3), 3 * 600, 3 * 1080),
    (config("gla", 60, 1, heads=3, conv=False), 600, 600),
    # expand_k 1, expand_v 2, 5 heads, width 3: 60·24 = 1,440, convs 3·(60+60+120) = 720.
    (config("gla", 60, 2, heads=5, W=3, expand_k=1.0, expand_v=2.0), 2 * 1440, 2 * 2160),
    # Mamba2: 2·d_model·d_state per layer, no conv state.
    (config("mamba2", 64, 2, d_state=16), 2 * 128 * 16, 2 * 2048),
    (config("mamba2", 60, 3, d_state=8), 3 * 120 * 8, 3 * 960),
    (config("mamba2", 60, 2, d_state=8, expand=3, ngroups=2), 2 * 180 * 8, 2 * 960),
    # Gated DeltaNet: H·head_k·head_v, short conv not counted.
    (config("gated_deltanet", 64, 2), 2 * 1024, 2 * 1024),
    (config("gated_deltanet", 60, 3, heads=3, expand_k=1.0, expand_v=2.0), 3 * 2400, 3 * 2400),
    (config("gated_deltanet", 60, 4, heads=3, conv=False), 4 * 600, 4 * 600),
    # Attention: 2·d_model·T; T 128, D 60: 15,360 a layer; our short conv as 4·3·60 = 720.
    (config("attention", 60, 3, heads=3), 3 * 15360, 3 * (15360 + 720)),
    (config("attention", 64, 2, conv=False), 2 * 8192, 2 * 8192),
]


@pytest.mark.parametrize("row,recurrent,zoology", ZOOLOGY_CASES)
def test_zoology_from_the_recurrent_total(row, recurrent, zoology):
    assert state_conventions.from_recurrent(recurrent, row, "zoology") == zoology
    assert state_conventions.from_recurrent(recurrent, row, "recurrent") == recurrent


def test_recurrent_plus_conv_from_the_recurrent_total():
    # (W-1) x channels: GLA 3·(32+32+64) = 384 a layer; Mamba2 3·(d_inner + 2·G·N).
    assert state_conventions.from_recurrent(2048, config("gla", 64, 2), "recurrent+conv") == 2816
    assert state_conventions.from_recurrent(
        4096, config("mamba2", 64, 2, d_state=16), "recurrent+conv") == 4096 + 2 * 3 * (128 + 32)
    # Per-layer d_state 16 and 8 (after StateX), G 2: conv 3·(128 + 64) + 3·(128 + 32).
    assert state_conventions.from_recurrent(
        128 * 24, config("mamba2", 64, 2, ngroups=2), "recurrent+conv") == \
        128 * 24 + 3 * (128 + 64) + 3 * (128 + 32)
    assert state_conventions.from_recurrent(
        3 * 15360, config("attention", 60, 3, heads=3), "recurrent+conv") == 3 * (15360 + 540)


def test_unknown_family_gives_nan_and_a_warning_not_another_formula():
    row = config("rwkv7", 64, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state_conventions._warned.clear()
        assert math.isnan(state_conventions.from_recurrent(1000, row, "zoology"))
    assert any("no zoology formula for model 'rwkv7'" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="--state must be one of"):
        state_conventions.from_recurrent(1000, config("gla", 64, 2), "Zoology")


# ---------------------------------------------------------------- the real binary

TINY = ["--model.vocab_size", "32", "--mqar.train", "16:2:64", "--mqar.test", "16:2:16",
        "--train.steps", "4", "--train.batch_size", "4", "--train.eval_every", "2"]
# (name, options, Zoology's total by hand, recurrent total by hand)
RUNS = [
    # D 16, 2 heads: key_dim 8, head_v 8 -> 64; convs 4·(8+8+16) = 128; 3 layers.
    ("gla", ["--model.model", "gla", "--model.d_model", "16", "--model.n_layers", "3"],
     3 * (64 + 128), 3 * 64),
    # D 12, 3 heads, expand_k 1: key_dim 12, head_v 4 -> 48; no conv.
    ("gla_noconv", ["--model.model", "gla", "--model.d_model", "12", "--model.heads", "3",
                    "--model.expand_k", "1", "--model.use_short_conv", "false"], 2 * 48, 2 * 48),
    # Mamba2 D 12, N 8, expand 3: 2·12·8 = 192 a layer (the state: 36·8 = 288).
    ("mamba2", ["--model.model", "mamba2", "--model.d_model", "12", "--model.d_state", "8",
                "--model.expand", "3", "--model.head_dim", "6"], 2 * 192, 2 * 288),
    # Gated DeltaNet D 12, 3 heads, expand_k 1: 3·4·4 = 48 a layer, conv not counted.
    ("gdn", ["--model.model", "gated_deltanet", "--model.d_model", "12", "--model.heads", "3",
             "--model.expand_k", "1"], 2 * 48, 2 * 48),
    # Attention D 12, T 16: 2·12·16 = 384; short conv 4·36 = 144.
    ("attention", ["--model.model", "attention", "--model.d_model", "12", "--model.heads", "3"],
     2 * (384 + 144), 2 * 384),
    # GLA D 16 with StateX on layer 0 (2 heads -> 1): layer 0 8·16 = 128, layer 1 8·8 = 64,
    # convs 128 each.
    ("gla_statex", ["--model.model", "gla", "--model.d_model", "16", "--statex.step", "2",
                    "--statex.count", "1", "--statex.gla_heads", "1", "--statex.mode", "inherit"],
     128 + 64 + 2 * 128, 128 + 64),
    # Mamba2 D 12, N 8 with StateX doubling layer 0's N: 2·12·16 + 2·12·8 = 576.
    ("mamba2_statex", ["--model.model", "mamba2", "--model.d_model", "12", "--model.d_state",
                       "8", "--model.head_dim", "6", "--statex.step", "2", "--statex.count", "1",
                       "--statex.state_mult", "2", "--statex.mode", "inherit"], 576, 576),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    exe = statex_bin()
    root = tmp_path_factory.mktemp("conventions")
    out = {}
    for name, options, _, _ in RUNS:
        path = root / f"{name}.h5"
        r = subprocess.run([exe, "train", *TINY, *options, "--out", str(path)],
                           capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive"))
        assert r.returncode == 0, r.stdout + r.stderr
        out[name] = path
    return out


@pytest.mark.parametrize("name,zoology,recurrent", [(n, z, r) for n, _, z, r in RUNS])
def test_recorded_derived_and_hand_counts_agree(trained, name, zoology, recurrent):
    row = load_runs([trained[name]]).iloc[0].to_dict()
    assert row["state_scalars"] == recurrent
    assert row["zoology_state_scalars"] == zoology  # what the C++ wrote
    # The Python derivation (used for older files and the StateX sizes) gives the same.
    assert state_conventions.from_recurrent(recurrent, row, "zoology") == zoology
    assert state_conventions.from_recurrent(recurrent, row, "recurrent+conv") == \
        row["state_with_conv_scalars"]
    with h5py.File(trained[name]) as f:
        assert f["model"].attrs["zoology_state_bytes"] == 4 * zoology
        assert sum(f["model/layer_zoology_state_scalars"][:]) == zoology


def test_statex_sizes_follow_the_convention(trained):
    runs = tables.use_state_convention(load_runs([trained["gla_statex"]]), "zoology")
    row = runs.iloc[0]
    # Before: 2 layers of 2 heads, 64 + 128 each; after = the final model.
    assert row["statex_state_scalars_before"] == 2 * (64 + 128)
    assert row["statex_state_scalars_after"] == row["state_scalars"] == 128 + 64 + 2 * 128
    assert row["statex_state_scalars_before_recurrent"] == 2 * 64
    runs = tables.use_state_convention(runs, "recurrent")  # back again: idempotent
    assert runs.iloc[0]["statex_state_scalars_before"] == 2 * 64
    assert runs.iloc[0]["state_scalars"] == 128 + 64


def test_files_without_the_zoology_attribute_get_it_from_the_config(trained, tmp_path):
    for name, _, zoology, _ in RUNS:
        old = tmp_path / f"{name}.h5"
        old.write_bytes(trained[name].read_bytes())
        with h5py.File(old, "a") as f:  # an older file: no zoology count, no integrity data
            for key in ("zoology_state_scalars", "zoology_state_bytes"):
                del f["model"].attrs[key]
            del f["attr_digests"]
        with open(old, "r+b") as f:
            f.write(b"\0" * 12)  # no "statex-crc32" magic: the user-block CRC is not checked
        runs = tables.use_state_convention(load_runs([old]), "zoology")
        assert math.isnan(runs.iloc[0]["zoology_state_scalars"])
        assert runs.iloc[0]["state_scalars"] == zoology, name
    tables.use_state_convention(load_runs([old]), "recurrent")


def test_summary_cli_zoology_column(trained, capsys):
    paths = [str(trained[n]) for n, *_ in RUNS]
    assert main(["summary", *paths, "--state", "zoology", "--state-unit", "scalars",
                 "--csv"]) == 0
    rows = {Path(r["run"]).name: r
            for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    for name, _, zoology, _ in RUNS:
        assert float(rows[name]["Zoology state_size() (scalars)"]) == zoology, name
    assert main(["summary", *paths, "--state", "zoology", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert "Zoology state_size() (bytes)" in rows[0]
    tables.use_state_convention(load_runs(paths[:1]), "recurrent")


# ---------------------------------------------------------------- report and labels

@pytest.mark.parametrize("convention,says,header", [
    ("recurrent", "state size = recurrent state only", "recurrent state (bytes)"),
    ("recurrent+conv", "state size = recurrent state plus conv state",
     "recurrent+conv state (bytes)"),
    ("zoology", "state size = Zoology's state_size()", "Zoology state_size() (bytes)"),
])
def test_report_index_tables_and_axes_name_the_convention(tmp_path, convention, says, header):
    paths = []
    for i, (model, d) in enumerate([("gla", 32), ("gla", 64), ("mamba2", 32)]):
        for seed in range(2):
            paths.append(write_run(tmp_path / "runs" / f"r{i}{seed}.h5", model=model, d_model=d,
                                   seed=seed, extra_config={
                                       k: v for k, v in config(model, d, 2).items()
                                       if k.startswith("model.")}))
    out = tmp_path / "report"
    assert main(["report", *map(str, paths), "--out", str(out), "--state", convention,
                 "--formats", "svg"]) == 0
    index = (out / "index.md").read_text()
    assert says in index
    if convention != "recurrent":
        assert "recurrent state only" not in index
    assert header in (out / "tables" / "accuracy_vs_state.md").read_text()
    assert header in (out / "tables" / "summary.md").read_text()
    svg = (out / "figures" / "accuracy_vs_state.svg").read_text()
    assert tables.state_label("bytes", convention) in svg.replace("&gt;", ">")
    # GLA D 32 (2 layers): recurrent 2·(16·32/2) = 512; Zoology + 2·4·(16+16+32) = 1,024.
    expected = {"recurrent": 512, "recurrent+conv": 512 + 2 * 3 * 64, "zoology": 1024}
    table = tables.accuracy_vs_state_table(
        tables.use_state_convention(load_runs(paths), convention), "scalars")
    gla32 = table[(table["model"] == "gla")].sort_values("state").iloc[0]
    assert gla32["state"] == expected[convention]
    assert gla32["state_convention"] == convention
    assert tables.presentable(table).columns.tolist().count(
        f"{state_conventions.LABEL[convention]} (scalars)") == 1
    tables.use_state_convention(load_runs(paths[:1]), "recurrent")
