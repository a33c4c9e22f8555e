"""statex checkpoint -> model.safetensors + config.json -> a PyTorch model with fla's /
transformers' module nesting and names (hf_reference.py), loaded with strict=True -> the same
logits and loss as `statex grad`; and back: import-safetensors -> a checkpoint whose parameters
equal the original's bit for bit, which `statex eval`, `statex expand` and `statex train
--init-from` accept.

Tolerance: as test_parity.py (float64 torch against our fp32: relative error <= 1e-4).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
h5py = pytest.importorskip("h5py")
safetensors_torch = pytest.importorskip("safetensors.torch")

import hf_reference as hf  # noqa: E402  (pytest puts this folder on sys.path)
from statex_cli import VOCAB, analysis, check_run, run, train_and_grad  # noqa: E402
from statex_cli import token_file  # noqa: E402,F401  (fixture)

RTOL = 1e-4
TRAIN = ["--model.vocab_size", str(VOCAB), "--mqar.train", "32:4:256", "--mqar.test", "32:4:16",
         "--train.steps", "8", "--train.batch_size", "8", "--train.warmup_steps", "2",
         "--train.eval_every", "100", "--train.threads", "1"]
# name -> (train options, expand options or None)
VARIANTS = {
    "gla": (["--model.model", "gla", "--model.d_model", "40", "--model.heads", "2"], None),
    "gla_mlp_untied_noconv": (
        ["--model.model", "gla", "--model.d_model", "48", "--model.heads", "4", "--model.mlp",
         "true", "--model.tie_embeddings", "false", "--model.use_short_conv", "false"], None),
    "mamba2": (["--model.model", "mamba2", "--model.d_model", "24", "--model.head_dim", "12",
                "--model.d_state", "8"], None),
    "gla_statex": (
        ["--model.model", "gla", "--model.d_model", "40", "--model.heads", "4"],
        ["--statex.count", "1", "--statex.select", "last", "--statex.mode", "inherit",
         "--statex.gla_heads", "1"]),
    "mamba2_statex": (
        ["--model.model", "mamba2", "--model.d_model", "24", "--model.head_dim", "12",
         "--model.d_state", "8", "--model.tie_embeddings", "false"],
        ["--statex.count", "1", "--statex.select", "last", "--statex.mode", "reinit"]),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def exported(request, tmp_path_factory, token_file):
    """(name, checkpoint, export dir, grad file, export stderr) of one trained variant."""
    name = request.param
    train_opts, expand_opts = VARIANTS[name]
    d = tmp_path_factory.mktemp(name)
    ck, grad = train_and_grad(d, [*train_opts, *TRAIN], expand_opts, token_file)
    r = analysis("export-safetensors", ck, "--out", d / "export")
    assert r.returncode == 0, r.stderr
    return name, ck, d / "export", grad, r.stderr


def load_strict(export_dir, dtype=torch.float64):
    cfg = json.loads((export_dir / "config.json").read_text())
    model = hf.CausalLM(cfg, chunk=8)
    state = safetensors_torch.load_file(str(export_dir / "model.safetensors"))
    model.load_state_dict(state, strict=True)
    return model.to(dtype), cfg


def rel_err(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def test_strict_load_gives_statex_logits(exported, token_file):
    name, _, export_dir, grad, _ = exported
    model, cfg = load_strict(export_dir)
    with h5py.File(token_file, "r") as f:
        tokens = torch.from_numpy(f["tokens"][()].astype(np.int64))
        labels = torch.from_numpy(f["labels"][()].astype(np.int64))
    with torch.no_grad():
        logits, loss = model.loss_at_labels(tokens, labels)
    with h5py.File(grad, "r") as f:
        ours_logits, ours_loss = f["logits"][()].astype(np.float64), float(f.attrs["loss"])
    assert ours_logits.shape == tuple(logits.shape)
    err = rel_err(ours_logits, logits.numpy())
    print(f"\n{name}: logits rel err {err:.2e}, loss {ours_loss:.6f} vs {loss.item():.6f}")
    assert err <= RTOL, f"{name}: logits differ from statex grad by {err:.2e}"
    assert abs(ours_loss - loss.item()) <= RTOL * abs(loss.item())


def test_export_names_are_fla_and_transformers_names(exported):
    name, _, export_dir, _, stderr = exported
    keys = set(safetensors_torch.load_file(str(export_dir / "model.safetensors")))
    cfg = json.loads((export_dir / "config.json").read_text())
    if cfg["model_type"] == "gla":
        assert cfg["architectures"] == ["GLAForCausalLM"]
        assert "model.layers.0.attn.g_norm_swish_gate.weight" in keys
        assert not any(".g_norm.weight" in k for k in keys)
        assert "model.layers.0.mlp.down_proj.weight" in keys  # fla's block always has an MLP
    else:
        assert cfg["architectures"] == ["Mamba2ForCausalLM"]
        assert "backbone.embeddings.weight" in keys and "backbone.embedding.weight" not in keys
    assert "lm_head.weight" in keys  # also when tied (a copy): fla's Mamba2 does not tie
    expanded = "statex" in name
    assert ("cannot express" in stderr or "has one" in stderr) == expanded, stderr


def test_strict_load_fails_on_a_wrong_name(exported):
    """The strict load is a real check: fla's unfused name g_norm (or mamba_ssm's embedding) is
    rejected."""
    _, _, export_dir, _, _ = exported
    cfg = json.loads((export_dir / "config.json").read_text())
    state = safetensors_torch.load_file(str(export_dir / "model.safetensors"))
    wrong = {k.replace("g_norm_swish_gate", "g_norm").replace("embeddings", "embedding"): v
             for k, v in state.items()}
    with pytest.raises(RuntimeError, match="Missing key|Unexpected key"):
        hf.CausalLM(cfg).load_state_dict(wrong, strict=True)


def _params(path):
    with h5py.File(path, "r") as f:
        return ({k: f["params"][k][()] for k in f["params"]},
                {k: v for k, v in f["model"].attrs.items()},
                [f["model/layer_heads"][()].tolist(), f["model/layer_d_state"][()].tolist()])


def test_import_round_trip_is_bit_exact(exported, tmp_path):
    name, ck, export_dir, _, _ = exported
    back = tmp_path / "back.h5"
    r = analysis("import-safetensors", export_dir, "--out", back)
    assert r.returncode == 0, r.stderr
    (p0, m0, s0), (p1, m1, s1) = _params(ck), _params(back)
    assert list(p0) == list(p1), "parameter order (the C++ table's) differs"
    for key in p0:
        assert p0[key].dtype == p1[key].dtype and p0[key].shape == p1[key].shape, key
        assert p0[key].tobytes() == p1[key].tobytes(), f"{name}: {key} not bit-identical"
    assert m0 == m1 and s0 == s1
    # the binary reads it, and evaluates it exactly as the original
    for path in (ck, back):
        check_run("eval", "--checkpoint", str(path), "--out", str(path.with_suffix(".eval.h5")))
    with h5py.File(ck.with_suffix(".eval.h5"), "r") as a, \
            h5py.File(back.with_suffix(".eval.h5"), "r") as b:
        assert float(a.attrs["accuracy"]) == float(b.attrs["accuracy"])
    # and a second export of the import is byte-identical tensor by tensor
    r = analysis("export-safetensors", back, "--out", tmp_path / "again")
    assert r.returncode == 0, r.stderr
    t0 = safetensors_torch.load_file(str(export_dir / "model.safetensors"))
    t1 = safetensors_torch.load_file(str(tmp_path / "again" / "model.safetensors"))
    assert t0.keys() == t1.keys() and all(torch.equal(t0[k], t1[k]) for k in t0)


@pytest.mark.parametrize("exported", ["gla"], indirect=True)
def test_imported_checkpoint_trains_on_and_expands(exported, tmp_path):
    """README's path: a model from PyTorch -> statex expand -> statex train --init-from."""
    _, _, export_dir, _, _ = exported
    back = tmp_path / "back.h5"
    r = analysis("import-safetensors", export_dir, "--out", back)
    assert r.returncode == 0, r.stderr
    hint = r.stdout.split("train on with: statex train ", 1)[1].split(" [other")[0].split()
    assert hint[:2] == ["--init-from", str(back)] and "--model.d_model" in hint, r.stdout
    big = tmp_path / "big.h5"
    check_run("expand", "--checkpoint", str(back), "--out", str(big), "--statex.count", "1",
              "--statex.select", "last", "--statex.mode", "inherit")
    check_run("train", *hint[2:], *TRAIN[2:], "--init-from", str(big), "--out",
              str(tmp_path / "on.h5"), "--quiet")  # TRAIN[2:]: model options from the hint
    with h5py.File(tmp_path / "on.h5", "r") as f:
        assert f.attrs["status"] in (b"completed", "completed")


