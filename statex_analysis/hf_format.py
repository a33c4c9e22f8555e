"""The PyTorch ecosystem's names for statex-sim models (docs/pytorch_names.md): tensor names and
config.json of fla's `GLAForCausalLM`, `GatedDeltaNetForCausalLM` (hf_gated_deltanet.py) and
`TransformerForCausalLM` (hf_attention.py) and Hugging Face transformers' `Mamba2ForCausalLM`, in
both directions.

Checked against the sources (2026-12): fla `fla/layers/gla.py` (GatedLinearAttention: the fused
output norm is `g_norm_swish_gate` when fuse_norm=True, the default; `g_norm` otherwise) and
`fla/models/gla/modeling_gla.py` (GLABlock always has `mlp_norm` + `mlp`; GLAForCausalLM =
`model` + `lm_head`); transformers `models/mamba2/modeling_mamba2.py` (Mamba2ForCausalLM =
`backbone.{embeddings, layers.i.{norm, mixer}, norm_f}` + `lm_head`; no MLP in a block). fla's
own `Mamba2ForCausalLM` uses the same names. mamba_ssm's `MambaLMHeadModel` differs only in
`backbone.embedding` (no s); import accepts both.
"""
from __future__ import annotations

import re

import numpy as np

from . import hf_attention, hf_gated_deltanet
from .checkpoint import Checkpoint, CheckpointError, value_dim
from .validate import check_model_options
from .hf_common import (EXPORT_FORMAT, EXPORT_VERSION, add_zero_mlp, fla_block_config,
                        fla_block_options, per_layer_warning, refuse_unsupported, require_tensors,
                        tied)

# fla's GatedLinearAttention constants that GLAConfig cannot set (fla/layers/gla.py defaults).
FLA_GATE_LOW_RANK = 16
FLA_GATE_LOGIT_NORMALIZER = 16.0

_GLA_NORM = re.compile(r"^(model\.layers\.\d+\.attn\.)g_norm\.weight$")
_GLA_FUSED_NORM = re.compile(r"^(model\.layers\.\d+\.attn\.)g_norm_swish_gate\.weight$")


def to_hf(ck: Checkpoint) -> tuple[dict[str, np.ndarray], dict, list[str]]:
    """Tensors under the HF names, config.json, and warnings (what stock loaders cannot do)."""
    statex = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "step": ck.step,
              "model_options": dict(ck.options), "layer_heads": list(ck.layer_heads),
              "layer_d_state": list(ck.layer_d_state), "zero_mlp": False}
    if ck.model == "mamba2":
        tensors = {"backbone.embeddings.weight" if name == "backbone.embedding.weight" else name:
                   value for name, value in ck.params.items()}
        config, warnings = _mamba2_config(ck)
        embedding = "backbone.embeddings.weight"
    else:  # fla's model.layers.{i}.{attn_norm, attn, mlp_norm, mlp} families
        tensors = {_GLA_NORM.sub(r"\1g_norm_swish_gate.weight", name): value
                   for name, value in ck.params.items()}
        statex["zero_mlp"] = add_zero_mlp(ck, tensors)
        config, warnings = _FLA_CONFIG[ck.model](ck)
        embedding = "model.embeddings.weight"
    if ck.bool_opt("tie_embeddings"):
        # Written although tied: fla's Mamba2ForCausalLM does not tie (its _tied_weights_keys is
        # empty) and would start from a random head, and a strict load then needs no extra step.
        # Import checks the copy equals the embedding.
        tensors["lm_head.weight"] = tensors[embedding]
    config["statex"] = statex
    return tensors, config, warnings


