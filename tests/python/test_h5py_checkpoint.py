"""Checkpoints written from Python with h5py load in `statex` when every tensor is chunked with
Fletcher32 (docs/results_format.md, "Integrity"); without the checksum they are refused by name."""
import subprocess

import h5py
import numpy as np
import pytest

from conftest import REPO

STATEX = REPO / "build" / "statex"
TINY = ["--model.d_model", "16", "--model.vocab_size", "37", "--model.gate_low_rank", "4",
        "--mqar.train", "16:2:40", "--mqar.test", "16:2:8", "--train.steps", "4",
        "--train.batch_size", "2", "--train.eval_every", "2", "--train.warmup_steps", "1",
        "--train.threads", "1", "--quiet"]


def run(*args):
    return subprocess.run([str(STATEX), *map(str, args)], capture_output=True, text=True)


def rewrite_with_h5py(src, dst, fletcher32):
    """Copies every group, dataset and attribute as a Python tool would write them."""
    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        def copy(gin, gout):
            for k, v in gin.attrs.items():
                gout.attrs[k] = v
            for name, obj in gin.items():
                if name == "attr_digests":
                    continue
                if isinstance(obj, h5py.Group):
                    copy(obj, gout.create_group(name))
                elif obj.shape and obj.size:
                    d = gout.create_dataset(name, data=obj[()], chunks=True, fletcher32=fletcher32)
                    for k, v in obj.attrs.items():
                        d.attrs[k] = v
                else:
                    gout.create_dataset(name, data=obj[()])
        copy(fin, fout)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    if not STATEX.exists():
        pytest.skip("build/statex not built")
    d = tmp_path_factory.mktemp("ck")
    r = run("train", *TINY, "--out", d / "r.h5", "--checkpoint-out", d / "ck.h5")
    assert r.returncode == 0, r.stderr
    return d / "ck.h5"


def eval_logits(ck, out):
    r = run("eval", "--checkpoint", ck, "--out", out, "--mqar.test", "16:2:8")
    assert r.returncode == 0, r.stdout + r.stderr
    with h5py.File(out, "r") as f:
        return f["logits"][()]


def test_h5py_fletcher32_checkpoint_loads_identically(checkpoint, tmp_path):
    rewrite_with_h5py(checkpoint, tmp_path / "py.h5", fletcher32=True)
    with h5py.File(tmp_path / "py.h5", "r") as f:
        assert f["params"][next(iter(f["params"]))].fletcher32
    np.testing.assert_array_equal(eval_logits(tmp_path / "py.h5", tmp_path / "e1.h5"),
                                  eval_logits(checkpoint, tmp_path / "e0.h5"))


def test_h5py_checkpoint_without_checksums_is_refused(checkpoint, tmp_path):
    rewrite_with_h5py(checkpoint, tmp_path / "plain.h5", fletcher32=False)
    r = run("eval", "--checkpoint", tmp_path / "plain.h5", "--out", tmp_path / "e.h5",
            "--mqar.test", "16:2:8")
    assert r.returncode == 2
    assert "plain.h5" in r.stderr and "no Fletcher32 checksum" in r.stderr
    assert not (tmp_path / "e.h5").exists()


def test_statex_files_carry_checksums(checkpoint):
    with h5py.File(checkpoint, "r") as f:
        assert "attr_digests" in f
        tensors = []
        f.visititems(lambda n, o: tensors.append(o) if isinstance(o, h5py.Dataset) and o.ndim else None)
        assert tensors and all(t.fletcher32 for t in tensors if t.size)
