#include "launch/provider.h"

#include <algorithm>
#include <iostream>

#include "agent/cluster/coord_records.h"
#include "agent/cluster/plan.h"
#include "common/subprocess.h"

namespace gemini {
namespace {

constexpr std::chrono::milliseconds kCall{2000};

}  // namespace

CommandProvider::CommandProvider(std::string command, std::string job,
                                 std::chrono::milliseconds timeout, std::string log_file)
    : command_(std::move(command)),
      job_(std::move(job)),
      timeout_(timeout),
      log_file_(std::move(log_file)) {}

Status CommandProvider::Replace(uint32_t host) {
  if (command_.empty()) return InvalidArgument("no provider command");
  // Not captured: a machine started in the background keeps no pipe open.
  GEMINI_ASSIGN_OR_RETURN(
      auto shell,
      Subprocess::Start({"/bin/sh", "-c", command_},
                        {{"GEMINI_REPLACE_HOST", std::to_string(host)}, {"GEMINI_JOB", job_}},
                        /*capture_stdout=*/false, log_file_));
  auto code = shell->Wait(timeout_);
  if (!code.ok())
    return DeadlineExceeded("the provider command for host " + std::to_string(host) +
                            " did not return within " + std::to_string(timeout_.count()) +
                            " ms (it must start the machine and return)");
  if (*code != 0)
    return Unavailable("the provider command for host " + std::to_string(host) +
                       " exited with status " + std::to_string(*code));
  return Status::Ok();
}

Status FakeProvider::Replace(uint32_t host) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fail_) return Unavailable("no machine left");
  asked_.push_back(host);
  return Status::Ok();
}

std::vector<uint32_t> FakeProvider::asked() {
  std::lock_guard<std::mutex> lock(mu_);
  return asked_;
}

void FakeProvider::set_fail(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_ = fail;
}

ProviderService::ProviderService(std::shared_ptr<KvStore> job_kv, MachineProvider* provider,
                                 Log log, int tries, std::chrono::milliseconds retry_after)
    : kv_(std::move(job_kv)),
      provider_(provider),
      log_(std::move(log)),
      tries_(std::max(1, tries)),
      retry_after_(retry_after) {}

bool ProviderService::RetryDue() {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [request, f] : failed_)
    if (f.next <= now) return true;
  return false;
}

int ProviderService::ServeOnce() {
  auto reqs = kv_->GetPrefix("provider/requests/", DeadlineAfter(kCall));
  if (!reqs.ok() || reqs->kvs.empty()) return 0;
  auto cur = kv_->Get("plan", DeadlineAfter(kCall));
  auto plan = cur.ok() ? DecodePlan(cur->value) : Result<Plan>(cur.status());
  if (!plan.ok()) return 0;  // No plan to judge by now: the next pass.
  int asked = 0;
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, Failed> still_failed;
  for (const KeyValue& r : reqs->kvs) {
    const std::string request = r.key + "=" + r.value;
    Failed f = failed_.count(request) ? failed_[request] : Failed{};
    auto id = KeyId(r.key);
    if (!id.ok() || !plan->Replaces(*id)) {
      log_("provider: ignoring request " + r.key + " (not a host the plan of epoch " +
           std::to_string(plan->epoch) + " replaces)");
    } else if (f.tries > 0 && now < f.next) {
      still_failed[request] = f;  // Not yet due again.
      continue;
    } else {
      Status st = provider_->Replace(*id);
      ++f.tries;
      if (st.ok()) {
        log_("provider: a new machine replaces host " + std::to_string(*id));
        ++asked;
      } else if (f.tries < tries_) {
        log_("provider: could not replace host " + std::to_string(*id) + ": " + st.ToString() +
             "; trying again in " + std::to_string(retry_after_.count()) + " ms");
        f.next = now + retry_after_;
        still_failed[request] = f;
        continue;  // The request stays.
      } else {
        log_("provider: could not replace host " + std::to_string(*id) + ": " + st.ToString() +
             "; gave up after " + std::to_string(f.tries) + " tries");
      }
    }
    (void)kv_->Delete(r.key, DeadlineAfter(kCall));
  }
  failed_.swap(still_failed);  // Requests gone from etcd are forgotten.
  return asked;
}

}  // namespace gemini
