"""What the fla-style exports share (hf_format.py and the per-family hf_*.py files): the `statex`
entry's identity, fla's block (embeddings, attn_norm / attn / mlp_norm / mlp, norm, lm_head; the MLP
always present), and the checks on config.json fields written by fla itself."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .checkpoint import Checkpoint, CheckpointError, hidden_mlp

EXPORT_FORMAT = "statex-sim safetensors export"
EXPORT_VERSION = 1
# A statex model without MLP is exported with this zero MLP (fla's GLA / GatedDeltaNet /
# Transformer blocks always have one): the block adds down_proj(...) = 0 exactly, so the function
# is unchanged. statex.zero_mlp tells the import to drop it again.
ZERO_MLP_HIDDEN = 1


def differing(values: list[int], default: int) -> list[int]:
    """Indices of the layers whose value is not the config's one global value."""
    return [i for i, v in enumerate(values) if v != default]


def per_layer_warning(values: list[int], default: int, what: str, field: str, config_class: str,
                      shapes: str, key: str) -> list[str]:
    """The warning for StateX's per-layer sizes (`what` of layer i = values[i]) that a config
    with one global `field` = default cannot express; [] when every layer has the default."""
    odd = differing(values, default)
    if not odd:
        return []
    architecture = config_class.replace("Config", "ForCausalLM")
    return [f"layer(s) {odd} have {what} {[values[i] for i in odd]}, not {field} = {default}: "
            f"{config_class} has one {field} for all layers (it cannot express StateX's per-layer "
            f"sizes), so a stock {architecture}.from_pretrained fails on {shapes} there. The "
            f"per-layer values are in config.json's statex.{key} (build the model layer by "
            f"layer, as tests/torch/hf_reference.py does)."]


def fla_block_config(ck: Checkpoint, architecture: str, model_type: str) -> dict:
    """config.json fields of fla's causal-LM wrapper and block, common to GLAConfig,
    GatedDeltaNetConfig and TransformerConfig (fla/models/*/configuration_*.py)."""
    mlp = ck.bool_opt("mlp")
    return {"architectures": [architecture], "model_type": model_type,
            "vocab_size": ck.int_opt("vocab_size"), "hidden_size": ck.int_opt("d_model"),
            "num_hidden_layers": ck.int_opt("n_layers"), "hidden_act": "swish",
            "hidden_ratio": 4, "intermediate_size": hidden_mlp(ck) if mlp else ZERO_MLP_HIDDEN,
            "norm_eps": float(ck.opt("norm_eps")), "fuse_norm": True, "fuse_swiglu": True,
            "tie_word_embeddings": ck.bool_opt("tie_embeddings"), "torch_dtype": "float32"}


def add_zero_mlp(ck: Checkpoint, tensors: dict[str, np.ndarray]) -> bool:
    """Adds fla's always-present MLP as zeros to a model without one; True if it did."""
    if ck.bool_opt("mlp"):
        return False
    D = ck.int_opt("d_model")
    for i in range(ck.int_opt("n_layers")):
        lp = f"model.layers.{i}."
        tensors[lp + "mlp_norm.weight"] = np.ones(D, np.float32)
        tensors[lp + "mlp.gate_proj.weight"] = np.zeros((ZERO_MLP_HIDDEN, D), np.float32)
        tensors[lp + "mlp.up_proj.weight"] = np.zeros((ZERO_MLP_HIDDEN, D), np.float32)
        tensors[lp + "mlp.down_proj.weight"] = np.zeros((D, ZERO_MLP_HIDDEN), np.float32)
    return True


def refuse_unsupported(config: dict, checks: dict[str, Callable[[object], bool]],
                       family: str) -> None:
    """CheckpointError naming the first config.json field whose value (when present) `family`
    cannot express."""
    for key, bad in checks.items():
        if key in config and bad(config[key]):
            raise CheckpointError(f"config.json: {key} = {config[key]!r} is not supported by "
                                  f"statex-sim's {family} (docs/pytorch_names.md)")


def require_tensors(tensors: dict[str, np.ndarray], names: list[str], architecture: str) -> None:
    for name in names:
        if name not in tensors:
            raise CheckpointError(f"model.safetensors: '{name}' missing (not a {architecture}?)")


def tied(config: dict, tensors: dict[str, np.ndarray]) -> str:
    # fla's configs default to untied, transformers' PretrainedConfig to tied: when config.json
    # does not say, a file without lm_head.weight is tied.
    return "true" if config.get("tie_word_embeddings", "lm_head.weight" not in tensors) else "false"


def fla_block_options(config: dict, tensors: dict[str, np.ndarray], model: str) -> dict[str, str]:
    """statex options of the block fields of an fla config.json written by fla (no `statex`
    entry): fla's block always has an MLP, so the import has model.mlp = true."""
    hidden = tensors["model.layers.0.mlp.gate_proj.weight"].shape[0]
    if config.get("hidden_act", "swish") not in ("swish", "silu"):
        raise CheckpointError(f"config.json: hidden_act = {config['hidden_act']!r} is not "
                              f"supported (statex-sim's MLP is SwiGLU: swish)")
    if config.get("elementwise_affine", True) is False:
        raise CheckpointError("config.json: elementwise_affine = False is not supported "
                              "(statex-sim's norms have weights)")
    return {"model": model, "vocab_size": str(config["vocab_size"]),
            "d_model": str(config["hidden_size"]), "n_layers": str(config["num_hidden_layers"]),
            "mlp": "true", "mlp_hidden": str(hidden), "tie_embeddings": tied(config, tensors),
            "norm_eps": repr(float(config.get("norm_eps", 1e-6)))}


def dim_ratio(dim: int, d_model: int, what: str) -> str:
    """The `model.expand_k` / `expand_v` text whose float32 product with d_model truncates to
    dim, as the C++ computes Dk and Dv (checkpoint.key_dim)."""
    r = np.float32(dim / d_model)
    for _ in range(4):  # dim / d_model rounded down in float32 can truncate to dim - 1
        if int(r * np.float32(d_model)) == dim:
            return repr(float(r))
        r = np.nextafter(r, np.float32(np.inf))
    raise CheckpointError(f"config.json: {what} = {dim} is not expand * hidden_size = "
                          f"expand * {d_model} for any float32 expand")
