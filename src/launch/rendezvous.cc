#include "launch/rendezvous.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/cluster/plan.h"
#include "common/json_fields.h"

namespace gemini {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr char kKey[] = "rdzv";
constexpr size_t kMaxNodeName = 256;

Deadline Call() { return DeadlineAfter(std::chrono::milliseconds(3000)); }

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// What a member of the closed round `r` learns: its position is its host id.
RendezvousResult MemberOf(const RendezvousRecord& r, const std::string& node, bool closer) {
  RendezvousResult out;
  out.round = r.round;
  out.host =
      static_cast<uint32_t>(std::find(r.nodes.begin(), r.nodes.end(), node) - r.nodes.begin());
  out.num_hosts = static_cast<uint32_t>(r.nodes.size());
  out.closer = closer;
  return out;
}

std::string List(const std::vector<std::string>& nodes) {
  std::string out;
  for (const auto& n : nodes) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

class Joiner {
 public:
  Joiner(KvStore& kv, const RendezvousOptions& o, const JobStart& start)
      : kv_(kv), o_(o), start_(start) {}
  Result<RendezvousResult> Run();

 private:
  // Writes `next` if `rdzv` is still at `revision` (0: absent), with the
  // job's first records when `next` closes the round. True if written.
  Result<bool> Commit(const RendezvousRecord& next, int64_t revision);
  // The previous run of the job is over (or died): its keys may go.
  bool PreviousRunOver(const RendezvousRecord& r, int64_t* plan_revision);
  // Deletes every key of the job if `rdzv` and `plan` are still as seen.
  void Clear(int64_t rdzv_revision, int64_t plan_revision);
  void Say(const std::string& line) {
    if (o_.progress) o_.progress(line);
  }

  KvStore& kv_;
  const RendezvousOptions& o_;
  const JobStart& start_;
  int64_t next_round_ = 1;
};

Result<bool> Joiner::Commit(const RendezvousRecord& next, int64_t revision) {
  std::vector<TxnOp> ops{TxnOp::Put(kKey, EncodeRendezvous(next))};
  if (next.closed) {
    GEMINI_ASSIGN_OR_RETURN(auto records, start_(static_cast<uint32_t>(next.nodes.size())));
    for (auto& [key, value] : records) ops.push_back(TxnOp::Put(key, value));
  }
  GEMINI_ASSIGN_OR_RETURN(TxnResult t,
                          kv_.Txn({Compare::ModRevisionEquals(kKey, revision)}, ops, {}, Call()));
  return t.succeeded;
}

bool Joiner::PreviousRunOver(const RendezvousRecord& r, int64_t* plan_revision) {
  *plan_revision = 0;
  auto plan = kv_.Get("plan", Call());
  if (plan.ok()) {
    *plan_revision = plan->mod_revision;
    auto p = DecodePlan(plan->value);
    if (p.ok() && (p->state == "done" || p->state == "failed")) return true;
  } else if (plan.status().code() != Code::kNotFound) {
    return false;
  }
  if (WallNow() - r.closed_at < o_.dead_after_s) return false;
  auto hosts = kv_.GetPrefix("hosts/", Call());
  return hosts.ok() && hosts->kvs.empty();
}

void Joiner::Clear(int64_t rdzv_revision, int64_t plan_revision) {
  (void)kv_.Txn({Compare::ModRevisionEquals(kKey, rdzv_revision),
                 Compare::ModRevisionEquals("plan", plan_revision)},
                {TxnOp{TxnOp::Type::kDelete, "", "", kNoLease, /*prefix=*/true}}, {}, Call());
}

Result<RendezvousResult> Joiner::Run() {
  const auto start = Clock::now();
  auto last_change = start;
  int64_t seen_revision = -1;
  double said_waiting = -1e9;
  for (;; std::this_thread::sleep_for(std::chrono::milliseconds(100))) {
    auto got = kv_.Get(kKey, Call());
    const bool absent = !got.ok() && got.status().code() == Code::kNotFound;
    if (!got.ok() && !absent) {
      if (Since(start) > o_.timeout_s) return got.status();
      if (Since(start) - said_waiting >= 10) {
        Say("cannot read the rendezvous from etcd (" + got.status().ToString() + "); retrying");
        said_waiting = Since(start);
      }
      continue;
    }
    RendezvousRecord r;
    if (!absent) {
      auto decoded = DecodeRendezvous(got->value);
      if (!decoded.ok())
        return InvalidArgument("the job's rendezvous record is not valid (" +
                               decoded.status().message() +
                               "); was it written by something else? Use another --rdzv-id");
      r = *decoded;
      if (got->mod_revision != seen_revision) {
        seen_revision = got->mod_revision;
        last_change = Clock::now();
      }
    }
    const auto me = std::find(r.nodes.begin(), r.nodes.end(), o_.node);
    const bool member = !absent && me != r.nodes.end();
    int64_t plan_revision = 0;
    if (!absent && r.closed && PreviousRunOver(r, &plan_revision)) {
      Say("the previous run of this job (round " + std::to_string(r.round) +
          ") is over; opening round " + std::to_string(r.round + 1));
      next_round_ = r.round + 1;
      Clear(got->mod_revision, plan_revision);
      continue;
    }
    if (!absent && r.closed && member) return MemberOf(r, o_.node, /*closer=*/false);
    if (Since(start) > o_.timeout_s) {
      if (member) {  // Leave, so that the others do not count this node.
        RendezvousRecord left = r;
        left.nodes.erase(left.nodes.begin() + (me - r.nodes.begin()));
        (void)Commit(left, got->mod_revision);
      }
      return DeadlineExceeded(
          "the rendezvous did not close within " + std::to_string(static_cast<int>(o_.timeout_s)) +
          " s: " + std::to_string(r.nodes.size()) + " of at least " + std::to_string(o_.min_nodes) +
          " nodes joined (" + List(r.nodes) + ")");
    }
    if (absent) {
      // A new job, or one whose keys were cleared: drop whatever an earlier
      // run left behind, then open the round.
      (void)kv_.Txn({Compare::Absent(kKey)},
                    {TxnOp{TxnOp::Type::kDelete, "", "", kNoLease, /*prefix=*/true}}, {}, Call());
      r = RendezvousRecord{next_round_, {}, false, o_.min_nodes, o_.max_nodes, 0, o_.settings};
      if (o_.standby) continue;  // A spare waits for a round to be opened and closed.
    }
    if (r.closed) {
      if (o_.standby) {
        RendezvousResult out;
        out.round = r.round;
        out.standby = true;
        out.num_hosts = static_cast<uint32_t>(r.nodes.size());
        return out;
      }
      return FailedPrecondition(
          "the job is already running on " + std::to_string(r.nodes.size()) + " nodes (round " +
          std::to_string(r.round) + " closed" + (member ? ", this address was one of them" : "") +
          "): start this node with --standby to join as a spare, or use a new --rdzv-id");
    }
    if (r.min_nodes != o_.min_nodes || r.max_nodes != o_.max_nodes)
      return InvalidArgument("nodes disagree on --nnodes: this node says " +
                             std::to_string(o_.min_nodes) + ":" + std::to_string(o_.max_nodes) +
                             ", the round was opened with " + std::to_string(r.min_nodes) + ":" +
                             std::to_string(r.max_nodes));
    if (r.settings != o_.settings)
      return InvalidArgument("nodes disagree: this node has " + o_.settings +
                             ", the round was opened with " + r.settings);
    if (o_.standby) continue;
    RendezvousRecord next = r;
    if (!member) {
      next.nodes.push_back(o_.node);
    } else if (r.nodes.size() < o_.min_nodes || Since(last_change) < o_.last_call_s) {
      if (Since(start) - said_waiting >= 10) {
        Say("waiting for nodes: " + std::to_string(r.nodes.size()) + " joined (" + List(r.nodes) +
            "), " + std::to_string(o_.min_nodes) + "-" + std::to_string(o_.max_nodes) +
            " expected");
        said_waiting = Since(start);
      }
      continue;
    }
    next.closed = next.nodes.size() >= o_.max_nodes || member;
    if (next.closed) next.closed_at = WallNow();
    GEMINI_ASSIGN_OR_RETURN(bool won, Commit(next, absent ? 0 : got->mod_revision));
    if (won && next.closed) return MemberOf(next, o_.node, /*closer=*/true);
    if (won)
      Say("joined round " + std::to_string(next.round) + " as node " +
          std::to_string(next.nodes.size() - 1));
  }
}

}  // namespace

std::string EncodeRendezvous(const RendezvousRecord& r) {
  return json{{"round", r.round},      {"nodes", r.nodes},   {"closed", r.closed},
              {"min", r.min_nodes},    {"max", r.max_nodes}, {"closed_at", r.closed_at},
              {"settings", r.settings}}
      .dump();
}

Result<RendezvousRecord> DecodeRendezvous(std::string_view text) {
  GEMINI_ASSIGN_OR_RETURN(json j, ParseJsonObject(text, "rendezvous record"));
  JsonFields f(j, "rendezvous record");
  RendezvousRecord r;
  r.round = f.Int("round", 1, INT64_MAX);
  r.nodes = f.Strings("nodes", kMaxHosts);
  r.closed = f.Bool("closed");
  r.min_nodes = static_cast<uint32_t>(f.Int("min", 1, kMaxHosts));
  r.max_nodes = static_cast<uint32_t>(f.Int("max", 1, kMaxHosts));
  r.closed_at = f.Number("closed_at", 0, 1e12, 0.0);
  r.settings = f.String("settings", "", 4096);
  GEMINI_RETURN_IF_ERROR(f.status());
  if (r.min_nodes > r.max_nodes || r.nodes.size() > r.max_nodes)
    return InvalidArgument("rendezvous record: " + std::to_string(r.nodes.size()) +
                           " nodes for --nnodes " + std::to_string(r.min_nodes) + ":" +
                           std::to_string(r.max_nodes));
  std::vector<std::string> sorted = r.nodes;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i)
    if (sorted[i].empty() || sorted[i].size() > kMaxNodeName ||
        (i > 0 && sorted[i] == sorted[i - 1]))
      return InvalidArgument("rendezvous record: node names must be distinct, 1-256 bytes");
  return r;
}

Result<RendezvousResult> JoinRendezvous(KvStore& kv, const RendezvousOptions& options,
                                        const JobStart& job_start) {
  if (options.node.empty() || options.node.size() > kMaxNodeName)
    return InvalidArgument("rendezvous: the node's address must be 1-256 bytes");
  if (options.min_nodes < 1 || options.min_nodes > options.max_nodes ||
      options.max_nodes > kMaxHosts)
    return InvalidArgument("--nnodes " + std::to_string(options.min_nodes) + ":" +
                           std::to_string(options.max_nodes) +
                           ": need 1 <= MIN <= MAX <= " + std::to_string(kMaxHosts));
  return Joiner(kv, options, job_start).Run();
}

}  // namespace gemini
