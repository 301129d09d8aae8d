"""Gemini: in-memory checkpoints every iteration, fast failure recovery.

The package talks to the machine's `gemini agent` (see README.md):

- ``gemini.torch.Checkpointer``: save/load a PyTorch model + optimizer
  (+ LR scheduler, RNG state, any dict of tensors) every iteration.
- ``gemini.Client`` / ``gemini.AsyncSaver``: the low-level native client,
  for frameworks other than torch.nn.
- ``gemini.cmake_prefix_path``: where CMake finds the C++ client for C++
  trainers (``find_package(gemini CONFIG)``, target ``gemini::client``;
  docs/cpp-client.md), as ``torch.utils.cmake_prefix_path``.

Install with ``pip install .`` from the repository (docs/install.md); the
native module ``_gemini`` is built then. Supported torch: see _torch_version.py.
"""
import os as _os

from ._gemini import AsyncSaver, Client, GeminiError, __version__, default_socket_path  # noqa: F401

# The package is the C++ client's install prefix: include/gemini/client.h,
# lib/libgemini_client.a, lib/cmake/gemini/gemini-config.cmake.
cmake_prefix_path = _os.path.dirname(_os.path.abspath(__file__))

__all__ = ["AsyncSaver", "Client", "GeminiError", "__version__", "cmake_prefix_path",
           "default_socket_path"]