def _gla_config(ck: Checkpoint) -> tuple[dict, list[str]]:
    heads = ck.int_opt("heads")
    config = fla_block_config(ck, "GLAForCausalLM", "gla")
    config.update({
        "num_heads": heads, "num_kv_heads": None, "expand_k": float(ck.opt("expand_k")),
        "expand_v": float(ck.opt("expand_v")), "feature_map": None, "attn_mode": "chunk",
        "use_short_conv": ck.bool_opt("use_short_conv"), "conv_size": ck.int_opt("conv_width"),
        "use_output_gate": True, "clamp_min": None, "elementwise_affine": True, "attn": None})
    warnings = per_layer_warning(ck.layer_heads, heads, "heads", "num_heads", "GLAConfig",
                                 "g_norm_swish_gate's shape", "layer_heads")
    if ck.int_opt("gate_low_rank") != FLA_GATE_LOW_RANK:
        warnings.append(f"model.gate_low_rank = {ck.opt('gate_low_rank')}: fla's GLAConfig "
                        f"cannot set gate_low_rank_dim (fixed at {FLA_GATE_LOW_RANK}); gk_proj "
                        f"will not load into a stock GLAForCausalLM.")
    if float(ck.opt("gate_logit_normalizer")) != FLA_GATE_LOGIT_NORMALIZER:
        warnings.append(f"model.gate_logit_normalizer = {ck.opt('gate_logit_normalizer')}: "
                        f"fla's GLAConfig cannot set it (fixed at 16); a stock "
                        f"GLAForCausalLM computes a different forget gate.")
    return config, warnings


def _mamba2_config(ck: Checkpoint) -> tuple[dict, list[str]]:
    D, L = ck.int_opt("d_model"), ck.int_opt("n_layers")
    d_state = ck.int_opt("d_state")
    di = ck.int_opt("expand") * D
    config = {
        "architectures": ["Mamba2ForCausalLM"], "model_type": "mamba2",
        "vocab_size": ck.int_opt("vocab_size"), "hidden_size": D, "num_hidden_layers": L,
        "state_size": d_state, "expand": ck.int_opt("expand"),
        "head_dim": ck.int_opt("head_dim"), "num_heads": di // ck.int_opt("head_dim"),
        "n_groups": ck.int_opt("ngroups"), "conv_kernel": ck.int_opt("conv_width"),
        "use_bias": False, "use_conv_bias": True, "hidden_act": "silu", "rms_norm": True,
        "layer_norm_epsilon": float(ck.opt("norm_eps")),
        "norm_eps": float(ck.opt("norm_eps")),  # fla's Mamba2Config calls it norm_eps
        "residual_in_fp32": True, "tie_word_embeddings": ck.bool_opt("tie_embeddings"),
        "torch_dtype": "float32",
    }
    warnings = per_layer_warning(ck.layer_d_state, d_state, "d_state", "state_size",
                                 "Mamba2Config", "in_proj / conv1d shapes", "layer_d_state")
    if ck.bool_opt("mlp"):
        warnings.append("model.mlp = true: transformers' Mamba2 block has no MLP; the MLP "
                        "weights are written under fla's GatedMLP names (norm2, "
                        "mlp.{gate,up,down}_proj), which a stock Mamba2ForCausalLM rejects.")
    if float(ck.opt("norm_eps")) != 1e-5:
        warnings.append(f"model.norm_eps = {ck.opt('norm_eps')}: statex (like mamba_ssm) "
                        f"keeps the gated output norm's eps at 1e-5; transformers' Mamba2 "
                        f"uses layer_norm_epsilon there too, so its outputs differ slightly.")
    if ck.int_opt("ngroups") > 1:
        warnings.append("model.ngroups > 1: statex (like mamba_ssm) normalises the gated "
                        "output per group of d_inner/ngroups channels; transformers' "
                        "MambaRMSNormGated torch path normalises over all d_inner channels.")
    return config, warnings


_FLA_CONFIG = {"gla": _gla_config, "gated_deltanet": hf_gated_deltanet.to_config,
               "attention": hf_attention.to_config}


