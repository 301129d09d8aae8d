"""DDP ranks (started by torchrun) split one replicated state (each stores
1/world) and reassemble it."""
import subprocess

from conftest import PYTHON, helper


def run_ranks(agent, mode, world=2):
    # torchrun starts the ranks, exactly as users start theirs.
    out = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone",
                          f"--nproc-per-node={world}", helper("ddp_roundtrip.py"), mode],
                         capture_output=True, text=True, timeout=180, env=agent.env())
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout.strip()


def test_ddp_split_and_reassemble(agent):
    saved = run_ranks(agent, "save")
    job = next(j for j in agent.status()["jobs"] if j["job"] == "ddp")
    sizes = [max(s.get("data_bytes", 0) for s in r["slots"]) for r in job["ranks"]]
    params = 100 * 300 + 300 + 300 * 7 + 7
    state = params * 4 * 3  # Parameters plus Adam's two moments, float32.
    # Each rank holds about half of the state (plus its own metadata: RNG states, ~17 KB).
    assert len(sizes) == 2 and all(state / 2 <= s < state / 2 + 32768 for s in sizes), sizes
    loaded = run_ranks(agent, "load")
    assert loaded == saved


def test_fsdp2_on_cpu_resumes_bit_identically(agent):
    # FSDP2 over gloo, two ranks, the one Checkpointer: each rank stores its own
    # shards; a fresh job restored from memory trains exactly as the original.
    out = {}
    for mode in ("save", "load"):
        r = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone",
                            "--nproc-per-node=2", helper("fsdp_cpu_roundtrip.py"), mode],
                           capture_output=True, text=True, timeout=180, env=agent.env())
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        out[mode] = r.stdout.strip()
    assert out["save"] and out["load"] == out["save"]
