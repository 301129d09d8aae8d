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

  1. the CRC32C of every 4 MiB of it is computed on the GPU (these are the
     manifest's CRCs: the host never reads checkpoint bytes while training);
  2. it is sent over NCCL, on a communicator of its own (not training's), to
     the next rank, while the chunk of the previous rank arrives in one of p
     receive sub-buffers and is checksummed the same way;
  3. a copy stream moves both device-to-host, into this rank's slot and into
     the replica slot it holds for the previous rank (each in the agent's
     shared memory, page-locked), while the next chunk is packed and sent.

After the last chunk the ranks exchange their CRC arrays. The next save()
commits the local slot with its CRCs and the replica slot only if the CRCs the
holder computed over what it received equal the owner's. The next optimizer
step waits (on the GPU, only if unfinished) for all of it, so a committed
checkpoint is always the state after one step, never a mix.

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
              on the GPU when it ends. Leftovers go before the step.

Ring placement: rank r's replica goes to rank r+1 (m = 2 copies). Two agents
on one machine stand for two machines: `sockets[r]` is rank r's agent.
"""
import os
import pickle
import statistics
import time

import torch
import torch.distributed as dist

from . import _gemini, _gemini_cuda
from .fsdp import FSDPCheckpointer
from .gpu_timeline import CollectiveProbe
from .replica_layout import region_pieces
from .state import DTYPE_NAMES, nbytes

GeminiError = _gemini.GeminiError
CRC_CHUNK = 4 << 20
MODES = ("none", "naive", "overlap", "interleave")


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


class ReplicatedFSDPCheckpointer(FSDPCheckpointer):
    """Args (beyond gemini.fsdp.FSDPCheckpointer's):
      mode: one of MODES.
      buffer_bytes, sub_buffers: R and p (chunks are R/p bytes, a multiple of 4 MiB).
      mu: usable fraction of each idle span (Algorithm 2).
      warmup: iterations profiled (as `overlap`) before interleaving.
      skip: saves not profiled first (the first ones page-lock the slots).
      meta_capacity: bytes reserved for the pickled meta entry (the layout
        must not change between iterations; a larger meta is an error).
      nccl_max_ctas: thread blocks (SMs) the replication communicator may use,
        so that its kernels take little from training's (None: NCCL's choice).
    """

    def __init__(self, model, optimizer, *, job=None, socket=None, mode="interleave",
                 buffer_bytes=512 << 20, sub_buffers=4, mu=0.9, warmup=3, skip=2,
                 meta_capacity=1 << 20, rng=True, wait_s=120.0, nccl_max_ctas=2):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
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
        self.group, self.group_limited = _replication_group(nccl_max_ctas)
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
        self._cache = None  # (source signature, per-chunk pack views)
        self.layout = None  # {"mine", "prv"}: the entries of this rank and of the one it holds
        self.pending = None  # the checkpoint in flight (see save())
        self.plan = None     # {anchor op index: [chunk indices]} once interleaving
        self.profiles, self.chunk_times = [], []
        self.counters = {"saves": 0, "committed": 0, "replicas_committed": 0, "gated_chunks": 0,
                      "leftover_chunks": 0, "plan": None, "crc_mismatch": 0}
        self.host_s = {"save": [], "sync": []}  # host time in save(), and waiting in it
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
            if self.pending is not None and self.plan is not None:
                self._issue_anchor(-1, None)

    def _on_op_end(self, index, end_event):
        if self.pending is not None and self.plan is not None:
            self._issue_anchor(index, end_event)

    def before_step(self):
        """Before optimizer.step(): leftovers go now; the step waits (on the GPU)
        for the checkpoint in flight."""
        self.probe.before_step()
        self._new_iteration = True
        if self.pending is not None:
            self._issue_rest()
            torch.cuda.current_stream().wait_event(self.pending["done"])

    # ---------------------------------------------------------------- layout
    def _entries(self, step):
        dev, cpu = self._state()
        meta = pickle.dumps(self._meta(step, cpu))
        if len(meta) > self.meta_capacity:
            raise GeminiError(f"checkpoint meta of {len(meta)} bytes exceeds meta_capacity "
                              f"{self.meta_capacity}; raise it")
        # The previous checkpoint is committed (its copies of these buffers done).
        self.meta_host[:len(meta)] = torch.frombuffer(bytearray(meta), dtype=torch.uint8)
        self.meta_host[len(meta):].zero_()
        self.meta_dev.copy_(self.meta_host, non_blocking=True)
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
        """Starts checkpoint `step` (call after optimizer.step()); commits the previous one."""
        if self.mode == "none":
            return
        t_save = time.perf_counter()
        self._finish_previous()
        tensors, entries = self._entries(step)
        if self.layout is None:
            self._setup_layout(entries)
        elif entries != self.layout["mine"]:
            raise GeminiError("the checkpoint layout changed between iterations (tensors added, "
                              "removed or resized); the replicated GPU path needs a fixed one")
        man = self.local.begin(self.gpu.job, self.rank, self.world, int(step), entries, CRC_CHUNK,
                               self.wait_ms)
        peer = self.holder.begin(self.gpu.job, self.prv, self.world, int(step), self.layout["prv"],
                                 CRC_CHUNK, self.wait_ms)
        signature = (tuple(t.data_ptr() for _, t in tensors), man["data_bytes"])
        if self._cache is None or self._cache[0] != signature:
            sources = [_bytes_view(t) for _, t in tensors] + [self.meta_dev]
            self._cache = (signature, self._pack_plan(man, sources))
        mine = self._cache[1]
        ready = torch.cuda.Event()
        ready.record()
        rx_lens = [min(self.chunk, peer["data_bytes"] - k * self.chunk)
                   for k in range((peer["data_bytes"] + self.chunk - 1) // self.chunk)]
        n_crc = (man["data_bytes"] + CRC_CHUNK - 1) // CRC_CHUNK
        n_rx_crc = (peer["data_bytes"] + CRC_CHUNK - 1) // CRC_CHUNK
        steps = max(len(mine), len(rx_lens))
        self.data_bytes = max(man["data_bytes"], peer["data_bytes"])
        self.pending = {
            "step": int(step), "ready": ready, "mine": mine, "rx_lens": rx_lens,
            "steps": steps, "next": 0,
            "crc": torch.zeros(n_crc, dtype=torch.int32, device="cuda"),
            "rx_crc": torch.zeros(n_rx_crc, dtype=torch.int32, device="cuda"),
            "peer_crc": torch.zeros(n_rx_crc, dtype=torch.int32, device="cuda"),
            "timing": self.mode == "interleave" and self.plan is None,
            "times": [], "done": None, "gated": 0,
        }
        self.counters["saves"] += 1
        if self.mode in ("naive", "overlap") or self.plan is None:
            self._issue_rest()
            if self.mode == "naive":
                torch.cuda.current_stream().wait_event(self.pending["done"])
        self.host_s["save"].append(time.perf_counter() - t_save)

    def _issue_anchor(self, anchor, end_event):
        ks = self.plan.get(anchor)
        if not ks:
            return
        pend = self.pending
        if end_event is not None:
            self.rep.wait_event(end_event)
        for k in ks:
            if k == pend["next"]:
                self._issue_chunk(k)
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
                _gemini_cuda.chunk_crcs(buf.data_ptr(), length, CRC_CHUNK,
                                        pend["crc"][k * self.chunk // CRC_CHUNK:].data_ptr(),
                                        self.rep.cuda_stream)
                ops.append(dist.P2POp(dist.isend, buf[:length], self.nxt, group=self.group))
            if k < len(pend["rx_lens"]):
                rlen = pend["rx_lens"][k]
                ops.append(dist.P2POp(dist.irecv, rbuf[:rlen], self.prv, group=self.group))
            for w in dist.batch_isend_irecv(ops):
                w.wait()
            if rlen:
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

    def _issue_trailer(self):
        pend = self.pending
        with torch.cuda.stream(self.rep):
            ops = [dist.P2POp(dist.isend, pend["crc"], self.nxt, group=self.group),
                   dist.P2POp(dist.irecv, pend["peer_crc"], self.prv, group=self.group)]
            for w in dist.batch_isend_irecv(ops):
                w.wait()
            self.rep.wait_stream(self.d2h)
            pend["host"] = []
            for t in (pend["crc"], pend["rx_crc"], pend["peer_crc"]):
                h = torch.empty(t.numel(), dtype=torch.int32, pin_memory=True)
                h.copy_(t, non_blocking=True)
                pend["host"].append(h)
            done = torch.cuda.Event()
            done.record()
        pend["done"] = done

    def _finish_previous(self):
        """Commits the checkpoint in flight: the local slot, and the replica if
        the holder's CRCs equal the owner's."""
        pend = self.pending
        if pend is None:
            return
        if pend["done"] is None:
            self._issue_rest()
        self.pending = None
        t0 = time.perf_counter()
        pend["done"].synchronize()
        self.host_s["sync"].append(time.perf_counter() - t0)
        crc, rx_crc, peer_crc = ([int(x) & 0xffffffff for x in t.tolist()] for t in pend["host"])
        self.local.commit(crc)
        self.counters["committed"] += 1
        if rx_crc == peer_crc:
            self.holder.commit(peer_crc)
            self.counters["replicas_committed"] += 1
        else:
            bad = next(i for i, (a, b) in enumerate(zip(rx_crc, peer_crc)) if a != b)
            self.counters["crc_mismatch"] += 1
            print(f"[gemini] replica of rank {self.prv} iteration {pend['step']}: chunk {bad} "
                  f"CRC mismatch; not committed", flush=True)
        self.counters["gated_chunks"] += pend["gated"]
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
        self.counters["leftover_chunks"] = leftover
        self.counters["plan"] = {
            "spans": len(spans_s), "idle_s": sum(spans_s), "step_s": last["step_ms"] / 1e3,
            "collectives": len(last["ops"]), "chunk_s": per_chunk, "bandwidth_Bps": bandwidth,
            "chunks": sum(len(v) for v in mapping.values()), "anchors_used": len(mapping),
            "leftover_chunks": leftover, "chunk_median_s": statistics.median(full),
            "nccl_ctas_limited": self.group_limited}

    # ---------------------------------------------------------------- misc
    def wait(self):
        """Commits the checkpoint in flight (blocks until it is replicated)."""
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
