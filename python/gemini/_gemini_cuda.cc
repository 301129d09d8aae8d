// gemini._gemini_cuda: the GPU data path (src/gpu/GpuSaver) for Python, built
// only with -DGEMINI_CUDA=ON. A module of its own so the CPU-only module
// (_gemini.cc) never depends on CUDA.
//
// Tensors cross as raw (pointer, length) pairs of device memory (host pointers
// work too); streams as their cudaStream_t value (torch: stream.cuda_stream).
// The caller keeps the source tensors alive until wait() or the next submit().
// Every call that copies or waits releases the GIL. Errors are
// gemini.GeminiError (from the _gemini module) with a `code` attribute.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "binding.h"
#include "gpu/chunk_crc_kernel.h"
#include "gpu/gpu_saver.h"
#include "gpu/slot_writer.h"

namespace py = pybind11;
using namespace gemini;
using namespace gemini::binding;

namespace {

cudaStream_t AsStream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// A committed shard opened for restoring (a type of this module's own: the
// _gemini module binds OpenShard).
struct GpuShard {
  OpenShard shard;
};

py::dict StatsDict(const GpuSaveStats& s) {
  py::dict d;
  d["iteration"] = s.iteration;
  d["bytes"] = s.bytes;
  d["pinned"] = s.pinned;
  d["begin_s"] = s.begin_s;
  d["pin_s"] = s.pin_s;
  d["enqueue_s"] = s.enqueue_s;
  d["copy_s"] = s.copy_s;
  d["crc_s"] = s.crc_s;
  d["gpu_crc"] = s.gpu_crc;
  d["total_s"] = s.total_s;
  d["host_waits"] = s.host_waits;
  d["gpu_waits"] = s.gpu_waits;
  return d;
}

}  // namespace

