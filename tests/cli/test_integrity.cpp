// Attack: damaged checkpoints. Random single-bit flips either load bit-identically or are
// refused with an error naming the file; structural damage gives a named error; a checkpoint
// written as h5py writes it (chunked + Fletcher32, no statex digest) loads.
#include <random>

#include "sim/io/checkpoint.h"
#include "sim/io/h5.h"
#include "sim/io/token_file.h"
#include "tests/cli/cli_harness.h"

namespace statex::cli_test {
namespace {

using V = std::vector<std::string>;

const V kEvalSet = {"--mqar.test", "16:2:8"};

// Logits of `statex eval` on the tiny test set ("" + the message when it fails).
std::pair<std::vector<float>, Outcome> eval_logits(const std::string& ck, const std::string& out) {
  Outcome r = run(V{"eval", "--checkpoint", ck, "--out", out, "--overwrite"} + kEvalSet);
  if (r.code != 0) return {{}, r};
  return {read_eval_output(out).logits, r};
}

void expect_same(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.exp_avg, b.exp_avg);
  EXPECT_EQ(a.exp_avg_sq, b.exp_avg_sq);
  EXPECT_TRUE(a.trainer == b.trainer);
  EXPECT_TRUE(a.expansion == b.expansion);
  EXPECT_TRUE(model_mismatches(a.model, b.model).empty());
}

class BitFlip : public Attack, public ::testing::WithParamInterface<int> {};

// One random bit of the file flipped (seed = the test's index): the checkpoint loads exactly as
// before (the bit was in unused space) or is refused with a message naming the file.
TEST_P(BitFlip, LoadsIdenticallyOrIsRefusedByName) {
  std::string ck = checkpoint();
  std::string bytes = read_bytes(ck);
  std::mt19937_64 rng(1000 + GetParam());
  size_t pos = std::uniform_int_distribution<size_t>(0, bytes.size() - 1)(rng);
  bytes[pos] = char(bytes[pos] ^ (1 << (rng() % 8)));
  std::string bad = path("flipped.h5");
  std::ofstream(bad, std::ios::binary) << bytes;

  Checkpoint good = load_checkpoint(ck);
  bool loaded = false;
  try {
    Checkpoint c = load_checkpoint(bad);
    loaded = true;
    expect_same(c, good);
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(), bad);
  }
  auto [ref, r0] = eval_logits(ck, path("e0.h5"));
  ASSERT_EQ(r0.code, 0) << r0.out;
  auto [got, r1] = eval_logits(bad, path("e1.h5"));
  if (loaded) {
    EXPECT_EQ(r1.code, 0) << r1.out;
    EXPECT_EQ(got, ref) << "flip at byte " << pos << " changed the logits silently";
  } else {
    EXPECT_EQ(r1.code, 2) << r1.out;
    EXPECT_CONTAINS(r1.out, "flipped.h5");
  }
}
INSTANTIATE_TEST_SUITE_P(Twenty, BitFlip, ::testing::Range(0, 20));

// Edits a checkpoint in place with HDF5, then re-stamps the digests and the file CRC (a
// deliberate edit, so the structural check, not a checksum, must name the problem).
template <class F>
void edit(const std::string& path, F f, bool restamp = true, bool restamp_crc = true) {
  h5::silence_errors();
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(id, 0);
  {
    h5::Handle file(id, H5Fclose);
    f(file.get());
    if (restamp) h5::write_digests(file);
  }
  if (restamp_crc) h5::stamp_file_crc(path);
}

TEST_F(Attack, MissingParameterDatasetIsNamed) {
  std::string ck = checkpoint();
  std::string name = load_checkpoint(ck).table.entries()[1].name;
  edit(ck, [&](hid_t f) { ASSERT_GE(H5Ldelete(f, ("params/" + name).c_str(), H5P_DEFAULT), 0); });
  refused(V{"eval", "--checkpoint", ck, "--out", path("e.h5")} + kEvalSet, 2,
          {"ck.h5", "missing parameter dataset '/params/" + name + "'"});
}

TEST_F(Attack, DamagedTrainerAttributeIsNamed) {
  std::string ck = path("ck.h5");
  V args = {"train"};
  args = args + tiny({{"train.steps", "6"}, {"train.checkpoint_every", "2"}});
  ASSERT_EQ(run(args + V{"--out", path("r.h5"), "--checkpoint-out", ck}).code, 0);
  edit(ck, [&](hid_t f) {
    h5::Handle t = h5::open_group(f, "trainer");
    h5::write_attr(t, "schedule_start", "x12");
  });
  refused(args + V{"--resume", ck, "--out", path("r2.h5")}, 2,
          {"ck.h5", "schedule_start", "damaged"});
}

