// Pieces shared by the pybind11 modules _gemini.cc and _gemini_cuda.cc: Status
// errors as gemini.GeminiError, save entries from Python tuples, manifests as
// dicts, and calls made without the GIL. Each module gets its own copy (header
// only); _gemini creates GeminiError, _gemini_cuda imports it.
#pragma once

// Python.h first, as Python asks: some pybind11 releases (3.1) include
// <frameobject.h> before it.
#include <Python.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/status.h"
#include "store/async_saver.h"
#include "store/manifest.h"

namespace gemini::binding {

namespace py = pybind11;

// gemini.GeminiError, set when the module is initialized.
inline py::object g_error;

// Raises GeminiError (with a `code` attribute) for a non-OK status.
inline void Check(const Status& st) {
  if (st.ok()) return;
  py::object err = g_error(st.ToString());
  err.attr("code") = CodeName(st.code());
  PyErr_SetObject(g_error.ptr(), err.ptr());
  throw py::error_already_set();
}

template <typename T>
T Unwrap(Result<T> r) {
  Check(r.status());
  return std::move(r).value();
}

// fn() with the GIL released (native work that may block or take long).
template <typename Fn>
auto WithoutGil(Fn&& fn) -> decltype(fn()) {
  py::gil_scoped_release nogil;
  return fn();
}

// A save entry from Python: (name, dtype, shape, data_ptr, length, tensor_offset).
using Entry =
    std::tuple<std::string, std::string, std::vector<int64_t>, uintptr_t, uint64_t, uint64_t>;

// A save request: the entries as tensor pieces, and the copy options.
inline SaveRequest MakeSaveRequest(const std::string& job, uint32_t rank, uint32_t world,
                                   int64_t iteration, const std::vector<Entry>& entries,
                                   int threads, uint64_t chunk_size, int64_t wait_ms) {
  SaveRequest req{job, rank, world, iteration, {}, {}};
  req.tensors.reserve(entries.size());
  for (const auto& [name, dtype, shape, ptr, length, toff] : entries)
    req.tensors.push_back({name, Unwrap(DtypeFromName(dtype)), shape,
                           reinterpret_cast<const void*>(ptr), length, toff});
  req.options.copy_threads = threads;
  req.options.chunk_size = chunk_size;
  req.options.wait = std::chrono::milliseconds(wait_ms);
  return req;
}

inline py::dict ManifestDict(const Manifest& m) {
  py::list entries;
  for (const auto& e : m.entries)
    entries.append(
        py::make_tuple(e.name, DtypeName(e.dtype), e.shape, e.offset, e.length, e.tensor_offset));
  py::dict d;
  d["job"] = m.job;
  d["iteration"] = m.iteration;
  d["rank"] = m.rank;
  d["world_size"] = m.world_size;
  d["data_bytes"] = m.data_bytes;
  d["chunk_size"] = m.chunk_size;
  d["entries"] = entries;
  return d;
}

}  // namespace gemini::binding
