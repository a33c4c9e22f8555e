"""Integrity of statex files on the Python side (issue #31; docs/results_format.md, "Integrity"):
every reader goes through statex_analysis/integrity.py, which checks the file CRC-32 of the
512-byte user block, the per-object digests of /attr_digests and Fletcher32 as the C++ does.

The property tests flip single bits of real files written by the binary
(tests/python/data/integrity/, README there) and require of every flip: refused by name (one
error class, one line naming the file), or provably harmless (every attribute and dataset
decodes identically). No traceback, no silently changed value. Before the integrity reader, 200
flips of a results file gave 148 tracebacks and 3 silently changed config values.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import REPO
from statex_analysis.checkpoint import CheckpointError, read_checkpoint
from statex_analysis.cli import main
from statex_analysis.io import FormatError, read_run

DATA = Path(__file__).resolve().parent / "data" / "integrity"
RESULTS, CHECKPOINT, TOKENS = DATA / "results.h5", DATA / "checkpoint.h5", DATA / "tokens.h5"
SEED = 31  # the number: a fixed RNG seed
N_FLIPS = 200


def statex_bin() -> Path | None:
    path = Path(os.environ.get("STATEX_BIN", REPO / "build" / "statex"))
    return path if path.is_file() and os.access(path, os.X_OK) else None


def decode_all(path) -> dict:
    """Everything a file holds, decoded: object kinds, attributes (value and dtype), dataset
    dtypes, shapes and values (strings as text). Two files with equal decode_all are the same
    to every reader."""
    out = {}

    def attrs(obj):
        return {k: (repr(v), str(getattr(v, "dtype", type(v)))) for k, v in obj.attrs.items()}

    with h5py.File(path, "r") as f:
        out["/"] = ("group", attrs(f))

        def visit(name, obj):
            if isinstance(obj, h5py.Group):
                out[name] = ("group", attrs(obj))
            else:
                value = obj[()]
                data = value.tobytes() if isinstance(value, np.ndarray) and value.dtype != object \
                    else repr(value)
                out[name] = ("dataset", attrs(obj), str(obj.dtype), obj.shape, data)
        f.visititems(visit)
    return out


def flipped(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def read_tokens(path):
    """A token file (statex data / eval --tokens) through the package's reader."""
    from statex_analysis.tokens import read_tokens as read
    return read(path)


READERS = {"results": (RESULTS, read_run), "checkpoint": (CHECKPOINT, read_checkpoint),
           "tokens": (TOKENS, read_tokens)}


def run_flips(src: Path, reader, bits, tmp_path) -> dict:
    """Flips each bit of `src` in turn; returns the counts (refused / harmless). Fails on the
    first flip that raises anything but the integrity error, or that reads back changed."""
    data = src.read_bytes()
    base = decode_all(src)
    counts = {"refused": 0, "harmless": 0, "named_object": 0}
    target = tmp_path / src.name
    for bit in bits:
        target.write_bytes(flipped(data, int(bit)))
        try:
            reader(target)
        except (FormatError, CheckpointError) as err:
            message = str(err)
            assert str(target) in message and "\n" not in message, (bit, message)
            assert "damaged" in message or "truncated" in message, (bit, message)
            counts["refused"] += 1
            counts["named_object"] += getattr(err, "field", None) is not None
            continue
        assert decode_all(target) == base, f"bit {bit} (byte {bit // 8}) changed a value silently"
        counts["harmless"] += 1
    return counts


