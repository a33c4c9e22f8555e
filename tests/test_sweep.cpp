// statex sweep: sweep-file parsing and expansion, stable trial ids, the local runner (resume after
// a real SIGKILL, corrupt/partial results rerun, failing trials isolated), best-over-LR, one real
// end-to-end run with `statex train`, and the Slurm backend against a real local Slurm.
//
// The runner tests drive the built binary (env STATEX_BIN, set by CMake) with a fake trainer: a
// shell script that copies a prepared results file (written with the real results writer) into
// place, so they take well under a second per trial and do not depend on the trainer.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "sim/core/options.h"
#include "sim/io/results_file.h"
#include "sim/sweep/result_probe.h"
#include "sim/sweep/sweep_dir.h"
#include "sim/sweep/sweep_spec.h"

using namespace statex;
using namespace statex::sweep;

namespace {

std::string make_temp_dir() {
  char tmpl[] = "/tmp/statex_sweep_test_XXXXXX";
  char* d = mkdtemp(tmpl);
  if (!d) throw std::runtime_error("mkdtemp failed");
  return d;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(read_file(path));
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) out.push_back(l);
  return out;
}

// index.csv -> trial id -> column name -> value (no quoted commas in these tests' values).
std::map<std::string, std::map<std::string, std::string>> read_index(const std::string& path) {
  auto lines = lines_of(path);
  std::map<std::string, std::map<std::string, std::string>> out;
  if (lines.empty()) return out;
  auto split = [](const std::string& l) {
    std::vector<std::string> f;
    std::string cur;
    bool quoted = false;
    for (char c : l) {
      if (c == '"') quoted = !quoted;
      else if (c == ',' && !quoted) { f.push_back(cur); cur.clear(); }
      else cur += c;
    }
    f.push_back(cur);
    return f;
  };
  auto header = split(lines[0]);
  for (size_t i = 1; i < lines.size(); ++i) {
    auto f = split(lines[i]);
    for (size_t c = 0; c < header.size() && c < f.size(); ++c) out[f[0]][header[c]] = f[c];
  }
  return out;
}

std::string statex_bin() {
  const char* b = std::getenv("STATEX_BIN");
  return b ? b : "";
}

// Runs argv, waits, returns the exit code; output to `log`.
int run_cmd(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    if (freopen(log.c_str(), "w", stdout) && dup2(fileno(stdout), 2) >= 0) {
    }
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

// A results file as the trainer writes it, via the real writer; with valid_acc >= 0 it has a
// validation split whose best accuracy is valid_acc.
void write_result(const std::string& path, const std::string& status, float best_acc,
                  const std::string& reason = "", float valid_acc = -1) {
  RunRecord r;
  r.status = status;
  r.failure_reason = reason;
  EvalPoint e0, e1;
  e0.step = 0;
  e0.accuracy = 0.01f;
  e1.step = 10;
  e1.accuracy = best_acc;
  r.evals = {e0, e1};
  if (valid_acc >= 0) {
    r.has_valid = true;
    r.valid_segments = {"16:2:10"};
    EvalPoint v0 = e0, v1 = e1;
    v0.segment_accuracy = {v0.accuracy};
    v1.accuracy = valid_acc;
    v1.segment_accuracy = {valid_acc};
    r.valid_evals = {v0, v1};
  }
  write_results(path, r);
}

// Fake trainer: records its trial id in runs.txt, sleeps train.steps hundredths of a second,
// then copies the template for its lr. lr 0.666 -> results file with status failed + exit 1;
// lr 0.777 -> exit 2 with no results file.
struct FakeTrainer {
  std::string dir, script;
  explicit FakeTrainer(const std::string& d) : dir(d), script(d + "/fake_trainer.sh") {
    write_result(dir + "/completed.h5", "completed", 0.5f);
    write_result(dir + "/acc_0.001.h5", "completed", 0.4f);
    write_result(dir + "/acc_0.003.h5", "completed", 0.9f);
    write_result(dir + "/acc_0.01.h5", "completed", 0.7f);
    write_result(dir + "/failed.h5", "failed", 0.1f, "non-finite loss at step 3");
    write_result(dir + "/running.h5", "running", 0.2f);
    write_text(script,
               "#!/bin/sh\n"
               "while [ $# -gt 0 ]; do case \"$1\" in --config) cfg=$2; shift 2;; --out) out=$2; shift 2;;"
               " --train.threads) thr=$2; shift 2;; *) shift;; esac; done\n"
               "T=" + dir + "\n"
               "echo \"fake trainer: $cfg threads=$thr\"\n"
               "echo \"$(basename \"$out\" .h5)\" >> \"$T/runs.txt\"\n"
               "lr=$(sed -n 's/^lr *= *//p' \"$cfg\")\n"
               "steps=$(sed -n 's/^steps *= *//p' \"$cfg\")\n"
               "sleep $(awk \"BEGIN{print ${steps:-0}/100}\")\n"
               "if [ \"$lr\" = 0.777 ]; then echo 'boom: trainer crashed'; exit 2; fi\n"
               "if [ \"$lr\" = 0.666 ]; then cp \"$T/failed.h5\" \"$out.tmp\"; mv \"$out.tmp\" \"$out\"; "
               "echo 'non-finite loss'; exit 1; fi\n"
               "src=\"$T/acc_$lr.h5\"; [ -f \"$src\" ] || src=\"$T/completed.h5\"\n"
               "cp \"$src\" \"$out.tmp\" && mv \"$out.tmp\" \"$out\"\n");
    chmod(script.c_str(), 0755);
  }
  std::vector<std::string> runs() const { return lines_of(dir + "/runs.txt"); }
};

class SweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp = make_temp_dir();
    if (statex_bin().empty()) GTEST_SKIP() << "STATEX_BIN not set (run through ctest)";
  }
  void TearDown() override {
    if (!tmp.empty()) std::system(("rm -rf '" + tmp + "'").c_str());
  }
  std::string tmp;
};

