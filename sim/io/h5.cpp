// HDF5 RAII layer: see h5.h. Every H5 call is checked; failures throw h5::Error with context.
#include "sim/io/h5.h"

#include "sim/core/memory_budget.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace statex::h5 {
namespace {

// ---- error handling ----
herr_t collect_desc(unsigned, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (err && err->desc) out->push_back(err->desc);
  return 0;
}

bool dataset_has_fletcher32(hid_t d);  // below, with the dataset readers
void check_file_crc(const std::string& path);  // below, with the writers

[[noreturn]] void fail(const std::string& what) {
  std::string reason = hdf5_reason();
  H5Eclear2(H5E_DEFAULT);
  throw Error(reason.empty() ? what : what + " (HDF5: " + reason + ")");
}

hid_t check_id(hid_t id, const std::string& what) {
  if (id < 0) fail(what);
  return id;
}

void check(herr_t status, const std::string& what) {
  if (status < 0) fail(what);
}

// Path of an object inside its file ("/model"), for messages.
std::string obj_name(hid_t obj) {
  char buf[512];
  ssize_t n = H5Iget_name(obj, buf, sizeof buf);
  return n > 0 ? std::string(buf) : std::string("?");
}

std::string where(hid_t obj, const std::string& name) {
  std::string base = obj_name(obj);
  return base == "/" ? "/" + name : base + "/" + name;
}

// ---- types ----
template <class T> hid_t mem_type();
template <> hid_t mem_type<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t mem_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t mem_type<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t mem_type<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t mem_type<uint64_t>() { return H5T_NATIVE_UINT64; }

// Fixed little-endian file types so files are identical across hosts.
template <class T> hid_t file_type();
template <> hid_t file_type<float>() { return H5T_IEEE_F32LE; }
template <> hid_t file_type<double>() { return H5T_IEEE_F64LE; }
template <> hid_t file_type<int32_t>() { return H5T_STD_I32LE; }
template <> hid_t file_type<int64_t>() { return H5T_STD_I64LE; }
template <> hid_t file_type<uint64_t>() { return H5T_STD_U64LE; }

Handle vlen_utf8_type() {
  Handle t(check_id(H5Tcopy(H5T_C_S1), "cannot create string type"), H5Tclose);
  check(H5Tset_size(t, H5T_VARIABLE), "cannot size string type");
  check(H5Tset_cset(t, H5T_CSET_UTF8), "cannot set string charset");
  return t;
}

Handle space_for(const std::vector<int64_t>& shape) {
  if (shape.empty()) return Handle(check_id(H5Screate(H5S_SCALAR), "cannot create dataspace"), H5Sclose);
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  return Handle(check_id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                         "cannot create dataspace " + shape_str(shape)),
                H5Sclose);
}

std::vector<int64_t> space_shape(hid_t space) {
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) fail("cannot read dataspace rank");
  std::vector<hsize_t> dims(rank);
  if (rank > 0) check(H5Sget_simple_extent_dims(space, dims.data(), nullptr), "cannot read dims");
  return std::vector<int64_t>(dims.begin(), dims.end());
}

// Replaces an existing attribute so writers can overwrite.
Handle new_attr(hid_t obj, const std::string& name, hid_t type, hid_t space) {
  if (H5Aexists(obj, name.c_str()) > 0)
    check(H5Adelete(obj, name.c_str()), "cannot replace attribute '" + name + "'");
  return Handle(check_id(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                         "cannot create attribute '" + name + "' on " + obj_name(obj)),
                H5Aclose);
}

Handle open_attr(hid_t obj, const std::string& name) {
  if (H5Aexists(obj, name.c_str()) <= 0)
    throw Error("missing attribute '" + name + "' on " + obj_name(obj));
  return Handle(check_id(H5Aopen(obj, name.c_str(), H5P_DEFAULT),
                         "cannot open attribute '" + name + "'"),
                H5Aclose);
}

