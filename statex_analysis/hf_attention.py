"""Softmax attention <-> fla's `TransformerForCausalLM` (docs/pytorch_names.md): config.json both
ways. The tensor names are fla's `Attention` names (`model.layers.{i}.attn.{q,k,v,o}_proj`, no
bias); the block, embedding, norms, MLP and head are as for GLA.

Checked against fla (2026-12): `fla/layers/attn.py` (Attention: q/k/v/o_proj, head_dim =
hidden_size / num_heads, `RotaryEmbedding(dim=head_dim, base=rope_theta)` applied always, rotate-half;
flash-attn causal with scale head_dim^-½), `fla/modules/rotary.py` (`float(base)`: rope_theta =
None cannot build the layer), `fla/models/transformer/{configuration,modeling}_transformer.py`
(TransformerBlock always has mlp_norm + mlp).

Two features of ours that TransformerConfig cannot express: the short conv on q, k, v (exported
under GLA's / Gated DeltaNet's ShortConvolution names `{q,k,v}_conv1d.weight`, with config.json's
`use_short_conv` / `conv_size`, which TransformerConfig ignores) and attention without RoPE
(`rope_theta: null`). Both are written faithfully and warned about; a stock loader fails on them
(unexpected keys in a strict load; `float(None)`) rather than computing something else.
"""
from __future__ import annotations

import numpy as np

from .checkpoint import Checkpoint
from .hf_common import fla_block_config, fla_block_options, refuse_unsupported, require_tensors

ARCHITECTURE = "TransformerForCausalLM"


def to_config(ck: Checkpoint) -> tuple[dict, list[str]]:
    config = fla_block_config(ck, ARCHITECTURE, "transformer")
    rope, conv = ck.bool_opt("rope"), ck.bool_opt("use_short_conv")
    config.update({"num_heads": ck.int_opt("heads"), "num_kv_heads": None, "qkv_bias": False,
                   "qk_norm": False, "window_size": None,
                   "rope_theta": float(ck.opt("rope_theta")) if rope else None,
                   "elementwise_affine": True,
                   # not TransformerConfig fields: our short conv (read back by the import)
                   "use_short_conv": conv, "conv_size": ck.int_opt("conv_width")})
    warnings = []
    if conv:
        warnings.append(
            "model.use_short_conv = true: fla's Attention has no short convolution, so a stock "
            "TransformerForCausalLM cannot express this model. The conv weights are written as "
            "model.layers.{i}.attn.{q,k,v}_conv1d.weight (fla's ShortConvolution names from GLA / "
            "Gated DeltaNet: depthwise causal conv, no bias, SiLU after) with config.json's "
            "use_short_conv / conv_size; a strict load into a stock model fails on them (a "
            "non-strict one would drop them and compute a different function).")
    if not rope:
        warnings.append(
            "model.rope = false: fla's Attention always applies RoPE, so a stock "
            "TransformerForCausalLM cannot express attention without it; config.json says "
            "rope_theta: null, with which fla cannot build the layer (it does not silently "
            "add RoPE).")
    return config, warnings


def from_config(config: dict, tensors: dict[str, np.ndarray]) -> dict[str, str]:
    """statex model options of a TransformerConfig written by fla (no `statex` entry): fla's
    Attention always has RoPE, so rope = true unless rope_theta is null."""
    H = int(config.get("num_heads", 32))
    refuse_unsupported(config, {
        "num_kv_heads": lambda v: v not in (None, H), "qkv_bias": lambda v: v is True,
        "qk_norm": lambda v: v is True, "window_size": lambda v: v is not None,
        "rope_scaling": lambda v: v is not None}, "attention")
    require_tensors(tensors, ["model.layers.0.attn.q_proj.weight",
                              "model.layers.0.mlp.gate_proj.weight"], ARCHITECTURE)
    theta = config.get("rope_theta", 10000.0)
    options = fla_block_options(config, tensors, "attention")
    options.update({"heads": str(H), "rope": "false" if theta is None else "true",
                    "rope_theta": repr(float(10000.0 if theta is None else theta)),
                    "use_short_conv": "true" if config.get("use_short_conv", False) else "false",
                    "conv_width": str(config.get("conv_size", 4))})
    return options
