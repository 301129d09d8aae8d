"""The supported PyTorch range, checked when a torch-facing module is imported.

The native extension does not link libtorch, so one build of Gemini serves
every torch release in this range (tested: 2.13 on CPU, 2.11 with CUDA).
"""
MIN_TORCH = (2, 6)
SUPPORTED = ">=2.6,<3"


def _release(version):
    parts = []
    for p in version.split("+")[0].split(".")[:2]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def require_supported_torch():
    """Imports torch; raises ImportError naming the supported range if it is missing or outside it."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"gemini's PyTorch integration needs torch {SUPPORTED} "
                          f"(e.g. pip install torch==2.13.0); importing torch failed: {e}") from e
    found = _release(torch.__version__)
    if found < MIN_TORCH or found[0] >= 3:
        raise ImportError(f"gemini supports torch {SUPPORTED}; this environment has torch "
                          f"{torch.__version__} ({torch.__file__}). Install a supported release, "
                          f"e.g. pip install torch==2.13.0")
    return torch
