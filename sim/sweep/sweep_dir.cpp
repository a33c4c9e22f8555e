#include "sim/sweep/sweep_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <fstream>
#include <sstream>

namespace statex::sweep {

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

void make_dirs(const std::string& path) {
  std::string cur;
  std::istringstream in(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "/";
  while (std::getline(in, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      throw ConfigError("cannot create directory '" + cur + "': " + std::strerror(errno));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file_atomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write '" + tmp + "': " + std::strerror(errno));
  // A full disk may show at write, fsync or close: each is checked, and the partial tmp file is
  // removed, so `path` keeps its older content.
  auto fail = [&](const char* what) {
    const int err = errno;
    if (fd >= 0) close(fd);
    unlink(tmp.c_str());
    throw std::runtime_error(std::string("cannot ") + what + " '" + tmp + "': " + std::strerror(err));
  };
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) fail("sync");
  const int closed = close(fd);
  fd = -1;
  if (closed != 0) fail("close");
  if (rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
}

std::string last_line(const std::string& path) {
  std::string text = read_file(path);
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line)) {
    auto e = line.find_last_not_of(" \t\r");
    if (e != std::string::npos) last = line.substr(0, e + 1);
  }
  if (last.size() > 200) last = last.substr(0, 197) + "...";
  return last;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c == '\n' || c == '\r' ? ' ' : c;
  }
  return out + "\"";
}

TrialStatus status_from_probe(const ResultProbe& p) {
  TrialStatus s;
  using S = ResultProbe::State;
  if (p.state == S::completed) s.status = "completed";
  if (p.state == S::failed) {
    s.status = "failed";
    s.error = p.failure_reason.empty() ? "trainer reported failure" : p.failure_reason;
  }
  return s;
}

SweepDir::SweepDir(const std::string& out) {
  make_dirs(out);
  char buf[PATH_MAX];
  if (!realpath(out.c_str(), buf)) throw ConfigError("cannot resolve '" + out + "'");
  root_ = buf;
  make_dirs(root_ + "/trials");
}

namespace {
// Ids of the trials an earlier sweep prepared in `trials_dir` (<id>.ini files).
std::vector<std::string> existing_trial_ids(const std::string& trials_dir) {
  std::vector<std::string> ids;
  DIR* d = opendir(trials_dir.c_str());
  if (!d) return ids;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 4 && n.compare(n.size() - 4, 4, ".ini") == 0) ids.push_back(n.substr(0, n.size() - 4));
  }
  closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}
}  // namespace

void SweepDir::prepare(const std::string& sweep_file, const std::vector<Trial>& trials) const {
  std::string text = read_file(sweep_file);
  // A sweep directory only grows: a sweep file that would drop trials an earlier sweep file put
  // here (and so their rows in index.csv) is refused (docs/sweeps.md, "Resuming").
  std::set<std::string> now;
  for (auto& t : trials) now.insert(t.id);
  std::vector<std::string> dropped;
  for (const std::string& id : existing_trial_ids(root_ + "/trials"))
    if (!now.count(id)) dropped.push_back(id);
  if (!dropped.empty())
    throw ConfigError("--out '" + root_ + "' holds " + std::to_string(dropped.size()) +
                      " trial(s) of another sweep file (e.g. " + dropped[0] + ") that '" +
                      sweep_file + "' does not contain; its index.csv would lose them. Use a new " +
                      "--out directory (or a sweep file that contains every earlier trial)");
  if (read_file(root_ + "/sweep.ini") != text) write_file_atomically(root_ + "/sweep.ini", text);
  for (auto& t : trials) {
    std::string ini_text = "# statex sweep trial " + t.id + "\n" + to_ini(t.config);
    if (read_file(ini(t.id)) != ini_text) write_file_atomically(ini(t.id), ini_text);
  }
}

void SweepDir::lock() const {
  std::string path = root_ + "/.lock";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0)
    throw ConfigError("another statex sweep is running on '" + root_ + "' (lock " + path + ")");
  // fd intentionally left open: the lock lives as long as the process.
}

namespace {

std::string index_text(const std::vector<Trial>& trials, const std::vector<std::string>& swept,
                       const std::vector<TrialStatus>& status, size_t max_error) {
  std::string out = "trial_id,status,result_path,error";
  for (auto& o : swept) out += "," + csv_field(o);
  out += "\n";
  for (size_t i = 0; i < trials.size(); ++i) {
    std::string error = status[i].error;
    if (error.size() > max_error) error = error.substr(0, max_error);
    out += trials[i].id + "," + status[i].status + "," + SweepDir::result_relpath(trials[i].id) +
           "," + csv_field(error);
    for (auto& sw : trials[i].swept) out += "," + csv_field(sw.second);
    out += "\n";
  }
  return out;
}

// Overwrites `path` with `content` in place (no new file, no new blocks when it is not longer).
std::string overwrite_in_place(const std::string& path, const std::string& content) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  size_t done = 0;
  std::string why;
  while (done < content.size() && why.empty()) {
    ssize_t n = pwrite(fd, content.data() + done, content.size() - done, off_t(done));
    if (n < 0 && errno != EINTR) why = std::strerror(errno);
    if (n > 0) done += size_t(n);
  }
  if (why.empty() && ftruncate(fd, off_t(content.size())) != 0) why = std::strerror(errno);
  if (why.empty() && fsync(fd) != 0) why = std::strerror(errno);
  close(fd);
  return why;
}

}  // namespace

void SweepDir::write_index(const std::vector<Trial>& trials, const std::vector<std::string>& swept,
                           const std::vector<TrialStatus>& status) const {
  write_file_atomically(root_ + "/index.csv", index_text(trials, swept, status, std::string::npos));
}

std::string SweepDir::write_index_last_resort(const std::vector<Trial>& trials,
                                              const std::vector<std::string>& swept,
                                              const std::vector<TrialStatus>& status) const {
  const std::string path = root_ + "/index.csv";
  const std::string full = index_text(trials, swept, status, std::string::npos);
  try {
    write_file_atomically(path, full);
    return "";
  } catch (const std::exception&) {
  }
  struct stat st {};
  const size_t old_size = stat(path.c_str(), &st) == 0 ? size_t(st.st_size) : 0;
  std::string text = full;
  for (size_t max_error : {size_t(80), size_t(20), size_t(0)})
    if (text.size() > old_size) text = index_text(trials, swept, status, max_error);
  return overwrite_in_place(path, text);
}

}  // namespace statex::sweep
