"""Hostile input to export-safetensors / import-safetensors and their output paths (issue #31):
every case exits 2 with one line naming the file and what is wrong, writes nothing and leaves
every earlier file unchanged. Before the checks, most of these were Python tracebacks (a header
length past the end of the file, garbage JSON, BF16 tensors, a config.json that is a list or
holds a non-number, a zero-size tensor, a read-only directory), NaN / inf weights were imported
silently, and `import-safetensors --out DIR/model.safetensors --overwrite` overwrote its own
input."""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("safetensors")
from safetensors.numpy import load_file  # noqa: E402

from statex_analysis.cli import main  # noqa: E402
from test_export_safetensors import GLA, _make  # noqa: E402


@pytest.fixture
def hf(tmp_path):
    """An exported model directory (GLA, 3 layers, the last with 1 head)."""
    ck = _make(tmp_path / "ck.h5", GLA, [4, 4, 1], [0, 0, 0])
    assert main(["export-safetensors", str(ck), "--out", str(tmp_path / "hf")]) == 0
    return tmp_path / "hf"


def snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def raw_safetensors(path: Path, header, data: bytes = b"", length: int | None = None,
                    header_bytes: bytes | None = None) -> None:
    body = header_bytes if header_bytes is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body) if length is None else length) + body + data)


def refused(args, capsys, *needles) -> str:
    """main(args) exits 2 with one line on stderr holding every needle."""
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error"), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def import_refused(model_dir: Path, capsys, *needles) -> None:
    out = model_dir.parent / f"{model_dir.name}_ck.h5"
    before = snapshot(model_dir)
    refused(["import-safetensors", str(model_dir), "--out", str(out)], capsys, *needles)
    assert not out.exists() and snapshot(model_dir) == before
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]  # no temp files


def _copy_dir(hf: Path, name: str) -> Path:
    d = hf.parent / name
    d.mkdir()
    (d / "config.json").write_bytes((hf / "config.json").read_bytes())
    (d / "model.safetensors").write_bytes((hf / "model.safetensors").read_bytes())
    return d


# ----------------------------------------------------------------------- safetensors headers

ENTRY = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}


@pytest.mark.parametrize("case,needle", [
    ("past_eof", "runs past the end of the file"),
    ("short", "too short for the 8-byte header length"),
    ("garbage_json", "the header is not JSON"),
    ("not_utf8", "the header is not UTF-8"),
    ("list_header", "the header is not a JSON object"),
    ("duplicate", "appears twice"),
    ("unknown_dtype", "unknown dtype 'F33'"),
    ("bad_shape", "is not a list of integers >= 0"),
    ("offsets_outside", "are not inside the 16 bytes of data"),
    ("size_mismatch", "needs 16 bytes, its data_offsets give 12"),
    ("overlap", "tensors overlap or leave a hole"),
    ("trailing", "the tensors end at byte 16 of the data, the file holds 20"),
    ("bad_metadata", "__metadata__ is not an object of strings"),
])
def test_hostile_safetensors_headers(hf, capsys, case, needle):
    d = _copy_dir(hf, case)
    st = d / "model.safetensors"
    data = np.arange(4, dtype="<f4").tobytes()
    if case == "past_eof":
        raw_safetensors(st, {"a": ENTRY}, data, length=10 ** 6)
    elif case == "short":
        st.write_bytes(b"\x01\x02")
    elif case == "garbage_json":
        raw_safetensors(st, None, data, header_bytes=b"{not json at all" + b" " * 8)
    elif case == "not_utf8":
        raw_safetensors(st, None, data, header_bytes=b'{"\xff": 1}')
    elif case == "list_header":
        raw_safetensors(st, [1, 2], data)
    elif case == "duplicate":
        raw_safetensors(st, None, data + data, header_bytes=(
            b'{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, '
            b'"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 32]}}'))
    elif case == "unknown_dtype":
        raw_safetensors(st, {"a": {**ENTRY, "dtype": "F33"}}, data)
    elif case == "bad_shape":
        raw_safetensors(st, {"a": {**ENTRY, "shape": [2, -2]}}, data)
    elif case == "offsets_outside":
        raw_safetensors(st, {"a": {**ENTRY, "data_offsets": [8, 24]}}, data)
    elif case == "size_mismatch":
        raw_safetensors(st, {"a": {**ENTRY, "data_offsets": [0, 12]}}, data[:12])
    elif case == "overlap":
        raw_safetensors(st, {"a": ENTRY, "b": {**ENTRY, "data_offsets": [8, 24]}},
                        data + data[:8])
    elif case == "trailing":
        raw_safetensors(st, {"a": ENTRY}, data + b"\0" * 4)
    elif case == "bad_metadata":
        raw_safetensors(st, {"__metadata__": {"format": 1}, "a": ENTRY}, data)
    import_refused(d, capsys, needle, str(st))