def _foreign_gla_options(config: dict, tensors: dict[str, np.ndarray]) -> dict[str, str]:
    """statex model options of a GLAForCausalLM config.json written by fla (not by us)."""
    refuse_unsupported(config, {
        "num_kv_heads": lambda v: v not in (None, config.get("num_heads")),
        "feature_map": lambda v: v is not None, "use_output_gate": lambda v: v is False,
        "clamp_min": lambda v: v is not None, "attn": lambda v: v is not None}, "GLA")
    require_tensors(tensors, ["model.layers.0.attn.gk_proj.0.weight",
                              "model.layers.0.mlp.gate_proj.weight"], "GLAForCausalLM")
    options = fla_block_options(config, tensors, "gla")
    options.update({
        "heads": str(config.get("num_heads", 4)),
        "expand_k": repr(float(config.get("expand_k", 0.5))),
        "expand_v": repr(float(config.get("expand_v", 1.0))),
        "use_short_conv": "true" if config.get("use_short_conv", False) else "false",
        "conv_width": str(config.get("conv_size", 4)),
        "gate_low_rank": str(tensors["model.layers.0.attn.gk_proj.0.weight"].shape[0]),
        "gate_logit_normalizer": repr(FLA_GATE_LOGIT_NORMALIZER)})
    return options


def _foreign_mamba2_options(config: dict, tensors: dict[str, np.ndarray]) -> dict[str, str]:
    """statex model options of a Mamba2ForCausalLM config.json written by transformers / fla."""
    checks = {"use_bias": False, "use_conv_bias": True, "rms_norm": True}
    for key, want in checks.items():
        if key in config and config[key] != want:
            raise CheckpointError(f"config.json: {key} = {config[key]!r} is not supported by "
                                  f"statex-sim's Mamba2 (it needs {want})")
    if config.get("hidden_act", "silu") not in ("silu", "swish"):
        raise CheckpointError(f"config.json: hidden_act = {config['hidden_act']!r} is not "
                              f"supported (statex-sim's Mamba2 uses silu)")
    limit = config.get("time_step_limit")
    if limit is not None and (float(limit[0]) != 0.0 or float(limit[1]) != float("inf")):
        raise CheckpointError(f"config.json: time_step_limit = {limit} is not supported "
                              f"(statex-sim does not clamp dt)")
    eps = config.get("layer_norm_epsilon", config.get("norm_eps", 1e-5))
    return {"model": "mamba2", "vocab_size": str(config["vocab_size"]),
            "d_model": str(config["hidden_size"]), "n_layers": str(config["num_hidden_layers"]),
            "mlp": "false", "mlp_hidden": "0", "tie_embeddings": tied(config, tensors),
            "norm_eps": repr(float(eps)), "expand": str(config.get("expand", 2)),
            "head_dim": str(config.get("head_dim", 64)), "ngroups": str(config.get("n_groups", 1)),
            "d_state": str(config.get("state_size", 128)),
            "conv_width": str(config.get("conv_kernel", 4))}


