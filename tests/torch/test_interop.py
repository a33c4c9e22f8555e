"""statex checkpoint -> model.safetensors + config.json -> a PyTorch model with fla's /
transformers' module nesting and names (hf_reference.py: GLA, Gated DeltaNet, attention, Mamba2), loaded with strict=True -> the same
logits and loss as `statex grad`; and back: import-safetensors -> a checkpoint whose parameters
equal the original's bit for bit, which `statex eval`, `statex expand` and `statex train
--init-from` accept.

Tolerance: float64 torch against our fp32, relative error <= 1e-5 (observed <= 4e-7). The
models are trained for a few steps only, so their mixers' share of the logits is small: a negative
control (the same comparison with the mixers' output projections zeroed) shows the comparison
sees a mixer mistake.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
h5py = pytest.importorskip("h5py")
safetensors_torch = pytest.importorskip("safetensors.torch")

import hf_reference as hf  # noqa: E402  (pytest puts this folder on sys.path)
from statex_cli import VOCAB, analysis, check_run, train_and_grad  # noqa: E402
from statex_cli import token_file  # noqa: E402,F401  (fixture)

RTOL = 1e-5
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
    "gdn": (["--model.model", "gated_deltanet", "--model.d_model", "40", "--model.heads", "2"],
            None),
    "gdn_mlp_untied_noconv": (
        ["--model.model", "gated_deltanet", "--model.d_model", "48", "--model.heads", "4",
         "--model.mlp", "true", "--model.tie_embeddings", "false", "--model.use_short_conv",
         "false"], None),
    "gdn_statex": (  # heads 4 -> 1 in the last layer: K 5 -> 20, V 10 -> 40
        ["--model.model", "gated_deltanet", "--model.d_model", "40", "--model.heads", "4"],
        ["--statex.count", "1", "--statex.select", "last", "--statex.mode", "inherit",
         "--statex.gla_heads", "1"]),
    "attention": (["--model.model", "attention", "--model.d_model", "32", "--model.heads", "2"],
                  None),  # our defaults: short conv, no RoPE (neither in a stock fla Attention)
    "attention_rope_noconv_mlp": (  # what a stock fla TransformerForCausalLM expresses
        ["--model.model", "attention", "--model.d_model", "32", "--model.heads", "4",
         "--model.rope", "true", "--model.use_short_conv", "false", "--model.mlp", "true"], None),
}
# name -> what export must warn about (a stock fla / transformers loader cannot build it); every
# other variant exports without a warning.
WARNINGS = {
    "gla_statex": ["GLAConfig has one num_heads"],
    "mamba2_statex": ["Mamba2Config has one state_size"],
    "gdn_statex": ["GatedDeltaNetConfig has one num_heads", "statex.layer_heads"],
    "attention": ["has no short convolution", "always applies RoPE"],
}
ARCHITECTURES = {"gla": "GLAForCausalLM", "gated_deltanet": "GatedDeltaNetForCausalLM",
                 "transformer": "TransformerForCausalLM", "mamba2": "Mamba2ForCausalLM"}


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


def labelled_logits(model, token_file):
    """(logits [M, V], loss) of the model at the token file's labelled positions."""
    with h5py.File(token_file, "r") as f:
        tokens = torch.from_numpy(f["tokens"][()].astype(np.int64))
        labels = torch.from_numpy(f["labels"][()].astype(np.int64))
    with torch.no_grad():
        return model.loss_at_labels(tokens, labels)


def test_strict_load_gives_statex_logits(exported, token_file):
    name, _, export_dir, grad, _ = exported
    model, cfg = load_strict(export_dir)
    logits, loss = labelled_logits(model, token_file)
    with h5py.File(grad, "r") as f:
        ours_logits, ours_loss = f["logits"][()].astype(np.float64), float(f.attrs["loss"])
    assert ours_logits.shape == tuple(logits.shape)
    err = rel_err(ours_logits, logits.numpy())
    print(f"\n{name}: logits rel err {err:.2e}, loss {ours_loss:.6f} vs {loss.item():.6f}")
    assert err <= RTOL, f"{name}: logits differ from statex grad by {err:.2e}"
    assert abs(ours_loss - loss.item()) <= RTOL * abs(loss.item())


def test_logits_comparison_sees_the_mixers(exported, token_file):
    """Negative control: without the mixers' output (o_proj / out_proj zeroed) the logits differ
    from statex grad's by far more than RTOL, so a wrong mixer could not pass."""
    _, _, export_dir, grad, _ = exported
    model, _ = load_strict(export_dir)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("attn.o_proj.weight", "mixer.out_proj.weight")):
                p.zero_()
    logits, _ = labelled_logits(model, token_file)
    with h5py.File(grad, "r") as f:
        err = rel_err(f["logits"][()].astype(np.float64), logits.numpy())
    print(f"\n{exported[0]}: without mixers rel err {err:.2e}")
    assert err > 10 * RTOL


