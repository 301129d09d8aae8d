#include "persist/env.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <regex>
#include <set>
#include <thread>

#include "persist/fault_env.h"
#include "persist/layout.h"
#include "persist/test_util.h"

namespace gemini {
namespace {

using persist_test::Names;
using persist_test::ReadBytes;
using persist_test::TempDir;
using persist_test::WriteBytes;

// Plays another host that drew the same temp name at the same moment: the
// first time a temp file is created, it creates that name itself (with its
// own bytes) just before the call goes through.
class SquatterEnv : public PersistEnvWrapper {
 public:
  using PersistEnvWrapper::PersistEnvWrapper;
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    if (squatted_.empty() && path.find(".tmp-") != std::string::npos) {
      squatted_ = path;
      WriteBytes(path, "the other host's bytes");
    }
    return target()->NewWritableFile(path);
  }
  std::string squatted_;
};

TEST(PersistEnvPosix, WriteReadRenameListRemove) {
  TempDir dir;
  PersistEnv* env = PersistEnv::Posix();
  std::string a = dir.path() + "/a", b = dir.path() + "/b";
  auto file = env->NewWritableFile(a);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->Append("hello ", 6).ok());
  ASSERT_TRUE((*file)->Append("world", 5).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  ASSERT_TRUE(env->RenameFile(a, b).ok());
  EXPECT_FALSE(env->FileExists(a));
  ASSERT_EQ(*env->FileSize(b), 11u);
  auto in = env->NewReadableFile(b);
  ASSERT_TRUE(in.ok());
  char buf[16] = {};
  EXPECT_EQ(*(*in)->ReadAt(6, buf, sizeof(buf)), 5u);  // Short only at the end.
  EXPECT_EQ(std::string(buf, 5), "world");
  ASSERT_TRUE(env->SyncDir(dir.path()).ok());
  EXPECT_EQ(*env->ListDir(dir.path()), std::vector<std::string>{"b"});
  ASSERT_TRUE(env->RemoveFile(b).ok());
  EXPECT_TRUE(env->ListDir(dir.path())->empty());
}

TEST(PersistEnvPosix, NewWritableFileNeverTruncatesAnExistingFile) {
  TempDir dir;
  std::string path = dir.path() + "/taken";
  WriteBytes(path, "someone else's");
  auto file = PersistEnv::Posix()->NewWritableFile(path);
  EXPECT_EQ(file.status().code(), Code::kAborted) << file.status().ToString();
  EXPECT_NE(file.status().message().find(path), std::string::npos);
  EXPECT_EQ(ReadBytes(path), "someone else's");
}

TEST(PersistEnvPosix, TempNamesCarryHostPidAndRandomBits) {
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof(host) - 1), 0);
  std::string tag;
  for (const char* c = host; *c != '\0' && tag.size() < 64; ++c)
    tag += (std::isalnum(static_cast<unsigned char>(*c)) || *c == '.' || *c == '_' || *c == '-')
               ? *c
               : '_';
  std::regex shape("/d/f\\.tmp-" + std::regex_replace(tag, std::regex("\\."), "\\.") + "-" +
                   std::to_string(::getpid()) + "-[0-9a-f]{16}");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string name = TempPathFor("/d/f");
    EXPECT_TRUE(std::regex_match(name, shape)) << name;
    seen.insert(name);
  }
  EXPECT_EQ(seen.size(), 1000u);  // No counter: the random part alone tells them apart.
}

TEST(PersistEnvPosix, ATakenTempNameIsSkippedNotClobbered) {
  TempDir dir;
  SquatterEnv env(PersistEnv::Posix());
  std::string path = dir.path() + "/marker";
  ASSERT_TRUE(WriteFileAtomically(&env, path, "mine").ok());
  EXPECT_EQ(ReadBytes(path), "mine");
  ASSERT_FALSE(env.squatted_.empty());
  EXPECT_EQ(ReadBytes(env.squatted_), "the other host's bytes");  // Untouched, not renamed.
  EXPECT_EQ(Names(dir.path()).size(), 2u);                        // Ours and the other host's temp.
}

TEST(PersistEnvPosix, FilesAndDirsAreOwnerOnlyWhateverTheUmask) {
  for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{0277}}) {
    TempDir dir;
    mode_t old = ::umask(mask);
    PersistEnv* env = PersistEnv::Posix();
    Status made = CreateDirs(env, dir.path() + "/a/b");
    auto file = env->NewWritableFile(dir.path() + "/a/b/f");
    Status atomic = WriteFileAtomically(env, dir.path() + "/a/b/g", "x");
    ::umask(old);
    ASSERT_TRUE(made.ok()) << made.ToString();
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ASSERT_TRUE(atomic.ok()) << atomic.ToString();
    auto mode = [](const std::string& p) {
      struct stat st {};
      EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
      return st.st_mode & 07777;
    };
    EXPECT_EQ(mode(dir.path() + "/a"), 0700u) << "umask " << mask;
    EXPECT_EQ(mode(dir.path() + "/a/b"), 0700u) << "umask " << mask;
    EXPECT_EQ(mode(dir.path() + "/a/b/f"), 0600u) << "umask " << mask;
    EXPECT_EQ(mode(dir.path() + "/a/b/g"), 0600u) << "umask " << mask;
  }
}