@pytest.mark.parametrize("which", ["results", "checkpoint"])
def test_random_bit_flips_are_refused_by_name_or_harmless(which, tmp_path):
    src, reader = READERS[which]
    data = src.read_bytes()
    bits = np.random.default_rng(SEED).choice(len(data) * 8, size=N_FLIPS, replace=False)
    counts = run_flips(src, reader, bits, tmp_path)
    assert counts["refused"] + counts["harmless"] == N_FLIPS
    # every byte after the user block is covered by the CRC: only flips in the user block's
    # padding past its NUL can be harmless
    assert counts["harmless"] <= sum(1 for b in bits if b // 8 < 512)
    assert counts["named_object"] > 0  # damage in a tensor is named, not only "the file"


def test_token_file_bit_flips(tmp_path):
    data = TOKENS.read_bytes()
    bits = np.random.default_rng(SEED).choice(len(data) * 8, size=60, replace=False)
    counts = run_flips(TOKENS, read_tokens, bits, tmp_path)
    assert counts["refused"] + counts["harmless"] == 60


def test_every_byte_of_the_crc_line_and_its_padding(tmp_path):
    """The user block: a flip in the CRC line is refused; in the magic, the file reads as one
    without a CRC (then the digests still hold and the content is the same); past the line's
    NUL, harmless (the C++ compares the text up to the first NUL too)."""
    line_end = RESULTS.read_bytes().index(b"\0")
    bits = [8 * byte + (byte % 8) for byte in range(line_end + 4)] + [8 * 300, 8 * 511 + 7]
    counts = run_flips(RESULTS, read_run, bits, tmp_path)
    assert counts["refused"] >= line_end + 1 - len("statex-crc32")  # every flip after the magic
    assert counts["harmless"] >= 2


def test_cli_names_the_file_and_the_damaged_tensor_exit_2(tmp_path, capsys):
    """One line, `error`, the file, the damaged object; exit 2 (a damaged input file,
    docs/exit_codes.md), for the results commands and the export."""
    data = bytearray(CHECKPOINT.read_bytes())
    with h5py.File(CHECKPOINT, "r") as f:
        ds = f["params/model.embeddings.weight"]
        offset = ds.id.get_chunk_info(0).byte_offset
    data[offset + 5] ^= 0x10
    bad = tmp_path / "ck.h5"
    bad.write_bytes(bytes(data))
    assert main(["export-safetensors", str(bad), "--out", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err, err
    assert "'/params/model.embeddings.weight' is damaged: its Fletcher32 checksum" in err
    assert not (tmp_path / "hf").exists()

    results = bytearray(RESULTS.read_bytes())
    results[len(results) // 2] ^= 0x01
    (tmp_path / "r.h5").write_bytes(bytes(results))
    for command in (["summary"], ["report", "--out", str(tmp_path / "rep")],
                    ["export-tensorboard", "--out", str(tmp_path / "tb")]):
        args = [command[0], str(tmp_path / "r.h5"), *command[1:]]
        assert main(args) == 2, command
        err = capsys.readouterr().err.strip()
        assert err.startswith("error") and err.count("\n") == 0 and "r.h5" in err, err
        assert "damaged" in err
    # --keep-going lists it as unreadable, with the reason
    assert main(["summary", str(tmp_path / "r.h5"), str(RESULTS), "--keep-going"]) == 0
    assert "unreadable" in capsys.readouterr().out


def test_truncated_file_is_named_as_truncated(tmp_path):
    data = RESULTS.read_bytes()
    (tmp_path / "t.h5").write_bytes(data[:-100])
    with pytest.raises(FormatError, match="truncated"):
        read_run(tmp_path / "t.h5")


def _edit_in_place(path, restamp: bool, drop_magic: bool = False):
    from statex_analysis.integrity import stamp_file_crc
    with h5py.File(path, "r+") as f:
        f["config"].attrs["train.lr"] = "0.5"  # a silently different experiment
    if restamp:
        stamp_file_crc(str(path))
    if drop_magic:
        with open(path, "r+b") as f:
            f.write(b"\0" * 12)


@pytest.mark.parametrize("restamp,drop_magic", [(False, False), (True, False), (False, True)])
def test_an_in_place_edit_is_refused(restamp, drop_magic, tmp_path):
    """h5py "a"/"r+" mode edits break the CRC; with the CRC re-stamped (or the user block wiped)
    the digests still name the edited object."""
    path = tmp_path / "edited.h5"
    shutil.copy(RESULTS, path)
    _edit_in_place(path, restamp, drop_magic)
    with pytest.raises(FormatError) as info:
        read_run(path)
    if restamp or drop_magic:
        assert info.value.field == "/config" and "checksum of its attributes" in str(info.value)
    else:
        assert "damaged" in str(info.value)


def test_python_digests_equal_the_cpp_ones_on_real_files():
    """integrity.py recomputes /attr_digests of files written by the binary exactly (all
    committed runs that carry them, and the test files)."""
    from statex_analysis.integrity import verify
    files = [RESULTS, CHECKPOINT, TOKENS]
    files += sorted(p for p in (REPO / "data").rglob("*.h5")
                    if p.read_bytes()[:12] == b"statex-crc32")[:40]
    for path in files:
        checked = verify(path)
        assert checked.crc and checked.digests, path


def test_files_without_the_layers_are_read_unchecked(run_file):
    """h5py-written files (no user block, no digests) read as before: only HDF5's checksums."""
    from statex_analysis.integrity import verify
    assert verify(run_file("plain.h5")) == (False, False)
    old = Path(__file__).resolve().parent / "data" / "cpp_writer" / "real_statex.h5"
    assert verify(old) == (False, False)
    assert read_run(old).summary["status"] == "completed"


def test_fletcher32_damage_in_an_unchecksummed_file_is_named(tmp_path):
    """Without the CRC line, a damaged Fletcher32 chunk is found when the file is opened (not
    as an OSError halfway through a reader)."""
    path = tmp_path / "plain_ck.h5"
    with h5py.File(CHECKPOINT, "r") as fin, h5py.File(path, "w", libver=("v110", "v110")) as f:
        fin.copy(fin["model"], f)
        fin.copy(fin["params"], f)
        for k, v in fin.attrs.items():
            f.attrs[k] = v
    with h5py.File(path, "r") as f:
        offset = f["params/model.norm.weight"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x04
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert "'/params/model.norm.weight' is damaged: its Fletcher32 checksum" in str(info.value)


def test_discover_skips_no_damaged_file(tmp_path, capsys):
    """A damaged checkpoint in a scanned directory is not parsed to decide whether to skip it:
    it is reported (by the results reader) instead of crashing the scan."""
    data = bytearray(CHECKPOINT.read_bytes())
    data[len(data) // 3] ^= 0x80
    (tmp_path / "ck.h5").write_bytes(bytes(data))
    shutil.copy(RESULTS, tmp_path / "r.h5")
    assert main(["summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "ck.h5" in err and "damaged" in err


def test_python_written_checkpoints_carry_the_crc_and_digests(tmp_path):
    """import-safetensors' checkpoints are written with the user block and /attr_digests; the
    binary (when built) loads them, and refuses them by name once damaged."""
    from statex_analysis.integrity import verify
    pytest.importorskip("safetensors")
    assert main(["export-safetensors", str(CHECKPOINT), "--out", str(tmp_path / "hf")]) == 0
    assert main(["import-safetensors", str(tmp_path / "hf"), "--out",
                 str(tmp_path / "back.h5")]) == 0
    assert verify(tmp_path / "back.h5") == (True, True)
    a, b = read_checkpoint(CHECKPOINT), read_checkpoint(tmp_path / "back.h5")
    assert all(a.params[k].tobytes() == b.params[k].tobytes() for k in a.params)
    binary = statex_bin()
    if binary is None:
        pytest.skip("no statex binary (STATEX_BIN or build/statex) for the C++ side")
    run = subprocess.run([str(binary), "eval", "--checkpoint", str(tmp_path / "back.h5"),
                          "--tokens", str(TOKENS), "--out", str(tmp_path / "ev.h5")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    data = bytearray((tmp_path / "back.h5").read_bytes())
    data[len(data) // 2] ^= 0x02
    (tmp_path / "bad.h5").write_bytes(bytes(data))
    run = subprocess.run([str(binary), "eval", "--checkpoint", str(tmp_path / "bad.h5"),
                          "--tokens", str(TOKENS), "--out", str(tmp_path / "ev2.h5")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "CRC-32 does not match" in run.stderr, run.stderr


def test_fresh_files_from_the_binary_verify(tmp_path):
    """The committed test files are not stale: files the binary writes now verify the same."""
    binary = statex_bin()
    if binary is None:
        pytest.skip("no statex binary (STATEX_BIN or build/statex)")
    from statex_analysis.integrity import verify
    run = subprocess.run([str(binary), "train", "--model.d_model", "16", "--model.vocab_size", "37",
                          "--model.gate_low_rank", "4", "--mqar.train", "16:2:40", "--mqar.test",
                          "16:2:8", "--train.steps", "4", "--train.batch_size", "2",
                          "--train.eval_every", "2", "--train.warmup_steps", "1",
                          "--train.threads", "1", "--quiet", "--out", str(tmp_path / "r.h5"),
                          "--checkpoint-out", str(tmp_path / "ck.h5")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for name in ("r.h5", "ck.h5"):
        assert verify(tmp_path / name) == (True, True)