// Opens a numeric attribute and returns (attr, element count); rejects strings etc.
Handle open_numeric_attr(hid_t obj, const std::string& name, int64_t* count) {
  Handle a = open_attr(obj, name);
  Handle t(check_id(H5Aget_type(a), "cannot read attribute type"), H5Tclose);
  H5T_class_t cls = H5Tget_class(t);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    throw Error("attribute '" + name + "' on " + obj_name(obj) + " is not a number");
  Handle s(check_id(H5Aget_space(a), "cannot read attribute space"), H5Sclose);
  *count = H5Sget_simple_extent_npoints(s);
  return a;
}

template <class T>
void write_attr_scalar(hid_t obj, const std::string& name, T value) {
  Handle s = space_for({});
  Handle a = new_attr(obj, name, file_type<T>(), s);
  check(H5Awrite(a, mem_type<T>(), &value), "cannot write attribute '" + name + "'");
}

template <class T>
void write_attr_vector(hid_t obj, const std::string& name, const std::vector<T>& values) {
  // An empty list is a zero-length 1-D space (h5py reads it as an empty array).
  Handle s = space_for({static_cast<int64_t>(values.size())});
  Handle a = new_attr(obj, name, file_type<T>(), s);
  if (!values.empty())
    check(H5Awrite(a, mem_type<T>(), values.data()), "cannot write attribute '" + name + "'");
}

template <class T>
T read_attr_scalar(hid_t obj, const std::string& name) {
  int64_t n = 0;
  Handle a = open_numeric_attr(obj, name, &n);
  if (n != 1) throw Error("attribute '" + name + "' on " + obj_name(obj) + " is not a scalar");
  T v{};
  check(H5Aread(a, mem_type<T>(), &v), "cannot read attribute '" + name + "'");
  return v;
}

std::string read_string_from(hid_t attr, const std::string& name, const std::string& owner) {
  Handle ft(check_id(H5Aget_type(attr), "cannot read attribute type"), H5Tclose);
  if (H5Tget_class(ft) != H5T_STRING)
    throw Error("attribute '" + name + "' on " + owner + " is not a string");
  if (H5Tis_variable_str(ft) > 0) {
    Handle mt = vlen_utf8_type();
    char* p = nullptr;
    check(H5Aread(attr, mt, &p), "cannot read attribute '" + name + "'");
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  size_t size = H5Tget_size(ft);  // fixed-length (e.g. written by numpy bytes)
  std::vector<char> buf(size + 1, '\0');
  Handle mt(check_id(H5Tcopy(H5T_C_S1), "cannot copy string type"), H5Tclose);
  check(H5Tset_size(mt, size), "cannot size string type");
  check(H5Aread(attr, mt, buf.data()), "cannot read attribute '" + name + "'");
  return std::string(buf.data());
}

// File access properties: no HDF5 file locking. Writers never touch a file a reader may hold
// (they write path.tmp and rename), and flock fails on some cluster file systems (NFS, Lustre
// without flock) with "unable to lock file" -- the classic HDF5_USE_FILE_LOCKING=FALSE problem.
Handle file_access() {
  Handle fapl(check_id(H5Pcreate(H5P_FILE_ACCESS), "cannot create property list"), H5Pclose);
#if (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7) || H5_VERSION_GE(1, 12, 1)
  check(H5Pset_file_locking(fapl, false, true), "cannot disable file locking");
#endif
  return fapl;
}

std::string dirname_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// "" when `path` looks writable, else the reason.
std::string unwritable_reason(const std::string& path) {
  std::string dir = dirname_of(path);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return "directory '" + dir + "' does not exist";
  if (!S_ISDIR(st.st_mode)) return "'" + dir + "' is not a directory";
  if (access(dir.c_str(), W_OK) != 0) return "directory '" + dir + "' is not writable";
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return "'" + path + "' is a directory";
  return "";
}

herr_t collect_attr(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

}  // namespace

void silence_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::string hdf5_reason() {
  std::vector<std::string> descs;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_desc, &descs);
  return descs.empty() ? std::string() : descs.back();  // innermost = most specific
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = -1;
}

// ---- files ----
Handle create_file(const std::string& path) {
  silence_errors();
  return Handle(check_id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, file_access()),
                         "cannot create '" + path + "'"),
                H5Fclose);
}

