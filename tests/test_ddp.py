"""DDP ranks split one replicated state (each stores 1/world) and reassemble it."""
import socket
import subprocess

from conftest import PYTHON, helper


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(agent, mode, world=2):
    port = free_port()
    procs = [subprocess.Popen([PYTHON, helper("ddp_roundtrip.py"), mode], stdout=subprocess.PIPE,
                              text=True, env=agent.env(RANK=r, WORLD_SIZE=world,
                                                       MASTER_ADDR="127.0.0.1", MASTER_PORT=port))
             for r in range(world)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    return outs[0].strip()


def test_ddp_split_and_reassemble(agent):
    saved = run_ranks(agent, "save")
    job = next(j for j in agent.status()["jobs"] if j["job"] == "ddp")
    sizes = [max(s.get("data_bytes", 0) for s in r["slots"]) for r in job["ranks"]]
    params = 100 * 300 + 300 + 300 * 7 + 7
    state = params * 4 * 3  # Parameters plus Adam's two moments, float32.
    # Each rank holds about half of the state (plus its own small metadata).
    assert len(sizes) == 2 and all(state / 2 <= s < state / 2 + 16384 for s in sizes), sizes
    loaded = run_ranks(agent, "load")
    assert loaded == saved