TEST_F(Attack, EditedAttributeIsDamage) {
  std::string ck = checkpoint();
  // Neither the file CRC nor the digests re-stamped: the CRC-32 catches it first.
  edit(ck, [&](hid_t f) { h5::write_attr(f, "step", int64_t{999}); }, false, false);
  refused(V{"eval", "--checkpoint", ck, "--out", path("e.h5")} + kEvalSet, 2,
          {"ck.h5", "damaged", "CRC-32"});
  // File CRC re-stamped but not the digests: the per-object digest names the object.
  ck = checkpoint("ck2.h5");
  edit(ck, [&](hid_t f) { h5::write_attr(f, "step", int64_t{999}); }, false, true);
  refused(V{"eval", "--checkpoint", ck, "--out", path("e.h5")} + kEvalSet, 2,
          {"ck2.h5", "'/' is damaged", "checksum"});
}

TEST_F(Attack, FlippedParameterValueNamesTheTensor) {
  std::string ck = checkpoint();
  Checkpoint c = load_checkpoint(ck);
  const ParamEntry& e = c.table.entries()[0];
  // Find the tensor's raw float bytes in the file and flip one bit of its first value.
  std::string bytes = read_bytes(ck);
  std::string needle(reinterpret_cast<const char*>(c.params.data() + e.offset), 4 * 4);
  size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 1] = char(bytes[at + 1] ^ 0x10);
  std::ofstream(ck, std::ios::binary) << bytes;
  refused(V{"eval", "--checkpoint", ck, "--out", path("e.h5")} + kEvalSet, 2,
          {"ck.h5", e.name, "Fletcher32"});
}

TEST_F(Attack, TruncatedCheckpointIsNamed) {
  std::string ck = checkpoint();
  std::string bytes = read_bytes(ck);
  std::ofstream(ck, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  refused(V{"eval", "--checkpoint", ck, "--out", path("e.h5")} + kEvalSet, 2, {"ck.h5"});
}

TEST_F(Attack, ResultsFileGivenAsCheckpoint) {
  checkpoint();
  refused(V{"eval", "--checkpoint", path("ck.h5.run.h5"), "--out", path("e.h5")} + kEvalSet, 2,
          {"results file, not a checkpoint"});
}

// Rewrites every numeric dataset of `src` into `dst` as h5py does with chunks=True,
// fletcher32=True (no statex digest dataset), copying the attributes.
void rewrite_like_h5py(const std::string& src, const std::string& dst, bool fletcher32) {
  Checkpoint c = load_checkpoint(src);
  hid_t f = H5Fcreate(dst.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  auto put = [&](hid_t g, const std::string& name, const void* data, hid_t type,
                 const std::vector<hsize_t>& dims) {
    hid_t sp = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, int(dims.size()), dims.data());
    if (fletcher32) H5Pset_fletcher32(dcpl);
    hid_t d = H5Dcreate2(g, name.c_str(), type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
  };
  h5::write_attr(f, "format", "statex-sim checkpoint");
  h5::write_attr(f, "format_version", int32_t{1});
  h5::write_attr(f, "step", c.step);
  hid_t m = H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  for (auto& [k, v] : to_map(c.model)) h5::write_attr(m, k, v);
  std::vector<int32_t> heads, dstate;
  for (int l = 0; l < c.model.n_layers; ++l) {
    heads.push_back(c.model.layer_shape(l).heads);
    dstate.push_back(c.model.layer_shape(l).d_state);
  }
  put(m, "layer_heads", heads.data(), H5T_NATIVE_INT32, {heads.size()});
  put(m, "layer_d_state", dstate.data(), H5T_NATIVE_INT32, {dstate.size()});
  H5Gclose(m);
  hid_t p = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  for (auto& e : c.table.entries())
    put(p, e.name, c.params.data() + e.offset, H5T_NATIVE_FLOAT,
        std::vector<hsize_t>(e.shape.begin(), e.shape.end()));
  H5Gclose(p);
  H5Fclose(f);
}

TEST_F(Attack, H5pyStyleCheckpointLoads) {
  std::string ck = checkpoint();
  rewrite_like_h5py(ck, path("py.h5"), /*fletcher32=*/true);
  auto [ref, r0] = eval_logits(ck, path("e0.h5"));
  auto [got, r1] = eval_logits(path("py.h5"), path("e1.h5"));
  ASSERT_EQ(r1.code, 0) << r1.out;
  EXPECT_EQ(got, ref);
}

TEST_F(Attack, CheckpointWithoutChecksumsRefused) {
  std::string ck = checkpoint();
  rewrite_like_h5py(ck, path("py.h5"), /*fletcher32=*/false);
  refused(V{"eval", "--checkpoint", path("py.h5"), "--out", path("e.h5")} + kEvalSet, 2,
          {"py.h5", "no Fletcher32 checksum"});
}

}  // namespace
}  // namespace statex::cli_test