Handle open_file(const std::string& path) {
  silence_errors();
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw Error("the file does not exist");
  if (S_ISDIR(st.st_mode)) throw Error("it is a directory, not an HDF5 file");
  if (access(path.c_str(), R_OK) != 0) throw Error("the file is not readable (permissions)");
  htri_t is_h5 = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  if (is_h5 == 0) throw Error("it is not an HDF5 file");
  check_file_crc(path);  // before HDF5 parses any of it
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, file_access());
  if (id < 0) fail("the file is truncated or damaged");
  Handle file(id, H5Fclose);
  try {
    verify_digests(file);
  } catch (const Error&) {
    H5Eclear2(H5E_DEFAULT);
    throw;
  }
  return file;
}

namespace {

// CRC-32 of the bytes of `path` from `offset` to the end; its length in *length.
uint32_t crc_from(int fd, off_t offset, int64_t* length) {
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<unsigned char> buf(1 << 20);
  int64_t total = 0;
  while (true) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), offset + total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) break;
    crc = crc32(crc, buf.data(), static_cast<uInt>(n));
    total += n;
  }
  *length = total;
  return static_cast<uint32_t>(crc);
}

// The file's stored CRC line ("" when it has none: not written by write_atomically).
std::string stored_crc_line(int fd) {
  char head[kUserBlockBytes + 1] = {0};
  ssize_t n = ::pread(fd, head, kUserBlockBytes, 0);
  if (n < static_cast<ssize_t>(std::strlen(kFileCrcMagic)) ||
      std::strncmp(head, kFileCrcMagic, std::strlen(kFileCrcMagic)) != 0)
    return "";
  return std::string(head, strnlen(head, kUserBlockBytes));
}

std::string crc_line(uint32_t crc, int64_t length) {
  char line[96];
  std::snprintf(line, sizeof line, "%s %08x %lld\n", kFileCrcMagic, crc,
                static_cast<long long>(length));
  return line;
}

// The first numeric dataset whose read fails (Fletcher32), as that read's message; "" if none.
// Reads only numeric datasets: HDF5 verifies their metadata and data, so this is safe on a
// damaged file (strings live in the unchecksummed global heap and are never touched here).
std::string first_damaged_tensor(hid_t group, const std::string& path) {
  std::vector<std::string> names;
  try {
    names = child_names(group);
  } catch (const std::exception& e) {
    return e.what();
  }
  for (const std::string& name : names) {
    std::string p = path == "/" ? "/" + name : path + "/" + name;
    hid_t o = H5Oopen(group, name.c_str(), H5P_DEFAULT);
    if (o < 0) {
      H5Eclear2(H5E_DEFAULT);
      return "cannot open '" + p + "'";
    }
    Handle obj(o, H5Oclose);
    std::string found;
    if (H5Iget_type(obj) == H5I_GROUP) {
      found = first_damaged_tensor(obj, p);
    } else if (H5Iget_type(obj) == H5I_DATASET) {
      Handle t(H5Dget_type(obj), H5Tclose);
      Handle sp(H5Dget_space(obj), H5Sclose);
      H5T_class_t cls = t.get() >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
      hssize_t n = sp.get() >= 0 ? H5Sget_simple_extent_npoints(sp) : 0;
      if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && n > 0) {
        std::vector<double> buf(static_cast<size_t>(n));
        if (H5Dread(obj, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) {
          H5Eclear2(H5E_DEFAULT);
          found = "dataset '" + p + "' is damaged" +
                  (dataset_has_fletcher32(obj) ? ": its Fletcher32 checksum does not match its data"
                                               : "");
        }
      }
    }
    if (!found.empty()) return found;
  }
  return "";
}

// Throws Error when the file's user-block CRC does not match its bytes, naming the damaged
// tensor when one is found. Files without the CRC line pass unchecked.
void check_file_crc(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(std::string("cannot open: ") + std::strerror(errno));
  std::string line;
  int64_t length = 0;
  uint32_t crc = 0;
  try {
    line = stored_crc_line(fd);
    if (!line.empty()) crc = crc_from(fd, kUserBlockBytes, &length);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  if (line.empty() || line == crc_line(crc, length)) return;
  std::string where;
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, file_access());
  if (id >= 0) {
    Handle file(id, H5Fclose);
    Handle root(H5Gopen2(file, "/", H5P_DEFAULT), H5Gclose);
    if (root.get() >= 0) where = first_damaged_tensor(root, "/");
  }
  H5Eclear2(H5E_DEFAULT);
  throw Error(where.empty() ? "the file is damaged: its CRC-32 (" + line.substr(0, line.size() - 1) +
                                  ") does not match its bytes (truncated, or damaged outside "
                                  "the tensors: metadata or attributes)"
                            : where + " (the file's CRC-32 does not match either)");
}

