"""PyTorch reference of statex-sim's language models (docs/design.md §1), for parity tests and for
benchmarking our CPU path against what a researcher would write in PyTorch.

Written from the spec, not from our C++: the recurrences use the usual chunked matmul forms
(GLA: intra-chunk decayed attention with log-space cumulative decays plus inter-chunk state
passing; Mamba2: the SSD "segsum" form of ssd_minimal; Gated DeltaNet: the WY / UT-transform
chunked form). Module attribute names are chosen so
that ``state_dict()`` keys are exactly our checkpoint's parameter names (docs/pytorch_names.md),
so a checkpoint loads with ``load_state_dict(strict=True)``.

    model = load_model("ck.h5", dtype=torch.float64)
    logits, loss = model.loss_at_labels(tokens, labels)   # labels: -100 = unlabelled
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE_LABEL = -100
MAMBA2_GATED_NORM_EPS = 1e-5  # mamba_ssm Mamba2: RMSNormGated(eps=1e-5), independent of norm_epsilon


# ----------------------------------------------------------------------------- config


@dataclass
class ModelConfig:
    """The ``model.*`` options of a checkpoint (sim/core/config.h), plus per-layer shapes."""

    model: str = "gla"
    vocab_size: int = 256
    d_model: int = 64
    n_layers: int = 2
    mlp: bool = False
    mlp_hidden: int = 0
    tie_embeddings: bool = True
    norm_eps: float = 1e-5
    heads: int = 2
    expand_k: float = 0.5
    expand_v: float = 1.0
    use_short_conv: bool = True
    conv_width: int = 4
    gate_low_rank: int = 16
    gate_logit_normalizer: float = 16.0
    expand: int = 2
    head_dim: int = 16
    ngroups: int = 1
    d_state: int = 16
    rope: bool = False
    rope_theta: float = 10000.0
    layer_heads: list[int] = field(default_factory=list)    # [L]; empty = `heads` everywhere
    layer_d_state: list[int] = field(default_factory=list)  # [L]; empty = `d_state` everywhere

    @property
    def key_dim(self) -> int:  # Dk (C++ truncates float * int)
        return int(np.float32(self.expand_k) * self.d_model)

    @property
    def value_dim(self) -> int:  # Dv
        return int(np.float32(self.expand_v) * self.d_model)

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def hidden_mlp(self) -> int:  # 0 = 8D/3 rounded up to a multiple of 8 (integer arithmetic)
        return self.mlp_hidden if self.mlp_hidden > 0 else ((8 * self.d_model // 3 + 7) // 8) * 8

    def heads_of(self, layer: int) -> int:
        return self.layer_heads[layer] if self.layer_heads else self.heads

    def d_state_of(self, layer: int) -> int:
        return self.layer_d_state[layer] if self.layer_d_state else self.d_state


def _parse(value: str, like):
    if isinstance(like, bool):
        if value not in ("true", "false", "1", "0"):
            raise ValueError(f"not a boolean: {value!r}")
        return value in ("true", "1")
    return type(like)(value)


def read_config(path: str) -> ModelConfig:
    """Model config of a checkpoint: string attrs of /model and the per-layer shape lists."""
    cfg = ModelConfig()
    with h5py.File(path, "r") as f:
        for key, raw in f["model"].attrs.items():
            name = key.removeprefix("model.")
            if name in ("layer_heads", "layer_d_state") or not hasattr(cfg, name):
                continue
            value = raw.decode() if isinstance(raw, bytes) else str(raw)
            setattr(cfg, name, _parse(value, getattr(cfg, name)))
        cfg.layer_heads = [int(x) for x in f["model/layer_heads"][()]]
        cfg.layer_d_state = [int(x) for x in f["model/layer_d_state"][()]]
    return cfg


def read_params(path: str) -> dict[str, np.ndarray]:
    """/params/<name> of a checkpoint, name -> float32 array of the parameter's shape."""
    with h5py.File(path, "r") as f:
        return {name: np.asarray(ds[()], dtype=np.float32) for name, ds in f["params"].items()}