const char* kGridZip =
    "# base config\n"
    "device = cpu\n"
    "[model]\n"
    "model = gla\n"
    "n_layers = 2\n"
    "[train]\n"
    "steps = 5\n"
    "[sweep]\n"
    "name = demo\n"
    "grid.train.lr = 1e-3, 3e-3\n"
    "zip.size.model.d_model = 32,64\n"
    "zip.size.model.heads = 1, 2\n"
    "grid.train.seed = 0,1,2\n";

}  // namespace

TEST(SweepSpec, GridAndZipExpansion) {
  SweepSpec spec = parse_sweep_text(kGridZip, "demo.ini", experiment_option_names());
  EXPECT_EQ(spec.name, "demo");
  ASSERT_EQ(spec.axes.size(), 4u);
  auto trials = expand(spec);
  ASSERT_EQ(trials.size(), 2u * 2u * 3u);  // lr x (d_model,heads zipped) x seed
  std::set<std::string> combos;
  for (auto& t : trials) {
    EXPECT_EQ(t.config.at("device"), "cpu");
    EXPECT_EQ(t.config.at("model.n_layers"), "2");
    EXPECT_EQ(t.config.at("train.steps"), "5");
    // Zipped options move together.
    EXPECT_EQ(t.config.at("model.heads"), t.config.at("model.d_model") == "32" ? "1" : "2");
    combos.insert(t.config.at("train.lr") + "/" + t.config.at("model.d_model") + "/" + t.config.at("train.seed"));
    ASSERT_EQ(t.swept.size(), 4u);
    EXPECT_EQ(t.swept[0].first, "train.lr");
    EXPECT_EQ(t.swept[0].second, t.config.at("train.lr"));
  }
  EXPECT_EQ(combos.size(), trials.size());  // every combination exactly once
  // First axis outermost, last fastest.
  EXPECT_EQ(trials[0].config.at("train.lr"), "1e-3");
  EXPECT_EQ(trials[1].config.at("train.seed"), "1");
  EXPECT_EQ(trials.back().config.at("train.lr"), "3e-3");
  // The trial INI round-trips the resolved config with sections.
  std::string ini = to_ini(trials[0].config);
  EXPECT_NE(ini.find("device = cpu\n"), std::string::npos);
  EXPECT_NE(ini.find("[model]\nd_model = 32\nheads = 1\nmodel = gla\n"), std::string::npos) << ini;
}

TEST(SweepSpec, PipeSeparatesValuesThatContainCommas) {
  auto spec = parse_sweep_text("[sweep]\ngrid.mqar.test = 64:4:10,128:8:10 | 256:16:10\n", "x.ini",
                               experiment_option_names());
  auto trials = expand(spec);
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_EQ(trials[0].config.at("mqar.test"), "64:4:10,128:8:10");
  EXPECT_EQ(trials[1].config.at("mqar.test"), "256:16:10");
}

TEST(SweepSpec, ZipMembersMayRepeatValues) {
  auto trials = expand(parse_sweep_text("[sweep]\nzip.s.model.d_model = 16,32\nzip.s.model.heads = 1,1\n",
                                        "x.ini", experiment_option_names()));
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_EQ(trials[1].config.at("model.heads"), "1");
  // ...but a zip group whose rows coincide is an error, not two copies of one trial.
  EXPECT_THROW(expand(parse_sweep_text("[sweep]\nzip.s.model.d_model = 16,16\nzip.s.model.heads = 1,1\n",
                                       "x.ini", {})),
               ConfigError);
}

