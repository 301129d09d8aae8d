// FUZZ_CHECK: the fuzz targets' own invariant check. A broken invariant
// prints what broke and aborts, which libFuzzer records as a crash (a
// finding) with the input that caused it.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                                \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: %s\n", __FILE__, __LINE__, #cond, \
                   (what));                                                                   \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)
