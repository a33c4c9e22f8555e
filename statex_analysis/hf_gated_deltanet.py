"""Gated DeltaNet <-> fla's `GatedDeltaNetForCausalLM` (docs/pytorch_names.md): config.json both
ways. The tensor names are already fla's (`model.layers.{i}.attn.{q,k,v,g,a,b}_proj`, `A_log`,
`dt_bias`, `{q,k,v}_conv1d`, `o_norm`, `o_proj`), so only the zero MLP and the head copy are added.

Checked against fla (2026-12): `fla/layers/gated_deltanet.py` (key_dim = num_heads·head_dim,
head_v_dim = int(head_dim·expand_v), a_proj / b_proj / A_log / dt_bias one per value head,
`o_norm` = FusedRMSNormGated(head_v_dim) when use_gate), `fla/models/gated_deltanet/
configuration_gated_deltanet.py` and `modeling_gated_deltanet.py` (GatedDeltaNetBlock always has
mlp_norm + mlp; GatedDeltaNetForCausalLM = `model` + `lm_head`).
"""
from __future__ import annotations

import math

import numpy as np

from .checkpoint import Checkpoint, CheckpointError, key_dim, value_dim
from .hf_common import (dim_ratio, fla_block_config, fla_block_options, per_layer_warning,
                        refuse_unsupported, require_tensors)

ARCHITECTURE = "GatedDeltaNetForCausalLM"


def to_config(ck: Checkpoint) -> tuple[dict, list[str]]:
    """GatedDeltaNetConfig fields and warnings. Our Dk, Dv and H are fla's num_heads·head_dim,
    num_heads·head_dim·expand_v and num_heads (fla's expand_v is per head: Dv / Dk)."""
    H, Dk, Dv = ck.int_opt("heads"), key_dim(ck), value_dim(ck)
    config = fla_block_config(ck, ARCHITECTURE, "gated_deltanet")
    config.update({"attn_mode": "chunk", "num_heads": H, "head_dim": Dk // H,
                   "expand_v": Dv / Dk, "num_v_heads": None, "use_gate": True,
                   "use_short_conv": ck.bool_opt("use_short_conv"),
                   "conv_size": ck.int_opt("conv_width"), "allow_neg_eigval": False,
                   "attn": None})
    warnings = []
    if int(config["head_dim"] * config["expand_v"]) != Dv // H or \
            not math.isclose(config["head_dim"] * config["expand_v"], Dv / H, rel_tol=1e-5):
        warnings.append(f"head value dim Dv/H = {Dv // H} is not int(head_dim * expand_v) = "
                        f"int({config['head_dim']} * {config['expand_v']}) in float64: a stock "
                        f"GatedDeltaNetForCausalLM builds a different o_norm / v_proj shape")
    # a merged layer's head dims are Dk / heads and Dv / heads (one head_dim in the config)
    warnings += per_layer_warning(ck.layer_heads, H, "heads", "num_heads", "GatedDeltaNetConfig",
                                  "a_proj / b_proj / A_log / dt_bias / o_norm shapes",
                                  "layer_heads")
    return config, warnings


def from_config(config: dict, tensors: dict[str, np.ndarray]) -> dict[str, str]:
    """statex model options of a GatedDeltaNetConfig written by fla (no `statex` entry)."""
    H = int(config.get("num_heads", 6))
    refuse_unsupported(config, {
        "num_v_heads": lambda v: v not in (None, H),   # GVA: grouped value heads
        "use_gate": lambda v: v is False, "allow_neg_eigval": lambda v: v is True,
        "attn": lambda v: v is not None}, "Gated DeltaNet")
    require_tensors(tensors, ["model.layers.0.attn.a_proj.weight",
                              "model.layers.0.mlp.gate_proj.weight"], ARCHITECTURE)
    D, K = int(config["hidden_size"]), int(config.get("head_dim", 256))
    V = int(K * float(config.get("expand_v", 2.0)))
    options = fla_block_options(config, tensors, "gated_deltanet")
    options.update({"heads": str(H), "expand_k": dim_ratio(H * K, D, "num_heads * head_dim"),
                    "expand_v": dim_ratio(H * V, D, "num_heads * head_dim * expand_v"),
                    "use_short_conv": "true" if config.get("use_short_conv", True) else "false",
                    "conv_width": str(config.get("conv_size", 4))})
    return options


def layer_heads(params: dict[str, np.ndarray], layer: int) -> int:
    """Heads of one layer, from a_proj's rows (so a StateX-expanded model is read right)."""
    name = f"model.layers.{layer}.attn.a_proj.weight"
    if name not in params:
        raise CheckpointError(f"model.safetensors: '{name}' missing")
    return params[name].shape[0]