# ----------------------------------------------------------------------------- small modules


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight over the last dim."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class GatedMLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)) (fla GatedMLP names)."""

    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(d, hidden, bias=False)
        self.up_proj = nn.Linear(d, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def depthwise_conv(channels: int, width: int, bias: bool) -> nn.Conv1d:
    return nn.Conv1d(channels, channels, width, groups=channels, padding=width - 1, bias=bias)


def causal_conv(conv: nn.Conv1d, x):
    """Causal depthwise conv over time. x [B, T, C] -> [B, T, C] (left zero padding)."""
    T = x.shape[1]
    return conv(x.transpose(1, 2))[..., :T].transpose(1, 2)


def add_short_convs(mod: nn.Module, cfg: ModelConfig, channels) -> None:
    """fla's ShortConvolution on q, k, v (q/k/v_conv1d, no bias) when cfg.use_short_conv."""
    mod.use_short_conv = cfg.use_short_conv
    if cfg.use_short_conv:
        for name, c in zip(("q", "k", "v"), channels):
            setattr(mod, f"{name}_conv1d", depthwise_conv(c, cfg.conv_width, bias=False))


def short_convs(mod: nn.Module, q, k, v):
    """silu(causal conv) of q, k, v [B, T, C] through mod's short convs, if it has them."""
    if not mod.use_short_conv:
        return q, k, v
    return tuple(F.silu(causal_conv(getattr(mod, f"{n}_conv1d"), t))
                 for n, t in zip("qkv", (q, k, v)))


# ----------------------------------------------------------------------------- GLA


def gla_chunked(q, k, v, gk, scale: float, chunk: int = 16, form: str = "auto"):
    """Gated linear attention, chunked form.

    Per (b, h): S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t, o_t = (scale q_t) S_t, S_0 = 0.
    q, k, gk [B, H, T, K]; v [B, H, T, V]; gk = log decay (<= 0). Returns o [B, H, T, V].

    Within a chunk, b = cumsum(gk) (inclusive). Then o_i = sum_{j<=i} (q_i * exp(b_i - b_j)) . k_j
    v_j + (q_i * exp(b_i)) S_chunk_start. The intra-chunk term uses the factored form
    (q exp(b)) (k exp(-b))^T when exp(-b) cannot overflow, else the exact pairwise form
    (form = "auto"; "factored" / "pairwise" force one).
    """
    B, H, T, K = q.shape
    Vd = v.shape[-1]
    pad = (-T) % chunk
    if pad:  # zero q/k/v and zero log-decay in the padding: no effect on earlier outputs
        q, k, v, gk = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v, gk))
    n = q.shape[2] // chunk
    q, k, gk = (t.reshape(B, H, n, chunk, K) for t in (q, k, gk))
    v = v.reshape(B, H, n, chunk, Vd)
    q = q * scale
    b = gk.cumsum(-2)                      # [B, H, n, C, K], <= 0, decreasing in time
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()

    if form == "auto":  # exp(-b) <= e^60 is safe even in float32
        form = "factored" if (-b).max().item() < 60.0 else "pairwise"
    if form == "factored":
        attn = (q * b.exp()) @ (k * (-b).exp()).transpose(-1, -2)          # [B, H, n, C, C]
    else:
        rel = (b.unsqueeze(-2) - b.unsqueeze(-3)).masked_fill(~causal[..., None], -math.inf)
        attn = torch.einsum("...ik,...jk,...ijk->...ij", q, k, rel.exp())
    attn = attn.masked_fill(~causal, 0.0)
    o_intra = attn @ v                                                      # [B, H, n, C, V]

    b_last = b[..., -1:, :]                                                 # [B, H, n, 1, K]
    k_to_end = k * (b_last - b).exp()  # each key decayed to the end of its chunk
    q_from_start = q * b.exp()         # each query decayed from the chunk start
    state = q.new_zeros(B, H, K, Vd)
    o_inter = []
    for c in range(n):
        o_inter.append(q_from_start[:, :, c] @ state)
        state = b_last[:, :, c].transpose(-1, -2).exp() * state + k_to_end[:, :, c].transpose(-1, -2) @ v[:, :, c]
    o = o_intra + torch.stack(o_inter, dim=2)
    return o.reshape(B, H, n * chunk, Vd)[:, :, :T]


def gla_recurrent(q, k, v, gk, scale: float):
    """Per-timestep recurrence (the definition); slow, for testing gla_chunked."""
    B, H, T, K = q.shape
    state = q.new_zeros(B, H, K, v.shape[-1])
    out = []
    for t in range(T):
        state = gk[:, :, t].exp()[..., None] * state + k[:, :, t, :, None] * v[:, :, t, None, :]
        out.append((scale * q[:, :, t, None, :]) @ state)
    return torch.cat(out, dim=2)


