// pybind11 binding (placeholder until the store client lands).
#include <pybind11/pybind11.h>
PYBIND11_MODULE(_gemini, m) { m.doc() = "gemini native module"; }
