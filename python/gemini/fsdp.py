"""gemini.fsdp: FSDP2 (fully_shard) checkpoints, kept for one release.

``gemini.fsdp.FSDPCheckpointer(model, optimizer)`` is now
``gemini.torch.Checkpointer(model, optimizer)``, which detects FSDP2/DTensor
shards, captures them through the GPU data path, restores them through the GPU
restore path, and can restore onto another world size. Use that class; this
alias maps the old arguments onto it and warns once.
"""
import warnings

from . import torch as _gt

GeminiError = _gt.GeminiError


class FSDPCheckpointer(_gt.Checkpointer):
    """Deprecated alias of gemini.torch.Checkpointer(model, optimizer).

    Old arguments: job, socket, rng, skip_after_s as there; threads is
    copy_threads; wrap_step=False is asynchronous=False (no step pre-hook);
    pin_restore is ignored (restores always page-lock the slot).
    """

    def __init__(self, model, optimizer, *, job=None, socket=None, threads=None, rng=True,
                 wrap_step=True, skip_after_s=2.0, pin_restore=True, **kwargs):
        warnings.warn("gemini.fsdp.FSDPCheckpointer is deprecated: use "
                      "gemini.torch.Checkpointer(model, optimizer), which covers FSDP2",
                      DeprecationWarning, stacklevel=2)
        super().__init__(model, optimizer, job=job, socket=socket, rng=rng,
                         copy_threads=threads, skip_after_s=skip_after_s,
                         asynchronous=wrap_step, **kwargs)