void fsync_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot reopen '" + path + "': " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw Error("cannot flush '" + path + "' to disk: " + std::strerror(err));
}

}  // namespace

void write_atomically(const std::string& path, const std::function<void(hid_t file)>& fill) {
  silence_errors();
  const std::string tmp = path + ".tmp";
  std::string reason = unwritable_reason(path);
  if (!reason.empty()) throw Error("cannot write '" + path + "': " + reason);
  try {
    Handle fapl = file_access();
    // The 1.10 format: superblock, object headers and chunk indexes all carry checksums that
    // HDF5 verifies. (The 1.8 format indexes chunks with v1 B-trees, which have none: a flipped
    // chunk key there reads back as zeros without an error.)
    check(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110),
          "cannot set the file format version");
    Handle fcpl(check_id(H5Pcreate(H5P_FILE_CREATE), "cannot create property list"), H5Pclose);
    check(H5Pset_userblock(fcpl, kUserBlockBytes), "cannot reserve the user block");
    Handle file(check_id(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl, fapl),
                         "cannot create '" + tmp + "'"),
                H5Fclose);
    fill(file);
    write_digests(file);
    // Close explicitly (not in the destructor) so a failed final flush is reported. A failed
    // close (a full disk) leaves HDF5 holding the file; main() calls H5dont_atexit so HDF5 does
    // not try to flush it again during library shutdown (that crashed with SIGSEGV).
    check(H5Fclose(file.release()), "cannot close '" + tmp + "'");
    stamp_file_crc(tmp);
    fsync_file(tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw Error("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(errno));
  } catch (const std::exception& e) {
    std::remove(tmp.c_str());
    throw Error("cannot write '" + path + "': " + e.what());
  }
}

void stamp_file_crc(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw Error("cannot reopen '" + path + "': " + std::strerror(errno));
  try {
    int64_t length = 0;
    uint32_t crc = crc_from(fd, kUserBlockBytes, &length);
    std::string line = crc_line(crc, length);
    line.resize(kUserBlockBytes, '\0');
    if (::pwrite(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()))
      throw Error("cannot write the checksum of '" + path + "': " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) throw Error("cannot close '" + path + "': " + std::strerror(errno));
}

void check_writable(const std::string& path) {
  std::string reason = unwritable_reason(path);
  if (!reason.empty()) throw Error(reason);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd >= 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
  } else if (errno != EEXIST) {
    throw Error("cannot create '" + tmp + "': " + std::strerror(errno));
  }
}

// ---- groups and links ----
Handle create_group(hid_t parent, const std::string& name, bool track_order) {
  Handle gcpl(check_id(H5Pcreate(H5P_GROUP_CREATE), "cannot create property list"), H5Pclose);
  if (track_order)
    check(H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
          "cannot track creation order");
  return Handle(check_id(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT),
                         "cannot create group '" + where(parent, name) + "'"),
                H5Gclose);
}

Handle open_group(hid_t parent, const std::string& name) {
  if (!exists(parent, name)) throw Error("missing group '" + where(parent, name) + "'");
  return Handle(check_id(H5Gopen2(parent, name.c_str(), H5P_DEFAULT),
                         "cannot open group '" + where(parent, name) + "'"),
                H5Gclose);
}

