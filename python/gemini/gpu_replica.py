"""gemini.gpu_replica: per-iteration FSDP2 checkpoints, replicated GPU to GPU.

    ckpt = ReplicatedFSDPCheckpointer(model, optimizer, mode="interleave")
    for step in ...:
        loss = model(batch).sum(); loss.backward()
        optimizer.step(); optimizer.zero_grad()
        ckpt.save(step)        # enqueues; the traffic runs in the next iteration's idle spans

The paper's GPU data path (docs/gpu.md). Each rank's checkpoint is packed,
chunk by chunk, into one of p sub-buffers of a reserved GPU staging buffer of
R bytes (the region layout of the agent's manifest, padding zeroed). For each
chunk, on a replication stream:

  1. the CRC32C of every 4 MiB of it is computed on the GPU (crc="gpu", the
     default; the manifest's CRCs) and it is sent over NCCL, on a
     communicator of its own (not training's), to the next rank, while the
     chunk of the previous rank arrives in one of p receive sub-buffers and
     is checksummed the same way;
  2. a copy stream moves both device-to-host, into this rank's slot and into
     the replica slot it holds for the previous rank (each in the agent's
     shared memory, page-locked), while the next chunk is packed and sent.

With crc="host" a finisher thread computes the CRCs over both slots on host
threads instead, as each chunk lands (the GPU then does only the packing and
NCCL's 2 thread blocks; measured slower for training, see docs/gpu.md).

Once the last chunk is checksummed, a finisher thread sends this rank's CRCs to
the holder (over a gloo group, off the GPU), commits the local slot, and
commits the replica slot only if the CRCs it computed over what it received
equal the owner's. The next optimizer step waits (on the GPU, only if
unfinished) for the copies, so a committed checkpoint is always the state
after one step, never a mix. The next checkpoint starts once the finisher is
done: at save() in naive and overlap modes, and in interleave at the first
collective after it (save() never waits there).

Modes:
  none        nothing is saved (the baseline)
  naive       all chunks go at save(); the next iteration waits for them
  overlap     all chunks go at save(), ungated; only the next step waits
  interleave  after `warmup` iterations profiled like `overlap` (idle spans
              from CUDA events around the training's collectives, see
              gemini.gpu_timeline, and each chunk's time on the replication
              stream), Algorithm 2 (_gemini.partition) places the chunks in
              the idle spans of the next iteration: each span's chunks are
              enqueued when the collective that opens it is issued and start
              on the GPU when it ends; chunks whose anchor passed before the
              checkpoint started go at the next collective. Leftovers go
              before the step.

Ring placement: rank r's replica goes to rank r+1 (m = 2 copies). Two agents
on one machine stand for two machines: `sockets[r]` is rank r's agent.
"""
import os
import queue
import statistics
import threading
import time

from ._torch_version import require_supported_torch

require_supported_torch()  # A clear error for a missing or unsupported torch.
import torch  # noqa: E402
import torch.distributed as dist

from . import _gemini, _gemini_cuda, codec
from .fsdp_shards import ShardCheckpointer
from .gpu_timeline import CollectiveProbe
from .replica_layout import DueChunks, region_pieces
from .state import DTYPE_NAMES, nbytes

GeminiError = _gemini.GeminiError
CRC_CHUNK = 4 << 20
MODES = ("none", "naive", "overlap", "interleave")
CRC_ON = ("host", "gpu")


def _replication_group(max_ctas):
    """A NCCL communicator of its own (all ranks must call this together),
    limited to max_ctas thread blocks where this torch exposes NCCL's config."""
    opts = None
    if max_ctas is not None:
        try:
            opts = dist.ProcessGroupNCCL.Options()
            opts.config.max_ctas = int(max_ctas)
            opts.config.min_ctas = 1
        except (AttributeError, TypeError):
            opts = None
    if opts is not None:
        return dist.new_group(backend="nccl", pg_options=opts), True
    return dist.new_group(backend="nccl"), False


def _bytes_view(t):
    return t.reshape(-1).view(torch.uint8)