class GatedLinearAttention(nn.Module):
    """fla GatedLinearAttention (docs/design.md §1), attribute names = fla's state_dict names."""

    def __init__(self, cfg: ModelConfig, heads: int, chunk: int = 16):
        super().__init__()
        D, Dk, Dv, r = cfg.d_model, cfg.key_dim, cfg.value_dim, cfg.gate_low_rank
        self.heads, self.chunk = heads, chunk
        self.gate_logit_normalizer = cfg.gate_logit_normalizer
        self.q_proj = nn.Linear(D, Dk, bias=False)
        self.k_proj = nn.Linear(D, Dk, bias=False)
        self.v_proj = nn.Linear(D, Dv, bias=False)
        self.g_proj = nn.Linear(D, Dv, bias=False)
        self.gk_proj = nn.Sequential(nn.Linear(D, r, bias=False), nn.Linear(r, Dk, bias=True))
        self.o_proj = nn.Linear(Dv, D, bias=False)
        self.g_norm = RMSNorm(Dv // heads, cfg.norm_eps)  # shared by heads
        add_short_convs(self, cfg, (Dk, Dk, Dv))

    def forward(self, x):  # x [B, T, D]
        B, T, _ = x.shape
        H = self.heads
        q, k, v = short_convs(self, self.q_proj(x), self.k_proj(x), self.v_proj(x))
        gk = F.logsigmoid(self.gk_proj(x)) / self.gate_logit_normalizer

        def heads(t):  # [B, T, H*d] -> [B, H, T, d]
            return t.reshape(B, T, H, -1).transpose(1, 2)

        K = q.shape[-1] // H
        o = gla_chunked(heads(q), heads(k), heads(v), heads(gk), K ** -0.5, self.chunk)
        o = o.transpose(1, 2)                                   # [B, T, H, Vh]
        g = self.g_proj(x).reshape(B, T, H, -1)
        o = self.g_norm(o) * F.silu(g)                          # FusedRMSNormSwishGate
        return self.o_proj(o.reshape(B, T, -1))


# ----------------------------------------------------------------------------- Gated DeltaNet


def gated_delta_chunked(q, k, v, g, beta, scale: float, chunk: int = 16):
    """Gated delta rule, chunked WY / UT-transform form (as fla's chunk_gated_delta_rule).

    Per (b, h), S_0 = 0, a_t = exp(g_t):
        S_t = a_t S_{t-1} + beta_t k_t (v_t - a_t S_{t-1}^T k_t)^T,  o_t = (scale q_t) S_t.
    q, k [B, H, T, K]; v [B, H, T, V]; g (log decay, <= 0), beta [B, H, T]. Returns o [B, H, T, V].

    Within a chunk, G = cumsum(g) and the new values delta_i = beta_i (v_i - a_i S_{i-1}^T k_i)
    solve (I + A) delta = beta V - diag(beta exp(G)) K S with A_ij = beta_i exp(G_i - G_j) k_i.k_j
    (j < i): delta = U - W S, U and W by a unit lower-triangular solve. Every exponent is G_i - G_j
    with j <= i or G_i, so nothing overflows.
    """
    B, H, T, K = q.shape
    Vd = v.shape[-1]
    pad = (-T) % chunk
    if pad:  # zero k, v, beta and log decay in the padding: the state passes through unchanged
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        g, beta = (F.pad(t, (0, pad)) for t in (g, beta))
    n = q.shape[2] // chunk
    q, k = (t.reshape(B, H, n, chunk, K) for t in (q, k))
    v = v.reshape(B, H, n, chunk, Vd)
    g, beta = (t.reshape(B, H, n, chunk) for t in (g, beta))
    G = g.cumsum(-1)                                                        # [B, H, n, C]
    lower = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    strict = lower.tril(-1)
    decay = (G[..., :, None] - G[..., None, :]).masked_fill(~lower, -math.inf).exp()  # [.., C, C]
    A = (beta[..., None] * (k @ k.transpose(-1, -2)) * decay).masked_fill(~strict, 0.0)
    I_A = A + torch.eye(chunk, dtype=q.dtype, device=q.device)
    U = torch.linalg.solve_triangular(I_A, beta[..., None] * v, upper=False, unitriangular=True)
    W = torch.linalg.solve_triangular(I_A, (beta * G.exp())[..., None] * k, upper=False,
                                      unitriangular=True)
    M = ((q @ k.transpose(-1, -2)) * decay).masked_fill(~lower, 0.0)       # [B, H, n, C, C]
    k_to_end = k * (G[..., -1:] - G).exp()[..., None]
    state = q.new_zeros(B, H, K, Vd)
    out = []
    for c in range(n):
        delta = U[:, :, c] - W[:, :, c] @ state                             # [B, H, C, V]
        out.append(scale * (G[:, :, c].exp()[..., None] * q[:, :, c] @ state + M[:, :, c] @ delta))
        state = G[:, :, c, -1].exp()[..., None, None] * state + \
            k_to_end[:, :, c].transpose(-1, -2) @ delta
    return torch.stack(out, dim=2).reshape(B, H, n * chunk, Vd)[:, :, :T]


def gated_delta_recurrent(q, k, v, g, beta, scale: float):
    """Per-timestep recurrence (fla naive_recurrent_gated_delta_rule); for testing the chunked form."""
    B, H, T, K = q.shape
    state = q.new_zeros(B, H, K, v.shape[-1])
    out = []
    for t in range(T):
        state = g[:, :, t].exp()[..., None, None] * state
        u = (k[:, :, t, None, :] @ state).squeeze(-2)                       # [B, H, V]
        new = beta[:, :, t, None] * (v[:, :, t] - u)
        state = state + k[:, :, t, :, None] * new[..., None, :]
        out.append((scale * q[:, :, t, None, :]) @ state)
    return torch.cat(out, dim=2)


def l2norm(x, eps: float = 1e-6):
    """fla l2norm: x / sqrt(sum(x^2) + eps) over the last dim."""
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps)