@pytest.mark.parametrize("dtype,name", [("BF16", "bfloat16"), ("F16", "float16"),
                                        ("F64", "float64"), ("I32", "int32")])
def test_other_dtypes_are_refused_by_name(hf, capsys, dtype, name):
    tensors = load_file(str(hf / "model.safetensors"))
    d = _copy_dir(hf, f"dt_{dtype}")
    header, data = {}, b""
    for key, value in tensors.items():
        size = {"BF16": 2, "F16": 2, "F64": 8, "I32": 4}[dtype] if key == "lm_head.weight" else 4
        nbytes = value.size * size
        header[key] = {"dtype": dtype if key == "lm_head.weight" else "F32",
                       "shape": list(value.shape), "data_offsets": [len(data), len(data) + nbytes]}
        data += value.astype("<f4").tobytes()[:nbytes] if size <= 4 else \
            value.astype("<f8").tobytes()
    raw_safetensors(d / "model.safetensors", header, data)
    import_refused(d, capsys, f"'lm_head.weight' is {dtype} ({name})", "float32")


def test_zero_size_tensor(hf, capsys):
    tensors = load_file(str(hf / "model.safetensors"))
    d = _copy_dir(hf, "empty")
    from safetensors.numpy import save_file
    tensors["model.layers.0.attn.g_norm_swish_gate.weight"] = np.zeros(0, np.float32)
    save_file(tensors, str(d / "model.safetensors"))
    import_refused(d, capsys, "'model.layers.0.attn.g_norm_swish_gate.weight' has no elements")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_by_name(hf, capsys, value):
    from safetensors.numpy import save_file
    tensors = load_file(str(hf / "model.safetensors"))
    d = _copy_dir(hf, f"nonfinite_{value}")
    w = tensors["model.layers.1.attn.k_proj.weight"].copy()
    w[3, 5] = value
    tensors["model.layers.1.attn.k_proj.weight"] = w
    save_file(tensors, str(d / "model.safetensors"))
    import_refused(d, capsys, "'model.layers.1.attn.k_proj.weight' holds 1 non-finite value",
                   "[3, 5]")


def test_non_finite_checkpoint_is_not_exported(tmp_path, capsys):
    from statex_analysis.checkpoint import read_checkpoint, write_checkpoint
    ck = read_checkpoint(_make(tmp_path / "ck.h5", GLA, [4, 4, 4], [0, 0, 0]))
    ck.params["model.norm.weight"][0] = np.nan
    write_checkpoint(tmp_path / "nan.h5", ck)
    refused(["export-safetensors", str(tmp_path / "nan.h5"), "--out", str(tmp_path / "hf")],
            capsys, "'model.norm.weight' holds 1 non-finite value")
    assert not (tmp_path / "hf").exists()


# ----------------------------------------------------------------------- config.json

