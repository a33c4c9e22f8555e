#pragma once
// Results file (docs/results_format.md, format_version kResultsFormatVersion).
#include <string>

#include "sim/io/run_record.h"

namespace statex {

// Writes `rec` to `path` atomically (path.tmp, then rename). Throws std::runtime_error naming
// the path and the reason; an existing file at `path` is never damaged.
void write_results(const std::string& path, const RunRecord& rec);

// Reads a results file back. Throws std::runtime_error naming the file and the field when it is
// not a results file or has another format_version.
RunRecord read_results(const std::string& path);

// Fails fast, before training, when `path` cannot be written: throws ConfigError
// "<option> 'path': <reason>" (option is the CLI flag, e.g. --out).
void check_writable(const std::string& path, const std::string& option = "--out");

}  // namespace statex
