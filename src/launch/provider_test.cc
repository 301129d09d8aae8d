// One suite over every MachineProvider (the fake and the command provider),
// and ProviderService's rules over each: only hosts the plan replaces get a
// machine, every request is looked at once.
#include "launch/provider.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/cluster/plan.h"
#include "coord/fake_kv_store.h"
#include "coord/prefix_kv_store.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

// A provider under test and what it was observed to do.
class Subject {
 public:
  virtual ~Subject() = default;
  virtual MachineProvider& provider() = 0;
  virtual std::vector<uint32_t> asked() = 0;  // Hosts a machine was brought up for.
  virtual void Fail(bool fail) = 0;           // Make the next Replace() fail.
};

class FakeSubject : public Subject {
 public:
  MachineProvider& provider() override { return fake_; }
  std::vector<uint32_t> asked() override { return fake_.asked(); }
  void Fail(bool fail) override { fake_.set_fail(fail); }

 private:
  FakeProvider fake_;
};

// The command appends "<host> <job>" to a file, as a script that starts a
// machine would use $GEMINI_REPLACE_HOST and $GEMINI_JOB.
class CommandSubject : public Subject {
 public:
  CommandSubject()
      : dir_(std::filesystem::temp_directory_path() /
             ("gemini-provider-test-" + std::to_string(getpid()))),
        command_(dir_.string()) {
    std::filesystem::create_directories(dir_);
  }
  ~CommandSubject() override { std::filesystem::remove_all(dir_); }
  MachineProvider& provider() override { return command_; }
  std::vector<uint32_t> asked() override {
    std::vector<uint32_t> hosts;
    std::ifstream in(dir_ / "asked");
    uint32_t host;
    std::string job;
    while (in >> host >> job) {
      EXPECT_EQ(job, "pjob");
      hosts.push_back(host);
    }
    return hosts;
  }
  void Fail(bool fail) override {
    if (fail)
      std::ofstream(dir_ / "fail") << "";
    else
      std::filesystem::remove(dir_ / "fail");
  }

 private:
  struct Provider : CommandProvider {
    explicit Provider(const std::string& dir)
        : CommandProvider("if [ -e '" + dir +
                              "/fail' ]; then exit 3; fi; echo \"$GEMINI_REPLACE_HOST " +
                              "$GEMINI_JOB\" >> '" + dir + "/asked'",
                          "pjob", 10s) {}
  };
  std::filesystem::path dir_;
  Provider command_;
};

using Factory = std::unique_ptr<Subject> (*)();

class MachineProviderTest : public ::testing::TestWithParam<Factory> {
 protected:
  std::unique_ptr<Subject> subject_ = GetParam()();
};

TEST_P(MachineProviderTest, BringsUpAMachineForTheHost) {
  ASSERT_TRUE(subject_->provider().Replace(2).ok());
  ASSERT_TRUE(subject_->provider().Replace(5).ok());
  EXPECT_EQ(subject_->asked(), (std::vector<uint32_t>{2, 5}));
}

TEST_P(MachineProviderTest, SaysWhenItCannot) {
  subject_->Fail(true);
  Status st = subject_->provider().Replace(1);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(subject_->asked().empty());
  subject_->Fail(false);
  EXPECT_TRUE(subject_->provider().Replace(1).ok());
}

Plan Preparing(std::vector<uint32_t> failed, std::string kind = "hardware") {
  Plan p;
  p.epoch = 3;
  p.state = "preparing";
  p.kind = std::move(kind);
  p.failed_hosts = std::move(failed);
  return p;
}

TEST_P(MachineProviderTest, ServesOnlyHostsThePlanReplaces) {
  auto kv = std::make_shared<PrefixKvStore>(std::make_shared<FakeKvStore>(), "/gemini/pjob/");
  auto put = [&](const std::string& k, const std::string& v) {
    ASSERT_TRUE(kv->Put(k, v, DeadlineAfter(1s)).ok());
  };
  std::vector<std::string> said;
  ProviderService service(kv, &subject_->provider(),
                          [&](const std::string& line) { said.push_back(line); });
  put("provider/requests/2", "3");
  EXPECT_EQ(service.ServeOnce(), 0);  // No plan yet: nothing to judge by; kept.
  put("plan", EncodePlan(Preparing({2})));
  put("provider/requests/1", "3");    // A live host: would be a second agent on host 1.
  put("provider/requests/abc", "3");  // Garbage.
  EXPECT_EQ(service.ServeOnce(), 1);
  EXPECT_EQ(subject_->asked(), (std::vector<uint32_t>{2}));
  EXPECT_EQ(kv->GetPrefix("provider/requests/", DeadlineAfter(1s))->kvs.size(), 0u);
  EXPECT_EQ(said.size(), 3u);
  // A shrink plan takes no machine.
  put("plan", EncodePlan(Preparing({4}, "shrink")));
  put("provider/requests/4", "3");
  EXPECT_EQ(service.ServeOnce(), 0);
  EXPECT_EQ(subject_->asked(), (std::vector<uint32_t>{2}));
}

// A provider that fails is tried again later while the request stands, and
// given up on (the request deleted) after the last try.
TEST_P(MachineProviderTest, AFailedRequestIsTriedAgainThenGivenUp) {
  auto kv = std::make_shared<PrefixKvStore>(std::make_shared<FakeKvStore>(), "/gemini/pjob/");
  auto put = [&](const std::string& k, const std::string& v) {
    ASSERT_TRUE(kv->Put(k, v, DeadlineAfter(1s)).ok());
  };
  auto requests = [&] {
    return kv->GetPrefix("provider/requests/", DeadlineAfter(1s))->kvs.size();
  };
  std::vector<std::string> said;
  ProviderService service(
      kv, &subject_->provider(), [&](const std::string& line) { said.push_back(line); }, 3, 0ms);
  put("plan", EncodePlan(Preparing({4, 6})));
  subject_->Fail(true);
  put("provider/requests/4", "3");
  EXPECT_EQ(service.ServeOnce(), 0);
  EXPECT_EQ(requests(), 1u);  // Kept for the next try.
  EXPECT_TRUE(service.RetryDue());
  subject_->Fail(false);
  EXPECT_EQ(service.ServeOnce(), 1);
  EXPECT_EQ(subject_->asked(), (std::vector<uint32_t>{4}));
  EXPECT_EQ(requests(), 0u);
  EXPECT_FALSE(service.RetryDue());
  subject_->Fail(true);
  put("provider/requests/6", "3");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(service.ServeOnce(), 0);
  EXPECT_EQ(requests(), 0u);  // Three tries: given up.
  EXPECT_NE(said.back().find("gave up after 3 tries"), std::string::npos) << said.back();
  EXPECT_FALSE(service.RetryDue());
}

INSTANTIATE_TEST_SUITE_P(
    Providers, MachineProviderTest,
    ::testing::Values(
        +[]() -> std::unique_ptr<Subject> { return std::make_unique<FakeSubject>(); },
        +[]() -> std::unique_ptr<Subject> { return std::make_unique<CommandSubject>(); }),
    [](const auto& info) { return info.index == 0 ? std::string("Fake") : "Command"; });

TEST(CommandProvider, ACommandThatDoesNotReturnIsAnError) {
  CommandProvider slow("sleep 5", "pjob", 200ms);
  EXPECT_EQ(slow.Replace(1).code(), Code::kDeadlineExceeded);
}

}  // namespace
}  // namespace gemini
