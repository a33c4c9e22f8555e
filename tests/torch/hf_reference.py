"""PyTorch models with the exact module nesting and parameter names of fla's `GLAForCausalLM`,
`GatedDeltaNetForCausalLM` and `TransformerForCausalLM` and transformers' `Mamba2ForCausalLM`
(fla and mamba_ssm need CUDA / Triton and are not installable here), built from an exported
`config.json`, so that `model.safetensors` written by `python3 -m analysis export-safetensors`
loads with `load_state_dict(strict=True)`.

Module tree and names, checked in the sources:
  fla-org/flash-linear-attention fla/models/{gla,gated_deltanet,transformer}/modeling_*.py:
    *ForCausalLM.{model, lm_head}; *Model.{embeddings, layers, norm};
    *Block.{attn_norm, attn, mlp_norm, mlp} (the MLP is always there); GatedMLP.{gate_proj,
    up_proj, down_proj} (fla/modules/mlp.py; hidden_act must be swish)
  fla/layers/gla.py GatedLinearAttention: q_proj, k_proj, v_proj, g_proj, {q,k,v}_conv1d
    (ShortConvolution, an nn.Conv1d: weight [C, 1, W], no bias by default),
    gk_proj = Sequential(Linear(D, r, bias=False), Linear(r, Dk, bias=True)), o_proj, and
    g_norm_swish_gate (FusedRMSNormGated, weight [head_v_dim]) when fuse_norm=True (default)
  fla/layers/gated_deltanet.py GatedDeltaNet: q_proj, k_proj [H·head_dim, D], v_proj, g_proj
    [H·head_v_dim, D], a_proj, b_proj [H, D], A_log, dt_bias [H], {q,k,v}_conv1d, o_norm
    (FusedRMSNormGated, weight [head_v_dim]), o_proj; head_v_dim = int(head_dim·expand_v)
  fla/layers/attn.py Attention: q_proj, k_proj, v_proj, o_proj (no bias; RoPE has no
    parameters). Our short conv has no fla counterpart: {q,k,v}_conv1d as in GLA (config.json's
    use_short_conv / conv_size; docs/pytorch_names.md)
  huggingface/transformers src/transformers/models/mamba2/modeling_mamba2.py:
    Mamba2ForCausalLM.{backbone: Mamba2Model, lm_head}; Mamba2Model.{embeddings, layers,
    norm_f}; Mamba2Block.{norm, mixer}; Mamba2Mixer.{in_proj, conv1d, dt_bias, A_log, D,
    norm (MambaRMSNormGated, weight [d_inner]), out_proj}
The computation is statex_ref.py's (the same recurrences); only the containers differ, and every
shape comes from config.json's fla / transformers fields. Per-layer head counts / state sizes of
StateX-expanded models come from config.json's `statex` entry, which stock fla / transformers
configs cannot express.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

import statex_ref as ref


class FusedRMSNormGated(nn.Module):
    """fla FusedRMSNormGated (swish gate): rmsnorm(x) * weight * silu(g) over the last dim."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x, g):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight * F.silu(g)


