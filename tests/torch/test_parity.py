"""Parity of statex-sim's models with the PyTorch reference (tests/torch/statex_ref.py).

For each model variant: build a small checkpoint with our binary (3 training steps, so weights
are not at their init values), write a token file, run `statex grad` (one batch, mean CE over
labelled positions), run the PyTorch model on the same weights, and compare the loss, the logits
at the labelled positions and EVERY parameter gradient.

Binary: $STATEX_BIN, else ./build/statex (relative to the repository root).

Tolerance policy: relative error of a tensor = max|ours - ref| / max|ref| (normwise, so tiny
elements that are sums with cancellation do not dominate). Observed values are ~1e-7..5e-6.
  * vs float64 torch: the reference is exact to ~1e-16, so the error is ours alone: fp32
    rounding (eps 1.2e-7) accumulated through 2 layers, sums over <= a few hundred terms and the
    chunked recurrences. 1e-4 (~840 eps) leaves a 20x margin over the worst observed value, while
    any semantic mistake (a wrong scale, gate, norm, decay or missing term) gives >= 1e-2
    (test_tolerance_detects_a_semantic_change checks that this tolerance does discriminate).
  * vs float32 torch: both sides round, in different orders; allow 3e-4.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
h5py = pytest.importorskip("h5py")

import statex_ref as ref  # noqa: E402  (pytest puts this folder on sys.path: no __init__.py)
from statex_cli import VOCAB, check_run, run, train_and_grad  # noqa: E402
from statex_cli import token_file  # noqa: E402,F401  (fixture)

RTOL = {torch.float64: 1e-4, torch.float32: 3e-4}
TRAIN = ["--model.vocab_size", str(VOCAB), "--mqar.train", "32:4:256", "--mqar.test", "32:4:16",
         "--train.steps", "3", "--train.batch_size", "8", "--train.warmup_steps", "1",
         "--train.eval_every", "100", "--train.threads", "1"]  # 3 steps: weights off their init

# name -> (train options, expand options or None). Small, odd-ish shapes; every feature of the
# model appears in at least one variant (short conv on/off, MLP, tied/untied head, groups,
# per-layer shapes after StateX). A large model.norm_eps checks that it sets the block norms
# and the final norm but not Mamba2's gated norm (fixed 1e-5, as in mamba_ssm).
VARIANTS = {
    "gla": (["--model.model", "gla", "--model.d_model", "40", "--model.heads", "2"], None),
    "gla_mlp_untied_noconv": (
        ["--model.model", "gla", "--model.d_model", "48", "--model.heads", "4", "--model.mlp",
         "true", "--model.tie_embeddings", "false", "--model.use_short_conv", "false",
         "--model.n_layers", "3"], None),
    "mamba2": (["--model.model", "mamba2", "--model.d_model", "24", "--model.head_dim", "12",
                "--model.d_state", "8"], None),
    "mamba2_mlp_untied_groups": (
        ["--model.model", "mamba2", "--model.d_model", "32", "--model.head_dim", "16",
         "--model.d_state", "6", "--model.ngroups", "2", "--model.mlp", "true",
         "--model.tie_embeddings", "false", "--model.norm_eps", "1e-2"], None),
    # Attention against torch's scaled_dot_product_attention: 3 heads of 20 with short conv and
    # RoPE; 4 heads of 12, neither, with MLP and an untied head.
    "attention_conv_rope": (
        ["--model.model", "attention", "--model.d_model", "60", "--model.heads", "3",
         "--model.rope", "true"], None),
    "attention_mlp_untied_plain": (
        ["--model.model", "attention", "--model.d_model", "48", "--model.heads", "4",
         "--model.mlp", "true", "--model.tie_embeddings", "false", "--model.use_short_conv",
         "false"], None),
    "gla_statex_inherit": (
        ["--model.model", "gla", "--model.d_model", "40", "--model.heads", "4"],
        ["--statex.count", "1", "--statex.mode", "inherit", "--statex.gla_heads", "1"]),
    "gated_deltanet": (["--model.model", "gated_deltanet", "--model.d_model", "40",
                        "--model.heads", "2"], None),
    "gated_deltanet_mlp_untied_noconv": (
        ["--model.model", "gated_deltanet", "--model.d_model", "48", "--model.heads", "4",
         "--model.mlp", "true", "--model.tie_embeddings", "false", "--model.use_short_conv",
         "false", "--model.n_layers", "3"], None),
    "gated_deltanet_statex_inherit": (
        ["--model.model", "gated_deltanet", "--model.d_model", "40", "--model.heads", "4"],
        ["--statex.count", "1", "--statex.mode", "inherit", "--statex.gla_heads", "1"]),
    "gated_deltanet_statex_reinit": (
        ["--model.model", "gated_deltanet", "--model.d_model", "40", "--model.heads", "4"],
        ["--statex.count", "1", "--statex.select", "last", "--statex.mode", "reinit",
         "--statex.gla_heads", "2"]),
    "mamba2_statex_reinit": (
        ["--model.model", "mamba2", "--model.d_model", "24", "--model.head_dim", "12",
         "--model.d_state", "8"],
        ["--statex.count", "1", "--statex.select", "last", "--statex.mode", "reinit"]),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def case(request, tmp_path_factory, token_file):
    """(checkpoint path, grad output path) of one variant."""
    name = request.param
    train_opts, expand_opts = VARIANTS[name]
    d = tmp_path_factory.mktemp(name)
    ck, grad = train_and_grad(d, [*train_opts, *TRAIN], expand_opts, token_file)
    return name, ck, grad


def torch_run(ck, token_file, dtype, chunk=8, **overrides):
    """Loss, logits [M, V] and name -> gradient of the torch model on the token file."""
    model = ref.load_model(str(ck), dtype=dtype, chunk=chunk)
    for attr, value in overrides.items():
        for mod in model.modules():
            if hasattr(mod, attr):
                setattr(mod, attr, value)
    with h5py.File(token_file, "r") as f:
        tokens = torch.from_numpy(f["tokens"][()].astype(np.int64))
        labels = torch.from_numpy(f["labels"][()].astype(np.int64))
    logits, loss = model.loss_at_labels(tokens, labels)
    loss.backward()
    grads = {n: p.grad.detach().double().numpy() for n, p in model.named_parameters()}
    return loss.item(), logits.detach().double().numpy(), grads


def rel_err(ours: np.ndarray, theirs: np.ndarray) -> float:
    scale = np.abs(theirs).max()
    return float(np.abs(ours - theirs).max() / scale) if scale > 0 else float(np.abs(ours).max())


def compare(grad_path, loss, logits, grads):
    """name -> relative error for the loss, the logits and every gradient."""
    errs = {}
    with h5py.File(grad_path, "r") as f:
        errs["loss"] = abs(float(f.attrs["loss"]) - loss) / abs(loss)
        ours = f["logits"][()]
        assert ours.shape == logits.shape, (ours.shape, logits.shape)
        errs["logits"] = rel_err(ours, logits)
        ours_names = set(f["grads"])
        assert ours_names == set(grads), f"name sets differ: {ours_names ^ set(grads)}"
        for name, g in grads.items():
            ds = f["grads"][name]
            assert ds.shape == g.shape, f"{name}: shape {ds.shape} vs torch {g.shape}"
            errs[name] = rel_err(ds[()].astype(np.float64), g)
    return errs


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_parity(case, token_file, dtype):
    name, ck, grad = case
    errs = compare(grad, *torch_run(ck, token_file, dtype))
    worst = max(errs, key=errs.get)
    print(f"\n{name} {dtype}: worst {worst} {errs[worst]:.2e}; logits {errs['logits']:.2e}, "
          f"loss {errs['loss']:.2e}")
    bad = {k: f"{v:.2e}" for k, v in errs.items() if not v <= RTOL[dtype]}
    assert not bad, f"{name}: relative errors above {RTOL[dtype]:g}: {bad}"


def test_tolerance_detects_a_semantic_change(token_file, tmp_path):
    """A GLA whose forget gate is normalised by 8 instead of 16 must fail the tolerance: the
    test can fail, and the tolerance is far below the effect of a real semantic difference."""
    ck, grad = train_and_grad(tmp_path, [*VARIANTS["gla"][0], *TRAIN], None, token_file)
    errs = compare(grad, *torch_run(ck, token_file, torch.float64, gate_logit_normalizer=8.0))
    assert max(errs.values()) > 100 * RTOL[torch.float64], errs


def test_grad_requires_labels(tmp_path, case):
    _, ck, _ = case
    path = tmp_path / "nolabels.h5"
    with h5py.File(path, "w") as f:
        f["tokens"] = np.zeros((2, 8), np.int32)
    r = run("grad", "--checkpoint", str(ck), "--tokens", str(path), "--out",
            str(tmp_path / "g.h5"))
    assert r.returncode != 0 and "--tokens" in r.stderr and "labels" in r.stderr, r.stderr
    r = run("grad", "--tokens", str(path), "--out", str(tmp_path / "g.h5"))
    assert r.returncode != 0 and "--checkpoint" in r.stderr, r.stderr


# ---- the reference's own ladder: chunked forms against the per-timestep recurrences ----------


def _grads(fn, inputs):
    out = fn(*inputs)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=out.dtype)
    grads = torch.autograd.grad((out * upstream).sum(), inputs)
    return out.detach(), grads


@pytest.mark.parametrize("form,strong_decay", [("factored", False), ("pairwise", False),
                                               ("pairwise", True), ("auto", True)])
def test_gla_chunked_matches_recurrence(form, strong_decay):
    g = torch.Generator().manual_seed(3)
    B, H, T, K, V = 2, 3, 37, 5, 7
    q, k = (torch.randn(B, H, T, K, generator=g, dtype=torch.float64) for _ in range(2))
    v = torch.randn(B, H, T, V, generator=g, dtype=torch.float64)
    # strong decays (cumulative log decay far beyond -60 within a chunk) would overflow the
    # factored form's exp(-cumsum) in float32; "auto" must then pick the pairwise form
    gk = torch.nn.functional.logsigmoid(torch.randn(B, H, T, K, generator=g, dtype=torch.float64)
                                        * (8 if strong_decay else 1)) * (4 if strong_decay else 1)
    inputs = [t.requires_grad_() for t in (q, k, v, gk)]
    if strong_decay:
        assert -gk.detach()[..., :16, :].sum(-2).min() > 60
    o1, g1 = _grads(lambda *a: ref.gla_chunked(*a, scale=K ** -0.5, chunk=16, form=form), inputs)
    o2, g2 = _grads(lambda *a: ref.gla_recurrent(*a, scale=K ** -0.5), inputs)
    torch.testing.assert_close(o1, o2, rtol=1e-10, atol=1e-10)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_ssd_chunked_matches_recurrence():
    g = torch.Generator().manual_seed(5)
    B, T, H, P, G, N = 2, 37, 4, 3, 2, 5
    x = torch.randn(B, T, H, P, generator=g, dtype=torch.float64)
    dt = torch.nn.functional.softplus(torch.randn(B, T, H, generator=g, dtype=torch.float64))
    A = -torch.rand(H, generator=g, dtype=torch.float64) * 4 - 0.5
    Bm, Cm = (torch.randn(B, T, G, N, generator=g, dtype=torch.float64) for _ in range(2))
    inputs = [t.requires_grad_() for t in (x, dt, A, Bm, Cm)]
    y1, g1 = _grads(lambda *a: ref.ssd_chunked(*a, chunk=8), inputs)
    y2, g2 = _grads(ref.ssd_recurrent, inputs)
    torch.testing.assert_close(y1, y2, rtol=1e-10, atol=1e-10)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("strong_decay,beta_range", [(False, (0.0, 1.0)), (True, (0.0, 1.0)),
                                                     (False, (0.97, 1.0)), (False, (0.0, 0.03))])
def test_gated_delta_chunked_matches_recurrence(strong_decay, beta_range):
    g = torch.Generator().manual_seed(4)
    B, H, T, K, V = 2, 3, 37, 5, 7
    q, k = (torch.randn(B, H, T, K, generator=g, dtype=torch.float64) for _ in range(2))
    k = ref.l2norm(k)
    v = torch.randn(B, H, T, V, generator=g, dtype=torch.float64)
    lo, hi = (-20.0, -5.0) if strong_decay else (-1.0, 0.0)
    gd = lo + (hi - lo) * torch.rand(B, H, T, generator=g, dtype=torch.float64)
    beta = beta_range[0] + (beta_range[1] - beta_range[0]) * torch.rand(B, H, T, generator=g,
                                                                         dtype=torch.float64)
    inputs = [t.requires_grad_() for t in (q, k, v, gd, beta)]
    o1, g1 = _grads(lambda *a: ref.gated_delta_chunked(*a, scale=K ** -0.5, chunk=16), inputs)
    o2, g2 = _grads(lambda *a: ref.gated_delta_recurrent(*a, scale=K ** -0.5), inputs)
    torch.testing.assert_close(o1, o2, rtol=1e-10, atol=1e-10)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_attention_tolerance_detects_a_rope_change(token_file, tmp_path):
    """Attention with RoPE base 5000 instead of 10000 on the torch side must fail the tolerance:
    the attention parity can fail on a position-encoding mistake."""
    d = tmp_path
    check_run("train", *VARIANTS["attention_conv_rope"][0], "--model.vocab_size", str(VOCAB),
              "--mqar.train", "32:4:256", "--mqar.test", "32:4:16", "--train.steps", "3",
              "--train.batch_size", "8", "--out", str(d / "run.h5"), "--checkpoint-out",
              str(d / "ck.h5"), "--quiet")
    check_run("grad", "--checkpoint", str(d / "ck.h5"), "--tokens", str(token_file), "--out",
              str(d / "grad.h5"))
    errs = compare(d / "grad.h5", *torch_run(d / "ck.h5", token_file, torch.float64,
                                            rope_theta=5000.0))
    assert max(errs.values()) > 100 * RTOL[torch.float64], errs


def test_sdpa_matches_explicit_causal_softmax():
    """The reference's attention (torch SDPA, is_causal) against the textbook masked softmax,
    forward and gradients, T not a power of two, heads of odd size."""
    g = torch.Generator().manual_seed(11)
    B, H, T, d = 2, 3, 37, 7
    q, k, v = (torch.randn(B, H, T, d, generator=g, dtype=torch.float64) for _ in range(3))
    inputs = [t.requires_grad_() for t in (q, k, v)]

    def explicit(q, k, v):
        s = q @ k.transpose(-1, -2) * d ** -0.5
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        return s.softmax(-1) @ v

    o1, g1 = _grads(lambda *a: torch.nn.functional.scaled_dot_product_attention(
        *a, is_causal=True), inputs)
    o2, g2 = _grads(explicit, inputs)
    torch.testing.assert_close(o1, o2, rtol=1e-10, atol=1e-10)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
