#include "sim/sweep/result_probe.h"

#include <hdf5.h>
#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "sim/io/h5.h"

namespace statex::sweep {
namespace {

// Reads a scalar string attribute (variable- or fixed-length). False if absent or not a string.
bool read_string_attr(hid_t obj, const char* name, std::string& out) {
  if (H5Aexists(obj, name) <= 0) return false;
  hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
  if (attr < 0) return false;
  hid_t ftype = H5Aget_type(attr);
  bool ok = false;
  if (H5Tget_class(ftype) == H5T_STRING) {
    if (H5Tis_variable_str(ftype) > 0) {
      hid_t mtype = H5Tcopy(H5T_C_S1);
      H5Tset_size(mtype, H5T_VARIABLE);
      H5Tset_cset(mtype, H5Tget_cset(ftype));
      char* s = nullptr;
      if (H5Aread(attr, mtype, &s) >= 0 && s) {
        out = s;
        ok = true;
        hid_t space = H5Aget_space(attr);
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, &s);
        H5Sclose(space);
      }
      H5Tclose(mtype);
    } else {
      size_t n = H5Tget_size(ftype);
      std::vector<char> buf(n + 1, 0);
      hid_t mtype = H5Tcopy(ftype);
      if (H5Aread(attr, mtype, buf.data()) >= 0) {
        out.assign(buf.data());
        ok = true;
      }
      H5Tclose(mtype);
    }
  }
  H5Tclose(ftype);
  H5Aclose(attr);
  return ok;
}

bool read_double_attr(hid_t obj, const char* name, double& out) {
  if (H5Aexists(obj, name) <= 0) return false;
  hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
  if (attr < 0) return false;
  bool ok = H5Aread(attr, H5T_NATIVE_DOUBLE, &out) >= 0;
  H5Aclose(attr);
  return ok;
}

double max_eval_accuracy(hid_t file) {
  if (H5Lexists(file, "eval", H5P_DEFAULT) <= 0 || H5Lexists(file, "eval/accuracy", H5P_DEFAULT) <= 0)
    return -1;
  hid_t ds = H5Dopen2(file, "eval/accuracy", H5P_DEFAULT);
  if (ds < 0) return -1;
  hid_t space = H5Dget_space(ds);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  double best = -1;
  if (n > 0) {
    std::vector<double> v(static_cast<size_t>(n));
    if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0)
      for (double x : v)
        if (x == x) best = std::max(best, x);
  }
  H5Sclose(space);
  H5Dclose(ds);
  return best;
}

}  // namespace

const char* state_name(ResultProbe::State s) {
  switch (s) {
    case ResultProbe::State::missing: return "missing";
    case ResultProbe::State::unreadable: return "unreadable";
    case ResultProbe::State::running: return "running";
    case ResultProbe::State::completed: return "completed";
    case ResultProbe::State::failed: return "failed";
  }
  return "?";
}

ResultProbe probe_result(const std::string& path) {
  ResultProbe p;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return p;  // missing
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // a corrupt file is expected here, not an error
  p.state = ResultProbe::State::unreadable;
  // The integrity check of every statex reader (file CRC-32, per-object digests: h5.h): a
  // damaged file is never taken for a finished trial (the probe used to skip it and keep a
  // corrupt completed trial as completed).
  h5::Handle handle;
  try {
    handle = h5::open_file(path);
  } catch (const std::exception& e) {
    p.detail = e.what();
    p.damaged = true;
    return p;
  }
  const hid_t file = handle;
  std::string format, status;
  double version = 0;
  if (!read_string_attr(file, "format", format) || format != "statex-sim results") {
    p.detail = "not a statex-sim results file";
  } else if (!read_double_attr(file, "format_version", version) || version != 1) {
    p.detail = "unsupported format_version";
  } else if (!read_string_attr(file, "status", status)) {
    p.detail = "no status attribute";
  } else if (status == "completed" || status == "failed" || status == "running" ||
             status == "interrupted") {  // interrupted (SIGTERM): unfinished, resumable
    p.state = status == "completed" ? ResultProbe::State::completed
              : status == "failed"  ? ResultProbe::State::failed
                                    : ResultProbe::State::running;
    read_string_attr(file, "failure_reason", p.failure_reason);
    if (!read_double_attr(file, "best_accuracy", p.best_accuracy)) p.best_accuracy = max_eval_accuracy(file);
    if (H5Lexists(file, "valid", H5P_DEFAULT) > 0) {
      hid_t valid = H5Gopen2(file, "valid", H5P_DEFAULT);
      if (valid >= 0) {
        p.has_valid = true;
        if (!read_double_attr(valid, "best_accuracy", p.best_valid_accuracy) ||
            p.best_valid_accuracy != p.best_valid_accuracy)  // NaN: no validation eval yet
          p.best_valid_accuracy = -1;
        H5Gclose(valid);
      }
    }
  } else {
    p.detail = "unknown status '" + status + "'";
  }
  return p;
}

}  // namespace statex::sweep