@pytest.mark.parametrize("case,needle", [
    ("list", "not a JSON object but a list"),
    ("string_d_model", "model.d_model = 'abc' is not an integer >= 1"),
    ("float_layers", "model.n_layers = '2.5' is not an integer >= 1"),
    ("unknown_option", "model.colour is not a statex-sim model option"),
    ("yes_bool", "model.mlp = 'yes' is not true / false"),
    ("nan_eps", "model.norm_eps = 'nan' is not a finite number"),
    ("options_not_strings", "statex.model_options is not an object of option strings"),
    ("foreign_string_hidden", "hidden_size = '24' is not an integer"),
    ("foreign_bool_layers", "num_hidden_layers = True is not an integer"),
    ("foreign_missing_hidden", "'hidden_size' missing"),
    ("nan_literal", "NaN is not JSON"),
    ("statex_heads", "statex.layer_heads = 'x' is not a list of integers"),
])
def test_hostile_config_json(hf, capsys, case, needle):
    d = _copy_dir(hf, case)
    cfg = json.loads((hf / "config.json").read_text())
    options = cfg["statex"]["model_options"]
    foreign = {k: v for k, v in cfg.items() if k != "statex"}
    text = None
    if case == "list":
        cfg = [cfg]
    elif case == "string_d_model":
        options["d_model"] = "abc"
    elif case == "float_layers":
        options["n_layers"] = "2.5"
    elif case == "unknown_option":
        options["colour"] = "blue"
    elif case == "yes_bool":
        options["mlp"] = "yes"
    elif case == "nan_eps":
        options["norm_eps"] = "nan"
    elif case == "options_not_strings":
        options["d_model"] = 24
    elif case == "foreign_string_hidden":
        cfg = {**foreign, "hidden_size": "24"}
    elif case == "foreign_bool_layers":
        cfg = {**foreign, "num_hidden_layers": True}
    elif case == "foreign_missing_hidden":
        cfg = {k: v for k, v in foreign.items() if k != "hidden_size"}
    elif case == "nan_literal":
        text = json.dumps(cfg).replace('"norm_eps": 1e-05', '"norm_eps": NaN')
        assert "NaN" in text
    elif case == "statex_heads":
        cfg["statex"]["layer_heads"] = "x"
    (d / "config.json").write_text(text if text is not None else json.dumps(cfg))
    import_refused(d, capsys, needle)


# ----------------------------------------------------------------------- output paths

def test_import_never_overwrites_its_own_input(hf, capsys):
    before = snapshot(hf)
    for target in ("model.safetensors", "config.json"):
        refused(["import-safetensors", str(hf), "--out", str(hf / target), "--overwrite"], capsys,
                "is the input", target)
    # through a symlink and a relative path with `..` too
    (hf.parent / "link.safetensors").symlink_to(hf / "model.safetensors")
    refused(["import-safetensors", str(hf), "--out", str(hf.parent / "link.safetensors"),
             "--overwrite"], capsys, "is the input")
    refused(["import-safetensors", str(hf), "--out",
             str(hf / ".." / hf.name / "model.safetensors"), "--overwrite"], capsys, "is the input")
    assert snapshot(hf) == before


def test_export_never_overwrites_its_input(tmp_path, capsys):
    """A checkpoint named like an output file of its own --out directory."""
    d = tmp_path / "d"
    d.mkdir()
    ck = _make(d / "config.json", GLA, [4, 4, 4], [0, 0, 0])
    before = ck.read_bytes()
    refused(["export-safetensors", str(ck), "--out", str(d), "--overwrite"], capsys,
            "is the input")
    assert ck.read_bytes() == before and not (d / "model.safetensors").exists()


