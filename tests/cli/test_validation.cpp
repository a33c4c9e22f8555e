// Attack: input that used to be accepted silently, or to end in a bare exception. Each case
// exits 2 before anything is written, with a message naming the option (or the file) and the
// fix: memory estimates before every large allocation (statex data, eval, grad, token files),
// float options that are not finite, task-spec fields that do not apply or repeat, an expand
// ratio whose product is not the dimension built, the batch option of eval, and the resolved
// config files statex writes itself (accepted by train --config).
#include <hdf5.h>

#include "sim/io/results_file.h"
#include "sim/io/token_file.h"
#include "tests/cli/cli_harness.h"

namespace statex::cli_test {
namespace {

using V = std::vector<std::string>;

V train_with(std::map<std::string, std::string> over, const std::string& out) {
  return V{"train"} + tiny(std::move(over)) + V{"--out", out};
}

// A token file whose datasets declare `shape` without storing a byte (chunked, never written).
void write_declared_token_file(const std::string& path, std::vector<hsize_t> shape) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  hid_t space = H5Screate_simple(2, shape.data(), nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  hsize_t chunk[2] = {1, std::min<hsize_t>(shape[1], 1024)};
  H5Pset_chunk(dcpl, 2, chunk);
  for (const char* name : {"tokens", "labels"}) {
    hid_t d = H5Dcreate2(f, name, H5T_NATIVE_INT32, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ASSERT_GE(d, 0);
    H5Dclose(d);
  }
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(f);
}

TEST_F(Attack, DataHugeCountGivesAMemoryEstimate) {
  for (const char* count : {"100000000000", "9223372036854775807"}) {
    Outcome r = refused({"data", "--mqar.train", std::string("64:4:") + count, "--train-out",
                         path("t.h5")},
                        2, {"GiB", "mqar.train", "lower the counts"});
    EXPECT_EQ(r.out.find("bad_alloc"), std::string::npos) << r.out;
  }
  refused({"data", "--mqar.test", "64:4:100000000000", "--test-out", path("t.h5")}, 2,
          {"GiB", "mqar.test"});
}

TEST_F(Attack, TokenFileDeclaringAHugeShapeGivesAMemoryEstimate) {
  std::string ck = checkpoint();
  for (auto shape : {std::vector<hsize_t>{1000000, 100000},
                     std::vector<hsize_t>{1000000000000ull, 1000000},
                     std::vector<hsize_t>{1ull << 40, 1ull << 40}}) {
    write_declared_token_file(path("big.h5"), shape);
    for (const V& args : {V{"eval", "--checkpoint", ck, "--tokens", path("big.h5"), "--out",
                            path("e.h5")},
                          V{"grad", "--checkpoint", ck, "--tokens", path("big.h5"), "--out",
                            path("g.h5")},
                          train_with({{"data.train", path("big.h5")}}, path("r.h5"))}) {
      Outcome r = refused(args, 2, {"GiB", "big.h5", "declares shape"});
      EXPECT_EQ(r.out.find("bad_alloc"), std::string::npos) << r.out;
      EXPECT_EQ(r.out.find("overflow"), std::string::npos) << r.out;
    }
    ::unlink(path("big.h5").c_str());
  }
}

TEST_F(Attack, EvalMemoryOfTheTestSetAndItsLogits) {
  std::string ck = checkpoint();
  for (const char* count : {"1000000000", "10000000000"})
    refused({"eval", "--checkpoint", ck, "--mqar.test", std::string("16:2:") + count, "--out",
             path("e.h5")},
            2, {"GiB", "mqar.test"});
}

TEST_F(Attack, EvalBatchIsNamedAsTheBatchOption) {
  std::string ck = checkpoint();
  Outcome r = refused({"eval", "--checkpoint", ck, "--mqar.test", "16:2:8", "--batch",
                       "1000000000", "--out", path("e.h5")},
                      2, {"--batch"});
  EXPECT_EQ(r.out.find("train.batch_size"), std::string::npos) << r.out;
}

// Every float option, whatever the model reads: inf and nan are refused by name (rope_theta =
// inf used to pass for every model).
TEST_F(Attack, NonFiniteFloatOptionsRefusedByName) {
  for (const char* option :
       {"model.norm_eps", "model.expand_k", "model.expand_v", "model.gate_logit_normalizer",
        "model.rope_theta", "mqar.power_a", "train.lr", "train.min_lr_ratio", "train.beta1",
        "train.beta2", "train.adam_eps", "train.weight_decay", "train.grad_clip",
        "train.target_accuracy", "statex.fraction"})
    for (const char* bad : {"inf", "-inf", "nan"}) {
      SCOPED_TRACE(std::string(option) + " " + bad);
      refused(train_with({}, path("r.h5")) + V{std::string("--") + option + "=" + bad}, 2,
              {option, "finite"});
    }
  refused(train_with({{"model.model", "attention"}, {"model.rope", "true"}, {"model.rope_theta", "inf"}},
                     path("r.h5")),
          2, {"model.rope_theta"});
}

// The task spec: every field checked for every segment kind.
TEST_F(Attack, TaskSpecFieldsCheckedForEveryKind) {
  struct Case {
    const char* spec;
    std::vector<std::string> needles;
  };
  for (const Case& c : std::vector<Case>{
           {"16:2:40:updates=0", {"updates=", "only the forgetting task"}},
           {"mqar:16:2:40:grid=0", {"grid=", "only the compositional task"}},
           {"16:2:40:grid=2", {"grid=", "only the compositional task"}},
           {"compositional:24:4:40:grid=0", {"grid=0", ">= 1", "omit grid="}},
           {"forgetting:24:2:40:updates=1:updates=2", {"updates=", "twice"}},
           {"16:2:40:passes=1:passes=2", {"passes=", "twice"}},
           {"16:2:40:passes=0", {"passes=0", ">= 1"}},
           {"forgetting:24:2:40:updates=1:grid=2", {"only the compositional task"}},
           {"compositional:24:4:40:updates=1", {"only the forgetting task"}}}) {
    SCOPED_TRACE(c.spec);
    auto needles = c.needles;
    needles.push_back("mqar.train");
    refused(train_with({{"mqar.train", c.spec}}, path("r.h5")), 2, needles);
    needles.back() = "mqar.test";
    refused(train_with({{"mqar.test", c.spec}}, path("r.h5")), 2, needles);
  }
}

// Dk is the float product truncated; 0.3333333 x 48 = 15.999999 passed a rounding check as
// Dk = 16 and was built with Dk = 15. Refused, with the ratio to write for either dimension.
TEST_F(Attack, ExpandRatioWhoseProductIsNotTheBuiltDimensionRefused) {
  for (const char* model : {"gla", "gated_deltanet"}) {
    SCOPED_TRACE(model);
    refused(train_with({{"model.model", model}, {"model.expand_k", "0.3333333"},
                        {"model.d_model", "48"}, {"model.heads", "1"}},
                       path("r.h5")),
            2, {"model.expand_k", "Dk = 15", "for Dk = 16"});
    refused(train_with({{"model.model", model}, {"model.expand_v", "0.3333333"},
                        {"model.d_model", "48"}, {"model.heads", "1"}},
                       path("r.h5")),
            2, {"model.expand_v", "Dv = 15"});
  }
  // The ratio the message proposes works, and builds Dk = 16.
  Outcome ok = run(train_with({{"model.expand_k", "0.33333334"}, {"model.d_model", "48"},
                               {"model.heads", "1"}},
                              path("r.h5")));
  ASSERT_EQ(ok.code, 0) << ok.out;
}

// A resolved config written by statex itself -- a results file's /config/ini, a token file's
// config_ini -- lists every option at its value, statex.state_mult for a GLA run included: train
// --config accepts it, for every family.
TEST_F(Attack, TrainAcceptsItsOwnResolvedConfigs) {
  for (std::map<std::string, std::string> over :
       {std::map<std::string, std::string>{},
        {{"model.model", "mamba2"}, {"model.gate_low_rank", "<unset>"}},
        {{"model.model", "gated_deltanet"}}}) {
    const std::string model = over.count("model.model") ? over["model.model"] : "gla";
    SCOPED_TRACE(model);
    ASSERT_EQ(run(train_with(over, path(model + ".h5"))).code, 0);
    {
      std::ofstream(path(model + ".ini")) << read_results(path(model + ".h5")).config_ini;
    }
    Outcome again = run({"train", "--config", path(model + ".ini"), "--out", path(model + "2.h5"),
                         "--quiet"});
    EXPECT_EQ(again.code, 0) << again.out;
    ASSERT_EQ(run({"data", "--config", path(model + ".ini"), "--train-out",
                   path(model + "_tok.h5"), "--show", "0"})
                  .code,
              0);
    {
      std::ofstream(path(model + "_tok.ini"))
          << read_token_file(path(model + "_tok.h5")).info.at("config_ini");
    }
    Outcome tok = run({"train", "--config", path(model + "_tok.ini"), "--out",
                       path(model + "3.h5"), "--quiet"});
    EXPECT_EQ(tok.code, 0) << tok.out;
  }
  // What the check is for stays refused: asked for on the command line, or a value other than
  // the default in a file.
  refused(train_with({{"statex.state_mult", "4"}}, path("x.h5")), 2, {"statex.state_mult"});
  std::ofstream(path("m.ini")) << "[statex]\nstate_mult = 8\n";
  refused(V{"train", "--config", path("m.ini")} + tiny() + V{"--out", path("x.h5")}, 2,
          {"statex.state_mult"});
}

}  // namespace
}  // namespace statex::cli_test
