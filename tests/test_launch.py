"""`gemini launch` gives every trainer torchrun's environment contract, so a
script written for torchrun runs unmodified; a job whose trainers all exit 0
has succeeded (no file the script must write); a script that keeps failing
fails the job after --max-restarts recoveries instead of restarting forever.
Namespace hosts, real etcd."""
import json
import re
import shutil
import subprocess

import pytest

from cluster_fixture import have_cluster_support
from conftest import GEMINI, PYTHON, helper

pytestmark = pytest.mark.skipif(not have_cluster_support(),
                                reason="needs root, iproute2 and etcd-server")


def test_trainers_get_the_torchrun_environment(tmp_path):
    logs = tmp_path / "logs"
    out = subprocess.run(
        [GEMINI, "launch", "--hosts", "2", "--nproc-per-host", "2", "--job", "envjob",
         "--timeout", "120", "--log-dir", str(logs), "--report", str(tmp_path / "r.json"), "--",
         PYTHON, helper("env_contract.py")],
        capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "training finished" in out.stdout
    seen = {}
    for rank in range(4):
        with open(logs / f"trainer-{rank}.log") as f:
            (env,) = [json.loads(l) for l in f if l.startswith("{")]
        seen[rank] = env
        assert env["RANK"] == env["ROLE_RANK"] == str(rank)
        assert env["WORLD_SIZE"] == env["ROLE_WORLD_SIZE"] == "4"
        assert env["LOCAL_RANK"] == str(rank % 2) and env["LOCAL_WORLD_SIZE"] == "2"
        assert env["GROUP_RANK"] == str(rank // 2) and env["GROUP_WORLD_SIZE"] == "2"
        assert env["ROLE_NAME"] == "default"
        assert env["TORCHELASTIC_RUN_ID"] == env["GEMINI_JOB"] == "envjob"
        assert env["TORCHELASTIC_RESTART_COUNT"] == "0"
        assert env["TORCHELASTIC_MAX_RESTARTS"] == "10"  # The default.
        assert env["GEMINI_SOCKET"] and int(env["MASTER_PORT"]) > 0
    # One rendezvous point for the whole job.
    assert len({(e["MASTER_ADDR"], e["MASTER_PORT"]) for e in seen.values()}) == 1


def test_a_script_that_keeps_failing_fails_the_job_after_max_restarts(tmp_path):
    logs = tmp_path / "logs"
    script = "import os, sys; print('restart', os.environ['TORCHELASTIC_RESTART_COUNT']); sys.exit(3)"
    out = subprocess.run(
        [GEMINI, "launch", "--hosts", "2", "--nproc-per-host", "1", "--job", "failjob",
         "--max-restarts", "2", "--timeout", "120", "--log-dir", str(logs), "--", PYTHON, "-c",
         script], capture_output=True, text=True, timeout=180)
    kept = re.search(r"logs kept in (\S+)", out.stdout)  # A failed job keeps its cluster's files.
    if kept:
        shutil.rmtree(kept.group(1), ignore_errors=True)
    assert out.returncode != 0, out.stdout[-3000:]
    assert "the job failed" in out.stdout and "2 restart(s) used" in out.stdout, out.stdout[-3000:]
    # The first run and exactly two restarts, no more.
    with open(logs / "trainer-0.log") as f:
        lines = f.read().splitlines()
    runs = [l.split()[1] for l in lines if l.startswith("restart ")]
    assert runs == ["0", "1", "2"], runs
    # Each start of the rank is marked in its log with its epoch and restart.
    marks = [l for l in lines if l.startswith("=== gemini: epoch ")]
    assert len(marks) == 3 and "restart 2" in marks[-1] and "rank 0 of 2" in marks[-1], marks
