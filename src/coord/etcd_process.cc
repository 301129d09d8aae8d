#include "coord/etcd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/paths.h"
#include "coord/etcd_kv_store.h"

namespace gemini {
namespace {

int FreePort(const std::string& host) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof(addr);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1 &&
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// The last bytes of the log file, for error messages.
std::string LogTail(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr size_t kTail = 1500;
  return all.size() > kTail ? all.substr(all.size() - kTail) : all;
}

std::string Url(const std::string& host, int port, bool tls = false) {
  return (tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

}  // namespace

int EtcdProcess::PickPort(const std::string& host) { return FreePort(host); }

Status EtcdProcess::AwaitReady() {
  Status st = WaitReady(start_timeout_, probe_tls_);
  if (st.ok()) return st;
  return Status(st.code(), st.message() + "; etcd log: " + LogTail(log_path_));
}

std::string DefaultEtcdBinary() {
  if (const char* env = std::getenv("GEMINI_ETCD"); env != nullptr && *env != '\0') return env;
  auto found = FindOnPath("etcd");
  return found.ok() ? *found : "/usr/bin/etcd";
}

Result<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(EtcdProcessOptions options) {
  if (options.binary.empty()) options.binary = DefaultEtcdBinary();
  if (::access(options.binary.c_str(), X_OK) != 0) {
    return NotFound("etcd binary not found or not executable: " + options.binary +
                    " (install Debian's etcd-server, put etcd on PATH or set GEMINI_ETCD)");
  }
  std::unique_ptr<EtcdProcess> p(new EtcdProcess());
  char tmpl[] = "/tmp/gemini-etcd-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return ErrnoStatus("mkdtemp", errno);
  p->temp_dir_ = tmpl;
  p->log_path_ = p->temp_dir_ + "/etcd.log";
  p->start_timeout_ = options.start_timeout;
  p->probe_tls_ = options.probe_tls;
  const bool own_data = options.data_dir.empty();
  if (own_data) options.data_dir = p->temp_dir_ + "/data";
  const bool pick = options.client_port == 0 || options.peer_port == 0;
  Status st;
  for (int attempt = 0; attempt < (pick ? 3 : 1); ++attempt) {
    int client = options.client_port != 0 ? options.client_port : FreePort(options.host);
    int peer = options.peer_port != 0 ? options.peer_port : FreePort(options.host);
    if (client == 0 || peer == 0 || client == peer) {
      st = Unavailable("etcd: no free port on " + options.host);
      continue;
    }
    st = p->Launch(options, client, peer);
    if (st.ok() && options.wait_ready) st = p->WaitReady(options.start_timeout, options.probe_tls);
    if (st.ok()) return p;
    p->Kill();
    std::error_code ec;
    if (own_data) std::filesystem::remove_all(options.data_dir, ec);
  }
  // The temporary directory goes with p; keep the end of the log in the error.
  return Status(st.code(), st.message() + "; etcd log: " + LogTail(p->log_path_));
}

Status EtcdProcess::Launch(const EtcdProcessOptions& o, int client_port, int peer_port) {
  const bool tls = !o.server_tls.cert_file.empty();
  endpoint_ = Url(o.host, client_port, tls);
  const std::string peer = Url(o.host, peer_port);
  std::vector<std::string> args = {
      o.binary,
      "--name=" + o.name,
      "--data-dir=" + o.data_dir,
      "--listen-client-urls=" + endpoint_,
      "--advertise-client-urls=" + endpoint_,
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + peer,
      "--initial-cluster=" + (o.initial_cluster.empty() ? o.name + "=" + peer : o.initial_cluster),
      "--log-level=warn",
      "--auto-compaction-mode=periodic",
      "--auto-compaction-retention=" + o.compaction_retention,
      "--quota-backend-bytes=" + std::to_string(o.quota_backend_bytes)};
  if (tls) {
    args.push_back("--cert-file=" + o.server_tls.cert_file);
    args.push_back("--key-file=" + o.server_tls.key_file);
    if (!o.server_tls.ca_file.empty()) {
      args.push_back("--trusted-ca-file=" + o.server_tls.ca_file);
      args.push_back("--client-cert-auth");
    }
  }
  if (o.fast_timers) {
    args.push_back("--heartbeat-interval=" + std::to_string(o.heartbeat_ms));
    args.push_back("--election-timeout=" + std::to_string(o.election_ms));
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return ErrnoStatus("open " + log_path_, errno);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return ErrnoStatus("fork", err);
  }
  if (pid == 0) {  // child: async-signal-safe calls only
    if (o.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  pid_ = pid;
  GEMINI_LOG(INFO) << "[etcd] started pid " << pid_ << " at " << endpoint_;
  return Status::Ok();
}

Status EtcdProcess::WaitReady(std::chrono::milliseconds timeout, const TlsFiles& tls) {
  EtcdOptions eo;
  eo.endpoints = {endpoint_};
  eo.tls = tls;
  EtcdKvStore kv(eo);
  const Deadline deadline = DeadlineAfter(timeout);
  Status last;
  while (std::chrono::steady_clock::now() < deadline) {
    int wstatus = 0;
    if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return Unavailable("etcd exited during startup");
    }
    Result<RangeResult> r =
        kv.GetPrefix("/gemini-ready-probe", DeadlineAfter(std::chrono::seconds(1)));
    if (r.ok()) return Status::Ok();
    last = r.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Unavailable("etcd did not answer within " + std::to_string(timeout.count()) +
                     " ms: " + last.ToString());
}

void EtcdProcess::Stop() {
  Kill();
  if (!temp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
    temp_dir_.clear();
  }
}

void EtcdProcess::Kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int wstatus = 0;
    while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
    }
    GEMINI_LOG(INFO) << "[etcd] stopped pid " << pid_;
    pid_ = -1;
  }
}

EtcdProcess::~EtcdProcess() { Stop(); }

Status EtcdProcess::Pause() {
  if (pid_ <= 0 || ::kill(pid_, SIGSTOP) != 0) return FailedPrecondition("etcd is not running");
  // kill() returns before every thread has stopped; a request sent in that
  // window would still be answered. Wait for the stop to be reported.
  int wstatus = 0;
  pid_t got;
  while ((got = ::waitpid(pid_, &wstatus, WUNTRACED)) < 0 && errno == EINTR) {
  }
  if (got != pid_ || !WIFSTOPPED(wstatus)) return Internal("etcd did not stop on SIGSTOP");
  return Status::Ok();
}

Status EtcdProcess::Resume() {
  if (pid_ <= 0 || ::kill(pid_, SIGCONT) != 0) return FailedPrecondition("etcd is not running");
  return Status::Ok();
}

}  // namespace gemini
