"""Shared fixtures: a real `gemini agent` process per test, on a private socket."""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The installed package: scripts/test runs pytest on .venv/bin/python, where
# scripts/build installed `gemini` (its command beside that python).
PYTHON = sys.executable
# Tests check what every iteration's checkpoint holds: no overhead budget (it
# would checkpoint tiny test models every k-th iteration); test_state_codec
# tests the budget itself.
os.environ["GEMINI_OVERHEAD_BUDGET"] = "0"
GEMINI = os.environ.get("GEMINI_BIN", os.path.join(os.path.dirname(PYTHON), "gemini"))


class Agent:
    def __init__(self, tmp_path, budget="1GiB", extra=()):
        self.socket = str(tmp_path / f"agent-{uuid.uuid4().hex[:8]}.sock")
        self.prefix = f"gemini-pytest-{uuid.uuid4().hex[:8]}"
        self.log = open(tmp_path / "agent.log", "ab")
        self.proc = subprocess.Popen([GEMINI, "agent", "--socket", self.socket, "--budget", budget,
                                      "--shm-prefix", self.prefix, *extra], stderr=self.log)
        deadline = time.time() + 10
        while not os.path.exists(self.socket):
            assert self.proc.poll() is None, "agent exited at start-up"
            assert time.time() < deadline, "agent did not start"
            time.sleep(0.02)

    def env(self, **extra):
        env = dict(os.environ, GEMINI_SOCKET=self.socket, OMP_NUM_THREADS="1")
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def status(self):
        import json
        out = subprocess.run([GEMINI, "status", "--json", "--socket", self.socket],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.log.close()
        leftovers = [f for f in os.listdir("/dev/shm") if f.startswith(self.prefix)]
        assert not leftovers, f"agent left shared memory behind: {leftovers}"


@pytest.fixture
def agent(tmp_path):
    a = Agent(tmp_path)
    yield a
    a.stop()


@pytest.fixture
def small_agent(tmp_path):
    a = Agent(tmp_path, budget="4MiB")
    yield a
    a.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def helper(name):
    return os.path.join(REPO, "tests", "helpers", name)
