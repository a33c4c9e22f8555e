"""export-safetensors / import-safetensors on checkpoints written here (random weights in the C++
table's layout), without the binary or torch: round trips bit for bit, names, config.json, the
warnings for what fla / transformers cannot express, and the refusals (exit 2, nothing written).
The binary's side (eval / expand / train on an import, strict loads, logits) is
tests/torch/test_interop.py."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

pytest.importorskip("safetensors")
from safetensors.numpy import load_file, save_file  # noqa: E402

from statex_analysis.checkpoint import (Checkpoint, param_layout, read_checkpoint,  # noqa: E402
                                        write_checkpoint)
from statex_analysis.cli import main  # noqa: E402

GLA = {"model": "gla", "vocab_size": "50", "d_model": "24", "n_layers": "3", "heads": "4",
       "use_short_conv": "true", "mlp": "false", "tie_embeddings": "true"}
MAMBA2 = {"model": "mamba2", "vocab_size": "50", "d_model": "16", "n_layers": "2",
          "head_dim": "8", "d_state": "6", "mlp": "true", "tie_embeddings": "false"}
# Dk = int(0.35f * 60) = 21, Dv = 42: head dims 7 and 14 (fla: head_dim 7, expand_v 2.0)
GDN = {"model": "gated_deltanet", "vocab_size": "50", "d_model": "60", "n_layers": "2",
       "heads": "3", "expand_k": "0.35", "expand_v": "0.7", "use_short_conv": "true",
       "mlp": "false", "tie_embeddings": "true"}
ATTENTION = {"model": "attention", "vocab_size": "50", "d_model": "16", "n_layers": "2",
             "heads": "2", "use_short_conv": "false", "rope": "true", "rope_theta": "500",
             "mlp": "true", "tie_embeddings": "false"}


def _make(path, options, heads, d_state, seed=0):
    ck = Checkpoint(options=options, layer_heads=heads, layer_d_state=d_state, params={}, step=7)
    rng = np.random.default_rng(seed)
    ck.params = {n: rng.standard_normal(s).astype(np.float32) for n, s in param_layout(ck).items()}
    write_checkpoint(path, ck)
    return path


@pytest.fixture
def gla_expanded(tmp_path):
    """A GLA whose last layer had its 4 heads merged into 1 (StateX)."""
    return _make(tmp_path / "gla.h5", GLA, [4, 4, 1], [0, 0, 0])


@pytest.fixture
def mamba2_mlp(tmp_path):
    return _make(tmp_path / "m2.h5", MAMBA2, [4, 4], [6, 6], seed=1)


@pytest.fixture
def gdn_expanded(tmp_path):
    """A Gated DeltaNet whose last layer had its 3 heads merged into 1 (StateX)."""
    return _make(tmp_path / "gdn.h5", GDN, [3, 1], [0, 0], seed=2)


@pytest.fixture
def attention_rope(tmp_path):
    """Attention as fla's stock TransformerForCausalLM has it: RoPE, no short conv, an MLP."""
    return _make(tmp_path / "attn.h5", ATTENTION, [2, 2], [0, 0], seed=3)


@pytest.mark.parametrize("which", ["gla_expanded", "mamba2_mlp", "gdn_expanded",
                                   "attention_rope"])
def test_round_trip_is_bit_exact(which, request, tmp_path, capsys):
    src = request.getfixturevalue(which)
    assert main(["export-safetensors", str(src), "--out", str(tmp_path / "hf")]) == 0
    err = capsys.readouterr().err
    assert main(["import-safetensors", str(tmp_path / "hf"), "--out",
                 str(tmp_path / "back.h5")]) == 0
    a, b = read_checkpoint(src), read_checkpoint(tmp_path / "back.h5")
    assert list(a.params) == list(b.params)
    assert all(a.params[k].tobytes() == b.params[k].tobytes() for k in a.params)
    assert (a.options, a.layer_heads, a.layer_d_state, a.step) == \
        (b.options, b.layer_heads, b.layer_d_state, b.step)
    with h5py.File(tmp_path / "back.h5", "r") as f:  # checksummed datasets
        assert f["params"][next(iter(a.params))].fletcher32
    if which == "gla_expanded":
        assert "layer(s) [2] have heads [1]" in err
        assert b.expansion["layers"] == [2]  # train --init-from accepts the per-layer shapes
    elif which == "gdn_expanded":
        assert "layer(s) [1] have heads [1]" in err and b.expansion["layers"] == [1]
    elif which == "attention_rope":
        assert "warning" not in err  # what a stock fla TransformerForCausalLM expresses
    else:
        assert "no MLP" in err


