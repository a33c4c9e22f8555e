"""Which `model.*` options each token-mixer family reads (statex train --help, docs/design.md §1).

Every run's /config holds every option, so a table over several families would otherwise show,
say, `model.d_state = 16` on a GLA row or `model.heads = 2` on a Mamba2 row: values the model
never used. Tables blank those cells (`presentable`); cells and pooling still use every option."""
from __future__ import annotations

# Options every family reads.
COMMON = {"model.model", "model.vocab_size", "model.d_model", "model.n_layers", "model.mlp",
          "model.mlp_hidden", "model.tie_embeddings", "model.norm_eps"}
# Options of one family or a few.
FAMILY_OPTIONS = {
    "gla": {"model.heads", "model.expand_k", "model.expand_v", "model.use_short_conv",
            "model.conv_width", "model.gate_low_rank", "model.gate_logit_normalizer"},
    "mamba2": {"model.expand", "model.head_dim", "model.ngroups", "model.d_state",
               "model.conv_width"},
    "attention": {"model.heads", "model.use_short_conv", "model.conv_width", "model.rope",
                  "model.rope_theta"},
    "gated_deltanet": {"model.heads", "model.expand_k", "model.expand_v", "model.use_short_conv",
                       "model.conv_width"},
}


def applies(option: str, model: str) -> bool:
    """Whether `model` reads `option`. Options outside `model.*` (train, mqar, statex, ...) and
    families this module does not know always apply (shown as they are)."""
    if not option.startswith("model.") or option in COMMON or model not in FAMILY_OPTIONS:
        return True
    return option in FAMILY_OPTIONS[model]


# Options that set the size of the recurrent state (docs/design.md §1): they move a run along the
# state axis of a scaling plot. Every other varied option (vocabulary, MLP, conv, RoPE, steps...)
# is a different experiment on that axis: its own series.
STATE_SHAPE_OPTIONS = {"model.d_model", "model.n_layers", "model.heads", "model.expand_k",
                       "model.expand_v", "model.expand", "model.head_dim", "model.ngroups",
                       "model.d_state"}