bool exists(hid_t parent, const std::string& path) {
  // H5Lexists fails (rather than returning false) when an intermediate link is missing.
  size_t pos = 0;
  while (true) {
    size_t slash = path.find('/', pos);
    std::string prefix = path.substr(0, slash);
    if (prefix.empty()) {  // leading "/" of an absolute path
      if (slash == std::string::npos) return false;
      pos = slash + 1;
      continue;
    }
    htri_t r = H5Lexists(parent, prefix.c_str(), H5P_DEFAULT);
    if (r <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (slash == std::string::npos) return true;
    pos = slash + 1;
  }
}

std::vector<std::string> child_names(hid_t group) {
  std::vector<std::string> names;
  Handle gcpl(check_id(H5Gget_create_plist(group), "cannot read group properties"), H5Pclose);
  unsigned flags = 0;
  check(H5Pget_link_creation_order(gcpl, &flags), "cannot read creation order");
  H5_index_t index = (flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  // Index-based listing: stable across HDF5 1.10 / 1.12 (whose iterate callbacks differ).
  H5G_info_t info;
  check(H5Gget_info(group, &info), "cannot list " + obj_name(group));
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) fail("cannot list " + obj_name(group));
    std::string name(static_cast<size_t>(len) + 1, '\0');
    check(static_cast<herr_t>(H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, name.data(),
                                                 name.size(), H5P_DEFAULT)),
          "cannot list " + obj_name(group));
    name.resize(static_cast<size_t>(len));
    names.push_back(name);
  }
  return names;
}

std::vector<std::string> attr_names(hid_t obj) {
  std::vector<std::string> names;
  check(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attr, &names),
        "cannot list attributes of " + obj_name(obj));
  return names;
}

// ---- attributes ----
void write_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle t = vlen_utf8_type();
  Handle s = space_for({});
  Handle a = new_attr(obj, name, t, s);
  const char* p = value.c_str();
  check(H5Awrite(a, t, &p), "cannot write attribute '" + name + "'");
}
void write_attr(hid_t obj, const std::string& name, const char* value) {
  write_attr(obj, name, std::string(value));
}
void write_attr(hid_t obj, const std::string& name, int32_t v) { write_attr_scalar(obj, name, v); }
void write_attr(hid_t obj, const std::string& name, int64_t v) { write_attr_scalar(obj, name, v); }
void write_attr(hid_t obj, const std::string& name, uint64_t v) { write_attr_scalar(obj, name, v); }
void write_attr(hid_t obj, const std::string& name, float v) { write_attr_scalar(obj, name, v); }
void write_attr(hid_t obj, const std::string& name, double v) { write_attr_scalar(obj, name, v); }
void write_attr(hid_t obj, const std::string& name, const std::vector<int32_t>& v) {
  write_attr_vector(obj, name, v);
}
void write_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& v) {
  write_attr_vector(obj, name, v);
}

bool has_attr(hid_t obj, const std::string& name) {
  htri_t r = H5Aexists(obj, name.c_str());
  if (r < 0) H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

std::string read_attr_str(hid_t obj, const std::string& name) {
  Handle a = open_attr(obj, name);
  return read_string_from(a, name, obj_name(obj));
}
int64_t read_attr_i64(hid_t obj, const std::string& name) {
  return read_attr_scalar<int64_t>(obj, name);
}
uint64_t read_attr_u64(hid_t obj, const std::string& name) {
  return read_attr_scalar<uint64_t>(obj, name);
}
double read_attr_f64(hid_t obj, const std::string& name) {
  return read_attr_scalar<double>(obj, name);
}

std::vector<int64_t> read_attr_i64_vec(hid_t obj, const std::string& name) {
  int64_t n = 0;
  Handle a = open_numeric_attr(obj, name, &n);
  std::vector<int64_t> v(n);
  if (n > 0) check(H5Aread(a, H5T_NATIVE_INT64, v.data()), "cannot read attribute '" + name + "'");
  return v;
}

std::map<std::string, std::string> read_str_attrs(hid_t obj) {
  std::map<std::string, std::string> out;
  for (const std::string& name : attr_names(obj)) {
    Handle a = open_attr(obj, name);
    Handle t(check_id(H5Aget_type(a), "cannot read attribute type"), H5Tclose);
    if (H5Tget_class(t) == H5T_STRING) out[name] = read_string_from(a, name, obj_name(obj));
  }
  return out;
}

// ---- datasets ----
namespace {
// Creation properties of a numeric dataset: chunked + Fletcher32 when it has data to protect
// (scalars and empty datasets cannot be chunked; kDigestDataset covers them). Chunks of at most
// ~4 MiB along the first axis.
Handle dataset_creation(const std::vector<int64_t>& shape, size_t elem_size) {
  Handle dcpl(check_id(H5Pcreate(H5P_DATASET_CREATE), "cannot create property list"), H5Pclose);
  if (shape.empty() || numel(shape) == 0) return dcpl;
  std::vector<hsize_t> chunk(shape.begin(), shape.end());
  const hsize_t row_bytes = static_cast<hsize_t>(numel(shape) / shape[0]) * elem_size;
  chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(chunk[0], (hsize_t{4} << 20) / std::max<hsize_t>(row_bytes, 1)));
  check(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()), "cannot set chunking");
  check(H5Pset_fletcher32(dcpl), "cannot add the Fletcher32 checksum filter");
  return dcpl;
}
}  // namespace

