"""gemini.torch: checkpoint a PyTorch training job into CPU memory every iteration.

    ckpt = gemini.torch.Checkpointer(model, optimizer, lr_scheduler=sched)
    start = ckpt.load_latest() or 0          # restored step, or None on a fresh start
    for step in range(start + 1, steps + 1):
        loss = model(batch(step)).sum(); loss.backward()
        optimizer.step(); optimizer.zero_grad()
        ckpt.save(step)                      # returns once the copy is scheduled

The copy into the agent's shared memory runs on a native thread; the next
``optimizer.step()`` waits for it only if it has not finished (a step pre-hook
that the checkpointer registers on the optimizer).

Non-tensor state (hyper-parameters, scheduler and RNG state) is stored as
JSON through ``gemini.codec``, never pickled: a tampered checkpoint cannot run
code when it is restored. Agreement among ranks on load runs on a gloo group
of the checkpointer's own, so jobs whose default group is NCCL work too.

Traffic interleaving (docs/interleave.md): call ``ckpt.begin_iteration(step)``
at the top of each iteration and register ``ckpt.comm_hook()`` on the DDP
model; the agent then learns the training traffic's idle spans and sends the
replicas in them. The checkpointer waits where the agent's mode says: before
the next iteration (naive mode, and while the profile warms up) or before the
next optimizer step for what did not fit in the spans (interleave). When the
idle time is too short for a checkpoint every iteration, the agent asks for
one every k-th iteration and ``save`` skips the others. Model buffers, optimizer
hyper-parameters, scheduler and RNG state are captured synchronously (they
are small); parameters and optimizer tensors asynchronously.

CUDA tensors (DDP on NCCL, FSDP2 on GPUs) take the GPU data path when Gemini is
built with CUDA: save() records where the current stream is and returns; a
native thread copies every tensor device-to-host on its own stream straight
into the agent's page-locked slot while a kernel checksums the tensors on the
GPU, and commits; the next optimizer step waits for the copies on the GPU,
not the host. ``load_latest`` restores such state (when each rank stores its
own whole) by checking every chunk in the agent's slot and copying it
host-to-device into the tensors. Without a CUDA build, CUDA tensors are copied
to host memory synchronously (with a warning).

With DistributedDataParallel every rank holds the same state, so ranks split
it: each stores 1/world of the bytes, and ``load_latest`` reassembles it with
an all-gather. ``ZeroRedundancyOptimizer`` state is per rank and stored whole
by its rank. Any dict of tensors can be checkpointed with ``tensors=``.

``load_latest`` restores onto another world size too (DDP state, FSDP2 /
DTensor shards: gemini.reshard). Saves then go to this world size's
generation of the job (``JOB.worldN`` when JOB holds another world size), and the
older generation is dropped once a newer checkpoint is complete
(gemini.generations).
"""
import collections
import json
import logging
import math
import os
import random
import statistics
import time
import warnings

import numpy as np
from ._torch_version import require_supported_torch

require_supported_torch()  # A clear error for a missing or unsupported torch.
import torch  # noqa: E402
import torch.distributed as dist

from . import _gemini, codec, generations, reshard, shards
from .state import (DTYPES, DTensor, as_cpu_contiguous, as_dtensor_like, assemble, entry,
                    local_part, split_entries, views)

try:  # Built with -DGEMINI_CUDA=ON: pinned asynchronous device-to-host capture.
    from . import _gemini_cuda
except ImportError:
    _gemini_cuda = None

GeminiError = _gemini.GeminiError
_log = logging.getLogger("gemini.torch")


def _dist_on():
    return dist.is_available() and dist.is_initialized()


def _rng_state():
    s = {"torch": torch.get_rng_state().numpy().tobytes(), "python": random.getstate(),
         "numpy": np.random.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        s["cuda"] = [t.numpy().tobytes() for t in torch.cuda.get_rng_state_all()]
    return s


def _as_byte_tensor(b):
    return torch.frombuffer(bytearray(b), dtype=torch.uint8)


def _set_rng_state(s):
    torch.set_rng_state(_as_byte_tensor(s["torch"]))
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_as_byte_tensor(b) for b in s["cuda"]])


def state_crc(model=None, optimizer=None):
    """CRC32C over a model's and optimizer's tensors in a canonical order (names
    sorted, DDP's "module." prefix dropped, optimizer state by parameter index),
    so identical states give identical CRCs whatever the world layout."""
    crc = 0
    def add(t):
        nonlocal crc
        t = as_cpu_contiguous(t)
        crc = _gemini.crc32c(t.data_ptr(), t.numel() * t.element_size(), crc)
    if model is not None:
        sd = model.state_dict()
        for k in sorted(sd, key=lambda k: k.removeprefix("module.")):
            add(sd[k])
    if optimizer is not None:
        st = optimizer.state_dict()["state"]
        for pid in sorted(st):
            for k in sorted(st[pid]):
                if torch.is_tensor(st[pid][k]):
                    add(st[pid][k])
    return crc


