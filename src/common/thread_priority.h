// Background CPU priority for the calling thread.
//
// The agent's replication threads (sending replicas, receiving them into
// slots) run at a lower CPU priority than training: when cores are short,
// the training processes get them first (the paper's agent moves bytes with
// NICs and copy engines; on a CPU-only host the kernel's TCP work and the
// copies run in these threads). New threads inherit the calling thread's
// value. Linux only: the nice value of one thread (setpriority on its tid).
#pragma once

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace gemini {

// Raises this thread's nice value to `nice` (0..19); never lowers it. Best
// effort: failures are ignored.
inline void SetThreadNice(int nice) {
  if (nice <= 0) return;
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  int current = getpriority(PRIO_PROCESS, tid);
  if (errno == 0 && current >= nice) return;
  setpriority(PRIO_PROCESS, tid, nice > 19 ? 19 : nice);
}

}  // namespace gemini