TEST(SweepSpec, StableIds) {
  auto a = expand(parse_sweep_text(kGridZip, "a.ini", {}));
  // Same configs written in another order (sections, lines, axis order) give the same ids.
  const char* reordered =
      "[train]\nsteps = 5\n[model]\nn_layers = 2\nmodel = gla\n[sweep]\n"
      "grid.train.seed = 2,1,0\nzip.s.model.heads = 2,1\nzip.s.model.d_model = 64,32\n"
      "grid.train.lr = 3e-3,1e-3\n";
  auto b = expand(parse_sweep_text(std::string("device = cpu\n") + reordered, "b.ini", {}));
  std::set<std::string> ia, ib;
  for (auto& t : a) ia.insert(t.id);
  for (auto& t : b) ib.insert(t.id);
  EXPECT_EQ(ia, ib);
  EXPECT_EQ(ia.size(), a.size());
  for (auto& id : ia) EXPECT_EQ(id.size(), 12u);
  // A different value changes the id.
  ConfigMap c = a[0].config;
  std::string before = trial_id(c);
  c["train.steps"] = "6";
  EXPECT_NE(trial_id(c), before);
  // Pinned values: the id must not change across versions or machines (FNV-1a 64 of the
  // canonical text; the empty text hashes to the FNV offset basis cbf29ce484222325).
  EXPECT_EQ(trial_id({}), "cbf29ce48422");
  EXPECT_EQ(canonical_text({{"train.lr", "1e-3"}, {"device", "cpu"}}), "device=cpu\ntrain.lr=1e-3\n");
  EXPECT_EQ(trial_id({{"train.lr", "1e-3"}, {"device", "cpu"}}), "f0f2ca2b111d");
}

TEST(SweepSpec, BadFilesNameTheLine) {
  struct Case {
    std::string text;
    int line;
    std::string what;
  };
  std::vector<Case> cases = {
      {"[model]\nd_model = 64\nd_modle = 32\n", 3, "unknown option 'model.d_modle'"},
      {"[train]\nd_model = 64\n", 2, "did you mean 'model.d_model'"},
      {"[sweep]\n\ngrid.train.learning_rate = 1,2\n", 3, "unknown option 'train.learning_rate'"},
      {"[sweep]\ngrid.train.lr =\n", 2, "has no values"},
      {"[sweep]\ngrid.train.lr = 1e-3,,3e-3\n", 2, "empty value"},
      {"[sweep]\nzip.a.model.d_model = 32,64,128\nzip.a.model.heads = 1,2\n", 3,
       "zip group 'a': 'model.heads' has 2 values but 'model.d_model' (line 2) has 3"},
      {"[train]\nlr 3e-3\n", 2, "expected 'name = value'"},
      {"[sweep]\ngird.train.lr = 1,2\n", 2, "unknown [sweep] key"},
      {"[sweep]\ngrid.train.lr = 1,2\ngrid.train.lr = 3\n", 3, "already swept on line 2"},
      {"[train]\nlr = 1\nsteps = 2\nlr = 3\n", 4, "already set on line 2"},
      {"[sweep]\ngrid.train.lr = 1,2,1\n", 2, "lists '1' twice"},
      {"[sweep]\nzip.model.heads = 1,2\n", 2, "unknown option 'heads' (did you mean 'model.heads'?)"},
      {"[sweep]\nzip.a = 1,2\n", 2, "zip axis must be 'zip.<group>.<option>'"},
      {"[model\n", 1, "malformed section header"},
  };
  for (auto& c : cases) {
    try {
      parse_sweep_text(c.text, "bad.ini", experiment_option_names());
      ADD_FAILURE() << "no error for:\n" << c.text;
    } catch (const ConfigError& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.rfind("bad.ini:" + std::to_string(c.line) + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find(c.what), std::string::npos) << msg;
    }
  }
}

TEST(SweepProbe, DetectsMissingCorruptPartialAndFinished) {
  std::string d = make_temp_dir();
  using S = ResultProbe::State;
  EXPECT_EQ(probe_result(d + "/none.h5").state, S::missing);
  write_result(d + "/ok.h5", "completed", 0.75f);
  auto ok = probe_result(d + "/ok.h5");
  EXPECT_EQ(ok.state, S::completed);
  EXPECT_NEAR(ok.best_accuracy, 0.75, 1e-6);
  EXPECT_FALSE(ok.has_valid);
  write_result(d + "/valid.h5", "completed", 0.75f, "", 0.6f);
  auto v = probe_result(d + "/valid.h5");
  EXPECT_TRUE(v.has_valid);
  EXPECT_NEAR(v.best_valid_accuracy, 0.6, 1e-6);
  EXPECT_NEAR(v.best_accuracy, 0.75, 1e-6);
  write_result(d + "/run.h5", "running", 0.3f);
  EXPECT_EQ(probe_result(d + "/run.h5").state, S::running);
  write_result(d + "/fail.h5", "failed", 0.3f, "non-finite loss at step 7");
  auto f = probe_result(d + "/fail.h5");
  EXPECT_EQ(f.state, S::failed);
  EXPECT_EQ(f.failure_reason, "non-finite loss at step 7");
  // Truncated copy of a good file, and a text file.
  std::string good = read_file(d + "/ok.h5");
  write_text(d + "/trunc.h5", good.substr(0, good.size() / 2));
  EXPECT_EQ(probe_result(d + "/trunc.h5").state, S::unreadable);
  write_text(d + "/text.h5", "not hdf5\n");
  EXPECT_EQ(probe_result(d + "/text.h5").state, S::unreadable);
  std::system(("rm -rf '" + d + "'").c_str());
}

