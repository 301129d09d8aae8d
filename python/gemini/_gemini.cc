// The native module behind the `gemini` Python package: a thin binding of the
// trainer-side store client (store/client.h, store/async_saver.h).
//
// Tensors cross as raw (pointer, length) pairs: the Python side passes
// tensor.data_ptr() of contiguous CPU tensors and keeps them alive (and
// unmodified) until the save completes. Every call that copies or waits
// releases the GIL; Python objects are only touched with the GIL held.
// Status errors become gemini.GeminiError with a `code` attribute.
#include "binding.h"
#include "common/crc32c.h"
#include "common/paths.h"
#include "schedule/partition.h"
#include "store/async_saver.h"
#include "store/client.h"
#include "store/timeline_client.h"

namespace py = pybind11;
using namespace gemini;
using namespace gemini::binding;

PYBIND11_MODULE(_gemini, m) {
  m.doc() = "gemini native module: the trainer side of the in-memory checkpoint store";
  m.attr("__version__") = GEMINI_VERSION;
  g_error = py::reinterpret_borrow<py::object>(PyExc_RuntimeError);
  g_error = py::module_::import("builtins")
                .attr("type")("GeminiError", py::make_tuple(g_error), py::dict());
  m.attr("GeminiError") = g_error;
  m.def("default_socket_path", &DefaultSocketPath);
  m.def(
      "crc32c",
      [](uintptr_t ptr, uint64_t n, uint32_t crc) {
        return WithoutGil([&] { return Crc32c(reinterpret_cast<const void*>(ptr), n, crc); });
      },
      py::arg("ptr"), py::arg("length"), py::arg("crc") = 0,
      "CRC32C of `length` bytes at address `ptr`, continuing from `crc`.");

  m.def(
      "partition",
      [](const std::vector<double>& spans_s, uint64_t checkpoint_bytes, int copies,
         uint64_t buffer_bytes, int sub_buffers, double bandwidth_Bps, double alpha_s, double mu,
         uint64_t min_chunk_bytes) {
        schedule::PartitionParams p;
        p.checkpoint_bytes = checkpoint_bytes;
        p.copies = copies;
        p.buffer_bytes = buffer_bytes;
        p.sub_buffers = sub_buffers;
        p.bandwidth_Bps = bandwidth_Bps;
        p.alpha_s = alpha_s;
        p.mu = mu;
        p.min_chunk_bytes = min_chunk_bytes;
        schedule::PartitionPlan plan = Unwrap(schedule::Partition(spans_s, p));
        py::list spans;
        for (const auto& span : plan.spans) {
          py::list chunks;
          for (const auto& c : span.chunks)
            chunks.append(py::make_tuple(c.copy, c.offset, c.length, c.leftover));
          spans.append(chunks);
        }
        return spans;
      },
      py::arg("spans_s"), py::arg("checkpoint_bytes"), py::arg("copies"), py::arg("buffer_bytes"),
      py::arg("sub_buffers"), py::arg("bandwidth_Bps"), py::arg("alpha_s"), py::arg("mu") = 0.9,
      py::arg("min_chunk_bytes") = 1,
      "Algorithm 2 (src/schedule/partition.h): for each idle span, the chunks "
      "[(copy, offset, length, leftover)] sent in it.");

  py::class_<OpenShard>(m, "Shard")
      .def_property_readonly("manifest",
                             [](const OpenShard& s) { return ManifestDict(s.manifest); })
      .def_property_readonly(
          "crc", [](const OpenShard& s) { return Crc32c(s.crcs.data(), s.crcs.size() * 4, 0); },
          "CRC32C over the shard's chunk CRCs: equal shards, equal values.");

  py::class_<AgentClient>(m, "Client")
      .def(py::init([](const std::string& path) { return Unwrap(AgentClient::Connect(path)); }),
           py::arg("socket_path"))
      .def(
          "save",
          [](AgentClient& c, const std::string& job, uint32_t rank, uint32_t world,
             int64_t iteration, const std::vector<Entry>& entries, int threads, uint64_t chunk_size,
             int64_t wait_ms) {
            SaveRequest r =
                MakeSaveRequest(job, rank, world, iteration, entries, threads, chunk_size, wait_ms);
            Check(WithoutGil([&] {
              return c.Save(r.job, r.rank, r.world_size, r.iteration, r.tensors, r.options);
            }));
          },
          py::arg("job"), py::arg("rank"), py::arg("world_size"), py::arg("iteration"),
          py::arg("entries"), py::arg("threads") = 1,
          py::arg("chunk_size") = Manifest::kDefaultChunkSize, py::arg("wait_ms") = 120000)
      .def(
          "open",
          [](AgentClient& c, const std::string& job, uint32_t rank, int64_t iteration) {
            return Unwrap(WithoutGil([&] { return c.Open(job, rank, iteration); }));
          },
          // The shard holds its own reference to the slot's mapping
          // (store/client.h), so `Client(sock).open(...)` stays readable.
          py::arg("job"), py::arg("rank"), py::arg("iteration") = -1)
      .def_static(
          "read_into",
          [](const OpenShard& s, uintptr_t dst, int threads) {
            Check(WithoutGil([&] {
              return AgentClient::ReadInto(s, reinterpret_cast<uint8_t*>(dst), threads);
            }));
          },
          py::arg("shard"), py::arg("dst_ptr"), py::arg("threads") = 1)
      .def(
          "fetch",
          [](AgentClient& c, const std::string& job, uint32_t rank, int64_t iteration,
             int64_t from_host) {
            return Unwrap(WithoutGil([&] { return c.Fetch(job, rank, iteration, from_host); }));
          },
          py::arg("job"), py::arg("rank"), py::arg("iteration") = -1, py::arg("from_host") = -1,
          "Asks the agent to fetch rank's shard from a peer holder (CRC-checked) into its "
          "memory; returns the iteration fetched.")
      .def("complete_iteration",
           [](AgentClient& c, const std::string& job) {
             return Unwrap(WithoutGil([&] { return c.CompleteIteration(job); }));
           })
      .def("status_json", [](AgentClient& c) { return Unwrap(c.StatusJson()); })
      .def("drop_job", [](AgentClient& c, const std::string& job) { Check(c.DropJob(job)); })
      .def(
          "set_cadence",
          [](AgentClient& c, const std::string& job, uint32_t rank, uint32_t every_k,
             const std::string& reason) {
            Check(WithoutGil([&] { return c.SetCadence(job, rank, every_k, reason); }));
          },
          py::arg("job"), py::arg("rank"), py::arg("every_k"), py::arg("reason"),
          "Tells the agent how often this rank checkpoints and why (gemini status).");

  py::class_<AsyncSaver>(m, "AsyncSaver")
      .def(py::init<AgentClient*>(), py::keep_alive<1, 2>(), py::arg("client"))
      .def(
          "submit",
          [](AsyncSaver& s, const std::string& job, uint32_t rank, uint32_t world,
             int64_t iteration, const std::vector<Entry>& entries, int threads, uint64_t chunk_size,
             int64_t wait_ms) {
            SaveRequest r =
                MakeSaveRequest(job, rank, world, iteration, entries, threads, chunk_size, wait_ms);
            Check(WithoutGil([&] { return s.Submit(std::move(r)); }));
          },
          py::arg("job"), py::arg("rank"), py::arg("world_size"), py::arg("iteration"),
          py::arg("entries"), py::arg("threads") = 1,
          py::arg("chunk_size") = Manifest::kDefaultChunkSize, py::arg("wait_ms") = 120000)
      .def(
          "wait",
          [](AsyncSaver& s, double timeout_s) {
            Check(WithoutGil([&] {
              return s.Wait(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
            }));
          },
          py::arg("timeout_s") = 600.0)
      .def("in_flight", &AsyncSaver::InFlight)
      .def("last_stats", [](AsyncSaver& s) {
        SaveStats st = s.LastStats();
        py::dict d;
        d["iteration"] = st.iteration;
        d["copy_s"] = st.copy_seconds;
        d["bytes"] = st.bytes;
        return d;
      });

  py::class_<TimelineClient>(m, "TimelineClient")
      .def(py::init([](const std::string& path) { return Unwrap(TimelineClient::Connect(path)); }),
           py::arg("socket_path"))
      .def_static("now", &TimelineClient::Now)
      .def(
          "report",
          [](TimelineClient& c, const std::string& job, uint32_t rank, int64_t iteration,
             uint32_t kind, int op, double t) {
            Check(WithoutGil([&] { return c.Report(job, rank, iteration, kind, op, t); }));
          },
          py::arg("job"), py::arg("rank"), py::arg("iteration"), py::arg("kind"), py::arg("op"),
          py::arg("t"))
      .def(
          "wait_due",
          [](TimelineClient& c, const std::string& job, uint32_t rank, int64_t iteration,
             bool before_step, double timeout_s) {
            Check(WithoutGil([&] {
              return c.WaitDue(job, rank, iteration, before_step,
                               std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
            }));
          },
          py::arg("job"), py::arg("rank"), py::arg("iteration"), py::arg("before_step"),
          py::arg("timeout_s") = 60.0)
      .def("schedule", [](TimelineClient& c, const std::string& job) {
        return Unwrap(WithoutGil([&] { return c.GetSchedule(job); }));
      });
}