template <class T>
Handle write_dataset(hid_t parent, const std::string& name, const T* data,
                     const std::vector<int64_t>& shape) {
  Handle s = space_for(shape);
  Handle dcpl = dataset_creation(shape, sizeof(T));
  Handle d(check_id(H5Dcreate2(parent, name.c_str(), file_type<T>(), s, H5P_DEFAULT, dcpl,
                               H5P_DEFAULT),
                    "cannot create dataset '" + where(parent, name) + "'"),
           H5Dclose);
  // H5Dwrite rejects a null buffer even for zero elements, so skip empty writes.
  if (numel(shape) > 0)
    check(H5Dwrite(d, mem_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
          "cannot write dataset '" + where(parent, name) + "'");
  return d;
}

void write_str_dataset(hid_t parent, const std::string& name, const std::string& value) {
  Handle t = vlen_utf8_type();
  Handle s = space_for({});
  Handle d(check_id(H5Dcreate2(parent, name.c_str(), t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                    "cannot create dataset '" + where(parent, name) + "'"),
           H5Dclose);
  const char* p = value.c_str();
  check(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p),
        "cannot write dataset '" + where(parent, name) + "'");
}

Handle open_dataset(hid_t parent, const std::string& name) {
  if (!exists(parent, name)) throw Error("missing dataset '" + where(parent, name) + "'");
  {  // H5Oopen + H5Iget_type: portable across HDF5 versions, unlike H5Oget_info*
    Handle obj(check_id(H5Oopen(parent, name.c_str(), H5P_DEFAULT),
                        "cannot open '" + where(parent, name) + "'"),
               H5Oclose);
    if (H5Iget_type(obj) != H5I_DATASET)
      throw Error("'" + where(parent, name) + "' is not a dataset");
  }
  return Handle(check_id(H5Dopen2(parent, name.c_str(), H5P_DEFAULT),
                         "cannot open dataset '" + where(parent, name) + "'"),
                H5Dclose);
}

namespace {
std::vector<int64_t> shape_of(hid_t dset) {
  Handle s(check_id(H5Dget_space(dset), "cannot read dataspace"), H5Sclose);
  return space_shape(s);
}
}  // namespace

std::vector<int64_t> dataset_shape(hid_t parent, const std::string& name) {
  Handle d = open_dataset(parent, name);
  return shape_of(d);
}

H5T_class_t dataset_class(hid_t parent, const std::string& name) {
  Handle d = open_dataset(parent, name);
  Handle t(check_id(H5Dget_type(d), "cannot read dataset type"), H5Tclose);
  return H5Tget_class(t);
}

template <class T>
void read_dataset_into(hid_t parent, const std::string& name, T* out, int64_t n) {
  Handle d = open_dataset(parent, name);
  Handle t(check_id(H5Dget_type(d), "cannot read dataset type"), H5Tclose);
  H5T_class_t cls = H5Tget_class(t);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    throw Error("dataset '" + where(parent, name) + "' is not numeric");
  std::vector<int64_t> shape = shape_of(d);
  if (numel(shape) != n)
    throw Error("dataset '" + where(parent, name) + "' has shape " + shape_str(shape) + " (" +
                std::to_string(numel(shape)) + " values), expected " + std::to_string(n));
  if (n > 0 && H5Dread(d, mem_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
    if (has_checksum(parent, name)) {
      H5Eclear2(H5E_DEFAULT);
      throw Error("dataset '" + where(parent, name) +
                  "' is damaged: its Fletcher32 checksum does not match its data");
    }
    fail("cannot read dataset '" + where(parent, name) + "'");
  }
}

namespace {
bool dataset_has_fletcher32(hid_t d) {
  Handle dcpl(check_id(H5Dget_create_plist(d), "cannot read dataset properties"), H5Pclose);
  int n = H5Pget_nfilters(dcpl);
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    size_t nelem = 0;
    char fname[64];
    unsigned config = 0;
    if (H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &nelem, nullptr, sizeof fname,
                       fname, &config) == H5Z_FILTER_FLETCHER32)
      return true;
  }
  return false;
}
}  // namespace