class GatedLinearAttention(nn.Module):
    def __init__(self, cfg: dict, heads: int, chunk: int):
        super().__init__()
        D = cfg["hidden_size"]
        Dk, Dv = int(D * cfg["expand_k"]), int(D * cfg["expand_v"])
        r = gate_low_rank(cfg)
        self.heads, self.chunk = heads, chunk
        self.gate_logit_normalizer = float(
            cfg["statex"]["model_options"]["gate_logit_normalizer"]) if "statex" in cfg else 16.0
        self.q_proj = nn.Linear(D, Dk, bias=False)
        self.k_proj = nn.Linear(D, Dk, bias=False)
        self.v_proj = nn.Linear(D, Dv, bias=False)
        self.g_proj = nn.Linear(D, Dv, bias=False)
        self.use_short_conv = cfg["use_short_conv"]
        if self.use_short_conv:
            W = cfg["conv_size"]
            self.q_conv1d = ref.depthwise_conv(Dk, W, bias=False)
            self.k_conv1d = ref.depthwise_conv(Dk, W, bias=False)
            self.v_conv1d = ref.depthwise_conv(Dv, W, bias=False)
        self.gk_proj = nn.Sequential(nn.Linear(D, r, bias=False), nn.Linear(r, Dk, bias=True))
        self.o_proj = nn.Linear(Dv, D, bias=False)
        self.g_norm_swish_gate = FusedRMSNormGated(Dv // heads, cfg["norm_eps"])

    def forward(self, x):  # x [B, T, D]
        B, T, _ = x.shape
        H = self.heads
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if self.use_short_conv:
            q, k, v = (F.silu(ref.causal_conv(c, t)) for c, t in
                       ((self.q_conv1d, q), (self.k_conv1d, k), (self.v_conv1d, v)))
        gk = F.logsigmoid(self.gk_proj(x)) / self.gate_logit_normalizer

        def split(t):  # [B, T, H*d] -> [B, H, T, d]
            return t.reshape(B, T, H, -1).transpose(1, 2)

        o = ref.gla_chunked(split(q), split(k), split(v), split(gk), (q.shape[-1] // H) ** -0.5,
                            self.chunk).transpose(1, 2)               # [B, T, H, Vh]
        o = self.g_norm_swish_gate(o, self.g_proj(x).reshape(B, T, H, -1))
        return self.o_proj(o.reshape(B, T, -1))


def gate_low_rank(cfg: dict) -> int:
    """gk_proj's low rank: fla fixes it at 16 (GatedLinearAttention's default)."""
    return int(cfg["statex"]["model_options"]["gate_low_rank"]) if "statex" in cfg else 16


class GatedMLP(nn.Module):
    def __init__(self, D: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(D, hidden, bias=False)
        self.up_proj = nn.Linear(D, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, D, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class GatedDeltaNet(ref.GatedDeltaNet):
    """fla GatedDeltaNet: statex_ref.GatedDeltaNet already has fla's attribute names; its shapes
    here come from GatedDeltaNetConfig's fields (key dim num_heads·head_dim, value dim
    num_heads·int(head_dim·expand_v); a StateX-merged layer has fewer, larger heads)."""

    def __init__(self, cfg: dict, heads: int, chunk: int):
        H, K = cfg["num_heads"], cfg["head_dim"]
        shapes = SimpleNamespace(d_model=cfg["hidden_size"], key_dim=H * K,
                                 value_dim=H * int(K * cfg["expand_v"]), norm_eps=cfg["norm_eps"],
                                 use_short_conv=cfg["use_short_conv"],
                                 conv_width=cfg["conv_size"])
        super().__init__(shapes, heads, chunk)


class Attention(ref.Attention):
    """fla Attention (q/k/v/o_proj; RoPE unless rope_theta is null) plus our short conv, when
    config.json's use_short_conv (not a TransformerConfig field) says so."""

    def __init__(self, cfg: dict, heads: int, chunk: int):
        theta = cfg["rope_theta"]
        shapes = SimpleNamespace(d_model=cfg["hidden_size"], rope=theta is not None,
                                 rope_theta=theta if theta is not None else 0.0,
                                 use_short_conv=cfg.get("use_short_conv", False),
                                 conv_width=cfg.get("conv_size", 4))
        super().__init__(shapes, heads)


FLA_MIXERS = {"gla": GatedLinearAttention, "gated_deltanet": GatedDeltaNet,
              "transformer": Attention}


class FlaBlock(nn.Module):
    """GLABlock / GatedDeltaNetBlock / TransformerBlock: pre-norm mixer and (always) MLP."""

    def __init__(self, cfg: dict, heads: int, chunk: int):
        super().__init__()
        D, eps = cfg["hidden_size"], cfg["norm_eps"]
        self.attn_norm = ref.RMSNorm(D, eps)
        self.attn = FLA_MIXERS[cfg["model_type"]](cfg, heads, chunk)
        self.mlp_norm = ref.RMSNorm(D, eps)
        self.mlp = GatedMLP(D, cfg["intermediate_size"])

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class FlaModel(nn.Module):
    """GLAModel / GatedDeltaNetModel / TransformerModel: embeddings, layers, norm."""

    def __init__(self, cfg: dict, chunk: int):
        super().__init__()
        heads = layer_values(cfg, "layer_heads", cfg["num_heads"])
        self.embeddings = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(FlaBlock(cfg, h, chunk) for h in heads)
        self.norm = ref.RMSNorm(cfg["hidden_size"], cfg["norm_eps"])

    def forward(self, tokens):
        x = self.embeddings(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class Mamba2Mixer(ref.Mamba2):
    """transformers Mamba2Mixer: statex_ref.Mamba2 already has these attribute names
    (in_proj, conv1d, dt_bias, A_log, D, norm, out_proj)."""


class Mamba2Block(nn.Module):
    def __init__(self, cfg: dict, d_state: int, chunk: int):
        super().__init__()
        self.norm = ref.RMSNorm(cfg["hidden_size"], cfg["layer_norm_epsilon"])
        self.mixer = Mamba2Mixer(_ref_config(cfg), d_state, chunk)

    def forward(self, x):
        return x + self.mixer(self.norm(x))


class Mamba2Model(nn.Module):
    def __init__(self, cfg: dict, chunk: int):
        super().__init__()
        states = layer_values(cfg, "layer_d_state", cfg["state_size"])
        self.embeddings = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(Mamba2Block(cfg, n, chunk) for n in states)
        self.norm_f = ref.RMSNorm(cfg["hidden_size"], cfg["layer_norm_epsilon"])

    def forward(self, tokens):
        x = self.embeddings(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.norm_f(x)


def _ref_config(cfg: dict) -> ref.ModelConfig:
    return ref.ModelConfig(model="mamba2", d_model=cfg["hidden_size"], expand=cfg["expand"],
                           head_dim=cfg["head_dim"], ngroups=cfg["n_groups"],
                           conv_width=cfg["conv_kernel"], norm_eps=cfg["layer_norm_epsilon"])


def layer_values(cfg: dict, key: str, default: int) -> list[int]:
    """Per-layer sizes: config.json's statex.<key> when present, else the one global value."""
    values = cfg.get("statex", {}).get(key)
    return list(values) if values else [default] * cfg["num_hidden_layers"]


class CausalLM(nn.Module):
    """fla's *ForCausalLM (`model`, `lm_head`) or Mamba2ForCausalLM (`backbone`, `lm_head`). With
    tie_word_embeddings, lm_head.weight IS the embedding (as after transformers' tie_weights)."""

    def __init__(self, cfg: dict, chunk: int = 16):
        super().__init__()
        self.cfg = cfg
        if cfg["model_type"] == "mamba2":
            self.backbone = Mamba2Model(cfg, chunk)
        else:
            self.model = FlaModel(cfg, chunk)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        if cfg["tie_word_embeddings"]:
            self.lm_head.weight = self.body.embeddings.weight

    @property
    def body(self) -> nn.Module:
        return self.backbone if self.cfg["model_type"] == "mamba2" else self.model

    def loss_at_labels(self, tokens, labels):
        """Logits [M, V] at the labelled positions (row-major) and their mean cross-entropy."""
        mask = labels != ref.IGNORE_LABEL
        logits = self.lm_head(self.body(tokens)[mask])
        return logits, F.cross_entropy(logits, labels[mask])