@pytest.fixture
def readonly_dir(tmp_path, monkeypatch):
    """A directory nobody may write to. As root (who writes anyway), creating files in it is made
    to fail the way it does for a user: EACCES from open()."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    if os.geteuid() == 0:
        real_open, real_mkdir = os.open, os.mkdir

        def deny(path) -> bool:
            return Path(os.fspath(path)).resolve().parent == d.resolve()

        def fake_open(path, flags, *args, **kwargs):
            if flags & os.O_CREAT and deny(path):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_open(path, flags, *args, **kwargs)

        def fake_mkdir(path, *args, **kwargs):
            if deny(path):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_mkdir(path, *args, **kwargs)
        monkeypatch.setattr(os, "open", fake_open)
        monkeypatch.setattr(os, "mkdir", fake_mkdir)
    yield d
    d.chmod(0o755)


def test_read_only_directories(hf, tmp_path, readonly_dir, capsys):
    ck = _make(tmp_path / "ck2.h5", GLA, [4, 4, 4], [0, 0, 0])
    refused(["export-safetensors", str(ck), "--out", str(readonly_dir)], capsys,
            f"directory '{readonly_dir}' is not writable")
    refused(["export-safetensors", str(ck), "--out", str(readonly_dir / "new" / "hf")], capsys,
            f"directory '{readonly_dir}' is not writable")
    refused(["import-safetensors", str(hf), "--out", str(readonly_dir / "ck.h5")], capsys,
            f"directory '{readonly_dir}' is not writable")
    assert list(readonly_dir.iterdir()) == []


def test_files_and_directories_in_the_wrong_place(hf, tmp_path, capsys):
    ck = _make(tmp_path / "ck2.h5", GLA, [4, 4, 4], [0, 0, 0])
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    refused(["export-safetensors", str(ck), "--out", str(a_file)], capsys,
            f"'{a_file}' exists and is not a directory")
    refused(["export-safetensors", str(ck), "--out", str(a_file / "sub")], capsys,
            f"'{a_file}' is not a directory")
    refused(["import-safetensors", str(hf), "--out", str(tmp_path / "missing" / "ck.h5")], capsys,
            "directory", "missing' does not exist")
    refused(["import-safetensors", str(hf), "--out", str(a_file / "ck.h5")], capsys,
            f"'{a_file}' is not a directory")
    refused(["import-safetensors", str(hf), "--out", str(tmp_path)], capsys,
            f"'{tmp_path}' is a directory, not a file")
    refused(["import-safetensors", str(hf), "--out", ""], capsys, "empty path")
    refused(["import-safetensors", str(a_file), "--out", str(tmp_path / "x.h5")], capsys,
            "not a directory")
    assert a_file.read_text() == "keep me"
    # a directory where export wants to write a file
    d = tmp_path / "weird"
    (d / "config.json").mkdir(parents=True)
    refused(["export-safetensors", str(ck), "--out", str(d), "--overwrite"], capsys,
            "config.json' is a directory")


def test_overwrite_semantics_and_atomic_writes(hf, tmp_path, capsys, monkeypatch):
    """An existing output is replaced only with --overwrite; a write that fails half-way leaves
    every earlier file as it was, with no temporary file behind; written files get the usual
    permissions (not mkstemp's 0600)."""
    ck = _make(tmp_path / "ck2.h5", GLA, [4, 4, 4], [0, 0, 0], seed=5)
    before = snapshot(hf)
    refused(["export-safetensors", str(ck), "--out", str(hf)], capsys, "--overwrite")
    assert snapshot(hf) == before

    import safetensors.numpy

    def half_written(tensors, path, metadata=None):
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(safetensors.numpy, "save_file", half_written)
    refused(["export-safetensors", str(ck), "--out", str(hf), "--overwrite"], capsys,
            "No space left on device", "model.safetensors")
    assert snapshot(hf) == before
    assert sorted(p.name for p in hf.iterdir()) == ["config.json", "model.safetensors"]
    monkeypatch.undo()

    mask = os.umask(0o022)
    try:
        assert main(["import-safetensors", str(hf), "--out", str(tmp_path / "back.h5")]) == 0
        assert main(["export-safetensors", str(ck), "--out", str(hf), "--overwrite"]) == 0
    finally:
        os.umask(mask)
    for path in (tmp_path / "back.h5", hf / "model.safetensors", hf / "config.json"):
        assert path.stat().st_mode & 0o777 == 0o644, path
    assert snapshot(hf) != before
    refused(["import-safetensors", str(hf), "--out", str(tmp_path / "back.h5")], capsys,
            "back.h5 exists", "--overwrite")
    assert main(["import-safetensors", str(hf), "--out", str(tmp_path / "back.h5"),
                 "--overwrite"]) == 0