class GatedDeltaNet(nn.Module):
    """fla GatedDeltaNet (docs/design.md §1) with fla's defaults (use_gate, no negative eigenvalues,
    no GVA, conv without bias); head dims K = Dk / H, V = Dv / H. Attribute names = fla's."""

    def __init__(self, cfg: ModelConfig, heads: int, chunk: int = 16):
        super().__init__()
        D, Dk, Dv = cfg.d_model, cfg.key_dim, cfg.value_dim
        self.heads, self.chunk = heads, chunk
        self.q_proj = nn.Linear(D, Dk, bias=False)
        self.k_proj = nn.Linear(D, Dk, bias=False)
        self.v_proj = nn.Linear(D, Dv, bias=False)
        self.g_proj = nn.Linear(D, Dv, bias=False)
        self.a_proj = nn.Linear(D, heads, bias=False)
        self.b_proj = nn.Linear(D, heads, bias=False)
        self.A_log = nn.Parameter(torch.zeros(heads))
        self.dt_bias = nn.Parameter(torch.zeros(heads))
        self.o_norm = RMSNorm(Dv // heads, cfg.norm_eps)  # FusedRMSNormGated, shared by heads
        self.o_proj = nn.Linear(Dv, D, bias=False)
        add_short_convs(self, cfg, (Dk, Dk, Dv))

    def forward(self, x):  # x [B, T, D]
        B, T, _ = x.shape
        H = self.heads
        q, k, v = short_convs(self, self.q_proj(x), self.k_proj(x), self.v_proj(x))
        if not self.use_short_conv:  # fla: SiLU with or without the conv (short_convs has it)
            q, k, v = F.silu(q), F.silu(k), F.silu(v)

        def heads(t):  # [B, T, H*d] -> [B, H, T, d]
            return t.reshape(B, T, H, -1).transpose(1, 2)

        q, k, v = l2norm(heads(q)), l2norm(heads(k)), heads(v)
        beta = torch.sigmoid(self.b_proj(x)).transpose(1, 2)                           # [B, H, T]
        g = (-self.A_log.exp() * F.softplus(self.a_proj(x) + self.dt_bias)).transpose(1, 2)
        o = gated_delta_chunked(q, k, v, g, beta, q.shape[-1] ** -0.5, self.chunk)
        o = o.transpose(1, 2)                                                          # [B, T, H, V]
        o = self.o_norm(o) * F.silu(self.g_proj(x).reshape(B, T, H, -1))
        return self.o_proj(o.reshape(B, T, -1))


# ----------------------------------------------------------------------------- attention


def rotary(x, theta: float):
    """RoPE, rotate-half form (fla RotaryEmbedding, interleaved=False). x [B, H, T, d], d even.
    Angles in float64 then cast, as the C++ ops (sim/ops/cpu/rope.cpp)."""
    T, d = x.shape[-2], x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)      # [T, d/2]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class Attention(nn.Module):
    """Causal softmax MHA (fla Attention / Zoology MHA; docs/design.md §1), no bias, no dropout, scale
    (D/H)^-0.5 via torch.nn.functional.scaled_dot_product_attention. Optional GLA-style short
    conv + SiLU on q, k, v and optional RoPE on q, k."""

    def __init__(self, cfg: ModelConfig, heads: int):
        super().__init__()
        D = cfg.d_model
        self.heads, self.rope, self.rope_theta = heads, cfg.rope, cfg.rope_theta
        self.q_proj = nn.Linear(D, D, bias=False)
        self.k_proj = nn.Linear(D, D, bias=False)
        self.v_proj = nn.Linear(D, D, bias=False)
        self.o_proj = nn.Linear(D, D, bias=False)
        add_short_convs(self, cfg, (D, D, D))

    def forward(self, x):  # x [B, T, D]
        B, T, D = x.shape
        q, k, v = short_convs(self, self.q_proj(x), self.k_proj(x), self.v_proj(x))
        q, k, v = (t.reshape(B, T, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        if self.rope:
            q, k = rotary(q, self.rope_theta), rotary(k, self.rope_theta)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)     # [B, H, T, D/H]
        return self.o_proj(o.transpose(1, 2).reshape(B, T, D))


# ----------------------------------------------------------------------------- Mamba2


def segsum(x):
    """x [..., L] -> [..., L, L] with out[i, j] = x[j+1] + ... + x[i] for j <= i, -inf above.

    Summed as a masked cumsum (not a difference of cumsums) so nothing cancels.
    """
    L = x.shape[-1]
    strictly_lower = torch.ones(L, L, dtype=torch.bool, device=x.device).tril(-1)
    terms = x[..., :, None].expand(*x.shape, L).masked_fill(~strictly_lower, 0.0)  # [.., i, j] = x_i (i > j)
    out = terms.cumsum(-2)
    lower = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
    return out.masked_fill(~lower, -math.inf)


def ssd_chunked(x, dt, A, Bm, Cm, chunk: int = 16):
    """Mamba2 SSD, chunked (segsum) form.

    Per (b, head h, group g(h)): h_t = exp(dt_t A_h) h_{t-1} + dt_t x_t (x) B_t, y_t = h_t C_t.
    x [B, T, H, P]; dt [B, T, H] (after softplus); A [H] (negative); Bm, Cm [B, T, G, N].
    Returns y [B, T, H, P] (no D skip).
    """
    Bsz, T, H, P = x.shape
    G = Bm.shape[2]
    Bm = Bm.repeat_interleave(H // G, dim=2)  # group of head h is h // (H/G)
    Cm = Cm.repeat_interleave(H // G, dim=2)
    pad = (-T) % chunk
    if pad:  # dt = 0 in the padding: no decay, no input
        x, Bm, Cm = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (x, Bm, Cm))
        dt = F.pad(dt, (0, 0, 0, pad))
    n = x.shape[1] // chunk
    X = (x * dt[..., None]).reshape(Bsz, n, chunk, H, P)
    Bc = Bm.reshape(Bsz, n, chunk, H, -1)
    Cc = Cm.reshape(Bsz, n, chunk, H, -1)
    a = (dt * A).reshape(Bsz, n, chunk, H).permute(0, 3, 1, 2)  # [B, H, n, C] log decay per step
    a_cum = a.cumsum(-1)

    # 1. within each chunk: decayed attention C_i . B_j exp(a_{j+1..i}) X_j
    decay = segsum(a).exp()                                                  # [B, H, n, C, C]
    y_diag = torch.einsum("bcihn,bcjhn,bhcij,bcjhp->bcihp", Cc, Bc, decay, X)
    # 2. state contributed by each chunk, decayed to the chunk end
    to_end = (a_cum[..., -1:] - a_cum).exp()                                 # [B, H, n, C]
    chunk_states = torch.einsum("bcjhn,bhcj,bcjhp->bchpn", Bc, to_end, X)    # [B, n, H, P, N]
    # 3. pass states across chunks: state at the start of chunk z sums chunks c < z
    start = torch.cat([torch.zeros_like(chunk_states[:, :1]), chunk_states], dim=1)
    across = segsum(F.pad(a_cum[..., -1], (1, 0))).exp()                     # [B, H, n+1, n+1]
    states = torch.einsum("bhzc,bchpn->bzhpn", across, start)[:, :-1]        # [B, n, H, P, N]
    # 4. read the incoming state at each position
    from_start = a_cum.exp()                                                 # [B, H, n, C]
    y_off = torch.einsum("bcihn,bchpn,bhci->bcihp", Cc, states, from_start)
    y = (y_diag + y_off).reshape(Bsz, n * chunk, H, P)
    return y[:, :T]


def ssd_recurrent(x, dt, A, Bm, Cm):
    """Per-timestep recurrence (the definition); slow, for testing ssd_chunked."""
    Bsz, T, H, P = x.shape
    G = Bm.shape[2]
    Bm = Bm.repeat_interleave(H // G, dim=2)
    Cm = Cm.repeat_interleave(H // G, dim=2)
    h = x.new_zeros(Bsz, H, P, Bm.shape[-1])
    ys = []
    for t in range(T):
        h = (dt[:, t] * A).exp()[..., None, None] * h + \
            (dt[:, t, :, None] * x[:, t])[..., None] * Bm[:, t, :, None, :]
        ys.append((h @ Cm[:, t, :, :, None]).squeeze(-1))
    return torch.stack(ys, dim=1)


class Mamba2(nn.Module):
    """mamba_ssm Mamba2 mixer (docs/design.md §1); attribute names = mamba_ssm's state_dict
    names."""

    def __init__(self, cfg: ModelConfig, d_state: int, chunk: int = 16):
        super().__init__()
        D, di, P, G = cfg.d_model, cfg.d_inner, cfg.head_dim, cfg.ngroups
        H = di // P
        self.d_inner, self.head_dim, self.ngroups, self.d_state = di, P, G, d_state
        # mamba_ssm's Mamba2 fixes its RMSNormGated eps at 1e-5; cfg.norm_eps is for block norms
        self.nheads, self.chunk, self.eps = H, chunk, MAMBA2_GATED_NORM_EPS
        conv_dim = di + 2 * G * d_state
        self.in_proj = nn.Linear(D, 2 * di + 2 * G * d_state + H, bias=False)
        self.conv1d = depthwise_conv(conv_dim, cfg.conv_width, bias=True)
        self.dt_bias = nn.Parameter(torch.zeros(H))
        self.A_log = nn.Parameter(torch.zeros(H))
        self.D = nn.Parameter(torch.ones(H))
        self.norm = RMSNorm(di, MAMBA2_GATED_NORM_EPS)  # weight only; grouped norm done in forward
        self.out_proj = nn.Linear(di, D, bias=False)

    def forward(self, u):  # u [B, T, D]
        B, T, _ = u.shape
        di, G, N, H, P = self.d_inner, self.ngroups, self.d_state, self.nheads, self.head_dim
        z, xBC, dt = self.in_proj(u).split([di, di + 2 * G * N, H], dim=-1)
        xBC = F.silu(causal_conv(self.conv1d, xBC))
        x, Bm, Cm = xBC.split([di, G * N, G * N], dim=-1)
        dt = F.softplus(dt + self.dt_bias)
        A = -self.A_log.exp()
        x = x.reshape(B, T, H, P)
        y = ssd_chunked(x, dt, A, Bm.reshape(B, T, G, N), Cm.reshape(B, T, G, N), self.chunk)
        y = (y + self.D[:, None] * x).reshape(B, T, di)
        # RMSNormGated(norm_before_gate=False): gate first, then RMS over groups of di/G channels
        g = (y * F.silu(z)).reshape(B, T, G, di // G)
        g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.out_proj(g.reshape(B, T, di) * self.norm.weight)


# ----------------------------------------------------------------------------- language model


class Block(nn.Module):
    """Pre-norm block: x += mixer(norm(x)); if mlp: x += mlp(norm2(x))."""

    def __init__(self, cfg: ModelConfig, layer: int, chunk: int):
        super().__init__()
        D, eps = cfg.d_model, cfg.norm_eps
        self._mamba = cfg.model == "mamba2"
        if self._mamba:  # backbone.layers.i.{norm, mixer, norm2, mlp}
            self.norm = RMSNorm(D, eps)
            self.mixer = Mamba2(cfg, cfg.d_state_of(layer), chunk)
            if cfg.mlp:
                self.norm2 = RMSNorm(D, eps)
        else:  # model.layers.i.{attn_norm, attn, mlp_norm, mlp}
            self.attn_norm = RMSNorm(D, eps)
            if cfg.model == "attention":
                self.attn = Attention(cfg, cfg.heads)
            else:
                mixer = GatedDeltaNet if cfg.model == "gated_deltanet" else GatedLinearAttention
                self.attn = mixer(cfg, cfg.heads_of(layer), chunk)
            if cfg.mlp:
                self.mlp_norm = RMSNorm(D, eps)
        if cfg.mlp:
            self.mlp = GatedMLP(D, cfg.hidden_mlp)
        self.has_mlp = cfg.mlp

    def forward(self, x):
        if self._mamba:
            x = x + self.mixer(self.norm(x))
            return x + self.mlp(self.norm2(x)) if self.has_mlp else x
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x)) if self.has_mlp else x


class Backbone(nn.Module):
    def __init__(self, cfg: ModelConfig, chunk: int):
        super().__init__()
        emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self._mamba = cfg.model == "mamba2"
        if self._mamba:
            self.embedding, self.norm_f = emb, RMSNorm(cfg.d_model, cfg.norm_eps)
        else:
            self.embeddings, self.norm = emb, RMSNorm(cfg.d_model, cfg.norm_eps)
        self.layers = nn.ModuleList(Block(cfg, i, chunk) for i in range(cfg.n_layers))

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.embedding if self._mamba else self.embeddings

    def forward(self, tokens):
        x = self.token_embedding(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.norm_f(x) if self._mamba else self.norm(x)


class LanguageModel(nn.Module):
    """GLA, attention or Gated DeltaNet (fla GLAForCausalLM / TransformerForCausalLM /
    GatedDeltaNetForCausalLM names: model.*) or Mamba2 (MambaLMHeadModel names: backbone.*)."""

    def __init__(self, cfg: ModelConfig, chunk: int = 16):
        super().__init__()
        if cfg.model not in ("gla", "mamba2", "attention", "gated_deltanet"):
            raise ValueError(f"unknown model.model {cfg.model!r}")
        self.cfg = cfg
        body = Backbone(cfg, chunk)
        if cfg.model == "mamba2":
            self.backbone = body
        else:
            self.model = body
        if not cfg.tie_embeddings:
            self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    @property
    def body(self) -> Backbone:
        return self.backbone if self.cfg.model == "mamba2" else self.model

    def head_weight(self):
        return self.body.token_embedding.weight if self.cfg.tie_embeddings else self.lm_head.weight

    def hidden(self, tokens):  # tokens [B, T] -> final-normed hidden states [B, T, D]
        return self.body(tokens)

    def forward(self, tokens):  # logits at every position [B, T, V]
        return self.hidden(tokens) @ self.head_weight().t()

    def loss_at_labels(self, tokens, labels):
        """Logits [M, V] at the labelled positions (row-major order) and their mean CE."""
        mask = labels != IGNORE_LABEL
        logits = self.hidden(tokens)[mask] @ self.head_weight().t()
        return logits, F.cross_entropy(logits, labels[mask])


def load_model(path: str, dtype=torch.float32, chunk: int = 16) -> LanguageModel:
    """Builds the model of a statex checkpoint and loads its weights (strict: names and shapes)."""
    cfg = read_config(path)
    model = LanguageModel(cfg, chunk)
    state = {k: torch.from_numpy(v) for k, v in read_params(path).items()}
    model.load_state_dict(state, strict=True)
    return model.to(dtype)


def weight_decay_groups(model: nn.Module, weight_decay: float):
    """AdamW groups as our trainer: decay matrices (2-D and up), not vectors."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
