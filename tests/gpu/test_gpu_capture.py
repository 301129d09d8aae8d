"""GPU capture into the agent (gemini.gpu) and restore, one GPU."""
import os
import sys
import subprocess

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)
_gemini_cuda = pytest.importorskip("gemini._gemini_cuda")

import gemini  # noqa: E402
from gemini.gpu import GpuCheckpointer  # noqa: E402


def random_state(seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    shapes = [((1000, 1000), torch.float32), ((7,), torch.bfloat16), ((513, 17), torch.float16),
              ((3, 5, 11), torch.int64), ((0,), torch.float32), ((12 << 20,), torch.uint8)]
    out = []
    for i, (shape, dtype) in enumerate(shapes):
        if dtype.is_floating_point:
            t = torch.randn(shape, device="cuda", generator=g).to(dtype)
        else:
            t = torch.randint(0, 100, shape, device="cuda", generator=g).to(dtype)
        out.append((f"t{i}", t))
    return out


def assert_slot_holds(agent, step, state):
    """The plain CPU client reads the capture of `step` (checking every chunk's
    CRC32C) and finds each tensor's bytes where its manifest entry says."""
    shard = gemini.Client(agent.socket).open("gpu-test", 0, step)
    man = shard.manifest
    buf = torch.empty(man["data_bytes"], dtype=torch.uint8)
    gemini.Client.read_into(shard, buf.data_ptr(), 2)  # Verifies every chunk's CRC32C.
    entries = {e[0]: e for e in man["entries"]}
    for n, t in state:
        _, _, _, off, length, _ = entries[n]
        host = t.cpu().contiguous().view(-1).view(torch.uint8)
        assert torch.equal(buf[off:off + length], host), n


@pytest.fixture
def ckpt(agent):
    c = GpuCheckpointer(job="gpu-test", socket=agent.socket, rank=0, world=1)
    yield c
    c.close()
    del c


def test_save_then_load_in_place(ckpt):
    state = random_state(1)
    ckpt.save(1, state, meta={"step": 1})
    ckpt.wait()
    stats = ckpt.last_stats()
    assert stats["iteration"] == 1 and stats["pinned"]
    expected = {n: t.clone() for n, t in state}
    for _, t in state:
        t.zero_() if not t.dtype.is_floating_point else t.fill_(float("nan"))
    it, meta = ckpt.load(dict(state))
    assert it == 1 and meta == {"step": 1}
    for n, t in state:
        assert torch.equal(t, expected[n]), n
    assert ckpt.last_restore["bytes"] == sum(t.numel() * t.element_size() for _, t in state)
    # Readers map slots read-only (the agent hands them read-only fds): the
    # restore still page-locks its source, registered read-only.
    assert ckpt.last_restore["pinned"]


def test_step_waits_for_the_copy(ckpt):
    # A large tensor changed right after save(): the capture must hold the
    # values of the moment of save(), since before_step() orders the change.
    big = torch.randn(64 << 20, device="cuda")  # 256 MiB
    before = big.clone()
    ckpt.save(5, [("big", big)])
    ckpt.before_step()
    big.add_(1.0)  # What the optimizer step would do.
    ckpt.wait()
    big.copy_(torch.zeros_like(big))
    it, _ = ckpt.load({"big": big})
    assert it == 5
    assert torch.equal(big, before)


def test_cpu_client_reads_a_gpu_capture(ckpt, agent):
    # Same manifest and CRCs as the CPU path: the plain client loads it.
    state = random_state(2)
    ckpt.save(3, state)
    ckpt.wait()
    assert_slot_holds(agent, 3, state)


def test_gpu_crcs_of_unaligned_and_odd_sources(ckpt, agent):
    # The CRCs are computed on the GPU from the tensors, in spans cut at chunk
    # and entry boundaries: sources at odd addresses and of odd lengths, across
    # 4 MiB chunks, must give the CRCs of the bytes that landed in the slot
    # (read_into checks every chunk against them).
    base = torch.randint(0, 256, ((9 << 20) + 7,), dtype=torch.uint8, device="cuda")
    floats = torch.randn(3 * (1 << 20) + 5, device="cuda")
    state = [("odd_bytes", base[3:]), ("small", base[1:6]), ("floats", floats[1:]),
             ("cpu", torch.arange(11, dtype=torch.int16))]
    assert base[3:].data_ptr() % 16 == 3
    ckpt.save(7, state)
    ckpt.wait()
    assert ckpt.last_stats()["gpu_crc"]
    assert_slot_holds(agent, 7, state)


def test_many_saves_alternate_slots(ckpt):
    state = random_state(3)
    for step in range(1, 6):
        for _, t in state:
            if t.dtype.is_floating_point:
                t.mul_(1.5)
        ckpt.before_step()
        ckpt.save(step, state, meta={"step": step})
    ckpt.wait()
    expected = {n: t.clone() for n, t in state}
    targets = {n: torch.empty_like(t) for n, t in state}
    it, meta = ckpt.load(targets)
    assert it == 5 and meta["step"] == 5
    for n in expected:
        assert torch.equal(targets[n], expected[n]), n


def test_bench_capture_cuda_runs(tmp_path):
    gemini_bin = os.environ.get("GEMINI_BIN",
                                os.path.join(os.path.dirname(sys.executable), "gemini"))
    out = subprocess.run([gemini_bin, "bench", "capture", "--device", "cuda", "--bytes", "256MiB",
                          "--repeats", "3", "--threads", "4", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    import json
    r = json.loads(out.stdout)
    assert r["verified"] and r["slot_pinned"] and r["ratio"] > 0
