"""gemini.gpu_timeline: where the training's collectives keep the GPU network busy.

The GPU form of the interleave profiler (docs/interleave.md): instead of the
trainer reporting host timestamps, CUDA events are recorded around every
collective the training issues through torch.distributed (FSDP2's all-gathers
and reduce-scatters, DDP's all-reduces). From one iteration's events:

  * busy intervals: [start, end] of each collective on the GPU, relative to the
    iteration's start event, merged where they overlap;
  * idle spans: the gaps between them, each anchored at the collective that
    ends it (its index in the iteration), plus the span from the last
    collective to the optimizer step.

The anchor matters to the executor (gemini.gpu_replica): in the next iteration
it makes the replication stream wait for the *end event* of the same
collective, so the chunks planned for a span start on the GPU when that span
opens, whatever the host is doing.

    probe = CollectiveProbe().install()
    probe.begin_iteration()          # at the start of each iteration
    ... forward / backward ...
    probe.before_step()              # just before optimizer.step()
    spans = probe.profile()          # after the iteration has run (syncs events)

Collectives of excluded process groups (the replication's own) are not
recorded. The wrapper records an event on the calling stream before the call;
after it, either on the calling stream (synchronous op: torch made that stream
wait for the collective) or, for async_op=True, on a probe stream made to wait
for the returned Work. Both orders are those torch's NCCL backend documents.
"""
from ._torch_version import require_supported_torch

require_supported_torch()  # A clear error for a missing or unsupported torch.
import torch  # noqa: E402
import torch.distributed as dist

_PATCHED = ("all_gather_into_tensor", "reduce_scatter_tensor", "all_reduce", "all_gather",
            "reduce_scatter", "_all_gather_base", "_reduce_scatter_base", "broadcast")


class _Op:
    __slots__ = ("name", "start", "end")

    def __init__(self, name, start, end):
        self.name, self.start, self.end = name, start, end


class CollectiveProbe:
    """Records CUDA events around torch.distributed collectives.

    on_op_end(index, end_event): optional callback, called on the host right
    after the index-th collective of the iteration is issued (the executor
    hangs chunk sends on it).
    """

    def __init__(self, exclude_groups=(), on_op_end=None):
        self.exclude = list(exclude_groups)
        self.on_op_end = on_op_end
        self.ops = []
        self.iter_start = None
        self.step_event = None
        self.previous = None
        self.active = False
        self._stream = None
        self._saved = {}

    # ------------------------------------------------------------ install
    def install(self):
        for name in _PATCHED:
            fn = getattr(dist, name, None)
            if fn is None or name in self._saved:
                continue
            self._saved[name] = fn
            setattr(dist, name, self._wrap(name, fn))
        return self

    def uninstall(self):
        for name, fn in self._saved.items():
            setattr(dist, name, fn)
        self._saved.clear()

    def _wrap(self, name, fn):
        probe = self

        def collective(*args, **kwargs):
            group = kwargs.get("group")
            if not probe.active or any(group is g for g in probe.exclude):
                return fn(*args, **kwargs)
            start = torch.cuda.Event(enable_timing=True)
            start.record()
            work = fn(*args, **kwargs)
            end = torch.cuda.Event(enable_timing=True)
            if work is not None and hasattr(work, "wait"):
                if probe._stream is None:
                    probe._stream = torch.cuda.Stream()
                with torch.cuda.stream(probe._stream):
                    work.wait()  # This stream now waits for the collective, on the GPU.
                    end.record()
            else:
                end.record()
            probe.ops.append(_Op(name, start, end))
            if probe.on_op_end is not None:
                probe.on_op_end(len(probe.ops) - 1, end)
            return work

        collective.__wrapped__ = fn
        return collective

    # ---------------------------------------------------------- iteration
    def begin_iteration(self):
        """Starts recording a new iteration (events on the current stream); the
        one before is kept for profile(previous=True)."""
        if self.iter_start is not None and self.step_event is not None:
            self.previous = (self.ops, self.iter_start, self.step_event)
        self.ops = []
        self.iter_start = torch.cuda.Event(enable_timing=True)
        self.iter_start.record()
        self.step_event = None
        self.active = True

    def before_step(self):
        """Marks the optimizer step: the end of the last idle span."""
        self.step_event = torch.cuda.Event(enable_timing=True)
        self.step_event.record()

    def profile(self, previous=False):
        """The recorded iteration as a dict (synchronizes its events):

        ops:   [(name, start_ms, end_ms)] relative to the iteration start
        busy:  merged busy intervals [(start_ms, end_ms)]
        spans: idle spans [(anchor, start_ms, length_ms)]; anchor is the index
               of the op whose end opens the span (-1: the iteration start)
        step_ms, busy_ms, idle_ms
        """
        if previous:
            if self.previous is None:
                raise RuntimeError("profile(previous=True): no finished iteration yet")
            recorded, t0, step = self.previous
        else:
            if self.iter_start is None or self.step_event is None:
                raise RuntimeError("profile(): call begin_iteration() and before_step() first")
            recorded, t0, step = self.ops, self.iter_start, self.step_event
        step.synchronize()
        for op in recorded:
            op.end.synchronize()
        ops = [(op.name, t0.elapsed_time(op.start), t0.elapsed_time(op.end)) for op in recorded]
        return spans_from_ops(ops, t0.elapsed_time(step))


def spans_from_ops(ops, step_ms):
    """One iteration's collectives [(name, start_ms, end_ms)] (relative to its
    start) and the time of its optimizer step -> the dict profile() returns:
    busy intervals merged where they overlap, and the idle spans between them,
    each anchored at the op whose end opens it (-1: the iteration start)."""
    order = sorted(range(len(ops)), key=lambda i: ops[i][1])
    busy, enders = [], []
    for i in order:
        s, e = max(0.0, ops[i][1]), ops[i][2]
        if busy and s <= busy[-1][1]:
            if e > busy[-1][1]:
                busy[-1][1], enders[-1] = e, i
        else:
            busy.append([s, e])
            enders.append(i)
    spans, at, anchor = [], 0.0, -1
    for (s, e), i in zip(busy, enders):
        if s > at:
            spans.append((anchor, at, s - at))
        at, anchor = max(at, e), i
    if step_ms > at:
        spans.append((anchor, at, step_ms - at))
    busy_ms = sum(e - s for s, e in busy)
    return {"ops": list(ops), "busy": [tuple(b) for b in busy], "spans": spans,
            "step_ms": step_ms, "busy_ms": busy_ms, "idle_ms": step_ms - busy_ms}