class ReplicatedFSDPCheckpointer(ShardCheckpointer):
    """Args (beyond gemini.fsdp_shards.ShardCheckpointer's):
      mode: one of MODES.
      buffer_bytes, sub_buffers: R and p (chunks are R/p bytes, a multiple of 4 MiB).
      mu: usable fraction of each idle span (Algorithm 2).
      warmup: iterations profiled (as `overlap`) before interleaving.
      skip: saves not profiled first (the first ones page-lock the slots).
      meta_capacity: bytes reserved for the meta entry (gemini.codec JSON) (the layout
        must not change between iterations; a larger meta is an error).
      nccl_max_ctas: thread blocks (SMs) the replication communicator may use,
        so that its kernels take little from training's (None: NCCL's choice).
      crc: "gpu" (a kernel over the sub-buffers, on the replication stream) or
        "host" (host threads over the slots, as chunks land; measured slower
        for training, docs/gpu.md).
      crc_threads: host threads per CRC pass (crc="host").
    """

    def __init__(self, model, optimizer, *, job=None, socket=None, mode="interleave",
                 buffer_bytes=512 << 20, sub_buffers=4, mu=0.9, warmup=3, skip=2,
                 meta_capacity=1 << 20, rng=True, wait_s=120.0, nccl_max_ctas=2, crc="gpu",
                 crc_threads=4):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if crc not in CRC_ON:
            raise ValueError(f"crc must be one of {CRC_ON}, not {crc!r}")
        socket = socket or os.environ.get("GEMINI_SOCKET") or _gemini.default_socket_path()
        super().__init__(model, optimizer, job=job, socket=socket, rng=rng, wrap_step=False)
        self.mode = mode
        self.rank, self.world = self.gpu.rank, self.gpu.world
        self.nxt, self.prv = (self.rank + 1) % self.world, (self.rank - 1) % self.world
        self.chunk = buffer_bytes // sub_buffers
        if self.chunk % CRC_CHUNK or self.chunk <= 0:
            raise ValueError("buffer_bytes / sub_buffers must be a positive multiple of 4 MiB")
        self.R, self.p, self.mu, self.warmup, self.skip = buffer_bytes, sub_buffers, mu, warmup, skip
        self.meta_capacity = meta_capacity
        self.wait_ms = int(wait_s * 1000)
        self.crc_on, self.crc_threads = crc, crc_threads
        self.group, self.group_limited = _replication_group(nccl_max_ctas)
        self.crc_group = dist.new_group(backend="gloo")  # owner -> holder CRCs, off the GPU
        self.probe = CollectiveProbe(exclude_groups=[self.group], on_op_end=self._on_op_end)
        self.probe.install()
        self.local = _gemini_cuda.SlotWriter(socket)
        self.holder = _gemini_cuda.SlotWriter(socket)
        dev = torch.cuda.current_device()
        self.rep = torch.cuda.Stream(dev)
        self.d2h = torch.cuda.Stream(dev)
        self.staging = torch.zeros(self.p, self.chunk, dtype=torch.uint8, device="cuda")
        self.rx = torch.zeros(self.p, self.chunk, dtype=torch.uint8, device="cuda")
        self.freed = [None] * self.p  # d2h-stream events: sub-buffer j may be reused
        self.meta_host = torch.zeros(meta_capacity, dtype=torch.uint8, pin_memory=True)
        self.meta_dev = torch.zeros(meta_capacity, dtype=torch.uint8, device="cuda")
        self._meta_uploaded = None  # event: meta_host -> meta_dev done
        self._cache = None  # (source signature, per-chunk pack views)
        self.layout = None  # {"mine", "prv"}: the entries of this rank and of the one it holds
        self.queued = None   # a checkpoint saved but not started (see save())
        self.pending = None  # the checkpoint in flight (see _start())
        self.finisher = None  # its thread: CRCs, exchange, commits
        self.plan = None     # {anchor op index: [chunk indices]} once interleaving
        self.profiles, self.chunk_times = [], []
        self.counters = {"saves": 0, "committed": 0, "replicas_committed": 0, "gated_chunks": 0,
                      "leftover_chunks": 0, "plan": None, "crc_mismatch": 0, "deferred": 0}
        self.host_s = {"save": [], "sync": [], "start": []}  # host time in save(), _start()
        # GPU ms per checkpoint: step done -> copies done, and how long the next
        # step waited for them (0 when they were done first).
        self.gpu_ms = {"ready_to_done": [], "step_wait": []}
        self._new_iteration = True
        self._hook = model.register_forward_pre_hook(self._forward_pre_hook)
        self._inner_step = inner = optimizer.step

        def step(*args, **kwargs):
            self.before_step()
            return inner(*args, **kwargs)

        optimizer.step = step

    # ---------------------------------------------------------------- hooks
    def _forward_pre_hook(self, module, args):
        if self._new_iteration:
            self._new_iteration = False
            self.probe.begin_iteration()
            self._on_anchor(-1, None)

    def _on_op_end(self, index, end_event):
        self._on_anchor(index, end_event)

    def before_step(self):
        """Before optimizer.step(): the checkpoint not yet started starts, its
        leftovers go now, and the step waits (on the GPU) for its copies."""
        self.probe.before_step()
        self._new_iteration = True
        if self.queued is not None:
            self._start()
        if self.pending is not None:
            self._issue_rest()
            if "step" not in self.pending["events"]:
                self.pending["events"]["step"] = torch.cuda.Event(enable_timing=True)
                self.pending["events"]["step"].record()
            torch.cuda.current_stream().wait_event(self.pending["done"])

    # ---------------------------------------------------------------- layout
    def _entries(self, step):
        dev, cpu = self._state()
        meta = codec.dumps(self._meta(step, cpu))
        if len(meta) > self.meta_capacity:
            raise GeminiError(f"checkpoint meta of {len(meta)} bytes exceeds meta_capacity "
                              f"{self.meta_capacity}; raise it")
        # meta_dev is free: the previous checkpoint's packing came before the step
        # (which waited for it); meta_host once the previous upload has run.
        if self._meta_uploaded is not None:
            self._meta_uploaded.synchronize()
        self.meta_host[:len(meta)] = torch.frombuffer(bytearray(meta), dtype=torch.uint8)
        self.meta_host[len(meta):].zero_()
        self.meta_dev.copy_(self.meta_host, non_blocking=True)
        self._meta_uploaded = torch.cuda.Event()
        self._meta_uploaded.record()
        for n, t in dev:
            if not t.is_contiguous():
                raise GeminiError(f"{n}: local shard is not contiguous")
        entries = [(n, DTYPE_NAMES[t.dtype], list(t.shape), 0, nbytes(t), 0) for n, t in dev]
        entries.append(("meta", "uint8", [self.meta_capacity], 0, self.meta_capacity, 0))
        return dev, entries

    def _setup_layout(self, entries):
        every = [None] * self.world
        dist.all_gather_object(every, entries)
        self.layout = {"mine": entries, "prv": every[self.prv]}

    def _pack_plan(self, manifest, sources):
        """Per chunk k: (length, destination views in staging[k % p], source
        views, padding views to zero); built once, reused while the tensors stay."""
        plan = []
        for k, (length, parts, gaps) in enumerate(region_pieces(manifest, sources, self.chunk)):
            buf = self.staging[k % self.p]
            dsts = [buf[pos:pos + hi - lo] for _, lo, hi, pos in parts]
            srcs = [src[lo:hi] for src, lo, hi, _ in parts]
            plan.append((length, dsts, srcs, [buf[a:b] for a, b in gaps]))
        return plan

    # ---------------------------------------------------------------- saving
    def save(self, step):
        """Checkpoint `step` (call after optimizer.step()). Captures the small
        state now; the copies start now (naive, overlap, and interleave while
        profiling) or at the planned idle spans of the next iteration, once the
        previous checkpoint is committed (interleave: never waits for it here)."""
        if self.mode == "none":
            return
        t_save = time.perf_counter()
        tensors, entries = self._entries(step)
        if self.layout is None:
            self._setup_layout(entries)
        elif entries != self.layout["mine"]:
            raise GeminiError("the checkpoint layout changed between iterations (tensors added, "
                              "removed or resized); the replicated GPU path needs a fixed one")
        if self.queued is not None:  # Saved twice without a step: the older one starts first.
            self._start()
        ready = torch.cuda.Event(enable_timing=True)
        ready.record()
        self.queued = {"step": int(step), "ready": ready, "tensors": tensors, "entries": entries}
        self.counters["saves"] += 1
        if self.mode != "interleave" or self.plan is None:
            self._start()
            if self.mode == "naive":
                torch.cuda.current_stream().wait_event(self.pending["done"])
        self.host_s["save"].append(time.perf_counter() - t_save)

    def _start(self):
        """Commits the checkpoint in flight (waits for its finisher), begins the
        queued one's slots in both agents, starts its finisher; naive, overlap and
        profiling issue all its chunks."""
        self._finish_previous()
        t_start = time.perf_counter()
        q, self.queued = self.queued, None
        step, tensors, entries = q["step"], q["tensors"], q["entries"]
        man = self.local.begin(self.gpu.job, self.rank, self.world, step, entries, CRC_CHUNK,
                               self.wait_ms)
        peer = self.holder.begin(self.gpu.job, self.prv, self.world, step, self.layout["prv"],
                                 CRC_CHUNK, self.wait_ms)
        signature = (tuple(t.data_ptr() for _, t in tensors), man["data_bytes"])
        if self._cache is None or self._cache[0] != signature:
            sources = [_bytes_view(t) for _, t in tensors] + [self.meta_dev]
            self._cache = (signature, self._pack_plan(man, sources))
        mine = self._cache[1]
        rx_lens = [min(self.chunk, peer["data_bytes"] - k * self.chunk)
                   for k in range((peer["data_bytes"] + self.chunk - 1) // self.chunk)]
        n_crc = (man["data_bytes"] + CRC_CHUNK - 1) // CRC_CHUNK
        n_rx_crc = (peer["data_bytes"] + CRC_CHUNK - 1) // CRC_CHUNK
        self.data_bytes = max(man["data_bytes"], peer["data_bytes"])
        self.pending = {
            "step": step, "ready": q["ready"], "mine": mine, "rx_lens": rx_lens,
            "steps": max(len(mine), len(rx_lens)), "next": 0, "landed": queue.Queue(),
            "timing": self.mode == "interleave" and self.plan is None,
            "times": [], "done": None, "gated": 0, "error": None, "events": {},
        }
        if self.crc_on == "gpu":
            self.pending["crc"] = torch.zeros(n_crc, dtype=torch.int32, device="cuda")
            self.pending["rx_crc"] = torch.zeros(n_rx_crc, dtype=torch.int32, device="cuda")
        self.finisher = threading.Thread(target=self._finish, args=(self.pending,),
                                         name=f"gemini-finisher-{step}", daemon=True)
        self.finisher.start()
        if self.mode in ("naive", "overlap") or self.plan is None:
            self._issue_rest()
        self.host_s["start"].append(time.perf_counter() - t_start)

    def _on_anchor(self, anchor, end_event):
        """Interleave: at a collective (anchor) of the plan, the chunks placed in
        the idle span it opens (and any deferred before them) go on the
        replication stream behind the collective's end. The queued checkpoint
        starts at the first anchor after its predecessor is committed."""
        if self.plan is None:
            return
        if self.queued is not None:
            if self.finisher is not None and self.finisher.is_alive():
                self.counters["deferred"] += 1
                return  # The previous checkpoint is still being committed: defer.
            self._start()
        pend = self.pending
        if pend is None or pend["done"] is not None:
            return
        # Chunks planned at this anchor or before it (late ones catch up here).
        due = min(self._due(anchor), pend["steps"])
        if due <= pend["next"]:
            return
        if end_event is not None:
            self.rep.wait_event(end_event)
        while pend["next"] < due:
            self._issue_chunk(pend["next"])
            pend["gated"] += 1

    def _issue_rest(self):
        pend = self.pending
        while pend["next"] < pend["steps"]:
            self._issue_chunk(pend["next"])
        if pend["done"] is None:
            self._issue_trailer()

    def _issue_chunk(self, k):
        pend = self.pending
        j = k % self.p
        with torch.cuda.stream(self.rep):
            if k == 0:
                self.rep.wait_event(pend["ready"])
            if self.freed[j] is not None:
                self.rep.wait_event(self.freed[j])
            t0 = t1 = None
            if pend["timing"]:  # After the wait for the sub-buffer: the link's own time.
                t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                t0.record()
            ops, length, rlen = [], 0, 0
            buf, rbuf = self.staging[j], self.rx[j]
            if k < len(pend["mine"]):
                length, dsts, srcs, gaps = pend["mine"][k]
                if gaps:
                    torch._foreach_zero_(gaps)
                torch._foreach_copy_(dsts, srcs)
                if self.crc_on == "gpu":
                    _gemini_cuda.chunk_crcs(buf.data_ptr(), length, CRC_CHUNK,
                                            pend["crc"][k * self.chunk // CRC_CHUNK:].data_ptr(),
                                            self.rep.cuda_stream)
                ops.append(dist.P2POp(dist.isend, buf[:length], self.nxt, group=self.group))
            if k < len(pend["rx_lens"]):
                rlen = pend["rx_lens"][k]
                ops.append(dist.P2POp(dist.irecv, rbuf[:rlen], self.prv, group=self.group))
            for w in dist.batch_isend_irecv(ops):
                w.wait()
            if rlen and self.crc_on == "gpu":
                _gemini_cuda.chunk_crcs(rbuf.data_ptr(), rlen, CRC_CHUNK,
                                        pend["rx_crc"][k * self.chunk // CRC_CHUNK:].data_ptr(),
                                        self.rep.cuda_stream)
            if t1 is not None:
                t1.record()
                pend["times"].append((length, t0, t1))
            arrived = torch.cuda.Event()
            arrived.record()
        self.d2h.wait_event(arrived)
        if length:
            self.local.copy_in(k * self.chunk, buf.data_ptr(), length, self.d2h.cuda_stream)
        if rlen:
            self.holder.copy_in(k * self.chunk, rbuf.data_ptr(), rlen, self.d2h.cuda_stream)
        freed = torch.cuda.Event()
        freed.record(self.d2h)
        self.freed[j] = freed
        pend["next"] = k + 1
        pend["landed"].put((k, freed, length, rlen))

    def _issue_trailer(self):
        """After the last chunk: `done` (the step waits for it) and, for crc="gpu",
        the CRC arrays to pinned host memory."""
        pend = self.pending
        self.d2h.wait_stream(self.rep)
        with torch.cuda.stream(self.d2h):
            if self.crc_on == "gpu":
                pend["host"] = [torch.empty(t.numel(), dtype=torch.int32, pin_memory=True)
                                for t in (pend["crc"], pend["rx_crc"])]
                for h, t in zip(pend["host"], (pend["crc"], pend["rx_crc"])):
                    h.copy_(t, non_blocking=True)
            done = torch.cuda.Event(enable_timing=True)
            done.record()
        pend["done"] = done
        pend["landed"].put(None)

    def _finish(self, pend):
        """Finisher thread, one per checkpoint: the CRCs of both slots as chunks
        land, the owner's CRCs to the holder, then the commits. Errors are
        raised by the next save()/wait()."""
        try:
            crc, rx_crc = [], []
            while (item := pend["landed"].get()) is not None:
                k, landed, length, rlen = item
                if self.crc_on == "gpu":
                    continue
                landed.synchronize()
                if length:
                    crc += self.local.crcs(k * self.chunk, length, self.crc_threads)
                if rlen:
                    rx_crc += self.holder.crcs(k * self.chunk, rlen, self.crc_threads)
            pend["done"].synchronize()
            if self.crc_on == "gpu":
                crc, rx_crc = ([int(x) & 0xffffffff for x in h.tolist()] for h in pend["host"])
            mine = torch.tensor(crc, dtype=torch.int64)
            theirs = torch.empty(len(rx_crc), dtype=torch.int64)
            for w in (dist.isend(mine, self.nxt, group=self.crc_group),
                      dist.irecv(theirs, self.prv, group=self.crc_group)):
                w.wait()
            peer_crc = theirs.tolist()
            self.local.commit(crc)
            self.counters["committed"] += 1
            if rx_crc == peer_crc:
                self.holder.commit(peer_crc)
                self.counters["replicas_committed"] += 1
            else:
                bad = next((i for i, (a, b) in enumerate(zip(rx_crc, peer_crc)) if a != b),
                           min(len(rx_crc), len(peer_crc)))
                self.counters["crc_mismatch"] += 1
                print(f"[gemini] replica of rank {self.prv} iteration {pend['step']}: chunk {bad} "
                      f"CRC mismatch; not committed", flush=True)
        except BaseException as e:  # noqa: B902 (raised again on the caller's thread)
            pend["error"] = e

    def _finish_previous(self):
        """Waits for the checkpoint in flight to be committed (see _finish)."""
        pend = self.pending
        if pend is None:
            return
        if pend["done"] is None:
            self._issue_rest()
        self.pending = None
        t0 = time.perf_counter()
        self.finisher.join()
        self.finisher = None
        self.host_s["sync"].append(time.perf_counter() - t0)
        if pend["error"] is not None:
            raise GeminiError(f"checkpoint {pend['step']} was not committed: "
                              f"{pend['error']}") from pend["error"]
        self.counters["gated_chunks"] += pend["gated"]
        self.gpu_ms["ready_to_done"].append(pend["ready"].elapsed_time(pend["done"]))
        step = pend["events"].get("step")
        if step is not None and step.query():
            self.gpu_ms["step_wait"].append(max(0.0, step.elapsed_time(pend["done"])))
        if pend["timing"] and self.counters["saves"] > self.skip:
            self.chunk_times.extend((n, a.elapsed_time(b) / 1e3) for n, a, b in pend["times"])
            try:
                self.profiles.append(self.probe.profile(previous=True))
            except RuntimeError:
                pass
            if len(self.profiles) >= self.warmup and self.plan is None:
                self._make_plan()

    # ---------------------------------------------------------------- planning
    def _make_plan(self):
        """Idle spans (median per anchor over the profiles) and the chunk cost
        -> Algorithm 2 -> {anchor: [chunk indices]}; rank 0's plan is used by all."""
        last = self.profiles[-1]
        per_anchor = {}
        for prof in self.profiles:
            for anchor, _, length in prof["spans"]:
                per_anchor.setdefault(anchor, []).append(length)
        anchors = [a for a, _, _ in last["spans"]]
        spans_s = [statistics.median(per_anchor[a]) / 1e3 for a in anchors]
        # A chunk's time on the replication stream includes waiting for the
        # device-to-host copies (and the peer) once the p sub-buffers are full;
        # the link's own cost is that of the fastest chunks (10th percentile).
        full = sorted(t for n, t in self.chunk_times if n == self.chunk) or \
            sorted(t for _, t in self.chunk_times)
        per_chunk = full[len(full) // 10]
        bandwidth = self.chunk / per_chunk
        plan = _gemini.partition(spans_s, self.data_bytes, 1, self.R, self.p, bandwidth, 0.0,
                                 self.mu, self.chunk)
        mapping, leftover = {}, 0
        for anchor, chunks in zip(anchors, plan):
            for _, offset, _, is_left in chunks:
                mapping.setdefault(anchor, []).append(offset // self.chunk)
                leftover += bool(is_left)
        every = [None] * self.world
        dist.all_gather_object(every, mapping)
        self.plan = every[0]
        self._due = DueChunks(self.plan)
        self.counters["leftover_chunks"] = leftover
        self.counters["plan"] = {
            "spans": len(spans_s), "idle_s": sum(spans_s), "step_s": last["step_ms"] / 1e3,
            "collectives": len(last["ops"]), "chunk_s": per_chunk, "bandwidth_Bps": bandwidth,
            "chunks": sum(len(v) for v in mapping.values()), "anchors_used": len(mapping),
            "leftover_chunks": leftover, "chunk_median_s": statistics.median(full),
            "nccl_ctas_limited": self.group_limited}

    # ---------------------------------------------------------------- misc
    def wait(self):
        """Commits the checkpoints saved so far (blocks until they are replicated)."""
        if self.queued is not None:
            self._start()
        self._finish_previous()

    def load_latest(self):
        self.wait()
        return super().load_latest()

    def close(self):
        """Commits what is in flight and undoes the hooks (optimizer.step, the
        forward pre-hook, the collective probe)."""
        self.wait()
        self.probe.uninstall()
        self._hook.remove()
        self.optimizer.step = self._inner_step
        super().close()
