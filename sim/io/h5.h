#pragma once
// Small RAII layer over the HDF5 C API. Every failing HDF5 call becomes an h5::Error whose
// message says what we were doing plus HDF5's own innermost reason; HDF5's automatic printing of
// its error stack to stderr is switched off (silence_errors, called by every entry point here).
#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace statex::h5 {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Turns off HDF5's default error printing (idempotent, process-wide).
void silence_errors();

// The innermost description on HDF5's current error stack ("" if none).
std::string hdf5_reason();

// Owns one hid_t and closes it with the matching H5?close. Move-only.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  void reset();
  hid_t release() {  // gives up ownership without closing
    hid_t id = id_;
    id_ = -1;
    return id;
  }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // NOLINT: pass straight to H5 calls

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// ---- files ----
Handle create_file(const std::string& path);  // truncates
// Opens read-only. Throws Error with a readable reason (missing file, not HDF5, truncated);
// the message does not repeat the path: callers prefix it ("cannot load checkpoint 'x': ...").
Handle open_file(const std::string& path);

// Writes a file atomically: `fill` writes into `path + ".tmp"`, which is closed, fsync'ed and
// renamed over `path`. On any failure the tmp file is removed and Error names `path` and why;
// an existing file at `path` is left untouched.
void write_atomically(const std::string& path, const std::function<void(hid_t file)>& fill);

// ---- integrity (docs/results_format.md, "Integrity") ----
// Files written by write_atomically start with a 512-byte HDF5 user block holding a CRC-32 of
// every byte after it (kFileCrcMagic, the CRC in hex, the length). open_file checks it before
// HDF5 parses anything, so no damaged byte (e.g. in HDF5's unchecksummed global heap of strings,
// where a flipped length made HDF5 crash) ever reaches the library; on a mismatch it names the
// first tensor whose Fletcher32 check fails, if any.
constexpr const char* kFileCrcMagic = "statex-crc32";
constexpr int kUserBlockBytes = 512;
// (Re)writes the user-block CRC of a closed file (after an in-place edit, e.g. in tests).
void stamp_file_crc(const std::string& path);

// Every non-empty, non-scalar numeric dataset is written chunked with HDF5's Fletcher32 filter,
// which HDF5 verifies on every read. Everything else (attributes of every object, string and
// scalar datasets) is covered by one CRC-32 per object in the uint32 dataset kDigestDataset
// (itself Fletcher32-protected), written by write_atomically and checked by open_file. Files
// without kDigestDataset (written by h5py, or before this existed) are read unchecked.
constexpr const char* kDigestDataset = "attr_digests";
// Recomputes and (re)writes kDigestDataset for the whole file (write_atomically calls it; tests
// that edit a file in place call it to keep the file consistent).
void write_digests(hid_t file);
// Throws Error naming the first object whose attributes / unfiltered data do not match.
void verify_digests(hid_t file);
// True when the dataset carries the Fletcher32 filter.
bool has_checksum(hid_t parent, const std::string& name);

// Throws Error if `path` could not be written (parent directory missing / not a directory / not
// writable, or `path` is a directory). Creates and removes `path + ".tmp"` to be sure.
void check_writable(const std::string& path);

// ---- groups and links ----
// track_order: remember creation order so readers can list children in it.
Handle create_group(hid_t parent, const std::string& name, bool track_order = false);
Handle open_group(hid_t parent, const std::string& name);
bool exists(hid_t parent, const std::string& path);  // "a/b/c": every link on the way
std::vector<std::string> child_names(hid_t group);   // creation order if tracked, else by name
std::vector<std::string> attr_names(hid_t obj);

// ---- attributes (scalar) ----
void write_attr(hid_t obj, const std::string& name, const std::string& value);
void write_attr(hid_t obj, const std::string& name, const char* value);
void write_attr(hid_t obj, const std::string& name, int32_t value);
void write_attr(hid_t obj, const std::string& name, int64_t value);
void write_attr(hid_t obj, const std::string& name, uint64_t value);
void write_attr(hid_t obj, const std::string& name, float value);
void write_attr(hid_t obj, const std::string& name, double value);
void write_attr(hid_t obj, const std::string& name, const std::vector<int32_t>& values);
void write_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& values);

bool has_attr(hid_t obj, const std::string& name);
// Readers throw Error("missing attribute 'name'") when absent.
std::string read_attr_str(hid_t obj, const std::string& name);
int64_t read_attr_i64(hid_t obj, const std::string& name);
uint64_t read_attr_u64(hid_t obj, const std::string& name);
double read_attr_f64(hid_t obj, const std::string& name);
std::vector<int64_t> read_attr_i64_vec(hid_t obj, const std::string& name);
// Every string attribute of obj, name -> value (non-string attributes skipped).
std::map<std::string, std::string> read_str_attrs(hid_t obj);

// ---- datasets ----
// Row-major numeric dataset of the given shape ({} = scalar). Supported T: float, double,
// int32_t, int64_t, uint64_t. Returns the dataset so callers can attach attributes.
template <class T>
Handle write_dataset(hid_t parent, const std::string& name, const T* data,
                     const std::vector<int64_t>& shape);
template <class T>
Handle write_dataset(hid_t parent, const std::string& name, const std::vector<T>& data) {
  return write_dataset<T>(parent, name, data.data(), {static_cast<int64_t>(data.size())});
}
void write_str_dataset(hid_t parent, const std::string& name, const std::string& value);

// Opens a dataset; throws Error("missing dataset '/path'") when absent or not a dataset.
Handle open_dataset(hid_t parent, const std::string& name);
// Shape of a dataset ({} = scalar). Throws Error("missing dataset 'name'") when absent.
std::vector<int64_t> dataset_shape(hid_t parent, const std::string& name);
// HDF5 type class of a dataset (H5T_INTEGER, H5T_FLOAT, ...).
H5T_class_t dataset_class(hid_t parent, const std::string& name);
// Reads the whole dataset converted to T; `shape` (optional) receives its shape.
template <class T>
std::vector<T> read_dataset(hid_t parent, const std::string& name,
                            std::vector<int64_t>* shape = nullptr);
// Reads into caller memory that must hold exactly numel elements.
template <class T>
void read_dataset_into(hid_t parent, const std::string& name, T* out, int64_t numel);
std::string read_str_dataset(hid_t parent, const std::string& name);

int64_t numel(const std::vector<int64_t>& shape);
std::string shape_str(const std::vector<int64_t>& shape);  // "[3, 4]"

}  // namespace statex::h5