class Checkpointer:
    """Per-iteration in-memory checkpoints of a model, optimizer and friends.

    Args:
      model: a torch.nn.Module (DDP-wrapped or not), or None.
      state: instead of (or besides) the arguments above, a dict in the
        torch.distributed.checkpoint Stateful convention: name -> a Module, an
        Optimizer, an LRScheduler (one of each), a tensor (restored in place),
        any Stateful object (``state_dict()`` / ``load_state_dict()``: a
        dataloader, ``torch.amp.GradScaler``, your own), or a plain value
        (restored into this dict). Non-tensor values must be gemini.codec values.
      optimizer: a torch.optim.Optimizer (or ZeroRedundancyOptimizer), or None.
      tensors: a dict name -> tensor of extra state (any framework); restored in place.
      lr_scheduler: restored with load_state_dict when given.
      rng: capture and restore torch/python/numpy RNG state (default True).
      job: job name (default $GEMINI_JOB or "default"); one store namespace per job.
      socket: the agent's socket (default $GEMINI_SOCKET or /run/gemini/agent.sock).
      replicated: whether model/optimizer state is the same on every rank (so ranks
        split it). Default: True when torch.distributed is initialized with world > 1.
      asynchronous: copy off the training thread (default True).
      copy_threads: native threads per copy (default 1; on the GPU path, the
        threads computing CRC32C as the copies land: default this rank's share
        of the CPUs, 4 to 16).
      skip_after_s: a save waits at most this long for the previous iteration to be
        complete on every rank and replica (its slot cannot be reused before); then
        this iteration's checkpoint is skipped, not training (default 2 s). This is
        what keeps training going while coordination (etcd) is down.
      interleave: report the training timeline to the agent and follow its
        checkpoint schedule (default True; only active once begin_iteration is called).
      due_timeout_s: longest wait for replicas that are due; then training goes on
        and the iteration is counted in stats["due_timeouts"] (default 60 s).
      overhead_budget: the share of iteration time checkpoints may cost training
        (save() blocking plus the step's waits for the copy), default
        $GEMINI_OVERHEAD_BUDGET or 0.02. When a
        checkpoint costs more, every k-th iteration is checkpointed (k in
        stats["every_k"], the reason in stats["every_k_reason"] and a log line);
        0 turns the budget off.

    With torch.distributed initialized, every rank must construct its
    Checkpointer at the same point (it creates a gloo process group when the
    default backend is not gloo).
    """

    def __init__(self, model=None, optimizer=None, *, state=None, tensors=None,
                 lr_scheduler=None, rng=True, job=None, socket=None, replicated=None,
                 asynchronous=True, copy_threads=None, skip_after_s=2.0, interleave=True,
                 due_timeout_s=60.0, overhead_budget=None):
        self.model, self.optimizer, self.lr_scheduler = model, optimizer, lr_scheduler
        self.tensors = dict(tensors or {})
        self.statefuls, self.values = {}, {}
        self._state = state
        for name, v in (state or {}).items():
            self._add_state(str(name), v)
        self.rng = rng
        self.job = job or os.environ.get("GEMINI_JOB", "default")
        # The store job saves go to: this world size's generation of `job`
        # (gemini.generations), settled by load_latest or the first save.
        self.store_job, self._plan = self.job, None
        self._dtensor_chunks = {}  # Entry name -> its DTensor chunk's place (reshard.chunk_of).
        self.rank = dist.get_rank() if _dist_on() else int(os.environ.get("RANK", 0))
        self.world = dist.get_world_size() if _dist_on() else int(os.environ.get("WORLD_SIZE", 1))
        if not _dist_on():
            self.rank, self.world = 0, 1  # Without a process group there is no reassembly.
        # FSDP2 / DTensor parameters: every rank holds its own shards, stored whole.
        self._sharded = self.model is not None and any(
            isinstance(p, DTensor) for p in self.model.parameters())
        if replicated is None:
            replicated = self.world > 1 and not self._sharded
        self.replicated = bool(replicated)
        self.copy_threads = 1 if copy_threads is None else int(copy_threads)
        # GPU path: the CRC threads must keep up with the copies (~50 GiB/s on
        # PCIe 5): this rank's share of the machine's CPUs, at least 4, at most 16.
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        self._gpu_threads = (max(4, min(16, (os.cpu_count() or 4) // local))
                             if copy_threads is None else int(copy_threads))
        self._socket = socket or _gemini.default_socket_path()
        self.client = _gemini.Client(self._socket)
        self.saver = _gemini.AsyncSaver(self.client) if asynchronous else None
        self._gpu = None  # The GPU data path's saver, made at the first save of CUDA tensors.
        self._gpu_warned = False
        self._in_flight = None  # The saver of the in-flight copy (CPU or GPU), if any.
        self._submitted_at = self._step_at = None  # Of the in-flight GPU copy.
        self._held = None  # Tensors the in-flight copy reads; kept alive until it ends.
        self.skip_after_ms = int(skip_after_s * 1000)
        self.due_timeout_s = float(due_timeout_s)
        self.stats = {"saves": 0, "skipped": 0, "unprotected_since": None, "blocking_ms": [], "copy_s": [],
                      "every_k": 1, "every_k_reason": "",
                      "not_due": 0, "wait_iteration_ms": [], "wait_step_ms": [],
                      "due_timeouts": 0}
        self.timeline = None
        if interleave:
            try:
                self.timeline = _gemini.TimelineClient(socket or _gemini.default_socket_path())
            except GeminiError as e:
                warnings.warn(f"gemini: no timeline channel to the agent: {e}", RuntimeWarning)
        self.schedule = {"mode": "none", "ready": False, "every_k": 1}
        self._it = None  # The iteration begin_iteration() announced.
        self._was_ready = False  # The previous iteration's schedule was ready.
        self._next_save = 0  # With interleaving: the first step that may be checkpointed.
        self._last_saved = -(1 << 62)  # The last step checkpointed.
        if overhead_budget is None:
            overhead_budget = os.environ.get("GEMINI_OVERHEAD_BUDGET", "0.02")
        self.overhead_budget = float(overhead_budget)
        self._k_wanted = self._k_capture = 1  # Capture k: this rank's wish, the agreed one.
        self._reported_k = 1  # The k the agent was last told of.
        self._warm_up = False  # The in-flight checkpoint page-locked a slot (once per slot).
        self._last_call = self._iter_s = self._cost_s = None
        self._costs = collections.deque(maxlen=5)  # Recent checkpoints' costs to training.
        # Recent iteration times; their median is the iteration time (a slot's
        # page-locking or a data-loading hiccup must not inflate the budget).
        self._recent = collections.deque(maxlen=16)
        self._pending_cost = 0.0
        self.last_timeline = []  # (kind, op, monotonic time) reported in this iteration.
        self._op = 0
        self._zero = optimizer is not None and hasattr(optimizer, "consolidate_state_dict")
        # Agreement on load runs on gloo (CPU tensors), whatever the default backend.
        self._group = None
        if self.world > 1 and dist.get_backend() != "gloo":
            self._group = dist.new_group(backend="gloo")
        self._step_hook = None
        if optimizer is not None and asynchronous:
            self._step_hook = optimizer.register_step_pre_hook(self._before_step)

    def _add_state(self, name, v):
        def one(attr, kind):
            if getattr(self, attr) is not None:
                raise ValueError(f"gemini: state[{name!r}]: a second {kind}; a Checkpointer "
                                 f"takes one (wrap several in one Module, or use one "
                                 f"Checkpointer per {kind})")
            setattr(self, attr, v)
        if isinstance(v, torch.nn.Module):
            one("model", "Module")
        elif isinstance(v, torch.optim.Optimizer):
            one("optimizer", "Optimizer")
        elif isinstance(v, torch.optim.lr_scheduler.LRScheduler):
            one("lr_scheduler", "LRScheduler")
        elif torch.is_tensor(v):
            self.tensors[name] = v
        elif callable(getattr(v, "state_dict", None)) and callable(
                getattr(v, "load_state_dict", None)):
            self.statefuls[name] = v
        else:
            codec.dumps(v)  # A clear TypeError now, not at the first save.
            self.values[name] = name

    # ----------------------------------------------------------------- saving
    def _before_step(self, optimizer, args, kwargs):
        """Optimizer step pre-hook: the step may not write tensors still being copied."""
        if self._it is not None:
            self._report(4, -1)
        if self._in_flight is not None and self._in_flight is self._gpu:
            # GPU path: the step's stream waits for the copies on the GPU; the
            # host waits only until they are enqueued.
            t0 = time.perf_counter()
            if self._step_at is None:
                self._step_at = t0
            self._gpu.before_step(torch.cuda.current_stream().cuda_stream)
            self._pending_cost += time.perf_counter() - t0
        else:
            self.wait()
        if self._it is not None:
            self._wait_due(before_step=True)

    # ---------------------------------------------------------- interleaving
    def _report(self, kind, op, it=None):
        self.last_timeline.append((kind, op, time.monotonic()))
        try:
            self.timeline.report(self.store_job, self.rank, self._it if it is None else it, kind,
                                 op, _gemini.TimelineClient.now())
        except GeminiError:
            pass  # The agent went away: saves will say so.

    def _wait_due(self, before_step):
        t0 = time.perf_counter()
        try:
            self.timeline.wait_due(self.store_job, self.rank, self._it, before_step,
                                   self.due_timeout_s)
        except GeminiError as e:
            if e.code != "DEADLINE_EXCEEDED":
                raise
            self.stats["due_timeouts"] += 1
            warnings.warn(f"gemini: replicas due before iteration {self._it} not done in "
                          f"{self.due_timeout_s} s; training goes on", RuntimeWarning)
        key = "wait_step_ms" if before_step else "wait_iteration_ms"
        self.stats[key].append((time.perf_counter() - t0) * 1e3)

    def begin_iteration(self, step):
        """Call at the top of every iteration, before the forward pass (on every rank)."""
        if self._plan is None:
            self._settle_generation()
        if self.timeline is None:
            if self.world > 1:
                self._agree(1, dist.ReduceOp.MAX)  # Still take part in the agreement below.
            return
        self._it, self._op = int(step), 0
        self.last_timeline = []
        self.schedule = json.loads(self.timeline.schedule(self.store_job))
        if self.world > 1:
            # Each agent derives k from its own profile; ranks must checkpoint the
            # same iterations (else no iteration is ever complete on all of them),
            # so they take the largest k, which every agent's plan also meets.
            # One 8-byte allreduce on the checkpointer's gloo group per iteration.
            local_k = int(self.schedule.get("every_k", 1)) if self.schedule.get("ready") else 1
            self.schedule["every_k"] = self._agree(local_k, dist.ReduceOp.MAX)
        mode = self.schedule["mode"]
        # Replicas planned at once (naive mode, or while the profile warmed up,
        # including the last warm-up iteration) are due before this iteration.
        at_once = mode == "naive" or (mode == "interleave" and not (
            self.schedule["ready"] and self._was_ready))
        self._was_ready = bool(self.schedule["ready"])
        if at_once:
            self.wait()  # The previous capture is committed, so its replicas are planned.
            self._wait_due(before_step=False)
        self._report(1, -1)

    def comm_hook(self, inner=None):
        """A DDP communication hook that reports each bucket's allreduce to the agent.

        `inner(state, bucket) -> Future[Tensor]` is the hook to wrap (default:
        allreduce and average). Register it with ``ddp.register_comm_hook(None, hook)``.
        """
        def allreduce(state, bucket):
            t = bucket.buffer()
            t.div_(dist.get_world_size())
            return dist.all_reduce(t, async_op=True).get_future().then(lambda f: f.value()[0])

        inner = inner or allreduce

        def hook(state, bucket):
            it, op = self._it, self._op
            self._op += 1
            if it is None or self.timeline is None:
                return inner(state, bucket)
            self._report(2, op, it)

            def finished(f):
                self._report(3, op, it)
                return f.value()

            return inner(state, bucket).then(finished)

        return hook

    def _local_optimizer(self):
        return self.optimizer.optim if self._zero else self.optimizer

    def _gpu_path(self):
        """Whether CUDA tensors are captured by the GPU data path (else copied to
        host memory here, synchronously)."""
        if _gemini_cuda is not None:
            return True
        if not self._gpu_warned:
            self._gpu_warned = True
            warnings.warn("gemini: CUDA tensors but Gemini was built without CUDA "
                          "(-DGEMINI_CUDA=ON): each checkpoint copies them to host memory "
                          "synchronously", RuntimeWarning)
        return False

    def _capture(self, t):
        """What a save reads of tensor t: itself (a DTensor's shard) when the data
        path can read it in place, else a contiguous host copy."""
        t = local_part(t).detach()
        if t.is_cuda and self._gpu_path():
            return t if t.is_contiguous() else t.contiguous()
        return as_cpu_contiguous(t)

    def _collect(self, step):
        """(replicated, rank-local) named tensors and the picklable meta."""
        shared, local, meta, chunks = [], [], {"step": step}, {}
        if self.model is not None:
            buffers = {local_part(b).data_ptr() for b in self.model.buffers()}
            for k, v in self.model.state_dict().items():
                if isinstance(v, DTensor):  # Where its chunk lies, for resharding restores.
                    chunks["model." + k] = reshard.chunk_of(self._dtensor_chunks, "model." + k, v)
                # Buffers may change in the next forward pass: snapshot them now.
                v = local_part(v)
                t = v.detach().clone() if v.data_ptr() in buffers else v
                shared.append(("model." + k, self._capture(t)))
        if self.optimizer is not None:
            sd = self._local_optimizer().state_dict()
            plain = {}
            for pid, st in sd["state"].items():
                for k, v in st.items():
                    if torch.is_tensor(v):
                        (local if self._zero else shared).append(
                            (f"optim.{pid}.{k}", self._capture(v)))
                        if isinstance(v, DTensor):
                            chunks[f"optim.{pid}.{k}"] = reshard.chunk_of(
                                self._dtensor_chunks, f"optim.{pid}.{k}", v)
                    else:
                        plain[(pid, k)] = v
            meta["optim"] = {"param_groups": sd["param_groups"], "plain": plain,
                             "pids": list(sd["state"].keys())}
            if self._zero:
                meta["zero"] = True  # Partitioned per rank: cannot be resharded.
        for k, v in self.tensors.items():
            local.append(("tensor." + k, self._capture(v)))
            if isinstance(v, DTensor):
                chunks["tensor." + k] = reshard.chunk_of(self._dtensor_chunks, "tensor." + k, v)
        if chunks:
            meta["dtensor"] = chunks
        if self.lr_scheduler is not None:
            meta["lr_scheduler"] = self.lr_scheduler.state_dict()
        if self.statefuls:
            meta["stateful"] = {k: v.state_dict() for k, v in self.statefuls.items()}
        if self.values:
            meta["values"] = {k: self._state[k] for k in self.values}
        if self.rng:
            meta["rng"] = _rng_state()
        if not self.replicated:
            local, shared = shared + local, []
        return shared, local, meta

    def save(self, step):
        """Checkpoint the state after `step` (call it after optimizer.step(), on every
        rank, every iteration: it decides which iterations are checkpointed)."""
        t0 = time.perf_counter()
        step = int(step)
        if self._plan is None:
            self._settle_generation()
        self._note_iteration(t0, step)
        # Every k-th iteration only, k = the larger of the agent's (interleave:
        # replicas need k iterations of idle spans) and the capture budget's.
        # Counted from the last checkpoint, not by step % k: that one's replicas
        # are due k iterations after it, and its slot may not be overwritten
        # before. (A checkpoint saved while the profile warmed up may have been
        # planned with the k the agent chose on becoming ready: last + k, too.)
        k = self._k_capture
        if self._it is not None:
            k = max(k, int(self.schedule.get("every_k", 1)))
        self.stats["every_k"] = k
        if k != self._reported_k:
            self._report_cadence(k)
        if step < max(self._next_save, self._last_saved + k):
            self.stats["not_due"] += 1
            return
        self._next_save, self._last_saved = step + k, step
        if self._plan.superseded:
            self._drop_superseded(step)
        shared, local, meta = self._collect(step)
        blob = torch.frombuffer(bytearray(codec.dumps(meta)), dtype=torch.uint8)
        local.append(("meta", blob))
        entries = split_entries([("s/" + n, t) for n, t in shared], self.rank, self.world)
        entries += [entry("r/" + n, t) for n, t in local]
        cuda = [t for _, t in shared + local if t.is_cuda]
        if cuda:
            self._submit_gpu(step, entries, (shared, local), cuda[0].device)
        elif self.saver is None:
            try:
                self.client.save(self.store_job, self.rank, self.world, step, entries,
                                 self.copy_threads, 4 << 20, self.skip_after_ms)
                self.stats["unprotected_since"] = None
            except GeminiError as e:
                self._skipped(step, e)
        else:
            self.wait()
            self._account_previous()
            self._held, self._in_flight = (shared, local), self.saver
            self.saver.submit(self.store_job, self.rank, self.world, step, entries,
                              self.copy_threads, 4 << 20, self.skip_after_ms)
        blocking = time.perf_counter() - t0
        self._pending_cost = blocking  # This checkpoint's cost to training so far.
        if self._in_flight is None:  # Synchronous: done already.
            self._account_previous()
        self.stats["saves"] += 1
        self.stats["blocking_ms"].append(blocking * 1e3)

    def _submit_gpu(self, step, entries, held, device):
        """The GPU data path: copies start after the current stream's queued work
        (the step that produced this state); save() does not wait for them."""
        self.wait()
        self._account_previous()
        if self._gpu is None:
            self._gpu = _gemini_cuda.Saver(self._socket, device.index or 0)
        self._held, self._in_flight = held, self._gpu
        self._submitted_at, self._step_at = time.perf_counter(), None
        self._gpu.submit(self.store_job, self.rank, self.world, step, entries,
                         torch.cuda.current_stream(device).cuda_stream, self._gpu_threads,
                         4 << 20, self.skip_after_ms)
        if self.saver is None:  # asynchronous=False: save() returns once committed.
            self.wait()

    # ------------------------------------------------- the overhead budget
    def _note_iteration(self, now, step):
        """Iteration time (between save() calls) and, every 16 steps with several
        ranks, agreement on the capture k (all ranks checkpoint the same steps)."""
        if self._last_call is not None and now > self._last_call:
            dt = now - self._last_call
            self._recent.append(dt)
            self._iter_s = statistics.median(self._recent)
        self._last_call = now
        if self.world > 1 and step % 16 == 0:
            self._k_capture = self._agree(self._k_wanted, dist.ReduceOp.MAX)
        elif self.world == 1:
            self._k_capture = self._k_wanted

    def _report_cadence(self, k):
        """Tells the agent the k in use and why (`gemini status` shows it)."""
        self._reported_k = k
        if k == self._k_capture:
            reason = self.stats["every_k_reason"] or "every iteration fits the overhead budget"
        else:
            reason = ("the agent's interleaving schedule: the replicas of one checkpoint "
                      f"need the idle time of {k} iterations")
        try:
            self.client.set_cadence(self.store_job, self.rank, k, reason[:1024])
        except GeminiError:
            pass  # No checkpoint of this job yet, or an older agent: stats and the log have it.

    def _account_previous(self):
        """The previous checkpoint is done: its cost to training (save() blocking plus
        the step's waits for its copy) against the budget picks the capture k."""
        cost = self._pending_cost
        self._pending_cost = 0.0
        if self._warm_up:
            self._warm_up = False
            return
        if cost <= 0 or self._iter_s is None or self.overhead_budget <= 0:
            return
        # The median of the last few costs: one slow checkpoint (a page fault
        # storm, a first-time allocation) does not move k, and k settles after
        # a few checkpoints instead of drifting like an average would.
        self._costs.append(cost)
        self._cost_s = statistics.median(self._costs)
        allowed = self.overhead_budget * self._iter_s
        k = max(1, min(1000, math.ceil(self._cost_s / allowed - 1e-9)))
        # Hysteresis: k moves only when the new one is 20% away (noise in the
        # cost would otherwise change the cadence at every checkpoint).
        if abs(k - self._k_wanted) > 0.2 * self._k_wanted:
            reason = (f"a checkpoint costs training {self._cost_s * 1e3:.2f} ms (blocking + "
                      f"waits for the copy) against a budget of {self.overhead_budget:.1%} of "
                      f"{self._iter_s * 1e3:.1f} ms iterations: checkpointing every "
                      f"{'iteration' if k == 1 else f'{k} iterations'}")
            _log.warning("gemini: %s", reason)
            self.stats["every_k_reason"] = reason
            self._k_wanted = k

    def wait(self):
        """Block until the in-flight copy (if any) is committed; raises its error."""
        saver = self._in_flight
        if saver is None:
            return
        t0 = time.perf_counter()
        try:
            saver.wait()
            last = saver.last_stats()
            copy_s = last["copy_s"]
            self.stats["copy_s"].append(copy_s)
            self.stats["unprotected_since"] = None
            if saver is self._gpu and self._step_at is not None:
                # The step's stream waited on the GPU for copies still running
                # when it was enqueued (an upper bound: the GPU runs behind the host).
                self._pending_cost += max(0.0, self._submitted_at + copy_s - self._step_at)
            pin_s = last.get("pin_s", 0.0) if saver is self._gpu else 0.0
            if pin_s > 0:
                # Page-locking a slot happens once per slot (the first two
                # checkpoints): a warm-up, not what every checkpoint costs.
                self._warm_up = True
                _log.info("gemini: page-locking a checkpoint slot took %.2f s (once per slot)",
                          pin_s)
        except GeminiError as e:
            self._skipped(saver.last_stats()["iteration"], e)
        finally:
            self._held = self._in_flight = None
            self._pending_cost += time.perf_counter() - t0

    def _skipped(self, step, error):
        """A checkpoint that could not be taken: slower ranks' previous one is not
        complete yet (DEADLINE_EXCEEDED) or the agent is out of memory budget
        (RESOURCE_EXHAUSTED). Training goes on, never restarted for it; the loss of
        protection is loud: a warning naming the step since which the newest
        state is not protected, and stats["unprotected_since"]."""
        if error.code not in ("DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"):
            raise error
        self.stats["skipped"] += 1
        if self.stats.get("unprotected_since") is None:
            self.stats["unprotected_since"] = step
        n = self.stats["skipped"]
        if n in (1, 10, 100) or n % 1000 == 0:
            warnings.warn(f"gemini: checkpoints NOT protected since step "
                          f"{self.stats['unprotected_since']}: the checkpoint of step {step} was "
                          f"skipped ({n} so far): {error}", RuntimeWarning)

    # ---------------------------------------------------------------- loading
    def _agree(self, value, op):
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.int64)
        dist.all_reduce(t, op=op, group=self._group)
        return int(t.item())

    def _read_own(self, job, iteration):
        try:
            man, buf = shards.read(self.client, job, self.rank, iteration, self.copy_threads)
            return man, buf, None
        except GeminiError as e:
            return None, None, e

    def load_latest(self):
        """Restore the newest iteration every rank holds; returns its step or None.

        The newest complete iteration of the job's generations (one per world
        size, gemini.generations); saved by another world size, it is resharded
        (gemini.reshard)."""
        self.wait()
        plan = self._settle_generation()
        if plan.source is None:
            return None
        iteration = plan.iteration
        if plan.source_world != self.world:
            tensors, meta, err = None, None, None
            try:
                tensors, meta = reshard.restore(self, plan.source, iteration, plan.source_world)
            except GeminiError as e:
                err = e
            if self._agree(1 if err else 0, dist.ReduceOp.MAX):
                raise err or GeminiError(f"rank {self.rank}: another rank could not reshard "
                                         f"iteration {iteration} of job {plan.source!r} (nothing "
                                         f"restored; its log says why)")
            self._restore(tensors, meta)
            return meta["step"]
        inplace = self._cuda_state() if _gemini_cuda is not None else {}
        if inplace and not (self.world > 1 and self.replicated):
            # CUDA state each rank stores whole (FSDP2 shards, one rank, ZeRO):
            # the GPU restore path. DDP state split over ranks is reassembled
            # on the host (an all-gather on the gloo group).
            tensors, meta, err = None, None, None
            try:
                tensors, meta = self._read_own_gpu(plan.source, iteration, inplace)
            except GeminiError as e:
                err = e
            if self._agree(1 if err else 0, dist.ReduceOp.MAX):
                raise GeminiError(f"rank {self.rank}: cannot load iteration {iteration}: "
                                  f"{err or 'another rank failed to load it'}")
            self._restore(tensors, meta)
            return meta["step"]
        man, buf, err = self._read_own(plan.source, iteration)
        if self._agree(1 if err else 0, dist.ReduceOp.MAX):
            raise GeminiError(f"rank {self.rank}: cannot load iteration {iteration}: "
                              f"{err or 'another rank failed to load it'}")
        pieces = views(buf, man["entries"])
        if self.world > 1 and self.replicated:
            pieces = self._gather_shared(man, buf, pieces)
        tensors = assemble(pieces)
        try:
            meta = codec.loads(tensors.pop("r/meta").numpy().tobytes())
        except (KeyError, ValueError) as e:
            raise GeminiError(f"rank {self.rank}: iteration {iteration} has invalid checkpoint "
                              f"metadata (refused, nothing restored): {e}") from None
        self._restore(tensors, meta)
        return meta["step"]

    def _cuda_state(self):
        """This rank's CUDA model tensors and `tensors=` (local shards), by entry
        name without its s/ or r/ prefix: where a GPU restore copies in place."""
        out = {}
        named = []
        if self.model is not None:
            named += [("model." + k, v) for k, v in self.model.state_dict().items()]
        named += [("tensor." + k, v) for k, v in self.tensors.items()]
        for name, v in named:
            t = local_part(v)
            if torch.is_tensor(t) and t.is_cuda:
                out[name] = t
        return out

    def _read_own_gpu(self, job, iteration, inplace):
        """This rank's shard restored through the GPU path: every chunk's CRC32C
        checked on host threads in the agent's slot, then copied host-to-device
        straight into the model's tensors (or fresh device tensors for optimizer
        state), with no host buffer between. `inplace`: _cuda_state(). Returns
        (tensors, meta)."""
        device = next(iter(inplace.values())).device
        if self._gpu is None:
            self._gpu = _gemini_cuda.Saver(self._socket, device.index or 0)
        try:
            shard = self._gpu.open(job, self.rank, iteration)
        except GeminiError:
            self.client.fetch(job, self.rank, iteration)  # From a peer holder.
            shard = self._gpu.open(job, self.rank, iteration)
        opt_state, params = {}, []
        if self.optimizer is not None:
            opt = self._local_optimizer()
            params = [p for g in opt.param_groups for p in g["params"]]
            opt_state = opt.state
        tensors, pieces, meta_at = {}, [], None
        for name, dtype, shape, offset, length, toff in shard.manifest["entries"]:
            if name == "r/meta":
                meta_at = (offset, length)
                continue
            dt, key = DTYPES[dtype], name.split("/", 1)[1]
            t = inplace.get(key)
            if t is None or t.dtype != dt or tuple(t.shape) != tuple(shape) or \
                    not t.is_contiguous():
                t = torch.empty(shape, dtype=dt, device=self._restore_device(
                    key, device, params, opt_state))
            if toff != 0 or length != t.numel() * t.element_size():
                raise GeminiError(f"rank {self.rank}: entry {name!r} of iteration {iteration} "
                                  f"is not stored whole (refused)")
            tensors[name] = t
            pieces.append((offset, t.data_ptr(), length))
        if meta_at is None:
            raise GeminiError(f"rank {self.rank}: iteration {iteration} has no checkpoint "
                              f"metadata (refused, nothing restored)")
        self.last_restore = self._gpu.restore(
            shard, pieces, torch.cuda.current_stream(device).cuda_stream, self._gpu_threads, True)
        try:
            meta = codec.loads(_gemini_cuda.Saver.read_bytes(shard, *meta_at))
        except ValueError as e:
            raise GeminiError(f"rank {self.rank}: iteration {iteration} has invalid checkpoint "
                              f"metadata (refused, nothing restored): {e}") from None
        return tensors, meta

    @staticmethod
    def _restore_device(key, device, params, opt_state):
        """Where a restored tensor that has no place yet goes: an optimizer state
        tensor where the optimizer keeps it now, else beside its parameter
        (Adam's `step` on the host, as torch makes it unless capturable or fused);
        anything else on the device of the model's state."""
        if not key.startswith("optim."):
            return device
        _, pid, k = key.split(".", 2)
        p = params[int(pid)] if pid.isdigit() and int(pid) < len(params) else None
        if p is None:
            return device
        have = opt_state.get(p, {}).get(k)
        if torch.is_tensor(have):
            return local_part(have).device
        return torch.device("cpu") if k == "step" else local_part(p).device

    def _settle_generation(self):
        """Which generation of the job to restore and to save into: every rank's
        agent's view, all-gathered (JSON), one plan derived alike on every rank."""
        view = json.dumps(generations.local_view(self.client, self.job)).encode()
        views = [json.loads(v) for v in self._all_gather_bytes(view)]
        # Under `gemini launch` the agents replicate and complete one store job
        # per epoch, named here ($GEMINI_STORE_JOB, its world's generation).
        target = os.environ.get("GEMINI_STORE_JOB") or None
        if target is not None and not generations.belongs(self.job, target):
            target = None  # Another job's launcher variable: this Checkpointer's job decides.
        self._plan = generations.plan(self.job, self.world, views, target)
        self.store_job = self._plan.target
        return self._plan

    def _drop_superseded(self, step):
        """Drops the job's other generations once this world's one holds a complete
        iteration at least as new as theirs (each machine's local rank 0 on its
        agent). Every rank calls it at the same steps (the plan is agreed)."""
        due = self._plan.superseded
        if step <= min(due.values()):
            return
        self.wait()
        self._agree(0, dist.ReduceOp.MAX)  # Every rank's previous checkpoint is committed.
        done = self._agree(self.client.complete_iteration(self.store_job), dist.ReduceOp.MIN)
        gone = [n for n, it in due.items() if done >= 0 and done >= it]
        local_rank = int(os.environ.get("LOCAL_RANK", self.rank)) if self.world > 1 else 0
        for n in gone:
            del due[n]
            if local_rank != 0:
                continue
            try:
                self.client.drop_job(n)
                _log.info("gemini: dropped generation %r of job %r: %r holds iteration %d",
                          n, self.job, self.store_job, done)
            except GeminiError as e:
                if e.code != "NOT_FOUND":
                    warnings.warn(f"gemini: could not drop the superseded store job {n!r} "
                                  f"(drop it with gemini.Client(socket).drop_job({n!r})): {e}",
                                  RuntimeWarning)

    def _all_gather_bytes(self, data):
        if self.world == 1:
            return [data]
        size = self._agree(len(data), dist.ReduceOp.MAX)
        padded = torch.zeros(size, dtype=torch.uint8)
        padded[:len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        lengths = [torch.zeros(1, dtype=torch.int64) for _ in range(self.world)]
        dist.all_gather(lengths, torch.tensor([len(data)], dtype=torch.int64), group=self._group)
        bufs = [torch.empty(size, dtype=torch.uint8) for _ in range(self.world)]
        dist.all_gather(bufs, padded, group=self._group)
        return [b[:int(n.item())].numpy().tobytes() for b, n in zip(bufs, lengths)]

    def _gather_shared(self, man, buf, pieces):
        """Every rank's replicated pieces, from an all-gather of the shards."""
        # JSON through byte tensors rather than all_gather_object (a pickle).
        manifests = [json.loads(b) for b in self._all_gather_bytes(
            json.dumps(man["entries"]).encode())]
        size = self._agree(buf.numel(), dist.ReduceOp.MAX)
        padded = torch.zeros(size, dtype=torch.uint8)
        padded[:buf.numel()] = buf
        bufs = [torch.empty(size, dtype=torch.uint8) for _ in range(self.world)]
        dist.all_gather(bufs, padded, group=self._group)
        out = [p for p in pieces if not p[0].startswith("s/")]
        for r in range(self.world):
            out += [p for p in views(bufs[r], manifests[r]) if p[0].startswith("s/")]
        return out

    def _restore(self, tensors, meta):
        got = {n.split("/", 1)[1]: t for n, t in tensors.items()}
        if self.model is not None and self._sharded:
            # In place, shard by shard: this rank's parameters keep their placement.
            with torch.no_grad():
                for k, v in self.model.state_dict().items():
                    if "model." + k not in got:
                        raise GeminiError(f"rank {self.rank}: the checkpoint has no {k!r}")
                    local_part(v).copy_(got["model." + k])
        elif self.model is not None:
            self.model.load_state_dict(
                {k[len("model."):]: v for k, v in got.items() if k.startswith("model.")})
        if self.optimizer is not None:
            om = meta["optim"]
            state = {pid: {} for pid in om["pids"]}
            for (pid, k), v in om["plain"].items():
                state[pid][k] = v
            params = [p for g in self._local_optimizer().param_groups for p in g["params"]]
            for name, v in got.items():
                if name.startswith("optim."):
                    _, pid, k = name.split(".", 2)
                    p = params[int(pid)] if int(pid) < len(params) else None
                    if isinstance(p, DTensor) and v.shape == local_part(p).shape:
                        v = as_dtensor_like(v.to(local_part(p).device), p)  # A shard of p.
                    state[int(pid)][k] = v
            self._local_optimizer().load_state_dict(
                {"state": state, "param_groups": om["param_groups"]})
        for k, v in self.tensors.items():
            with torch.no_grad():
                local_part(v).copy_(got["tensor." + k])
        if self.lr_scheduler is not None and "lr_scheduler" in meta:
            self.lr_scheduler.load_state_dict(meta["lr_scheduler"])
        for k, v in self.statefuls.items():
            if k in meta.get("stateful", {}):
                v.load_state_dict(meta["stateful"][k])
        for k in self.values:
            if k in meta.get("values", {}):
                self._state[k] = meta["values"][k]
        if self.rng and "rng" in meta:
            _set_rng_state(meta["rng"])

    def close(self):
        self.wait()
        if self._step_hook is not None:
            self._step_hook.remove()
            self._step_hook = None