// Damages a statex file the way a flipped bit on disk does, somewhere the old probe never read
// (a unit attribute of /curves): "tokens/s" -> "tokenz/s". Returns false when not found.
bool damage(const std::string& path) {
  std::string bytes = read_file(path);
  const size_t at = bytes.find("tokens/s");
  if (at == std::string::npos) return false;
  bytes[at + 5] = 'z';
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return true;
}

// The probe goes through the integrity check of every statex reader: a damaged completed file
// is not a finished trial (it used to be, since the probe read only the root attributes).
TEST(SweepProbe, DamagedCompletedFileIsNotFinished) {
  std::string d = make_temp_dir();
  write_result(d + "/ok.h5", "completed", 0.75f);
  ASSERT_EQ(probe_result(d + "/ok.h5").state, ResultProbe::State::completed);
  ASSERT_TRUE(damage(d + "/ok.h5"));
  ResultProbe p = probe_result(d + "/ok.h5");
  EXPECT_EQ(p.state, ResultProbe::State::unreadable);
  EXPECT_TRUE(p.damaged);
  EXPECT_NE(p.detail.find("CRC"), std::string::npos) << p.detail;
  std::system(("rm -rf '" + d + "'").c_str());
}

// Rerunning the sweep reruns the damaged trial (and only it), keeping the damaged file beside.
TEST_F(SweepTest, RerunRedoesADamagedCompletedTrial) {
  FakeTrainer fake(tmp);
  std::string sweep = tmp + "/s.ini";
  write_text(sweep, "[train]\nsteps = 1\n[sweep]\ngrid.train.seed = 0,1,2\n");
  std::string out = tmp + "/out";
  auto sweep_cmd = std::vector<std::string>{statex_bin(), "sweep", sweep, "--out", out, "--jobs",
                                            "1", "--trainer-cmd", fake.script};
  ASSERT_EQ(run_cmd(sweep_cmd, tmp + "/runner.log"), 0) << read_file(tmp + "/runner.log");
  ASSERT_EQ(fake.runs().size(), 3u);
  const std::string victim = fake.runs()[1];
  ASSERT_TRUE(damage(out + "/trials/" + victim + ".h5"));
  ASSERT_EQ(run_cmd(sweep_cmd, tmp + "/runner2.log"), 0) << read_file(tmp + "/runner2.log");
  ASSERT_EQ(fake.runs().size(), 4u) << "the damaged trial was kept as completed";
  EXPECT_EQ(fake.runs()[3], victim);
  EXPECT_EQ(probe_result(out + "/trials/" + victim + ".h5").state, ResultProbe::State::completed);
  EXPECT_TRUE(file_exists(out + "/trials/" + victim + ".h5.damaged"));
  EXPECT_NE(read_file(tmp + "/runner2.log").find("damaged"), std::string::npos);
  for (const std::string& line : lines_of(out + "/index.csv")) {
    if (line.rfind("trial_id", 0) == 0) continue;
    EXPECT_NE(line.find(",completed,"), std::string::npos) << line;
  }
}

TEST_F(SweepTest, LocalRunIsolatesFailuresAndPicksBestLr) {
  FakeTrainer fake(tmp);
  std::string sweep = tmp + "/s.ini";
  write_text(sweep,
             "[train]\nsteps = 1\n[sweep]\n"
             "grid.model.d_model = 32,64\n"
             "grid.train.lr = 0.001, 0.003, 0.01, 0.666, 0.777\n"
             "grid.train.seed = 0,1\n");
  std::string out = tmp + "/out";
  int rc = run_cmd({statex_bin(), "sweep", sweep, "--out", out, "--jobs", "2", "--trainer-cmd", fake.script},
                   tmp + "/runner.log");
  EXPECT_EQ(rc, 1) << read_file(tmp + "/runner.log");  // failures set the exit code
  auto index = read_index(out + "/index.csv");
  ASSERT_EQ(index.size(), 20u) << read_file(out + "/index.csv");
  int completed = 0;
  for (auto& [id, row] : index) {
    EXPECT_EQ(row.at("result_path"), "trials/" + id + ".h5");
    EXPECT_TRUE(file_exists(out + "/trials/" + id + ".ini"));
    EXPECT_TRUE(file_exists(out + "/trials/" + id + ".log"));
    const std::string& lr = row.at("train.lr");
    if (lr == "0.666") {
      EXPECT_EQ(row.at("status"), "failed");
      EXPECT_EQ(row.at("error"), "non-finite loss at step 3");
    } else if (lr == "0.777") {
      EXPECT_EQ(row.at("status"), "failed");
      EXPECT_EQ(row.at("error"), "exit code 2: boom: trainer crashed");
    } else {
      EXPECT_EQ(row.at("status"), "completed") << id;
      ++completed;
    }
  }
  EXPECT_EQ(completed, 12);
  EXPECT_EQ(read_file(out + "/sweep.ini"), read_file(sweep));
  // Threads per job default: max(1, cores / jobs), passed to the trainer.
  auto log = lines_of(out + "/trials/" + index.begin()->first + ".log");
  ASSERT_FALSE(log.empty());
  unsigned hw = std::thread::hardware_concurrency();
  EXPECT_NE(log[0].find("threads=" + std::to_string(std::max(1u, hw / 2))), std::string::npos) << log[0];

  // best_lr.csv: one row per d_model; 0.003 has the best accuracy (0.9 on both seeds). No
  // validation split: selected on the test numbers, and says so. The failed lr 0.666 scores 0.
  auto best = lines_of(out + "/best_lr.csv");
  ASSERT_EQ(best.size(), 3u) << read_file(out + "/best_lr.csv");
  EXPECT_EQ(best[0], "model.d_model,best_lr,selected_on,best_median_accuracy,best_mean_accuracy,"
                     "seeds_completed,seeds_failed,seeds_total,grid_edge,lr_scores,trial_ids");
  EXPECT_EQ(best[1].rfind("32,0.003,test,0.9,0.9,2,0,2,,", 0), 0u) << best[1];
  EXPECT_NE(best[1].find("0.001:0.4(2);0.003:0.9(2);0.01:0.7(2);0.666:0(2, 2 failed);0.777:nan(0)"),
            std::string::npos)
      << best[1];
  EXPECT_EQ(best[2].rfind("64,0.003,test,0.9,0.9,2,0,2,,", 0), 0u) << best[2];

  // --summarize rewrites it from the directory alone.
  std::remove((out + "/best_lr.csv").c_str());
  EXPECT_EQ(run_cmd({statex_bin(), "sweep", "--summarize", out}, tmp + "/sum.log"), 0) << read_file(tmp + "/sum.log");
  EXPECT_EQ(lines_of(out + "/best_lr.csv"), best);
}

