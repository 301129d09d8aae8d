"""The C++ client as a C++ trainer gets it: examples/cpp built with CMake
against the installed package (find_package(gemini) through
gemini.cmake_prefix_path), run against a real agent, and what it saved read
back byte for byte by the Python client."""
import os
import subprocess

import pytest
import torch

from conftest import REPO

import gemini
from gemini import _gemini

ITERATIONS = 3


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """examples/cpp built against the installed package, as C++17."""
    build = tmp_path_factory.mktemp("cpp-example")
    prefix = gemini.cmake_prefix_path
    assert "site-packages" in prefix, prefix
    for rel in ("include/gemini/client.h", "lib/libgemini_client.a",
                "lib/cmake/gemini/gemini-config.cmake", "lib/cmake/gemini/gemini-config-version.cmake"):
        assert os.path.isfile(os.path.join(prefix, rel)), rel
    subprocess.run(["cmake", "-S", os.path.join(REPO, "examples", "cpp"), "-B", str(build),
                    f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_CXX_STANDARD=17",
                    "-DCMAKE_CXX_EXTENSIONS=OFF", "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, capture_output=True, text=True)
    cache = (build / "CMakeCache.txt").read_text()
    assert f"gemini_DIR:PATH={prefix}/lib/cmake/gemini" in cache  # The installed config, no other.
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True, text=True)
    return str(build / "save_load")


def expected(iteration, rank):
    """What examples/cpp/save_load.cc saves at `iteration`: {name: (dtype, shape, tensor)}."""
    i = torch.arange(256 * 64)
    return {
        "model.weight": ("float32", [256, 64],
                         (iteration * 1000 + rank * 100 + i % 97).to(torch.float32)),
        "model.bias": ("float32", [64], iteration - torch.arange(64, dtype=torch.float32) * 0.5),
        "optim.moment": ("bfloat16", [1000],
                         (torch.arange(1000) % 200 + iteration).to(torch.bfloat16)),
        "step": ("int64", [], torch.tensor(iteration, dtype=torch.int64)),
    }


def raw(tensor):
    return tensor.reshape(-1).view(torch.uint8).numpy().tobytes()


def read_shard(client, job, rank):
    """(manifest, {name: bytes}) of rank's newest shard, through the Python client."""
    shard = client.open(job, rank, -1)
    man = shard.manifest
    buf = torch.empty(man["data_bytes"], dtype=torch.uint8)
    _gemini.Client.read_into(shard, buf.data_ptr())  # CRC32C-checked.
    return man, {name: (dtype, list(shape), buf[offset:offset + length].numpy().tobytes())
                 for name, dtype, shape, offset, length, _ in man["entries"]}


def run(example, agent, *args):
    return subprocess.run([example, "--iterations", str(ITERATIONS), *args], env=agent.env(),
                          capture_output=True, text=True, timeout=120)


def test_what_cpp_saved_python_reads_byte_for_byte(example, agent):
    out = run(example, agent, "--job", "cpp")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"connected to the agent at {agent.socket} (gemini {gemini.__version__})" in out.stdout
    assert "read back iteration 3: every byte as saved" in out.stdout

    client = _gemini.Client(agent.socket)
    assert client.complete_iteration("cpp") == ITERATIONS
    man, got = read_shard(client, "cpp", 0)
    assert (man["job"], man["rank"], man["world_size"], man["iteration"]) == ("cpp", 0, 1, 3)
    want = expected(ITERATIONS, 0)
    assert list(got) == list(want)  # Names, in the order saved.
    for name, (dtype, shape, tensor) in want.items():
        assert got[name][:2] == (dtype, shape), name
        assert got[name][2] == raw(tensor), name
    # The older iteration is still held, as saved.
    old = client.open("cpp", 0, ITERATIONS - 1).manifest
    assert old["iteration"] == ITERATIONS - 1


def test_ranks_of_one_job_complete_an_iteration_together(example, agent):
    procs = [subprocess.Popen([example, "--iterations", str(ITERATIONS), "--job", "pair",
                               "--rank", str(r), "--world-size", "2"], env=agent.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    for p, text in zip(procs, outs):
        assert p.returncode == 0, text
    client = _gemini.Client(agent.socket)
    assert client.complete_iteration("pair") == ITERATIONS
    for rank in range(2):
        _, got = read_shard(client, "pair", rank)
        tensor = expected(ITERATIONS, rank)["model.weight"][2]
        assert got["model.weight"][2] == raw(tensor), rank


def test_errors_reach_the_cpp_trainer_clearly(example, agent, tmp_path):
    gone = dict(agent.env(), GEMINI_SOCKET=str(tmp_path / "no-agent.sock"))
    out = subprocess.run([example], env=gone, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "UNAVAILABLE: cannot reach the gemini agent at" in out.stderr, out.stderr
    out = run(example, agent, "--job", "bad/name")
    assert out.returncode == 1
    assert "INVALID_ARGUMENT: job name may hold only" in out.stderr, out.stderr
    out = run(example, agent, "--rank", "2", "--world-size", "2")
    assert out.returncode == 1
    assert "INVALID_ARGUMENT: rank 2 not in world of 2" in out.stderr, out.stderr