@pytest.mark.parametrize("exported", ["gla"], indirect=True)
def test_import_refuses_a_trained_zero_mlp_and_existing_output(exported, tmp_path):
    _, ck, export_dir, _, _ = exported
    state = safetensors_torch.load_file(str(export_dir / "model.safetensors"))
    state["model.layers.1.mlp.down_proj.weight"] += 0.5
    changed = tmp_path / "changed"
    changed.mkdir()
    safetensors_torch.save_file(state, str(changed / "model.safetensors"))
    (changed / "config.json").write_text((export_dir / "config.json").read_text())
    r = analysis("import-safetensors", changed, "--out", tmp_path / "x.h5")
    assert r.returncode == 2 and "down_proj" in r.stderr and not (tmp_path / "x.h5").exists()
    r = analysis("export-safetensors", ck, "--out", export_dir)
    assert r.returncode == 2 and "--overwrite" in r.stderr


@pytest.mark.parametrize("exported", ["gla_mlp_untied_noconv"], indirect=True)
def test_import_of_a_foreign_fla_config(exported, tmp_path):
    """A directory written by fla itself has no `statex` entry: options come from GLAConfig's
    fields and the tensors' shapes (fla always has an MLP: imported with model.mlp = true)."""
    _, _, export_dir, _, _ = exported
    cfg = json.loads((export_dir / "config.json").read_text())
    del cfg["statex"]
    foreign = tmp_path / "fla"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps(cfg))
    (foreign / "model.safetensors").write_bytes((export_dir / "model.safetensors").read_bytes())
    r = analysis("import-safetensors", foreign, "--out", tmp_path / "ck.h5")
    assert r.returncode == 0, r.stderr
    r = run("eval", "--checkpoint", str(tmp_path / "ck.h5"), "--out", str(tmp_path / "e.h5"))
    assert r.returncode == 0, r.stderr