// With a validation split best_lr.csv selects on it: here lr 0.003 has the best TEST accuracy
// (0.9) but the worst validation accuracy (0.3), and 0.01 the best validation accuracy (0.8):
// 0.01 is chosen, on validation, and flagged as the grid's upper edge.
TEST_F(SweepTest, BestLrSelectsOnValidationAndFlagsTheGridEdge) {
  FakeTrainer fake(tmp);
  write_result(tmp + "/acc_0.001.h5", "completed", 0.4f, "", 0.5f);
  write_result(tmp + "/acc_0.003.h5", "completed", 0.9f, "", 0.3f);
  write_result(tmp + "/acc_0.01.h5", "completed", 0.7f, "", 0.8f);
  std::string sweep = tmp + "/s.ini";
  write_text(sweep, "[train]\nsteps = 1\n[sweep]\ngrid.train.lr = 0.001, 0.003, 0.01\n"
                    "grid.train.seed = 0,1,2\n");
  std::string out = tmp + "/out";
  ASSERT_EQ(run_cmd({statex_bin(), "sweep", sweep, "--out", out, "--jobs", "2", "--trainer-cmd",
                     fake.script}, tmp + "/runner.log"), 0) << read_file(tmp + "/runner.log");
  auto best = lines_of(out + "/best_lr.csv");
  ASSERT_EQ(best.size(), 2u) << read_file(out + "/best_lr.csv");
  EXPECT_EQ(best[1].rfind("0.01,validation,0.8,0.8,3,0,3,high,", 0), 0u) << best[1];
  EXPECT_NE(best[1].find("0.001:0.5(3);0.003:0.3(3);0.01:0.8(3)"), std::string::npos) << best[1];
}

TEST_F(SweepTest, ResumeAfterSigkillRedoesOnlyUnfinishedTrials) {
  FakeTrainer fake(tmp);
  std::string sweep = tmp + "/s.ini";
  // 8 trials of ~0.3 s each, one at a time.
  write_text(sweep, "[train]\nsteps = 30\n[sweep]\ngrid.train.seed = 0,1,2,3,4,5,6,7\n");
  std::string out = tmp + "/out";
  pid_t pid = fork();
  if (pid == 0) {
    freopen((tmp + "/runner1.log").c_str(), "w", stderr);
    execl(statex_bin().c_str(), statex_bin().c_str(), "sweep", sweep.c_str(), "--out", out.c_str(), "--jobs", "1",
          "--trainer-cmd", fake.script.c_str(), (char*)nullptr);
    _exit(127);
  }
  // Kill it while trial 3 (or later) is running, after at least 2 have finished.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (fake.runs().size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(fake.runs().size(), 3u);
  kill(pid, SIGKILL);
  int ws = 0;
  waitpid(pid, &ws, 0);
  ASSERT_TRUE(WIFSIGNALED(ws));
  // The in-flight trainer died with the runner: no new runs start, no result appears later.
  auto runs_at_kill = fake.runs();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(fake.runs(), runs_at_kill);

  auto trials = expand(parse_sweep_file(sweep, {}));
  std::set<std::string> finished;
  std::map<std::string, std::string> bytes;
  for (auto& t : trials) {
    auto st = probe_result(out + "/trials/" + t.id + ".h5").state;
    if (st == ResultProbe::State::completed) {
      finished.insert(t.id);
      bytes[t.id] = read_file(out + "/trials/" + t.id + ".h5");
    }
  }
  EXPECT_GE(finished.size(), 2u);
  EXPECT_LT(finished.size(), trials.size());
  // The index from before the kill is a complete, parseable file.
  EXPECT_EQ(read_index(out + "/index.csv").size(), trials.size());

  int rc = run_cmd({statex_bin(), "sweep", sweep, "--out", out, "--jobs", "2", "--trainer-cmd", fake.script},
                   tmp + "/runner2.log");
  ASSERT_EQ(rc, 0) << read_file(tmp + "/runner2.log");
  std::map<std::string, int> count;
  for (auto& id : fake.runs()) count[id]++;
  for (auto& t : trials) {
    EXPECT_EQ(probe_result(out + "/trials/" + t.id + ".h5").state, ResultProbe::State::completed);
    if (finished.count(t.id)) {
      EXPECT_EQ(count[t.id], 1) << "finished trial " << t.id << " was run again";
      EXPECT_EQ(read_file(out + "/trials/" + t.id + ".h5"), bytes[t.id]);
    }
  }
  for (auto& [id, row] : read_index(out + "/index.csv")) EXPECT_EQ(row.at("status"), "completed") << id;
}