def test_export_names_are_fla_and_transformers_names(exported):
    name, _, export_dir, _, stderr = exported
    keys = set(safetensors_torch.load_file(str(export_dir / "model.safetensors")))
    cfg = json.loads((export_dir / "config.json").read_text())
    assert cfg["architectures"] == [ARCHITECTURES[cfg["model_type"]]]
    attn = "model.layers.0.attn."
    if cfg["model_type"] == "gla":
        assert attn + "g_norm_swish_gate.weight" in keys
        assert not any(".g_norm.weight" in k for k in keys)
    elif cfg["model_type"] == "gated_deltanet":
        assert {attn + n for n in ("a_proj.weight", "b_proj.weight", "A_log", "dt_bias",
                                   "o_norm.weight", "g_proj.weight")} <= keys
        assert (attn + "q_conv1d.weight" in keys) == cfg["use_short_conv"]
    elif cfg["model_type"] == "transformer":
        assert {f"{attn}{p}_proj.weight" for p in "qkvo"} <= keys
        assert (attn + "q_conv1d.weight" in keys) == cfg["use_short_conv"]
        assert (cfg["rope_theta"] is None) == (name == "attention")
    else:
        assert "backbone.embeddings.weight" in keys and "backbone.embedding.weight" not in keys
    if cfg["model_type"] != "mamba2":
        assert "model.layers.0.mlp.down_proj.weight" in keys  # fla's block always has an MLP
    assert "lm_head.weight" in keys  # also when tied (a copy): fla's Mamba2 does not tie
    for expected in WARNINGS.get(name, []):
        assert expected in stderr, stderr
    assert ("warning:" in stderr) == (name in WARNINGS), stderr


@pytest.mark.parametrize("exported", ["gdn_statex"], indirect=True)
def test_expanded_gated_deltanet_exports_per_layer_sizes(exported):
    """A head-merged layer keeps Dk, Dv and every projection but q/k/v/g/o; a_proj, b_proj,
    A_log, dt_bias have one entry per (merged) head and o_norm the merged head's value dim."""
    _, ck, export_dir, _, _ = exported
    state = safetensors_torch.load_file(str(export_dir / "model.safetensors"))
    cfg = json.loads((export_dir / "config.json").read_text())
    assert cfg["statex"]["layer_heads"] == [4, 1] and cfg["num_heads"] == 4
    assert cfg["head_dim"] == 5 and cfg["expand_v"] == 2.0      # Dk = 20, Dv = 40, D = 40
    for layer, heads in enumerate((4, 1)):
        p = f"model.layers.{layer}.attn."
        assert tuple(state[p + "a_proj.weight"].shape) == (heads, 40)
        assert tuple(state[p + "b_proj.weight"].shape) == (heads, 40)
        assert tuple(state[p + "A_log"].shape) == tuple(state[p + "dt_bias"].shape) == (heads,)
        assert tuple(state[p + "o_norm.weight"].shape) == (40 // heads,)
        assert tuple(state[p + "q_proj.weight"].shape) == (20, 40)
    with h5py.File(ck, "r") as f:
        assert f["model/layer_heads"][()].tolist() == [4, 1]


@pytest.mark.parametrize("exported", ["attention"], indirect=True)
def test_stock_attention_tree_rejects_the_short_conv(exported):
    """What the export warns: fla's Attention has no short conv, so the strict load into the stock
    module tree (our tree without the conv) fails on exactly the conv weights."""
    _, _, export_dir, _, _ = exported
    cfg = json.loads((export_dir / "config.json").read_text())
    cfg["use_short_conv"], cfg["rope_theta"] = False, 10000.0
    state = safetensors_torch.load_file(str(export_dir / "model.safetensors"))
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\).*attn\.q_conv1d\.weight"):
        hf.CausalLM(cfg).load_state_dict(state, strict=True)


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


@pytest.mark.parametrize("exported", ["gla", "gdn", "attention"], indirect=True)
def test_imported_checkpoint_trains_on_and_expands(exported, tmp_path):
    """README's path: a model from PyTorch -> statex expand -> statex train --init-from
    (attention: no StateX, its state is a KV cache; trained on directly)."""
    name, _, export_dir, _, _ = exported
    back = tmp_path / "back.h5"
    r = analysis("import-safetensors", export_dir, "--out", back)
    assert r.returncode == 0, r.stderr
    hint = r.stdout.split("train on with: statex train ", 1)[1].split(" [other")[0].split()
    assert hint[:2] == ["--init-from", str(back)] and "--model.d_model" in hint, r.stdout
    big = tmp_path / "big.h5"
    if name == "attention":
        big = back
    else:
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