PYBIND11_MODULE(_gemini_cuda, m) {
  m.doc() = "gemini GPU data path: pinned device-to-host capture and restore";
  g_error = py::module_::import("gemini._gemini").attr("GeminiError");

  py::class_<GpuShard>(m, "Shard").def_property_readonly("manifest", [](const GpuShard& s) {
    return ManifestDict(s.shard.manifest);
  });

  m.def(
      "chunk_crcs",
      [](uintptr_t data, uint64_t n, uint64_t chunk, uintptr_t out, uintptr_t stream) {
        Check(LaunchChunkCrcs(reinterpret_cast<const void*>(data), n, chunk,
                              reinterpret_cast<uint32_t*>(out), AsStream(stream)));
      },
      py::arg("data"), py::arg("n"), py::arg("chunk"), py::arg("out"), py::arg("stream") = 0,
      "Enqueues out[i] = CRC32C of bytes [i*chunk, (i+1)*chunk) of device memory `data` "
      "(out: ceil(n/chunk) uint32 words of device memory) on `stream`.");

  py::class_<SlotWriter>(m, "SlotWriter")
      .def(py::init([](const std::string& socket) { return Unwrap(SlotWriter::Create(socket)); }),
           py::arg("socket_path"))
      .def(
          "begin",
          [](SlotWriter& w, const std::string& job, uint32_t rank, uint32_t world,
             int64_t iteration, const std::vector<Entry>& entries, uint64_t chunk_size,
             int64_t wait_ms) {
            SaveRequest r =
                MakeSaveRequest(job, rank, world, iteration, entries, 1, chunk_size, wait_ms);
            Manifest man = Unwrap(WithoutGil(
                [&] { return w.Begin(job, rank, world, iteration, r.tensors, r.options); }));
            return ManifestDict(man);
          },
          py::arg("job"), py::arg("rank"), py::arg("world_size"), py::arg("iteration"),
          py::arg("entries"), py::arg("chunk_size") = Manifest::kDefaultChunkSize,
          py::arg("wait_ms") = 120000,
          "Reserves the in-progress slot; returns its manifest (entry offsets, data_bytes).")
      .def(
          "copy_in",
          [](SlotWriter& w, uint64_t offset, uintptr_t src, uint64_t n, uintptr_t stream) {
            Check(w.CopyIn(offset, reinterpret_cast<const void*>(src), n, AsStream(stream)));
          },
          py::arg("offset"), py::arg("src"), py::arg("n"), py::arg("stream") = 0,
          "Enqueues a device-to-host copy of n bytes into the slot at `offset` on `stream`.")
      .def(
          "crcs",
          [](const SlotWriter& w, uint64_t offset, uint64_t n, int threads) {
            return Unwrap(WithoutGil([&] { return w.Crcs(offset, n, threads); }));
          },
          py::arg("offset"), py::arg("n"), py::arg("threads") = 4,
          "CRC32C of every manifest chunk of slot bytes [offset, offset+n), on host threads "
          "(the copies there must be complete); may run beside copy_in on another thread.")
      .def(
          "commit",
          [](SlotWriter& w, const std::vector<uint32_t>& crcs) {
            Check(WithoutGil([&] { return w.Commit(crcs); }));
          },
          py::arg("crcs"), "Commits the slot (copies complete) with one CRC32C per chunk.")
      .def_property_readonly("pinned", &SlotWriter::pinned)
      .def_property_readonly("begun", &SlotWriter::begun);

  py::class_<GpuSaver>(m, "Saver")
      .def(py::init([](const std::string& socket, int device) {
             return Unwrap(GpuSaver::Create(socket, device));
           }),
           py::arg("socket_path"), py::arg("device") = -1)
      .def(
          "submit",
          [](GpuSaver& s, const std::string& job, uint32_t rank, uint32_t world, int64_t iteration,
             const std::vector<Entry>& entries, uintptr_t stream, int threads, uint64_t chunk_size,
             int64_t wait_ms, bool gpu_crc) {
            GpuSaveRequest r{
                MakeSaveRequest(job, rank, world, iteration, entries, threads, chunk_size, wait_ms),
                AsStream(stream), gpu_crc};
            Check(WithoutGil([&] { return s.Submit(std::move(r)); }));
          },
          py::arg("job"), py::arg("rank"), py::arg("world_size"), py::arg("iteration"),
          py::arg("entries"), py::arg("stream") = 0, py::arg("threads") = 4,
          py::arg("chunk_size") = Manifest::kDefaultChunkSize, py::arg("wait_ms") = 120000,
          py::arg("gpu_crc") = true,
          "Starts a capture after `stream`'s queued work; returns at once. gpu_crc: CRC32C "
          "computed on the GPU from the tensors (else by `threads` host threads from the copy).")
      .def(
          "before_step",
          [](GpuSaver& s, uintptr_t stream) {
            Check(WithoutGil([&] { return s.BeforeStep(AsStream(stream)); }));
          },
          py::arg("stream") = 0,
          "Makes `stream` wait for the in-flight copies, if any (on the GPU).")
      .def(
          "wait",
          [](GpuSaver& s, double timeout_s) {
            Check(WithoutGil([&] {
              return s.Wait(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
            }));
          },
          py::arg("timeout_s") = 600.0, "Blocks until the capture is committed.")
      .def("in_flight", &GpuSaver::InFlight)
      .def("last_stats", [](GpuSaver& s) { return StatsDict(s.LastStats()); })
      .def("copy_stream", [](GpuSaver& s) { return reinterpret_cast<uintptr_t>(s.copy_stream()); })
      .def("complete_iteration",
           [](GpuSaver& s, const std::string& job) {
             return Unwrap(WithoutGil([&] { return s.client()->CompleteIteration(job); }));
           })
      .def(
          "open",
          [](GpuSaver& s, const std::string& job, uint32_t rank, int64_t iteration) {
            return GpuShard{
                Unwrap(WithoutGil([&] { return s.client()->Open(job, rank, iteration); }))};
          },
          py::arg("job"), py::arg("rank"), py::arg("iteration") = -1)
      .def(
          "restore",
          [](GpuSaver& s, const GpuShard& shard,
             const std::vector<std::tuple<uint64_t, uintptr_t, uint64_t>>& pieces, uintptr_t stream,
             int threads, bool pin) {
            std::vector<RestorePiece> ps;
            ps.reserve(pieces.size());
            for (const auto& [off, dst, len] : pieces)
              ps.push_back({off, reinterpret_cast<void*>(dst), len});
            RestoreStats st = Unwrap(WithoutGil(
                [&] { return s.Restore(shard.shard, ps, AsStream(stream), threads, pin); }));
            py::dict d;
            d["verify_s"] = st.verify_s;
            d["recheck_s"] = st.recheck_s;
            d["pin_s"] = st.pin_s;
            d["copy_s"] = st.copy_s;
            d["pinned"] = st.pinned;
            d["bytes"] = st.bytes;
            return d;
          },
          py::arg("shard"), py::arg("pieces"), py::arg("stream") = 0, py::arg("threads") = 4,
          py::arg("pin") = true,
          "Verifies every chunk's CRC32C, then copies (region_offset, dst_ptr, length) "
          "pieces to their destinations and synchronizes `stream`.")
      .def_static(
          "read_bytes",
          [](const GpuShard& shard, uint64_t offset, uint64_t length) {
            const Manifest& man = shard.shard.manifest;
            if (offset > man.data_bytes || length > man.data_bytes - offset)
              Check(InvalidArgument("read outside the shard's data"));
            return py::bytes(reinterpret_cast<const char*>(shard.shard.data) + offset, length);
          },
          py::arg("shard"), py::arg("offset"), py::arg("length"),
          "Bytes of the shard's data region (unverified: call after restore()).");
}