TEST_F(SweepTest, CorruptPartialAndMissingResultsAreRerun) {
  FakeTrainer fake(tmp);
  std::string sweep = tmp + "/s.ini";
  write_text(sweep, "[sweep]\ngrid.train.seed = 0,1,2,3,4\n");
  std::string out = tmp + "/out";
  auto cmd = std::vector<std::string>{statex_bin(), "sweep", sweep, "--out", out, "--jobs", "2",
                                      "--trainer-cmd", fake.script};
  ASSERT_EQ(run_cmd(cmd, tmp + "/r1.log"), 0) << read_file(tmp + "/r1.log");
  auto trials = expand(parse_sweep_file(sweep, {}));
  ASSERT_EQ(fake.runs().size(), 5u);
  std::string r0 = out + "/trials/" + trials[0].id + ".h5";
  std::string good = read_file(r0);
  write_text(r0, good.substr(0, good.size() / 3));                                // truncated
  write_text(out + "/trials/" + trials[1].id + ".h5", "garbage");                 // not HDF5
  std::remove((out + "/trials/" + trials[2].id + ".h5").c_str());                 // missing
  write_text(out + "/trials/" + trials[3].id + ".h5", read_file(tmp + "/running.h5"));  // partial
  ASSERT_EQ(run_cmd(cmd, tmp + "/r2.log"), 0) << read_file(tmp + "/r2.log");
  std::map<std::string, int> count;
  for (auto& id : fake.runs()) count[id]++;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(count[trials[i].id], 2) << i;
  EXPECT_EQ(count[trials[4].id], 1);
  for (auto& t : trials) EXPECT_EQ(probe_result(out + "/trials/" + t.id + ".h5").state, ResultProbe::State::completed);
}

TEST_F(SweepTest, BadSweepFileFailsBeforeRunning) {
  std::string sweep = tmp + "/bad.ini";
  write_text(sweep, "[model]\nd_model = 64\n[sweep]\nzip.a.model.heads = 1,2\nzip.a.model.d_state = 8\n");
  int rc = run_cmd({statex_bin(), "sweep", sweep, "--out", tmp + "/out"}, tmp + "/log");
  EXPECT_EQ(rc, 2);
  EXPECT_NE(read_file(tmp + "/log").find(sweep + ":5: zip group 'a'"), std::string::npos) << read_file(tmp + "/log");
  EXPECT_FALSE(file_exists(tmp + "/out/index.csv"));
}

// One real run through `statex train`, once the trainer exists.
TEST_F(SweepTest, RealTrainerEndToEnd) {
  if (run_cmd({statex_bin(), "train", "--help"}, tmp + "/help.log") != 0)
    GTEST_SKIP() << "statex train is not implemented yet";
  std::string sweep = tmp + "/s.ini";
  write_text(sweep,
             "[model]\nd_model = 16\nn_layers = 1\nheads = 1\nvocab_size = 32\n"
             "[mqar]\ntrain = 16:2:64\ntest = 16:2:16\n"
             "[train]\nsteps = 3\nbatch_size = 4\nwarmup_steps = 1\neval_every = 3\n"
             "[sweep]\ngrid.train.lr = 1e-3,3e-3\n");
  std::string out = tmp + "/out";
  int rc = run_cmd({statex_bin(), "sweep", sweep, "--out", out, "--jobs", "2"}, tmp + "/run.log");
  auto index = read_index(out + "/index.csv");
  ASSERT_EQ(rc, 0) << read_file(tmp + "/run.log") << read_file(out + "/index.csv");
  ASSERT_EQ(index.size(), 2u);
  for (auto& [id, row] : index) {
    EXPECT_EQ(row.at("status"), "completed");
    auto rec = read_results(out + "/" + row.at("result_path"));
    EXPECT_EQ(rec.status, "completed");
    EXPECT_EQ(rec.config.at("train.lr"), row.at("train.lr") == "1e-3" ? "0.001" : "0.003");
  }
  EXPECT_EQ(lines_of(out + "/best_lr.csv").size(), 2u);
}

