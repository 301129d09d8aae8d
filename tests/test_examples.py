"""Every example in examples/ (the ones docs/adopting.md shows) runs as a user
runs it, with torchrun on 2 CPU ranks against a real agent: trained to step 6,
restarted to train on to step 10, its losses of steps 7-10 are bit-identical
to those of one uninterrupted run to step 10."""
import os
import re
import subprocess

import pytest

from conftest import PYTHON, REPO

EXAMPLES = ["ddp.py", "fsdp2.py", "titan_style.py", "dcp.py"]


def run(agent, example, job, steps, nproc=2):
    r = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone",
                        f"--nproc-per-node={nproc}", os.path.join(REPO, "examples", example),
                        "--steps", str(steps), "--job", job],
                       capture_output=True, text=True, timeout=240, env=agent.env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    resumed = int(re.search(r"resumed from step (\d+)", r.stdout).group(1))
    losses = dict(re.findall(r"step (\d+) loss (\S+)", r.stdout))
    return resumed, {int(k): v for k, v in losses.items()}


def resumes_bit_identically(agent, example, nproc=2):
    """Trained to step 6, restarted to step 10: losses 7-10 equal a straight run's."""
    name = example.removesuffix(".py")
    assert run(agent, example, f"{name}-a", 6, nproc)[0] == 0
    resumed, after = run(agent, example, f"{name}-a", 10, nproc)
    assert resumed == 6 and sorted(after) == [7, 8, 9, 10]
    _, straight = run(agent, example, f"{name}-b", 10, nproc)
    assert after == {s: straight[s] for s in range(7, 11)}


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_resumes_bit_identically(agent, example):
    resumes_bit_identically(agent, example)
