// Writes the verification table to HDF5 (C API): parallel 1-D datasets under /verify, one
// entry per case; strings are variable-length UTF-8 (docs/results_format.md conventions).
#include <hdf5.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "build_info.h"
#include "sim/verify/verify.h"

namespace statex::verify {

namespace {

hid_t vlen_str_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void check(herr_t rc, const std::string& what) {
  if (rc < 0) throw std::runtime_error("verify: HDF5 error writing " + what);
}

void write_strings(hid_t group, const char* name, const std::vector<std::string>& v) {
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  hsize_t n = v.size();
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t type = vlen_str_type();
  hid_t ds = H5Dcreate2(group, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (ds < 0) throw std::runtime_error(std::string("verify: HDF5 cannot create ") + name);
  if (n) check(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), name);
  H5Dclose(ds);
  H5Tclose(type);
  H5Sclose(space);
}

void set_str_attr(hid_t obj, const char* name, const std::string& value) {
  hid_t type = vlen_str_type();
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  const char* p = value.c_str();
  check(H5Awrite(a, type, &p), name);
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
}

template <class T>
void write_numbers(hid_t group, const char* name, hid_t mem_type, hid_t file_type,
                   const std::vector<T>& v, const char* unit) {
  hsize_t n = v.size();
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t ds = H5Dcreate2(group, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (ds < 0) throw std::runtime_error(std::string("verify: HDF5 cannot create ") + name);
  if (n) check(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), name);
  if (unit) set_str_attr(ds, "unit", unit);
  H5Dclose(ds);
  H5Sclose(space);
}

template <class T>
void set_num_attr(hid_t obj, const char* name, hid_t mem_type, hid_t file_type, T value) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  check(H5Awrite(a, mem_type, &value), name);
  H5Aclose(a);
  H5Sclose(space);
}

}  // namespace

void write_hdf5(const std::string& path, const std::vector<Row>& rows, const Peaks& peaks) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) throw std::runtime_error("verify: cannot create HDF5 file '" + path + "'");
  int n_fail = 0;
  for (const auto& r : rows) n_fail += r.pass ? 0 : 1;
  try {
    set_str_attr(file, "format", "statex-sim verify");
    set_num_attr<int>(file, "format_version", H5T_NATIVE_INT, H5T_STD_I32LE, 1);
    set_str_attr(file, "device", peaks.device);
    set_str_attr(file, "git_commit", STATEX_GIT_COMMIT);
    set_num_attr<int>(file, "n_cases", H5T_NATIVE_INT, H5T_STD_I32LE, int(rows.size()));
    set_num_attr<int>(file, "n_failed", H5T_NATIVE_INT, H5T_STD_I32LE, n_fail);
    set_num_attr<int>(file, "all_pass", H5T_NATIVE_INT, H5T_STD_I32LE, n_fail == 0 ? 1 : 0);
    set_num_attr<double>(file, "nominal_fp32_tflops", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE,
                         peaks.fp32_tflops);
    set_num_attr<double>(file, "nominal_dram_gbps", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE,
                         peaks.dram_gbps);
    set_num_attr<double>(file, "measured_fp32_tflops", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE,
                         peaks.measured_fp32_tflops);
    set_num_attr<double>(file, "measured_dram_gbps", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE,
                         peaks.measured_dram_gbps);
    hid_t g = H5Gcreate2(file, "verify", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) throw std::runtime_error("verify: HDF5 cannot create /verify");
    std::vector<std::string> op, group, shape, worst, why, result, error;
    std::vector<double> max_abs, rel_rms, tol, cpu_ms, gpu_ms, flops, bytes;
    std::vector<signed char> pass;
    for (const auto& r : rows) {
      op.push_back(r.op);
      group.push_back(r.group);
      shape.push_back(r.shape);
      worst.push_back(r.worst_output);
      why.push_back(r.tol_why);
      result.push_back(r.pass ? "PASS" : (r.error.empty() ? "FAIL" : "ERROR"));
      error.push_back(r.error);
      max_abs.push_back(r.max_abs);
      rel_rms.push_back(r.rel_rms);
      tol.push_back(r.tol);
      cpu_ms.push_back(r.cpu_ms);
      gpu_ms.push_back(r.gpu_ms);
      flops.push_back(r.flops);
      bytes.push_back(r.bytes);
      pass.push_back(r.pass ? 1 : 0);
    }
    write_strings(g, "op", op);
    write_strings(g, "group", group);
    write_strings(g, "shape", shape);
    write_strings(g, "worst_output", worst);
    write_strings(g, "tolerance_reason", why);
    write_strings(g, "result", result);
    write_strings(g, "error", error);
    write_numbers(g, "max_abs_err", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, max_abs, nullptr);
    write_numbers(g, "rel_rms_err", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, rel_rms, nullptr);
    write_numbers(g, "tolerance", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, tol, nullptr);
    write_numbers(g, "pass", H5T_NATIVE_SCHAR, H5T_STD_I8LE, pass, nullptr);
    write_numbers(g, "cpu_ms", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, cpu_ms, "ms");
    write_numbers(g, "gpu_ms", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, gpu_ms, "ms");
    write_numbers(g, "flops", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, flops, "flop");
    write_numbers(g, "bytes", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, bytes, "bytes");
    H5Gclose(g);
  } catch (...) {
    H5Fclose(file);
    throw;
  }
  if (H5Fclose(file) < 0) throw std::runtime_error("verify: HDF5 error closing '" + path + "'");
}

}  // namespace statex::verify