// The Slurm backend against a real local Slurm (tests/slurm/start.sh; .ci/run exports
// STATEX_SLURM_CONF). One job array per submission; resume submits only unfinished trials.
TEST_F(SweepTest, SlurmJobArrayEndToEnd) {
  const char* conf = std::getenv("STATEX_SLURM_CONF");
  if (!conf || !*conf) GTEST_SKIP() << "STATEX_SLURM_CONF not set (tests/slurm/start.sh starts a local Slurm)";
  setenv("SLURM_CONF", conf, 1);
  FakeTrainer fake(tmp);
  std::string sweep = tmp + "/s.ini";
  write_text(sweep, "[train]\nsteps = 1\n[sweep]\nname = slurmtest\ngrid.train.lr = 0.001,0.003,0.666\ngrid.train.seed = 0,1\n");
  std::string out = tmp + "/out";
  std::vector<std::string> base = {statex_bin(), "sweep", sweep, "--out", out, "--backend", "slurm",
                                   "--slurm-cpus", "1", "--slurm-time", "00:05:00", "--slurm-throttle", "2",
                                   "--trainer-cmd", fake.script, "--poll-seconds", "0.5"};
  auto with = [&](std::vector<std::string> extra) {
    auto v = base;
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  int rc = run_cmd(with({"--wait"}), tmp + "/r1.log");
  EXPECT_EQ(rc, 1) << read_file(tmp + "/r1.log");  // the two lr=0.666 trials fail
  auto trials = expand(parse_sweep_file(sweep, {}));
  auto index = read_index(out + "/index.csv");
  ASSERT_EQ(index.size(), 6u) << read_file(tmp + "/r1.log");
  for (auto& [id, row] : index) {
    if (row.at("train.lr") == "0.666") {
      EXPECT_EQ(row.at("status"), "failed");
      EXPECT_EQ(row.at("error"), "non-finite loss at step 3");
    } else {
      EXPECT_EQ(row.at("status"), "completed") << id << " " << read_file(out + "/trials/" + id + ".log");
    }
    // --slurm-cpus is the trainer's thread count.
    EXPECT_NE(read_file(out + "/trials/" + id + ".log").find("threads=1"), std::string::npos);
  }
  std::string script = read_file(out + "/slurm/array.sbatch");
  EXPECT_NE(script.find("#SBATCH --cpus-per-task=1\n"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --time=00:05:00\n"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --job-name=statex-slurmtest\n"), std::string::npos) << script;
  auto jobs = lines_of(out + "/slurm/jobs.tsv");
  ASSERT_EQ(jobs.size(), 1u);  // ONE array for all six trials
  EXPECT_EQ(lines_of(out + "/slurm/list-1.list").size(), 6u);
  std::string job = jobs[0].substr(0, jobs[0].find('\t'));
  EXPECT_TRUE(file_exists(out + "/slurm/" + job + "_0.out"));
  EXPECT_FALSE(lines_of(out + "/best_lr.csv").empty());

  // Resume: lose one completed result; submit without waiting, then --collect until done.
  std::string lost;
  for (auto& t : trials)
    if (t.config.at("train.lr") == "0.003" && lost.empty()) lost = t.id;
  std::remove((out + "/trials/" + lost + ".h5").c_str());
  run_cmd(base, tmp + "/r2.log");
  jobs = lines_of(out + "/slurm/jobs.tsv");
  ASSERT_EQ(jobs.size(), 2u) << read_file(tmp + "/r2.log");
  std::set<std::string> resubmitted;
  for (auto& id : lines_of(out + "/slurm/list-2.list")) resubmitted.insert(id);
  std::set<std::string> expected = {lost};
  for (auto& t : trials)
    if (t.config.at("train.lr") == "0.666") expected.insert(t.id);
  EXPECT_EQ(resubmitted, expected);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool settled = false;
  while (!settled && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    run_cmd(with({"--collect"}), tmp + "/c.log");
    settled = true;
    for (auto& [id, row] : read_index(out + "/index.csv")) settled &= row.at("status") != "running";
  }
  ASSERT_TRUE(settled) << read_file(out + "/index.csv");
  EXPECT_EQ(read_index(out + "/index.csv")[lost].at("status"), "completed");
  std::map<std::string, int> count;
  for (auto& id : fake.runs()) count[id]++;
  for (auto& t : trials) EXPECT_EQ(count[t.id], expected.count(t.id) ? 2 : 1) << t.id;
}

// A trial that receives SIGTERM mid-run (as Slurm sends at the time limit or on preemption) is
// requeued by its batch script, resumes from the checkpoint the trainer wrote, and completes
// with the same curve as an uninterrupted run of the same trial (real local Slurm, real trainer).
TEST_F(SweepTest, SlurmSigtermRequeuesAndResumesExactly) {
  const char* conf = std::getenv("STATEX_SLURM_CONF");
  if (!conf || !*conf) GTEST_SKIP() << "STATEX_SLURM_CONF not set (tests/slurm/start.sh starts a local Slurm)";
  setenv("SLURM_CONF", conf, 1);
  std::string sweep = tmp + "/s.ini";
  write_text(sweep,
             "[model]\nd_model = 16\nvocab_size = 37\ngate_low_rank = 4\n"
             "[mqar]\ntrain = 16:2:3000\ntest = 16:2:8\n"
             "[train]\nsteps = 1500\nbatch_size = 8\neval_every = 100\nwarmup_steps = 10\n"
             "[sweep]\nname = requeue\ngrid.train.seed = 3\n");
  std::string out = tmp + "/out";
  ASSERT_EQ(run_cmd({statex_bin(), "sweep", sweep, "--out", out, "--backend", "slurm",
                     "--slurm-cpus", "1"}, tmp + "/submit.log"), 0)
      << read_file(tmp + "/submit.log");
  auto trials = expand(parse_sweep_file(sweep, {}));
  ASSERT_EQ(trials.size(), 1u);
  const std::string id = trials[0].id, result = out + "/trials/" + id + ".h5";
  auto jobs = lines_of(out + "/slurm/jobs.tsv");
  ASSERT_EQ(jobs.size(), 1u);
  const std::string task = jobs[0].substr(0, jobs[0].find('\t')) + "_0";

  // Wait until the trainer has written results mid-run, then send SIGTERM to the batch script.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int64_t seen = 0;
  while (std::chrono::steady_clock::now() < deadline && seen == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    try {
      RunRecord r = read_results(result);
      if (r.status == "running") seen = r.steps_done;
    } catch (const std::exception&) {
    }
  }
  ASSERT_GT(seen, 0) << "the trial never ran: " << read_file(out + "/trials/" + id + ".log");
  ASSERT_EQ(run_cmd({"/usr/bin/env", "scancel", "--batch", "--signal=TERM", task}, tmp + "/scancel.log"), 0)
      << read_file(tmp + "/scancel.log");

  // The task is requeued and completes; --collect shows it completed.
  bool done = false;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    run_cmd({statex_bin(), "sweep", sweep, "--out", out, "--collect"}, tmp + "/c.log");
    auto index = read_index(out + "/index.csv");
    done = index[id].at("status") == "completed";
  }
  const std::string log = read_file(out + "/trials/" + id + ".log");
  ASSERT_TRUE(done) << read_file(out + "/index.csv") << log;
  RunRecord got = read_results(result);
  EXPECT_EQ(got.status, "completed");
  EXPECT_NE(got.resume_log.find("resumed at step"), std::string::npos) << "not requeued: " << log;
  EXPECT_NE(log.find("interrupted by SIGTERM at step"), std::string::npos) << log;

  // Reference: the same trial uninterrupted, with the same thread count.
  ASSERT_EQ(run_cmd({statex_bin(), "train", "--config", out + "/trials/" + id + ".ini", "--out",
                     tmp + "/ref.h5", "--train.threads", "1", "--quiet"}, tmp + "/ref.log"), 0)
      << read_file(tmp + "/ref.log");
  RunRecord ref = read_results(tmp + "/ref.h5");
  ASSERT_EQ(got.curve.size(), ref.curve.size());
  for (size_t i = 0; i < ref.curve.size(); ++i) {
    ASSERT_EQ(got.curve[i].step, int64_t(i + 1));
    ASSERT_EQ(got.curve[i].loss, ref.curve[i].loss) << "step " << i + 1;
  }
  ASSERT_EQ(got.evals.size(), ref.evals.size());
  EXPECT_EQ(got.evals.back().accuracy, ref.evals.back().accuracy);
  EXPECT_EQ(got.tokens_seen, ref.tokens_seen);
}

// Every shipped sweep file parses against the real option list and expands.
TEST(SweepSpec, ShippedExperimentFilesAreValid) {
  // STATEX_SOURCE_DIR, else the source tree this file was compiled from.
  const char* env = std::getenv("STATEX_SOURCE_DIR");
  std::string src = env ? env : std::string(__FILE__).substr(0, std::string(__FILE__).rfind("/tests/"));
  for (const char* sub : {"sweeps", "canonical", "lr_window"}) {
    std::string dir = src + "/experiments/" + sub;
    std::string list = dir + "/.files_for_test";
    ASSERT_EQ(std::system(("ls '" + dir + "'/*.ini > '" + list + "'").c_str()), 0) << dir;
    auto files = lines_of(list);
    std::remove(list.c_str());
    EXPECT_GE(files.size(), 4u) << dir;
    for (auto& f : files) {
      SCOPED_TRACE(f);
      auto spec = parse_sweep_file(f, experiment_option_names());
      EXPECT_GT(expand(spec).size(), 1u);
    }
  }
}