def from_hf(tensors: dict[str, np.ndarray], config: dict) -> Checkpoint:
    """The statex checkpoint of exported (or fla / transformers-written) tensors + config.json.
    Parameters come back under statex names; order and shapes are checked by the caller."""
    model_type = config.get("model_type")
    if model_type not in _MODEL_OF_TYPE:
        raise CheckpointError(
            f"config.json: model_type = {model_type!r}; statex-sim imports 'gla' (fla "
            f"GLAForCausalLM), 'gated_deltanet' (fla GatedDeltaNetForCausalLM), 'transformer' "
            f"(fla TransformerForCausalLM) and 'mamba2' (Mamba2ForCausalLM)")
    model = _MODEL_OF_TYPE[model_type]
    ours = config.get("statex")
    if ours is not None and ours.get("format") != EXPORT_FORMAT:
        raise CheckpointError("config.json: the 'statex' entry is not a statex-sim export")
    if ours is not None and ours["model_options"].get("model", "gla") != model:
        raise CheckpointError(f"config.json: model_type = {model_type!r} but statex.model_options"
                              f".model = {ours['model_options'].get('model')!r}")
    if model == "mamba2":
        params = {"backbone.embedding.weight" if name == "backbone.embeddings.weight" else name:
                  value for name, value in tensors.items()}
    else:
        params = {_GLA_FUSED_NORM.sub(r"\1g_norm.weight", name): value
                  for name, value in tensors.items()}
    options = dict(ours["model_options"]) if ours else _FOREIGN_OPTIONS[model](config, tensors)
    check_model_options(options, "config.json")  # before any option is used as a number
    if ours and ours.get("zero_mlp"):
        for name in [n for n in params if re.search(r"\.(mlp\.|mlp_norm\.)", n)]:
            value = params.pop(name)
            if ".mlp." in name and np.any(value != 0):
                raise CheckpointError(f"model.safetensors: '{name}' is not zero, but this export "
                                      f"had no MLP (config.json statex.zero_mlp); the MLP was "
                                      f"trained after export, and model.mlp = false cannot hold it")
    tie = options.get("tie_embeddings", "true") in ("true", "1")
    embedding = "backbone.embedding.weight" if model == "mamba2" else "model.embeddings.weight"
    if tie and "lm_head.weight" in params:  # a tied model saved with both keys
        head = params.pop("lm_head.weight")
        if embedding in params and not np.array_equal(head, params[embedding]):
            raise CheckpointError("model.safetensors: tie_word_embeddings is true but "
                                  "lm_head.weight differs from the embedding")
    ck = Checkpoint(options=options, layer_heads=[], layer_d_state=[], params=params,
                    step=int(ours.get("step", 0)) if ours else 0)
    ck.layer_heads, ck.layer_d_state = _layer_shapes(ck, config)
    return ck


def _layer_shapes(ck: Checkpoint, config: dict) -> tuple[list[int], list[int]]:
    """Per-layer heads and d_state, read from the tensors' shapes (so a StateX-expanded model
    written by other code is read right too) and checked against statex.layer_* when present."""
    L = ck.int_opt("n_layers")
    heads, d_state = [], []
    for i in range(L):
        if ck.model == "gla":
            name = f"model.layers.{i}.attn.g_norm.weight"
            if name not in ck.params:
                raise CheckpointError(f"model.safetensors: '{name}' (or g_norm_swish_gate) missing")
            head_v = ck.params[name].shape[0]
            heads.append(value_dim(ck) // head_v)
            d_state.append(0)  # as the C++ writes it for GLA (sim/core/config.cpp default_shape)
        elif ck.model == "gated_deltanet":
            heads.append(hf_gated_deltanet.layer_heads(ck.params, i))
            d_state.append(0)
        elif ck.model == "attention":  # StateX does not apply: heads everywhere
            heads.append(ck.int_opt("heads"))
            d_state.append(0)
        else:
            name = f"backbone.layers.{i}.mixer.conv1d.bias"
            if name not in ck.params:
                raise CheckpointError(f"model.safetensors: '{name}' missing")
            di = ck.int_opt("expand") * ck.int_opt("d_model")
            d_state.append((ck.params[name].shape[0] - di) // (2 * ck.int_opt("ngroups")))
            heads.append(di // ck.int_opt("head_dim"))
    ours = config.get("statex") or {}
    for key, got in (("layer_heads", heads), ("layer_d_state", d_state)):
        if key in ours and list(ours[key]) != got:
            raise CheckpointError(f"config.json: statex.{key} = {ours[key]} but the tensors' "
                                  f"shapes say {got}")
    return heads, d_state


# config.json model_type -> model.model, and the readers of configs without a `statex` entry
_MODEL_OF_TYPE = {"gla": "gla", "gated_deltanet": "gated_deltanet", "transformer": "attention",
                  "mamba2": "mamba2"}
_FOREIGN_OPTIONS = {"gla": _foreign_gla_options, "gated_deltanet": hf_gated_deltanet.from_config,
                    "attention": hf_attention.from_config, "mamba2": _foreign_mamba2_options}
