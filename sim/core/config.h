#pragma once
// Plain configuration structs. Defaults here are the documented defaults of the CLI
// (sim/cli/options.cpp registers each field with Boost.Program_options under the name given
// in the trailing comment). Validation lives in config.cpp and throws ConfigError naming the
// option and the fix.
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace statex {

// A user error: bad option value, impossible setting, bad file. Message names the option.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Shape of one layer's token mixer. Differs per layer after StateX expansion.
struct MixerShape {
  int heads = 2;    // GLA, GatedDeltaNet: H; Mamba2: nheads Hm = d_inner / head_dim
  int d_state = 0;  // GLA: unused (0);       Mamba2: state dim N
};

struct ModelConfig {
  std::string model = "gla";  // model: gla | mamba2 | attention | gated_deltanet
  int vocab_size = 256;       // model.vocab_size
  int d_model = 64;           // model.d_model  (D)
  int n_layers = 2;           // model.n_layers (L)
  bool mlp = false;           // model.mlp: SwiGLU MLP after each mixer (Zoology MQAR: none)
  int mlp_hidden = 0;         // model.mlp_hidden: 0 = 4*D*2/3 rounded up to a multiple of 8
  bool tie_embeddings = true; // model.tie_embeddings: LM head = embedding^T
  float norm_eps = 1e-5f;     // model.norm_eps

  // GLA (fla GatedLinearAttention); heads, expand_k, expand_v, use_short_conv also shape
  // Gated DeltaNet (head dims K = Dk / H, V = Dv / H)
  int heads = 2;                  // model.heads (H)
  float expand_k = 0.5f;          // model.expand_k: Dk = expand_k * D
  float expand_v = 1.0f;          // model.expand_v: Dv = expand_v * D
  bool use_short_conv = true;     // model.use_short_conv: width-4 causal conv + SiLU on q/k/v
  int conv_width = 4;             // model.conv_width (GLA short conv and Mamba2 conv)
  int gate_low_rank = 16;         // model.gate_low_rank (r)
  float gate_logit_normalizer = 16.0f;  // model.gate_logit_normalizer

  // Mamba2 (mamba_ssm Mamba2)
  int expand = 2;     // model.expand: d_inner = expand * D
  int head_dim = 16;  // model.head_dim (P)
  int ngroups = 1;    // model.ngroups (G)
  int d_state = 16;   // model.d_state (N)

  // Softmax attention (fla Attention; heads = model.heads, head dim D / heads)
  bool rope = false;          // model.rope: rotary embeddings on q and k (fla's default: on)
  float rope_theta = 10000.f; // model.rope_theta: RoPE base

  // Per-layer mixer shapes; empty means every layer uses the defaults above. StateX fills it.
  std::vector<MixerShape> layers;  // (not a CLI option; stored in checkpoints)

  // Dk, Dv: the float product, truncated (validate() refuses a product with a fractional part,
  // so the dimension checked is the dimension built).
  int key_dim() const;
  int value_dim() const;
  int d_inner() const { return expand * d_model; }
  int hidden_mlp() const { return mlp_hidden > 0 ? mlp_hidden : ((8 * d_model / 3 + 7) / 8) * 8; }
  MixerShape default_shape() const;
  MixerShape layer_shape(int layer) const;  // layers[layer] or the default
};

// Associative-recall task of one segment (docs/tasks.md). Ids are stored in token files.
enum class Task : int { mqar = 0, forgetting = 1, compositional = 2 };

// One data segment: `count` examples of length T with K key-value pairs of one task.
// Text form "[task:]T:K:count[:updates=U][:passes=p][:grid=g]" (parse_segments).
struct MqarSegment {
  int seq_len = 64;   // T
  int num_kv = 4;     // K
  long count = 0;     // examples in this segment
  Task task = Task::mqar;
  int updates = 0;    // forgetting: U keys reassigned a new value after the K pairs
  int passes = 1;     // p: the key-value context is repeated p times before the queries (JRT)
  int grid = 0;       // compositional: grid side g (0 = sqrt(K), K must be a perfect square)
};

struct MqarConfig {
  int vocab_size = 256;          // = model.vocab_size (copied by the CLI)
  float power_a = 0.01f;         // mqar.power_a: gap distribution p(g) ∝ a (g+1)^(a-1)
  bool random_non_queries = true;   // mqar.random_non_queries (Zoology's default: on)
  std::vector<MqarSegment> train;   // mqar.train  "[task:]T:K:count[,...]"
  std::vector<MqarSegment> test;    // mqar.test
  // mqar.valid: the validation split (empty = none, the default). Its own seed space, disjoint
  // from train and test; evaluated beside the test set at every eval (docs/tasks.md).
  std::vector<MqarSegment> valid;
  unsigned long long train_seed = 1;  // mqar.seed (train seed space; test, valid: disjoint ones)
  std::string train_file;        // data.train: token file to train on instead of mqar.train
  std::string test_file;         // data.test: token file to evaluate on instead of mqar.test
  std::string valid_file;        // data.valid: token file to validate on instead of mqar.valid
  bool has_valid() const { return !valid.empty() || !valid_file.empty(); }
};

struct TrainConfig {
  long steps = 1500;             // train.steps
  int batch_size = 64;           // train.batch_size
  float lr = 1e-2f;              // train.lr (peak; 1e-2: see README "Design choices")
  float min_lr_ratio = 0.0f;     // train.min_lr_ratio: cosine floor as a fraction of lr
  int warmup_steps = 100;        // train.warmup_steps
  float beta1 = 0.9f;            // train.beta1
  float beta2 = 0.95f;           // train.beta2
  float adam_eps = 1e-8f;        // train.adam_eps
  float weight_decay = 0.1f;     // train.weight_decay (2-D weights only unless decay_all)
  bool decay_all = false;        // train.decay_all
  float grad_clip = 1.0f;        // train.grad_clip (0 = off)
  int eval_every = 100;          // train.eval_every (steps)
  // train.target_accuracy: early stop when the accuracy reaches this (0 = off); judged on the
  // validation split when one is configured, else on the test set
  float target_accuracy = 0.0f;
  unsigned long long seed = 0;   // train.seed: parameter init (data seeds live in MqarConfig)
  int threads = 0;               // train.threads: OpenMP threads (0 = OMP default)
  int gla_chunk = 16;            // train.gla_chunk: chunk length of the chunked GLA
  int ssd_chunk = 16;            // train.ssd_chunk: chunk length of the chunked SSD
  int checkpoint_every = 0;      // train.checkpoint_every (0 = only at the end)
  std::string device = "cpu";    // device: cpu | cuda
};

// StateX expansion (docs/design.md §3, issue 4). Disabled when step < 0 and fraction < 0.
struct StatexConfig {
  long step = -1;              // statex.step: expand after this many training steps (-1 = off)
  float fraction = -1.0f;      // statex.fraction: or at this fraction of train.steps (-1 = off)
  int count = 1;               // statex.count: number of layers to expand (1..L)
  std::string select = "evenly";  // statex.select: evenly | first | last | list
  std::string layers;          // statex.layers: explicit list "0,2" when select = list
  std::string mode = "reinit"; // statex.mode: reinit | inherit
  int gla_heads = 1;           // statex.gla_heads: GLA / Gated DeltaNet head count after merging
  int state_mult = 4;          // statex.state_mult: Mamba2 N multiplier m
  bool reset_optimizer = false;  // statex.reset_optimizer: zero ALL AdamW moments (new tensors always start at 0)
  int warmup_steps = 100;      // statex.warmup_steps: warm-up of the restarted schedule
  std::string arm;             // statex.arm: label recorded in results (statex | control | scratch)
};

// Everything one `statex train` run needs.
struct ExperimentConfig {
  ModelConfig model;
  MqarConfig mqar;
  std::string mqar_train = "64:4:100000";  // mqar.train (parsed into mqar.train)
  std::string mqar_test = "64:4:1000";     // mqar.test
  std::string mqar_valid;                  // mqar.valid ("" = no validation split)
  TrainConfig train;
  StatexConfig statex;
};

// expand * d_model as the model is built: the float product, truncated (the one definition of
// Dk / Dv, also the Python package's checkpoint.key_dim).
inline int truncated_dim(float ratio, int d_model) { return static_cast<int>(ratio * d_model); }
inline int ModelConfig::key_dim() const { return truncated_dim(expand_k, d_model); }
inline int ModelConfig::value_dim() const { return truncated_dim(expand_v, d_model); }

// Model config <-> string map of "model.*" options (checkpoint attributes, results /config).
std::map<std::string, std::string> to_map(const ModelConfig& m);
ModelConfig model_config_from_map(const std::map<std::string, std::string>& kv);

// Throws ConfigError naming the option on the first inconsistency.
void validate(const ModelConfig& m);
void validate(const MqarConfig& d);
void validate(const TrainConfig& t);
void validate(const StatexConfig& s);  // the options alone (statex.cpp checks them against a model)

// "64:4:100000,128:8:2000" -> segments; throws ConfigError naming `option` on bad syntax.
std::vector<MqarSegment> parse_segments(const std::string& text, const std::string& option);
std::string format_segments(const std::vector<MqarSegment>& segs);

}  // namespace statex