bool has_checksum(hid_t parent, const std::string& name) {
  Handle d = open_dataset(parent, name);
  return dataset_has_fletcher32(d);
}

// ---- integrity digests ----
namespace {

// Value bytes for the digest: numeric and fixed-size types in their native memory type,
// variable-length strings as their text (each followed by a NUL).
std::string value_bytes(hid_t ftype, hssize_t n, const std::function<herr_t(hid_t, void*)>& read) {
  if (n <= 0) return "";
  if (H5Tget_class(ftype) == H5T_STRING && H5Tis_variable_str(ftype) > 0) {
    Handle mt = vlen_utf8_type();
    std::vector<char*> p(static_cast<size_t>(n), nullptr);
    check(read(mt, p.data()), "cannot read strings");
    std::string out;
    for (char* c : p) {
      out += c ? c : "";
      out += '\0';
      H5free_memory(c);
    }
    return out;
  }
  Handle mt(check_id(H5Tget_native_type(ftype, H5T_DIR_ASCEND), "cannot map a type"), H5Tclose);
  std::string out(H5Tget_size(mt) * static_cast<size_t>(n), '\0');
  check(read(mt, out.data()), "cannot read values");
  return out;
}

void feed(uLong& crc, const std::string& bytes) {
  crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size()));
}

// CRC-32 of an object's attributes (by name) and, for a dataset without Fletcher32, its data.
int64_t object_digest(hid_t obj) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const std::string& name : attr_names(obj)) {
    Handle a(check_id(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "cannot open attribute '" + name + "'"),
             H5Aclose);
    Handle t(check_id(H5Aget_type(a), "cannot read attribute type"), H5Tclose);
    Handle sp(check_id(H5Aget_space(a), "cannot read attribute space"), H5Sclose);
    feed(crc, name + '\0' + char('0' + H5Tget_class(t)));
    feed(crc, value_bytes(t, H5Sget_simple_extent_npoints(sp),
                          [&](hid_t mt, void* buf) { return H5Aread(a, mt, buf); }));
  }
  if (H5Iget_type(obj) == H5I_DATASET && !dataset_has_fletcher32(obj)) {
    Handle t(check_id(H5Dget_type(obj), "cannot read dataset type"), H5Tclose);
    Handle sp(check_id(H5Dget_space(obj), "cannot read dataspace"), H5Sclose);
    feed(crc, value_bytes(t, H5Sget_simple_extent_npoints(sp), [&](hid_t mt, void* buf) {
           return H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
         }));
  }
  return static_cast<int64_t>(crc);
}

// Every object below `group` (depth first, in child_names order), as absolute paths.
void list_objects(hid_t group, const std::string& path, std::vector<std::string>& out) {
  for (const std::string& name : child_names(group)) {
    if (path == "/" && name == kDigestDataset) continue;
    std::string p = path == "/" ? "/" + name : path + "/" + name;
    out.push_back(p);
    Handle o(check_id(H5Oopen(group, name.c_str(), H5P_DEFAULT), "cannot open '" + p + "'"),
             H5Oclose);
    if (H5Iget_type(o) == H5I_GROUP) list_objects(o, p, out);
  }
}