TEST(PersistEnvPosix, ErrorsNameThePathAndMapErrno) {
  TempDir dir;
  PersistEnv* env = PersistEnv::Posix();
  auto missing = env->NewReadableFile(dir.path() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("/nope"), std::string::npos);
  EXPECT_EQ(env->ListDir(dir.path() + "/nope").status().code(), Code::kNotFound);
  EXPECT_EQ(env->RemoveDir(dir.path() + "/nope").code(), Code::kNotFound);
}

TEST(PersistEnvPosix, CreateDirsIsIdempotent) {
  TempDir dir;
  PersistEnv* env = PersistEnv::Posix();
  std::string deep = dir.path() + "/x/y/z";
  ASSERT_TRUE(CreateDirs(env, deep).ok());
  ASSERT_TRUE(CreateDirs(env, deep).ok());
  EXPECT_FALSE(*env->CreateDir(deep));  // Already there.
  EXPECT_EQ(Names(dir.path() + "/x/y"), std::vector<std::string>{"z"});
}

TEST(PersistEnvPosix, WriteFileAtomicallyReplacesWholeFiles) {
  TempDir dir;
  std::string path = dir.path() + "/f";
  ASSERT_TRUE(WriteFileAtomically(PersistEnv::Posix(), path, "one").ok());
  ASSERT_TRUE(WriteFileAtomically(PersistEnv::Posix(), path, "two!").ok());
  EXPECT_EQ(*ReadSmallFile(PersistEnv::Posix(), path), "two!");
  EXPECT_EQ(Names(dir.path()), std::vector<std::string>{"f"});  // No temp left.
}

TEST(PersistFaultEnv, NoSpaceWritesWhatFitsThenFails) {
  TempDir dir;
  FaultInjectionEnv env(PersistEnv::Posix());
  env.SetSpaceLimit(4);
  auto file = env.NewWritableFile(dir.path() + "/f");
  ASSERT_TRUE(file.ok());
  Status st = (*file)->Append("abcdef", 6);
  EXPECT_EQ(st.code(), Code::kResourceExhausted) << st.ToString();
  (*file)->Close();
  EXPECT_EQ(ReadBytes(dir.path() + "/f"), "abcd");
}

TEST(PersistFaultEnv, ShortWritesAndSyncFailures) {
  TempDir dir;
  FaultInjectionEnv env(PersistEnv::Posix());
  env.SetShortWrites(true);
  env.SetSyncFailure(true);
  auto file = env.NewWritableFile(dir.path() + "/f");
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE((*file)->Append("abcdef", 6).ok());  // The disk lies.
  EXPECT_FALSE((*file)->Sync().ok());
  (*file)->Close();
  EXPECT_EQ(ReadBytes(dir.path() + "/f"), "abc");
}

TEST(PersistFaultEnv, CrashStopsEveryLaterCall) {
  TempDir dir;
  FaultInjectionEnv env(PersistEnv::Posix());
  env.CrashAfter(1);
  ASSERT_TRUE(env.CreateDir(dir.path() + "/d").ok());
  EXPECT_EQ(env.CreateDir(dir.path() + "/e").status().code(), Code::kAborted);
  EXPECT_TRUE(env.crashed());
  EXPECT_FALSE(env.ListDir(dir.path()).ok());
  EXPECT_FALSE(env.FileExists(dir.path() + "/d"));
  EXPECT_EQ(Names(dir.path()), std::vector<std::string>{"d"});
  EXPECT_EQ(env.Log(), std::vector<std::string>{"mkdir " + dir.path() + "/d"});
}

TEST(PersistFaultEnv, HeldWritesWaitForRelease) {
  TempDir dir;
  FaultInjectionEnv env(PersistEnv::Posix());
  env.HoldWrites();
  auto file = env.NewWritableFile(dir.path() + "/f");
  ASSERT_TRUE(file.ok());
  std::thread writer([&] { EXPECT_TRUE((*file)->Append("x", 1).ok()); });
  ASSERT_TRUE(env.WaitUntilHeld(std::chrono::seconds(10)));
  EXPECT_EQ(ReadBytes(dir.path() + "/f"), "");  // Not written while held.
  env.ReleaseWrites();
  writer.join();
  (*file)->Close();
  EXPECT_EQ(ReadBytes(dir.path() + "/f"), "x");
}

}  // namespace
}  // namespace gemini
