"""Gemini: in-memory checkpoints every iteration, fast failure recovery.

The package talks to the machine's `gemini agent` (see README.md):

- ``gemini.torch.Checkpointer``: save/load a PyTorch model + optimizer
  (+ LR scheduler, RNG state, any dict of tensors) every iteration.
- ``gemini.Client`` / ``gemini.AsyncSaver``: the low-level native client,
  for frameworks other than torch.nn.

Install with ``pip install .`` from the repository (docs/install.md); the
native module ``_gemini`` is built then. Supported torch: see _torch_version.py.
"""
from ._gemini import AsyncSaver, Client, GeminiError, __version__, default_socket_path  # noqa: F401

__all__ = ["AsyncSaver", "Client", "GeminiError", "__version__", "default_socket_path"]