@pytest.mark.parametrize("which", ["gdn_expanded", "attention_rope"])
def test_import_of_an_fla_written_config(which, request, tmp_path):
    """Without the `statex` entry (as fla writes config.json), the options come from fla's fields:
    Dk = num_heads * head_dim = 21 and Dv = 42 of D = 60 give float32 expand_k / expand_v whose
    products truncate back to 21 and 42, and per-layer heads come from a_proj's rows."""
    src = request.getfixturevalue(which)
    assert main(["export-safetensors", str(src), "--out", str(tmp_path / "hf")]) == 0
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    del cfg["statex"]
    (tmp_path / "hf" / "config.json").write_text(json.dumps(cfg))
    tensors = load_file(str(tmp_path / "hf" / "model.safetensors"))
    if which == "gdn_expanded":  # fla's block has an MLP: a (zero) MLP is imported as real
        assert cfg["head_dim"] == 7 and cfg["expand_v"] == 2.0
    assert main(["import-safetensors", str(tmp_path / "hf"), "--out",
                 str(tmp_path / "back.h5")]) == 0
    a, b = read_checkpoint(src), read_checkpoint(tmp_path / "back.h5")
    assert (a.layer_heads, b.options["model"]) == (b.layer_heads, a.options["model"])
    assert all(a.params[k].tobytes() == b.params[k].tobytes() for k in a.params)
    assert set(b.params) - set(a.params) == \
        ({k for k in tensors if ".mlp" in k} if which == "gdn_expanded" else set())
    if which == "attention_rope":
        assert (b.options["rope"], float(b.options["rope_theta"])) == ("true", 500.0)


def test_gla_names_and_zero_mlp(gla_expanded, tmp_path):
    assert main(["export-safetensors", str(gla_expanded), "--out", str(tmp_path / "hf")]) == 0
    tensors = load_file(str(tmp_path / "hf" / "model.safetensors"))
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["architectures"] == ["GLAForCausalLM"] and cfg["num_heads"] == 4
    assert cfg["statex"]["layer_heads"] == [4, 4, 1] and cfg["intermediate_size"] == 1
    assert tensors["model.layers.2.attn.g_norm_swish_gate.weight"].shape == (24,)  # Dv / 1 head
    assert tensors["model.layers.0.attn.g_norm_swish_gate.weight"].shape == (6,)
    assert tensors["model.layers.0.attn.q_conv1d.weight"].shape == (12, 1, 4)
    assert tensors["model.layers.0.attn.gk_proj.1.bias"].shape == (12,)
    assert not np.any(tensors["model.layers.1.mlp.down_proj.weight"])
    np.testing.assert_array_equal(tensors["lm_head.weight"], tensors["model.embeddings.weight"])


def test_mamba2_names(mamba2_mlp, tmp_path):
    assert main(["export-safetensors", str(mamba2_mlp), "--out", str(tmp_path / "hf")]) == 0
    tensors = load_file(str(tmp_path / "hf" / "model.safetensors"))
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["architectures"] == ["Mamba2ForCausalLM"] and cfg["num_heads"] == 4
    assert "backbone.embeddings.weight" in tensors and "backbone.embedding.weight" not in tensors
    # in_proj rows [z | x | B | C | dt] = 2*32 + 2*6 + 4
    assert tensors["backbone.layers.0.mixer.in_proj.weight"].shape == (80, 16)
    assert tensors["backbone.layers.1.mixer.conv1d.weight"].shape == (44, 1, 4)


def test_refusals_exit_2_and_write_nothing(gla_expanded, run_file, tmp_path, capsys):
    results = run_file("run.h5")
    assert main(["export-safetensors", str(results), "--out", str(tmp_path / "a")]) == 2
    assert "results file" in capsys.readouterr().err and not (tmp_path / "a").exists()

    assert main(["export-safetensors", str(gla_expanded), "--out", str(tmp_path / "hf")]) == 0
    assert main(["export-safetensors", str(gla_expanded), "--out", str(tmp_path / "hf")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export-safetensors", str(gla_expanded), "--out", str(tmp_path / "hf"),
                 "--overwrite"]) == 0

    hf = tmp_path / "hf"
    cfg = json.loads((hf / "config.json").read_text())
    tensors = load_file(str(hf / "model.safetensors"))

    def attempt(name, config, tensors_, needle):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps(config))
        save_file(tensors_, str(d / "model.safetensors"))
        assert main(["import-safetensors", str(d), "--out", str(d / "ck.h5")]) == 2
        assert needle in capsys.readouterr().err and not (d / "ck.h5").exists()

    foreign = {k: v for k, v in cfg.items() if k != "statex"}
    attempt("kv", {**foreign, "num_kv_heads": 2}, tensors, "num_kv_heads")
    half = {k: v.astype(np.float16) for k, v in tensors.items()}
    attempt("half", cfg, half, "float16")
    bad_shape = dict(tensors)
    bad_shape["model.layers.0.attn.q_proj.weight"] = np.zeros((5, 24), np.float32)
    attempt("shape", cfg, bad_shape, "q_proj.weight' has shape [5, 24], expected [12, 24]")
    untied = dict(tensors)
    untied["lm_head.weight"] = untied["lm_head.weight"] + 1
    attempt("tie", cfg, untied, "lm_head.weight differs from the embedding")
    assert main(["import-safetensors", str(tmp_path), "--out", str(tmp_path / "x.h5")]) == 2
    assert "no model.safetensors" in capsys.readouterr().err


def test_options_are_not_abbreviated(gla_expanded, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["export-safetensors", str(gla_expanded), "--ou", str(tmp_path / "hf")])
    assert err.value.code == 2 and "--ou" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists()