def _foreign_dir(tmp_path, export_dir, cfg: dict):
    foreign = tmp_path / "foreign"
    foreign.mkdir(exist_ok=True)
    (foreign / "config.json").write_text(json.dumps(cfg))
    (foreign / "model.safetensors").write_bytes((export_dir / "model.safetensors").read_bytes())
    return foreign


@pytest.mark.parametrize("exported", ["gla_mlp_untied_noconv", "gdn_mlp_untied_noconv",
                                      "attention_rope_noconv_mlp"], indirect=True)
def test_import_of_a_foreign_fla_config(exported, tmp_path):
    """A directory written by fla itself has no `statex` entry (nor our attention's short-conv
    keys): options come from the config's fla fields and the tensors' shapes (fla always has an
    MLP: imported with model.mlp = true). The parameters come back bit for bit and evaluate as
    the original."""
    _, ck, export_dir, _, _ = exported
    cfg = json.loads((export_dir / "config.json").read_text())
    for ours in ("statex", "use_short_conv", "conv_size") if cfg["model_type"] == "transformer" \
            else ("statex",):
        del cfg[ours]
    foreign = _foreign_dir(tmp_path, export_dir, cfg)
    r = analysis("import-safetensors", foreign, "--out", tmp_path / "ck.h5")
    assert r.returncode == 0, r.stderr
    (p0, _, s0), (p1, _, s1) = _params(ck), _params(tmp_path / "ck.h5")
    assert list(p0) == list(p1) and s0 == s1
    assert all(p0[k].tobytes() == p1[k].tobytes() for k in p0)
    for path in (ck, tmp_path / "ck.h5"):
        check_run("eval", "--checkpoint", str(path), "--out", str(path.with_suffix(".e.h5")))
    with h5py.File(ck.with_suffix(".e.h5"), "r") as a, \
            h5py.File((tmp_path / "ck.h5").with_suffix(".e.h5"), "r") as b:
        assert float(a.attrs["accuracy"]) == float(b.attrs["accuracy"])


# (variant, config.json change, what the error must name): fla features statex-sim does not have
REFUSED = [
    ("gdn", {"num_v_heads": 4}, "num_v_heads"),            # grouped value heads (GVA)
    ("gdn", {"allow_neg_eigval": True}, "allow_neg_eigval"),
    ("gdn", {"use_gate": False}, "use_gate"),
    ("gdn", {"attn": {"layers": [1], "num_heads": 2}}, "attn"),
    ("attention", {"num_kv_heads": 1}, "num_kv_heads"),    # GQA
    ("attention", {"qk_norm": True}, "qk_norm"),
    ("attention", {"qkv_bias": True}, "qkv_bias"),
    ("attention", {"window_size": 8}, "window_size"),
    ("attention", {"model_type": "rwkv7"}, "model_type"),
]


@pytest.mark.parametrize("variant,change,named", REFUSED,
                         ids=[f"{v}-{n}" for v, _, n in REFUSED])
def test_import_refuses_what_statex_cannot_express(variant, change, named, token_file,
                                                   tmp_path_factory, tmp_path):
    d = tmp_path_factory.mktemp(f"refused_{variant}")
    train_opts, _ = VARIANTS[variant]
    ck, _ = train_and_grad(d, [*train_opts, *TRAIN], None, token_file)
    assert analysis("export-safetensors", ck, "--out", d / "export").returncode == 0
    cfg = json.loads((d / "export" / "config.json").read_text())
    del cfg["statex"]  # as fla would write it
    cfg.update(change)
    r = analysis("import-safetensors", _foreign_dir(tmp_path, d / "export", cfg), "--out",
                 tmp_path / "x.h5")
    assert r.returncode == 2 and named in r.stderr, r.stderr
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("exported", ["gdn"], indirect=True)
def test_import_refuses_a_model_type_that_contradicts_the_statex_entry(exported, tmp_path):
    _, _, export_dir, _, _ = exported
    cfg = json.loads((export_dir / "config.json").read_text())
    cfg["model_type"] = "gla"
    r = analysis("import-safetensors", _foreign_dir(tmp_path, export_dir, cfg), "--out",
                 tmp_path / "x.h5")
    assert r.returncode == 2 and "statex.model_options.model" in r.stderr, r.stderr