std::pair<std::vector<std::string>, std::vector<int64_t>> file_digests(hid_t file) {
  std::vector<std::string> paths{"/"};
  Handle root(check_id(H5Gopen2(file, "/", H5P_DEFAULT), "cannot open the root group"), H5Gclose);
  list_objects(root, "/", paths);
  std::vector<int64_t> digests;
  for (const std::string& p : paths) {
    Handle o(check_id(H5Oopen(file, p.c_str(), H5P_DEFAULT), "cannot open '" + p + "'"), H5Oclose);
    digests.push_back(object_digest(o));
  }
  return {paths, digests};
}

}  // namespace

void write_digests(hid_t file) {
  if (exists(file, kDigestDataset))
    check(H5Ldelete(file, kDigestDataset, H5P_DEFAULT), "cannot replace the digests");
  write_dataset(file, kDigestDataset, file_digests(file).second);
}

void verify_digests(hid_t file) {
  if (!exists(file, kDigestDataset)) return;  // h5py-written or older file: nothing to check
  std::vector<int64_t> stored = read_dataset<int64_t>(file, kDigestDataset);
  auto [paths, now] = file_digests(file);
  if (stored.size() != now.size())
    throw Error("the file is damaged: it holds " + std::to_string(now.size()) +
                " objects but its checksums cover " + std::to_string(stored.size()));
  for (size_t i = 0; i < now.size(); ++i)
    if (stored[i] != now[i])
      throw Error("'" + paths[i] + "' is damaged: the checksum of its attributes" +
                  std::string(paths[i] == "/" ? "" : " or data") + " does not match");
}

template <class T>
std::vector<T> read_dataset(hid_t parent, const std::string& name, std::vector<int64_t>* shape) {
  std::vector<int64_t> sh = dataset_shape(parent, name);
  // A file may declare any shape (a chunked dataset need not store its chunks): the size is
  // checked before the allocation, not found out by std::bad_alloc.
  const int64_t n = checked_numel(sh.data(), static_cast<int>(sh.size()));
  if (n < 0)
    throw Error("dataset '" + where(parent, name) + "' declares shape " + shape_str(sh) +
                ", whose size overflows");
  require_memory(double(n) * sizeof(T), "dataset '" + where(parent, name) + "'",
                 "shape " + shape_str(sh) + " declared by the file",
                 "the file declares more than this machine holds (damaged, or not a file "
                 "statex can read here)");
  std::vector<T> v(static_cast<size_t>(n));
  read_dataset_into<T>(parent, name, v.data(), n);
  if (shape) *shape = sh;
  return v;
}

std::string read_str_dataset(hid_t parent, const std::string& name) {
  Handle d = open_dataset(parent, name);
  Handle ft(check_id(H5Dget_type(d), "cannot read dataset type"), H5Tclose);
  if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) <= 0)
    throw Error("dataset '" + where(parent, name) + "' is not a variable-length string");
  if (numel(shape_of(d)) != 1)
    throw Error("dataset '" + where(parent, name) + "' is not a single string");
  Handle mt = vlen_utf8_type();
  char* p = nullptr;
  check(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p),
        "cannot read dataset '" + where(parent, name) + "'");
  std::string s = p ? p : "";
  H5free_memory(p);
  return s;
}

int64_t numel(const std::vector<int64_t>& shape) {
  const int64_t n = checked_numel(shape.data(), static_cast<int>(shape.size()));
  if (n < 0) throw Error("shape " + shape_str(shape) + " has a size that overflows");
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

#define STATEX_H5_INSTANTIATE(T)                                                              \
  template Handle write_dataset<T>(hid_t, const std::string&, const T*,                      \
                                   const std::vector<int64_t>&);                             \
  template std::vector<T> read_dataset<T>(hid_t, const std::string&, std::vector<int64_t>*); \
  template void read_dataset_into<T>(hid_t, const std::string&, T*, int64_t);
STATEX_H5_INSTANTIATE(float)
STATEX_H5_INSTANTIATE(double)
STATEX_H5_INSTANTIATE(int32_t)
STATEX_H5_INSTANTIATE(int64_t)
STATEX_H5_INSTANTIATE(uint64_t)
#undef STATEX_H5_INSTANTIATE

}  // namespace statex::h5
